"""One test's cassette: open it in the right mode, and put what was recorded in place.

- ``replay``, ``auto``, ``refresh``: the test's cache works on the cassette itself. Takes
  are written as they arrive, under the cassette's lock, merged into whatever other
  tests and xdist workers wrote meanwhile; a failing test keeps what it recorded (those
  responses were real).
- ``record``: the test records into a private file, and only when it passes is that put
  in place. A test's own cassette is replaced whole (no stale takes survive); a shared
  cassette (one a marker or ``seedcache_config`` names) gets the entries of the keys the
  test recorded, replacing those keys and leaving every other test's entries alone. A
  failing test changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._modes import Mode

if TYPE_CHECKING:
    from .._cache import SeedCache
    from .._stores._base import Change
    from .._takes import Entry

__all__ = ["CassetteRun"]


@dataclass
class CassetteRun:
    """One test's cassette: where it is, the mode, and the cache once opened."""

    path: Path
    mode: Mode
    options: dict[str, Any]
    nodeid: str
    shared: bool = False
    """True when the cassette was named by a marker or ``seedcache_config``: others may use it."""
    legacy_path: Path | None = None
    """Where an older seedcache kept this cassette, to point at it on a miss."""
    cache: SeedCache | None = None
    _scratch: Path | None = field(default=None, repr=False)

    def open(self) -> SeedCache:
        """The cache for this test (opened once)."""
        if self.cache is None:
            from .._cache import SeedCache

            target = self.path
            if self.mode is Mode.RECORD:
                self._scratch = Path(tempfile.mkdtemp(prefix="seedcache-record-"))
                target = self._scratch / self.path.name
            cache = SeedCache.cassette(target, mode=self.mode, **self.options)
            cache._core.miss_advice = self.miss_advice
            self.cache = cache
        return self.cache

    def finish(self, *, passed: bool) -> None:
        """Close the cache; in ``record`` mode, put what the test recorded in place if it passed."""
        if self.cache is None:
            return
        from ._closing import close_cache

        close_cache(self.cache)
        # pytest keeps every item (and this run in its stash) until the session ends: a
        # closed cache, its entries and clients kept alive per test would make every
        # garbage collection of a large suite slower than the last.
        self.cache = None
        if self._scratch is None:
            return
        try:
            recorded = self._scratch / self.path.name
            if passed and recorded.exists():
                if self.shared:
                    _merge(recorded, self.path)
                else:
                    _replace(recorded, self.path)
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def record_command(self) -> str:
        """The command that records this test's cassette."""
        return f"pytest --seedcache-mode=auto '{self.nodeid}'"

    def miss_advice(self) -> str:
        """What a miss in this test tells the user to do."""
        advice = f"record it with: {self.record_command()}"
        legacy = self.legacy_path
        if (
            legacy is not None
            and legacy != self.path
            and legacy.exists()
            and not self.path.exists()
        ):
            advice += (
                f"\na cassette an older seedcache wrote for this test is at {legacy}; "
                f"move it to {self.path}"
            )
        return advice


def _replace(recorded: Path, target: Path) -> None:
    """Put a whole recorded cassette in place of ``target``."""
    from .._stores._cassette import read_cassette_bytes, write_atomically
    from .._stores._filelock import exclusive

    with exclusive(target):
        write_atomically(target, read_cassette_bytes(recorded))


def _merge(recorded: Path, target: Path) -> None:
    """Replace ``target``'s entries for the keys in ``recorded``; keep all others."""
    from .._fingerprints import REGISTRY_META, merge_registries
    from .._stores import CassetteStore

    source = CassetteStore(recorded)
    destination = CassetteStore(target)
    with destination.batch():
        for entry in source.entries():
            destination.update(entry.key, _replacing_with(entry))
        theirs = source.get_meta(REGISTRY_META)
        if theirs is not None:
            destination.update_meta(REGISTRY_META, lambda ours: merge_registries(ours, theirs))


def _replacing_with(entry: Entry) -> Change:
    return lambda _: entry
