"""What ``seedcache fingerprints`` shows: each fingerprint of each model, when it was
seen live, whether it is current, and how many recorded takes it answered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._request._freshness import RefreshRules
from .._stores._registry import UNKNOWN_MS, clamped

__all__ = ["FingerprintStatus", "fingerprint_statuses"]


@dataclass(frozen=True, slots=True)
class FingerprintStatus:
    """One fingerprint of one model: when it was seen live, whether it is current, its takes."""

    model: str
    fingerprint: str
    first_seen_ms: int | None
    """None when the fingerprint is only known from recorded takes, never seen live here."""
    last_seen_ms: int | None
    current: bool
    takes: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "model": self.model,
            "fingerprint": self.fingerprint,
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "current": self.current,
            "takes": self.takes,
        }


def fingerprint_statuses(
    rules: RefreshRules, recorded: Iterable[tuple[str | None, str | None]]
) -> list[FingerprintStatus]:
    """Every fingerprint known live or from ``recorded`` ``(model, fingerprint)`` takes."""
    counts: dict[tuple[str, str], int] = {}
    for model, fingerprint in recorded:
        if model is not None and fingerprint is not None:
            counts[model, fingerprint] = counts.get((model, fingerprint), 0) + 1
    now_ms = rules.now_ms()
    sightings = {
        model: kept
        for model, seen in rules.registry.load().items()
        if (kept := clamped(seen, now_ms)) is not None
    }
    pairs = set(counts) | {(m, fp) for m, seen in sightings.items() for fp in seen.fingerprints}
    current = {m: rules.current(m, sightings=sightings) for m, _ in pairs}
    statuses = []
    for model, fingerprint in sorted(pairs):
        seen = sightings.get(model)
        sighting = seen.fingerprints.get(fingerprint) if seen is not None else None
        statuses.append(
            FingerprintStatus(
                model=model,
                fingerprint=fingerprint,
                first_seen_ms=_known(sighting.first_seen_ms) if sighting else None,
                last_seen_ms=_known(sighting.last_seen_ms) if sighting else None,
                current=fingerprint in current[model],
                takes=counts.get((model, fingerprint), 0),
            )
        )
    return statuses


def _known(ms: int) -> int | None:
    return None if ms == UNKNOWN_MS else ms
