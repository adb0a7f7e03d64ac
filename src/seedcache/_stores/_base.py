"""The contract every store keeps, and the parts of it most stores share.

A store holds entries by key, a few named blobs beside them, and leases: who is fetching
a key right now, so identical requests in other processes (or on other machines, for a
networked store) wait for one upstream call instead of each making their own.
``tests/integration/stores/test_store_contract.py`` runs every store through the same
cases; a new store must pass it.

:class:`Store` is the contract the core and the CLI use. :class:`BaseStore` keeps it
with the generic members written once: a new store (SQLite, S3, one in memory for
tests) writes the twelve abstract ones, and overrides the rest only to be faster (the
cache directory keeps a listing index, so ``newest`` and ``totals`` need not read every
entry). ``docs/design.md`` shows a whole one in memory.
"""

from __future__ import annotations

import enum
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar, runtime_checkable

from .._errors import CorruptEntryError, UnsafeDataError
from .._takes._take import Entry
from ._summary import Summary, Totals, newest_of, summarize

T = TypeVar("T")

MAX_LEASE_SECONDS = 600.0
"""No lease seedcache takes runs longer (leases last two minutes and are renewed): one
that claims to is planted, and is treated as expired rather than waited on."""
_log = logging.getLogger("seedcache")

__all__ = [
    "NOT_IN_MEMORY",
    "BaseStore",
    "Capabilities",
    "Change",
    "Check",
    "Lease",
    "MetaChange",
    "NotInMemory",
    "Store",
    "check_by_decoding",
    "poll_until_settled",
]

Change = Callable[[Entry | None], Entry | None]
"""Turns the stored entry (or None) into the one to store (or None to delete it)."""

MetaChange = Callable[[bytes | None], bytes | None]
"""Turns a stored blob (or None) into the one to store (or None to delete it)."""


class NotInMemory(enum.Enum):
    """The answer of a store's optional ``get_in_memory(key)`` when only a read that may
    wait (on a disk, a network or a lock) can tell. A store that can answer some reads
    without waiting has that method; an async client's replay then stays on the event
    loop instead of going to a worker thread."""

    NOT_IN_MEMORY = "not in memory"


NOT_IN_MEMORY = NotInMemory.NOT_IN_MEMORY


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Where stores truly differ; the core and the CLI ask these, never the store's type."""

    running_totals: bool = False
    """Session counters are added up across sessions in the store (a cache directory
    does; a cassette, committed to version control, stays free of such noise)."""
    writable: bool = True
    """Changes are possible; False for a directory seedcache may only read."""


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to fetch one key, held until released or expired."""

    key: str
    token: str
    """Tells this holder's lease from a later one on the same key."""


@dataclass(frozen=True, slots=True)
class Check:
    """What :meth:`Store.check` found."""

    checked: int
    """Entries looked at."""
    broken: list[tuple[str, str]]
    """``(where, what is wrong)`` for every entry that cannot be decoded."""
    foreign: int = 0
    """Rows seedcache did not write (they are never read)."""
    fixed: bool = False
    """True when the broken entries were removed."""


@runtime_checkable
class Store(Protocol):
    """Entries by key. :meth:`update` is atomic per key; entries are immutable values."""

    @property
    def location(self) -> str:
        """Where the data lives, for messages (a directory, a file, a server); no secrets."""
        ...

    @property
    def kind(self) -> str:
        """What the location is, for people: "cache directory", "cassette" …"""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this store can do beyond the common contract."""
        ...

    def get(self, key: str) -> Entry | None:
        """The entry for ``key`` with its revision, or None."""
        ...

    def update(self, key: str, change: Change) -> Entry | None:
        """Apply ``change`` to the entry as stored now, atomically; return what was stored.

        Storing ends this store's lease on ``key``. When writing fails, nothing changed:
        neither the stored entry nor what :meth:`get` returns.
        """
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when something was removed."""
        ...

    def keys(self) -> list[str]:
        """Every key, in a stable order."""
        ...

    def entries(self) -> Iterator[Entry]:
        """Every entry, in the order of :meth:`keys` (changes made meanwhile may show or not)."""
        ...

    def summaries(self) -> Iterator[Summary]:
        """A :class:`Summary` of every entry, without decoding bodies where possible."""
        ...

    def newest(self, limit: int) -> list[Summary]:
        """The ``limit`` summaries most recently recorded, newest first."""
        ...

    def totals(self) -> Totals:
        """Counts and sizes over every entry, kept up to date as entries are written."""
        ...

    def footprint(self) -> int:
        """Bytes the store takes where it keeps its data."""
        ...

    def check(self, *, fix: bool = False) -> Check:
        """Decode every entry; report (and with ``fix``, remove) those that fail."""
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

    def claim(self, key: str, revision: int, seconds: float) -> Lease | None:
        """Lease ``key`` for ``seconds`` if its entry is still at ``revision`` (0: absent).

        None when another live lease holds the key or the entry changed: the caller
        decides again, usually replaying what the holder stored.
        """
        ...

    def renew(self, lease: Lease, seconds: float) -> bool:
        """Extend ``lease`` to ``seconds`` from now; False when it was lost meanwhile."""
        ...

    def release(self, lease: Lease) -> None:
        """Give ``lease`` up, if it is still held (storing the entry already did)."""
        ...

    def wait(self, key: str, revision: int, timeout: float) -> None:
        """Return once ``key`` is no longer at ``revision`` or not leased, or after ``timeout``."""
        ...

    def close(self) -> None:
        """Release files and connections; the store is unusable afterwards."""
        ...


class BaseStore(ABC):
    """:class:`Store` with its generic members written once (see the module).

    Twelve to write, two of them one-line properties: :attr:`location`, :attr:`kind`,
    :meth:`get`, :meth:`update`, :meth:`delete`, :meth:`keys`, :meth:`batch`,
    :meth:`get_meta`, :meth:`update_meta`, :meth:`claim`, :meth:`renew`, :meth:`release`.
    Their promises are :class:`Store`'s.
    """

    @property
    def capabilities(self) -> Capabilities:
        """No running totals, writable: override for a store that differs."""
        return Capabilities()

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data lives, for messages; no secrets."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """What the location is, for people."""

    @abstractmethod
    def get(self, key: str) -> Entry | None:
        """The entry for ``key`` with its revision, or None."""

    @abstractmethod
    def update(self, key: str, change: Change) -> Entry | None:
        """Apply ``change`` atomically; storing ends this store's lease on ``key``."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; True when something was removed."""

    @abstractmethod
    def keys(self) -> list[str]:
        """Every key, in a stable order."""

    @abstractmethod
    def get_meta(self, name: str) -> bytes | None:
        """A small named blob kept beside the entries."""

    @abstractmethod
    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Apply ``change`` to the named blob atomically (None deletes it)."""

    @abstractmethod
    def batch(self) -> AbstractContextManager[None]:
        """Group changes: when the block raises, none of them is applied."""

    @abstractmethod
    def claim(self, key: str, revision: int, seconds: float) -> Lease | None:
        """Lease ``key`` for ``seconds`` if its entry is still at ``revision`` (0: absent)."""

    @abstractmethod
    def renew(self, lease: Lease, seconds: float) -> bool:
        """Extend ``lease``; False when it was lost meanwhile."""

    @abstractmethod
    def release(self, lease: Lease) -> None:
        """Give ``lease`` up, if it is still held."""

    # -- generic: correct for any store, overridden only to be faster ------------------

    def entries(self) -> Iterator[Entry]:
        """Every entry, read key by key; a damaged one is skipped with a warning."""
        for key in self.keys():
            entry = skip_damaged(partial(self.get, key))
            if entry is not None:
                yield entry

    def summaries(self) -> Iterator[Summary]:
        """A summary of every entry, made from the entry."""
        for entry in self.entries():
            yield summarize(entry)

    def newest(self, limit: int) -> list[Summary]:
        """The ``limit`` summaries most recently recorded, newest first."""
        return newest_of(self.summaries(), limit)

    def totals(self) -> Totals:
        """Counted from every summary."""
        return Totals.of(self.summaries())

    def footprint(self) -> int:
        """The bytes of the stored bodies (a store that knows its real size says so)."""
        return self.totals().body_bytes

    def check(self, *, fix: bool = False) -> Check:
        """Decode every entry; report (and with ``fix``, remove) those that fail."""
        return check_by_decoding(self, fix=fix)

    def wait(self, key: str, revision: int, timeout: float) -> None:
        """Poll until ``key`` left ``revision`` or its lease is free, or ``timeout``.

        A free lease is found by claiming it and giving it straight back: the only way
        the generic contract has to ask.
        """

        def settled() -> bool:
            try:
                entry = self.get(key)
            except (CorruptEntryError, UnsafeDataError):
                return True  # the caller decides again, and reports it
            if (0 if entry is None else entry.revision) != revision:
                return True
            lease = self.claim(key, revision, 1.0)
            if lease is None:
                return False
            self.release(lease)
            return True

        poll_until_settled(settled, timeout)

    def close(self) -> None:  # noqa: B027 (a default, on purpose: most stores hold nothing)
        """Nothing to release."""


def skip_damaged(read: Callable[[], T]) -> T | None:
    """``read()``, or None with a warning when the entry it reads is damaged or unsafe.

    Listing, stats, export and the report go on past a bad entry; ``verify`` names it.
    """
    try:
        return read()
    except (CorruptEntryError, UnsafeDataError) as exc:
        _log.warning("skipped a damaged entry: %s (`seedcache verify` lists it)", exc)
        return None


def check_by_decoding(store: Store, *, fix: bool, foreign: int = 0) -> Check:
    """:meth:`Store.check` for a store that decodes an entry on :meth:`Store.get`.

    Every key is read; those that fail (damaged or crafted) are reported, and with
    ``fix`` deleted.
    """
    keys = store.keys()
    broken: list[tuple[str, str]] = []
    for key in keys:
        try:
            store.get(key)
        except (CorruptEntryError, UnsafeDataError) as exc:
            # The report names the key already: keep only what is wrong with it.
            broken.append((key, str(exc).split(f"entry {key}: ", 1)[-1]))
    if fix:
        for key, _ in broken:
            store.delete(key)
    return Check(len(keys), broken, foreign, fixed=fix and bool(broken))


def poll_until_settled(
    settled: Callable[[], bool], timeout: float, *, first: float = 0.002, longest: float = 0.05
) -> None:
    """The default :meth:`Store.wait`: ask ``settled`` with a growing pause, up to ``timeout``.

    Starts fast (a hit recorded by another process is usually a few milliseconds away)
    and backs off, so a long stream recorded elsewhere costs a few checks a second.
    """
    deadline = time.monotonic() + timeout
    pause = first
    while not settled():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, longest)
