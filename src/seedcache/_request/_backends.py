"""What each model's backend serves now, learned live in this run.

``refresh`` re-fetches a take when the backend that answered it is gone. The backend
shows itself in every answer as an *identity*: the dated model the request's alias
resolved to (``gpt-4o`` answered by ``gpt-4o-2024-08-06``) and the ``system_fingerprint``
where there is one. OpenAI deprecates ``seed`` and ``system_fingerprint`` on Chat
Completions, and the Responses API and embeddings never had a fingerprint, so the dated
model counts as much as the fingerprint.

Nothing but a live answer tells what a model serves now, so :class:`Backends` learns it
once per run, per model and endpoint (Chat Completions names a fingerprint, the
Responses API does not): the first request of a run goes live (its *check*), and every
later take is judged against the identities seen live since. A model may serve several
fingerprints side by side, so one live answer from another backend does not prove a
take's backend gone: a check asks up to :data:`CHECK_SAMPLES` times, and keeps the take
if any answer shows its backend. A backend that none showed is *gone* for the rest of
the run: its other takes are re-fetched without asking again. What a run learned holds
for ``hold`` (an hour by default), so that a long-running process learns again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from .._takes._take import Identity
from ._flights import Flight

__all__ = ["CHECK_SAMPLES", "BackendChange", "Backends"]

CHECK_SAMPLES = 3
"""Live answers a check asks for before it calls a take's backend gone. A model serving
two fingerprints half and half shows a given one in three answers 7 times in 8."""


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

    __slots__ = ("checking", "gone", "learned_at", "served")

    def __init__(self) -> None:
        self.served: set[Identity] = set()
        self.gone: set[Identity] = set()
        self.learned_at: float | None = None
        self.checking: dict[Identity, Flight] = {}

    def forget(self) -> None:
        self.served.clear()
        self.gone.clear()
        self.learned_at = None


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
        """Whether ``model`` served ``identity`` live in this run; None when not yet known.

        ``model`` is the scope a run learns in: the model as requested, and its endpoint.
        """
        with self._lock:
            state = self._models.get(model)
            if state is None or not self._fresh(state, now):
                return None
            return identity in state.served

    def is_gone(self, model: str, identity: Identity, *, now: float) -> bool:
        """Whether a check of this run found ``identity`` no longer served by ``model``."""
        with self._lock:
            state = self._models.get(model)
            return state is not None and self._fresh(state, now) and identity in state.gone

    def lost(self, model: str, identity: Identity, *, now: float) -> None:
        """A check's answers did not show ``identity``: it is gone for this run."""
        with self._lock:
            state = self._models.setdefault(model, _Model())
            if state.learned_at is not None and not self._fresh(state, now):
                state.forget()
            if identity not in state.served:
                state.gone.add(identity)

    def check(self, model: str, identity: Identity, *, now: float) -> Flight | None:
        """Claim the check of a take recorded under ``identity``: None when it is this
        request's to make, else a check to wait for before deciding again (another
        request is checking the same backend, or has just learned it is served)."""
        with self._lock:
            state = self._models.setdefault(model, _Model())
            if state.learned_at is not None and not self._fresh(state, now):
                state.forget()
            if identity in state.served:
                learned = Flight()
                learned.land(None, None)
                return learned
            underway = state.checking.get(identity)
            if underway is not None:
                return underway
            state.checking[identity] = Flight()
            return None

    def learn(self, model: str, identity: Identity, *, now: float) -> None:
        """``model`` served ``identity`` live just now."""
        with self._lock:
            state = self._models.setdefault(model, _Model())
            if not self._fresh(state, now):
                state.forget()
                state.learned_at = now
            state.served.add(identity)
            state.gone.discard(identity)

    def checked(self, model: str, identity: Identity) -> None:
        """The check of ``identity`` ended (learned, lost or failed): its waiters decide."""
        with self._lock:
            state = self._models.get(model)
            flight = None if state is None else state.checking.pop(identity, None)
        if flight is not None:
            flight.land(None, None)

    def _fresh(self, state: _Model, now: float) -> bool:
        learned = state.learned_at
        return learned is not None and 0 <= now - learned <= self._hold
