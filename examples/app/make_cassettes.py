"""Rebuild cassettes/examples/app/test_story_app/ from the project's fake server, no API key.

Each test of ``test_story_app.py`` runs once in ``record`` mode behind the proxy, whose
upstream is the real API's address (so the keys match a replay) but whose requests are
answered by ``seedcache.testing.FakeOpenAI``. With a real key, use
``pytest --seedcache-mode=record examples/app`` instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx2

import seedcache
from seedcache.testing import FakeOpenAI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The plugin's layout: <cassette dir>/<test file path from the rootdir, without .py>/.
CASSETTES = ROOT / "cassettes" / "examples" / "app" / "test_story_app"
UPSTREAM = "https://api.openai.com/v1"
sys.path.insert(0, str(HERE))

import test_story_app  # noqa: E402


class ToFakeServer(httpx2.AsyncBaseTransport):
    """Sends each request to the fake server instead of the host it names."""

    def __init__(self, base_url: str) -> None:
        self._target = httpx2.URL(base_url)
        self._next = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url.copy_with(
            scheme=self._target.scheme, host=self._target.host, port=self._target.port
        )
        forwarded = httpx2.Request(
            request.method, url, headers=request.headers, content=await request.aread()
        )
        return await self._next.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self._next.aclose()


def main() -> None:
    os.environ["OPENAI_API_KEY"] = "sk-fake-key-for-the-fake-server"
    tests = [name for name in dir(test_story_app) if name.startswith("test_")]
    with FakeOpenAI(fingerprint="fp_f33640a400") as server:
        for name in tests:
            path = CASSETTES / f"{name}.json"
            path.unlink(missing_ok=True)
            with (
                seedcache.SeedCache.cassette(path, mode="record") as cache,
                cache.proxy(
                    UPSTREAM, repeats="takes", transport=ToFakeServer(server.base_url)
                ) as url,
            ):
                os.environ["OPENAI_BASE_URL"] = url
                getattr(test_story_app, name)(url)
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
