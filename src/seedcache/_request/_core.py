"""The orchestrator: one request in, a step out (see :mod:`._steps`).

:meth:`Core.begin` reads forward: key the request, read its entry, decide
(:func:`~._policy.decide`, pure), reserve the occurrence in the session, then carry the
decision out — serve a take, join a flight, or claim what going live needs (a check of
the backend, the store's lease) and hand back a :class:`~._recording.Recording` whose
end :class:`~._landing.Lander` settles. Knows no HTTP library; counts nothing itself.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

from .._errors import CacheMiss, CorruptEntryError, StoreError, UnsafeDataError
from .._stores import Lease
from .._stores._base import NOT_IN_MEMORY
from .._takes._take import Entry, identity_of
from ._config import CoreConfig
from ._explain import explain_miss
from ._flights import Flight
from ._freshness import Checking
from ._keys import Canonical, canonicalize
from ._landing import Lander
from ._modes import Mode
from ._outcome import Action, Outcome
from ._policy import Fetch, Miss, Replay, decide
from ._recording import Recording
from ._session import Session
from ._steps import AwaitCheck, AwaitLease, GoLive, Join, Serve, Step
from ._wire import CapturedRequest

__all__ = ["LEASE_SECONDS", "Core"]

# How long a lease lasts unless renewed: a crashed holder never releases it.
LEASE_SECONDS = 120.0

_log = logging.getLogger("seedcache")

# The largest request body keyed on an event loop: a bigger one (an upload) is keyed in a
# worker thread, where hashing it cannot hold up the loop's other connections.
_AT_ONCE_BODY_BYTES = 64 * 1024

# A claim the store could not write: go live without a lease.
_UNLEASED = Lease("", "")


class Core:
    """Keys, decides, replays and records, over one store, for one session."""

    def __init__(self, config: CoreConfig, session: Session | None = None) -> None:
        self.config = config
        self.session = session or Session(lease_seconds=LEASE_SECONDS)
        self._lander = Lander(config, self.session)
        # Stores that can answer some reads without waiting say so with this method.
        self._read_in_memory = getattr(config.store, "get_in_memory", None)

    @property
    def mode(self) -> Mode:
        """The mode every request of this core is handled in."""
        return self.config.mode

    def sibling(self, *, count_repeats: bool) -> Core:
        """A core over the same store and session, counting repeats or not.

        A long-running proxy serves many independent clients: for it, a repeat is another
        client asking the same thing, and should replay the first take rather than become
        a new take.
        """
        return Core(dataclasses.replace(self.config, count_repeats=count_repeats), self.session)

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

        ``arrived`` (from :meth:`Session.arrive`) makes a request that arrived while an
        identical one was in the air share its take, however late this call comes.
        ``may_join=False``, ``may_lease=False`` and ``may_hold=False`` go live rather than
        wait again, after a wait timed out.
        """
        canonical = canonicalize(request, self.config.key_config)
        while True:  # again only when another thread took the occurrence meanwhile
            step = self._attempt(canonical, arrived, may_join, may_lease, may_hold)
            if step is not None:
                return step

    def replay_at_once(self, request: CapturedRequest) -> Serve | None:
        """The take :meth:`begin` would replay for ``request``, when finding it needs no
        waiting: the store answers from memory and the decision is a replay. None for
        anything else (a miss, going live, ``refresh``, a store that would read a disk
        or a network, a large body), which :meth:`begin` then handles in a thread.

        An async client calls this on its event loop first: a worker thread's round trip
        costs more than the whole of a replay from a cassette. Nothing is reserved or
        counted unless the take is served.
        """
        read = self._read_in_memory
        config = self.config
        if read is None or config.mode is Mode.REFRESH or len(request.body) > _AT_ONCE_BODY_BYTES:
            return None
        canonical = canonicalize(request, config.key_config)
        key, counting = canonical.key, config.count_repeats
        occurrence = self.session.next_occurrence(key, counting=counting)
        try:
            entry = read(key)
        except (CorruptEntryError, UnsafeDataError, StoreError):
            return None  # begin() reads it again, and reports it as it always does
        if entry is NOT_IN_MEMORY:
            return None
        takes = entry.takes if entry is not None else ()
        decision = decide(config.mode, takes, occurrence, strict=config.strict, freshness=None)
        if not isinstance(decision, Replay) or entry is None:
            return None
        return self._replay(canonical, entry, occurrence, decision.index)

    def joined(self, step: Join) -> Serve | None:
        """The take for a request that waited on ``step``; None if it must start over."""
        flight = step.flight
        if flight.take is None or flight.index is None:
            return None
        self.session.count_joined()
        self.session.count_replay(step.key, flight.index, flight.take)
        return Serve(flight.take, Outcome(Action.JOINED, step.key, flight.index))

    def _attempt(
        self,
        canonical: Canonical,
        arrived: int | None,
        may_join: bool,
        may_lease: bool,
        may_hold: bool,
    ) -> Step | None:
        """One pass of :meth:`begin`: None when the occurrence went to another thread."""
        config, session, key = self.config, self.session, canonical.key
        counting = config.count_repeats
        occurrence = session.next_occurrence(key, counting=counting)
        entry = self._read_entry(key)
        decision = decide(
            config.mode,
            entry.takes if entry is not None else (),
            occurrence,
            strict=config.strict,
            freshness=config.rules.judge(canonical) if config.mode is Mode.REFRESH else None,
        )
        if isinstance(decision, Miss):
            if not session.reserve_miss(key, occurrence, counting=counting):
                return None
            raise self._miss(canonical, decision)
        if isinstance(decision, Replay):
            assert entry is not None  # a replay needs a take
            return self._replay(canonical, entry, occurrence, decision.index)
        joins = may_join and config.mode is not Mode.RECORD
        reserved = session.reserve_fetch(
            key, occurrence, counting=counting, join=joins, arrived=arrived
        )
        if reserved is None:
            return None
        if not reserved.mine:
            return Join(reserved.flight, key)
        return self._go_live(canonical, entry, decision, reserved.flight, may_lease, may_hold)

    def _replay(
        self, canonical: Canonical, entry: Entry, occurrence: int, index: int
    ) -> Serve | None:
        """Serve take ``index`` for ``occurrence``; None when another thread took it first."""
        if not self.session.reserve_replay(
            canonical.key, occurrence, counting=self.config.count_repeats
        ):
            return None
        take = entry.takes[index]
        self.session.count_replay(canonical.key, index, take)
        if _log.isEnabledFor(logging.DEBUG):  # naming the endpoint reads the summary
            # The HTTP library logs its own line for a replay too; this one says what it was.
            _log.debug(
                "replayed %s take %d (key %s), no network", canonical.endpoint, index, canonical.key
            )
        return Serve(take, Outcome(Action.HIT, canonical.key, index))

    def _go_live(
        self,
        canonical: Canonical,
        entry: Entry | None,
        decision: Fetch,
        flight: Flight,
        may_lease: bool,
        may_hold: bool,
    ) -> Step:
        """Claim what going live needs, or wait for whoever holds it: first the check of
        the recorded backend (``refresh``), then the store's lease on the key."""
        config = self.config
        recorded = entry.takes[decision.occurrence] if decision.check and entry else None
        checking: Checking | None = None
        if recorded is not None and may_hold:
            claimed = config.rules.claim_check(canonical, recorded)
            if isinstance(claimed, Flight):
                self._ground(canonical.key, flight, decision)
                return AwaitCheck(claimed)
            checking = claimed
        lease = None
        if may_lease and config.mode is not Mode.RECORD:
            revision = entry.revision if entry is not None else 0
            try:
                lease = self._claim(canonical.key, revision)
            except BaseException:
                self._ground(canonical.key, flight, decision, checking)
                raise
            if lease is None:
                self._ground(canonical.key, flight, decision, checking)
                return AwaitLease(canonical.key, revision)
            if lease is _UNLEASED:
                lease = None
            else:
                self.session.keeper.hold(config.store, lease)
        return GoLive(
            Recording(
                canonical,
                decision,
                started=config.clock(),
                clock=config.clock,
                settle=functools.partial(self._lander.settle, flight, lease, checking),
                expected=identity_of(recorded) if recorded is not None else None,
                samples=1 if recorded is None else config.rules.samples(canonical, recorded),
            )
        )

    def _ground(
        self, key: str, flight: Flight, decision: Fetch, checking: Checking | None = None
    ) -> None:
        """Call off a request that will not go live now: its flight, occurrence and check."""
        self.session.ground(key, flight, decision.occurrence, counting=self.config.count_repeats)
        self.config.rules.checked(checking)

    def _claim(self, key: str, revision: int) -> Lease | None:
        """The store's lease on ``key``; :data:`_UNLEASED` when the store cannot take writes.

        A full disk or a Redis at ``maxmemory`` refuses the claim, which is a write: the
        request then goes live without one (the caller still gets its answer), rather
        than every new request failing.
        """
        store = self.config.store
        try:
            return store.claim(key, revision, self.session.lease_seconds)
        except StoreError as exc:
            self._lander.write_failed(f"could not lease {key} in {store.location}", exc)
            return _UNLEASED

    def _read_entry(self, key: str) -> Entry | None:
        """The stored entry; a corrupt one is an error in ``replay``, else a warned miss."""
        try:
            return self.config.store.get(key)
        except (CorruptEntryError, UnsafeDataError) as exc:
            if self.config.mode is Mode.REPLAY:
                raise
            _log.warning("%s; treating it as not recorded, it will be recorded again", exc)
            return None

    def _miss(self, canonical: Canonical, decision: Miss) -> CacheMiss:
        config = self.config
        miss = explain_miss(
            canonical,
            decision,
            store=config.store,
            mode=config.mode,
            key_config=config.key_config,
            advice=config.miss_advice,
        )
        self.session.keep_miss(miss)
        return miss
