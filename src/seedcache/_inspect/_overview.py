"""The facts ``seedcache report`` shows, gathered once from the inspection layer.

One :class:`Overview` feeds the three forms of the report (text, JSON, HTML), so they
always say the same thing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .._request._freshness import RefreshRules
from .._stores._registry import Registry
from .._stores._summary import Summary
from ._catalog import Catalog, StoreStats
from ._drift import DeterminismSummary, TakeDiff, diff_entry
from ._fingerprints import FingerprintStatus
from ._savings import Savings

__all__ = ["Overview", "gather"]

# The diffs an overview carries: enough to see drift, not a copy of the cache.
DIFFS_SHOWN = 100


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the report shows about one store."""

    generated_ms: int
    stats: StoreStats
    fingerprints: list[FingerprintStatus]
    determinism: DeterminismSummary
    changed: list[TakeDiff]
    """Keys whose output changed when refreshed: the replaced take against its successor."""
    cassettes: dict[str, list[str]]
    """For a folder of cassettes: the cassettes holding each changed key."""
    changed_total: int
    refreshed_keys: int
    """Keys with a replaced take in history (their output may or may not have changed)."""
    savings: Savings
    endpoints: dict[str, tuple[int, int]]
    """Per endpoint: (entries, body bytes)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "generated_ms": self.generated_ms,
            "store": self.stats.as_dict(),
            "fingerprints": [s.as_dict() for s in self.fingerprints],
            "determinism": self.determinism.as_dict(),
            "refreshed_keys": self.refreshed_keys,
            "changed_on_refresh": self.changed_total,
            "changes": [
                {**diff.as_dict(), "cassettes": self.cassettes.get(diff.key, [])}
                for diff in self.changed
            ],
            "saved": self.savings.as_dict(),
            "endpoints": [
                {"endpoint": name, "entries": entries, "bytes": size}
                for name, (entries, size) in sorted(self.endpoints.items())
            ],
        }


def gather(catalog: Catalog, *, now_ms: int | None = None) -> Overview:
    """The overview of ``catalog``'s store."""
    store = catalog.store
    summaries = list(store.summaries())
    endpoints: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for summary in summaries:
        endpoints[summary.endpoint] += 1
        sizes[summary.endpoint] += summary.size
    refreshed = [s for s in summaries if s.history_count]
    # Told apart by the content hashes the summaries keep; only the diffs shown are decoded.
    changed_keys = [s.key for s in refreshed if _changed_on_refresh(s)]
    changed: list[TakeDiff] = []
    for key in dict.fromkeys(changed_keys[:DIFFS_SHOWN]):
        entry = store.get(key)
        if entry is not None and entry.history:
            changed.append(diff_entry(entry))
    cassettes: dict[str, list[str]] = {}
    for summary in refreshed:
        if summary.origin is not None:
            cassettes.setdefault(summary.key, []).append(summary.origin)
    rules = RefreshRules(Registry(store), clock=time.time)
    return Overview(
        generated_ms=now_ms if now_ms is not None else round(time.time() * 1000),
        stats=catalog.stats(),
        fingerprints=catalog.fingerprints(rules, summaries),
        determinism=catalog.determinism(summaries),
        changed=changed,
        cassettes=cassettes,
        changed_total=len(changed_keys),
        refreshed_keys=len(refreshed),
        savings=catalog.savings(),
        endpoints={name: (count, sizes[name]) for name, count in endpoints.items()},
    )


def _changed_on_refresh(summary: Summary) -> bool:
    """Whether the last replaced take differs from the newest take (as ``diff`` compares)."""
    takes, history = summary.takes, summary.history
    if not takes or not history:
        return False
    newest = max(range(len(takes)), key=lambda i: takes[i].recorded_at_ms)
    return history[-1].content != takes[newest].content
