"""Finding an entry from what a person types: a whole key or a unique prefix of one."""

from __future__ import annotations

from collections.abc import Iterable

from .._errors import AmbiguousKeyError, NotFoundError
from .._request._keys import KEY_LENGTH
from .._stores import Store
from .._takes._take import Entry

__all__ = ["find_entry", "resolve_key"]

_SHOWN_CANDIDATES = 5


def resolve_key(prefix: str, keys: Iterable[str], *, location: str) -> str:
    """The one key in ``keys`` that starts with ``prefix``."""
    wanted = prefix.strip().lower()
    if not wanted:
        raise NotFoundError("give a key or the first characters of one (see `seedcache ls`)")
    matches = [k for k in keys if k.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(
            f"no recorded key starts with {wanted!r} in {location}; `seedcache ls` lists them"
        )
    shown = ", ".join(sorted(matches)[:_SHOWN_CANDIDATES])
    more = len(matches) - _SHOWN_CANDIDATES
    raise AmbiguousKeyError(
        f"{len(matches)} keys start with {wanted!r}: {shown}"
        + (f" and {more} more" if more > 0 else "")
        + "; give more characters"
    )


def find_entry(store: Store, key: str) -> Entry:
    """The entry for a whole key or a unique prefix of one."""
    if len(key) == KEY_LENGTH:
        found = store.get(key.lower())
        if found is not None:
            return found
    full = resolve_key(key, store.keys(), location=store.location)
    entry = store.get(full)
    if entry is None:
        raise NotFoundError(f"key {full} was removed from {store.location} while being read")
    return entry
