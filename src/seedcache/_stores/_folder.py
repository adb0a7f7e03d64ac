"""CassetteFolder: every cassette under a folder, read as one store.

``seedcache --cassette cassettes/ report`` answers "did my suite drift?" in one command.
The folder is read-only: a change names one cassette. The same request recorded by two
tests lives in two cassettes, so listing yields one summary per cassette and entry, each
naming its cassette (:attr:`Summary.origin`); :meth:`get` answers with the first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from .._errors import SeedCacheError, StoreError
from .._takes._take import Entry
from ._base import BaseStore, Capabilities, Change, Check, Lease, MetaChange
from ._cassette import CassetteStore
from ._registry import REGISTRY_META, merge_registries
from ._summary import Summary

__all__ = ["CassetteFolder"]

_log = logging.getLogger("seedcache")


class CassetteFolder(BaseStore):
    """Every ``*.json`` cassette below ``path``, read as one store."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        if not self._path.is_dir():
            raise StoreError(f"{self._path} is not a folder of cassettes")
        self._cassettes: list[tuple[str, CassetteStore]] = []
        self._unreadable: list[tuple[str, str]] = []
        for file in sorted(self._path.rglob("*.json")):
            if file.is_symlink() or not file.is_file():
                continue
            name = file.relative_to(self._path).as_posix()
            try:
                store = CassetteStore(file)
                store.keys()
            except SeedCacheError as exc:  # not a cassette, or a damaged one
                self._unreadable.append((name, str(exc)))
                _log.warning("skipped %s: %s", name, exc)
                continue
            self._cassettes.append((name, store))

    @property
    def location(self) -> str:
        """The folder."""
        return str(self._path)

    @property
    def kind(self) -> str:
        """``cassettes``."""
        return "cassettes"

    @property
    def capabilities(self) -> Capabilities:
        """Read-only: a change names one cassette."""
        return Capabilities(writable=False)

    @property
    def cassettes(self) -> list[tuple[str, CassetteStore]]:
        """``(name relative to the folder, store)`` for every cassette read."""
        return list(self._cassettes)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``; where several cassettes hold it, the one refreshed last
        (with history), else the one recorded last: the one drift is about."""
        found = [e for _, store in self._cassettes if (e := store.get(key)) is not None]
        if not found:
            return None

        def latest(entry: Entry) -> tuple[bool, int]:
            times = [t.recorded_at_ms for t in entry.takes]
            return bool(entry.history), max(times, default=0)

        return max(found, key=latest)

    def origins(self, key: str) -> list[str]:
        """The cassettes that hold ``key``."""
        return [name for name, store in self._cassettes if store.get(key) is not None]

    def keys(self) -> list[str]:
        """Every key, once, in cassette order."""
        return list(dict.fromkeys(k for _, store in self._cassettes for k in store.keys()))  # noqa: SIM118 (a store, not a dict)

    def entries(self) -> Iterator[Entry]:
        """Every entry of every cassette (a request two tests share appears twice)."""
        for _, store in self._cassettes:
            yield from store.entries()

    def summaries(self) -> Iterator[Summary]:
        """Every entry's summary, naming its cassette."""
        for name, store in self._cassettes:
            for summary in store.summaries():
                yield summary.placed(name)

    def footprint(self) -> int:
        """The cassettes' sizes added up."""
        return sum(store.footprint() for _, store in self._cassettes)

    def check(self, *, fix: bool = False) -> Check:
        """Every cassette's broken entries, and the files that are not cassettes."""
        if fix:
            raise self._read_only("verify --fix")
        checked, broken = 0, list(self._unreadable)
        for _, store in self._cassettes:
            result = store.check()
            checked += result.checked
            broken.extend(result.broken)
        return Check(checked + len(self._unreadable), broken)

    def get_meta(self, name: str) -> bytes | None:
        """The fingerprint registries of every cassette, merged; no other metadata."""
        if name != REGISTRY_META:
            return None
        merged: bytes | None = None
        for _, store in self._cassettes:
            merged = merge_registries(merged, store.get_meta(name))
        return merged

    def update(self, key: str, change: Change) -> Entry | None:
        """Refused: name the cassette to change."""
        raise self._read_only("changing an entry")

    def delete(self, key: str) -> bool:
        """Refused: name the cassette to change."""
        raise self._read_only("removing an entry")

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Refused: name the cassette to change."""
        raise self._read_only("changing metadata")

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to group: the folder is read-only."""
        return contextlib.nullcontext()

    def claim(self, key: str, revision: int, seconds: float) -> Lease | None:
        """Refused: nothing is recorded into a folder."""
        raise self._read_only("recording")

    def renew(self, lease: Lease, seconds: float) -> bool:
        """No lease is ever held."""
        return False

    def release(self, lease: Lease) -> None:
        """No lease is ever held."""

    def wait(self, key: str, revision: int, timeout: float) -> None:
        """Nothing to wait for."""

    def close(self) -> None:
        """Close every cassette."""
        for _, store in self._cassettes:
            store.close()

    def _read_only(self, what: str) -> StoreError:
        return StoreError(
            f"{what} needs one cassette: {self._path} is a folder of cassettes, read-only "
            f"here; give a file (--cassette {self._path}/NAME.json)"
        )
