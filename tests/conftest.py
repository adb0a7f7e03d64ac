"""Shared fixtures: the fake OpenAI server, Redis, and the one store matrix.

Helpers that are not fixtures (sentinel secrets, clients, entry builders) live in
``helpers.py``; tests import them from there, never from here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import seedcache
from helpers import (
    OPEN_CLIENTS,
    SENTINEL_KEY,
    SENTINEL_ORG,
    SENTINEL_PROJECT,
    CacheFactory,
    MemoryStore,
    Opener,
    StoreKind,
)
from inner_sessions import ForkServer, forking_enabled, run_forked
from redis_servers import RedisServer, namespace_for
from seedcache import CassetteStore, DiskStore, Store
from seedcache._stores._redis import RedisStore
from seedcache.testing import FakeOpenAI

pytest_plugins = ["pytester"]

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


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer | None]:
    """Where this test process's inner pytest sessions are forked from (see inner_sessions)."""
    if not forking_enabled():
        yield None
        return
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture
def inner(
    pytester: pytest.Pytester,
    fake: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    fork_server: ForkServer | None,
) -> pytest.Pytester:
    """A pytester whose inner sessions reach the fake server through OPENAI_BASE_URL."""
    if fork_server is not None:
        monkeypatch.setattr(pytester, "runpytest_subprocess", run_forked(fork_server, pytester))
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.delenv("SEEDCACHE_MODE", raising=False)
    # Hypothesis is this suite's tool, not the inner suites': its plugin is a third of an
    # inner session's start-up, paid again by each xdist worker.
    addopts = os.environ.get("PYTEST_ADDOPTS", "")
    monkeypatch.setenv("PYTEST_ADDOPTS", f"{addopts} -p no:hypothesispytest".strip())
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


# -- the store matrix: every test that takes `store_kind` runs once per store ------------


def _memory_store() -> Callable[[str], Store]:
    shared: dict[str, Store] = {}  # one store per location, as a file would be
    return lambda location: shared.setdefault(location, MemoryStore())


class IndexedCassetteStore(CassetteStore):
    """A cassette indexed however small, as cassettes of a megabyte and more are."""

    lazy_from_bytes = 0


STORES = {
    "disk": StoreKind(True, lambda tmp, _: str(tmp / "cache"), DiskStore),
    "cassette": StoreKind(False, lambda tmp, _: str(tmp / "cassette.json"), CassetteStore),
    "indexed cassette": StoreKind(
        False, lambda tmp, _: str(tmp / "cassette.json"), IndexedCassetteStore
    ),
    "redis": StoreKind(True, lambda _, request: request.getfixturevalue("redis_url"), RedisStore),
    "memory": StoreKind(True, lambda tmp, _: str(tmp), _memory_store()),
}
DEFAULT_STORES = ("disk", "cassette", "redis")
"""What ``store_kind`` runs over unless a test says ``@pytest.mark.stores(...)``: the
stores users open by location (the in-memory one is the contract's)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("stores")
        metafunc.parametrize("store_kind", marker.args if marker else DEFAULT_STORES)


@pytest.fixture
def store_location(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """This test's location for a store of ``store_kind``."""
    return STORES[store_kind].location(tmp_path, request)


@pytest.fixture
def open_store(store_kind: str, store_location: str) -> Iterator[Opener]:
    """Opens another store object over this test's location at each call."""
    opener = Opener(STORES[store_kind], store_location)
    yield opener
    for store in opener.opened:
        store.close()


@pytest.fixture
def store(open_store: Opener) -> Store:
    """A store of ``store_kind`` over this test's location."""
    return open_store()


@pytest.fixture
def make_cache(store_kind: str, store_location: str, open_store: Opener) -> Iterator[CacheFactory]:
    """Opens caches (any mode) over one store location per test; closes them after."""
    opened: list[seedcache.SeedCache] = []

    def factory(mode: str = "auto", **options: object) -> seedcache.SeedCache:
        if store_kind == "cassette":
            cache = seedcache.SeedCache.cassette(store_location, mode=mode, **options)
        elif store_kind == "memory":
            cache = seedcache.SeedCache(store=open_store(), mode=mode, **options)  # type: ignore[arg-type]
        else:
            cache = seedcache.SeedCache(store_location, mode=mode, **options)  # type: ignore[arg-type]
        opened.append(cache)
        return cache

    yield factory
    for cache in opened:
        cache.close()


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    """Clients made by :func:`make_client` are closed after each test.

    ``wrap()`` sends misses through the wrapped client's own connection pool, which stays
    the user's to close; an unclosed socket would be a ResourceWarning, and an error.
    """
    yield
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()
