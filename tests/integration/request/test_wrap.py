"""wrap() and the cache's transports: the user's HTTP settings survive, and nothing is built
upstream until a request must go live."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import httpx2
import openai
import pytest

from helpers import MESSAGES, SENTINEL_KEY
from seedcache import SeedCache


@pytest.fixture
def built(monkeypatch) -> list[Any]:
    """Every httpx2 transport built (each costs an SSL context) while the test runs."""
    made: list[Any] = []
    for cls in (httpx2.HTTPTransport, httpx2.AsyncHTTPTransport):
        original = cls.__init__

        def counting(self, *args, original=original, **kwargs):
            made.append(self)
            original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    return made


def ask(client, seed):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=seed)


def test_replaying_builds_no_transport_and_going_live_builds_one_per_cache(fake, tmp_path, built):
    def client_on(cache):
        # The HTTP client holds nothing of the cache's: not closing it leaks nothing.
        http_client = openai.DefaultHttpxClient(transport=cache.transport())
        return openai.OpenAI(api_key=SENTINEL_KEY, base_url=fake.base_url, http_client=http_client)

    with SeedCache.cassette(tmp_path / "c.json", mode="auto") as cache:
        first, second = client_on(cache), client_on(cache)
        assert built == []
        ask(first, 1)
        assert len(built) == 1
        ask(first, 2)
        ask(second, 3)  # another client of the same cache shares it
        assert len(built) == 1
    built.clear()
    fake.stop()
    with SeedCache.cassette(tmp_path / "c.json", mode="replay") as cache:
        for seed in (1, 2, 3):
            ask(client_on(cache), seed)
    assert built == []


def test_a_replaying_proxy_builds_no_upstream_transport(fake, tmp_path, built):
    with (
        SeedCache(tmp_path / "c") as cache,
        cache.proxy(fake.base_url) as url,
        openai.OpenAI(api_key=SENTINEL_KEY, base_url=url, max_retries=0) as client,
    ):
        ask(client, 1)
    fake.stop()
    built.clear()
    with SeedCache(tmp_path / "c", mode="replay") as cache, cache.proxy(fake.base_url) as url:
        proxy_built = len(built)
        with openai.OpenAI(api_key=SENTINEL_KEY, base_url=url, max_retries=0) as client:
            ask(client, 1)
    # The client above built its own transport; the proxy built none.
    assert proxy_built == 0
    assert len(built) == 1


class Settings:
    """What a user configures on an HTTP client, and what was seen of it."""

    def __init__(self, library: str, is_async: bool) -> None:
        self.library, self.is_async = library, is_async
        self.seen: list[tuple[str, Any]] = []
        self.through_mount = 0

    def http_client(self, fake) -> Any:
        lib = httpx2 if self.library == "httpx2" else httpx
        settings = self

        def on_request(request):
            settings.seen.append(("request", request.url.path))

        def on_response(response):
            settings.seen.append(("response", response.status_code))

        if self.is_async:

            async def on_request_async(request):
                on_request(request)

            async def on_response_async(response):
                on_response(response)

            class Mounted(lib.AsyncHTTPTransport):
                async def handle_async_request(self, request):
                    settings.through_mount += 1
                    return await super().handle_async_request(request)

            hooks = {"request": [on_request_async], "response": [on_response_async]}
            client_cls = lib.AsyncClient
        else:

            class Mounted(lib.HTTPTransport):  # type: ignore[no-redef]
                def handle_request(self, request):
                    settings.through_mount += 1
                    return super().handle_request(request)

            hooks = {"request": [on_request], "response": [on_response]}
            client_cls = lib.Client
        return client_cls(
            headers={"x-team": "blue"},
            params={"trace": "on"},
            event_hooks=hooks,
            mounts={"http://127.0.0.1": Mounted()},
            timeout=12.5,
        )


@pytest.mark.parametrize("library", ["httpx2", "httpx"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_wrap_keeps_what_the_user_set_on_the_http_client(fake, tmp_path, library, is_async):
    settings = Settings(library, is_async)

    async def scenario():
        http_client = settings.http_client(fake)
        cls = openai.AsyncOpenAI if is_async else openai.OpenAI
        client = cls(api_key=SENTINEL_KEY, base_url=fake.base_url, http_client=http_client)
        for mode in ("auto", "replay"):  # a live call, then a replay
            async with SeedCache(tmp_path / "c", mode=mode) as cache:
                wrapped = cache.wrap(client)
                assert wrapped.timeout == client.timeout
                reply = wrapped.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, seed=1
                )
                if is_async:
                    reply = await reply
                assert reply.choices[0].message.content
        close = http_client.aclose() if is_async else None
        if close is not None:
            await close
        else:
            http_client.close()

    asyncio.run(scenario())
    assert fake.request_count == 1
    [sent] = fake.requests
    assert sent.headers["x-team"] == "blue"  # the client's default headers
    assert sent.path.endswith("?trace=on")  # its default params
    assert settings.through_mount == 1  # the miss went through the user's mount
    # Hooks fire for every call, the replay included, as they would without a cache.
    assert settings.seen == [("request", "/v1/chat/completions"), ("response", 200)] * 2


def test_wrap_returns_the_clients_own_type_to_a_type_checker(tmp_path):
    """A user's file checked with mypy --strict: the package is typed (py.typed)."""
    user_file = tmp_path / "app.py"
    user_file.write_text(
        textwrap.dedent(
            """
            import openai
            import seedcache

            def ask(cache: seedcache.SeedCache) -> str | None:
                client = cache.wrap(openai.OpenAI())
                reveal_type(client)
                reply = client.chat.completions.create(model="m", messages=[], seed=1)
                return reply.choices[0].message.content

            with seedcache.SeedCache.cassette("c.json", mode="replay") as cache:
                stats: seedcache.Stats = cache.stats()
                print(ask(cache), stats.hits)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user_file)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert 'Revealed type is "openai._client.OpenAI"' in done.stdout, done.stdout
    assert "Success: no issues found" in done.stdout, done.stdout
