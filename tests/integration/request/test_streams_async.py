"""Streams, async clients and the legacy httpx family, through the one core.

Every scenario is written once as a coroutine and runs against the four adapter
combinations: sync/async clients over httpx2 (openai 3.x) or legacy httpx.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

import seedcache
from helpers import MESSAGES, SENTINEL_KEY, make_client
from seedcache.testing import FakeOpenAI


@dataclass
class Combo:
    """One way of putting the cache under an openai client."""

    name: str
    is_async: bool
    library: str

    def client(self, cache: seedcache.SeedCache, fake: FakeOpenAI, opened: list[Any]) -> Any:
        options: dict[str, Any] = {
            "api_key": SENTINEL_KEY,
            "base_url": fake.base_url,
            "max_retries": 0,
        }
        if self.library == "httpx2":
            raw = (openai.AsyncOpenAI if self.is_async else openai.OpenAI)(**options)
            opened.append(raw)  # wrap() uses its connection pool, which stays ours to close
            return cache.wrap(raw)
        if self.is_async:
            transport = cache.async_transport(httpx.AsyncHTTPTransport(), library="httpx")
            http_client: Any = httpx.AsyncClient(transport=transport)
        else:
            http_client = httpx.Client(
                transport=cache.transport(httpx.HTTPTransport(), library="httpx")
            )
        opened.append(http_client)
        cls = openai.AsyncOpenAI if self.is_async else openai.OpenAI
        return cls(http_client=http_client, **options)


COMBOS = [
    Combo("sync-httpx2", False, "httpx2"),
    Combo("async-httpx2", True, "httpx2"),
    Combo("sync-httpx", False, "httpx"),
    Combo("async-httpx", True, "httpx"),
]


@pytest.fixture(params=COMBOS, ids=lambda c: c.name)
def combo(request: pytest.FixtureRequest) -> Combo:
    return request.param  # type: ignore[no-any-return]


async def maybe(value: Any) -> Any:
    """Await what the async SDK returns; pass through what the sync one returns."""
    return await value if inspect.isawaitable(value) else value


async def collect(stream: Any) -> list[Any]:
    if hasattr(stream, "__aiter__"):
        return [item async for item in stream]
    return list(stream)


async def close(stream: Any) -> None:
    await maybe(stream.close())


def run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(scenario())


async def finish(cache: seedcache.SeedCache, opened: list[Any]) -> None:
    for http_client in opened:
        await maybe(http_client.aclose() if hasattr(http_client, "aclose") else http_client.close())
    await cache.aclose()


STREAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("chat.completions", {"model": "gpt-4o-mini", "messages": MESSAGES, "seed": 3}),
    "chat-usage": (
        "chat.completions",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "stream_options": {"include_usage": True}},
    ),
    "completions": (
        "completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Hi", "max_tokens": 12},
    ),
    "responses": ("responses", {"model": "gpt-4.1-nano", "input": "Tell a story"}),
}


def resource(client: Any, path: str) -> Any:
    for part in path.split("."):
        client = getattr(client, part)
    return client


@pytest.mark.parametrize("kind", list(STREAMS))
def test_stream_records_then_replays_the_same_chunks_and_bytes(fake, make_cache, combo, kind):
    path, arguments = STREAMS[kind]

    async def record() -> list[Any]:
        cache, opened = make_cache("auto"), []
        client = combo.client(cache, fake, opened)
        chunks = await collect(await maybe(resource(client, path).create(stream=True, **arguments)))
        await finish(cache, opened)
        return [c.model_dump() for c in chunks]

    live = run(record)
    fake.stop()

    async def replay() -> tuple[list[Any], bytes, bytes]:
        cache, opened = make_cache("replay"), []
        client = combo.client(cache, fake, opened)
        chunks = await collect(await maybe(resource(client, path).create(stream=True, **arguments)))
        streaming = resource(client, path).with_streaming_response.create(stream=True, **arguments)
        if combo.is_async:
            async with streaming as response:
                body = b"".join([part async for part in response.iter_bytes()])
        else:
            with streaming as response:
                body = b"".join(response.iter_bytes())
        (entry,) = list(cache.store.entries())
        await finish(cache, opened)
        return [c.model_dump() for c in chunks], body, entry.takes[0].body

    replayed, body, stored = run(replay)
    assert replayed == live
    assert body == stored
    assert len(live) > 5
    if kind == "chat-usage":
        assert live[-1]["choices"] == []
        assert live[-1]["usage"]["total_tokens"] > 0
        assert {c["system_fingerprint"] for c in live} == {"fp_a1b2c3d4e5"}
    if kind == "responses":
        assert b"[DONE]" not in stored
        assert stored.rstrip().endswith(b"}")


def test_abandoned_stream_stores_nothing_and_the_next_call_records(fake, make_cache, combo):
    async def scenario() -> None:
        cache, opened = make_cache("auto"), []
        client = combo.client(cache, fake, opened)
        stream = await maybe(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, seed=1, stream=True
            )
        )
        iterator = stream.__aiter__() if combo.is_async else iter(stream)
        first = await iterator.__anext__() if combo.is_async else next(iterator)
        assert first.choices[0].delta.role == "assistant"
        await close(stream)
        assert cache.store.keys() == []
        chunks = await collect(
            await maybe(
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, seed=1, stream=True
                )
            )
        )
        (entry,) = list(cache.store.entries())
        assert entry.takes[0].body.endswith(b"data: [DONE]\n\n")
        assert len(chunks) > 3
        await finish(cache, opened)

    run(scenario)


def test_dropped_connection_stores_nothing(fake, make_cache, combo):
    async def scenario() -> None:
        cache, opened = make_cache("auto"), []
        client = combo.client(cache, fake, opened)
        fake.drop_streams_after = 3
        with pytest.raises((openai.APIConnectionError, httpx2.HTTPError, httpx.HTTPError)):
            await collect(
                await maybe(
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=MESSAGES, stream=True
                    )
                )
            )
        assert cache.store.keys() == []
        fake.drop_streams_after = None
        await collect(
            await maybe(
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            )
        )
        assert len(cache.store.keys()) == 1
        await finish(cache, opened)

    run(scenario)


def test_first_chunk_arrives_before_the_upstream_sends_the_last(fake, make_cache, combo):
    """No buffering while recording: the server holds the stream after its first event."""
    gate = threading.Event()
    fake.pause_after_first_event = gate

    async def scenario() -> None:
        cache, opened = make_cache("auto"), []
        client = combo.client(cache, fake, opened)
        stream = await maybe(
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        )
        iterator = stream.__aiter__() if combo.is_async else iter(stream)
        await iterator.__anext__() if combo.is_async else next(iterator)
        assert fake.streams_completed == 0  # the upstream is still holding the rest back
        gate.set()
        await collect(stream)
        assert fake.streams_completed == 1
        assert len(cache.store.keys()) == 1
        await finish(cache, opened)

    run(scenario)


@pytest.mark.parametrize("library", ["httpx2", "httpx"])
def test_concurrent_identical_async_requests_make_one_upstream_call(fake, make_cache, library):
    combo = Combo("async-" + library, True, library)

    async def scenario() -> None:
        cache, opened = make_cache("auto"), []
        client = combo.client(cache, fake, opened)
        results = await asyncio.gather(
            *[
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=9)
                for _ in range(20)
            ]
        )
        assert fake.request_count == 1
        assert len({r.id for r in results}) == 1
        assert cache.stats().joined == 19
        await finish(cache, opened)

    run(scenario)


def test_concurrent_identical_threads_make_one_upstream_call(fake, make_cache):
    """Threads that arrive while the first is being fetched wait and share its take."""
    cache = make_cache("auto")
    client = cache.wrap(make_client(fake, max_retries=2))
    fake.hold_responses = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(
                lambda: (
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=MESSAGES, seed=9
                    ).id
                )
            )
            for _ in range(8)
        ]
        while fake.request_count == 0:
            time.sleep(0.005)
        time.sleep(0.2)  # let the other seven reach the cache while the first is held
        fake.hold_responses.set()
        ids = [f.result() for f in futures]
    assert len(set(ids)) == 1
    assert fake.request_count == 1
    assert cache.stats().joined == 7


def test_stream_helpers_record_and_replay(fake, make_cache):
    """`chat.completions.stream()` and `responses.stream()` go through the cache too."""

    def texts(cache: seedcache.SeedCache) -> tuple[str, str]:
        client = cache.wrap(make_client(fake, max_retries=2))
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, seed=4) as s:
            chat = s.get_final_completion().choices[0].message.content or ""
        with client.responses.stream(model="gpt-4.1-nano", input="Tell a story") as s:
            response = s.get_final_response().output_text
        return chat, response

    live = texts(make_cache("auto"))
    fake.stop()
    assert texts(make_cache("replay")) == live


# -- an async replay from a cassette stays on the event loop ----------------------------------


async def _ask(cache: seedcache.SeedCache, fake: FakeOpenAI, seed: int, times: int = 1) -> str:
    """The id of the answer to the ``times``-th identical request through one client."""
    raw = openai.AsyncOpenAI(api_key=SENTINEL_KEY, base_url=fake.base_url, max_retries=0)
    try:
        client = cache.wrap(raw)
        for _ in range(times):
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, seed=seed
            )
        return reply.id
    finally:
        await raw.close()


def _store_cache(kind: str, where: Path, mode: str) -> seedcache.SeedCache:
    """A cache over a cassette file or a cache directory at ``where``."""
    if kind == "cassette":
        return seedcache.SeedCache.cassette(where / "story.json", mode=mode)
    return seedcache.SeedCache(where / "cache", mode=mode)


@pytest.mark.parametrize("kind", ["cassette", "directory"])
def test_an_async_replay_is_answered_on_the_event_loop(kind, fake, tmp_path, caplog):
    """A worker thread's round trip costs more than a whole replay; a cassette in memory
    and a directory's row SQLite can give without waiting are read on the loop."""
    with _store_cache(kind, tmp_path, "auto") as cache:
        recorded = run(lambda: _ask(cache, fake, 1))
    fake.stop()
    caplog.set_level("DEBUG", logger="seedcache")

    async def replay() -> tuple[str, int]:
        with _store_cache(kind, tmp_path, "replay") as cache:
            return await _ask(cache, fake, 1), threading.get_ident()

    replayed, loop_thread = run(replay)
    assert replayed == recorded
    [served] = [r for r in caplog.records if r.getMessage().startswith("replayed")]
    assert served.thread == loop_thread


@pytest.mark.parametrize("kind", ["cassette", "directory"])
def test_an_async_replay_sees_a_take_another_writer_recorded_since(kind, fake, tmp_path):
    """What is served on the loop is the recording as it is now: a cassette's copy in
    memory only while the file is as it was read, a directory's row as stored."""
    with _store_cache(kind, tmp_path, "auto") as cache:
        first = run(lambda: _ask(cache, fake, 1))

    async def scenario() -> tuple[str, str, str]:
        with _store_cache(kind, tmp_path, "replay") as reader:
            before = await _ask(reader, fake, 1)  # read, and kept in memory where it can be
            with _store_cache(kind, tmp_path, "record") as writer:
                again = await _ask(writer, fake, 1)
            fake.stop()
            return before, again, await _ask(reader, fake, 1)

    before, again, after = run(scenario)
    assert before == first
    assert again != first
    assert after == again
