"""Numbers and text for people: sizes, counts and stored text made safe to print, shared
by the CLI and the reports."""

from __future__ import annotations

import re

__all__ = ["count", "human_bytes", "printable", "short_count"]

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
