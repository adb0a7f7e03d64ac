"""The fingerprint registry: every fingerprint each model served live, kept in a store's
metadata (``meta`` named ``fingerprints``).

It records when each fingerprint was first and last seen and when the latest run that
went live began; it survives restarts, travels with a cassette, and is what ``seedcache
fingerprints`` shows. Runs judge takes by it in ``refresh`` (see
:mod:`seedcache._request._freshness`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._base import Store

__all__ = [
    "FUTURE_TOLERANCE_MS",
    "REGISTRY_META",
    "UNKNOWN_MS",
    "ModelSightings",
    "Registry",
    "Sighting",
    "Sightings",
    "clamped",
    "merge_registries",
]

REGISTRY_META = "fingerprints"
_FORMAT = 1
# A registry write per live response would double the writes of a busy recording run;
# moving a timestamp by less than this is not worth one (windows are hours long).
_WRITE_GRANULARITY_MS = 60_000
# Sightings further ahead of the observer's clock than this came from a wrong clock.
FUTURE_TOLERANCE_MS = 10 * 60_000
UNKNOWN_MS = 0
"""A sighting time that was not to be believed (from the future): shown as unknown."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """When one fingerprint was first and last served live."""

    first_seen_ms: int
    last_seen_ms: int


@dataclass(frozen=True, slots=True)
class ModelSightings:
    """What one model served live: its latest live response and every fingerprint seen."""

    last_live_ms: int
    fingerprints: Mapping[str, Sighting] = field(default_factory=dict)
    run_started_ms: int | None = None
    """When the latest run that went live for this model began: what it saw is current.
    None in registries written before runs were noted."""


Sightings = dict[str, ModelSightings]


class Registry:
    """The fingerprints each model served live, kept in a store's metadata."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load(self) -> Sightings:
        """Every model's sightings; empty when nothing was seen (or the blob is unreadable)."""
        return _decode(self._store.get_meta(REGISTRY_META))

    def observe(
        self,
        model: str,
        fingerprint: str,
        at_ms: int,
        *,
        now_ms: int | None = None,
        run_started_ms: int | None = None,
    ) -> None:
        """Note that ``model`` served ``fingerprint`` live at ``at_ms``, in the run that
        began at ``run_started_ms``.

        With ``now_ms`` (the observer's clock), sightings from the future (written by a
        run whose clock was ahead) are brought back to now: left there, they would keep
        a stale fingerprint current and make every new one look old, run after run.
        """

        def updated(sightings: Sightings) -> ModelSightings | None:
            known = sightings.get(model)
            kept = known if now_ms is None else clamped(known, now_ms)
            sighted = _with_sighting(kept, fingerprint, at_ms, run_started_ms)
            return sighted or (kept if kept != known else None)

        def change(raw: bytes | None) -> bytes | None:
            sightings = _decode(raw)
            new = updated(sightings)
            if new is None:
                return raw  # nothing moved enough to be worth a write
            sightings[model] = new
            return _encode(sightings)

        if updated(self.load()) is not None:
            self._store.update_meta(REGISTRY_META, change)

    def served_together(self, model: str, one: str, other: str, *, before_ms: int) -> bool:
        """Whether ``model`` served fingerprints ``one`` and ``other`` side by side before
        ``before_ms``: both sighted live then, over overlapping times (within the write
        granularity). A fingerprint first seen later is a change, not a sibling."""
        seen = self.load().get(model)
        if seen is None or one == other:
            return False
        a, b = seen.fingerprints.get(one), seen.fingerprints.get(other)
        if a is None or b is None or UNKNOWN_MS in (a.first_seen_ms, b.first_seen_ms):
            return False
        if a.first_seen_ms >= before_ms or b.first_seen_ms >= before_ms:
            return False
        slack = _WRITE_GRANULARITY_MS
        return (
            a.first_seen_ms <= b.last_seen_ms + slack and b.first_seen_ms <= a.last_seen_ms + slack
        )

    def reset(self) -> None:
        """Forget every sighting: ``refresh`` starts learning the fingerprints again."""
        self._store.update_meta(REGISTRY_META, lambda _: None)


def clamped(known: ModelSightings | None, now_ms: int) -> ModelSightings | None:
    """``known`` with every time from the future made unknown (0).

    Clocks of processes and machines differ by seconds or minutes; only a time further
    ahead than :data:`FUTURE_TOLERANCE_MS` counts as from the future. Such a time says
    nothing true: taken as now, it would keep a fingerprint current that no run saw.
    """
    if known is None:
        return None
    limit = now_ms + FUTURE_TOLERANCE_MS

    def sane(ms: int) -> int:
        return UNKNOWN_MS if ms > limit else ms

    fingerprints = {
        fp: Sighting(sane(s.first_seen_ms), sane(s.last_seen_ms))
        for fp, s in known.fingerprints.items()
    }
    started = known.run_started_ms
    return ModelSightings(
        sane(known.last_live_ms), fingerprints, None if started is None else sane(started)
    )


def _with_sighting(
    known: ModelSightings | None, fingerprint: str, at_ms: int, run_started_ms: int | None
) -> ModelSightings | None:
    """``known`` plus one sighting, or None when it would change nothing that matters."""
    if known is None:
        return ModelSightings(at_ms, {fingerprint: Sighting(at_ms, at_ms)}, run_started_ms)
    seen = known.fingerprints.get(fingerprint)
    # A new run must be noted even within the granularity: it decides what is current.
    started = known.run_started_ms
    if run_started_ms is not None and (started is None or run_started_ms > started):
        started = run_started_ms
    if (
        seen is not None
        and started == known.run_started_ms
        and at_ms - known.last_live_ms < _WRITE_GRANULARITY_MS
        and at_ms - seen.last_seen_ms < _WRITE_GRANULARITY_MS
        and seen.first_seen_ms - at_ms < _WRITE_GRANULARITY_MS
    ):
        return None
    fingerprints = dict(known.fingerprints)
    if seen is None:
        fingerprints[fingerprint] = Sighting(at_ms, at_ms)
    else:
        fingerprints[fingerprint] = Sighting(
            min(seen.first_seen_ms, at_ms), max(seen.last_seen_ms, at_ms)
        )
    return ModelSightings(max(known.last_live_ms, at_ms), fingerprints, started)


def _encode(sightings: Sightings) -> bytes:
    models: dict[str, dict[str, Any]] = {}
    for model, seen in sorted(sightings.items()):
        models[model] = {
            "last_live_ms": seen.last_live_ms,
            "fingerprints": {
                fp: {"first_seen_ms": s.first_seen_ms, "last_seen_ms": s.last_seen_ms}
                for fp, s in sorted(seen.fingerprints.items())
            },
        }
        if seen.run_started_ms is not None:
            models[model]["run_started_ms"] = seen.run_started_ms
    return json.dumps({"format": _FORMAT, "models": models}, sort_keys=True).encode()


def _decode(raw: bytes | None) -> Sightings:
    """Parse the blob leniently: a damaged registry only costs re-fetches, never a crash."""
    if raw is None:
        return {}
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, dict):
        return {}
    sightings: Sightings = {}
    for model, seen in models.items():
        if not isinstance(seen, dict) or not _is_int(seen.get("last_live_ms")):
            continue
        fingerprints = {}
        raw_fps = seen.get("fingerprints")
        for fp, times in (raw_fps if isinstance(raw_fps, dict) else {}).items():
            if isinstance(times, dict):
                first, last = times.get("first_seen_ms"), times.get("last_seen_ms")
                if isinstance(first, int) and isinstance(last, int):
                    fingerprints[fp] = Sighting(first, last)
        started = seen.get("run_started_ms")
        sightings[model] = ModelSightings(
            seen["last_live_ms"], fingerprints, started if _is_int(started) else None
        )
    return sightings


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def merge_registries(ours: bytes | None, theirs: bytes | None) -> bytes | None:
    """Both registries' sightings in one: earliest first, latest last sightings win."""
    merged = _decode(ours)
    for model, seen in _decode(theirs).items():
        known = merged.get(model)
        if known is None:
            merged[model] = seen
            continue
        fingerprints = dict(known.fingerprints)
        for fp, sighting in seen.fingerprints.items():
            other = fingerprints.get(fp)
            fingerprints[fp] = (
                sighting
                if other is None
                else Sighting(
                    min(other.first_seen_ms, sighting.first_seen_ms),
                    max(other.last_seen_ms, sighting.last_seen_ms),
                )
            )
        runs = [r for r in (known.run_started_ms, seen.run_started_ms) if r is not None]
        merged[model] = ModelSightings(
            max(known.last_live_ms, seen.last_live_ms), fingerprints, max(runs, default=None)
        )
    return _encode(merged) if merged else ours
