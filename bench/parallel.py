"""Processes replaying from one store against one process, by aggregate throughput.

Each process replays the same recorded calls in a loop for a fixed time. From one disk
store, 2 processes on 2 cores must reach 1.6 times the single-process rate: replays must
not serialise on the store. From one Redis, 4 processes must reach 3 times on 4 cores
(this reports what the machine has). Last, the cost of recording through Redis against
recording into a directory.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import time

import httpx2
import openai
from _redis import redis_server
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
    """The first 50 are replayed; from 1000 on, each is recorded once to time recording."""
    prompt = f"q{number}" if number < 1000 else f"r{number}"
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}


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
        client.chat.completions.create(**request(done % 50))
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


def record(location: str, numbers: range = range(50)) -> float:
    """Seconds to record :func:`request` for ``numbers`` (each a miss answered by a mock)."""
    with seedcache.SeedCache(location, mode="record") as recorder:
        client = recorder.wrap(openai.OpenAI(api_key="bench", base_url=API), transport=mock())
        started = time.perf_counter()
        for number in numbers:
            client.chat.completions.create(**request(number))
        return time.perf_counter() - started


def main() -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as directory, redis_server() as redis_url:
        record(directory)
        one = rate(directory, 1)
        two = rate(directory, 2)
        print(f"parallel replay, {SECONDS:.0f} s each, {cores} cores")
        print(
            row(
                f"disk: 2 processes / 1 process ({one:.0f} vs {two:.0f} calls/s)",
                two / one,
                ">= 1.6",
                two / one >= 1.6,
            )
        )
        record(redis_url)
        one = rate(redis_url, 1)
        four = rate(redis_url, 4)
        goal = 3.0 if cores >= 4 else 0.8 * min(cores, 4)
        print(
            row(
                f"redis: 4 processes / 1 process ({one:.0f} vs {four:.0f} calls/s)",
                four / one,
                f">= {goal:.1f} on {min(cores, 4)} cores",
                four / one >= goal,
            )
        )
        disk_seconds = redis_seconds = 0.0
        for round_number in range(3):  # alternating, 200 distinct recordings each
            batch = range(1000 + 200 * round_number, 1200 + 200 * round_number)
            disk_seconds += record(directory, batch)
            redis_seconds += record(redis_url, batch)
        print(
            row(
                "recording: through Redis / into a directory",
                redis_seconds / disk_seconds,
                "report",
                True,
            )
        )


if __name__ == "__main__":
    main()
