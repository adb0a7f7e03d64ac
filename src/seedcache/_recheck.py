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

from ._backends import BackendChange, identity_of
from ._content import content_of
from ._fingerprints import Registry, model_of
from ._keys import Canonical
from ._policy import Fetch, Slot, place
from ._recording import Recording
from ._stores import Store
from ._takes import Entry, Take

__all__ = ["LiveAnswer", "ModelDrift", "Recheck", "Send", "recheck", "resendable"]


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
    """Recorded requests that cannot be sent again (bodies that are not JSON)."""
    rerecorded: int = 0

    @property
    def outputs_changed(self) -> int:
        """Outputs that differ from the recorded ones, over every model."""
        return sum(m.changed_output for m in self.models.values())


Target = tuple[Store, Entry, int]


# Summaries of bodies that were not JSON objects: text, multipart parts, or a digest.
_NOT_JSON_SHAPES = ({"text"}, {"multipart"}, {"bytes", "xxh3"})


def resendable(entry: Entry) -> bool:
    """Whether the recorded request can be sent again as it was: a JSON body, or none.

    Uploads (multipart) and bodies kept only as a digest cannot be rebuilt.
    """
    body = entry.request.get("body")
    if body is None:
        return True
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
    for store, entry, index in targets:
        if not resendable(entry):
            result.skipped += 1
            continue
        old = entry.takes[index]
        requested = entry.request.get("body", {}) or {}
        model = model_of(requested.get("model") if isinstance(requested, dict) else None, old)
        drift = result.models.setdefault(model, ModelDrift(model))
        drift.checked += 1
        new = _fetch(entry, index, send, clock)
        if new is None:
            drift.failed += 1
            continue
        before, after = identity_of(old), identity_of(new)
        if content_of(old).text != content_of(new).text:
            drift.changed_output += 1
        if before is None or after is None or before == after:
            continue
        drift.changed_backend += 1
        change = BackendChange.between(model, before, after)
        drift.changes[change] = drift.changes.get(change, 0) + 1
        if not dry_run:
            _rerecord(store, entry.key, index, old, new, history_limit)
            result.rerecorded += 1
    return result


def _fetch(entry: Entry, index: int, send: Send, clock: Callable[[], float]) -> Take | None:
    """The live answer to ``entry``'s request as a take, or None when it is not one."""
    request = entry.request
    body = request.get("body")
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
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
    return taken[0] if taken else None


def _rerecord(store: Store, key: str, index: int, old: Take, new: Take, limit: int) -> None:
    """Put ``new`` in place of take ``index``, unless the take changed meanwhile."""

    def change(entry: Entry | None) -> Entry | None:
        if entry is None or index >= len(entry.takes) or entry.takes[index] != old:
            return entry  # recorded again meanwhile: that recording wins
        return place(entry, new, Fetch(Slot.REPLACE, index), history_limit=limit)[0]

    store.update(key, change)
    if new.fingerprint is not None and new.model is not None:
        Registry(store).observe(new.model, new.fingerprint, new.recorded_at_ms)
