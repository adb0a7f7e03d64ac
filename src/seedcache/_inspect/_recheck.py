"""The drift canary: re-send recorded requests live, and see which backends changed.

``seedcache refresh`` runs it. Every chosen take's request is sent again as recorded; the
live answer's backend identity (dated model and fingerprint) is compared with the take's.
A take whose backend changed is re-recorded in place (the old one kept as history), unless
it is a dry run; one whose backend is unchanged is left exactly as it is, so a run that
finds nothing writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .._errors import SeedCacheError
from .._request._backends import BackendChange
from .._request._freshness import model_of
from .._request._keys import Canonical
from .._request._policy import Fetch, Slot, place
from .._request._recording import Recording
from .._stores import Store
from .._stores._registry import Registry
from .._takes._content import content_of
from .._takes._take import Entry, Take, identity_of, requested_model

__all__ = [
    "RESENT_ENDPOINTS",
    "LiveAnswer",
    "ModelDrift",
    "Recheck",
    "Send",
    "endpoint_of",
    "recheck",
    "resendable",
]


@dataclass(frozen=True, slots=True)
class LiveAnswer:
    """What the upstream answered: status, headers and the decoded body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


Send = Callable[[str, str, dict[str, str], bytes | None], LiveAnswer]
"""Sends ``(method, recorded url, headers, body)`` live."""


@dataclass(slots=True)
class ModelDrift:
    """What one model answered, compared with what was recorded for it."""

    model: str
    checked: int = 0
    changed_backend: int = 0
    changed_output: int = 0
    failed: int = 0
    """Requests that got no usable answer (an error status, a broken stream)."""
    errors: list[str] = field(default_factory=list)
    """What the failed requests were told (the first few)."""
    changes: dict[BackendChange, int] = field(default_factory=dict)

    def describe(self) -> str:
        """``gpt-4o-mini  fp_a → fp_b  4 of 4 changed backend, 3 outputs changed``."""
        moved = ", ".join(f"{c.before} → {c.after}" for c in self.changes) or "unchanged"
        parts = [f"{self.model}  {moved}"]
        parts.append(f"{self.changed_backend} of {self.checked} changed backend")
        parts.append(f"{self.changed_output} outputs changed")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)


@dataclass(slots=True)
class Recheck:
    """The result of one canary run."""

    models: dict[str, ModelDrift] = field(default_factory=dict)
    skipped: int = 0
    """Recorded requests not sent again: not a POST to a generation endpoint with a JSON
    body (an upload, a DELETE, anything that changes something)."""
    rerecorded: int = 0
    stopped: str | None = None
    """Why the run stopped before the end (the upstream could not be reached)."""

    @property
    def outputs_changed(self) -> int:
        """Outputs that changed where they should not have, over every model."""
        return sum(m.changed_output for m in self.models.values())

    @property
    def failed(self) -> int:
        """Requests that got no usable answer, over every model."""
        return sum(m.failed for m in self.models.values())


Target = tuple[Store, Entry, int]


# Summaries of bodies that were not JSON objects: text, multipart parts, or a digest.
_NOT_JSON_SHAPES = ({"text"}, {"multipart"}, {"bytes", "xxh3"})

RESENT_ENDPOINTS = frozenset({"/chat/completions", "/completions", "/responses", "/embeddings"})
"""What the canary sends again: generation endpoints whose answers it can compare, never
a request that changes anything (a DELETE, a fine-tune, a batch). A cassette is a file
anyone may edit in a pull request, and the canary sends it with the caller's key."""


RESENT_HEADERS = frozenset({"openai-beta", "anthropic-beta", "anthropic-version"})
"""The recorded headers the canary sends again (those keys can match on)."""


def endpoint_of(entry: Entry) -> str | None:
    """The API endpoint a recorded request called (``/chat/completions``), when it is one
    the canary may send again: POST, to an absolute http(s) URL, under ``/v1``."""
    request = entry.request
    if str(request.get("method", "")).upper() != "POST":
        return None
    try:
        parts = urlsplit(str(request.get("url", "")))
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    prefix, found, endpoint = parts.path.partition("/v1/")
    if not found or prefix.count("/") > 3:
        return None
    endpoint = "/" + endpoint
    return endpoint if endpoint in RESENT_ENDPOINTS else None


def resendable(entry: Entry) -> bool:
    """Whether the recorded request can and may be sent again as it was: a POST to a
    generation endpoint (:data:`RESENT_ENDPOINTS`) with a JSON body."""
    if endpoint_of(entry) is None:
        return False
    if entry.request.get("body_kind", "json") != "json":
        return False
    body = entry.request.get("body")
    return isinstance(body, dict) and set(body) not in _NOT_JSON_SHAPES


def recheck(
    targets: Iterable[Target],
    send: Send,
    *,
    dry_run: bool,
    clock: Callable[[], float],
    history_limit: int = 5,
) -> Recheck:
    """Send each target's request live and compare; re-record what changed unless ``dry_run``."""
    result = Recheck()
    started = round(clock() * 1000)
    for store, entry, index in targets:
        if not resendable(entry):
            result.skipped += 1
            continue
        old = entry.takes[index]
        model = model_of(requested_model(entry.request), old)
        drift = result.models.setdefault(model, ModelDrift(model))
        drift.checked += 1
        try:
            new, error = _fetch(entry, index, send, clock)
        except SeedCacheError as exc:
            result.stopped = str(exc)
            drift.checked -= 1
            break
        if new is None:
            drift.failed += 1
            if len(drift.errors) < _ERRORS_KEPT:
                drift.errors.append(error)
            continue
        before, after = identity_of(old), identity_of(new)
        moved = before is not None and after is not None and before != after
        # Unseeded answers differ on every call: only a seeded one, or one from another
        # backend, counts as an output that changed.
        body = entry.request.get("body")
        seeded = isinstance(body, dict) and "seed" in body
        if (moved or seeded) and content_of(old).text != content_of(new).text:
            drift.changed_output += 1
        if before is None or after is None or not moved:
            continue
        drift.changed_backend += 1
        change = BackendChange.between(model, before, after)
        drift.changes[change] = drift.changes.get(change, 0) + 1
        if not dry_run:
            _rerecord(store, entry.key, index, old, new, history_limit, run=started)
            result.rerecorded += 1
    return result


# Error messages a model's summary quotes.
_ERRORS_KEPT = 3


def _fetch(
    entry: Entry, index: int, send: Send, clock: Callable[[], float]
) -> tuple[Take | None, str]:
    """The live answer to ``entry``'s request as a take, or None and what went wrong."""
    request = entry.request
    body = request.get("body")
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    recorded = request.get("headers")
    # Only headers that change an answer, by name: a cassette edited in a pull request
    # must not add Host, a method override or anything else to a request with your key.
    headers = {
        str(k).lower(): str(v)
        for k, v in (recorded.items() if isinstance(recorded, dict) else ())
        if str(k).lower() in RESENT_HEADERS
    }
    if data is not None:
        headers["content-type"] = "application/json"
    taken: list[Take | None] = []
    recording = Recording(
        Canonical(entry.key, request),
        Fetch(Slot.REPLACE, index),
        started=clock(),
        clock=clock,
        settle=lambda _, take: taken.append(take),
    )
    answer = send(str(request.get("method", "POST")), str(request.get("url", "")), headers, data)
    recording.accept(answer.status, answer.headers)
    recording.feed(answer.body)
    recording.finish(exhausted=True)
    take = taken[0] if taken else None
    if take is not None and take.status < 400:
        return take, ""
    return None, f"{answer.status}: {_error_message(answer.body)}"


def _error_message(body: bytes) -> str:
    """The message of an API error body, short; the start of any other body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = message if isinstance(message, str) else body[:200].decode("utf-8", "replace")
    return " ".join(text.split())[:200] or "no answer"


def _rerecord(
    store: Store, key: str, index: int, old: Take, new: Take, limit: int, *, run: int
) -> None:
    """Put ``new`` in place of take ``index``, unless the take changed meanwhile."""

    def change(entry: Entry | None) -> Entry | None:
        if entry is None or index >= len(entry.takes) or entry.takes[index] != old:
            return entry  # recorded again meanwhile: that recording wins
        return place(entry, new, Fetch(Slot.REPLACE, index), history_limit=limit)[0]

    store.update(key, change)
    if new.fingerprint is not None and new.model is not None:
        at = new.recorded_at_ms
        Registry(store).observe(new.model, new.fingerprint, at, now_ms=at, run_started_ms=run)
