"""Recording overhead: an `auto`-mode miss, and the time to first chunk while recording a
stream, each against a direct call to the same loopback fake server.

Rounds alternate between the clients so machine noise hits both alike. Every recorded
call is a new request, so every one is live. Prints medians and their ratios.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import openai
from _table import row

import seedcache
from seedcache.testing import FakeOpenAI

ROUNDS = 15 if "--quick" in sys.argv else 60
MESSAGES = [{"role": "user", "content": "Tell me a story about Mars."}]


def first_chunk_seconds(client: openai.OpenAI, round_number: int) -> float:
    # A distinct prompt per round: recording new requests, the common case.
    messages = [{"role": "user", "content": f"{MESSAGES[0]['content']} (#{round_number})"}]
    started = time.perf_counter()
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    next(iter(stream))
    elapsed = time.perf_counter() - started
    for _ in stream:  # drain, so the recording completes as in real use
        pass
    return elapsed


def whole_call_seconds(client: openai.OpenAI, round_number: int) -> float:
    messages = [{"role": "user", "content": f"{MESSAGES[0]['content']} (whole #{round_number})"}]
    started = time.perf_counter()
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    return time.perf_counter() - started


def main() -> None:
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as directory:
        direct = openai.OpenAI(api_key="bench", base_url=server.base_url)
        cache = seedcache.SeedCache(directory, mode="record")
        recording = cache.wrap(openai.OpenAI(api_key="bench", base_url=server.base_url))
        for client in (direct, recording):  # warm connections and imports
            first_chunk_seconds(client, -1)
        times: dict[str, list[float]] = {"direct": [], "recording": []}
        for number in range(ROUNDS):
            times["direct"].append(first_chunk_seconds(direct, number))
            times["recording"].append(first_chunk_seconds(recording, number))
        direct_ms = statistics.median(times["direct"]) * 1000
        recording_ms = statistics.median(times["recording"]) * 1000
        ttfc_ratio = recording_ms / direct_ms

        auto = seedcache.SeedCache(directory + "/auto", mode="auto")
        missing = auto.wrap(openai.OpenAI(api_key="bench", base_url=server.base_url))
        whole: dict[str, list[float]] = {"direct": [], "miss": []}
        for number in range(ROUNDS):
            whole["direct"].append(whole_call_seconds(direct, number))
            whole["miss"].append(whole_call_seconds(missing, number))
        miss_ratio = statistics.median(whole["miss"]) / statistics.median(whole["direct"])
        print(f"recording overhead, medians of {ROUNDS} alternating rounds")
        print(
            row(
                f"auto miss / direct call ({statistics.median(whole['direct']) * 1000:.1f} ms)",
                miss_ratio,
                "<= 1.10",
                miss_ratio <= 1.10,
            )
        )
        print(
            row(
                f"time to first chunk recording / direct ({direct_ms:.1f} ms)",
                ttfc_ratio,
                "<= 1.10",
                ttfc_ratio <= 1.10,
            )
        )
        auto.close()
        cache.close()
        direct.close()


if __name__ == "__main__":
    main()
