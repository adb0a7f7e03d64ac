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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._request._modes import Mode

if TYPE_CHECKING:
    from .._cache import SeedCache

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
    older_path: Callable[[], Path] | None = None
    """Where an older seedcache kept this cassette, to point at it on a miss (worked out
    only then)."""
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
            cache = SeedCache.cassette(
                target, mode=self.mode, miss_advice=self.miss_advice, **self.options
            )
            self.cache = cache
        return self.cache

    def finish(self, *, passed: bool) -> None:
        """Close the cache; in ``record`` mode, put what the test recorded in place if it passed."""
        if self.cache is None:
            return
        self.cache.close()
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
        legacy = self.older_path() if self.older_path is not None else None
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
    """Put a whole recorded cassette in place of ``target``; takes that answer as they did
    stay as they were, and when every one did, the file is not touched."""
    from .._stores._cassette import read_cassette, write_cassette
    from .._stores._copy import keeping_alike
    from .._stores._filelock import exclusive

    new = read_cassette(recorded)
    with exclusive(target):
        old = read_cassette(target) if target.exists() else None
        entries = new.entries
        if old is not None and not old.broken:
            before = {entry.key: entry for entry in old.entries}
            entries = [keeping_alike(before.get(e.key), e) for e in new.entries]
            if entries == old.entries:
                return  # re-recorded, and nothing changed: the file stays byte for byte
        write_cassette(target, entries, new.meta)


def _merge(recorded: Path, target: Path) -> None:
    """Replace ``target``'s entries for the keys in ``recorded``; keep all others. An entry
    whose takes answer as they did is left as it was."""
    from .._stores import CassetteStore, copy_entries

    copy_entries(CassetteStore(recorded), CassetteStore(target), existing="update")
