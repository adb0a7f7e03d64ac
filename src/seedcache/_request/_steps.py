"""What :meth:`Core.begin <seedcache._request._core.Core.begin>` answers, and the two
drivers that carry a request through the answers until it is served or goes live.

- :class:`Serve`: serve this take (a replay, a joined flight's take, or a check's);
- :class:`GoLive`: go upstream and feed the response through the :class:`Recording`;
- :class:`Join`: an identical request of this process is in the air, wait for its take;
- :class:`AwaitLease`: another process holds the store's lease on the key, wait for it;
- :class:`AwaitCheck`: (``refresh``) another request is checking what this model serves
  now, wait for it and decide again.

:func:`resolve_sync` and :func:`resolve_async` do the waiting and ask again; they are the
only difference between sync and async callers. The async one runs every store call in
a worker thread, so no disk (or network) read blocks the event loop.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .._takes._take import Take
from ._flights import Flight
from ._outcome import OUTCOME_HEADER, Outcome
from ._recording import Recording
from ._wire import CapturedRequest

if TYPE_CHECKING:
    from ._core import Core

__all__ = [
    "AwaitCheck",
    "AwaitLease",
    "GoLive",
    "Join",
    "Serve",
    "Step",
    "resolve_async",
    "resolve_sync",
]

# How long a request waits for an identical one in flight (here or in another process)
# before going live itself.
FLIGHT_WAIT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Serve:
    """Serve ``take`` without touching the network."""

    take: Take
    outcome: Outcome

    def headers(self) -> list[tuple[str, str]]:
        """The take's headers plus the outcome header."""
        return [*self.take.headers, (OUTCOME_HEADER, self.outcome.header_value())]


@dataclass(frozen=True, slots=True)
class GoLive:
    """Go to the upstream and feed its response through ``recording``."""

    recording: Recording


@dataclass(frozen=True, slots=True)
class Join:
    """Wait for ``flight``, an identical request of this process, then serve its take."""

    flight: Flight
    key: str


@dataclass(frozen=True, slots=True)
class AwaitLease:
    """Another process leases ``key``: wait until its entry leaves ``revision``, then ask again."""

    key: str
    revision: int


@dataclass(frozen=True, slots=True)
class AwaitCheck:
    """Another request is checking what this model serves now: wait for ``check``."""

    check: Flight


Step = Serve | GoLive | Join | AwaitLease | AwaitCheck


# How often one request waits for another's check before it checks for itself.
_HOLDS = 8


def resolve_sync(core: Core, request: CapturedRequest) -> Serve | GoLive:
    """:meth:`Core.begin`, waiting in this thread for an identical request in the air."""
    arrived = core.session.arrive()
    may_join = may_lease = may_hold = True
    holds = 0
    awaiting_until: float | None = None
    while True:
        step = core.begin(
            request, arrived=arrived, may_join=may_join, may_lease=may_lease, may_hold=may_hold
        )
        if isinstance(step, Serve | GoLive):
            return step
        if isinstance(step, AwaitCheck):
            holds += 1
            # A bound on deciding again: past it, go live rather than wait once more.
            may_hold = step.check.wait(FLIGHT_WAIT_SECONDS) and holds < _HOLDS
        elif isinstance(step, AwaitLease):
            awaiting_until = awaiting_until or time.monotonic() + FLIGHT_WAIT_SECONDS
            left = awaiting_until - time.monotonic()
            core.config.store.wait(step.key, step.revision, left)
            may_lease = time.monotonic() < awaiting_until
        elif not step.flight.wait(FLIGHT_WAIT_SECONDS):
            may_join = False
        elif (joined := core.joined(step)) is not None:
            return joined


# An async request waiting for another process checks in this often, so that a worker
# thread is never held for long by one waiter.
_AWAIT_SLICE_SECONDS = 0.25


async def _begin_in_thread(begin: Callable[[], Step]) -> Step:
    """``begin()`` in a worker thread. A caller cancelled meanwhile never gets the step, so
    a live one is abandoned: its flight, lease and check must not stay claimed (identical
    requests, and every request for its model, would wait on them). The thread may still
    be running when the cancellation arrives; then it abandons the step itself."""
    lock = threading.Lock()
    made: list[Step] = []
    cancelled = False

    def run() -> Step:
        step = begin()
        with lock:
            made.append(step)
            orphaned = cancelled
        if orphaned and isinstance(step, GoLive):
            step.recording.abandon()
        return step

    try:
        return await anyio.to_thread.run_sync(run)
    except BaseException:
        with lock:
            cancelled = True
            step = made[-1] if made else None
        if isinstance(step, GoLive):
            step.recording.abandon()
        raise


async def resolve_async(core: Core, request: CapturedRequest) -> Serve | GoLive:
    """:meth:`Core.begin` in a worker thread; waiting is awaited, never blocking the loop.

    A replay the store can answer from memory is served at once, on the loop.
    """
    arrived = core.session.arrive()
    served = core.replay_at_once(request)
    if served is not None:
        return served
    may_join = may_lease = may_hold = True
    holds = 0
    awaiting_until: float | None = None
    while True:
        begin = functools.partial(
            core.begin,
            request,
            arrived=arrived,
            may_join=may_join,
            may_lease=may_lease,
            may_hold=may_hold,
        )
        step = await _begin_in_thread(begin)
        if isinstance(step, Serve | GoLive):
            return step
        if isinstance(step, AwaitCheck):
            holds += 1
            may_hold = await step.check.wait_async(FLIGHT_WAIT_SECONDS) and holds < _HOLDS
        elif isinstance(step, AwaitLease):
            awaiting_until = awaiting_until or time.monotonic() + FLIGHT_WAIT_SECONDS
            left = min(_AWAIT_SLICE_SECONDS, awaiting_until - time.monotonic())
            wait = functools.partial(core.config.store.wait, step.key, step.revision, left)
            await anyio.to_thread.run_sync(wait)
            may_lease = time.monotonic() < awaiting_until
        elif not await step.flight.wait_async(FLIGHT_WAIT_SECONDS):
            may_join = False
        elif (joined := core.joined(step)) is not None:
            return joined
