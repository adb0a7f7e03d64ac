"""DiskStore: entries in a diskcache directory, as data-only frames, never pickles.

diskcache pickles any value that is not bytes, str or a number, and unpickles whatever
it finds in the database when asked. A cache directory can come from a colleague or a
CI artifact, so :class:`_DataOnlyDisk` refuses both directions: it stores only bytes and
str keys, and a row that claims to be a pickle raises :class:`UnsafeDataError`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from .._codec import decode_entry, encode_entry
from .._errors import CorruptEntryError, StoreError, UnsafeDataError
from .._takes import Entry
from ._base import Change, MetaChange

__all__ = ["DiskStore"]

_ENTRY_PREFIX = "entry:"
_META_PREFIX = "meta:"


class _Refused(Exception):  # noqa: N818 - a signal, converted at the store boundary
    """Raised inside diskcache, which swallows OSError from ``fetch`` as a plain miss."""


class _DataOnlyDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache is untyped
    """A diskcache Disk that stores bytes and str keys only, and never unpickles."""

    def put(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"seedcache stores only str keys, not {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise _Refused(
                "the cache database holds a pickled key; seedcache never unpickles. "
                "The directory was not written by seedcache: remove it or point "
                "SEEDCACHE_DIR elsewhere"
            )
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if not isinstance(value, bytes) or read:
            raise TypeError(f"seedcache stores only bytes, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY):
            raise _Refused(
                f"the cache database holds a value of mode {mode} (pickle or text); "
                "seedcache never unpickles and refused it. The entry was not written by "
                "seedcache: run `seedcache verify --fix` to remove it"
            )
        return super().fetch(mode, filename, value, read)


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
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._cache = diskcache.Cache(
                str(path),
                disk=_DataOnlyDisk,
                # A recording is not disposable: never evict, never expire.
                eviction_policy="none",
                size_limit=2**62,
                cull_limit=0,
                statistics=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open cache directory {str(path)!r}: {exc}") from exc
        self._path = path

    @property
    def location(self) -> str:
        """The cache directory."""
        return str(self._path)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None."""
        frame = self._read(_ENTRY_PREFIX + key)
        return None if frame is None else decode_entry(frame, where=self._where(key))

    def update(self, key: str, change: Change) -> Entry | None:
        """Read, change and write one entry in one SQLite transaction (atomic across processes)."""
        updated: list[Entry | None] = []

        def change_frame(frame: bytes | None) -> bytes | None:
            current = None if frame is None else decode_entry(frame, where=self._where(key))
            updated.append(change(current))
            return None if updated[-1] is None else encode_entry(updated[-1])

        self._transact(_ENTRY_PREFIX + key, change_frame, where=key)
        return updated[-1]

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it was there."""
        return bool(self._cache.delete(_ENTRY_PREFIX + key, retry=True))

    def keys(self) -> list[str]:
        """Every key, sorted."""
        try:
            names = list(self._cache.iterkeys())
        except _Refused as exc:
            raise UnsafeDataError(f"{self.location}: {exc}") from None
        return sorted(k[len(_ENTRY_PREFIX) :] for k in names if k.startswith(_ENTRY_PREFIX))

    def entries(self) -> Iterator[Entry]:
        """Every entry, in key order."""
        for key in self.keys():
            entry = self.get(key)
            if entry is not None:
                yield entry

    def get_meta(self, name: str) -> bytes | None:
        """A named blob kept beside the entries."""
        return self._read(_META_PREFIX + name)

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Read, change and write a named blob in one SQLite transaction."""
        return self._transact(_META_PREFIX + name, change, where=name)

    def close(self) -> None:
        """Close the database connection."""
        self._cache.close()

    def _transact(self, name: str, change: MetaChange, *, where: str) -> bytes | None:
        try:
            with self._cache.transact(retry=True):
                updated = change(self._read(name))
                if updated is None:
                    self._cache.delete(name, retry=True)
                else:
                    self._cache.set(name, updated, retry=True)
                return updated
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot write {where} to {self.location}: {exc}") from exc

    def _read(self, name: str) -> bytes | None:
        try:
            value = self._cache.get(name, default=None, retry=True)
        except _Refused as exc:
            raise UnsafeDataError(f"{self._where(name)}: {exc}") from None
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot read {name!r} from {self.location}: {exc}") from exc
        if value is not None and not isinstance(value, bytes):
            raise CorruptEntryError(f"{self._where(name)}: not a seedcache entry")
        return value

    def _where(self, key: str) -> str:
        return f"{self.location} entry {key}"
