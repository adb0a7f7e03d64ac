"""Stores: where entries live. One small protocol, several backends."""

from __future__ import annotations

from ._base import BaseStore, Capabilities, Change, Check, Lease, MetaChange, Store
from ._cassette import CassetteStore
from ._copy import Copied, copy_entries
from ._disk import DiskStore
from ._location import is_redis_location, redact
from ._open import open_store

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
