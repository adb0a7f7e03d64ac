"""Single flight: identical requests share one upstream call.

In one process, the first of several identical requests goes live and the others wait
for its :class:`Flight` to land. Across processes (and machines, for a networked store),
the store's leases do the same: :class:`LeaseKeeper` renews the leases this process holds
while their responses stream in, so a long stream keeps its claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._errors import StoreError
from .._stores import Lease, Store
from .._takes._take import Take

if TYPE_CHECKING:
    pass

__all__ = ["Flight", "Flights", "LeaseKeeper"]

_log = logging.getLogger("seedcache")
# Landed flights remembered for late-deciding duplicates; they hold takes, so a bound.
_LANDED_KEPT = 1024


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
            # A third of the lease: two renewals may fail before it expires.
            time.sleep(self.seconds / 3)
            with self._lock:
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
