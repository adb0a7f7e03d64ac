"""Single flight: identical requests share one upstream call.

In one process, the first of several identical requests goes live and the others wait
for its :class:`Flight` to land. Across processes (and machines, for a networked store),
the store's leases do the same: :class:`LeaseKeeper` renews the leases this process holds
while their responses stream in, so a long stream keeps its claim.

A :class:`Session` is the state every core of one cache shares: counters, repeats, the
flights in the air and the leases held. The proxy's core is another view of the same
session, never a copy of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from .._errors import CacheMiss, StoreError
from .._inspect._savings import TokenUsage, usage_of
from .._stores import Lease, Store
from .._takes._take import Take

if TYPE_CHECKING:
    from ._backends import BackendChange

__all__ = ["Flight", "Flights", "LeaseKeeper", "Occurrences", "Replays", "Session", "Stats"]

_log = logging.getLogger("seedcache")
# Landed flights remembered for late-deciding duplicates; they hold takes, so a bound.
_LANDED_KEPT = 1024


@dataclass(slots=True)
class Stats:
    """Counters of what the cache did since it was opened."""

    hits: int = 0
    joined: int = 0
    recorded: int = 0
    refreshed: int = 0
    """Takes replaced in ``refresh`` mode: their backend is no longer served (or too old)."""
    confirmed: int = 0
    """Live checks in ``refresh`` that found the recorded backend still served: the
    caller got the recorded take, and nothing was written."""
    fingerprint_changes: int = 0
    """Re-fetches that came back with a different fingerprint than the take they replaced."""
    output_changes: int = 0
    """Re-fetches whose content (text, tool calls) differs from the take they replaced."""
    passthrough: int = 0
    misses: int = 0
    write_errors: int = 0
    """Live responses returned to the caller that the store failed to record (disk full)."""
    tokens_saved: int = 0
    """Tokens the replayed takes had used (input and output): what live calls would use."""
    cost_saved_usd: float | None = None
    """Their price in US dollars (``genai-prices``); None when no replayed model is priced."""

    def as_dict(self) -> dict[str, int]:
        """The counters (not the savings) as a plain dict."""
        # Not dataclasses.asdict: it deep-copies, and the pytest plugin asks once per test.
        return {name: getattr(self, name) for name in _STATS_FIELDS}


_STATS_FIELDS = tuple(
    f.name for f in dataclasses.fields(Stats) if f.name not in ("tokens_saved", "cost_saved_usd")
)


class Flight:
    """An identical request being fetched in this process; others wait for its take."""

    __slots__ = ("_callbacks", "_done", "index", "landed_at", "take")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self.take: Take | None = None
        self.index: int | None = None
        self.landed_at = 0
        """The session's arrival number when it landed: requests that arrived before
        were in the air with it, and share its take."""

    def land(self, take: Take | None, index: int | None) -> None:
        """The fetch ended: ``take`` stored at ``index``, or None when nothing was stored."""
        self.take, self.index = take, index
        self._done.set()
        for wake in self._callbacks:
            wake()

    def wait(self, timeout: float) -> bool:
        """Block this thread until the flight lands; False on timeout."""
        return self._done.wait(timeout)

    async def wait_async(self, timeout: float) -> bool:
        """Await the landing without blocking the event loop or holding a thread."""
        if self._done.is_set():
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): wait in a worker thread
            return await anyio.to_thread.run_sync(self._done.wait, timeout)
        landed = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, landed)

        self._callbacks.append(wake)
        if self._done.is_set():  # landed between the check and the registration
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(landed), timeout)
        return self._done.is_set()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Occurrences:
    """Which occurrence of each identical request comes next.

    An occurrence is used up only by a take that was replayed or stored. One whose live
    response was not stored (a 500 the SDK retries, a dropped connection) is given back
    and handed out again first, so a retry lands where the failed attempt would have.
    The session's lock guards every call.
    """

    def __init__(self) -> None:
        self._next: Counter[str] = Counter()
        self._returned: dict[str, list[int]] = {}

    def peek(self, key: str) -> int:
        """The occurrence the next request for ``key`` gets."""
        returned = self._returned.get(key)
        return returned[0] if returned else self._next[key]

    def take(self, key: str) -> None:
        """Use up the occurrence :meth:`peek` gave."""
        returned = self._returned.get(key)
        if returned:
            heapq.heappop(returned)
            if not returned:
                del self._returned[key]
        else:
            self._next[key] += 1

    def give_back(self, key: str, occurrence: int) -> None:
        """``occurrence`` produced nothing: hand it out again."""
        heapq.heappush(self._returned.setdefault(key, []), occurrence)

    def used(self) -> dict[str, int]:
        """How many occurrences of each key were used up."""
        return {
            key: count - len(self._returned.get(key, ()))
            for key, count in self._next.items()
            if count - len(self._returned.get(key, ()))
        }


class Flights:
    """The requests in the air in this process, by key."""

    def __init__(self) -> None:
        self._by_key: dict[str, Flight] = {}
        self._landed: OrderedDict[str, Flight] = OrderedDict()

    def get(self, key: str) -> Flight | None:
        """The flight fetching ``key``, if any."""
        return self._by_key.get(key)

    def landed(self, key: str, arrived: int) -> Flight | None:
        """The last flight for ``key`` if it stored a take and landed after ``arrived``.

        A request that arrived while that flight was in the air is one of its concurrent
        duplicates, even if a busy thread pool let it start deciding only after the
        landing: it shares the take rather than counting as a repeat.
        """
        flight = self._landed.get(key)
        if flight is None or flight.take is None or flight.landed_at <= arrived:
            return None
        return flight

    def start(self, key: str) -> Flight:
        """A new flight for ``key`` (the first one stays the one others join)."""
        return self._by_key.setdefault(key, Flight())

    def end(self, key: str, flight: Flight, landed_at: int) -> None:
        """``flight`` is over: requests arriving from ``landed_at`` on decide afresh."""
        flight.landed_at = landed_at
        self._landed[key] = flight
        self._landed.move_to_end(key)
        if len(self._landed) > _LANDED_KEPT:
            self._landed.popitem(last=False)
        if self._by_key.get(key) is flight:
            del self._by_key[key]


class LeaseKeeper:
    """Renews the store leases this process holds, from one thread, while they are held.

    A stream can take longer than a lease lasts; without renewal another process would
    decide the holder crashed and fetch the same response again. Releases go through
    here too when the caller is an event loop's thread, so no store I/O blocks it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._held: dict[Lease, Store] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def hold(self, store: Store, lease: Lease) -> None:
        """Keep ``lease`` alive until :meth:`drop`."""
        with self._lock:
            self._held[lease] = store
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._renew_while_held, name="seedcache-leases", daemon=True
                )
                self._thread.start()

    def drop(self, lease: Lease) -> None:
        """Stop renewing ``lease`` (its holder released it or stored the take)."""
        with self._lock:
            self._held.pop(lease, None)

    def release(self, store: Store, lease: Lease) -> None:
        """Give ``lease`` up now; from an event loop's thread, in a thread of its own."""
        self.drop(lease)
        if _on_event_loop():
            threading.Thread(
                target=_release_quietly, args=(store, lease), name="seedcache-release", daemon=True
            ).start()
        else:
            _release_quietly(store, lease)

    def _renew_while_held(self) -> None:
        while True:
            with self._lock:
                # A third of the lease: two renewals may fail before it expires.
                self._wake.wait(self.seconds / 3)
                if not self._held:
                    self._thread = None
                    return
                held = list(self._held.items())
            for lease, store in held:
                try:
                    kept = store.renew(lease, self.seconds)
                except StoreError as exc:
                    _log.warning("could not renew the lease on %s: %s", lease.key, exc)
                    continue
                if not kept:
                    self.drop(lease)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _release_quietly(store: Store, lease: Lease) -> None:
    try:
        store.release(lease)
    except StoreError as exc:
        # An unreleased lease only delays others until it expires.
        _log.warning("could not release the lease on %s: %s", lease.key, exc)


@dataclass(slots=True)
class Replays:
    """How often one take was replayed, with what :mod:`._savings` needs of it."""

    model: str
    usage: TokenUsage | None
    count: int = 0


@dataclass(slots=True)
class Session:
    """What every core of one cache shares: counters, repeats, flights and leases."""

    lease_seconds: float
    stats: Stats = field(default_factory=Stats)
    occurrences: Occurrences = field(default_factory=Occurrences)
    flights: Flights = field(default_factory=Flights)
    missed: list[CacheMiss] = field(default_factory=list)
    """The misses raised, oldest first (the first hundred): code under test may swallow
    the exception, and the test must still learn of it."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    replayed: dict[tuple[str, int], Replays] = field(default_factory=dict)
    """Per replayed take, by (key, take index): its model, its usage and how often it was
    replayed; what :mod:`._savings` prices when asked. Small, whatever the bodies."""
    changes: Counter[BackendChange] = field(default_factory=Counter)
    """Backend changes ``refresh`` met, with how many takes each replaced."""
    pin_warnings: set[str] = field(default_factory=set)
    """Models already warned about as serving no pinned fingerprint."""
    keeper: LeaseKeeper = field(init=False)
    _arrivals: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.keeper = LeaseKeeper(self.lease_seconds)

    def count_replay(self, key: str, index: int, take: Take) -> None:
        """Note a replay of take ``index`` of ``key``; its usage is read on the first only."""
        slot = (key, index)
        with self.lock:
            seen = self.replayed.get(slot)
            if seen is not None:
                seen.count += 1
                return
        usage = usage_of(take)  # a JSON parse: outside the lock, once per take
        with self.lock:
            self.replayed.setdefault(slot, Replays(take.model or "?", usage)).count += 1

    def arrive(self) -> int:
        """A number for a request as it arrives, increasing (``next`` on a count is atomic)."""
        return next(self._arrivals)
