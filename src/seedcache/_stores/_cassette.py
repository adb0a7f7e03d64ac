"""CassetteStore: one pretty JSON file per cassette, made to be committed and diffed.

The whole file is rewritten on every change, atomically (temporary file, fsync, rename),
so a reader or a crash never sees half a cassette. Entries keep the order they were
first recorded in, so a re-recording shows up in review as a small diff.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._codec import entry_from_document, entry_to_document
from .._errors import CorruptEntryError, StoreError
from .._index import Summary, summarize
from .._takes import Entry
from ._base import Change, MetaChange

__all__ = [
    "CASSETTE_FORMAT",
    "CassetteContents",
    "CassetteStore",
    "read_cassette",
    "write_atomically",
    "write_cassette",
]

CASSETTE_FORMAT = 1
# A cassette is text for version control; anything larger is a mistake or an attack.
MAX_CASSETTE_BYTES = 256 * 1024 * 1024


class CassetteStore:
    """Entries in one JSON file. Missing file: an empty cassette, created on first write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.RLock()
        self._entries: dict[str, Entry] = {}
        self._meta: dict[str, Any] = {}
        self._batching = False
        self._pending = False
        if self._path.exists():
            self._load()

    @property
    def location(self) -> str:
        """The cassette file."""
        return str(self._path)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None."""
        with self._lock:
            return self._entries.get(key)

    def update(self, key: str, change: Change) -> Entry | None:
        """Apply ``change`` and rewrite the file; on a failed write, memory is rolled back."""
        with self._lock:
            after = change(self._entries.get(key))
            self._replace(self._entries, key, after)
            return after

    def delete(self, key: str) -> bool:
        """Remove ``key`` and rewrite the file."""
        with self._lock:
            if key not in self._entries:
                return False
            self.update(key, lambda _: None)
            return True

    def keys(self) -> list[str]:
        """Keys in recording order."""
        with self._lock:
            return list(self._entries)

    def entries(self) -> Iterator[Entry]:
        """Entries in recording order."""
        with self._lock:
            snapshot = list(self._entries.values())
        yield from snapshot

    def summaries(self) -> Iterator[Summary]:
        """Summaries of the entries, in recording order (a cassette is held in memory)."""
        for entry in self.entries():
            yield summarize(entry)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Defer rewriting the file until the end: one write for many changes."""
        with self._lock:
            if self._batching:
                yield
                return
            self._batching = True
            try:
                yield
            finally:
                self._batching = False
                if self._pending:
                    self._pending = False
                    self._write()

    def get_meta(self, name: str) -> bytes | None:
        """A named JSON blob kept in the cassette's ``meta`` section."""
        with self._lock:
            if name not in self._meta:
                return None
            return json.dumps(self._meta[name], ensure_ascii=False).encode()

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Change a JSON blob in the cassette's ``meta`` section and rewrite the file.

        Blobs must be JSON: they are kept readable inside the cassette.
        """
        with self._lock:
            updated = change(self.get_meta(name))
            try:
                value = None if updated is None else json.loads(updated)
            except ValueError as exc:
                raise StoreError(f"meta {name!r} for {self.location} is not JSON") from exc
            self._replace(self._meta, name, value)
            return updated

    def _replace(self, mapping: dict[str, Any], name: str, value: Any) -> None:
        """Set (or with None, remove) ``mapping[name]`` and rewrite the file; undo on failure."""
        before = mapping.get(name)
        _assign(mapping, name, value)
        try:
            self._write()
        except BaseException:
            _assign(mapping, name, before)
            raise

    def close(self) -> None:
        """Nothing to release: every change is already on disk."""

    def _load(self) -> None:
        contents = read_cassette(self._path)
        if contents.broken:
            raise CorruptEntryError(
                f"{contents.broken[0]}; `seedcache --cassette {self._path} verify` lists "
                "every damaged entry and `verify --fix` removes them"
            )
        self._entries = {entry.key: entry for entry in contents.entries}
        self._meta = contents.meta

    def _write(self) -> None:
        if self._batching:
            self._pending = True
            return
        write_cassette(self._path, self._entries.values(), self._meta)


@dataclass
class CassetteContents:
    """What a cassette file holds: the entries that decode, and what is wrong with the rest."""

    entries: list[Entry] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    """One message per entry that could not be decoded, naming where it is."""
    meta: dict[str, Any] = field(default_factory=dict)


def read_cassette(path: Path) -> CassetteContents:
    """Read a cassette entry by entry; a damaged file as a whole raises CorruptEntryError."""
    where = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StoreError(f"cannot read cassette {where}: {exc}") from exc
    if size > MAX_CASSETTE_BYTES:
        raise CorruptEntryError(
            f"{where}: cassette is {size} bytes, over the {MAX_CASSETTE_BYTES} byte limit; "
            "a cassette this big is a mistake or an attack"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptEntryError(
            f"{where}: not UTF-8 text at byte {exc.start}; restore it from version control"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot read cassette {where}: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptEntryError(
            f"{where}: not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            "restore it from version control or delete it to record afresh"
        ) from None
    except RecursionError:
        raise CorruptEntryError(f"{where}: JSON nested too deeply to be a cassette") from None
    if not isinstance(document, dict) or document.get("seedcache") != CASSETTE_FORMAT:
        raise CorruptEntryError(
            f"{where}: not a seedcache cassette (expected a JSON object with "
            f'"seedcache": {CASSETTE_FORMAT})'
        )
    raw_entries = document.get("entries", [])
    if not isinstance(raw_entries, list):
        raise CorruptEntryError(f"{where}: 'entries' must be a list")
    contents = CassetteContents()
    for index, raw in enumerate(raw_entries):
        try:
            contents.entries.append(entry_from_document(raw, where=f"{where}: entries[{index}]"))
        except CorruptEntryError as exc:
            contents.broken.append(str(exc))
    meta = document.get("meta", {})
    contents.meta = meta if isinstance(meta, dict) else {}
    return contents


def write_cassette(path: Path, entries: Iterable[Entry], meta: dict[str, Any]) -> None:
    """Write a whole cassette atomically."""
    document: dict[str, Any] = {
        "seedcache": CASSETTE_FORMAT,
        "entries": [entry_to_document(e) for e in entries],
    }
    if meta:
        document["meta"] = meta
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_atomically(path, text.encode())


def _assign(mapping: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        mapping.pop(name, None)
    else:
        mapping[name] = value


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StoreError(f"cannot write cassette {path}: {exc}") from exc
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
            raise StoreError(f"cannot write cassette {path}: {exc}") from exc
        raise
