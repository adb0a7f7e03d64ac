"""What each model's backend serves now, learned live in this run.

``refresh`` re-fetches a take when the backend that answered it is gone. The backend
shows itself in every answer as an *identity*: the dated model the request's alias
resolved to (``gpt-4o`` answered by ``gpt-4o-2024-08-06``) and the ``system_fingerprint``
where there is one. OpenAI deprecates ``seed`` and ``system_fingerprint`` on Chat
Completions, and the Responses API and embeddings never had a fingerprint, so the dated
model counts as much as the fingerprint.

Nothing but a live answer tells what a model serves now, so :class:`Backends` learns it
once per run: the first request of a run for a model goes live (its *check*), and every
later take of that model is judged against the identities seen live since. A model that
serves several fingerprints side by side shows each of them live sooner or later; a
fingerprint seen live is current, so rotation costs at most one check per fingerprint,
never a storm. What a run learned holds for ``hold`` (an hour by default), so that a
long-running process learns again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from ._flights import Flight
from ._takes import Take

__all__ = ["BackendChange", "Backends", "Identity", "identity_of"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Which backend answered: the model named by the answer and its fingerprint."""

    model: str | None
    fingerprint: str | None

    def describe(self) -> str:
        """``gpt-4o-2024-08-06 fp_f33640a400``, or whichever half is known."""
        return " ".join(p for p in (self.model, self.fingerprint) if p) or "unknown"


def identity_of(take: Take) -> Identity | None:
    """The backend identity ``take`` shows; None for errors, which name no backend."""
    if take.status >= 400:
        return None
    return Identity(take.model, take.fingerprint)


@dataclass(frozen=True, slots=True)
class BackendChange:
    """A model that answered from another backend than the one a take was recorded under."""

    model: str
    """The model as requested (``gpt-4o``)."""
    before: str
    """The recorded identity, as short as tells it apart (``fp_a`` or a dated model)."""
    after: str
    """The identity served now."""

    @classmethod
    def between(cls, model: str, old: Identity, new: Identity) -> BackendChange:
        """The change from ``old`` to ``new``, naming only the half that moved."""
        if old.model == new.model:
            return cls(model, old.fingerprint or "none", new.fingerprint or "none")
        if old.fingerprint == new.fingerprint:
            return cls(model, old.model or "none", new.model or "none")
        return cls(model, old.describe(), new.describe())

    def describe(self) -> str:
        """``gpt-4o: fp_a → fp_b``."""
        return f"{self.model}: {self.before} → {self.after}"


class _Model:
    """One model's state in a run: the identities served live, and the check in the air."""

    __slots__ = ("checking", "learned_at", "served")

    def __init__(self) -> None:
        self.served: set[Identity] = set()
        self.learned_at: float | None = None
        self.checking: Flight | None = None


class Backends:
    """The identities each model served live in one run, shared by the caches of that run.

    A :class:`~seedcache.SeedCache` makes its own unless given one: pass the same object to
    several caches (the pytest plugin does, for every cassette of a session) and a model is
    checked once for all of them.

    >>> run = seedcache.Backends()                                          # doctest: +SKIP
    >>> a = seedcache.SeedCache.cassette("a.json", mode="refresh", backends=run)  # doctest: +SKIP
    """

    def __init__(
        self, *, hold: timedelta = timedelta(hours=1), clock: Callable[[], float] = time.time
    ) -> None:
        self._hold = hold.total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self.started_ms = round(clock() * 1000)
        """When this run began: the registry notes it beside what the run saw."""

    def is_served(self, model: str, identity: Identity, *, now: float) -> bool | None:
        """Whether ``model`` served ``identity`` live in this run; None when not yet known."""
        with self._lock:
            state = self._models.get(model)
            if state is None or not self._fresh(state, now):
                return None
            return identity in state.served

    def check(self, model: str, *, now: float) -> Flight | None:
        """Claim the check of ``model`` for this request: None when it is this request's
        to make, else the check already in the air, to wait for before deciding again."""
        with self._lock:
            state = self._models.setdefault(model, _Model())
            if state.checking is not None:
                return state.checking
            if self._fresh(state, now):
                # Learned by another request since this one looked: decide again.
                learned = Flight()
                learned.land(None, None)
                return learned
            if state.learned_at is not None:
                state.served.clear()
                state.learned_at = None
            state.checking = Flight()
            return None

    def learn(self, model: str, identity: Identity, *, now: float) -> None:
        """``model`` served ``identity`` live just now."""
        with self._lock:
            state = self._models.setdefault(model, _Model())
            if not self._fresh(state, now):
                state.served.clear()
                state.learned_at = now
            state.served.add(identity)

    def checked(self, model: str) -> None:
        """The check of ``model`` ended (learned or failed): let its waiters decide."""
        with self._lock:
            state = self._models.get(model)
            flight = None if state is None else state.checking
            if state is not None:
                state.checking = None
        if flight is not None:
            flight.land(None, None)

    def _fresh(self, state: _Model, now: float) -> bool:
        learned = state.learned_at
        return learned is not None and 0 <= now - learned <= self._hold
