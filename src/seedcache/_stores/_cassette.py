"""CassetteStore: one pretty JSON file per cassette, made to be committed and diffed.

The whole file is rewritten on every change, atomically (temporary file, fsync, rename),
so a reader or a crash never sees half a cassette. Entries keep the order they were
first recorded in, so a re-recording shows up in review as a small diff.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._codec import entry_from_document, entry_to_document
from .._errors import CorruptEntryError, StoreError
from .._takes import Entry
from ._base import Change, MetaChange

__all__ = ["CASSETTE_FORMAT", "CassetteStore"]

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
        where = str(self._path)
        try:
            size = self._path.stat().st_size
            if size > MAX_CASSETTE_BYTES:
                raise CorruptEntryError(
                    f"{where}: cassette is {size} bytes, over the {MAX_CASSETTE_BYTES} byte limit"
                )
            text = self._path.read_bytes().decode("utf-8")
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
        entries = document.get("entries", [])
        if not isinstance(entries, list):
            raise CorruptEntryError(f"{where}: 'entries' must be a list")
        for index, raw in enumerate(entries):
            entry = entry_from_document(raw, where=f"{where}: entries[{index}]")
            self._entries[entry.key] = entry
        meta = document.get("meta", {})
        self._meta = meta if isinstance(meta, dict) else {}

    def _write(self) -> None:
        document: dict[str, Any] = {
            "seedcache": CASSETTE_FORMAT,
            "entries": [entry_to_document(e) for e in self._entries.values()],
        }
        if self._meta:
            document["meta"] = self._meta
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        write_atomically(self._path, text.encode())


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
