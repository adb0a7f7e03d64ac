"""Whether a recorded take may still be replayed in ``refresh`` mode.

Two kinds of knowledge, for two uses:

- :class:`~seedcache._request._backends.Backends` (this run): what each model serves
  *now*, learned from live answers. ``refresh`` judges every take by it.
- :class:`~seedcache._stores._registry.Registry` (stored): every fingerprint each model
  served live; it says which fingerprints were current as of a model's latest live run.

:class:`RefreshRules` judges one take: too old for ``max_age`` is stale; with pinned
fingerprints, the pins decide without a live call; otherwise the take is current when its
backend identity was served live in this run, and unsure (checked live) when its model has
not answered yet or answered from another backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from .. import _settings as settings
from .._errors import ConfigurationError, StoreError
from .._stores._registry import FUTURE_TOLERANCE_MS, Registry, Sightings, clamped
from .._takes._take import Identity, Take, identity_of
from .._units import parse_duration
from ._backends import CHECK_SAMPLES, Backends
from ._flights import Flight
from ._keys import Canonical
from ._policy import Freshness

__all__ = ["Checking", "RefreshRules", "model_of", "parse_pins", "scope_of"]

Checking = tuple[str, Identity]
"""A check one request makes: the scope and the backend identity it checks."""


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


class RefreshRules:
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

    def judge(self, canonical: Canonical) -> Callable[[Take], Freshness]:
        """What ``refresh`` makes of each recorded take of ``canonical``."""
        return lambda take: self.freshness(take, _scope(canonical, take))

    def freshness(self, take: Take, scope: str) -> Freshness:
        """What ``refresh`` makes of ``take``, recorded for a request in ``scope`` (see
        :func:`scope_of`)."""
        now = self._clock()
        if self.max_age is not None:
            age_ms = now * 1000 - take.recorded_at_ms
            # A take dated in the future has no age to trust: it must not escape max_age.
            if age_ms > _ms(self.max_age) or age_ms < -FUTURE_TOLERANCE_MS:
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
        seen = clamped(
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

    # -- what a run learns from live answers, and the checks it makes ------------------

    def learn(self, canonical: Canonical, take: Take) -> None:
        """Every live answer teaches the run what its model serves now."""
        identity = identity_of(take)
        if identity is not None:
            self.backends.learn(_scope(canonical, take), identity, now=self._clock())

    def lost(self, canonical: Canonical, take: Take) -> None:
        """A check's answers did not show ``take``'s backend: gone for the rest of the run."""
        identity = identity_of(take)
        if identity is not None:
            self.backends.lost(_scope(canonical, take), identity, now=self._clock())

    def claim_check(self, canonical: Canonical, take: Take) -> Checking | Flight | None:
        """Claim the check of ``take``'s backend: what to release when it ends, or the
        check another request is making of the same backend, to wait for."""
        identity = identity_of(take)
        if identity is None:
            return None
        scope = _scope(canonical, take)
        underway = self.backends.check(scope, identity, now=self._clock())
        return underway if underway is not None else (scope, identity)

    def checked(self, checking: Checking | None) -> None:
        """The check claimed by :meth:`claim_check` is over (or never went out)."""
        if checking is not None:
            self.backends.checked(*checking)

    def samples(self, canonical: Canonical, take: Take) -> int:
        """Live answers a check of ``take`` asks for: a few before a backend is called gone
        (it may be served beside another), one once this run found it gone."""
        identity = identity_of(take)
        if identity is None or self.pins:
            return 1  # with pins, one answer says whether the pin is served
        gone = self.backends.is_gone(_scope(canonical, take), identity, now=self._clock())
        return 1 if gone else CHECK_SAMPLES

    def served_beside(self, recorded: Identity | None, live: Identity | None) -> bool:
        """Whether the store saw ``recorded`` and ``live`` served side by side: the same
        dated model, two fingerprints sighted live at overlapping times. Then a live
        answer from one does not make takes of the other stale."""
        if recorded is None or live is None or recorded == live:
            return False  # the same backend needs no sibling (nor a registry read)
        if recorded.model != live.model or recorded.model is None:
            return False
        if recorded.fingerprint is None or live.fingerprint is None:
            return False
        try:
            return self.registry.served_together(
                recorded.model,
                recorded.fingerprint,
                live.fingerprint,
                before_ms=self.backends.started_ms,
            )
        except StoreError:
            return False

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


def _scope(canonical: Canonical, take: Take) -> str:
    return scope_of(canonical.model, canonical.endpoint, take)


# Registries written before runs were noted called current what was seen within an hour
# of the model's latest live response.
_LEGACY_WINDOW_MS = 3_600_000


def _ms(span: timedelta) -> int:
    return round(span.total_seconds() * 1000)
