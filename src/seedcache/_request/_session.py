"""The state every core of one cache shares, and the only code that touches it.

Counters, which occurrence of each identical request comes next, the flights in the air,
the leases held, the misses raised and what replays used. The proxy's core is another
view of the same session, never a copy of it. Every change happens in a method here,
under the session's lock: the core asks (:meth:`Session.reserve_replay`,
:meth:`Session.reserve_fetch`, :meth:`Session.land` …) and never edits a field itself.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from .._errors import CacheMiss
from .._takes._take import Take
from .._takes._usage import TokenUsage, usage_of
from ._backends import BackendChange
from ._flights import Flight, Flights, LeaseKeeper
from ._outcome import Action

__all__ = ["Occurrences", "ReplayCount", "Reserved", "Session", "Stats"]

# The misses kept for the plugin to report; code under test may raise thousands.
_MISSES_KEPT = 100


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


class Occurrences:
    """Which occurrence of each identical request comes next.

    An occurrence is used up only by a take that was replayed or stored. One whose live
    response was not stored (a 500 the SDK retries, a dropped connection) is given back
    and handed out again first, so a retry lands where the failed attempt would have.
    :class:`Session`'s lock guards every call.
    """

    def __init__(self) -> None:
        self._next: Counter[str] = Counter()
        self._returned: dict[str, list[int]] = {}

    def peek(self, key: str) -> int:
        """The occurrence the next request for ``key`` gets."""
        returned = self._returned.get(key)
        return returned[0] if returned else self._next[key]

    def use(self, key: str) -> None:
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


@dataclass(slots=True)
class ReplayCount:
    """How often one take was replayed, with what savings need of it."""

    model: str
    usage: TokenUsage | None
    count: int = 0


@dataclass(frozen=True, slots=True)
class Reserved:
    """What :meth:`Session.reserve_fetch` gave: a flight of this request's own, or one in
    the air for an identical request, to join."""

    flight: Flight
    mine: bool


class Session:
    """What every core of one cache shares (see the module)."""

    def __init__(self, *, lease_seconds: float) -> None:
        self.stats = Stats()
        """The counters; read them, never write them from outside."""
        self.keeper = LeaseKeeper(lease_seconds)
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._occurrences = Occurrences()
        self._flights = Flights()
        self._missed: list[CacheMiss] = []
        # Per replayed take, by (key, take index): small, whatever the bodies.
        self._replays: dict[tuple[str, int], ReplayCount] = {}
        self._changes: Counter[BackendChange] = Counter()
        self._warned: set[str] = set()
        self._arrivals: Iterator[int] = itertools.count(1)

    # -- claiming an occurrence: each returns None when another thread took it first ---

    def next_occurrence(self, key: str, *, counting: bool) -> int:
        """The occurrence the next request for ``key`` gets (always 0 when not counting)."""
        if not counting:
            return 0
        with self._lock:
            return self._occurrences.peek(key)

    def reserve_replay(self, key: str, occurrence: int, *, counting: bool) -> bool:
        """Use up ``occurrence`` for a replay; False when it is no longer the next one."""
        with self._lock:
            if not self._still_next(key, occurrence, counting):
                return False
            self._use(key, counting)
            self.stats.hits += 1
            return True

    def reserve_miss(self, key: str, occurrence: int, *, counting: bool) -> bool:
        """Count a miss at ``occurrence``; False when it is no longer the next one."""
        with self._lock:
            if not self._still_next(key, occurrence, counting):
                return False
            self.stats.misses += 1
            return True

    def reserve_fetch(
        self, key: str, occurrence: int, *, counting: bool, join: bool, arrived: int | None
    ) -> Reserved | None:
        """A flight for ``key``: one in the air to join (when ``join``), else this request's
        own, with ``occurrence`` used up. None when it is no longer the next one.

        A request that ``arrived`` while a flight for ``key`` was in the air joins it,
        however late it comes to decide. The own flight is up before the store's lease is
        asked for, so identical requests of this process join it instead of waiting on
        the lease as if another process held it.
        """
        with self._lock:
            if not self._still_next(key, occurrence, counting):
                return None
            if join:
                in_air = self._flights.get(key)
                if in_air is None and arrived is not None:
                    in_air = self._flights.landed(key, arrived)
                if in_air is not None:
                    # Concurrent duplicates share one take: no repeat of their own.
                    return Reserved(in_air, mine=False)
            self._use(key, counting)
            return Reserved(self._flights.start(key), mine=True)

    def ground(self, key: str, flight: Flight, occurrence: int, *, counting: bool) -> None:
        """Call off ``flight`` before it left: the occurrence and the key are free again."""
        with self._lock:
            self._flights.end(key, flight, 0)
            if counting:
                self._occurrences.give_back(key, occurrence)
        flight.land(None, None)

    def land(
        self,
        key: str,
        flight: Flight,
        occurrence: int,
        *,
        counting: bool,
        action: Action | None,
        passed_through: bool,
    ) -> None:
        """A live answer is over: count what became of it (``action``; None when nothing
        was stored, and ``occurrence`` is handed out again), and end ``flight``."""
        landed_at = next(self._arrivals)
        with self._lock:
            self._flights.end(key, flight, landed_at)
            if action is None:
                self.stats.passthrough += passed_through
                if counting:
                    self._occurrences.give_back(key, occurrence)
            elif action is Action.CONFIRMED:
                self.stats.confirmed += 1
            elif action is Action.REFRESHED:
                self.stats.refreshed += 1
            else:
                self.stats.recorded += 1

    def _still_next(self, key: str, occurrence: int, counting: bool) -> bool:
        return not counting or self._occurrences.peek(key) == occurrence

    def _use(self, key: str, counting: bool) -> None:
        if counting:
            self._occurrences.use(key)

    # -- counting what happened -------------------------------------------------------

    def arrive(self) -> int:
        """A number for a request as it arrives, increasing (``next`` on a count is atomic)."""
        return next(self._arrivals)

    def count_joined(self) -> None:
        """A request was served the take an identical one fetched."""
        with self._lock:
            self.stats.joined += 1

    def count_replay(self, key: str, index: int, take: Take) -> None:
        """Note a replay of take ``index`` of ``key``; its usage is read on the first only."""
        slot = (key, index)
        with self._lock:
            seen = self._replays.get(slot)
            if seen is not None:
                seen.count += 1
                return
        usage = usage_of(take)  # a JSON parse: outside the lock, once per take
        with self._lock:
            self._replays.setdefault(slot, ReplayCount(take.model or "?", usage)).count += 1

    def count_write_error(self) -> bool:
        """Count a write the store refused; True for the first of the session."""
        with self._lock:
            self.stats.write_errors += 1
            return self.stats.write_errors == 1

    def count_refresh(self, *, drifted: bool, changed: bool, moved: BackendChange | None) -> None:
        """Count what a re-fetch found: another fingerprint, other output, another backend."""
        with self._lock:
            self.stats.fingerprint_changes += drifted
            self.stats.output_changes += changed
            if moved is not None:
                self._changes[moved] += 1

    def keep_miss(self, miss: CacheMiss) -> None:
        """Keep ``miss`` for the report (the first hundred)."""
        with self._lock:
            if len(self._missed) < _MISSES_KEPT:
                self._missed.append(miss)

    def first_warning(self, about: str) -> bool:
        """True the first time a warning ``about`` something is asked for in this session."""
        with self._lock:
            if about in self._warned:
                return False
            self._warned.add(about)
            return True

    # -- reading ------------------------------------------------------------------------

    def missed(self) -> list[CacheMiss]:
        """The misses raised, oldest first (the first hundred)."""
        with self._lock:
            return list(self._missed)

    def replays(self) -> list[tuple[str, TokenUsage | None, int]]:
        """``(model, usage, times)`` of every take replayed."""
        with self._lock:
            return [(r.model, r.usage, r.count) for r in self._replays.values()]

    def consumed(self) -> dict[str, int]:
        """How many takes of each key this session asked for (repeats counted)."""
        with self._lock:
            return self._occurrences.used()

    def backend_changes(self) -> dict[BackendChange, int]:
        """The backend changes ``refresh`` met, with how many takes each replaced."""
        with self._lock:
            return dict(self._changes)
