"""Takes and entries: what one key holds.

A *take* is one recorded response. An *entry* is everything recorded for one key: the
readable request summary, the takes in the order a session replays them, and older
takes kept as history when ``refresh`` replaced them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "Entry",
    "Identity",
    "Take",
    "identity_of",
    "loads_or_none",
    "media_type",
    "provider_of",
    "provider_of_model",
    "provider_of_path",
    "requested_model",
    "response_identity",
]

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Take:
    """One recorded response: status, kept headers and the exact decoded body bytes."""

    status: int
    headers: Headers
    body: bytes
    fingerprint: str | None = None
    model: str | None = None
    recorded_at_ms: int = 0
    """When the response arrived, in milliseconds since the Unix epoch."""
    latency_ms: int = 0
    """How long the upstream took to answer (to the last byte for streams)."""
    usage_read: tuple[Any] | None = field(default=None, init=False, repr=False, compare=False)
    """Internal: ``(usage,)`` once :func:`~seedcache._takes._usage.usage_of` has read it,
    from the body or from the document a store decoded the body from."""

    @property
    def content_type(self) -> str:
        """The media type, lowercased, without parameters."""
        return media_type(self.headers)

    @property
    def is_stream(self) -> bool:
        """True for server-sent events (``stream=True`` calls)."""
        return self.content_type == "text/event-stream"


@dataclass(frozen=True, slots=True)
class Entry:
    """Everything recorded for one key. Immutable: a change builds a new entry.

    ``revision`` is set by the store an entry was read from: it changes whenever the
    stored entry does, and a lease on the key is claimed against it. It takes no part in
    equality; an entry built in memory has revision 0.
    """

    key: str
    request: dict[str, Any]
    takes: tuple[Take, ...] = ()
    history: tuple[Take, ...] = ()
    revision: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        # Lists are accepted for convenience and frozen here, so no holder can change a
        # take list another holder (or the store's memory) shares.
        if type(self.takes) is not tuple:
            object.__setattr__(self, "takes", tuple(self.takes))
        if type(self.history) is not tuple:
            object.__setattr__(self, "history", tuple(self.history))

    def with_revision(self, revision: int) -> Entry:
        """This entry as read from a store at ``revision``."""
        return Entry(self.key, self.request, self.takes, self.history, revision)


def media_type(headers: Iterable[tuple[str, str]]) -> str:
    """The media type in (lower-cased) ``headers``, without parameters; "" when none."""
    for name, value in headers:
        if name == "content-type":
            return value.split(";")[0].strip().lower()
    return ""


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


def requested_model(request: Mapping[str, Any]) -> str | None:
    """The model a recorded request asked for: the body's ``model`` (OpenAI, Anthropic),
    else the one Gemini names in its path (``/models/gemini-2.0-flash:generateContent``)."""
    body = request.get("body")
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str):
        return model
    path = urlsplit(str(request.get("url", ""))).path
    found = _PATH_MODEL.search(path)
    return found.group(1) if found else None


def provider_of(request: Mapping[str, Any]) -> str:
    """Whose API a recorded request called: ``anthropic``, ``gemini`` or ``openai`` (its
    compatible APIs, Azure's included), told by the path each provider's API has."""
    return provider_of_path(urlsplit(str(request.get("url", ""))).path)


def provider_of_path(path: str) -> str:
    """:func:`provider_of` for a URL path."""
    if path.endswith(("/v1/messages", "/v1/messages/count_tokens", "/v1/messages/batches")):
        return "anthropic"
    if "/publishers/anthropic/models/" in path:  # Claude on Vertex AI
        return "anthropic"
    if _PATH_MODEL.search(path):
        return "gemini"
    return "openai"


# Gemini's model is in the path: /v1beta/models/NAME:generateContent.
_PATH_MODEL = re.compile(r"/models/([^/:]+):[A-Za-z]+$")


def provider_of_model(model: str) -> str:
    """The provider a model's name belongs to (``claude-…``, ``gemini-…``, else OpenAI);
    ``-`` for no model."""
    if model in ("", "-", "?"):
        return "-"
    if model.startswith("claude"):
        return "anthropic"
    if model.startswith(("gemini", "models/gemini")):
        return "gemini"
    return "openai"


def response_identity(body: bytes, *, is_stream: bool) -> tuple[str | None, str | None]:
    """``(system_fingerprint, model)`` read from a response body; None where absent.

    For a stream, the first event that names them wins: chat chunks carry both on every
    event, Responses API events nest the model under ``response``.
    """
    if not is_stream:
        return _identity_of(loads_or_none(body))
    fingerprint: str | None = None
    model: str | None = None
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        found_fp, found_model = _identity_of(loads_or_none(line[5:]))
        fingerprint = fingerprint or found_fp
        model = model or found_model
        if model is not None:
            break
    return fingerprint, model


def _identity_of(document: Any) -> tuple[str | None, str | None]:
    if not isinstance(document, dict):
        return None, None
    fingerprint = document.get("system_fingerprint")
    model = document.get("model")
    for wrapper in ("response", "message"):  # Responses API and Anthropic stream events
        nested = document.get(wrapper)
        if model is None and isinstance(nested, dict):
            model = nested.get("model")
    if model is None:
        model = document.get("modelVersion")  # Gemini names its dated model so
    return (
        fingerprint if isinstance(fingerprint, str) else None,
        model if isinstance(model, str) else None,
    )


def loads_or_none(raw: bytes) -> Any:
    """``raw`` parsed as JSON, or None when it is not JSON (or nests too deep)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None
