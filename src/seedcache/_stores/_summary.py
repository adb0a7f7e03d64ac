"""The small facts about an entry that listing needs, kept apart from the bodies.

``seedcache ls`` and ``stats`` over 100,000 entries must not decode 100,000 bodies. Each
store keeps a :class:`Summary` per key, written together with the entry, so listing reads
a few hundred bytes per key.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import xxhash

from .._takes._content import content_of
from .._takes._take import Entry, Take, requested_model

__all__ = [
    "Summary",
    "TakeFacts",
    "Totals",
    "newest_of",
    "parse_many",
    "summarize",
    "take_facts",
]

# The stored form is a JSON array, [format, endpoint, model, seed, takes, history], with a
# take as [status, fingerprint, model, recorded_at_ms, size, content]: arrays parse faster
# than objects, and listing parses one per entry. Format 2 added ``content``; rows of
# format 1 are rebuilt from their entries when first read.
_FORMAT = 2
_TOTALS_FORMAT = 1


class TakeFacts(NamedTuple):
    """What listing needs of one take."""

    status: int
    fingerprint: str | None
    model: str | None
    recorded_at_ms: int
    size: int
    """Body bytes (decoded)."""
    content: int
    """A hash of the take's content (text, tool calls): equal outputs, equal hashes, so
    determinism is measured without decoding bodies."""


class Summary:
    """What listing needs of one entry.

    Built from the index by the hundred thousand, so takes stay plain rows until a
    caller asks for them as :class:`TakeFacts`; the aggregates read the rows directly.
    """

    __slots__ = ("_history", "_takes", "endpoint", "key", "model", "origin", "seed")

    def __init__(
        self,
        key: str,
        endpoint: str,
        model: str | None,
        seed: int | None,
        takes: Sequence[Sequence[Any]],
        history: Sequence[Sequence[Any]] = (),
        origin: str | None = None,
    ) -> None:
        self.key = key
        self.endpoint = endpoint
        self.model = model
        self.seed = seed
        self._takes = takes
        self._history = history
        self.origin = origin
        """The cassette this entry comes from, when read from a folder of cassettes."""

    def placed(self, origin: str) -> Summary:
        """This summary as found in the cassette ``origin``."""
        return Summary(
            self.key, self.endpoint, self.model, self.seed, self._takes, self._history, origin
        )

    @property
    def takes(self) -> tuple[TakeFacts, ...]:
        """The takes in replay order."""
        return tuple(TakeFacts._make(row) for row in self._takes)

    @property
    def history(self) -> tuple[TakeFacts, ...]:
        """Replaced takes kept as history, oldest first."""
        return tuple(TakeFacts._make(row) for row in self._history)

    @property
    def all_takes(self) -> tuple[TakeFacts, ...]:
        """Takes in replay order, then history."""
        return self.takes + self.history

    @property
    def take_count(self) -> int:
        """How many takes (not history)."""
        return len(self._takes)

    @property
    def history_count(self) -> int:
        """How many replaced takes are kept."""
        return len(self._history)

    @property
    def fingerprints(self) -> list[str]:
        """Distinct fingerprints of the takes (not history), in first-seen order."""
        return list(dict.fromkeys(row[1] for row in self._takes if row[1]))

    @property
    def recorded_at_ms(self) -> int:
        """When the newest take was recorded; 0 with no takes."""
        newest: int = max([row[3] for row in self._takes], default=0)
        return newest

    @property
    def size(self) -> int:
        """Body bytes of every take, history included."""
        total: int = sum([row[4] for row in self._takes]) + sum([row[4] for row in self._history])
        return total

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Summary) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"Summary({self.key!r}, {self.endpoint!r}, takes={self.take_count})"

    def to_bytes(self) -> bytes:
        """The compact JSON array kept in the store's index."""
        document = [
            _FORMAT,
            self.endpoint,
            self.model,
            self.seed,
            [list(row) for row in self._takes],
            [list(row) for row in self._history],
        ]
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, key: str, raw: bytes) -> Summary | None:
        """The summary in ``raw``, or None when it is not one (then it is rebuilt)."""
        try:
            return cls.from_document(key, json.loads(raw))
        except (ValueError, RecursionError):
            return None

    @classmethod
    def from_document(cls, key: str, document: Any) -> Summary | None:
        """The summary in a parsed :meth:`to_bytes` array, or None when it is not one."""
        try:
            version, endpoint, model, seed, takes, history = document
        except (TypeError, ValueError):
            return None
        # A planted index row must not break listing (a dict model, a list time): a row
        # that is not what we write is rebuilt from its entry, which is checked in full.
        if (
            version != _FORMAT
            or type(endpoint) is not str
            or not (model is None or type(model) is str)
            or not (seed is None or type(seed) is int)
            or type(takes) is not list
            or type(history) is not list
            or not all(map(_is_take_row, takes))
            or not all(map(_is_take_row, history))
        ):
            return None
        return cls(key, endpoint, model, seed, takes, history)


def _is_take_row(row: Any) -> bool:
    """Whether ``row`` is a :class:`TakeFacts` as written: six fields of the right types."""
    if type(row) is not list or len(row) != 6:
        return False
    status, fingerprint, model, recorded, size, content = row
    return (
        type(status) is int
        and (fingerprint is None or type(fingerprint) is str)
        and (model is None or type(model) is str)
        and type(recorded) is int
        and 0 <= recorded < 2**53
        and type(size) is int
        and type(content) is int
    )


def parse_many(keys: list[str], raws: list[bytes]) -> list[Summary | None]:
    """Parse many summaries at once: one JSON parse for all is several times faster."""
    try:
        documents = json.loads(b"[" + b",".join(raws) + b"]")
    except (ValueError, RecursionError):
        documents = None
    if documents is None or len(documents) != len(keys):  # a row was not one JSON value
        return [Summary.from_bytes(k, raw) for k, raw in zip(keys, raws, strict=True)]
    return [Summary.from_document(k, d) for k, d in zip(keys, documents, strict=True)]


def newest_of(summaries: Iterable[Summary], limit: int) -> list[Summary]:
    """The ``limit`` most recently recorded of ``summaries``, newest first."""
    return heapq.nsmallest(limit, summaries, key=lambda s: (-s.recorded_at_ms, s.key))


def summarize(entry: Entry) -> Summary:
    """The summary of ``entry``."""
    request = entry.request
    body = request.get("body")
    model = requested_model(request)
    seed = body.get("seed") if isinstance(body, dict) else None
    path = urlsplit(str(request.get("url", ""))).path
    return Summary(
        key=entry.key,
        endpoint=f"{request.get('method', '?')} {path}",
        model=model if isinstance(model, str) else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        takes=tuple(take_facts(t) for t in entry.takes),
        history=tuple(take_facts(t) for t in entry.history),
    )


def take_facts(take: Take) -> TakeFacts:
    """What listing needs of ``take``."""
    content = xxhash.xxh3_64_intdigest(content_of(take).text.encode()) >> 11  # exact in JSON
    return TakeFacts(
        take.status, take.fingerprint, take.model, take.recorded_at_ms, len(take.body), content
    )


class Totals:
    """Counts and sizes over a whole store, kept up to date entry by entry.

    ``seedcache stats`` on 100,000 entries must not read 100,000 summaries: stores add
    each change's difference (:meth:`apply`) as they write it, and keep the result as
    one small JSON document.
    """

    __slots__ = ("body_bytes", "by_fingerprint", "by_model", "entries", "history", "takes")

    def __init__(self) -> None:
        self.entries = 0
        self.takes = 0
        self.history = 0
        self.body_bytes = 0
        self.by_model: dict[str, list[int]] = {}
        """Per model: ``[entries, takes, bytes]`` (history included in takes and bytes)."""
        self.by_fingerprint: dict[str, dict[str, int]] = {}
        """Per model, per fingerprint ("-" for none): takes, history included."""

    def apply(self, before: Summary | None, after: Summary | None) -> Totals:
        """Account for one entry changing from ``before`` to ``after`` (None: absent)."""
        if before is not None:
            self._add(before, -1)
        if after is not None:
            self._add(after, 1)
        return self

    def _add(self, summary: Summary, sign: int) -> None:
        model = summary.model or "-"
        self.entries += sign
        self.takes += sign * summary.take_count
        self.history += sign * summary.history_count
        row = self.by_model.setdefault(model, [0, 0, 0])
        row[0] += sign
        for take in summary.all_takes:
            size = sign * take.size
            self.body_bytes += size
            row[1] += sign
            row[2] += size
            fingerprints = self.by_fingerprint.setdefault(take.model or model, {})
            name = take.fingerprint or "-"
            fingerprints[name] = fingerprints.get(name, 0) + sign
            if not fingerprints[name]:
                del fingerprints[name]
        if not row[0] and not row[1]:
            del self.by_model[model]

    @classmethod
    def of(cls, summaries: Iterable[Summary]) -> Totals:
        """Totals counted afresh."""
        totals = cls()
        for summary in summaries:
            totals._add(summary, 1)
        return totals

    def to_bytes(self) -> bytes:
        """The stored form."""
        document = [
            _TOTALS_FORMAT,
            self.entries,
            self.takes,
            self.history,
            self.body_bytes,
            self.by_model,
            self.by_fingerprint,
        ]
        encoded = json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        return encoded.encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Totals | None:
        """The totals in ``raw``; None when absent or not totals (then they are recounted)."""
        if raw is None:
            return None
        try:
            version, entries, takes, history, body_bytes, by_model, by_fp = json.loads(raw)
        except (ValueError, TypeError, RecursionError):
            return None
        if (
            version != _TOTALS_FORMAT
            or not isinstance(by_model, dict)
            or not isinstance(by_fp, dict)
        ):
            return None
        totals = cls()
        try:
            totals.entries, totals.takes = int(entries), int(takes)
            totals.history, totals.body_bytes = int(history), int(body_bytes)
            totals.by_model = {str(m): [int(n) for n in row] for m, row in by_model.items()}
            totals.by_fingerprint = {
                str(m): {str(fp): int(n) for fp, n in fps.items()} for m, fps in by_fp.items()
            }
        except (ValueError, TypeError, AttributeError):
            return None
        if any(len(row) != 3 for row in totals.by_model.values()):
            return None
        return totals

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Totals) and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Totals(entries={self.entries}, takes={self.takes}, bytes={self.body_bytes})"
