"""The pure decision: replay which take, fetch into which slot, or miss."""

from __future__ import annotations

import pytest

from seedcache import Entry, Mode, Take
from seedcache._request._policy import Fetch, Freshness, Miss, Replay, Slot, decide, place


def takes(n: int) -> list[Take]:
    return [Take(200, (), str(i).encode()) for i in range(n)]


@pytest.mark.parametrize(
    ("mode", "recorded", "occurrence", "strict", "expected"),
    [
        (Mode.AUTO, 2, 0, False, Replay(0)),
        (Mode.AUTO, 2, 1, False, Replay(1)),
        (Mode.AUTO, 2, 2, False, Fetch(Slot.APPEND, 2)),
        (Mode.AUTO, 0, 0, False, Fetch(Slot.APPEND, 0)),
        (Mode.REPLAY, 2, 1, False, Replay(1)),
        (Mode.REPLAY, 2, 5, False, Replay(1)),
        (Mode.REPLAY, 2, 5, True, Miss(5, 2)),
        (Mode.REPLAY, 0, 0, False, Miss(0, 0)),
        (Mode.RECORD, 3, 0, False, Fetch(Slot.RESTART, 0)),
        (Mode.REFRESH, 1, 0, False, Replay(0)),
        (Mode.REFRESH, 1, 1, False, Fetch(Slot.APPEND, 1)),
    ],
)
def test_decide(mode, recorded, occurrence, strict, expected):
    assert decide(mode, takes(recorded), occurrence, strict=strict) == expected


def test_refresh_refetches_a_stale_take_and_checks_an_unsure_one():
    judged = {b"0": Freshness.CURRENT, b"1": Freshness.STALE, b"2": Freshness.UNSURE}

    def freshness(take):
        return judged[take.body]

    assert decide(Mode.REFRESH, takes(3), 0, freshness=freshness) == Replay(0)
    assert decide(Mode.REFRESH, takes(3), 1, freshness=freshness) == Fetch(Slot.REPLACE, 1)
    assert decide(Mode.REFRESH, takes(3), 2, freshness=freshness) == Fetch(
        Slot.REPLACE, 2, check=True
    )
    # Only refresh judges takes.
    assert decide(Mode.AUTO, takes(3), 1, freshness=freshness) == Replay(1)


def test_record_restarts_the_takes_from_the_occurrence():
    """Record rewrites what this session records and drops stale later takes."""
    entry = Entry("ab", {}, takes(3))
    new = Take(200, (), b"new")
    entry, index = place(entry, new, Fetch(Slot.RESTART, 0), history_limit=5)
    assert index == 0
    assert [t.body for t in entry.takes] == [b"new"]


def test_refresh_keeps_the_old_take_as_bounded_history():
    entry = Entry("ab", {}, takes(1))
    for n in range(4):
        entry, _ = place(
            entry, Take(200, (), f"r{n}".encode()), Fetch(Slot.REPLACE, 0), history_limit=2
        )
    assert entry.takes[0].body == b"r3"
    assert [t.body for t in entry.history] == [b"r1", b"r2"]


def test_append_goes_after_the_recorded_takes():
    entry = Entry("ab", {}, takes(1))
    entry, index = place(entry, Take(200, (), b"x"), Fetch(Slot.APPEND, 1), history_limit=5)
    assert index == 1
    assert [t.body for t in entry.takes] == [b"0", b"x"]
