"""Stores: where entries live. One small protocol, several backends."""

from __future__ import annotations

import os

from ._base import Capabilities, Check, Lease, Store
from ._cassette import CassetteStore
from ._disk import DiskStore
from ._location import is_redis_location, redact

__all__ = [
    "Capabilities",
    "CassetteStore",
    "Check",
    "DiskStore",
    "Lease",
    "Store",
    "is_redis_location",
    "open_store",
    "redact",
]


def open_store(location: str | os.PathLike[str]) -> Store:
    """The store a location names: a ``redis://`` (``rediss://``, ``unix://``) URL, else
    a cache directory (created if missing)."""
    text = os.fspath(location)
    if is_redis_location(text):
        from ._redis import RedisStore  # the redis client is an optional extra

        return RedisStore(text)
    return DiskStore(text)
