"""The small facts about an entry that listing needs, kept apart from the bodies.

``seedcache ls`` and ``stats`` over 100,000 entries must not decode 100,000 bodies. Each
store keeps a :class:`Summary` per key, written together with the entry, so listing reads
a few hundred bytes per key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ._takes import Entry, Take

__all__ = ["Summary", "TakeFacts", "parse_many", "summarize", "take_facts"]

# The stored form is a JSON array, [format, endpoint, model, seed, takes, history], with a
# take as [status, fingerprint, model, recorded_at_ms, size]: arrays parse faster than
# objects, and listing parses one per entry.
_FORMAT = 1


class TakeFacts(NamedTuple):
    """What listing needs of one take."""

    status: int
    fingerprint: str | None
    model: str | None
    recorded_at_ms: int
    size: int
    """Body bytes (decoded)."""


class Summary:
    """What listing needs of one entry.

    Built from the index by the hundred thousand, so takes stay plain rows until a
    caller asks for them as :class:`TakeFacts`; the aggregates read the rows directly.
    """

    __slots__ = ("_history", "_takes", "endpoint", "key", "model", "seed")

    def __init__(
        self,
        key: str,
        endpoint: str,
        model: str | None,
        seed: int | None,
        takes: Sequence[Sequence[Any]],
        history: Sequence[Sequence[Any]] = (),
    ) -> None:
        self.key = key
        self.endpoint = endpoint
        self.model = model
        self.seed = seed
        self._takes = takes
        self._history = history

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
        # Rows are checked by shape only: the index is ours, written with its entry, and a
        # row-by-row check would double the cost of listing a big cache.
        if version != _FORMAT or type(takes) is not list or type(history) is not list:
            return None
        return cls(key, endpoint, model, seed, takes, history)


def parse_many(keys: list[str], raws: list[bytes]) -> list[Summary | None]:
    """Parse many summaries at once: one JSON parse for all is several times faster."""
    try:
        documents = json.loads(b"[" + b",".join(raws) + b"]")
    except (ValueError, RecursionError):
        documents = None
    if documents is None or len(documents) != len(keys):  # a row was not one JSON value
        return [Summary.from_bytes(k, raw) for k, raw in zip(keys, raws, strict=True)]
    return [Summary.from_document(k, d) for k, d in zip(keys, documents, strict=True)]


def summarize(entry: Entry) -> Summary:
    """The summary of ``entry``."""
    request = entry.request
    body = request.get("body")
    model = body.get("model") if isinstance(body, dict) else None
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
    return TakeFacts(take.status, take.fingerprint, take.model, take.recorded_at_ms, len(take.body))
