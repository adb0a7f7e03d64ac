"""CassetteStore: one pretty JSON file per cassette, made to be committed and diffed.

The whole file is rewritten on every change, atomically (temporary file, fsync, rename),
so a reader or a crash never sees half a cassette. Entries keep the order they were
first recorded in, so a re-recording shows up in review as a small diff.

Many stores may share one file: tests of a class, parametrizations, xdist workers. Every
change is made under a lock file beside the cassette, to the file as it is on disk at
that moment (read again if another store changed it), so no store's takes are lost.
Reads use the copy in memory, refreshed when the file's size, time or inode changed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from .._errors import CorruptEntryError, StoreError
from .._takes._take import Entry
from ._base import (
    NOT_IN_MEMORY,
    BaseStore,
    Change,
    Check,
    Lease,
    MetaChange,
    NotInMemory,
    poll_until_settled,
)
from ._bounded import read_bounded
from ._cassette_index import LAZY_FROM_BYTES, index_cassette, same_as_parsed
from ._codec import entry_from_document, entry_to_document
from ._filelock import LOCK_TIMEOUT_SECONDS, exclusive
from ._json_text import dumps_indented

__all__ = [
    "CASSETTE_FORMAT",
    "CassetteContents",
    "CassetteStore",
    "parse_cassette",
    "read_cassette",
    "read_cassette_bytes",
    "write_atomically",
    "write_cassette",
]

CASSETTE_FORMAT = 1
# A cassette is text for version control; anything larger is a mistake or an attack.
MAX_CASSETTE_BYTES = 256 * 1024 * 1024

_Signature = tuple[int, int, int, int]
# Revisions are handed out from one counter per process: an entry read again from a file
# another process rewrote gets a new one, so a stale revision never matches by chance.
_revisions = itertools.count(1)


class CassetteStore(BaseStore):
    """Entries in one JSON file. Missing file: an empty cassette, created on first write."""

    lazy_from_bytes = LAZY_FROM_BYTES
    """Files this large or larger, in the layout seedcache writes, are indexed and their
    entries decoded when first read (:mod:`._cassette_index`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        tolerate_broken: bool = False,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    ) -> None:
        """Open ``path``; entries that do not decode are an error unless ``tolerate_broken``
        (for :meth:`check`, which reports and removes them). A write waits at most
        ``lock_timeout`` seconds for another process's write to finish."""
        self._path = path if isinstance(path, Path) else Path(path)
        self._lock_timeout = lock_timeout
        self._tolerate_broken = tolerate_broken
        self._broken: list[str] = []
        self._lock = threading.RLock()
        self._entries: Mapping[str, Entry] = {}
        self._meta: dict[str, Any] = {}
        self._seen: _Signature | None = None
        """The file as last read or written by this store: (device, inode, mtime, size)."""
        self._digest: int | None = None
        """A hash of the bytes last read or written, to tell a changed file from the same."""
        self._holding = 0
        self._batch: tuple[Mapping[str, Entry], dict[str, Any]] | None = None
        self._leases: dict[str, tuple[str, float]] = {}
        """Leases by key: (token, expiry by time.monotonic)."""
        with self._lock:
            self._refresh()

    @property
    def location(self) -> str:
        """The cassette file."""
        return str(self._path)

    @property
    def kind(self) -> str:
        """A cassette file."""
        return "cassette"

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None."""
        with self._lock:
            self._refresh()
            return self._entries.get(key)

    def get_in_memory(self, key: str) -> Entry | NotInMemory | None:
        """:meth:`get` when it needs no waiting: the file is as this store last read it
        and no other thread holds the store. Otherwise :data:`NOT_IN_MEMORY`, and
        :meth:`get` (from a worker thread) does the reading or the waiting.

        One ``stat()`` is the only system call: an async client's replay is answered on
        the event loop instead of paying a hop to a thread.
        """
        if not self._lock.acquire(blocking=False):
            return NOT_IN_MEMORY
        try:
            if self._batch is None and _signature(self._path) != self._seen:
                return NOT_IN_MEMORY
            return self._entries.get(key)
        finally:
            self._lock.release()

    def update(self, key: str, change: Change) -> Entry | None:
        """Apply ``change`` to the entry as it is on disk now, and rewrite the file.

        Memory changes only once the file is written: a failed write leaves both as they were.
        """
        with self._lock, self._exclusive():
            self._refresh(verify=True)
            after = change(self._entries.get(key))
            if after is not None:
                after = after.with_revision(next(_revisions))
            entries = dict(self._entries)
            _assign(entries, key, after)
            self._commit(entries, self._meta)
            self._leases.pop(key, None)  # storing ends the lease
            return after

    def delete(self, key: str) -> bool:
        """Remove ``key`` and rewrite the file."""
        with self._lock, self._exclusive():
            self._refresh(verify=True)
            if key not in self._entries:
                return False
            self.update(key, lambda _: None)
            return True

    def keys(self) -> list[str]:
        """Keys in recording order."""
        with self._lock:
            self._refresh()
            return list(self._entries)

    def entries(self) -> Iterator[Entry]:
        """Entries in recording order (copies, as of the call)."""
        with self._lock:
            self._refresh()
            snapshot = list(self._entries.values())
        yield from snapshot

    def footprint(self) -> int:
        """The file's size."""
        signature = _signature(self._path)
        return 0 if signature is None else signature[3]

    def check(self, *, fix: bool = False) -> Check:
        """The entries that do not decode; ``fix`` rewrites the file without them."""
        with self._lock, self._exclusive() if fix else contextlib.nullcontext():
            if not self._path.exists():
                raise StoreError(f"no cassette at {self._path}")
            # Read apart from memory, every entry decoded (memory may hold an index).
            data = read_cassette_bytes(self._path)
            contents = parse_cassette(data, where=str(self._path))
            broken = [(str(self._path), message.split(": ", 1)[-1]) for message in contents.broken]
            checked = len(contents.entries) + len(broken)
            indexed = len(data) >= self.lazy_from_bytes
            if (
                indexed
                and not broken
                and not same_as_parsed(data, [e.key for e in contents.entries])
            ):
                broken.append(
                    (
                        str(self._path),
                        "laid out so that opening it by its index reads other entries than "
                        "parsing it does (an entry start inside another entry); "
                        "`verify --fix` writes it again",
                    )
                )
            if fix and broken:
                self._broken = []
                self._write({entry.key: entry for entry in contents.entries}, contents.meta)
                self._seen = self._digest = None  # memory is read afresh from what was written
        return Check(checked, broken, 0, fixed=fix and bool(broken))

    def claim(self, key: str, revision: int, seconds: float) -> Lease | None:
        """Lease ``key`` among this store's callers if its entry is still at ``revision``."""
        with self._lock:
            self._refresh()
            entry = self._entries.get(key)
            if (0 if entry is None else entry.revision) != revision:
                return None
            held = self._leases.get(key)
            if held is not None and held[1] > time.monotonic():
                return None
            lease = Lease(key, uuid.uuid4().hex)
            self._leases[key] = (lease.token, time.monotonic() + seconds)
            return lease

    def renew(self, lease: Lease, seconds: float) -> bool:
        """Extend ``lease``; False when it was lost."""
        with self._lock:
            held = self._leases.get(lease.key)
            if held is None or held[0] != lease.token:
                return False
            self._leases[lease.key] = (lease.token, time.monotonic() + seconds)
            return True

    def release(self, lease: Lease) -> None:
        """Give ``lease`` up, if it is still held."""
        with self._lock:
            held = self._leases.get(lease.key)
            if held is not None and held[0] == lease.token:
                del self._leases[lease.key]

    def wait(self, key: str, revision: int, timeout: float) -> None:
        """Poll until the entry changed or its lease ended."""

        def settled() -> bool:
            with self._lock:
                self._refresh()
                entry = self._entries.get(key)
                held = self._leases.get(key)
            changed = (0 if entry is None else entry.revision) != revision
            return changed or held is None or held[1] <= time.monotonic()

        poll_until_settled(settled, timeout)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the lock and defer rewriting the file until the end: one write for many changes.

        If that write fails, memory goes back to how it was before the batch.
        """
        with self._lock, self._exclusive():
            if self._batch is not None:
                yield
                return
            self._refresh(verify=True)
            self._batch = (self._entries, self._meta)
            try:
                yield
            except BaseException:
                self._entries, self._meta = self._batch
                raise
            else:
                before = self._batch
                self._batch = None
                if self._entries is not before[0] or self._meta is not before[1]:
                    try:
                        self._write(self._entries, self._meta)
                    except BaseException:
                        self._entries, self._meta = before
                        raise
            finally:
                self._batch = None

    def get_meta(self, name: str) -> bytes | None:
        """A named JSON blob kept in the cassette's ``meta`` section."""
        with self._lock:
            self._refresh()
            return self._meta_bytes(name)

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Change a JSON blob in the cassette's ``meta`` section and rewrite the file.

        Blobs must be JSON: they are kept readable inside the cassette.
        """
        with self._lock, self._exclusive():
            self._refresh(verify=True)
            updated = change(self._meta_bytes(name))
            try:
                value = None if updated is None else json.loads(updated)
            except ValueError as exc:
                raise StoreError(f"meta {name!r} for {self.location} is not JSON") from exc
            meta = dict(self._meta)
            _assign(meta, name, value)
            self._commit(self._entries, meta)
            return updated

    def _meta_bytes(self, name: str) -> bytes | None:
        if name not in self._meta:
            return None
        return json.dumps(self._meta[name], ensure_ascii=False).encode()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The lock file, taken once per thread however deeply changes nest."""
        if self._holding:
            self._holding += 1
            try:
                yield
            finally:
                self._holding -= 1
            return
        with exclusive(self._path, timeout=self._lock_timeout):
            self._holding = 1
            try:
                yield
            finally:
                self._holding = 0

    def _refresh(self, *, verify: bool = False) -> None:
        """Read the file again if it changed since this store last read or wrote it.

        Reads trust the file's (device, inode, mtime, size). Changes, made under the lock,
        ``verify`` the bytes too: a coarse clock and a reused inode can make a file
        another process rewrote look unchanged, and a change must never be made to a
        stale copy (as git rechecks "racily clean" files).
        """
        if self._batch is not None:
            return  # inside a batch the lock is held: nobody else can have changed it
        if not verify and self._seen is not None and _signature(self._path) == self._seen:
            return
        # Changed, never read, or missing when last looked: read it, with the signature of
        # the file opened (what was read, and no second system call to learn it).
        found = _read_signed(self._path)
        if found is None:
            self._entries, self._meta, self._digest = {}, {}, None
            self._seen = None
            return
        signature, data = found
        digest = xxhash.xxh3_64_intdigest(data)
        if digest != self._digest and self._open_lazily(data):
            self._digest = digest
        elif digest != self._digest:
            contents = parse_cassette(data, where=str(self._path))
            self._broken = contents.broken
            if contents.broken and not self._tolerate_broken:
                raise CorruptEntryError(
                    f"{contents.broken[0]}; `seedcache --cassette {self._path} verify` "
                    "lists every damaged entry and `verify --fix` removes them"
                )
            self._entries = {
                entry.key: entry.with_revision(next(_revisions)) for entry in contents.entries
            }
            self._meta = contents.meta
            self._digest = digest
        self._seen = signature

    def _open_lazily(self, data: bytes) -> bool:
        """Index a large cassette in the layout seedcache writes; its entries are decoded
        when first read (see :mod:`._cassette_index`). False: parse it whole."""
        if len(data) < self.lazy_from_bytes or self._tolerate_broken:
            return False
        indexed = index_cassette(
            data, where=str(self._path), revision=functools.partial(next, _revisions)
        )
        if indexed is None:
            return False
        self._entries, self._meta = indexed
        self._broken = []
        return True

    def _commit(self, entries: Mapping[str, Entry], meta: dict[str, Any]) -> None:
        if self._batch is None:
            self._write(entries, meta)
        self._entries, self._meta = entries, meta

    def _write(self, entries: Mapping[str, Entry], meta: dict[str, Any]) -> None:
        if self._broken:
            # Rewriting would drop the entries that did not decode, unasked.
            raise CorruptEntryError(
                f"{self._path} holds entries that do not decode; "
                f"`seedcache --cassette {self._path} verify --fix` removes them first"
            )
        data = write_cassette(self._path, entries.values(), meta)
        self._digest = xxhash.xxh3_64_intdigest(data)
        self._seen = _signature(self._path)


def _signature(path: Path) -> _Signature | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read cassette {path}: {exc}") from exc
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@dataclass
class CassetteContents:
    """What a cassette file holds: the entries that decode, and what is wrong with the rest."""

    entries: list[Entry] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    """One message per entry that could not be decoded, naming where it is."""
    meta: dict[str, Any] = field(default_factory=dict)


def read_cassette(path: Path) -> CassetteContents:
    """Read a cassette entry by entry; a damaged file as a whole raises CorruptEntryError."""
    return parse_cassette(read_cassette_bytes(path), where=str(path))


def read_cassette_bytes(path: Path) -> bytes:
    """A cassette file's bytes, refusing files too large to be one."""
    found = _read_signed(path)
    if found is None:
        raise StoreError(f"cannot read cassette {path}: no such file")
    return found[1]


def _read_signed(path: Path) -> tuple[_Signature, bytes] | None:
    """A cassette file's signature (of the file opened) and bytes; None when it is missing."""
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_size > MAX_CASSETTE_BYTES:
                raise CorruptEntryError(
                    f"{path}: cassette is {stat.st_size} bytes, over the {MAX_CASSETTE_BYTES} "
                    "byte limit; a cassette this big is a mistake or an attack"
                )
            data = read_bounded(handle, stat.st_size, MAX_CASSETTE_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"cannot read cassette {path}: {exc}") from exc
    if len(data) > MAX_CASSETTE_BYTES:
        raise CorruptEntryError(f"{path}: cassette is over the {MAX_CASSETTE_BYTES} byte limit")
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size), data


def parse_cassette(data: bytes, *, where: str) -> CassetteContents:
    """Decode a cassette document entry by entry; a damaged document raises CorruptEntryError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptEntryError(
            f"{where}: not UTF-8 text at byte {exc.start}; restore it from version control"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.lstrip().startswith("{"):
            # Not a damaged cassette but another file (a typo'd path, pyproject.toml).
            raise CorruptEntryError(
                f"{where}: not a seedcache cassette (a cassette is a JSON object with "
                f'"seedcache": {CASSETTE_FORMAT}); check the path'
            ) from None
        raise CorruptEntryError(
            f"{where}: not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            "restore it from version control or delete it to record afresh"
        ) from None
    except ValueError as exc:  # an integer of thousands of digits
        found = _HUGE_INTEGER.search(text)
        at = "" if found is None else f" at line {_line_column(text, found.start())}"
        raise CorruptEntryError(f"{where}: not a cassette{at}: {exc}") from None
    except RecursionError:
        raise CorruptEntryError(f"{where}: JSON nested too deeply to be a cassette") from None
    if "NaN" in text or "Infinity" in text:
        place = _non_finite(document)
        if place is not None:
            raise CorruptEntryError(f"{where}: {place}: NaN and Infinity are not JSON numbers")
    version = document.get("seedcache") if isinstance(document, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > CASSETTE_FORMAT:
        raise CorruptEntryError(
            f"{where}: written by a newer seedcache (cassette format {version}; this one reads "
            f"format {CASSETTE_FORMAT}): upgrade seedcache to read it"
        )
    if not isinstance(document, dict) or version != CASSETTE_FORMAT:
        raise CorruptEntryError(
            f"{where}: not a seedcache cassette (expected a JSON object with "
            f'"seedcache": {CASSETTE_FORMAT})'
        )
    raw_entries = document.get("entries", [])
    if not isinstance(raw_entries, list):
        raise CorruptEntryError(f"{where}: 'entries' must be a list")
    contents = CassetteContents()
    for index, raw in enumerate(raw_entries):
        place = f"{where}: entries[{index}]"
        try:
            contents.entries.append(entry_from_document(raw, where=place))
        except CorruptEntryError as exc:
            contents.broken.append(str(exc))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # Whatever a hand-edited or hostile document holds, it is reported, not raised.
            contents.broken.append(f"{place}: malformed entry ({exc})")
    meta = document.get("meta", {})
    contents.meta = meta if isinstance(meta, dict) else {}
    return contents


_HUGE_INTEGER = re.compile(r"\d{4300,}")


def _line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line} column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def _non_finite(document: Any) -> str | None:
    """Where ``document`` holds NaN or an infinity (``entries[0].takes``), if anywhere."""
    pending: list[tuple[Any, str]] = [(document, "")]
    while pending:
        value, place = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return place or "the document"
        if isinstance(value, dict):
            pending.extend(
                (item, f"{place}.{key}" if place else str(key)) for key, item in value.items()
            )
        elif isinstance(value, list):
            pending.extend((item, f"{place}[{index}]") for index, item in enumerate(value))
    return None


def write_cassette(path: Path, entries: Iterable[Entry], meta: dict[str, Any]) -> bytes:
    """Write a whole cassette atomically; return the bytes written."""
    document: dict[str, Any] = {
        "seedcache": CASSETTE_FORMAT,
        "entries": [entry_to_document(e) for e in entries],
    }
    if meta:
        document["meta"] = meta
    data = (dumps_indented(document, 2, ensure_ascii=False) + "\n").encode()
    write_atomically(path, data)
    return data


def _assign(mapping: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        mapping.pop(name, None)
    else:
        mapping[name] = value


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never half.

    A symbolic link is written through: its target is replaced and the link stays.
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; a cassette is meant for version control like any file.
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write {path}: {exc}") from exc
        raise
