"""Stores: where entries live. One small protocol, several backends."""

from __future__ import annotations

from ._base import Capabilities, Check, Lease, Store
from ._cassette import CassetteStore
from ._disk import DiskStore
from ._location import is_redis_location, redact
from ._open import open_store

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
