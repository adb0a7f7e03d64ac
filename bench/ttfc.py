"""Time to first chunk while recording a stream, against a direct call to the same server.

Both clients talk to the loopback fake server; rounds alternate between them so machine
noise hits both alike. The recording client is in `record` mode, so every call is live.
Prints medians and their ratio (goal: <= 1.10).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import openai

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
        ratio = recording_ms / direct_ms
        print(f"time to first chunk, median of {ROUNDS} rounds")
        print(f"  direct      {direct_ms:7.3f} ms")
        print(f"  recording   {recording_ms:7.3f} ms")
        verdict = "met" if ratio <= 1.10 else "MISSED"
        print(f"  ratio       {ratio:7.3f}   (goal <= 1.10: {verdict})")
        cache.close()
        direct.close()


if __name__ == "__main__":
    main()
