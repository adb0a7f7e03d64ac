"""The orchestrator: one request in, a replayed take or a live recording out.

Knows no HTTP library. An adapter hands it a :class:`CapturedRequest` and gets a
:class:`Step`: replay this take, or go live and feed the response through a
:class:`Recording`. Sync and async adapters share everything here; they differ only in
how they wait for an identical request already in flight (:func:`resolve_sync`,
:func:`resolve_async`).
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import anyio

from ._content import content_of
from ._errors import CacheMiss, CorruptEntryError, StoreError
from ._keys import Canonical, KeyConfig, canonicalize
from ._modes import Mode
from ._nearest import host_only, nearest
from ._outcome import OUTCOME_HEADER, Action, Outcome
from ._policy import Fetch, Miss, Replay, Slot, decide, place
from ._stores import Store
from ._takes import Entry, Take, media_type, response_identity
from ._wire import CapturedRequest, keep_response_headers

__all__ = ["Core", "Live", "Recording", "Replayed", "Stats", "resolve_async", "resolve_sync"]

# Statuses never stored (nor any 5xx). The SDK retries 408, 409 and 429: storing them
# would replay a transient failure forever. 401, 403 and 407 depend on the credentials,
# not on the request: replaying one after the key is fixed would be a wrong answer.
_UNSTORED_STATUSES = frozenset({401, 403, 407, 408, 409, 429})
# What a miss suggests, unless the owner of the core knows better (the pytest plugin).
DEFAULT_MISS_ADVICE = (
    "to record it, run once with mode 'auto' (or SEEDCACHE_MODE=auto) and an API key."
)
# Headers that describe the encoded transfer; takes hold decoded bodies.
_TRANSFER_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
# How long a request waits for an identical one in flight before going live itself.
FLIGHT_WAIT_SECONDS = 600.0
# How long another process's claim on a key holds before it counts as abandoned (a
# crashed process never releases it).
LEASE_SECONDS = 120.0
# How often a request polls for a take another process is fetching.
POLL_SECONDS = 0.005
_MISSES_KEPT = 100

Clock = Callable[[], float]

_log = logging.getLogger("seedcache")


@dataclass(slots=True)
class Stats:
    """Counters of what the cache did since it was opened."""

    hits: int = 0
    joined: int = 0
    recorded: int = 0
    refreshed: int = 0
    """Takes re-fetched in ``refresh`` mode because they were no longer current."""
    fingerprint_changes: int = 0
    """Re-fetches that came back with a different fingerprint than the take they replaced."""
    output_changes: int = 0
    """Re-fetches whose content (text, tool calls) differs from the take they replaced."""
    passthrough: int = 0
    misses: int = 0
    write_errors: int = 0
    """Live responses returned to the caller that the store failed to record (disk full)."""

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        # Not dataclasses.asdict: it deep-copies, and the pytest plugin asks once per test.
        return {name: getattr(self, name) for name in _STATS_FIELDS}


_STATS_FIELDS = tuple(f.name for f in dataclasses.fields(Stats))


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
class _Wait:
    flight: _Flight
    key: str


@dataclass(frozen=True, slots=True)
class _Poll:
    """Another process is fetching this key: look again shortly."""

    key: str


Step = Replayed | Live


@dataclass(slots=True)
class _Flight:
    """An identical request being fetched; others wait for its take instead of fetching."""

    done: threading.Event = field(default_factory=threading.Event)
    take: Take | None = None
    index: int | None = None


class _Occurrences:
    """Which occurrence of each identical request comes next.

    An occurrence is used up only by a take that was replayed or stored. One whose live
    response was not stored (a 500 the SDK retries, a dropped connection) is given back
    and handed out again first, so a retry lands where the failed attempt would have.
    The core's lock guards every call.
    """

    def __init__(self) -> None:
        self._next: Counter[str] = Counter()
        self._returned: dict[str, list[int]] = {}

    def peek(self, key: str) -> int:
        """The occurrence the next request for ``key`` gets."""
        returned = self._returned.get(key)
        return returned[0] if returned else self._next[key]

    def take(self, key: str) -> None:
        """Use up the occurrence :meth:`peek` gave."""
        returned = self._returned.get(key)
        if returned:
            heapq.heappop(returned)
            if not returned:
                del self._returned[key]
        else:
            self._next[key] += 1

    def give_back(self, key: str, occurrence: int) -> None:
        """``occurrence`` produced nothing: hand it out again."""
        heapq.heappush(self._returned.setdefault(key, []), occurrence)

    def used(self) -> dict[str, int]:
        """How many occurrences of each key were used up."""
        return {
            key: count - len(self._returned.get(key, ()))
            for key, count in self._next.items()
            if count - len(self._returned.get(key, ()))
        }


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
        is_current: Callable[[Take], bool] | None = None,
        observe: Callable[[Take], None] | None = None,
    ) -> None:
        self.store = store
        self.mode = mode
        self.key_config = key_config
        self.strict = strict
        self.history_limit = history_limit
        self.clock = clock
        self.stats = Stats()
        self._is_current = is_current
        self._observe = observe
        self.count_repeats = True
        """Whether the n-th identical request maps to take n (else always to take 0)."""
        self.miss_advice: Callable[[], str] = lambda: DEFAULT_MISS_ADVICE
        """Gives the last line of every miss: how to record what was missing (asked only
        when a miss happens; the pytest plugin's checks the file system)."""
        self.missed: list[CacheMiss] = []
        """The misses raised, oldest first (the first hundred): code under test may swallow
        the exception, and the test must still learn of it."""
        self._lock = threading.Lock()
        self._occurrences = _Occurrences()
        self._flights: dict[str, _Flight] = {}

    def sibling(self, *, count_repeats: bool) -> Core:
        """A core over the same store, counters and in-flight requests, counting repeats or not.

        A long-running proxy serves many independent clients: for it, a repeat is another
        client asking the same thing, and should replay the first take rather than become
        a new take.
        """
        twin = copy.copy(self)
        twin.count_repeats = count_repeats
        return twin

    def begin(
        self, request: CapturedRequest, *, may_join: bool = True, may_claim: bool = True
    ) -> Step | _Wait | _Poll:
        """Decide what to do with ``request``.

        Raises :class:`CacheMiss` when it can be neither replayed nor fetched.
        """
        canonical = canonicalize(request, self.key_config)
        key = canonical.key
        while True:
            with self._lock:
                occurrence = self._occurrences.peek(key) if self.count_repeats else 0
            entry = self._read_entry(key)
            takes = entry.takes if entry is not None else []
            decision = decide(
                self.mode, takes, occurrence, strict=self.strict, is_current=self._is_current
            )
            with self._lock:
                if self.count_repeats and self._occurrences.peek(key) != occurrence:
                    continue  # another thread took this occurrence meanwhile; decide again
                if isinstance(decision, Miss):
                    self.stats.misses += 1
                    miss = self._miss(canonical, decision)
                    if len(self.missed) < _MISSES_KEPT:
                        self.missed.append(miss)
                    raise miss
                if isinstance(decision, Replay):
                    if self.count_repeats:
                        self._occurrences.take(key)
                    self.stats.hits += 1
                    outcome = Outcome(Action.HIT, key, decision.index)
                    return Replayed(takes[decision.index], outcome)
                flight = self._flights.get(key)
                if flight is not None and may_join and self.mode is not Mode.RECORD:
                    # Concurrent duplicates share the take being fetched and do not
                    # count as a repeat of their own.
                    return _Wait(flight, key)
            # Other processes on the same store: one fetches, the others poll for its take.
            claimed = self._claim(key, takes) if may_claim else None
            if claimed is False:
                return _Poll(key)
            with self._lock:
                raced = self.count_repeats and self._occurrences.peek(key) != occurrence
                if raced or (key in self._flights and may_join and self.mode is not Mode.RECORD):
                    if claimed:
                        self._release(key)
                    continue  # a thread of this process got there first; decide again
                if self.count_repeats:
                    self._occurrences.take(key)
                flight = _Flight()
                self._flights.setdefault(key, flight)
            return Live(Recording(self, canonical, decision, flight, leased=bool(claimed)))

    def _read_entry(self, key: str) -> Entry | None:
        """The stored entry; a corrupt one is an error in ``replay``, else a warned miss."""
        try:
            return self.store.get(key)
        except CorruptEntryError as exc:
            if self.mode is Mode.REPLAY:
                raise
            _log.warning("%s; treating it as not recorded, it will be recorded again", exc)
            return None

    def consumed(self) -> dict[str, int]:
        """How many takes of each key this session asked for (repeats counted)."""
        with self._lock:
            return self._occurrences.used()

    def joined(self, flight: _Flight, key: str) -> Step | None:
        """The step for a request that waited on ``flight``; None if it must start over."""
        if flight.take is None or flight.index is None:
            return None
        with self._lock:
            self.stats.joined += 1
        return Replayed(flight.take, Outcome(Action.JOINED, key, flight.index))

    def _claim(self, key: str, takes: list[Take]) -> bool | None:
        """Claim the fetch of ``key`` across processes; None where the store cannot."""
        claim = getattr(self.store, "claim", None)
        if claim is None or self.mode is Mode.RECORD:
            return None
        state = [take.recorded_at_ms for take in takes]
        return bool(claim(key, state, LEASE_SECONDS))

    def _release(self, key: str) -> None:
        release = getattr(self.store, "release", None)
        if release is not None:
            release(key)

    def _land(self, recording: Recording, take: Take | None) -> None:
        """Close ``recording``'s flight; waiters replay ``take`` or start over if None."""
        if recording.leased:
            self._release(recording.canonical.key)
        flight = recording.flight
        with self._lock:
            if self._flights.get(recording.canonical.key) is flight:
                del self._flights[recording.canonical.key]
            if take is None and self.count_repeats:
                self._occurrences.give_back(recording.key, recording.decision.occurrence)
        flight.take = take
        flight.done.set()

    def _store(self, recording: Recording, take: Take) -> tuple[int, Take | None] | None:
        """Store ``take``; return where it landed and the take it replaced, if any.

        None when ``take`` is an error and the take it would replace is a success: the
        caller gets the error, the recording keeps the answer that worked.
        """
        canonical, decision = recording.canonical, recording.decision
        landed: list[tuple[int, Take | None] | None] = []

        def change(entry: Entry | None) -> Entry:
            entry = entry or Entry(key=canonical.key, request=canonical.summary)
            current = None
            if decision.slot is not Slot.APPEND and decision.occurrence < len(entry.takes):
                current = entry.takes[decision.occurrence]
            if take.status >= 400 and current is not None and current.status < 400:
                landed.append(None)
                return entry
            replaced = current if decision.slot is Slot.REPLACE else None
            index = place(entry, take, decision, history_limit=self.history_limit)
            landed.append((index, replaced))
            return entry

        try:
            self.store.update(canonical.key, change)
        except CorruptEntryError:
            # The damaged entry was already reported when the request was decided; the
            # fresh take replaces it rather than failing the caller's response.
            self.store.delete(canonical.key)
            self.store.update(canonical.key, change)
        return landed[-1]

    def _note_live(self, take: Take) -> None:
        """Tell the fingerprint registry what a live response showed."""
        if self._observe is None:
            return
        try:
            self._observe(take)
        except StoreError as exc:
            # The take is stored; a registry that missed one sighting only costs a
            # re-fetch later. The caller's response must not fail for it.
            _log.warning("could not update the fingerprint registry: %s", exc)

    def _note_refresh(self, key: str, old: Take | None, new: Take) -> None:
        """Count and log what a re-fetch found: drift is the point of ``refresh``."""
        if old is None:
            return
        changed = content_of(old).text != content_of(new).text
        drifted = old.fingerprint != new.fingerprint
        with self._lock:
            self.stats.fingerprint_changes += drifted
            self.stats.output_changes += changed
        # A changed output is what users of refresh watch for: loud enough to show up
        # in pytest's report and default logging; a same-output re-fetch is routine.
        level = logging.WARNING if changed else logging.INFO if drifted else logging.DEBUG
        _log.log(
            level,
            "refreshed %s: fingerprint %s -> %s, output %s (key %s)",
            new.model or old.model or "?",
            old.fingerprint or "none",
            new.fingerprint or "none",
            "changed" if changed else "unchanged",
            key,
        )

    def _miss(self, canonical: Canonical, decision: Miss) -> CacheMiss:
        location = self.store.location
        model = canonical.model
        lines = [
            f"no recorded response for {canonical.endpoint}"
            + (f" (model {model!r})" if model else "")
            + f" in {location}; mode is {self.mode.value!r}, so the network is not used.",
            f"key: {canonical.key}",
        ]
        if decision.recorded:
            lines.append(
                f"the key has {decision.recorded} take(s) and this is repeat "
                f"#{decision.occurrence + 1}; strict replay forbids reusing the last take"
            )
        found = nearest(canonical, self._summaries(), ignore=self.key_config.ignore)
        differences: tuple[str, ...] = ()
        if found is None:
            lines.append("nothing is recorded there yet.")
        elif not decision.recorded and not found.differences:
            lines.append(
                f"recorded request {found.key} is the same as sent, but was keyed under other "
                "matching rules (host matching, ignore, match_headers or namespace), which "
                "change keys: record it again with the rules in use."
            )
        elif not decision.recorded:
            differences = tuple(found.differences)
            lines.append(f"nearest recorded request: {found.key}, which differs in:")
            lines.extend(f"  {d}" for d in differences[:12])
            if len(differences) > 12:
                lines.append(f"  … and {len(differences) - 12} more")
            origins = host_only(found.summary, canonical.summary)
            if origins is not None and len(differences) == 1:
                where = f"recorded at {origins[0]}, asked at {origins[1]}"
                if self.key_config.match_host:
                    lines.append(
                        f"it differs only in its host: {where}. To replay across hosts, turn "
                        "host matching off (pytest ini: seedcache_match_host = false; "
                        "SeedCache(match_host=False); seedcache serve --no-match-host)."
                    )
                else:
                    lines.append(
                        f"it differs only in its host ({where}), but it was recorded with host "
                        "matching on, so its key holds the host: record it again with host "
                        "matching off."
                    )
        lines.append(self.miss_advice())
        return CacheMiss(
            "\n".join(lines),
            key=canonical.key,
            endpoint=canonical.endpoint,
            model=model,
            location=location,
            differences=differences,
        )

    def _summaries(self) -> Iterable[tuple[str, dict[str, object]]]:
        for entry in self.store.entries():
            yield entry.key, entry.request


class Recording:
    """A live response on its way to the caller, stored as a take if it completes.

    Adapters call :meth:`accept` with the status and headers, :meth:`feed` with every
    decoded chunk they pass on, then :meth:`finish` (body read to the end, or the caller
    closed early) or :meth:`abandon` (an error). Only a complete response is stored: the
    whole body, or for a stream that ends with ``data: [DONE]``, that event.
    """

    def __init__(
        self,
        core: Core,
        canonical: Canonical,
        decision: Fetch,
        flight: _Flight,
        *,
        leased: bool = False,
    ) -> None:
        self.core = core
        self.leased = leased
        """True when this process holds the store's claim on the key until it lands."""
        self.canonical = canonical
        self.decision = decision
        self.flight = flight
        self._started = core.clock()
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._chunks: list[bytes] = []
        self._storable = False
        self._closed = False
        self.outcome = Outcome(Action.PASSTHROUGH, canonical.key, None)
        """What the cache is doing with this response; set by :meth:`accept`."""

    @property
    def key(self) -> str:
        """The request's key."""
        return self.canonical.key

    def accept(self, status: int, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Note the response head; return the headers to give the caller."""
        headers = list(headers)
        self._status = status
        self._headers = keep_response_headers(headers)
        self._storable = status not in _UNSTORED_STATUSES and status < 500
        if not self._storable:
            self._close(None)
            with self.core._lock:
                self.core.stats.passthrough += 1
        action = Action.PASSTHROUGH
        if self._storable:
            action = Action.REFRESHED if self.decision.slot is Slot.REPLACE else Action.RECORDED
        self.outcome = Outcome(action, self.key, None)
        kept = [(k, v) for k, v in headers if k.lower() not in _TRANSFER_HEADERS]
        return [*kept, (OUTCOME_HEADER, self.outcome.header_value())]

    def feed(self, chunk: bytes) -> None:
        """Keep a decoded chunk that was passed on to the caller."""
        if self._storable and not self._closed:
            self._chunks.append(chunk)

    def finish(self, *, exhausted: bool) -> None:
        """The caller is done: store the take if the response is complete. Idempotent.

        The caller already has the response (and paid for it): a store that cannot write
        is logged and counted, never raised into the caller's hands.
        """
        if self._closed:
            return
        body = b"".join(self._chunks)
        if not self._complete(body, exhausted=exhausted):
            self._close(None)
            return
        take = self._take(body)
        core = self.core
        try:
            landing = core._store(self, take)
        except StoreError as exc:
            self._close(None)
            with core._lock:
                core.stats.write_errors += 1
            _log.error(
                "the response to %s (key %s) was returned but could not be recorded in %s: %s",
                self.canonical.endpoint,
                self.key,
                core.store.location,
                exc,
            )
            return
        except BaseException:
            self._close(None)
            raise
        if landing is None:
            self._close(None)
            _log.warning(
                "%s answered %s to %s (key %s); kept the recorded take that succeeded",
                self.canonical.endpoint,
                take.status,
                core.mode.value,
                self.key,
            )
            return
        index, replaced = landing
        self.flight.index = index
        with core._lock:
            if self.decision.slot is Slot.REPLACE:
                core.stats.refreshed += 1
            else:
                core.stats.recorded += 1
        self._close(take)
        core._note_live(take)
        core._note_refresh(self.key, replaced, take)

    def abandon(self) -> None:
        """The upstream failed or the caller went away: store nothing."""
        if not self._closed:
            self._close(None)

    def _close(self, take: Take | None) -> None:
        self._closed = True
        self._chunks = []
        self.core._land(self, take)

    def _take(self, body: bytes) -> Take:
        now = self.core.clock()
        is_stream = media_type(self._headers) == "text/event-stream"
        fingerprint, model = response_identity(body, is_stream=is_stream)
        return Take(
            status=self._status,
            headers=self._headers,
            body=body,
            fingerprint=fingerprint,
            model=model or self.canonical.model,
            recorded_at_ms=round(now * 1000),
            latency_ms=max(0, round((now - self._started) * 1000)),
        )

    def _complete(self, body: bytes, *, exhausted: bool) -> bool:
        """Whether ``body`` is a whole answer that replays as it was received.

        A stream is whole at its ``data: [DONE]`` event (the sync SDK stops reading right
        there) or, for streams that have none (the Responses API), at the end of the
        body; never with an ``event: error``. Any other body is whole when it was read to
        the end and parses as its media type: a truncated gzip body or a connection cut
        short decodes to broken JSON, which the caller could not use either. An HTML page
        is never an API answer (a gateway's login or error page).
        """
        if not self._storable:
            return False
        media = media_type(self._headers)
        if media == "text/event-stream":
            if b"\nevent: error" in b"\n" + body:
                return False
            if _DONE_EVENT.search(body):
                return True
            return exhausted and not _expects_done(self.canonical)
        if not exhausted or media == "text/html":
            return False
        if media == "application/json" or media.endswith("+json"):
            try:
                json.loads(body)
            except (ValueError, RecursionError):
                return False
        return True


# The end of a chat or completions stream: a whole SSE event at a line start. The text
# "data: [DONE]" inside a JSON string is escaped onto the line of its own event.
_DONE_EVENT = re.compile(rb"(?:^|\n)data: ?\[DONE\]\r?(?:\n|$)")


def _expects_done(canonical: Canonical) -> bool:
    return canonical.endpoint.endswith(("/chat/completions", "/completions"))


def resolve_sync(core: Core, request: CapturedRequest) -> Step:
    """:meth:`Core.begin`, waiting in this thread for an identical request in flight."""
    may_join = True
    polling_until = None
    while True:
        may_claim = polling_until is None or time.monotonic() < polling_until
        step = core.begin(request, may_join=may_join, may_claim=may_claim)
        if isinstance(step, _Poll):
            # A claim outlives its holder by LEASE_SECONDS at most; past that, go alone.
            polling_until = polling_until or time.monotonic() + LEASE_SECONDS
            time.sleep(POLL_SECONDS)
            continue
        if not isinstance(step, _Wait):
            return step
        if not step.flight.done.wait(FLIGHT_WAIT_SECONDS):
            may_join = False
            continue
        joined = core.joined(step.flight, step.key)
        if joined is not None:
            return joined


async def resolve_async(core: Core, request: CapturedRequest) -> Step:
    """:meth:`Core.begin`, waiting without blocking the event loop."""
    may_join = True
    polling_until = None
    while True:
        may_claim = polling_until is None or time.monotonic() < polling_until
        step = core.begin(request, may_join=may_join, may_claim=may_claim)
        if isinstance(step, _Poll):
            polling_until = polling_until or time.monotonic() + LEASE_SECONDS
            await anyio.sleep(POLL_SECONDS)
            continue
        if not isinstance(step, _Wait):
            return step
        # A threading.Event serves threads and tasks alike; poll it cheaply from the loop.
        with anyio.move_on_after(FLIGHT_WAIT_SECONDS):
            while not step.flight.done.is_set():
                await anyio.sleep(0.002)
        if not step.flight.done.is_set():
            may_join = False
            continue
        joined = core.joined(step.flight, step.key)
        if joined is not None:
            return joined
