"""Explaining a miss: the nearest recorded request and the parameters that differ."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._keys import Canonical

__all__ = ["Nearest", "differences", "host_only", "nearest"]

# A store can be huge; explaining a miss must stay quick, so look at this many at most.
_SCAN_LIMIT = 5000
_SHOWN = 60


def nearest(
    wanted: Canonical,
    recorded: Iterable[tuple[str, dict[str, Any]]],
    *,
    ignore: Sequence[str] = (),
) -> Nearest | None:
    """The recorded request closest to ``wanted``, with what differs; None if none is recorded.

    Requests to the same endpoint always beat requests to another one. Body fields under
    an ``ignore`` path are not differences: they are not part of the key.
    """
    best: tuple[int, Nearest] | None = None
    wanted_endpoint = _endpoint(wanted.summary)
    for key, summary in itertools.islice(recorded, _SCAN_LIMIT):
        diffs = differences(summary, wanted.summary, ignore=ignore)
        score = len(diffs) + (0 if _endpoint(summary) == wanted_endpoint else 1000)
        if best is None or score < best[0]:
            best = (score, Nearest(key, summary, diffs))
    return None if best is None else best[1]


@dataclass(frozen=True, slots=True)
class Nearest:
    """The recorded request most like a missed one."""

    key: str
    summary: dict[str, Any]
    differences: list[str]
    """One line per field that differs, recorded value first."""


def differences(
    recorded: dict[str, Any], wanted: dict[str, Any], *, ignore: Sequence[str] = ()
) -> list[str]:
    """One line per leaf that differs, e.g. ``body.seed: 123 (recorded) vs 124 (now)``."""
    skipped = [("body", *path.split(".")) for path in ignore]
    before = dict(_leaves(recorded))
    after = dict(_leaves(wanted))
    lines = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path, _ABSENT), after.get(path, _ABSENT)
        if old != new and not any(_under(path, pattern) for pattern in skipped):
            lines.append(f"{_spell(path)}: {_show(old)} (recorded) vs {_show(new)} (now)")
    return lines


def host_only(recorded: dict[str, Any], wanted: dict[str, Any]) -> tuple[str, str] | None:
    """``(recorded origin, wanted origin)`` when the URLs differ in scheme or host only."""
    old, new = urlsplit(str(recorded.get("url", ""))), urlsplit(str(wanted.get("url", "")))
    if (old.scheme, old.netloc) == (new.scheme, new.netloc) or old.path != new.path:
        return None
    return f"{old.scheme}://{old.netloc}", f"{new.scheme}://{new.netloc}"


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


_Path = tuple[str | int, ...]


def _leaves(value: Any, path: _Path = ()) -> Iterable[tuple[_Path, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _under(path: _Path, pattern: tuple[str, ...]) -> bool:
    """True when ``path`` is at or below the field ``pattern`` names (``*``: any)."""
    if len(path) < len(pattern):
        return False
    return all(want in ("*", str(got)) for got, want in zip(path, pattern, strict=False))


def _spell(path: _Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _endpoint(summary: dict[str, Any]) -> tuple[str, str]:
    return str(summary.get("method")), urlsplit(str(summary.get("url", ""))).path
