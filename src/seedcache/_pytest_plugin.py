"""The pytest plugin: one cassette per test, replay-only unless asked, no network by surprise.

Registered through the ``pytest11`` entry point, so installing seedcache is enough.

- ``seedcache`` fixture: a :class:`SeedCache` over ``cassettes/<module>/<test>.json``;
  ``openai_client`` / ``async_openai_client``: SDK clients already wrapped;
  ``seedcache_proxy``: the proxy on loopback with ``OPENAI_BASE_URL`` set, for code that
  builds its own client.
- Mode: ``--seedcache-mode`` beats ``@pytest.mark.seedcache(mode=...)`` beats the
  ``seedcache_mode`` ini option beats ``replay``. ``SEEDCACHE_MODE`` is ignored here on
  purpose: a variable left set for development must not make a test suite spend money.
- A miss fails the test, even when the code under test swallowed the exception, and says
  the command that records it.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import _wrap
from ._cache import DEFAULT_UPSTREAM, SeedCache
from ._errors import CacheMiss, ConfigurationError
from ._modes import Mode

__all__ = ["CassetteRun"]

_STATS_PROPERTY = "seedcache"
_UNUSED_PROPERTY = "seedcache-unused"
# The SDK refuses to build a client without a key; replays need none, so tests get this.
_PLACEHOLDER_KEY = "sk-seedcache-replay-no-key"
_UNSAFE_NAME_CHARACTERS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seedcache", "record and replay OpenAI API calls")
    group.addoption(
        "--seedcache-mode",
        choices=[m.value for m in Mode],
        default=None,
        help="replay (default: offline, a miss fails), auto, record (rewrite cassettes) "
        "or refresh. Beats markers and ini.",
    )
    group.addoption(
        "--seedcache-report-unused",
        action="store_true",
        default=False,
        help="List recorded takes that tests no longer use.",
    )
    parser.addini("seedcache_dir", "Where cassettes live, from the rootdir.", default="cassettes")
    parser.addini("seedcache_mode", "Mode when --seedcache-mode is not given.", default="replay")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "seedcache(cassette=None, mode=None, **options): the cassette file, mode and "
        "SeedCache options for this test",
    )
    config.pluginmanager.register(_Reporter(config), "seedcache-reporter")


@dataclass
class CassetteRun:
    """One test's cassette: where it is, the mode, and the cache once opened."""

    path: Path
    mode: Mode
    options: dict[str, Any]
    nodeid: str
    cache: SeedCache | None = None
    _recording_path: Path | None = None

    def open(self) -> SeedCache:
        """The cache for this test (opened once)."""
        if self.cache is None:
            target = self.path
            if self.mode is Mode.RECORD:
                # Record into a fresh file and swap it in at the end: no stale takes, and
                # a test that fails halfway leaves the previous cassette intact.
                self._recording_path = self.path.with_name(f".{self.path.name}.recording")
                self._recording_path.unlink(missing_ok=True)
                target = self._recording_path
            self.cache = SeedCache.cassette(target, mode=self.mode, **self.options)
        return self.cache

    def finish(self, *, passed: bool) -> None:
        """Close the cache; in record mode, put the new cassette in place if the test passed."""
        if self.cache is None:
            return
        _close(self.cache)
        if self._recording_path is not None:
            if passed and self._recording_path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._recording_path, self.path)
            else:
                self._recording_path.unlink(missing_ok=True)

    def record_command(self) -> str:
        """The command that records this test's cassette."""
        return f"pytest --seedcache-mode=auto '{self.nodeid}'"


def _close(cache: SeedCache) -> None:
    """Close sync and async clients alike; the event loop that made them may be gone."""
    errors: list[BaseException] = []

    def close_async() -> None:
        try:
            asyncio.run(cache.aclose())
        except Exception as exc:  # a loop-bound connection from a closed loop
            errors.append(exc)

    # A thread of its own: the test's event loop may still be running in this one.
    thread = threading.Thread(target=close_async)
    thread.start()
    thread.join()
    if errors:
        cache.close()


def _cassette_path(item: pytest.Item, root: Path, directory: str) -> Path:
    module = Path(str(item.path)).stem if hasattr(item, "path") else "tests"
    parts = item.nodeid.split("::")[1:]
    name = _UNSAFE_NAME_CHARACTERS.sub("_", ".".join(parts)) or item.name
    return root / directory / module / f"{name}.json"


def _run_for(request: pytest.FixtureRequest) -> CassetteRun:
    item = request.node
    existing: CassetteRun | None = item.stash.get(_RUN, None)
    if existing is not None:
        return existing
    config = request.config
    marker = item.get_closest_marker("seedcache")
    options = dict(marker.kwargs) if marker is not None else {}
    marker_mode = options.pop("mode", None)
    cassette = options.pop("cassette", None)
    mode_text = (
        config.getoption("--seedcache-mode") or marker_mode or config.getini("seedcache_mode")
    )
    try:
        mode = Mode.parse(mode_text)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"seedcache: {exc}") from None
    root = config.rootpath
    if cassette is not None:
        base = root / config.getini("seedcache_dir")
        path = base / str(cassette)
        # A marker must not read or write outside the cassette directory.
        if not path.resolve().is_relative_to(base.resolve()):
            pytest.fail(
                f"seedcache: cassette {cassette!r} is outside {base}; give a path inside it",
                pytrace=False,
            )
    else:
        path = _cassette_path(item, root, config.getini("seedcache_dir"))
    run = CassetteRun(path=path, mode=mode, options=options, nodeid=item.nodeid)
    item.stash[_RUN] = run
    return run


_RUN = pytest.StashKey[CassetteRun]()


@pytest.fixture
def seedcache(request: pytest.FixtureRequest) -> Iterator[SeedCache]:
    """A SeedCache over this test's cassette, in the mode the run asks for."""
    run = _run_for(request)
    cache = run.open()
    yield cache
    _after_test(request, run)


def _after_test(request: pytest.FixtureRequest, run: CassetteRun) -> None:
    item = request.node
    call_report = item.stash.get(_CALL_REPORT, None)
    passed = call_report is not None and call_report.passed
    cache = run.cache
    assert cache is not None
    stats = cache.stats().as_dict()
    item.user_properties.append((_STATS_PROPERTY, stats))
    if request.config.getoption("--seedcache-report-unused") and run.mode is Mode.REPLAY:
        unused = [f"{run.path}: key {key} takes {takes}" for key, takes in cache.unused()]
        item.user_properties.append((_UNUSED_PROPERTY, unused))
    missed = cache.missed
    run.finish(passed=passed and not missed)
    if missed and passed:
        # The code under test caught the CacheMiss; the test must not pass anyway.
        pytest.fail(
            f"{len(missed)} request(s) had no recorded response, though the code under test "
            f"swallowed the error:\n\n{missed[0]}\n\nrecord it with: {run.record_command()}",
            pytrace=False,
        )


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def _api_key(run: CassetteRun) -> str:
    key = os.environ.get("OPENAI_API_KEY")
    if run.mode is Mode.REPLAY or not key:
        return key or _PLACEHOLDER_KEY
    return key


@pytest.fixture
def openai_client(seedcache: SeedCache, request: pytest.FixtureRequest) -> Any:
    """An ``openai.OpenAI`` client whose calls go through this test's cassette."""
    import openai

    run = _run_for(request)
    return seedcache.wrap(openai.OpenAI(api_key=_api_key(run)))


@pytest.fixture
def async_openai_client(seedcache: SeedCache, request: pytest.FixtureRequest) -> Any:
    """An ``openai.AsyncOpenAI`` client whose calls go through this test's cassette."""
    import openai

    run = _run_for(request)
    # The test's event loop is usually gone by teardown, so pooled connections could not
    # be closed; without keep-alive none stays open.
    transport = _wrap.sdk_transport(is_async=True, keep_alive=False)
    return seedcache.wrap(openai.AsyncOpenAI(api_key=_api_key(run)), transport=transport)


@pytest.fixture
def seedcache_proxy(
    seedcache: SeedCache, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The record/replay proxy for this test's cassette, with ``OPENAI_BASE_URL`` set to it.

    Code that builds its own ``OpenAI()`` is recorded and replayed without changes. The
    upstream is the ``OPENAI_BASE_URL`` the test started with, else the OpenAI API.
    """
    run = _run_for(request)
    upstream = os.environ.get("OPENAI_BASE_URL") or DEFAULT_UPSTREAM
    with seedcache.proxy(upstream, repeats="takes") as base_url:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", _api_key(run))
        yield base_url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
        run = item.stash.get(_RUN, None)
        excinfo = call.excinfo
        if run is not None and excinfo is not None and _is_miss(excinfo.value):
            report.sections.append(
                (
                    "seedcache",
                    f"this request is not in {run.path}.\nrecord it with: {run.record_command()}",
                )
            )
    return report


def _is_miss(error: BaseException) -> bool:
    if isinstance(error, CacheMiss):
        return True
    # Through the proxy, the SDK sees a 404 whose body is the miss.
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    return headers is not None and headers.get("x-seedcache") == "miss"


class _Reporter:
    """Adds up every test's counters (from xdist workers too) and prints the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: dict[str, int] = {}
        self.unused: list[str] = []
        self.tests = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        # Counters travel in user_properties, which xdist sends from workers.
        for name, value in report.user_properties:
            if name == _STATS_PROPERTY and isinstance(value, dict):
                self.tests += 1
                for counter, count in value.items():
                    self.counts[counter] = self.counts.get(counter, 0) + int(count)
            elif name == _UNUSED_PROPERTY and isinstance(value, list):
                self.unused.extend(str(line) for line in value)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.tests:
            return
        counts = self.counts
        mode = self.config.getoption("--seedcache-mode") or self.config.getini("seedcache_mode")
        terminalreporter.write_line(
            f"seedcache: {counts.get('hits', 0)} hits, {counts.get('recorded', 0)} recorded, "
            f"{counts.get('refreshed', 0)} refreshed, {counts.get('misses', 0)} misses "
            f"in {self.tests} test(s) (mode {mode})"
        )
        if self.unused:
            terminalreporter.write_line(f"seedcache: {len(self.unused)} unused recording(s):")
            for line in self.unused:
                terminalreporter.write_line(f"  {line}")
