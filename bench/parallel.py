"""Two processes replaying from one disk store against one, by aggregate throughput.

Each process replays the same recorded calls in a loop for a fixed time. On 2 cores the
goal is at least 1.6 times the single-process rate: replays must not serialise on the
store.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import tempfile
import time

import httpx2
import openai
from _table import row

import seedcache

SECONDS = 2.0 if "--quick" in sys.argv else 5.0
API = "https://api.openai.com/v1"
BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Red dust."}}],
        "system_fingerprint": "fp_bench",
    }
).encode()


def request(number: int) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{number % 50}"}]}


def mock() -> httpx2.MockTransport:
    return httpx2.MockTransport(
        lambda _: httpx2.Response(200, headers={"content-type": "application/json"}, content=BODY)
    )


def replay_for(directory: str, seconds: float, counts: multiprocessing.Queue[int]) -> None:
    cache = seedcache.SeedCache(directory, mode="replay")
    client = cache.wrap(openai.OpenAI(api_key="bench", base_url=API), transport=mock())
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        client.chat.completions.create(**request(done))
        done += 1
    cache.close()
    counts.put(done)


def rate(directory: str, processes: int) -> float:
    counts: multiprocessing.Queue[int] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=replay_for, args=(directory, SECONDS, counts))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    total = sum(counts.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / SECONDS


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        with seedcache.SeedCache(directory, mode="record") as recorder:
            client = recorder.wrap(openai.OpenAI(api_key="bench", base_url=API), transport=mock())
            for number in range(50):
                client.chat.completions.create(**request(number))
        one = rate(directory, 1)
        two = rate(directory, 2)
    print(f"parallel replay from one disk store, {SECONDS:.0f} s each")
    print(
        row(
            f"2 processes / 1 process ({one:.0f} vs {two:.0f} calls/s)",
            two / one,
            ">= 1.6",
            two / one >= 1.6,
        )
    )


if __name__ == "__main__":
    main()
