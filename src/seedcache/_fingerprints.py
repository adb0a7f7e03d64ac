"""Which fingerprints each model served, and whether a recorded take is still current.

Two kinds of knowledge, for two uses:

- :class:`Backends` (this run): what each model serves *now*, learned from live answers.
  ``refresh`` judges every take by it (see :mod:`seedcache._backends`).
- :class:`Registry` (stored): every fingerprint each model served live, with when it was
  first and last seen and when the latest run that went live began. It lives beside the
  entries in the store (``meta`` named ``fingerprints``), survives restarts, travels with
  a cassette, and is what ``seedcache fingerprints`` shows.

:class:`Currency` judges one take in ``refresh``: too old for ``max_age`` is stale; with
pinned fingerprints, the pins decide without a live call; otherwise the take is current
when its backend identity was served live in this run, and unsure (checked live) when
its model has not answered yet or answered from another backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import _settings as settings
from ._backends import Backends, identity_of
from ._durations import parse_duration
from ._errors import ConfigurationError
from ._policy import Freshness
from ._stores import Store
from ._takes import Take

__all__ = [
    "REGISTRY_META",
    "Currency",
    "FingerprintStatus",
    "ModelSightings",
    "Registry",
    "Sighting",
    "fingerprint_statuses",
    "merge_registries",
    "model_of",
    "parse_pins",
    "scope_of",
]

REGISTRY_META = "fingerprints"
_FORMAT = 1
# A registry write per live response would double the writes of a busy recording run;
# moving a timestamp by less than this is not worth one (windows are hours long).
_WRITE_GRANULARITY_MS = 60_000
# Sightings further ahead of the observer's clock than this came from a wrong clock.
_FUTURE_TOLERANCE_MS = 10 * 60_000
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
            clamped = known if now_ms is None else _clamped(known, now_ms)
            sighted = _with_sighting(clamped, fingerprint, at_ms, run_started_ms)
            return sighted or (clamped if clamped != known else None)

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


def _clamped(known: ModelSightings | None, now_ms: int) -> ModelSightings | None:
    """``known`` with every time from the future made unknown (0).

    Clocks of processes and machines differ by seconds or minutes; only a time further
    ahead than :data:`_FUTURE_TOLERANCE_MS` counts as from the future. Such a time says
    nothing true: taken as now, it would keep a fingerprint current that no run saw.
    """
    if known is None:
        return None
    limit = now_ms + _FUTURE_TOLERANCE_MS

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


def parse_pins(pins: str | Iterable[str] | None) -> frozenset[str]:
    """Pinned fingerprints from an argument or ``$SEEDCACHE_FINGERPRINTS`` (comma separated)."""
    if pins is None:
        pins = settings.fingerprints() or ()
    if isinstance(pins, str):
        pins = pins.replace(",", " ").split()
    given = list(pins)
    if any(not isinstance(p, str) or not p.strip() for p in given):
        raise ConfigurationError(
            f"fingerprints must be non-empty strings such as 'fp_f33640a400', not {given!r}"
        )
    return frozenset(p.strip() for p in given)


class Currency:
    """Judges whether a take may still be replayed in ``refresh`` mode (see the module)."""

    def __init__(
        self,
        registry: Registry,
        *,
        clock: Callable[[], float],
        backends: Backends | None = None,
        pins: frozenset[str] = frozenset(),
        max_age: str | timedelta | None = None,
    ) -> None:
        self.registry = registry
        self.backends = backends or Backends(clock=clock)
        self.pins = pins
        if max_age is None:
            max_age = settings.max_age()
        self.max_age = None if max_age is None else parse_duration(max_age, name="max_age")
        self._clock = clock

    def freshness(self, take: Take, scope: str) -> Freshness:
        """What ``refresh`` makes of ``take``, recorded for a request in ``scope`` (see
        :func:`scope_of`)."""
        now = self._clock()
        if self.max_age is not None:
            age_ms = now * 1000 - take.recorded_at_ms
            # A take dated in the future has no age to trust: it must not escape max_age.
            if age_ms > _ms(self.max_age) or age_ms < -_FUTURE_TOLERANCE_MS:
                return Freshness.STALE
        identity = identity_of(take)
        if self.pins and (take.fingerprint is None or take.fingerprint in self.pins):
            return Freshness.CURRENT
        if identity is None:
            return Freshness.CURRENT  # an error names no backend; only its age counts
        if self.backends.is_served(scope, identity, now=now):
            # Served now. (With pins too: a take the model still answers from is kept,
            # rather than replaced by its like every run.)
            return Freshness.CURRENT
        # Not seen yet, or found gone: checked live either way (a backend found gone may
        # still be served beside another, and then its take must stay).
        return Freshness.UNSURE

    def current(self, model: str | None, *, sightings: Sightings | None = None) -> frozenset[str]:
        """The fingerprints of ``model`` current as of its latest live run (or the pins)."""
        if self.pins:
            return self.pins
        if model is None:
            return frozenset()
        now_ms = self.now_ms()
        # A sighting from the future (a clock that was ahead) counts as now.
        seen = _clamped(
            (self.registry.load() if sightings is None else sightings).get(model), now_ms
        )
        if seen is None:
            return frozenset()
        since = seen.run_started_ms
        if since is None:  # a registry from before runs were noted: the old hour
            since = seen.last_live_ms - _LEGACY_WINDOW_MS
        return frozenset(fp for fp, s in seen.fingerprints.items() if s.last_seen_ms >= since)

    def observe(self, take: Take) -> None:
        """Teach the registry what a live response showed."""
        if take.fingerprint is not None and take.model is not None:
            self.registry.observe(
                take.model,
                take.fingerprint,
                take.recorded_at_ms,
                now_ms=self.now_ms(),
                run_started_ms=self.backends.started_ms,
            )

    def now_ms(self) -> int:
        """The clock, in milliseconds."""
        return round(self._clock() * 1000)


def model_of(requested: str | None, take: Take) -> str:
    """The model a take answers for: as requested, else as the answer names it."""
    return requested or take.model or "?"


def scope_of(requested: str | None, endpoint: str, take: Take) -> str:
    """Where a run learns what is served: the model and the endpoint (``gpt-4o POST
    /v1/chat/completions``). The same model names a fingerprint on one endpoint and none
    on another, so their identities are compared apart."""
    return f"{model_of(requested, take)} {endpoint}"


# Registries written before runs were noted called current what was seen within an hour
# of the model's latest live response.
_LEGACY_WINDOW_MS = 3_600_000


def _ms(span: timedelta) -> int:
    return round(span.total_seconds() * 1000)


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
    currency: Currency, recorded: Iterable[tuple[str | None, str | None]]
) -> list[FingerprintStatus]:
    """Every fingerprint known live or from ``recorded`` ``(model, fingerprint)`` takes."""
    counts: dict[tuple[str, str], int] = {}
    for model, fingerprint in recorded:
        if model is not None and fingerprint is not None:
            counts[model, fingerprint] = counts.get((model, fingerprint), 0) + 1
    now_ms = currency.now_ms()
    sightings = {
        model: clamped
        for model, seen in currency.registry.load().items()
        if (clamped := _clamped(seen, now_ms)) is not None
    }
    pairs = set(counts) | {(m, fp) for m, seen in sightings.items() for fp in seen.fingerprints}
    current = {m: currency.current(m, sightings=sightings) for m, _ in pairs}
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
