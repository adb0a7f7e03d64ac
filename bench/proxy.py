"""Replaying through the proxy against replaying through `cache.wrap()`, side by side.

Records one request, then alternates rounds of hits: the SDK pointed at the proxy (HTTP
over loopback to uvicorn, then the cache) and the SDK wrapped directly (no socket at
all). Beside them, two floors for any proxy: the same SDK call to uvicorn (configured as
the proxy is) answering the recorded bytes without looking at the request, and to a bare
socket server doing the same in a thread per connection. Prints median hit latencies and
their ratios, then the proxy's requests per second with 8 client threads.
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import threading
import time
from functools import partial

import openai
import uvicorn
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


def recorded_answer(base_url: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The recorded response's body and headers (without the ones each hop sets)."""
    raw = client(base_url).chat.completions.with_raw_response.create(**REQUEST).http_response
    hop = {"content-length", "transfer-encoding", "connection", "date", "server"}
    headers = [(k.encode(), v.encode()) for k, v in raw.headers.items() if k.lower() not in hop]
    return raw.content, [*headers, (b"content-length", str(len(raw.content)).encode())]


def listening() -> socket.socket:
    bound = socket.socket()
    bound.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the proxy's
    bound.bind(("127.0.0.1", 0))
    bound.listen(128)
    return bound


def uvicorn_answering(body: bytes, headers: list[tuple[bytes, bytes]]) -> str:
    """uvicorn on h11, as the proxy runs it, answering every request with ``body``."""

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):  # type: ignore[operator]
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    bound = listening()
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", http="h11", server_header=False, date_header=False
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [bound]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{bound.getsockname()[1]}/v1"


def socket_answering(body: bytes, headers: list[tuple[bytes, bytes]]) -> str:
    """A thread per connection that reads a request head and body and sends ``body``."""
    answer = b"HTTP/1.1 200 OK\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    answer += b"\r\n" + body
    bound = listening()

    def serve(conn: socket.socket) -> None:
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
            head, _, rest = pending.partition(b"\r\n\r\n")
            size = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    size = int(line.split(b":")[1])
            while len(rest) < size:
                rest += conn.recv(65536)
            pending = rest[size:]
            conn.sendall(answer)

    def accept() -> None:
        while True:
            conn, _ = bound.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{bound.getsockname()[1]}/v1"


def main() -> None:
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as directory:
        in_directory = partial(seedcache.SeedCache, directory)
        in_cassette = partial(seedcache.SeedCache.cassette, f"{directory}/proxy.json")
        for opened in (in_directory, in_cassette):  # record once into each
            with opened(mode="auto") as recorder:
                first = recorder.wrap(openai.OpenAI(api_key="bench", base_url=server.base_url))
                first.chat.completions.create(**REQUEST)
        # replay: every identical call replays the take, however often it is repeated.
        cache = in_directory(mode="replay")
        from_cassette = in_cassette(mode="replay")
        wrapped = cache.wrap(openai.OpenAI(api_key="bench", base_url=server.base_url))
        with cache.proxy(server.base_url) as url, from_cassette.proxy(server.base_url) as curl:
            body, headers = recorded_answer(url)
            clients = {
                "wrap": wrapped,
                "proxy": client(url),
                "proxy-cassette": client(curl),
                "uvicorn": client(uvicorn_answering(body, headers)),
                "socket": client(socket_answering(body, headers)),
            }
            hits: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(ROUNDS):
                for name, each in clients.items():
                    hits[name].append(hit_seconds(each))
            rate = throughput(url)
            cassette_rate = throughput(curl)
        cache.close()
        from_cassette.close()
        assert server.request_count == 2, "every measured call must be a hit"
    ms = {name: statistics.median(values) * 1000 for name, values in hits.items()}
    print(f"replayed hit latency, median of {ROUNDS} alternating rounds")
    print(f"  through cache.wrap() (cache directory)        {ms['wrap']:6.2f} ms")
    print(f"  through the proxy (cache directory)           {ms['proxy']:6.2f} ms")
    print(f"  through the proxy (cassette)                  {ms['proxy-cassette']:6.2f} ms")
    print(f"  uvicorn answering the recorded bytes          {ms['uvicorn']:6.2f} ms")
    print(f"  a bare socket answering the recorded bytes    {ms['socket']:6.2f} ms")
    for name, label in (("proxy", "directory"), ("proxy-cassette", "cassette")):
        ratio = ms[name] / ms["wrap"]
        print(row(f"proxy hit ({label}) / wrap() hit", ratio, "<= 1.5", ratio <= 1.5))
    floor = ms["socket"] / ms["wrap"]
    print(row("  a bare socket's answer / wrap() hit (no proxy does better)", floor, "-", True))
    for name, label in (("proxy", "directory"), ("proxy-cassette", "cassette")):
        own = ms[name] / ms["uvicorn"]
        print(row(f"proxy hit ({label}) / uvicorn answering blindly", own, "<= 1.15", own <= 1.15))
    print(
        f"proxy throughput, {THREADS} client threads (all hits): {rate:.0f} requests/s "
        f"(cache directory), {cassette_rate:.0f} requests/s (cassette)"
    )


if __name__ == "__main__":
    main()
