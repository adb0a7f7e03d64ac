"""Opening a large cassette without decoding it whole: entries decoded when first read.

A cassette of 10,000 recordings is tens of megabytes of JSON; parsing it all and
rebuilding every body takes seconds, before the first replay, which reads one entry.
:func:`index_cassette` recognises the layout :func:`write_cassette` writes (two-space
indent, one entry per item of ``entries``, ``key`` first) and finds where each entry's
text starts and ends without parsing it: in valid JSON no string holds a raw newline, so
a newline and four spaces before ``{`` and ``"key"`` only start an entry. A file in any
other layout (formatted by hand or by another tool) is parsed whole, as before.

What this changes is when a damaged entry is found: when it is read (and by ``seedcache
verify``, which reads everything), not when the file is opened. Small cassettes, the
one-test kind, are always parsed whole.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .._errors import CorruptEntryError
from .._takes._take import Entry
from ._codec import entry_from_document

__all__ = ["LAZY_FROM_BYTES", "LazyEntries", "index_cassette", "same_as_parsed"]

LAZY_FROM_BYTES = 1024 * 1024
"""Cassettes at least this large are indexed; smaller ones are parsed whole."""

_HEAD = b'{\n  "seedcache": 1,\n  "entries": [\n'
_ENTRY_START = re.compile(rb'\n    \{\n      "key": "([0-9a-f]+)",\n')
_ENTRIES_END = b"\n  ]"
# Lines a merge leaves in a file: such a file is refused whole, as a parse would.
_CONFLICT = re.compile(rb"^(?:<{7}|={7}|>{7})(?: |$)", re.MULTILINE)


class LazyEntries(Mapping[str, Entry]):
    """Entries by key, in file order, each decoded (and given its revision) when first read."""

    def __init__(
        self,
        data: bytes,
        spans: dict[str, tuple[int, int, int]],
        *,
        where: str,
        revision: Callable[[], int],
    ) -> None:
        self._data = data
        self._spans = spans
        """Key -> (index in ``entries``, start, end) of its text."""
        self._where = where
        self._revision = revision
        self._decoded: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> Entry:
        with self._lock:
            found = self._decoded.get(key)
        if found is not None:
            return found
        index, start, end = self._spans[key]
        where = f"{self._where}: entries[{index}]"
        try:
            entry = _decode(self._data[start:end], where)
            if entry.key != key:
                raise CorruptEntryError(f"{where}: key {entry.key!r} where {key!r} was indexed")
        except CorruptEntryError as exc:
            raise CorruptEntryError(
                f"{exc}; `seedcache --cassette {self._where} verify` lists every damaged entry "
                "and `verify --fix` removes them"
            ) from None
        with self._lock:
            # Two threads may both decode it; the first one's revision stays.
            return self._decoded.setdefault(key, entry.with_revision(self._revision()))

    def __iter__(self) -> Iterator[str]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)

    def __contains__(self, key: object) -> bool:
        return key in self._spans


def index_cassette(
    data: bytes, *, where: str, revision: Callable[[], int]
) -> tuple[LazyEntries, dict[str, Any]] | None:
    """The entries of ``data`` (undecoded) and its meta; None when the file is not in the
    layout seedcache writes, and must be parsed whole."""
    if not data.startswith(_HEAD):
        return None
    starts = [(m.start() + 1, m.group(1).decode()) for m in _ENTRY_START.finditer(data)]
    if not starts or starts[0][0] != len(_HEAD):
        return None
    end_of_list = data.find(_ENTRIES_END, starts[-1][0])
    if end_of_list < 0:
        return None
    if _CONFLICT.search(data) is not None:
        return None
    spans: dict[str, tuple[int, int, int]] = {}
    ends = [start - 1 for start, _ in starts[1:]] + [end_of_list]
    for index, ((start, key), end) in enumerate(zip(starts, ends, strict=True)):
        # Each item closes as seedcache writes it ("}," before the next, "}" before the
        # list ends); anything else (a hand edit, an entry start laid out inside another
        # entry) and the file is parsed whole instead.
        closing = b"\n    }," if index < len(starts) - 1 else b"\n    }"
        if not data.startswith(closing, end - len(closing), end):
            return None
        spans[key] = (index, start, end)  # as in a parse: a repeated key's last entry
    meta = _tail(data[end_of_list + len(_ENTRIES_END) :])
    if meta is None:
        return None
    return LazyEntries(data, spans, where=where, revision=revision), meta


def same_as_parsed(data: bytes, keys: list[str]) -> bool:
    """Whether the index of ``data`` holds exactly the entries a whole parse found (in
    order): a file laid out to mislead the index is reported by ``verify``."""
    indexed = index_cassette(data, where="", revision=lambda: 0)
    return indexed is None or list(indexed[0]) == list(dict.fromkeys(keys))


def _tail(rest: bytes) -> dict[str, Any] | None:
    """The document after the entries list: nothing, or the ``meta`` object."""
    try:
        document = json.loads(b'{"seedcache": 1' + rest, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    # "seedcache" named again (as a newer format) is the whole parse's to report.
    if not isinstance(document, dict) or set(document) - {"seedcache", "meta"}:
        return None
    if document["seedcache"] != 1:
        return None
    meta = document.get("meta", {})
    return meta if isinstance(meta, dict) else {}


def _decode(text: bytes, where: str) -> Entry:
    try:
        document = json.loads(text.removesuffix(b","), parse_constant=_no_constant)
    except ValueError as exc:
        raise CorruptEntryError(f"{where}: not a JSON entry ({exc})") from None
    except RecursionError:
        raise CorruptEntryError(f"{where}: nested too deeply to be an entry") from None
    try:
        return entry_from_document(document, where=where)
    except CorruptEntryError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise CorruptEntryError(f"{where}: malformed entry ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
