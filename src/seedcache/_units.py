"""Numbers for people: sizes and counts, shared by the CLI and the HTML report."""

from __future__ import annotations

__all__ = ["count", "human_bytes", "short_count"]


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
