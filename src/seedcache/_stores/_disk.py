"""DiskStore: entries in a diskcache directory, as data-only frames, never pickles.

A cache directory can come from a colleague or a CI artifact: it is opened through
:mod:`._diskrows`, which never unpickles, applies only seedcache's own settings, and
reads no file outside the directory. A directory seedcache may not write is opened
read-only: it replays and lists, and refuses changes with a clear error.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from .._codec import decode_entry, encode_entry
from .._errors import CorruptEntryError, StoreError, UnsafeDataError
from .._index import Summary, parse_many, summarize
from .._takes import Entry
from ._base import Change, MetaChange
from ._diskrows import ReadOnlyRows, Refused, open_rows, read_value_file

__all__ = ["DiskStore"]

# Decoded entries remembered for repeated reads: count and size bounds keep memory small.
_DECODED_SIZE = 256
_DECODED_MAX_FRAME = 256 * 1024
_ENTRY_PREFIX = "entry:"
_INDEX_PREFIX = "index:"
_LEASE_PREFIX = "lease:"
_META_PREFIX = "meta:"


class DiskStore:
    """Entries in a local directory (diskcache on SQLite), safe across threads and processes.

    The directory is created with mode 0700: responses can hold private data.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        path = Path(directory).expanduser()
        if path.exists() and not path.is_dir():
            raise StoreError(
                f"cache path {str(path)!r} is a file, not a directory; "
                "give a directory (it is created if missing)"
            )
        self._path = path
        self.read_only = False
        """True when the directory could not be written: replay and listing only."""
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._cache: Any = open_rows(path)
        except (OSError, sqlite3.Error) as exc:
            if not _is_read_only_error(exc) or not path.is_dir():
                raise StoreError(f"cannot open cache directory {str(path)!r}: {exc}") from exc
            self._cache = ReadOnlyRows(path)
            self.read_only = True
        self._decoded: OrderedDict[str, tuple[bytes, Entry]] = OrderedDict()
        self._decoded_lock = threading.Lock()
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex}"

    @property
    def location(self) -> str:
        """The cache directory."""
        return str(self._path)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None.

        The row is always read (another process may have changed it); decoding is skipped
        when the bytes are the ones decoded last time for this key, as on repeated hits.
        """
        frame = self._read(_ENTRY_PREFIX + key)
        if frame is None:
            return None
        with self._decoded_lock:
            known = self._decoded.get(key)
        if known is not None and known[0] == frame:
            entry = known[1]
        else:
            entry = decode_entry(frame, where=self._where(key))
            if len(frame) <= _DECODED_MAX_FRAME:
                with self._decoded_lock:
                    self._decoded[key] = (frame, entry)
                    self._decoded.move_to_end(key)
                    if len(self._decoded) > _DECODED_SIZE:
                        self._decoded.popitem(last=False)
        # A copy of the lists: callers may change what they were given.
        return Entry(entry.key, entry.request, list(entry.takes), list(entry.history))

    def update(self, key: str, change: Change) -> Entry | None:
        """Read, change and write one entry in one SQLite transaction (atomic across processes).

        The entry's :class:`Summary` is written in the same transaction, so the listing
        index never disagrees with the entries.
        """
        with self._writing(key):
            frame = self._read(_ENTRY_PREFIX + key)
            current = None if frame is None else decode_entry(frame, where=self._where(key))
            updated = change(current)
            self._put(_ENTRY_PREFIX + key, None if updated is None else encode_entry(updated))
            summary = None if updated is None else summarize(updated).to_bytes()
            self._put(_INDEX_PREFIX + key, summary)
            # Storing the take ends this store's claim on the key: one transaction less.
            self._drop_own_lease(key)
            return updated

    def delete(self, key: str) -> bool:
        """Remove ``key`` (and its summary); True when it was there."""
        with self._writing(key):
            self._cache.delete(_INDEX_PREFIX + key, retry=True)
            return bool(self._cache.delete(_ENTRY_PREFIX + key, retry=True))

    def keys(self) -> list[str]:
        """Every key, sorted."""
        return [name[len(_ENTRY_PREFIX) :] for name, _ in self._scan(_ENTRY_PREFIX, values=False)]

    def entries(self) -> Iterator[Entry]:
        """Every entry, in key order."""
        for key in self.keys():
            entry = self.get(key)
            if entry is not None:
                yield entry

    def summaries(self) -> Iterator[Summary]:
        """Every entry's summary from the index, in key order; missing ones are rebuilt."""
        rows = [
            (name[len(_INDEX_PREFIX) :], raw)
            for name, raw in self._scan(_INDEX_PREFIX, values=True)
            if raw is not None
        ]
        parsed = parse_many([key for key, _ in rows], [raw for _, raw in rows])
        indexed = {s.key: s for s in parsed if s is not None}
        if len(indexed) == self._count(_ENTRY_PREFIX):
            yield from indexed.values()  # the usual case: every entry has its summary
            return
        for key in self.keys():
            summary = indexed.get(key)
            if summary is None:
                summary = self._rebuild_summary(key)
            if summary is not None:
                yield summary

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run many changes in one SQLite transaction: much faster for bulk imports."""
        with self._writing("a batch of entries"):
            yield

    def claim(self, key: str, state: list[int], seconds: float) -> bool:
        """Become the one fetching ``key``, for ``seconds``, if its takes are still ``state``.

        ``state`` is the recording times of the takes the caller decided on. False when
        another claim is live (in any process, or another thread of this one) or the
        takes changed meanwhile: the caller decides again, usually replaying the take
        the claim holder stored.
        """
        now = time.time()
        with self._writing(key):
            if self._take_times(key) != state:
                return False
            held = self._read(_LEASE_PREFIX + key)
            if held is not None:
                try:
                    until = float(json.loads(held)["until"])
                except (ValueError, KeyError, TypeError):
                    until = 0.0  # unreadable: treat as expired
                if until > now:
                    return False
            lease = {"owner": self._owner, "until": now + seconds}
            self._put(_LEASE_PREFIX + key, json.dumps(lease).encode())
            return True

    def release(self, key: str) -> None:
        """Give up this store's claim on ``key``, if it holds one."""
        if self._read(_LEASE_PREFIX + key) is None:
            return  # the usual case: storing the take already ended the claim
        with self._writing(key):
            self._drop_own_lease(key)

    def _drop_own_lease(self, key: str) -> None:
        held = self._read(_LEASE_PREFIX + key)
        if held is None:
            return
        try:
            owner = json.loads(held).get("owner")
        except (ValueError, AttributeError):
            owner = self._owner  # unreadable: nobody can rely on it, remove it
        if owner == self._owner:
            self._put(_LEASE_PREFIX + key, None)

    def _take_times(self, key: str) -> list[int]:
        # As the core sees them: a corrupt entry counts as no takes (it is re-recorded).
        try:
            entry = self.get(key)
        except CorruptEntryError:
            return []
        return [] if entry is None else [t.recorded_at_ms for t in entry.takes]

    def get_meta(self, name: str) -> bytes | None:
        """A named blob kept beside the entries."""
        return self._read(_META_PREFIX + name)

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Read, change and write a named blob in one SQLite transaction."""
        with self._writing(name):
            updated = change(self._read(_META_PREFIX + name))
            self._put(_META_PREFIX + name, updated)
            return updated

    def foreign_rows(self) -> int:
        """Rows seedcache did not write (pickled keys or values); they are never read."""
        query = (
            "SELECT count(*) FROM Cache WHERE raw = 0 OR mode NOT IN (?, ?) "
            "OR NOT (key LIKE 'entry:%' OR key LIKE 'index:%' OR key LIKE 'meta:%' "
            "OR key LIKE 'lease:%')"
        )
        modes = (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY)
        try:
            return int(self._cache._sql(query, modes).fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.location}: {exc}") from exc

    def close(self) -> None:
        """Close the database connection."""
        self._cache.close()

    def _rebuild_summary(self, key: str) -> Summary | None:
        """Summarize an entry the index lacks (written before the index existed)."""
        entry = self.get(key)
        if entry is None:
            return None
        summary = summarize(entry)
        try:
            with self._writing(key):
                self._put(_INDEX_PREFIX + key, summary.to_bytes())
        except StoreError:
            pass  # a read-only cache still lists; it just rebuilds next time
        return summary

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        try:
            with self._cache.transact(retry=True):
                yield
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot write {what} to {self.location}: {exc}") from exc
        except Refused as exc:
            raise UnsafeDataError(f"{self.location}: {exc}") from None

    def _put(self, name: str, value: bytes | None) -> None:
        if value is None:
            self._cache.delete(name, retry=True)
        else:
            self._cache.set(name, value, retry=True)

    def _scan(self, prefix: str, *, values: bool) -> list[tuple[str, bytes | None]]:
        """Rows whose key starts with ``prefix``, sorted, straight from SQLite.

        One query instead of a lookup per key: this is what makes listing 100,000
        entries take a fraction of a second. Only data rows are read; a row holding a
        pickle yields None, never an object.
        """
        upper = _after(prefix)
        columns = "key, mode, filename, value" if values else "key, NULL, NULL, NULL"
        query = f"SELECT {columns} FROM Cache WHERE raw = 1 AND key >= ? AND key < ? ORDER BY key"  # noqa: S608 - fixed columns
        try:
            rows = self._cache._sql(query, (prefix, upper)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.location}: {exc}") from exc
        return [
            (name, self._row_value(mode, filename, value)) for name, mode, filename, value in rows
        ]

    def _count(self, prefix: str) -> int:
        upper = _after(prefix)
        query = "SELECT count(*) FROM Cache WHERE raw = 1 AND key >= ? AND key < ?"
        try:
            return int(self._cache._sql(query, (prefix, upper)).fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.location}: {exc}") from exc

    def _row_value(self, mode: int | None, filename: str | None, value: Any) -> bytes | None:
        if mode == diskcache.core.MODE_RAW and isinstance(value, bytes):
            return value
        if mode == diskcache.core.MODE_BINARY and filename:
            try:
                return read_value_file(str(self._path), filename)
            except Refused:
                return None
        return None

    def _read(self, name: str) -> bytes | None:
        try:
            value = self._cache.get(name, default=None, retry=True)
        except Refused as exc:
            raise UnsafeDataError(f"{self._where(name)}: {exc}") from None
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot read {name!r} from {self.location}: {exc}") from exc
        if value is not None and not isinstance(value, bytes):
            raise CorruptEntryError(f"{self._where(name)}: not a seedcache entry")
        return value

    def _where(self, key: str) -> str:
        return f"{self.location} entry {key}"


def _is_read_only_error(error: BaseException) -> bool:
    """True when opening failed because the directory or database cannot be written."""
    if isinstance(error, PermissionError) or getattr(error, "errno", None) == errno.EROFS:
        return True
    text = str(error).lower()
    return "readonly" in text or "read-only" in text or "unable to open database" in text


def _after(prefix: str) -> str:
    """The first key past every key starting with ``prefix`` (for range queries)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
