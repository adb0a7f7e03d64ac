"""What to do with one request: a pure decision over plain data, no I/O.

The n-th identical request of a session maps to take n. ``decide`` says whether to
replay a take, go live (and where the new take goes), or fail with a miss; ``place``
puts a new take where the decision said. In ``refresh`` a take's :class:`Freshness`
decides whether it is replayed, re-fetched, or checked against a live answer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .._takes._take import Entry, Take
from ._modes import Mode

__all__ = ["Decision", "Fetch", "Freshness", "Miss", "Replay", "Slot", "decide", "place"]


class Freshness(enum.Enum):
    """What ``refresh`` makes of one recorded take."""

    CURRENT = "current"
    """Its backend is served now (or it is pinned): replay it."""
    STALE = "stale"
    """Too old, or not pinned: fetch live and replace it."""
    UNSURE = "unsure"
    """Its backend was not seen live in this run: fetch live, and keep the take if the
    answer comes from the same backend."""


class Slot(enum.Enum):
    """Where a freshly fetched take goes."""

    APPEND = "append"
    """After the recorded takes (``auto``: a repeat beyond what was recorded)."""
    RESTART = "restart"
    """At this occurrence, dropping it and every later take (``record``)."""
    REPLACE = "replace"
    """At this occurrence, moving the old take to history (``refresh``)."""


@dataclass(frozen=True, slots=True)
class Replay:
    """Serve take ``index``."""

    index: int


@dataclass(frozen=True, slots=True)
class Fetch:
    """Go live; store the result in ``slot`` for ``occurrence``."""

    slot: Slot
    occurrence: int
    check: bool = False
    """A check (``refresh``): the recorded take stays, and is what the caller gets, when
    the live answer shows the backend it was recorded under."""


@dataclass(frozen=True, slots=True)
class Miss:
    """Nothing to replay and the network is off-limits."""

    occurrence: int
    recorded: int


Decision = Replay | Fetch | Miss


def decide(
    mode: Mode,
    takes: Sequence[Take],
    occurrence: int,
    *,
    strict: bool = False,
    freshness: Callable[[Take], Freshness] | None = None,
) -> Decision:
    """Decide for the ``occurrence``-th identical request given the recorded ``takes``.

    ``strict`` makes ``replay`` fail on a repeat beyond the recorded takes instead of
    replaying the last one. ``freshness`` (``refresh`` only) judges a recorded take.
    """
    recorded = len(takes)
    if mode is Mode.RECORD:
        return Fetch(Slot.RESTART, occurrence)
    if occurrence < recorded:
        judged = Freshness.CURRENT
        if mode is Mode.REFRESH and freshness is not None:
            judged = freshness(takes[occurrence])
        if judged is Freshness.CURRENT:
            return Replay(occurrence)
        return Fetch(Slot.REPLACE, occurrence, check=judged is Freshness.UNSURE)
    if mode is Mode.REPLAY:
        if recorded and not strict:
            return Replay(recorded - 1)
        return Miss(occurrence, recorded)
    return Fetch(Slot.APPEND, occurrence)


def place(entry: Entry, take: Take, decision: Fetch, *, history_limit: int) -> tuple[Entry, int]:
    """``entry`` with ``take`` put where ``decision`` says, and the index it landed at."""
    takes = list(entry.takes)
    history = list(entry.history)
    index = min(decision.occurrence, len(takes))
    if decision.slot is Slot.APPEND or (decision.slot is Slot.REPLACE and index == len(takes)):
        takes.append(take)
        index = len(takes) - 1
    elif decision.slot is Slot.RESTART:
        del takes[index:]
        takes.append(take)
    else:
        history.append(takes[index])
        del history[: max(0, len(history) - history_limit)]
        takes[index] = take
    return replace(entry, takes=tuple(takes), history=tuple(history)), index
