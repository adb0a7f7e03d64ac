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
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import diskcache

from .._errors import CorruptEntryError, StoreError, UnsafeDataError
from .._takes._take import Entry
from ._base import (
    MAX_LEASE_SECONDS,
    NOT_IN_MEMORY,
    BaseStore,
    Capabilities,
    Change,
    Check,
    Lease,
    MetaChange,
    NotInMemory,
    check_by_decoding,
    poll_until_settled,
    skip_damaged,
)
from ._codec import encode_entry
from ._diskrows import ReadOnlyRows, Refused, open_rows, read_value_file
from ._frames import DecodedFrames, frame_revision
from ._nowait import NoWaitReads
from ._summary import Summary, Totals, newest_of, parse_many, summarize

__all__ = ["DiskStore"]

_ENTRY_PREFIX = "entry:"
_INDEX_PREFIX = "index:"
_LEASE_PREFIX = "lease:"
_META_PREFIX = "meta:"
_TOTALS = "totals:"


class DiskStore(BaseStore):
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
        self._frames = DecodedFrames(self.location)
        self._nowait = NoWaitReads(path / diskcache.core.DBNAME)
        self._transactions = threading.local()
        """How deep this thread is in transactions: reads inside one must see its changes."""
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex}"

    @property
    def location(self) -> str:
        """The cache directory."""
        return str(self._path)

    @property
    def kind(self) -> str:
        """A cache directory."""
        return "cache directory"

    @property
    def capabilities(self) -> Capabilities:
        """Leases hold across processes; totals are kept; writable unless read-only."""
        return Capabilities(running_totals=True, writable=not self.read_only)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None.

        The row is always read (another process may have changed it); decoding is skipped
        when the bytes are the ones decoded last time for this key, as on repeated hits.
        Entries are immutable, so the decoded one is handed out as it is.
        """
        name = _ENTRY_PREFIX + key
        # The read that cannot wait is the quicker one too (no diskcache layers); a row it
        # cannot answer (a lock, a value file, an error to report) is read through them.
        frame = NOT_IN_MEMORY if self._in_transaction() else self._nowait.value(name)
        if frame is NOT_IN_MEMORY:
            frame = self._read(name)
        if frame is None:
            return None
        return self._frames.entry(key, frame)

    def get_in_memory(self, key: str) -> Entry | NotInMemory | None:
        """:meth:`get` when SQLite can answer without waiting (see :mod:`._nowait`);
        otherwise :data:`NOT_IN_MEMORY`, and :meth:`get` does the reading in a worker
        thread. An async client's replay is then answered on its event loop."""
        if self._in_transaction():
            return NOT_IN_MEMORY  # its own changes are seen only through its connection
        frame = self._nowait.value(_ENTRY_PREFIX + key)
        if frame is None or frame is NOT_IN_MEMORY:
            return frame
        return self._frames.entry(key, frame)

    def update(self, key: str, change: Change) -> Entry | None:
        """Read, change and write one entry in one SQLite transaction (atomic across processes).

        The entry's :class:`Summary` and the store's :class:`Totals` are written in the
        same transaction, so listing and ``stats`` never disagree with the entries.
        """
        with self._writing(key):
            frame = self._read(_ENTRY_PREFIX + key)
            current = None
            if frame is not None:
                current = self._frames.entry(key, frame)
            updated = change(current)
            before = None if current is None else self._summary_of(key, current)
            totals = self._totals_in_transaction()  # before this change is written
            written = None if updated is None else encode_entry(updated)
            after = None if updated is None else summarize(updated)
            self._put(_ENTRY_PREFIX + key, written)
            if after is None:
                self._put(_INDEX_PREFIX + key, None)
            else:
                self._put(_INDEX_PREFIX + key, after.to_bytes(), tag=after.recorded_at_ms)
            self._put(_TOTALS, totals.apply(before, after).to_bytes())
            # Storing the take ends this store's lease on the key: one transaction less.
            self._drop_own_lease(key)
            if updated is None or written is None:
                return None
            return updated.with_revision(frame_revision(written))

    def delete(self, key: str) -> bool:
        """Remove ``key`` (and its summary); True when it was there."""
        with self._writing(key):
            try:
                if self._read(_ENTRY_PREFIX + key) is None:
                    return False
                self.update(key, lambda _: None)
            except (CorruptEntryError, UnsafeDataError):
                # A damaged or crafted row is removed unread; the totals are counted afresh.
                self._put(_ENTRY_PREFIX + key, None)
                self._put(_INDEX_PREFIX + key, None)
                self._put(_TOTALS, None)
            return True

    def keys(self) -> list[str]:
        """Every key, sorted."""
        return [name[len(_ENTRY_PREFIX) :] for name, _ in self._scan(_ENTRY_PREFIX, values=False)]

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

    def newest(self, limit: int) -> list[Summary]:
        """The newest ``limit`` summaries, read through the index of recording times."""
        # `+key` keeps SQLite off the key index: walking the tag index from the newest
        # reads 50 rows; ranging over the keys and sorting reads all of them (0.25 s).
        query = (
            "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 AND tag IS NOT NULL "
            "AND +key >= ? AND +key < ? ORDER BY tag DESC LIMIT ?"
        )
        rows = self._query(query, (_INDEX_PREFIX, _after(_INDEX_PREFIX), limit))
        if len(rows) < limit and len(rows) < self._count(_ENTRY_PREFIX):
            # Rows written before the index was tagged: sort everything, once.
            return newest_of(self.summaries(), limit)
        keys = [name[len(_INDEX_PREFIX) :] for name, *_ in rows]
        raws = [self._row_value(mode, filename, value) or b"" for _, mode, filename, value in rows]
        found = []
        for key, summary in zip(keys, parse_many(keys, raws), strict=True):
            summary = summary or self._rebuild_summary(key)
            if summary is not None:
                found.append(summary)
        return found

    def totals(self) -> Totals:
        """The totals kept with the entries; counted afresh (and kept) when missing."""
        totals = Totals.from_bytes(self._read(_TOTALS))
        if totals is not None:
            return totals
        if self.read_only:
            return Totals.of(self.summaries())
        with self._writing("totals"):
            # Counted inside the transaction, so no write slips between count and save.
            totals = self._totals_in_transaction()
            self._put(_TOTALS, totals.to_bytes())
        return totals

    def footprint(self) -> int:
        """The database's pages plus the value files beside it."""
        pages = self._query("PRAGMA page_count", ())[0][0]
        page_size = self._query("PRAGMA page_size", ())[0][0]
        files = self._query(
            "SELECT coalesce(sum(size), 0) FROM Cache WHERE filename IS NOT NULL", ()
        )[0][0]
        return int(pages) * int(page_size) + int(files)

    def claim(self, key: str, revision: int, seconds: float) -> Lease | None:
        """Lease ``key`` for ``seconds`` if its entry is still at ``revision``.

        None when another lease is live (in any process, or another thread of this one)
        or the entry changed meanwhile. Expiry is by this machine's clock, which every
        process sharing the directory shares.
        """
        now = time.time()
        with self._writing(key):
            if self._current_revision(key) != revision:
                return None
            if self._lease_until(key) > now:
                return None
            lease = Lease(key, uuid.uuid4().hex)
            self._write_lease(lease, now + seconds)
            return lease

    def renew(self, lease: Lease, seconds: float) -> bool:
        """Extend ``lease``; False when it expired and another holder took the key."""
        with self._writing(lease.key):
            if self._lease_token(lease.key) != lease.token:
                return False
            self._write_lease(lease, time.time() + seconds)
            return True

    def release(self, lease: Lease) -> None:
        """Give ``lease`` up, if it is still held."""
        if self._read(_LEASE_PREFIX + lease.key) is None:
            return  # the usual case: storing the take already ended the lease
        with self._writing(lease.key):
            if self._lease_token(lease.key) == lease.token:
                self._put(_LEASE_PREFIX + lease.key, None)

    def wait(self, key: str, revision: int, timeout: float) -> None:
        """Poll (with backoff) until the entry changed or nobody holds a lease on it."""
        poll_until_settled(
            lambda: (
                self._current_revision(key) != revision or self._lease_until(key) <= time.time()
            ),
            timeout,
        )

    def _write_lease(self, lease: Lease, until: float) -> None:
        record = {"owner": self._owner, "token": lease.token, "until": until}
        self._put(_LEASE_PREFIX + lease.key, json.dumps(record).encode())

    def _lease_record(self, key: str) -> dict[str, Any]:
        held = self._read(_LEASE_PREFIX + key)
        if held is None:
            return {}
        try:
            record = json.loads(held)
        except ValueError:
            return {}  # unreadable: nobody can rely on it
        return record if isinstance(record, dict) else {}

    def _lease_until(self, key: str) -> float:
        until = self._lease_record(key).get("until")
        if not isinstance(until, int | float) or until > time.time() + MAX_LEASE_SECONDS:
            return 0.0  # unreadable, or further ahead than any lease runs: planted
        return float(until)

    def _lease_token(self, key: str) -> object:
        return self._lease_record(key).get("token")

    def _drop_own_lease(self, key: str) -> None:
        if self._read(_LEASE_PREFIX + key) is None:
            return
        owner = self._lease_record(key).get("owner", self._owner)
        if owner == self._owner:
            self._put(_LEASE_PREFIX + key, None)

    def _current_revision(self, key: str) -> int:
        # As the core sees it: a corrupt entry counts as absent (it is re-recorded).
        try:
            entry = self.get(key)
        except (CorruptEntryError, UnsafeDataError):
            return 0
        return 0 if entry is None else entry.revision

    def _summary_of(self, key: str, entry: Entry) -> Summary:
        raw = self._read(_INDEX_PREFIX + key)
        found = None if raw is None else Summary.from_bytes(key, raw)
        return found if found is not None else summarize(entry)

    def _totals_in_transaction(self) -> Totals:
        found = Totals.from_bytes(self._read(_TOTALS))
        return found if found is not None else Totals.of(self.summaries())

    def get_meta(self, name: str) -> bytes | None:
        """A named blob kept beside the entries."""
        return self._read(_META_PREFIX + name)

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Read, change and write a named blob in one SQLite transaction."""
        with self._writing(name):
            updated = change(self._read(_META_PREFIX + name))
            self._put(_META_PREFIX + name, updated)
            return updated

    def check(self, *, fix: bool = False) -> Check:
        """Decode every entry; with ``fix``, remove those that fail (crafted rows unread)."""
        return check_by_decoding(self, fix=fix, foreign=self.foreign_rows())

    def foreign_rows(self) -> int:
        """Rows seedcache did not write (pickled keys or values); they are never read."""
        query = (
            "SELECT count(*) FROM Cache WHERE raw = 0 OR mode NOT IN (?, ?) "
            "OR NOT (key LIKE 'entry:%' OR key LIKE 'index:%' OR key LIKE 'meta:%' "
            "OR key LIKE 'lease:%' OR key = 'totals:')"
        )
        modes = (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY)
        try:
            return int(self._cache._sql(query, modes).fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.location}: {exc}") from exc

    def close(self) -> None:
        """Close the database connections."""
        self._nowait.close()
        self._cache.close()

    def _rebuild_summary(self, key: str) -> Summary | None:
        """Summarize an entry the index lacks (written before the index existed)."""
        entry = skip_damaged(partial(self.get, key))
        if entry is None:
            return None
        summary = summarize(entry)
        try:
            with self._writing(key):
                self._put(_INDEX_PREFIX + key, summary.to_bytes(), tag=summary.recorded_at_ms)
        except StoreError:
            pass  # a read-only cache still lists; it just rebuilds next time
        return summary

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        depth = getattr(self._transactions, "depth", 0)
        self._transactions.depth = depth + 1
        try:
            with self._cache.transact(retry=True):
                yield
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot write {what} to {self.location}: {exc}") from exc
        except Refused as exc:
            raise UnsafeDataError(f"{self.location}: {exc}") from None
        finally:
            self._transactions.depth = depth

    def _in_transaction(self) -> bool:
        return getattr(self._transactions, "depth", 0) > 0

    def _put(self, name: str, value: bytes | None, *, tag: int | None = None) -> None:
        if value is None:
            self._cache.delete(name, retry=True)
        else:
            self._cache.set(name, value, tag=tag, retry=True)

    def _scan(self, prefix: str, *, values: bool) -> list[tuple[str, bytes | None]]:
        """Rows whose key starts with ``prefix``, sorted, straight from SQLite.

        One query instead of a lookup per key: this is what makes listing 100,000
        entries take a fraction of a second. Only data rows are read; a row holding a
        pickle yields None, never an object.
        """
        upper = _after(prefix)
        columns = "key, mode, filename, value" if values else "key, NULL, NULL, NULL"
        query = f"SELECT {columns} FROM Cache WHERE raw = 1 AND key >= ? AND key < ? ORDER BY key"  # noqa: S608 - fixed columns
        rows = self._query(query, (prefix, upper))
        return [
            (name, self._row_value(mode, filename, value)) for name, mode, filename, value in rows
        ]

    def _count(self, prefix: str) -> int:
        query = "SELECT count(*) FROM Cache WHERE raw = 1 AND key >= ? AND key < ?"
        return int(self._query(query, (prefix, _after(prefix)))[0][0])

    def _query(self, query: str, parameters: tuple[Any, ...]) -> list[Any]:
        try:
            return list(self._cache._sql(query, parameters).fetchall())
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
