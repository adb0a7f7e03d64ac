"""The orchestrator: one request in, a replayed take or a live recording out.

Knows no HTTP library. An adapter hands it a :class:`CapturedRequest`; :meth:`Core.begin`
answers with one step:

- :class:`Replayed`: serve this take;
- :class:`Live`: go upstream and feed the response through the :class:`Recording`;
- :class:`Join`: an identical request of this process is in the air, wait for its take;
- :class:`Await`: another process holds the store's lease on the key, wait for it;
- :class:`Hold`: (``refresh``) another request is checking what this model serves now,
  wait for it and decide again.

:func:`resolve_sync` and :func:`resolve_async` do the waiting and ask again; they are the
only difference between sync and async callers. The async one runs every store call in
a worker thread, so no disk (or network) read blocks the event loop.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from .._errors import CacheMiss, CorruptEntryError, StoreError, UnsafeDataError
from .._inspect._savings import Savings, savings_of
from .._stores import Lease, Store
from .._takes._content import content_of
from .._takes._take import Entry, Take
from ._backends import CHECK_SAMPLES, BackendChange, Identity, identity_of
from ._explain import explain_miss
from ._flights import Flight, Session, Stats
from ._freshness import RefreshRules, model_of, scope_of
from ._keys import Canonical, KeyConfig, canonicalize
from ._modes import Mode
from ._outcome import OUTCOME_HEADER, Action, Outcome
from ._policy import Fetch, Freshness, Miss, Replay, Slot, decide, place
from ._recording import Recording
from ._wire import CapturedRequest

__all__ = [
    "Await",
    "Core",
    "Hold",
    "Join",
    "Live",
    "Recording",
    "Replayed",
    "Stats",
    "resolve_async",
    "resolve_sync",
]

# What a miss suggests, unless the owner of the core knows better (the pytest plugin, the
# proxy). The mode given in code wins over the environment, so both are named.
DEFAULT_MISS_ADVICE = (
    "to record it, run once in mode 'auto' with an API key: SeedCache(..., mode='auto'), "
    "or SEEDCACHE_MODE=auto where the code gives no mode."
)
# How long a request waits for an identical one in flight (here or in another process)
# before going live itself.
FLIGHT_WAIT_SECONDS = 600.0
# How long a lease lasts unless renewed: a crashed holder never releases it.
LEASE_SECONDS = 120.0
_MISSES_KEPT = 100

Clock = Callable[[], float]

_log = logging.getLogger("seedcache")


@dataclass(frozen=True, slots=True)
class Replayed:
    """Serve ``take`` without touching the network."""

    take: Take
    outcome: Outcome

    def headers(self) -> list[tuple[str, str]]:
        """The take's headers plus the outcome header."""
        return [*self.take.headers, (OUTCOME_HEADER, self.outcome.header_value())]


@dataclass(frozen=True, slots=True)
class Live:
    """Go to the upstream and feed its response through ``recording``."""

    recording: Recording


@dataclass(frozen=True, slots=True)
class Join:
    """Wait for ``flight``, an identical request of this process, then replay its take."""

    flight: Flight
    key: str


@dataclass(frozen=True, slots=True)
class Await:
    """Another process leases ``key``: wait until its entry leaves ``revision``, then ask again."""

    key: str
    revision: int


@dataclass(frozen=True, slots=True)
class Hold:
    """Another request is checking what this model serves now: wait for ``check``."""

    check: Flight


Step = Replayed | Live | Join | Await | Hold


class Core:
    """Keys, decides, replays and records, over one store, for one session."""

    def __init__(
        self,
        store: Store,
        *,
        mode: Mode,
        key_config: KeyConfig,
        strict: bool = False,
        history_limit: int = 5,
        clock: Clock = time.time,
        rules: RefreshRules | None = None,
        session: Session | None = None,
        count_repeats: bool = True,
    ) -> None:
        self.store = store
        self.mode = mode
        self.key_config = key_config
        self.strict = strict
        self.history_limit = history_limit
        self.clock = clock
        self._rules = rules
        self._session = session or Session(lease_seconds=LEASE_SECONDS)
        self.count_repeats = count_repeats
        """Whether the n-th identical request maps to take n (else always to take 0)."""
        self.miss_advice: Callable[[], str] = lambda: DEFAULT_MISS_ADVICE
        """Gives the last line of every miss: how to record what was missing (asked only
        when a miss happens; the pytest plugin's checks the file system)."""

    @property
    def stats(self) -> Stats:
        """The session's counters (shared with :meth:`sibling` cores)."""
        return self._session.stats

    def savings(self) -> Savings:
        """Tokens and dollars the session's replays saved."""
        with self._session.lock:
            replayed = [(r.model, r.usage, r.count) for r in self._session.replayed.values()]
        return savings_of(replayed)

    @property
    def missed(self) -> list[CacheMiss]:
        """The misses raised in this session, oldest first (the first hundred)."""
        return self._session.missed

    def sibling(self, *, count_repeats: bool) -> Core:
        """A core over the same store and session, counting repeats or not.

        A long-running proxy serves many independent clients: for it, a repeat is another
        client asking the same thing, and should replay the first take rather than become
        a new take.
        """
        twin = Core(
            self.store,
            mode=self.mode,
            key_config=self.key_config,
            strict=self.strict,
            history_limit=self.history_limit,
            clock=self.clock,
            rules=self._rules,
            session=self._session,
            count_repeats=count_repeats,
        )
        twin.miss_advice = self.miss_advice
        return twin

    def backend_changes(self) -> dict[BackendChange, int]:
        """The backend changes ``refresh`` met, with how many takes each replaced."""
        with self._session.lock:
            return dict(self._session.changes)

    def consumed(self) -> dict[str, int]:
        """How many takes of each key this session asked for (repeats counted)."""
        with self._session.lock:
            return self._session.occurrences.used()

    def arrive(self) -> int:
        """Number a request as it arrives (see :meth:`begin`)."""
        return self._session.arrive()

    def begin(
        self,
        request: CapturedRequest,
        *,
        arrived: int | None = None,
        may_join: bool = True,
        may_lease: bool = True,
        may_hold: bool = True,
    ) -> Step:
        """Decide what to do with ``request``; raises :class:`CacheMiss` when nothing can serve it.

        ``arrived`` (from :meth:`arrive`) makes a request that arrived while an identical
        one was in the air share its take, however late this call comes. ``may_join=False``,
        ``may_lease=False`` and ``may_hold=False`` go live rather than wait again, after a
        wait timed out.
        """
        canonical = canonicalize(request, self.key_config)
        key = canonical.key
        session = self._session
        while True:
            occurrence = self._next_occurrence(key)
            entry = self._read_entry(key)
            decision = decide(
                self.mode,
                entry.takes if entry is not None else (),
                occurrence,
                strict=self.strict,
                freshness=self._freshness(canonical),
            )
            joins = may_join and self.mode is not Mode.RECORD
            with session.lock:
                if self._next_occurrence(key, locked=True) != occurrence:
                    continue  # another thread took this occurrence meanwhile; decide again
                if isinstance(decision, Miss):
                    session.stats.misses += 1
                    break
                if isinstance(decision, Replay):
                    self._use(key)
                    session.stats.hits += 1
                else:
                    in_air = session.flights.get(key)
                    if in_air is None and joins and arrived is not None:
                        in_air = session.flights.landed(key, arrived)
                    if in_air is not None and joins:
                        # Concurrent duplicates share the take being fetched and do not
                        # count as a repeat of their own.
                        return Join(in_air, key)
                    # This request fetches. Its flight is up before the store's lease is
                    # asked for, so identical requests of this process join it instead
                    # of waiting on the lease as if another process held it.
                    self._use(key)
                    flight = session.flights.start(key)
            if isinstance(decision, Replay):
                assert entry is not None  # a replay needs a take
                take = entry.takes[decision.index]
                session.count_replay(key, decision.index, take)
                # The HTTP library logs its own line for a replay too; this one says what
                # it was ("seedcache replayed … take 0").
                _log.debug(
                    "replayed %s take %d (key %s), no network",
                    canonical.endpoint,
                    decision.index,
                    key,
                )
                return Replayed(take, Outcome(Action.HIT, key, decision.index))
            checking: Checking | None = None
            if decision.check and may_hold:
                assert entry is not None  # a check needs a take
                claimed = self._claim_check(canonical, entry.takes[decision.occurrence])
                if isinstance(claimed, Flight):
                    self._ground(key, flight, occurrence)
                    return Hold(claimed)
                checking = claimed
            lease = None
            if may_lease and self.mode is not Mode.RECORD:
                revision = entry.revision if entry is not None else 0
                try:
                    lease = self._claim(key, revision)
                except BaseException:
                    self._ground(key, flight, occurrence)
                    self._checked(checking)
                    raise
                if lease is None:
                    self._ground(key, flight, occurrence)
                    self._checked(checking)
                    return Await(key, revision)
                if lease is not _UNLEASED:
                    session.keeper.hold(self.store, lease)
                else:
                    lease = None
            settle = functools.partial(self._settle, flight, lease, checking)
            expected, samples = None, 1
            if decision.check and entry is not None:
                take = entry.takes[decision.occurrence]
                expected = identity_of(take)
                samples = self._samples(canonical, take)
            recording = Recording(
                canonical,
                decision,
                started=self.clock(),
                clock=self.clock,
                settle=settle,
                expected=expected,
                samples=samples,
            )
            return Live(recording)
        miss = explain_miss(
            canonical,
            decision,
            store=self.store,
            mode=self.mode,
            key_config=self.key_config,
            advice=self.miss_advice,
        )
        with session.lock:
            if len(session.missed) < _MISSES_KEPT:
                session.missed.append(miss)
        raise miss

    def _claim(self, key: str, revision: int) -> Lease | None:
        """The store's lease on ``key``; :data:`_UNLEASED` when the store cannot take writes.

        A full disk or a Redis at ``maxmemory`` refuses the claim, which is a write: the
        request then goes live without one (the caller still gets its answer), rather
        than every new request failing.
        """
        try:
            return self.store.claim(key, revision, self._session.lease_seconds)
        except StoreError as exc:
            self._write_failed(f"could not lease {key} in {self.store.location}", exc)
            return _UNLEASED

    def _write_failed(self, what: str, exc: StoreError) -> None:
        """Count a write the store refused; say it once per session, loudly."""
        with self._session.lock:
            self._session.stats.write_errors += 1
            first = self._session.stats.write_errors == 1
        level = logging.ERROR if first else logging.DEBUG
        _log.log(
            level,
            "%s: %s; answers are passed through unrecorded while the store refuses writes%s",
            what,
            exc,
            "" if first else " (said before)",
        )

    def _freshness(self, canonical: Canonical) -> Callable[[Take], Freshness] | None:
        rules = self._rules
        if self.mode is not Mode.REFRESH or rules is None:
            return None
        return functools.partial(_judge, rules, canonical)

    def _claim_check(self, canonical: Canonical, take: Take) -> Checking | Flight | None:
        """Claim the check of ``take``'s backend: what to release when it ends, or the
        check another request is making of the same backend, to wait for."""
        identity = identity_of(take)
        if self._rules is None or identity is None:
            return None
        scope = scope_of(canonical.model, canonical.endpoint, take)
        underway = self._rules.backends.check(scope, identity, now=self.clock())
        return underway if underway is not None else (scope, identity)

    def _checked(self, checking: Checking | None) -> None:
        if checking is not None and self._rules is not None:
            self._rules.backends.checked(*checking)

    def _ground(self, key: str, flight: Flight, occurrence: int) -> None:
        """Call off ``flight`` before it left: the occurrence and the key are free again."""
        with self._session.lock:
            self._session.flights.end(key, flight, 0)
            if self.count_repeats:
                self._session.occurrences.give_back(key, occurrence)
        flight.land(None, None)

    def joined(self, step: Join) -> Replayed | None:
        """The replay for a request that waited on ``step``; None if it must start over."""
        flight = step.flight
        if flight.take is None or flight.index is None:
            return None
        with self._session.lock:
            self._session.stats.joined += 1
        self._session.count_replay(step.key, flight.index, flight.take)
        return Replayed(flight.take, Outcome(Action.JOINED, step.key, flight.index))

    def _next_occurrence(self, key: str, *, locked: bool = False) -> int:
        if not self.count_repeats:
            return 0
        if locked:
            return self._session.occurrences.peek(key)
        with self._session.lock:
            return self._session.occurrences.peek(key)

    def _use(self, key: str) -> None:
        if self.count_repeats:
            self._session.occurrences.take(key)

    def _read_entry(self, key: str) -> Entry | None:
        """The stored entry; a corrupt one is an error in ``replay``, else a warned miss."""
        try:
            return self.store.get(key)
        except (CorruptEntryError, UnsafeDataError) as exc:
            if self.mode is Mode.REPLAY:
                raise
            _log.warning("%s; treating it as not recorded, it will be recorded again", exc)
            return None

    # -- what happens to a live response ------------------------------------------------

    def _settle(
        self,
        flight: Flight,
        lease: Lease | None,
        checking: Checking | None,
        recording: Recording,
        take: Take | None,
    ) -> None:
        """A recording ended: store its take, let waiters go, count and report.

        The caller already has the response (and paid for it): a store that cannot write
        is logged and counted, never raised into the caller's hands.
        """
        session = self._session
        landing = None
        try:
            if take is not None:
                self._learn(recording.canonical, take)
                landing = self._store(recording, take)
        finally:
            self._checked(checking)
            if lease is not None:
                session.keeper.drop(lease)
                if landing is None or landing.kept:
                    session.keeper.release(self.store, lease)
            landed_at = session.arrive()
            with session.lock:
                session.flights.end(recording.key, flight, landed_at)
                if landing is None:
                    session.stats.passthrough += not recording.storable
                    if self.count_repeats:
                        session.occurrences.give_back(recording.key, recording.decision.occurrence)
                elif landing.kept:
                    session.stats.confirmed += 1
                elif recording.decision.slot is Slot.REPLACE:
                    session.stats.refreshed += 1
                else:
                    session.stats.recorded += 1
            if landing is None:
                flight.land(None, None)
            else:
                flight.land(landing.take, landing.index)
                recording.served = Replayed(
                    landing.take, Outcome(landing.action, recording.key, landing.index)
                )
        if take is None or landing is None:
            return
        if landing.kept:
            # Kept as served beside the live one: current for the rest of the run too.
            self._learn(recording.canonical, landing.take)
            self._warn_unserved_pins(take)
            return
        self._note_live(take)
        self._note_refresh(recording.canonical, landing.replaced, take)

    def _samples(self, canonical: Canonical, take: Take) -> int:
        """Live answers a check of ``take`` asks for: a few before a backend is called gone
        (it may be served beside another), one once this run found it gone."""
        identity = identity_of(take)
        if self._rules is None or identity is None or self._rules.pins:
            return 1  # with pins, one answer says whether the pin is served
        scope = scope_of(canonical.model, canonical.endpoint, take)
        gone = self._rules.backends.is_gone(scope, identity, now=self.clock())
        return 1 if gone else CHECK_SAMPLES

    def _served_beside(self, recorded: Identity | None, live: Identity | None) -> bool:
        """Whether the store saw ``recorded`` and ``live`` served side by side: the same
        dated model, two fingerprints sighted live at overlapping times. Then a live
        answer from one does not make takes of the other stale."""
        if self._rules is None or recorded is None or live is None or recorded == live:
            return False  # the same backend needs no sibling (nor a registry read)
        if recorded.model != live.model or recorded.model is None:
            return False
        if recorded.fingerprint is None or live.fingerprint is None:
            return False
        try:
            return self._rules.registry.served_together(
                recorded.model,
                recorded.fingerprint,
                live.fingerprint,
                before_ms=self._rules.backends.started_ms,
            )
        except StoreError:
            return False

    def _warn_unserved_pins(self, live: Take) -> None:
        """Pins that the model does not serve re-fetch its takes every run: say so, once."""
        rules = self._rules
        if rules is None or not rules.pins or live.fingerprint in rules.pins:
            return
        model = live.model or "?"
        with self._session.lock:
            if model in self._session.pin_warnings:
                return
            self._session.pin_warnings.add(model)
        _log.warning(
            "%s answers with %s, not a pinned fingerprint (%s): its takes are fetched again "
            "every run; pin %s, or drop the pins",
            model,
            live.fingerprint or "no fingerprint",
            ", ".join(sorted(rules.pins)),
            live.fingerprint or "nothing",
        )

    def _lost(self, canonical: Canonical, take: Take) -> None:
        """A check's answers did not show ``take``'s backend: gone for the rest of the run."""
        identity = identity_of(take)
        if self._rules is not None and identity is not None:
            scope = scope_of(canonical.model, canonical.endpoint, take)
            self._rules.backends.lost(scope, identity, now=self.clock())

    def _learn(self, canonical: Canonical, take: Take) -> None:
        """Every live answer teaches the run what its model serves now."""
        identity = identity_of(take)
        if self._rules is not None and identity is not None:
            scope = scope_of(canonical.model, canonical.endpoint, take)
            self._rules.backends.learn(scope, identity, now=self.clock())

    def _store(self, recording: Recording, take: Take) -> Landing | None:
        """Store ``take``; where it landed, or None if it was not stored.

        None when ``take`` is an error and the take it would replace is a success (the
        caller gets the error, the recording keeps the answer that worked), or when the
        store failed. A check whose answer shows the recorded take's backend keeps that
        take, unwritten: the landing is the recorded take.
        """
        canonical, decision = recording.canonical, recording.decision
        landed: list[Landing | None] = []
        # Read before the store's write lock: the registry lives in the same store.
        sibling = self._served_beside(recording.expected, identity_of(take))

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
                self._lost(canonical, current)
            changed, index = place(entry, take, decision, history_limit=self.history_limit)
            replaced = current if decision.slot is Slot.REPLACE else None
            landed.append(Landing(index, take, replaced=replaced))
            return changed

        try:
            try:
                self.store.update(canonical.key, change)
            except (CorruptEntryError, UnsafeDataError):
                # The damaged entry was already reported when the request was decided;
                # the fresh take replaces it rather than failing the caller's response.
                self.store.delete(canonical.key)
                self.store.update(canonical.key, change)
        except StoreError as exc:
            what = (
                f"the response to {canonical.endpoint} (key {canonical.key}) was returned but "
                f"could not be recorded in {self.store.location}"
            )
            self._write_failed(what, exc)
            return None
        if landed[-1] is None:
            _log.warning(
                "%s answered %s to %s (key %s); kept the recorded take that succeeded",
                canonical.endpoint,
                take.status,
                self.mode.value,
                canonical.key,
            )
        return landed[-1]

    def _note_live(self, take: Take) -> None:
        """Tell the fingerprint registry what a live response showed."""
        if self._rules is None:
            return
        try:
            self._rules.observe(take)
        except StoreError as exc:
            # The take is stored; a registry that missed one sighting only costs a
            # re-fetch later. The caller's response must not fail for it.
            _log.warning("could not update the fingerprint registry: %s", exc)

    def _note_refresh(self, canonical: Canonical, old: Take | None, new: Take) -> None:
        """Count and log what a re-fetch found: drift is the point of ``refresh``."""
        if old is None:
            return
        key = canonical.key
        changed = content_of(old).text != content_of(new).text
        drifted = old.fingerprint != new.fingerprint
        before, after = identity_of(old), identity_of(new)
        moved = None
        if before is not None and after is not None and before != after:
            moved = BackendChange.between(model_of(canonical.model, new), before, after)
        with self._session.lock:
            self._session.stats.fingerprint_changes += drifted
            self._session.stats.output_changes += changed
            if moved is not None:
                self._session.changes[moved] += 1
        # A changed output is what users of refresh watch for: loud enough to show up
        # in pytest's report and default logging; a same-output re-fetch is routine.
        level = logging.WARNING if changed else logging.INFO if moved else logging.DEBUG
        _log.log(
            level,
            "refreshed %s: %s, output %s (key %s)",
            model_of(canonical.model, new),
            f"{moved.before} -> {moved.after}" if moved else "same backend",
            "changed" if changed else "unchanged",
            key,
        )


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


def _confirms(decision: Fetch, recorded: Take | None, live: Take, *, sibling: bool) -> bool:
    """Whether a check's live answer shows the backend ``recorded`` was recorded under, or
    a ``sibling`` the store saw serving beside it (a model rotating two fingerprints)."""
    if not decision.check or recorded is None:
        return False
    identity = identity_of(recorded)
    return identity is not None and (identity == identity_of(live) or sibling)


def _judge(rules: RefreshRules, canonical: Canonical, take: Take) -> Freshness:
    return rules.freshness(take, scope_of(canonical.model, canonical.endpoint, take))


Checking = tuple[str, Identity]
"""A check this request makes: the scope and the backend identity it checks."""

# A claim the store could not write: go live without a lease.
_UNLEASED = Lease("", "")


# How often one request waits for another's check before it checks for itself.
_HOLDS = 8


def resolve_sync(core: Core, request: CapturedRequest) -> Replayed | Live:
    """:meth:`Core.begin`, waiting in this thread for an identical request in the air."""
    arrived = core.arrive()
    may_join = may_lease = may_hold = True
    holds = 0
    awaiting_until: float | None = None
    while True:
        step = core.begin(
            request, arrived=arrived, may_join=may_join, may_lease=may_lease, may_hold=may_hold
        )
        if isinstance(step, Replayed | Live):
            return step
        if isinstance(step, Hold):
            holds += 1
            # A bound on deciding again: past it, go live rather than wait once more.
            may_hold = step.check.wait(FLIGHT_WAIT_SECONDS) and holds < _HOLDS
        elif isinstance(step, Await):
            awaiting_until = awaiting_until or time.monotonic() + FLIGHT_WAIT_SECONDS
            left = awaiting_until - time.monotonic()
            core.store.wait(step.key, step.revision, left)
            may_lease = time.monotonic() < awaiting_until
        elif not step.flight.wait(FLIGHT_WAIT_SECONDS):
            may_join = False
        elif (joined := core.joined(step)) is not None:
            return joined


# An async request waiting for another process checks in this often, so that a worker
# thread is never held for long by one waiter.
_AWAIT_SLICE_SECONDS = 0.25


async def _begin_in_thread(begin: Callable[[], Step]) -> Step:
    """``begin()`` in a worker thread. A caller cancelled meanwhile never gets the step, so
    a live one is abandoned: its flight, lease and check must not stay claimed (identical
    requests, and every request for its model, would wait on them). The thread may still
    be running when the cancellation arrives; then it abandons the step itself."""
    lock = threading.Lock()
    made: list[Step] = []
    cancelled = False

    def run() -> Step:
        step = begin()
        with lock:
            made.append(step)
            orphaned = cancelled
        if orphaned and isinstance(step, Live):
            step.recording.abandon()
        return step

    try:
        return await anyio.to_thread.run_sync(run)
    except BaseException:
        with lock:
            cancelled = True
            step = made[-1] if made else None
        if isinstance(step, Live):
            step.recording.abandon()
        raise


async def resolve_async(core: Core, request: CapturedRequest) -> Replayed | Live:
    """:meth:`Core.begin` in a worker thread; waiting is awaited, never blocking the loop."""
    arrived = core.arrive()
    may_join = may_lease = may_hold = True
    holds = 0
    awaiting_until: float | None = None
    while True:
        begin = functools.partial(
            core.begin,
            request,
            arrived=arrived,
            may_join=may_join,
            may_lease=may_lease,
            may_hold=may_hold,
        )
        step = await _begin_in_thread(begin)
        if isinstance(step, Replayed | Live):
            return step
        if isinstance(step, Hold):
            holds += 1
            may_hold = await step.check.wait_async(FLIGHT_WAIT_SECONDS) and holds < _HOLDS
        elif isinstance(step, Await):
            awaiting_until = awaiting_until or time.monotonic() + FLIGHT_WAIT_SECONDS
            left = min(_AWAIT_SLICE_SECONDS, awaiting_until - time.monotonic())
            wait = functools.partial(core.store.wait, step.key, step.revision, left)
            await anyio.to_thread.run_sync(wait)
            may_lease = time.monotonic() < awaiting_until
        elif not await step.flight.wait_async(FLIGHT_WAIT_SECONDS):
            may_join = False
        elif (joined := core.joined(step)) is not None:
            return joined
