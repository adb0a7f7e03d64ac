"""Running totals of what caches did with a store, kept beside its entries.

``cache.stats()`` counts one session; ``seedcache stats`` shows the totals over every
session that closed a cache on the store. Only cache directories keep them: a cassette
is committed to version control and must not change because a test read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["COUNTERS_META", "add_counters", "read_counters"]

COUNTERS_META = "counters"


def read_counters(raw: bytes | None) -> dict[str, int]:
    """The totals in ``raw``; unreadable or absent totals are empty."""
    try:
        document = json.loads(raw) if raw is not None else {}
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {k: v for k, v in document.items() if isinstance(v, int) and not isinstance(v, bool)}


def add_counters(raw: bytes | None, delta: Mapping[str, int]) -> bytes:
    """``raw`` with ``delta`` added to it."""
    totals = read_counters(raw)
    for name, value in delta.items():
        totals[name] = totals.get(name, 0) + value
    return json.dumps(totals, sort_keys=True).encode()
