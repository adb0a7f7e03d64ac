"""The pytest plugin: one cassette per test, replay-only unless asked, no network by surprise.

Registered through the ``pytest11`` entry point, so installing seedcache is enough.

- ``seedcache`` fixture: a :class:`SeedCache` over
  ``cassettes/<test file path>/<test name>.json``; ``openai_client`` /
  ``async_openai_client``: SDK clients already wrapped; ``seedcache_proxy``: the proxy on
  loopback with ``OPENAI_BASE_URL`` set, for code that builds its own client.
- Options merge field by field, closest first: ``--seedcache-mode``, markers (function,
  class, module, conftest-added), the ``seedcache_config`` fixture, ini options.
  ``SEEDCACHE_MODE`` is ignored here on purpose: a variable left set for development must
  not make a test suite spend money.
- A miss fails the test with a short message, even when the code under test swallowed
  the exception, and says the command that records it.

Importing this module must stay cheap: every pytest run in a project that has seedcache
installed loads it, whether or not a test uses it. The core is imported by the fixtures.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .._request._modes import Mode
from ._options import OptionError, merged_options
from ._paths import default_cassette, legacy_cassette, unhashed_cassette
from ._report import (
    CHANGES_PROPERTY,
    CONSUMED_PROPERTY,
    STATS_PROPERTY,
    USAGE_PROPERTY,
    Reporter,
    miss_text,
    short_miss,
)
from ._run import CassetteRun

if TYPE_CHECKING:
    from .._cache import SeedCache

__all__ = ["CassetteRun"]

# The SDKs refuse to build a client without a key; replays need none, so tests get this.
_PLACEHOLDER_KEY = "sk-seedcache-replay-no-key"
_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


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
        "--seedcache-fail-on-drift",
        action="store_true",
        default=False,
        help="Exit 1 when refresh found any output changed (tests still pass, and the "
        "refreshed recordings are kept).",
    )
    group.addoption(
        "--seedcache-prune-unused",
        action="store_true",
        default=False,
        help="After a run of every test that passed, remove recorded entries no test used "
        "(refused on -k, -m or node-id runs: the unselected tests' entries look unused).",
    )
    group.addoption(
        "--seedcache-report-unused",
        action="store_true",
        default=False,
        help="List recorded takes that no test of the run asked for.",
    )
    parser.addini("seedcache_dir", "Where cassettes live, from the rootdir.", default="cassettes")
    parser.addini("seedcache_mode", "Mode when --seedcache-mode is not given.", default="replay")
    parser.addini(
        "seedcache_match_host",
        "Whether the scheme and host of the URL are part of a request's key (default true; "
        "false replays recordings made against another base URL).",
        type="bool",
        default=True,
    )
    parser.addini(
        "seedcache_ignore",
        "Request body fields left out of keys, as dotted paths (e.g. user metadata).",
        type="args",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "seedcache(cassette=None, mode=None, **options): the cassette file, mode and "
        "SeedCache options for this test; closer markers win field by field",
    )
    config.pluginmanager.register(Reporter(config), "seedcache-reporter")


@pytest.fixture
def seedcache_config() -> dict[str, Any]:
    """Defaults for the tests of a directory: override it in a ``conftest.py``.

    Returns options as a marker takes them (``cassette``, ``mode``, ``match_host``,
    ``ignore``, …); markers on a test, its class or module win over these.
    """
    return {}


def _run_for(request: pytest.FixtureRequest, defaults: dict[str, Any]) -> CassetteRun:
    item = request.node
    existing: CassetteRun | None = item.stash.get(_RUN, None)
    if existing is not None:
        return existing
    config = request.config
    problem: str | None = None
    try:
        options = merged_options(item, defaults)
    except OptionError as exc:
        problem = str(exc)
    if problem is not None:  # failed outside the except block: one message, not two
        pytest.fail(f"seedcache: {problem}", pytrace=False)
    marker_mode = options.pop("mode", None)
    mode_text = (
        config.getoption("--seedcache-mode") or marker_mode or config.getini("seedcache_mode")
    )
    from .._errors import ConfigurationError

    try:
        mode = Mode.parse(mode_text)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"seedcache: {exc}") from None
    options.setdefault("match_host", config.getini("seedcache_match_host"))
    options.setdefault("ignore", list(config.getini("seedcache_ignore")))
    cassette = options.pop("cassette", None)
    options.setdefault("backends", _session_backends(config))
    base = _cassette_dir(config)
    if cassette is not None:
        path = base / str(cassette)
        # A marker must not read or write outside the cassette directory.
        if not _inside(config, path, base):
            pytest.fail(
                f"seedcache: cassette {cassette!r} is outside {base}; give a path inside it",
                pytrace=False,
            )
        run = CassetteRun(path=path, mode=mode, options=options, nodeid=item.nodeid, shared=True)
    else:
        path = default_cassette(item, base, config.rootpath)
        # A folder on the way may be a symbolic link out: never write through it.
        if not _inside(config, path, base):
            pytest.fail(
                f"seedcache: the cassette {path} is outside {base} (a symbolic link on the "
                "way leads elsewhere); remove the link or name a cassette inside it",
                pytrace=False,
            )
        run = CassetteRun(
            path=path,
            mode=mode,
            options=options,
            nodeid=item.nodeid,
            older_path=functools.partial(_older_cassette, item, base, config.rootpath, path),
        )
    item.stash[_RUN] = run
    return run


def _cassette_dir(config: pytest.Config) -> Path:
    """The run's cassette directory (worked out once: every test asks)."""
    base = config.stash.get(_CASSETTE_DIR, None)
    if base is None:
        base = config.stash[_CASSETTE_DIR] = config.rootpath / config.getini("seedcache_dir")
    return base


def _inside(config: pytest.Config, path: Path, base: Path) -> bool:
    """Whether ``path``, links followed, is inside ``base``.

    What is known of a folder (where it leads, whether that is inside ``base``) is
    worked out once per run: tests of a module share their folder, resolving walks every
    component of the path with a system call each, and a suite asks once per test. Each
    test then costs one ``lstat`` of its own file.
    """
    known = config.stash.setdefault(_FOLDERS, {})
    if base not in known:
        known[base] = (base.resolve(), True)
    root = known[base][0]
    if path.parent not in known:
        resolved = path.parent.resolve()
        known[path.parent] = (resolved, resolved.is_relative_to(root))
    folder, folder_inside = known[path.parent]
    name = path.name
    # Joined as text: a Path join costs more than the lstat. islink is False for a name
    # too long for the system: opening it will say so.
    if name in ("", ".", "..") or os.path.islink(os.path.join(folder, name)):
        return path.resolve().is_relative_to(root)
    return folder_inside


def _older_cassette(item: pytest.Item, base: Path, rootpath: Path, path: Path) -> Path:
    """Where an older seedcache kept this test's cassette, for a miss to point at."""
    unhashed = unhashed_cassette(item, base, rootpath)
    return unhashed if unhashed != path else legacy_cassette(item, base)


def _session_backends(config: pytest.Config) -> Any:
    """What this session (this xdist worker) learned of each model's backend: one check
    per model for every cassette of the run."""
    backends = config.stash.get(_BACKENDS, None)
    if backends is None:
        from .._request._backends import Backends

        backends = config.stash[_BACKENDS] = Backends()
    return backends


_BACKENDS = pytest.StashKey[Any]()
_CASSETTE_DIR = pytest.StashKey[Path]()
_FOLDERS = pytest.StashKey[dict[Path, tuple[Path, bool]]]()
"""Folders as resolved, each with whether it is inside the cassette directory."""
_RUN = pytest.StashKey[CassetteRun]()
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.fixture
def seedcache(
    request: pytest.FixtureRequest, seedcache_config: dict[str, Any]
) -> Iterator[SeedCache]:
    """A SeedCache over this test's cassette, in the mode the run asks for."""
    run = _run_for(request, seedcache_config)
    from .._errors import SeedCacheError

    problem: str | None = None
    try:
        cache = run.open()
    except (SeedCacheError, TypeError) as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(f"seedcache: cannot open {run.path}: {problem}", pytrace=False)
    # `seedcache.wrap(openai.OpenAI())` builds the client first, and the SDKs refuse to
    # without a key; a replay sends none, so a clean CI needs none.
    placed = _place_keys() if run.mode is Mode.REPLAY else []
    try:
        yield cache
    finally:
        _remove_keys(placed)
    _after_test(request, run)


def _place_keys() -> list[tuple[str, str | None]]:
    """Set the placeholder key in every key variable that is unset or empty; what each
    held before, for :func:`_remove_keys` (by hand: a MonkeyPatch costs more per test)."""
    placed: list[tuple[str, str | None]] = []
    for variable in _KEY_VARIABLES:
        before = os.environ.get(variable)
        if not before:
            placed.append((variable, before))
            os.environ[variable] = _PLACEHOLDER_KEY
    return placed


def _remove_keys(placed: list[tuple[str, str | None]]) -> None:
    """Put every variable :func:`_place_keys` set back as it was."""
    for variable, before in placed:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


def _counters(cache: SeedCache) -> dict[str, int]:
    """The test's counters and the tokens its replays saved (integers: they cross processes)."""
    stats = cache.stats(priced=False)
    counters = stats.as_dict()
    counters["tokens_saved"] = stats.tokens_saved
    return counters


def _usage_rows(cache: SeedCache) -> list[list[Any]]:
    """What the test's replays used, unpriced: the run is priced once, at its end, where
    the summary is written (no worker loads the price list)."""
    return [
        [model, u.input, u.output, u.cached_input, u.cache_write_input, times]
        for model, u, times in cache.replayed_usage()
    ]


def _after_test(request: pytest.FixtureRequest, run: CassetteRun) -> None:
    item = request.node
    call_report = item.stash.get(_CALL_REPORT, None)
    passed = call_report is not None and call_report.passed
    cache = run.cache
    assert cache is not None
    item.user_properties.append((STATS_PROPERTY, _counters(cache)))
    usage = _usage_rows(cache)
    if usage:
        item.user_properties.append((USAGE_PROPERTY, usage))
    changes = cache.backend_changes()
    if changes:
        described = [[c.model, c.before, c.after, n] for c, n in changes.items()]
        item.user_properties.append((CHANGES_PROPERTY, described))
    config = request.config
    report_unused = config.getoption("--seedcache-report-unused") and run.mode is Mode.REPLAY
    if report_unused or config.getoption("--seedcache-prune-unused"):
        consumed = {"path": str(run.path), "consumed": cache.consumed()}
        item.user_properties.append((CONSUMED_PROPERTY, consumed))
    missed = cache.missed
    run.finish(passed=passed and not missed)
    # pytest keeps every item to the end of the session; the run (its options, paths and
    # a reference back to the item) is of no use past this point.
    del item.stash[_RUN]
    if missed and passed:
        # The code under test caught the CacheMiss; the test must not pass anyway.
        pytest.fail(
            f"{len(missed)} request(s) had no recorded response, though the code under test "
            f"swallowed the error:\n\n{missed[0]}",
            pytrace=False,
        )


def _api_key(variable: str = "OPENAI_API_KEY") -> str:
    return os.environ.get(variable) or _PLACEHOLDER_KEY


def _library_of(http_client_class: type) -> str:
    """``httpx2`` or ``httpx``: the family an SDK's HTTP client class belongs to."""
    roots = [cls.__module__.split(".")[0] for cls in http_client_class.__mro__]
    return "httpx2" if "httpx2" in roots else "httpx"


@pytest.fixture
def openai_client(seedcache: SeedCache) -> Iterator[Any]:
    """An ``openai.OpenAI`` client whose calls go through this test's cassette.

    Built on the cache's transport directly: no SSL context, connection pool or socket
    exists unless a request goes live.
    """
    import openai

    http_client = openai.DefaultHttpxClient(transport=seedcache.transport())
    yield openai.OpenAI(api_key=_api_key(), http_client=http_client)
    http_client.close()


@pytest.fixture
def async_openai_client(seedcache: SeedCache) -> Any:
    """An ``openai.AsyncOpenAI`` client whose calls go through this test's cassette."""
    import openai

    # The test's event loop is usually gone by teardown, so pooled connections could not
    # be closed; without keep-alive none stays open. The HTTP client then holds nothing
    # to close: the transport under it is the cache's, closed with the cache.
    transport = seedcache.async_transport(keep_alive=False)
    http_client = openai.DefaultAsyncHttpxClient(transport=transport)
    return openai.AsyncOpenAI(api_key=_api_key(), http_client=http_client)


@pytest.fixture
def anthropic_client(seedcache: SeedCache) -> Iterator[Any]:
    """An ``anthropic.Anthropic`` client whose calls go through this test's cassette
    (``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` apply; no key needed to replay)."""
    import anthropic

    library = _library_of(anthropic.DefaultHttpxClient)
    http_client = anthropic.DefaultHttpxClient(transport=seedcache.transport(library=library))
    yield anthropic.Anthropic(api_key=_api_key("ANTHROPIC_API_KEY"), http_client=http_client)
    http_client.close()


@pytest.fixture
def async_anthropic_client(seedcache: SeedCache) -> Any:
    """An ``anthropic.AsyncAnthropic`` client through this test's cassette."""
    import anthropic

    library = _library_of(anthropic.DefaultAsyncHttpxClient)
    transport = seedcache.async_transport(library=library, keep_alive=False)
    http_client = anthropic.DefaultAsyncHttpxClient(transport=transport)
    return anthropic.AsyncAnthropic(api_key=_api_key("ANTHROPIC_API_KEY"), http_client=http_client)


@pytest.fixture
def genai_client(seedcache: SeedCache) -> Iterator[Any]:
    """A ``google.genai.Client`` (``.aio`` too) through this test's cassette. Given httpx
    clients, the SDK uses them even where aiohttp is installed. ``GEMINI_API_KEY`` (or
    ``GOOGLE_API_KEY``) applies; the base URL comes from ``GOOGLE_GEMINI_BASE_URL``."""
    import importlib

    from google import genai
    from google.genai import types

    library = "httpx2" if importlib.util.find_spec("httpx2") else "httpx"
    lib = importlib.import_module(library)
    sync_http = lib.Client(transport=seedcache.transport(library=library))
    async_http = lib.AsyncClient(
        transport=seedcache.async_transport(library=library, keep_alive=False)
    )
    options = types.HttpOptions(
        base_url=os.environ.get("GOOGLE_GEMINI_BASE_URL") or None,
        httpx_client=sync_http,
        httpx_async_client=async_http,
    )
    key = os.environ.get("GEMINI_API_KEY") or _api_key("GOOGLE_API_KEY")
    yield genai.Client(api_key=key, http_options=options)
    sync_http.close()


@pytest.fixture
def seedcache_proxy(seedcache: SeedCache, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The record/replay proxy for this test's cassette, with ``OPENAI_BASE_URL`` set to it.

    Code that builds its own ``OpenAI()`` is recorded and replayed without changes. The
    upstream is the ``OPENAI_BASE_URL`` the test started with, else the OpenAI API.
    """
    from .._cache import DEFAULT_UPSTREAM

    upstream = os.environ.get("OPENAI_BASE_URL") or DEFAULT_UPSTREAM
    with seedcache.proxy(upstream, repeats="takes") as base_url:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", _api_key())
        yield base_url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
        run = item.stash.get(_RUN, None)
        excinfo = call.excinfo
        text = None if run is None or excinfo is None else miss_text(excinfo.value)
        if text is not None and excinfo is not None:
            # The miss says all there is to say; httpx and SDK frames would bury it.
            report.longrepr = short_miss(text, excinfo, item.nodeid)
    return report
