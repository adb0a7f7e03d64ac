"""One way to look at what a store holds, for :class:`SeedCache` and the CLI alike.

Everything here goes through the :class:`Store` contract (summaries, totals, newest,
check) and assumes nothing about where a store keeps its bytes: a directory, a file or
a server answer the same questions the same way. Bodies are decoded only where a
question needs them (determinism compares outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .._request._freshness import RefreshRules
from .._stores import Check, Store
from .._stores._counters import COUNTERS_META, read_counters
from .._stores._summary import Summary, Totals
from ._drift import DeterminismSummary, determinism
from ._fingerprints import FingerprintStatus, fingerprint_statuses
from ._savings import Savings, from_counters, is_saving_counter

__all__ = ["Catalog", "Listing", "StoreStats"]


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What ``seedcache stats`` shows: totals, bytes where the store keeps them, counters."""

    location: str
    kind: str
    totals: Totals
    footprint: int
    counters: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        totals = self.totals
        return {
            "location": self.location,
            "entries": totals.entries,
            "takes": totals.takes,
            "history": totals.history,
            "body_bytes": totals.body_bytes,
            "disk_bytes": self.footprint,
            "models": [
                {"model": model, "entries": row[0], "takes": row[1], "bytes": row[2]}
                for model, row in sorted(totals.by_model.items())
            ],
            "fingerprints": [
                {"model": model, "fingerprint": fingerprint, "takes": count}
                for model, counts in sorted(totals.by_fingerprint.items())
                for fingerprint, count in sorted(counts.items())
            ],
            "counters": {k: v for k, v in self.counters.items() if not is_saving_counter(k)},
            "saved": from_counters(self.counters).as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Listing:
    """Rows for ``ls``, and how many there were before a limit cut them."""

    rows: list[Summary]
    total: int | None
    """Entries in the store when only the newest were read (None when all were)."""


class Catalog:
    """Inspection of one store: listing, stats, fingerprints, determinism, verify, unused."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def listing(
        self,
        *,
        matches: Callable[[Summary], bool] | None = None,
        sort: Callable[[Summary], Any],
        reverse: bool = False,
        newest: int | None = None,
    ) -> Listing:
        """Summaries that ``matches``, sorted; with ``newest``, only the most recent.

        The newest of an unfiltered store come from the store's own index of recording
        times, without reading every summary.
        """
        if newest is not None and matches is None:
            rows = self.store.newest(newest)
            total = self.store.totals().entries
        else:
            rows = [s for s in self.store.summaries() if matches is None or matches(s)]
            total = len(rows)
            if newest is not None:
                rows.sort(key=lambda s: (s.recorded_at_ms, s.key), reverse=True)
                rows = rows[:newest]
        rows.sort(key=sort, reverse=reverse)
        return Listing(rows, total if newest is not None and total > len(rows) else None)

    def stats(self) -> StoreStats:
        """Totals (kept up to date by the store), its footprint and the running counters."""
        store = self.store
        return StoreStats(
            location=store.location,
            kind=store.kind,
            totals=store.totals(),
            footprint=store.footprint(),
            counters=read_counters(store.get_meta(COUNTERS_META)),
        )

    def savings(self) -> Savings:
        """What replays saved over every session that closed a cache on this store."""
        return from_counters(read_counters(self.store.get_meta(COUNTERS_META)))

    def fingerprints(
        self, rules: RefreshRules, summaries: Iterable[Summary] | None = None
    ) -> list[FingerprintStatus]:
        """Per model, each fingerprint seen live or recorded, and whether it is current.

        ``summaries`` already read from the store saves reading them again.
        """
        recorded = (
            (take.model or summary.model, take.fingerprint)
            for summary in (self.store.summaries() if summaries is None else summaries)
            for take in summary.all_takes
        )
        return fingerprint_statuses(rules, recorded)

    def determinism(self, summaries: Iterable[Summary] | None = None) -> DeterminismSummary:
        """For seeded requests recorded more than once: how often the outputs agreed."""
        return determinism(self.store.summaries() if summaries is None else summaries)

    def verify(self, *, fix: bool = False) -> Check:
        """Every entry the store cannot decode (removed with ``fix``), and rows it did not write."""
        return self.store.check(fix=fix)

    def unused(self, consumed: dict[str, int]) -> list[tuple[str, list[int]]]:
        """Takes never asked for: ``(key, take indices)``, given how many of each were used."""
        unused = []
        for summary in self.store.summaries():
            used = consumed.get(summary.key, 0)
            if used < summary.take_count:
                unused.append((summary.key, list(range(used, summary.take_count))))
        return unused
