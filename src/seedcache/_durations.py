"""Durations written by people: ``30d``, ``12h``, ``1h30m``, always with a unit.

A bare number is refused on purpose: ``max_age=30`` could mean seconds or days, and a
cache that guesses wrong silently replays month-old answers or re-fetches everything.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ._errors import ConfigurationError

__all__ = ["format_duration", "parse_duration"]

_UNITS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)


def parse_duration(value: str | timedelta, *, name: str) -> timedelta:
    """``value`` as a positive timedelta; ``name`` says which setting it is, in errors."""
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ConfigurationError(f"{name} must be positive, not {value}")
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{name} needs a unit: give a timedelta or a string like '30d', '12h' or '45m', "
            f"not {value!r}"
        )
    text = value.strip().lower()
    seconds = 0.0
    position = 0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None or match.group(2) not in _UNITS:
            raise ConfigurationError(
                f"{name}: cannot read {value!r} as a duration; use a number and a unit "
                f"(s, m, h, d, w), e.g. '30d', '12h' or '1h30m'"
            )
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if seconds <= 0:
        raise ConfigurationError(f"{name} must be positive, not {value!r}")
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """A short human form: ``3d``, ``5h``, ``12m``, ``40s``."""
    seconds = span.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
