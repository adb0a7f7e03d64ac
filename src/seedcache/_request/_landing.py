"""Where a live answer lands: stored as a take, kept out, or found to confirm the recorded
one; then the waiters are let go, the session counts it, and ``refresh`` says what moved.

The caller already has the response (and paid for it) when it lands: a store that cannot
write is logged and counted, never raised into the caller's hands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .._errors import CorruptEntryError, StoreError, UnsafeDataError
from .._stores import Lease
from .._takes._content import content_of
from .._takes._take import Entry, Take, identity_of
from ._backends import BackendChange
from ._config import CoreConfig
from ._flights import Flight
from ._freshness import Checking, model_of
from ._keys import Canonical
from ._outcome import Action, Outcome
from ._policy import Fetch, Slot, place
from ._recording import Recording
from ._session import Session
from ._steps import Serve

__all__ = ["Lander", "Landing"]

_log = logging.getLogger("seedcache")


@dataclass(frozen=True, slots=True)
class Landing:
    """Where a live answer went: the take now at ``index`` (the recorded one when kept)."""

    index: int
    take: Take
    kept: bool = False
    """A check found the recorded backend still served: the recorded take stays."""
    replaced: Take | None = None
    """The take ``refresh`` replaced, if any."""

    @property
    def action(self) -> Action:
        """What the caller is told happened."""
        if self.kept:
            return Action.CONFIRMED
        return Action.RECORDED if self.replaced is None else Action.REFRESHED


class Lander:
    """Lands the live answers of one core's requests (see the module)."""

    def __init__(self, config: CoreConfig, session: Session) -> None:
        self._config = config
        self._session = session

    def settle(
        self,
        flight: Flight,
        lease: Lease | None,
        checking: Checking | None,
        recording: Recording,
        take: Take | None,
    ) -> None:
        """A recording ended, with its take when complete: store it, let waiters go,
        count and report."""
        config, session, rules = self._config, self._session, self._config.rules
        landing = None
        try:
            if take is not None:
                rules.learn(recording.canonical, take)
                landing = self._store(recording, take)
        finally:
            rules.checked(checking)
            if lease is not None:
                session.keeper.drop(lease)
                if landing is None or landing.kept:
                    session.keeper.release(config.store, lease)
            session.land(
                recording.key,
                flight,
                recording.decision.occurrence,
                counting=config.count_repeats,
                action=None if landing is None else landing.action,
                passed_through=not recording.storable,
            )
            if landing is None:
                flight.land(None, None)
            else:
                flight.land(landing.take, landing.index)
                recording.served = Serve(
                    landing.take, Outcome(landing.action, recording.key, landing.index)
                )
        if take is None or landing is None:
            return
        if landing.kept:
            # Kept as served beside the live one: current for the rest of the run too.
            rules.learn(recording.canonical, landing.take)
            self._warn_unserved_pins(take)
            return
        self._observe(take)
        self._report_refresh(recording.canonical, landing.replaced, take)

    def write_failed(self, what: str, exc: StoreError) -> None:
        """Count a write the store refused; say it once per session, loudly."""
        first = self._session.count_write_error()
        _log.log(
            logging.ERROR if first else logging.DEBUG,
            "%s: %s; answers are passed through unrecorded while the store refuses writes%s",
            what,
            exc,
            "" if first else " (said before)",
        )

    def _store(self, recording: Recording, take: Take) -> Landing | None:
        """Store ``take``; where it landed, or None if it was not stored.

        None when ``take`` is an error and the take it would replace is a success (the
        caller gets the error, the recording keeps the answer that worked), or when the
        store failed. A check whose answer shows the recorded take's backend keeps that
        take, unwritten: the landing is the recorded take.
        """
        config = self._config
        canonical, decision = recording.canonical, recording.decision
        landed: list[Landing | None] = []
        # Read before the store's write lock: the registry lives in the same store.
        sibling = config.rules.served_beside(recording.expected, identity_of(take))

        def change(entry: Entry | None) -> Entry:
            entry = entry or Entry(key=canonical.key, request=canonical.summary)
            current = None
            if decision.slot is not Slot.APPEND and decision.occurrence < len(entry.takes):
                current = entry.takes[decision.occurrence]
            if take.status >= 400 and current is not None and current.status < 400:
                landed.append(None)
                return entry
            if _confirms(decision, current, take, sibling=sibling):
                assert current is not None
                landed.append(Landing(decision.occurrence, current, kept=True))
                return entry
            if decision.check and current is not None:
                config.rules.lost(canonical, current)
            changed, index = place(entry, take, decision, history_limit=config.history_limit)
            replaced = current if decision.slot is Slot.REPLACE else None
            landed.append(Landing(index, take, replaced=replaced))
            return changed

        try:
            try:
                config.store.update(canonical.key, change)
            except (CorruptEntryError, UnsafeDataError):
                # The damaged entry was already reported when the request was decided;
                # the fresh take replaces it rather than failing the caller's response.
                config.store.delete(canonical.key)
                config.store.update(canonical.key, change)
        except StoreError as exc:
            what = (
                f"the response to {canonical.endpoint} (key {canonical.key}) was returned but "
                f"could not be recorded in {config.store.location}"
            )
            self.write_failed(what, exc)
            return None
        if landed[-1] is None:
            _log.warning(
                "%s answered %s to %s (key %s); kept the recorded take that succeeded",
                canonical.endpoint,
                take.status,
                config.mode.value,
                canonical.key,
            )
        return landed[-1]

    def _observe(self, take: Take) -> None:
        """Tell the fingerprint registry what a live response showed."""
        try:
            self._config.rules.observe(take)
        except StoreError as exc:
            # The take is stored; a registry that missed one sighting only costs a
            # re-fetch later. The caller's response must not fail for it.
            _log.warning("could not update the fingerprint registry: %s", exc)

    def _warn_unserved_pins(self, live: Take) -> None:
        """Pins that the model does not serve re-fetch its takes every run: say so, once."""
        pins = self._config.rules.pins
        if not pins or live.fingerprint in pins:
            return
        model = live.model or "?"
        if not self._session.first_warning(f"pins of {model}"):
            return
        _log.warning(
            "%s answers with %s, not a pinned fingerprint (%s): its takes are fetched again "
            "every run; pin %s, or drop the pins",
            model,
            live.fingerprint or "no fingerprint",
            ", ".join(sorted(pins)),
            live.fingerprint or "nothing",
        )

    def _report_refresh(self, canonical: Canonical, old: Take | None, new: Take) -> None:
        """Count and log what a re-fetch found: drift is the point of ``refresh``."""
        if old is None:
            return
        changed = content_of(old).text != content_of(new).text
        before, after = identity_of(old), identity_of(new)
        moved = None
        if before is not None and after is not None and before != after:
            moved = BackendChange.between(model_of(canonical.model, new), before, after)
        self._session.count_refresh(
            drifted=old.fingerprint != new.fingerprint, changed=changed, moved=moved
        )
        # A changed output is what users of refresh watch for: loud enough to show up
        # in pytest's report and default logging; a same-output re-fetch is routine.
        level = logging.WARNING if changed else logging.INFO if moved else logging.DEBUG
        _log.log(
            level,
            "refreshed %s: %s, output %s (key %s)",
            model_of(canonical.model, new),
            f"{moved.before} -> {moved.after}" if moved else "same backend",
            "changed" if changed else "unchanged",
            canonical.key,
        )


def _confirms(decision: Fetch, recorded: Take | None, live: Take, *, sibling: bool) -> bool:
    """Whether a check's live answer shows the backend ``recorded`` was recorded under, or
    a ``sibling`` the store saw serving beside it (a model rotating two fingerprints)."""
    if not decision.check or recorded is None:
        return False
    identity = identity_of(recorded)
    return identity is not None and (identity == identity_of(live) or sibling)
