"""Copying entries between stores: ``seedcache export``/``import`` and the pytest plugin's
shared cassettes, one way. Entries go whole (request summary, every take, history) and the
fingerprint registries are merged, so a round trip loses nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple

from .._takes._content import answers_alike
from .._takes._take import Entry
from ._base import Store
from ._registry import REGISTRY_META, merge_registries

__all__ = ["Copied", "Existing", "copy_entries"]

Existing = Literal["skip", "replace", "update"]
"""What happens to a key the target already holds: left alone (``skip``), overwritten
(``replace``), or overwritten except for the takes that answer as the source's do
(``update``), so that a file under review changes only where an answer did."""


class Copied(NamedTuple):
    """What :func:`copy_entries` did."""

    written: int
    """Entries written to the target."""
    skipped: int
    """Entries the target already held and kept as they were."""


def copy_entries(
    source: Store,
    target: Store,
    keys: Iterable[str] | None = None,
    *,
    existing: Existing = "skip",
    progress: Callable[[list[str]], Iterable[str]] = iter,
) -> Copied:
    """Copy ``keys`` (default: all) from ``source`` into ``target``, in one batch.

    A key the source no longer has is passed over. The source's fingerprint registry is
    merged into the target's whenever an entry was written, so recordings keep the
    sightings that make ``refresh`` judge them.
    """
    if existing not in ("skip", "replace", "update"):
        raise ValueError(f"existing must be 'skip', 'replace' or 'update', not {existing!r}")
    chosen = list(source.keys() if keys is None else keys)
    held = set(target.keys()) if existing == "skip" else set()
    written = skipped = 0
    with target.batch():
        for key in progress(chosen):
            if key in held:
                skipped += 1
                continue
            entry = source.get(key)
            if entry is None:
                continue
            if existing == "update":
                old = target.get(key)
                entry = keeping_alike(old, entry)
                if entry == old:
                    skipped += 1
                    continue
            target.update(key, _becomes(entry))
            written += 1
        theirs = source.get_meta(REGISTRY_META)
        if written and theirs is not None:
            target.update_meta(REGISTRY_META, lambda ours: merge_registries(ours, theirs))
    return Copied(written, skipped)


def keeping_alike(old: Entry | None, new: Entry) -> Entry:
    """``new``, with each take that answers as ``old``'s take at the same place did
    replaced by that recorded take; ``old`` itself when every take did."""
    if old is None:
        return new
    takes = tuple(
        old.takes[i] if i < len(old.takes) and answers_alike(old.takes[i], take) else take
        for i, take in enumerate(new.takes)
    )
    if takes == old.takes:
        return old
    return Entry(new.key, new.request, takes, new.history)


def _becomes(entry: Entry) -> Callable[[Entry | None], Entry]:
    return lambda _: entry
