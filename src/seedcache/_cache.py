"""SeedCache: the object users hold. Opens a store, picks the mode, wraps clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from . import _settings as settings
from ._clients._upstream import Upstreams
from ._errors import CacheMiss, ConfigurationError, StoreError
from ._request._backends import BackendChange, Backends
from ._request._config import Clock, CoreConfig
from ._request._core import Core
from ._request._freshness import RefreshRules, parse_pins
from ._request._keys import DEFAULT_MATCH_HEADERS, shared_key_config
from ._request._modes import Mode, resolve_mode
from ._request._session import Stats
from ._stores import CassetteStore, Store, open_store
from ._stores._counters import COUNTERS_META, add_counters
from ._stores._registry import Registry
from ._takes._take import Entry
from ._takes._usage import TokenUsage
from ._units import parse_duration

__all__ = ["DEFAULT_DIR", "DEFAULT_UPSTREAM", "SeedCache"]

DEFAULT_DIR = ".seedcache"
DEFAULT_UPSTREAM = "https://api.openai.com/v1"

if TYPE_CHECKING:
    from ._inspect._drift import DeterminismSummary, TakeDiff, TakeRef
    from ._inspect._fingerprints import FingerprintStatus
    from ._inspect._savings import Savings
    from ._serve import Proxy

ClientT = TypeVar("ClientT")

_log = logging.getLogger("seedcache")


class SeedCache:
    """A record-and-replay cache for OpenAI API calls.

    >>> import openai, seedcache
    >>> cache = seedcache.SeedCache(".seedcache")             # doctest: +SKIP
    >>> client = cache.wrap(openai.OpenAI())                  # doctest: +SKIP

    ``directory`` is a cache directory or a Redis URL (``redis://host:6379/0``, shared by
    every machine that can reach it); it defaults to ``$SEEDCACHE_DIR``, else
    ``.seedcache``. ``mode`` defaults to ``$SEEDCACHE_MODE``, else ``"auto"``. A ``store``
    given explicitly replaces the directory. ``match_host=False`` ignores scheme and host
    in keys, so recordings made against one base URL replay against another; ``ignore``
    leaves body fields out of the key (``["user", "metadata"]``; dotted paths reach nested
    fields, ``*`` every item), while takes still show the request as sent;
    ``secret_params`` adds query parameter names that carry credentials to the built-in
    list (``api-key``, ``code``, ``sig``, ``access_token`` …): they are never keyed or
    stored; ``match_headers`` lists request headers that change the answer;
    ``namespace`` separates otherwise equal keys; ``strict`` makes replay fail on a repeat
    beyond the recorded takes. ``repeats`` (or ``$SEEDCACHE_REPEATS``) is ``"takes"``: the
    n-th identical request of a session replays take n, as tests want; or ``"first"``:
    every repeat replays the first take, as a notebook cell run again wants.
    ``miss_advice`` is the last line of every :class:`CacheMiss` (how to record what
    was missing), a string or a function asked only when a miss happens.

    In ``refresh`` mode a take is replayed only while the backend that answered it (its
    dated model and fingerprint) is still served. The first request for each model in a
    run goes live to learn what the model serves now; a recording whose backend is
    unchanged is kept and replayed, any other is re-fetched and replaced. ``backends``
    shares what a run learned between caches (one live call per model for all of them);
    what was learned holds for ``fingerprint_window`` (an hour), then the next request
    learns again. ``fingerprints`` (or ``$SEEDCACHE_FINGERPRINTS``) pins the current
    fingerprints instead, with no live call. ``max_age`` (or ``$SEEDCACHE_MAX_AGE``, e.g.
    ``"30d"``) re-fetches any take older than that. ``history_limit`` bounds the replaced
    takes kept per key.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        mode: str | Mode | None = None,
        store: Store | None = None,
        match_host: bool = True,
        ignore: Sequence[str] = (),
        secret_params: Sequence[str] = (),
        match_headers: Sequence[str] = DEFAULT_MATCH_HEADERS,
        namespace: str | None = None,
        strict: bool = False,
        history_limit: int = 5,
        fingerprints: str | Iterable[str] | None = None,
        fingerprint_window: str | timedelta = timedelta(hours=1),
        fingerprint_max_age: str | timedelta | None = None,
        max_age: str | timedelta | None = None,
        backends: Backends | None = None,
        repeats: str | None = None,
        miss_advice: str | Callable[[], str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        resolved = resolve_mode(mode)
        repeats = _checked_repeats(repeats or settings.repeats() or "takes")
        if history_limit < 0:
            raise ConfigurationError(f"history_limit must be 0 or more, not {history_limit}")
        if store is None:
            store = open_store(directory or settings.directory() or DEFAULT_DIR)
        elif directory is not None:
            raise ConfigurationError("give either a directory or a store, not both")
        self._store = store
        if fingerprint_max_age is not None:
            warnings.warn(
                "fingerprint_max_age no longer has an effect: refresh learns what each model "
                "serves from a live call in every run; drop the argument",
                DeprecationWarning,
                stacklevel=2,
            )
        if backends is None:
            hold = parse_duration(fingerprint_window, name="fingerprint_window")
            backends = Backends(hold=hold, clock=clock)
        self._rules = RefreshRules(
            Registry(store),
            clock=clock,
            backends=backends,
            pins=parse_pins(fingerprints),
            max_age=max_age,
        )
        self._saved_counters: dict[str, int] = {}
        # HTTP clients made by wrap(), each with whether it is async: ours to close.
        self._http_clients: list[tuple[Any, bool]] = []
        # Transports for live requests of clients that bring none, built on first use.
        self._upstreams = Upstreams()
        config = CoreConfig(
            store,
            mode=resolved,
            key_config=shared_key_config(
                match_host=match_host,
                match_headers=match_headers,
                namespace=namespace,
                ignore=ignore,
                secret_params=secret_params,
            ),
            rules=self._rules,
            strict=strict,
            history_limit=history_limit,
            clock=clock,
            count_repeats=repeats == "takes",
        )
        if miss_advice is not None:
            advice = miss_advice
            config = replace(config, miss_advice=advice if callable(advice) else lambda: advice)
        self._core = Core(config)

    @classmethod
    def cassette(
        cls, path: str | os.PathLike[str], *, mode: str | Mode | None = None, **options: Any
    ) -> SeedCache:
        """A cache over one cassette file (readable JSON, made to be committed).

        >>> with SeedCache.cassette("cassettes/story.json", mode="replay") as cache:
        ...     client = cache.wrap(openai.OpenAI(api_key="unused"))  # doctest: +SKIP
        """
        location = path if isinstance(path, Path) else Path(path)
        try:
            store = CassetteStore(location)
        except StoreError:
            # Told apart only when opening failed: one system call less for every test.
            if location.is_dir():
                raise ConfigurationError(
                    f"cassette path {str(location)!r} is a directory; give a .json file path"
                ) from None
            raise
        return cls(mode=mode, store=store, **options)

    @property
    def mode(self) -> Mode:
        """The mode every request of this cache is handled in."""
        return self._core.mode

    @property
    def store(self) -> Store:
        """Where entries live."""
        return self._store

    def stats(self, *, priced: bool = True) -> Stats:
        """A snapshot of what the cache did since it was opened, with what replays saved.

        ``priced=False`` leaves ``cost_saved_usd`` None and never loads the price list
        (a fraction of a second, once per process): for callers that price
        :meth:`replayed_usage` later, once, as the pytest plugin does for a whole run.
        """
        counters = self._core.session.stats.as_dict()
        if not priced:
            tokens = sum(usage.total * times for _, usage, times in self.replayed_usage())
            return Stats(**counters, tokens_saved=tokens)
        saved = self.savings()
        return Stats(**counters, tokens_saved=saved.tokens, cost_saved_usd=saved.cost_usd)

    def backend_changes(self) -> dict[BackendChange, int]:
        """The backend changes ``refresh`` met so far (``gpt-4o-mini: fp_a → fp_b``), with
        how many takes each replaced, most first."""
        counted = self._core.session.backend_changes()
        return dict(sorted(counted.items(), key=lambda item: -item[1]))

    def savings(self) -> Savings:
        """What this cache's replays saved, per model, and which models have no known price."""
        from ._inspect._savings import savings_of

        return savings_of(self.replayed_usage())

    def replayed_usage(self) -> list[tuple[str, TokenUsage, int]]:
        """``(model, usage, times)`` for every take replayed that reported its token usage:
        what :meth:`savings` prices."""
        return [(m, usage, n) for m, usage, n in self._core.session.replays() if usage is not None]

    @property
    def missed(self) -> tuple[CacheMiss, ...]:
        """Every :class:`CacheMiss` raised so far, even those the calling code swallowed."""
        return tuple(self._core.session.missed())

    def consumed(self) -> dict[str, int]:
        """How many takes of each key this cache was asked for (repeats counted)."""
        return self._core.session.consumed()

    def unused(self) -> list[tuple[str, list[int]]]:
        """Recorded takes this cache was never asked for: ``(key, take indices)`` pairs.

        After a test ran its course, these are what it no longer uses.
        """
        from ._inspect._catalog import Catalog

        return Catalog(self._store).unused(self.consumed())

    def entry(self, key: str) -> Entry:
        """The entry for ``key`` or a unique prefix of it.

        Raises :class:`NotFoundError` (or :class:`AmbiguousKeyError`) when none (or several)
        match.
        """
        from ._inspect._prefixes import find_entry

        return find_entry(self._store, key)

    def diff(self, key: str, a: TakeRef | None = None, b: TakeRef | None = None) -> TakeDiff:
        """A word-level diff of two takes of ``key`` (a unique prefix is enough).

        Takes are named ``0``, ``1``, ... in replay order and ``"h0"``, ``"h1"``, ... for
        replaced takes kept as history, newest first. Without ``a`` and ``b``: the most
        recently replaced take against the newest take, or takes 0 and 1.
        """
        from ._inspect._drift import diff_entry

        return diff_entry(self.entry(key), a, b)

    def determinism(self) -> DeterminismSummary:
        """For seeded requests recorded more than once: how often the outputs agreed."""
        from ._inspect._catalog import Catalog

        return Catalog(self._store).determinism()

    def fingerprints(self) -> list[FingerprintStatus]:
        """Per model, each fingerprint seen live or recorded, and whether it is current."""
        from ._inspect._catalog import Catalog

        return Catalog(self._store).fingerprints(self._rules)

    @property
    def location(self) -> str:
        """Where the store keeps its data (a directory or a cassette file)."""
        return self._store.location

    def wrap(self, client: ClientT, *, transport: Any = None) -> ClientT:
        """A copy of an SDK client whose calls go through the cache: ``openai.OpenAI`` /
        ``AsyncOpenAI`` (and Azure's), ``anthropic.Anthropic`` / ``AsyncAnthropic`` (and
        the Bedrock and Vertex variants), ``google.genai.Client`` (``.aio`` included).

        The original client is left alone, and what was configured on its HTTP client is
        kept: misses go through that client's transport (proxies, mounts, ``verify``,
        ``cert``, limits), and its headers, params, cookies, timeout, auth, redirects and
        event hooks apply to every call, replays included. ``transport`` replaces the
        transport misses go through (it is closed with the copy). Nothing is built
        upstream until a request must go live.
        """
        from ._clients._wrap import wrap_client

        wrapped, http_clients = wrap_client(self._core, client, transport, self._upstreams)
        self._http_clients.extend(http_clients)
        return wrapped

    @contextlib.contextmanager
    def proxy(
        self,
        upstream: str = DEFAULT_UPSTREAM,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        repeats: str = "first",
        transport: Any = None,
        allow_hosts: Iterable[str] = (),
        max_body_bytes: int = 64 * 1024 * 1024,
        header_timeout: float = 10.0,
    ) -> Iterator[str]:
        """Serve this cache as an OpenAI-compatible proxy on a background thread.

        Yields the base URL to give any client (``OPENAI_BASE_URL``); stops on exit.
        ``repeats="first"`` replays take 0 to every identical request, as a shared
        gateway should; ``"takes"`` maps the n-th identical request to take n, as
        :meth:`wrap` does. ``transport`` is the async transport that fetches misses
        (default: httpx2's, or httpx's). On loopback the proxy answers only requests whose
        Host is a loopback name, against DNS rebinding; ``allow_hosts`` adds names. A
        ``host`` other machines can reach warns (:class:`ExposedProxyWarning`). A request
        body over ``max_body_bytes`` (64 MiB) is refused with 413, unread; a connection
        that has not sent a whole request head within ``header_timeout`` seconds is
        closed. Needs ``pip install 'seedcache[serve]'``.

        >>> with cache.proxy("https://api.openai.com/v1") as base_url:  # doctest: +SKIP
        ...     os.environ["OPENAI_BASE_URL"] = base_url
        """
        server = self.proxy_server(
            upstream,
            host=host,
            port=port,
            repeats=repeats,
            transport=transport,
            allow_hosts=allow_hosts,
            max_body_bytes=max_body_bytes,
            header_timeout=header_timeout,
        )
        with server.background() as url:
            yield url

    def proxy_server(
        self,
        upstream: str = DEFAULT_UPSTREAM,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        repeats: str = "first",
        transport: Any = None,
        allow_hosts: Iterable[str] = (),
        max_body_bytes: int = 64 * 1024 * 1024,
        header_timeout: float = 10.0,
    ) -> Proxy:
        """The proxy bound to its socket, not yet serving (``.run()`` serves until a signal)."""
        from ._serve import Proxy

        core = self._core.sibling(count_repeats=_checked_repeats(repeats) == "takes")
        # Closed by the proxy when it stops, in the event loop that used it.
        return Proxy(
            core,
            upstream=upstream,
            host=host,
            port=port,
            transport=transport,
            allow_hosts=allow_hosts,
            max_body_bytes=max_body_bytes,
            header_timeout=header_timeout,
        )

    def transport(
        self, next_transport: Any = None, *, library: str | None = None, keep_alive: bool = True
    ) -> Any:
        """A sync transport for any httpx2 (or ``library="httpx"``) client.

        ``library`` defaults to the one the installed SDK uses. Misses go to
        ``next_transport`` (closed with this transport), else to a transport the cache
        builds on the first live request, shares, and closes with the cache.
        ``keep_alive=False`` makes that shared transport close each connection after its
        response: for async clients whose event loop ends before anyone could close them
        (a test's ``asyncio.run``). The HTTP client built on the transport is yours to
        close; it holds nothing of the cache's.
        """
        return self._transport(next_transport, library, is_async=False, keep_alive=keep_alive)

    def async_transport(
        self, next_transport: Any = None, *, library: str | None = None, keep_alive: bool = True
    ) -> Any:
        """The async twin of :meth:`transport`."""
        return self._transport(next_transport, library, is_async=True, keep_alive=keep_alive)

    def _transport(
        self, next_transport: Any, library: str | None, *, is_async: bool, keep_alive: bool
    ) -> Any:
        from ._clients._wrap import make_transport, sdk_library

        library = library or sdk_library()
        shared = next_transport is None
        if shared:
            next_transport = self._upstreams.get(library, is_async=is_async, keep_alive=keep_alive)
        return make_transport(
            self._core,
            library=library,
            is_async=is_async,
            next_transport=next_transport,
            close_next=not shared,
        )

    def close(self) -> None:
        """Close the HTTP clients made by :meth:`wrap` and the transports the cache built,
        then the store. Recorded takes are already on disk.

        Async clients are closed on an event loop of their own, in a thread: from sync
        code the loop that used them is usually gone (a test's ``asyncio.run``). Inside a
        running loop, ``await cache.aclose()`` closes them on that loop instead.
        """
        async_clients = [client for client, is_async in self._http_clients if is_async]
        for http_client, is_async in self._http_clients:
            if not is_async:
                http_client.close()
        self._http_clients = []
        pending = self._upstreams.close()
        if async_clients or pending:
            _close_on_own_loop([*async_clients, *pending])
        self._save_counters()
        self._store.close()

    async def aclose(self) -> None:
        """Close every HTTP client made by :meth:`wrap`, sync and async, then the store."""
        for http_client, is_async in self._http_clients:
            if is_async:
                await http_client.aclose()
            else:
                http_client.close()
        self._http_clients = []
        await self._upstreams.aclose()
        self._save_counters()
        self._store.close()

    def _save_counters(self) -> None:
        """Add what this cache did since the last save to the store's running totals."""
        capabilities = self._store.capabilities
        if not capabilities.running_totals or not capabilities.writable:
            return
        from ._inspect._savings import as_counters

        current = {**self._core.session.stats.as_dict(), **as_counters(self.savings())}
        delta = {name: value - self._saved_counters.get(name, 0) for name, value in current.items()}
        if not any(delta.values()):
            return
        try:
            self._store.update_meta(COUNTERS_META, lambda raw: add_counters(raw, delta))
        except StoreError as exc:
            # A read-only cache still replays; only the running totals miss this session.
            _log.warning("could not save counters to %s: %s", self.location, exc)
            return
        self._saved_counters = current

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SeedCache mode={self.mode.value!r} store={self._store.location!r}>"


def _checked_repeats(repeats: str) -> str:
    if repeats not in ("first", "takes"):
        raise ConfigurationError(f"repeats must be 'first' or 'takes', not {repeats!r}")
    return repeats


def _close_on_own_loop(closables: list[Any]) -> None:
    """``aclose()`` each of ``closables`` on a new event loop in a thread of its own (the
    caller's thread may be running a loop). A connection bound to a loop that is gone
    may fail to close; it is dropped with its loop, and the rest still close."""

    async def close_all() -> None:
        for closable in closables:
            try:
                await closable.aclose()
            except Exception as exc:
                _log.debug("could not close %r on a new event loop: %s", closable, exc)

    thread = threading.Thread(target=asyncio.run, args=(close_all(),), name="seedcache-close")
    thread.start()
    thread.join()
