"""How the command line prints: aligned tables, colour only on a terminal, JSON on request."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from .._units import printable

__all__ = [
    "Painter",
    "emit_json",
    "progress",
    "short_time",
    "table",
]

T = TypeVar("T")

# An escape that is not a colour (SGR) the painter or a diff wrote: shown, never sent.
_FOREIGN_ESCAPE = re.compile("\x1b(?!\\[[0-9;]*m)|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]")


# Characters json.dumps leaves raw with ensure_ascii=False that a terminal acts on.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    return printable(match.group())


# Walks shorter than this finish before a bar would be worth drawing.
_PROGRESS_FROM = 200


class Painter:
    """Applies colour, or not: off when piped, under ``NO_COLOR``, or with ``--color never``."""

    def __init__(self, setting: str = "auto") -> None:
        if setting == "auto":
            self.enabled = (
                not os.environ.get("NO_COLOR")
                and os.environ.get("TERM") != "dumb"
                and sys.stdout.isatty()
            )
        else:
            self.enabled = setting == "always"

    def __call__(self, text: str, **style: Any) -> str:
        return click.style(text, **style) if self.enabled else text

    def echo(self, text: str = "") -> None:
        """Print a line; colour codes pass through only when colour is on.

        Stored text is made :func:`printable` where it is put in a line; as a last guard,
        any escape sequence here other than a colour is shown escaped, never sent.
        """
        click.echo(_FOREIGN_ESCAPE.sub(_shown, text), color=self.enabled)


def table(
    paint: Painter,
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    right: Iterable[int] = (),
) -> Iterator[str]:
    """Lines of a table: columns padded to their widest cell, a bold header on a terminal."""
    materialised = [[printable(cell) for cell in row] for row in rows]
    right_aligned = set(right)
    widths = [
        max(len(header), max((len(row[i]) for row in materialised), default=0))
        for i, header in enumerate(headers)
    ]
    # One format string for every row: tables of 100,000 rows must print in a blink.
    layout = "  ".join(
        f"{{:{'>' if i in right_aligned else '<'}{width}}}" for i, width in enumerate(widths)
    )
    yield paint(layout.format(*headers).rstrip(), bold=True)
    for row in materialised:
        yield layout.format(*row).rstrip()


def emit_json(document: Any) -> None:
    """Print ``document`` as indented JSON (never coloured, stable key order).

    Readable text stays as it is; C1 controls and bidi overrides, which JSON allows raw
    in strings, are written as ``\\uXXXX`` escapes so a terminal never acts on them.
    """
    text = json.dumps(document, indent=2, ensure_ascii=False)
    click.echo(_RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def short_time(ms: int | None) -> str:
    """A time in UTC to the minute, or ``-``."""
    if not ms:
        return "-"
    return _minute(ms // 60_000)


@functools.lru_cache(maxsize=4096)
def _minute(minute: int) -> str:
    # Listings repeat the same minutes over and over; formatting dates is not free.
    return datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%Y-%m-%d %H:%MZ")


def progress(items: Sequence[T], label: str) -> Iterator[T]:
    """Iterate ``items``, with a bar on stderr when it is a terminal and the walk is long."""
    if len(items) < _PROGRESS_FROM or not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(items, label=label, file=sys.stderr) as bar:
        yield from bar
