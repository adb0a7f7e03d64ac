"""Explaining a miss: the nearest recorded request and the parameters that differ."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from ._keys import Canonical

__all__ = ["differences", "nearest"]

# A store can be huge; explaining a miss must stay quick, so look at this many at most.
_SCAN_LIMIT = 5000
_SHOWN = 60


def nearest(
    wanted: Canonical, recorded: Iterable[tuple[str, dict[str, Any]]]
) -> tuple[str, list[str]] | None:
    """The recorded ``(key, summary)`` closest to ``wanted``, with what differs; None if empty.

    Requests to the same endpoint always beat requests to another one.
    """
    best: tuple[int, str, list[str]] | None = None
    wanted_endpoint = _endpoint(wanted.summary)
    for key, summary in itertools.islice(recorded, _SCAN_LIMIT):
        diffs = differences(summary, wanted.summary)
        score = len(diffs) + (0 if _endpoint(summary) == wanted_endpoint else 1000)
        if best is None or score < best[0]:
            best = (score, key, diffs)
    return None if best is None else (best[1], best[2])


def differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """One line per leaf that differs, e.g. ``seed: 123 (recorded) vs 124 (now)``."""
    before = dict(_leaves(recorded))
    after = dict(_leaves(wanted))
    lines = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path, _ABSENT), after.get(path, _ABSENT)
        if old != new:
            lines.append(f"{path}: {_show(old)} (recorded) vs {_show(new)} (now)")
    return lines


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


def _leaves(value: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _endpoint(summary: dict[str, Any]) -> tuple[str, str]:
    return str(summary.get("method")), urlsplit(str(summary.get("url", ""))).path
