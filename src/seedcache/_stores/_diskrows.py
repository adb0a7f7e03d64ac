"""Opening a diskcache directory that may come from anyone: a colleague, a CI artifact, a PR.

diskcache trusts its directory. It unpickles values, applies every ``sqlite_*`` row of
its Settings table as a PRAGMA on every connection, hands ``disk_*`` rows to the Disk as
arguments, and reads or deletes whatever path a row's ``filename`` names (an absolute
path or ``../`` included, and then ``os.removedirs`` its parents). Here:

- :class:`DataOnlyDisk` stores bytes and str keys only, never unpickles, and reads or
  removes only value files diskcache itself names (``ab/cd/<28 hex>.val`` inside the
  directory, symbolic links resolved: never the database, its WAL or SHM), only regular
  files, at most :data:`MAX_VALUE_BYTES`, and never removes a file another row names;
- :func:`open_rows` opens the cache with seedcache's settings only: rows a stranger added
  to Settings are deleted first, and every known setting is passed explicitly;
- :class:`ReadOnlyRows` serves reads from a directory seedcache may not write (a CI cache
  or a mounted volume), straight from SQLite, without diskcache.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import diskcache

from .._errors import StoreError
from ._bounded import read_bounded

__all__ = [
    "MAX_VALUE_BYTES",
    "DataOnlyDisk",
    "ReadOnlyRows",
    "Refused",
    "open_rows",
    "refuse_unless_plain",
]

# A take is an API response; anything larger in one value file is a mistake or an attack.
MAX_VALUE_BYTES = 256 * 1024 * 1024

_SETTINGS: dict[str, Any] = {
    **diskcache.core.DEFAULT_SETTINGS,
    # A recording is not disposable: never evict, never expire.
    "eviction_policy": "none",
    "size_limit": 2**62,
    "cull_limit": 0,
    "statistics": 0,
    # Index rows are tagged with their newest recording time: `ls` reads the newest 50
    # of 100,000 entries through this index instead of sorting them all.
    "tag_index": 1,
}
_KNOWN_SETTINGS = frozenset(_SETTINGS) | frozenset(diskcache.core.METADATA)


class Refused(Exception):  # noqa: N818 - a signal, converted at the store boundary
    """Raised inside diskcache, which swallows OSError from ``fetch`` as a plain miss."""


class DataOnlyDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache is untyped
    """A diskcache Disk that stores bytes and str keys only, and never unpickles."""

    named_elsewhere: Any = None
    """Set by :func:`open_rows`: whether a row (still) names a value file. A planted row
    may name another entry's file; removing that row must not remove the file."""

    def put(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"seedcache stores only str keys, not {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise Refused(
                "the cache database holds a pickled key; seedcache never unpickles. "
                "The directory was not written by seedcache: remove it or point "
                "SEEDCACHE_DIR elsewhere"
            )
        return super().get(key, raw)

    def filename(self, key: Any = diskcache.UNKNOWN, value: Any = diskcache.UNKNOWN) -> Any:
        """A new value file's name, refused when its folders are links: a link planted
        as ``ab`` would send recorded answers out of the private cache directory."""
        name, full = super().filename(key, value)
        root = os.path.realpath(self._directory)
        folder = os.path.normpath(os.path.dirname(os.path.join(root, name)))
        if os.path.realpath(folder) != folder:
            raise StoreError(
                f"the value folder {os.path.dirname(name)} in {self._directory} is a symbolic "
                "link; seedcache writes nothing through one. Remove it"
            )
        return name, full

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if not isinstance(value, bytes) or read:
            raise TypeError(f"seedcache stores only bytes, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_RAW:
            return super().fetch(mode, filename, value, read)
        if mode == diskcache.core.MODE_BINARY and not read:
            return read_value_file(self._directory, filename)
        raise Refused(
            f"the cache database holds a value of mode {mode} (pickle or text); "
            "seedcache never unpickles and refused it. The entry was not written by "
            "seedcache: run `seedcache verify --fix` to remove it"
        )

    def remove(self, file_path: Any) -> None:
        """Remove a value file, and its emptied folders up to (never above) the cache."""
        root = os.path.realpath(self._directory)
        full = _inside(root, file_path)
        if full is None:
            return  # a row naming a file outside the cache, or not a value file: never
        if self.named_elsewhere is not None and self.named_elsewhere(file_path):
            return  # another entry's file, named by a planted row
        with contextlib.suppress(OSError):
            os.remove(full)
        folder = os.path.dirname(full)
        while folder != root and folder.startswith(root + os.sep):
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = os.path.dirname(folder)


def read_value_file(directory: str, filename: Any) -> bytes:
    """The bytes of a value file named by a row; refused unless safe to read."""
    root = os.path.realpath(directory)
    full = _inside(root, filename)
    if full is None:
        raise Refused(
            f"a row names the value file {filename!r}, which is not a plain value file inside "
            "the cache directory (outside it, through a link, or not named as diskcache "
            "names them); seedcache reads no such file. Run `seedcache verify --fix`"
        )
    try:
        # Non-blocking: a FIFO planted as a value file must not hang the read.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        descriptor = os.open(full, flags)
    except OSError as exc:
        raise Refused(f"cannot read value file {filename!r}: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"value file {filename!r} is not a regular file; refused")
        if info.st_size > MAX_VALUE_BYTES:
            raise Refused(f"value file {filename!r} is over {MAX_VALUE_BYTES} bytes; refused")
        data = read_bounded(handle, info.st_size, MAX_VALUE_BYTES)
    if len(data) > MAX_VALUE_BYTES:
        raise Refused(f"value file {filename!r} is over {MAX_VALUE_BYTES} bytes; refused")
    return data


# What diskcache names a value file: two levels of two hex digits, then 28 hex digits.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}[/\\][0-9a-f]{2}[/\\][0-9a-f]{28}\.val")


def _inside(root: str, filename: Any) -> str | None:
    """The path of the value file ``filename`` under ``root``; None when it is not one
    diskcache would name, or any part of it is a symbolic link (a link inside the cache
    may point at the database, or at another entry's file)."""
    if not isinstance(filename, str) or not _VALUE_FILE.fullmatch(filename):
        return None
    joined = os.path.normpath(os.path.join(root, filename))
    full = os.path.realpath(joined)
    if full != joined:
        return None
    if not full.startswith(root + os.sep):
        return None
    return full


def open_rows(path: Path) -> Any:
    """A diskcache Cache over ``path`` with seedcache's settings and nothing else."""
    database = path / diskcache.core.DBNAME
    refuse_unless_plain(database)
    if database.exists():
        _forget_foreign_settings(database)
    cache = diskcache.Cache(str(path), disk=DataOnlyDisk, **_SETTINGS)
    # Only rows with a value file are indexed: a lookup per removed file, not a scan.
    cache._sql(
        "CREATE INDEX IF NOT EXISTS seedcache_value_files ON Cache(filename)"
        " WHERE filename IS NOT NULL"
    )

    def named_elsewhere(filename: str) -> bool:
        row = cache._sql("SELECT 1 FROM Cache WHERE filename = ? LIMIT 1", (filename,))
        return row.fetchone() is not None

    cache.disk.named_elsewhere = named_elsewhere
    return cache


def refuse_unless_plain(database: Path) -> None:
    """The database must be a plain file in the directory: a link (a CI cache tarball can
    carry one) would make SQLite change a file elsewhere."""
    if database.is_symlink() or (database.exists() and not database.is_file()):
        raise StoreError(
            f"{database} is a symbolic link or not a regular file; seedcache opens only a "
            "plain database file. Remove it, or point SEEDCACHE_DIR elsewhere"
        )


def _forget_foreign_settings(database: Path) -> None:
    """Delete Settings rows seedcache does not know: diskcache would apply them."""
    placeholders = ",".join("?" for _ in _KNOWN_SETTINGS)
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as connection:
        try:
            connection.execute(
                f"DELETE FROM Settings WHERE key NOT IN ({placeholders})",  # noqa: S608 - placeholders only
                tuple(_KNOWN_SETTINGS),
            )
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise


class ReadOnlyRows:
    """The reads :class:`~seedcache.DiskStore` makes, from a directory it may not write.

    SQLite is opened read-only (``mode=ro``, then ``immutable=1`` for a write-ahead log
    whose shared-memory file cannot be created); no setting of the database is applied.
    Every change raises :class:`StoreError`.
    """

    def __init__(self, path: Path) -> None:
        self._directory = str(path)
        database = path / diskcache.core.DBNAME
        refuse_unless_plain(database)
        if not database.is_file():
            raise StoreError(f"{path} holds no cache database and cannot be written")
        self._lock = threading.Lock()
        self._connection = _connect_read_only(database)

    def get(self, name: str, default: Any = None, retry: bool = False) -> Any:
        """The value of row ``name`` (a str key), or ``default``."""
        row = self._execute(
            "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1", (name,)
        ).fetchone()
        if row is None:
            return default
        mode, filename, value = row
        if mode == diskcache.core.MODE_RAW:
            return bytes(value) if isinstance(value, bytes | memoryview) else value
        if mode == diskcache.core.MODE_BINARY:
            return read_value_file(self._directory, filename)
        raise Refused(
            f"the cache database holds a value of mode {mode} (pickle or text); "
            "seedcache never unpickles and refused it"
        )

    def _sql(self, query: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self._execute(query, parameters)

    def _execute(self, query: str, parameters: tuple[Any, ...]) -> Any:
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        return _Rows(rows)

    @contextlib.contextmanager
    def transact(self, retry: bool = False) -> Iterator[None]:
        """Changes are refused: the directory cannot be written."""
        raise sqlite3.OperationalError(
            "the cache directory is read-only; seedcache can replay and list it but not "
            "record into it"
        )
        yield  # pragma: no cover - a generator for contextmanager

    def set(self, name: str, value: bytes, tag: Any = None, retry: bool = False) -> None:
        """Refused: read-only."""
        raise sqlite3.OperationalError("the cache directory is read-only")

    def delete(self, name: str, retry: bool = False) -> bool:
        """Refused: read-only."""
        raise sqlite3.OperationalError("the cache directory is read-only")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()


class _Rows:
    """Fetched rows with the cursor methods the store calls."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


def _connect_read_only(database: Path) -> sqlite3.Connection:
    location = quote(str(database.resolve()))
    last: sqlite3.Error | None = None
    for flags in ("mode=ro", "immutable=1"):
        try:
            connection = sqlite3.connect(
                f"file:{location}?{flags}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            last = exc
            continue
        try:
            connection.execute("SELECT count(*) FROM Cache").fetchone()
        except sqlite3.Error as exc:
            last = exc
            connection.close()
            continue
        return connection
    raise StoreError(f"cannot read the cache database {database}: {last}")
