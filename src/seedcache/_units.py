"""Numbers and text for people: durations, sizes, counts and stored text made safe to
print, shared by the settings, the CLI and the reports.

Durations are always written with a unit (``30d``, ``12h``, ``1h30m``). A bare number is
refused on purpose: ``max_age=30`` could mean seconds or days, and a cache that guesses
wrong silently replays month-old answers or re-fetches everything.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ._errors import ConfigurationError

__all__ = ["count", "format_duration", "human_bytes", "parse_duration", "printable", "short_count"]

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


# Control characters (C0 but newline and tab, DEL, C1) and bidirectional overrides: in
# stored text (a model name, an answer) they could retitle a terminal, clear it, write
# the clipboard (OSC 52) or reorder what a reviewer reads.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown escaped (``\\x1b``), never sent raw."""
    return _UNPRINTABLE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def human_bytes(size: int) -> str:
    """``1.5 KiB``-style sizes."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


def short_count(number: int) -> str:
    """950, 12.3k, 1.2M."""
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if number >= limit:
            return f"{number / limit:.1f}{suffix}"
    return str(number)


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 entry``, ``3 entries``: a number with its noun in the right form."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
