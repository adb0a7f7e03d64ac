"""The protocol every store implements."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from .._index import Summary
from .._takes import Entry

__all__ = ["Change", "MetaChange", "Store"]

Change = Callable[[Entry | None], Entry | None]
"""Turns the stored entry (or None) into the one to store (or None to delete it)."""

MetaChange = Callable[[bytes | None], bytes | None]
"""Turns a stored blob (or None) into the one to store (or None to delete it)."""


@runtime_checkable
class Store(Protocol):
    """Entries by key. Implementations must make :meth:`update` atomic per key."""

    @property
    def location(self) -> str:
        """Where the data lives, for messages (a directory or a file path)."""
        ...

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None."""
        ...

    def update(self, key: str, change: Change) -> Entry | None:
        """Apply ``change`` to the entry for ``key`` atomically; return what was stored."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when something was removed."""
        ...

    def keys(self) -> list[str]:
        """Every key, in a stable order."""
        ...

    def entries(self) -> Iterator[Entry]:
        """Every entry, in the order of :meth:`keys`."""
        ...

    def summaries(self) -> Iterator[Summary]:
        """A :class:`Summary` of every entry, without decoding bodies where possible."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Group many changes: one transaction, or one file write, for all of them."""
        ...

    def get_meta(self, name: str) -> bytes | None:
        """A small named blob the cache keeps beside the entries (e.g. the fingerprint registry)."""
        ...

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Apply ``change`` to the named blob atomically (None deletes it); return the result."""
        ...

    def close(self) -> None:
        """Release files and connections; the store is unusable afterwards."""
        ...
