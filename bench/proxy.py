"""Replaying through the proxy against replaying through `cache.wrap()`, side by side.

Records one request, then alternates rounds of hits: the SDK pointed at the proxy (HTTP
over loopback to uvicorn, then the cache) and the SDK wrapped directly (no socket at
all). Prints median hit latencies and their ratio, then the proxy's requests per second
with 8 client threads.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time

import openai
from _table import row

import seedcache
from seedcache.testing import FakeOpenAI

QUICK = "--quick" in sys.argv
ROUNDS = 100 if QUICK else 500
THROUGHPUT_SECONDS = 2.0 if QUICK else 5.0
THREADS = 8
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Mars?"}], "seed": 1}


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)


def hit_seconds(client: openai.OpenAI) -> float:
    started = time.perf_counter()
    client.chat.completions.create(**REQUEST)
    return time.perf_counter() - started


def throughput(base_url: str) -> float:
    done = [0] * THREADS
    deadline = time.perf_counter() + THROUGHPUT_SECONDS

    def worker(slot: int) -> None:
        proxied = client(base_url)
        while time.perf_counter() < deadline:
            proxied.chat.completions.create(**REQUEST)
            done[slot] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / THROUGHPUT_SECONDS


def main() -> None:
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as directory:
        with seedcache.SeedCache(directory, mode="auto") as recorder:
            first = recorder.wrap(openai.OpenAI(api_key="bench", base_url=server.base_url))
            first.chat.completions.create(**REQUEST)  # record once
        # replay: every identical call replays the take, however often it is repeated.
        cache = seedcache.SeedCache(directory, mode="replay")
        wrapped = cache.wrap(openai.OpenAI(api_key="bench", base_url=server.base_url))
        with cache.proxy(server.base_url) as url:
            proxied = client(url)
            proxied.chat.completions.create(**REQUEST)
            hits: dict[str, list[float]] = {"wrap": [], "proxy": []}
            for _ in range(ROUNDS):
                hits["wrap"].append(hit_seconds(wrapped))
                hits["proxy"].append(hit_seconds(proxied))
            rate = throughput(url)
        cache.close()
        assert server.request_count == 1, "every measured call must be a hit"
    wrap_ms = statistics.median(hits["wrap"]) * 1000
    proxy_ms = statistics.median(hits["proxy"]) * 1000
    ratio = proxy_ms / wrap_ms
    print(f"replayed hit latency, median of {ROUNDS} alternating rounds")
    print(f"  through cache.wrap()   {wrap_ms:6.2f} ms")
    print(f"  through the proxy      {proxy_ms:6.2f} ms")
    print(
        row("proxy hit / wrap() hit (HTTP over loopback both ways)", ratio, "<= 1.5", ratio <= 1.5)
    )
    print(f"proxy throughput, {THREADS} client threads: {rate:.0f} requests/s (all hits)")


if __name__ == "__main__":
    main()
