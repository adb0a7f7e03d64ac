"""Shared fixtures: the fake OpenAI server and caches over each kind of store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

import seedcache
from redis_servers import RedisServer, namespace_for
from seedcache.testing import FakeOpenAI

# A key shaped like a real one; tests scan every stored byte for it.
SENTINEL_KEY = "sk-proj-SENTINELsecretKEY0123456789abcdefABCDEF"
SENTINEL_ORG = "org-SENTINELorganization42"
SENTINEL_PROJECT = "proj_SENTINELproject42"

pytest_plugins = ["pytester"]

CacheFactory = Callable[..., seedcache.SeedCache]


_SECRETS = (SENTINEL_KEY.encode(), SENTINEL_ORG.encode(), SENTINEL_PROJECT.encode())


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_any_file_the_suite_wrote(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """After the whole run, no file under the run's temporary root holds a sentinel secret.

    Every cache, cassette, index and registry the suite writes lives there, whatever the
    endpoint, mode, store or path (wrap, proxy, plugin, CLI) that wrote it.
    """
    yield
    root = tmp_path_factory.getbasetemp()
    leaks = [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and any(secret in path.read_bytes() for secret in _SECRETS)
    ]
    assert leaks == [], f"a sentinel secret was written to: {leaks}"


@pytest.fixture(scope="session", autouse=True)
def _subprocesses_cache_bytecode() -> Iterator[None]:
    """Let the Python processes tests start (inner pytest sessions, CLI runs) reuse .pyc files.

    With PYTHONDONTWRITEBYTECODE set, every one of them compiles openai from source, which
    made those tests most of the suite's time.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        yield


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI server on loopback."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def inner(
    pytester: pytest.Pytester, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester whose inner sessions reach the fake server through OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.delenv("SEEDCACHE_MODE", raising=False)
    return pytester


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on loopback for this test process; tests take a namespace each."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer, request: pytest.FixtureRequest) -> str:
    """A Redis location of this test's own (a fresh namespace on the shared server)."""
    return f"{redis_server.url}?namespace={namespace_for(request.node.name)}"


@pytest.fixture(params=["disk", "cassette", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per store."""
    return str(request.param)


@pytest.fixture
def make_cache(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[CacheFactory]:
    """Opens caches (any mode) over one store location per test; closes them after."""
    opened: list[seedcache.SeedCache] = []
    location = request.getfixturevalue("redis_url") if store_kind == "redis" else None

    def factory(mode: str = "auto", **options: object) -> seedcache.SeedCache:
        if store_kind == "disk":
            cache = seedcache.SeedCache(tmp_path / "cache", mode=mode, **options)  # type: ignore[arg-type]
        elif location is not None:
            cache = seedcache.SeedCache(location, mode=mode, **options)  # type: ignore[arg-type]
        else:
            cache = seedcache.SeedCache.cassette(tmp_path / "cassette.json", mode=mode, **options)
        opened.append(cache)
        return cache

    yield factory
    for cache in opened:
        cache.close()


_OPEN_CLIENTS: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    """Clients made by :func:`make_client` are closed after each test.

    ``wrap()`` sends misses through the wrapped client's own connection pool, which stays
    the user's to close; an unclosed socket would be a ResourceWarning, and an error.
    """
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def make_client(fake: FakeOpenAI, **options: object) -> openai.OpenAI:
    """An SDK client pointed at the fake server with sentinel credentials and no retries."""
    options.setdefault("max_retries", 0)
    client = openai.OpenAI(
        api_key=SENTINEL_KEY,
        organization=SENTINEL_ORG,
        project=SENTINEL_PROJECT,
        base_url=fake.base_url,
        **options,  # type: ignore[arg-type]
    )
    _OPEN_CLIENTS.append(client)
    return client


def stored_bytes(root: Path) -> bytes:
    """Every byte of every file under ``root``."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that generates short stories."},
    {"role": "user", "content": "Generate a short story about a journey to Mars."},
]
