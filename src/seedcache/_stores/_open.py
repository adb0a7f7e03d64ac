"""One way to name a store: a location string, read by one table, used everywhere.

| location                                   | store                                 |
|--------------------------------------------|---------------------------------------|
| ``redis://…``, ``rediss://…``, ``unix://…``  | :class:`RedisStore`                   |
| ``*.json``, or an existing file            | :class:`CassetteStore`                |
| a folder holding cassettes (no cache.db)   | :class:`CassetteFolder` (read-only)   |
| any other path                             | :class:`DiskStore` (created if absent) |

``SeedCache("story.json")``, ``seedcache --cache-dir story.json``, ``export story.json``
and the plugin all mean the same thing by a location.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import StoreError
from ._base import Store
from ._cassette import CassetteStore
from ._location import is_redis_location

__all__ = ["DISK_DATABASE", "open_store"]

DISK_DATABASE = "cache.db"
"""The file that makes a directory a seedcache cache directory."""


def open_store(
    location: str | os.PathLike[str], *, create: bool = True, tolerate_broken: bool = False
) -> Store:
    """The store ``location`` names (see the module's table).

    ``create=False`` (reading commands) never creates anything: a mistyped path is an
    error, not a new empty cache. ``tolerate_broken`` opens a cassette whose entries do
    not all decode (for ``verify``).
    """
    text = os.fspath(location)
    if is_redis_location(text):
        from ._redis import RedisStore  # the redis client is an optional extra

        return RedisStore(text)
    path = Path(text)
    if path.suffix.lower() == ".json" or path.is_file():
        if path.is_dir():
            raise StoreError(f"{path} is a directory; a cassette is a .json file")
        if not path.exists() and not create:
            raise StoreError(f"no cassette at {path}")
        return CassetteStore(path, tolerate_broken=tolerate_broken)
    if path.is_dir() and not (path / DISK_DATABASE).exists() and _holds_cassettes(path):
        from ._folder import CassetteFolder

        return CassetteFolder(path)
    if not create:
        if not path.exists():
            raise StoreError(f"no cache directory at {path}")
        if not (path / DISK_DATABASE).is_file():
            raise StoreError(f"{path} is not a seedcache directory (it has no {DISK_DATABASE})")
    from ._disk import DiskStore  # diskcache and SQLite: imported by the runs that use them

    return DiskStore(path)


def _holds_cassettes(path: Path) -> bool:
    return next(path.rglob("*.json"), None) is not None
