"""Stores: where entries live. One small protocol, several backends.

:class:`DiskStore` is imported on first use: a test run replaying cassettes never needs
diskcache or SQLite, and importing them is a good part of importing seedcache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import BaseStore, Capabilities, Change, Check, Lease, MetaChange, Store
from ._cassette import CassetteStore
from ._copy import Copied, copy_entries
from ._location import is_redis_location, redact
from ._open import open_store

if TYPE_CHECKING:
    from ._disk import DiskStore

__all__ = [
    "BaseStore",
    "Capabilities",
    "CassetteStore",
    "Change",
    "Check",
    "Copied",
    "DiskStore",
    "Lease",
    "MetaChange",
    "Store",
    "copy_entries",
    "is_redis_location",
    "open_store",
    "redact",
]


def __getattr__(name: str) -> Any:
    if name == "DiskStore":
        from ._disk import DiskStore

        return DiskStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
