"""A live response on its way to the caller, kept to become a take if it completes."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .._takes._content import content_of
from .._takes._take import Identity, Take, media_type, response_identity
from ._keys import Canonical
from ._outcome import OUTCOME_HEADER, Action, Outcome
from ._policy import Fetch, Slot
from ._redact import holds_a_key, redact_keys_in
from ._wire import keep_response_headers

if TYPE_CHECKING:
    from ._steps import Serve

__all__ = ["UNSTORED_STATUSES", "Recording"]

_log = logging.getLogger("seedcache")

# Statuses never stored (nor any 5xx). The SDK retries 408, 409 and 429: storing them
# would replay a transient failure forever. 401, 403 and 407 depend on the credentials,
# not on the request: replaying one after the key is fixed would be a wrong answer.
UNSTORED_STATUSES = frozenset({401, 403, 407, 408, 409, 429})
# Headers that describe the encoded transfer; takes hold decoded bodies.
_TRANSFER_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})

Settle = Callable[["Recording", Take | None], None]
"""Called once when a recording ends: with its take when complete and storable, else None."""


class Recording:
    """A live response on its way to the caller, stored as a take if it completes.

    Adapters call :meth:`accept` with the status and headers, :meth:`feed` with every
    decoded chunk they pass on, then :meth:`finish` (body read to the end, or the caller
    closed early) or :meth:`abandon` (an error). Only a complete response becomes a take:
    the whole body, or for a stream that ends with ``data: [DONE]``, that event. What
    happens to the take is the ``settle`` callback's business.
    """

    def __init__(
        self,
        canonical: Canonical,
        decision: Fetch,
        *,
        started: float,
        clock: Callable[[], float],
        settle: Settle,
        expected: Identity | None = None,
        samples: int = 1,
    ) -> None:
        self.canonical = canonical
        self.expected = expected
        """For a check: the backend the recorded take came from."""
        self.samples = samples
        """For a check: how many live answers to ask for before calling that backend gone."""
        self.decision = decision
        self._started = started
        self._clock = clock
        self._settle = settle
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._chunks: list[bytes] = []
        self.storable = False
        """Whether the status allows storing (known after :meth:`accept`)."""
        self._closed = False
        self.outcome = Outcome(Action.PASSTHROUGH, canonical.key, None)
        """What the cache is doing with this response; set by :meth:`accept`."""
        self.served: Serve | None = None
        """For a check, once finished: what the caller gets (the recorded take when the
        backend is unchanged, else the new one); None to pass the live answer on."""

    @property
    def is_check(self) -> bool:
        """A ``refresh`` check: the caller waits for the whole answer, then gets
        :attr:`served` (so that an unchanged backend's recording is what it sees)."""
        return self.decision.check

    @property
    def key(self) -> str:
        """The request's key."""
        return self.canonical.key

    def shows_other_backend(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes
    ) -> bool:
        """For a check: whether this whole answer came from another backend than the
        recorded take's, so that asking again may still show the recorded one."""
        if self.expected is None or not 200 <= status < 300:
            return False
        is_stream = media_type(keep_response_headers(headers)) == "text/event-stream"
        fingerprint, model = response_identity(body, is_stream=is_stream)
        return Identity(model or self.canonical.model, fingerprint) != self.expected

    def accept(self, status: int, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Note the response head; return the headers to give the caller."""
        headers = list(headers)
        self._status = status
        self._headers = keep_response_headers(headers)
        self.storable = status not in UNSTORED_STATUSES and status < 500
        action = Action.PASSTHROUGH
        if self.storable:
            action = Action.REFRESHED if self.decision.slot is Slot.REPLACE else Action.RECORDED
        self.outcome = Outcome(action, self.key, None)
        if not self.storable:
            self._close(None)
        kept = [(k, v) for k, v in headers if k.lower() not in _TRANSFER_HEADERS]
        return [*kept, (OUTCOME_HEADER, self.outcome.header_value())]

    def feed(self, chunk: bytes) -> None:
        """Keep a decoded chunk that was passed on to the caller."""
        if self.storable and not self._closed:
            self._chunks.append(chunk)

    def finish(self, *, exhausted: bool) -> None:
        """The caller is done: settle with the take if the response is complete. Idempotent."""
        if self._closed:
            return
        body = b"".join(self._chunks)
        take = self._take(body) if self._complete(body, exhausted=exhausted) else None
        if take is not None and holds_a_key(content_of(take).text):
            # A key that only shows once the answer is read (split across stream events,
            # or spelled with JSON escapes) cannot be cut out of the bytes that replay:
            # such an answer is passed on and never stored.
            _log.warning(
                "%s answered with what looks like a secret key; the answer was passed on "
                "and not recorded",
                self.canonical.endpoint,
            )
            take = None
        self._close(take)

    def abandon(self) -> None:
        """The upstream failed or the caller went away: nothing becomes a take."""
        if not self._closed:
            self._close(None)

    def _close(self, take: Take | None) -> None:
        self._closed = True
        self._chunks = []
        self._settle(self, take)

    def _take(self, body: bytes) -> Take:
        # Answers that hand out credentials (admin keys, Realtime client secrets) are
        # stored without them: the replay gets a redacted key, never the real one.
        body = redact_keys_in(body)
        now = self._clock()
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

        A stream is whole at its provider's real end (:func:`_stream_ended`), never with
        an ``event: error``. Any other body is whole when it was read to
        the end and parses as its media type: a truncated gzip body or a connection cut
        short decodes to broken JSON, which the caller could not use either. An HTML page
        is never an API answer (a gateway's login or error page).
        """
        if not self.storable:
            return False
        media = media_type(self._headers)
        if media == "text/event-stream":
            if b"\nevent: error" in b"\n" + body:
                return False
            return _stream_ended(self.canonical.endpoint, body, exhausted=exhausted)
        if not exhausted or media == "text/html":
            return False
        if media == "application/json" or media.endswith("+json"):
            try:
                json.loads(body)
            except (ValueError, RecursionError):
                return False
            # What the stores accept back (see checked_take): an answer, not a bare value.
            if 200 <= self._status < 300 and body.lstrip()[:1] not in b"{[":
                return False
        return True


# The end of a chat or completions stream: a whole SSE event at a line start. The text
# "data: [DONE]" inside a JSON string is escaped onto the line of its own event.
_DONE_EVENT = re.compile(rb"(?:^|\n)data: ?\[DONE\]\r?(?:\n|$)")
# The end of an Anthropic Messages stream: the message_stop event.
_MESSAGE_STOP = re.compile(rb"(?:^|\n)event: ?message_stop\r?\n")
# A Gemini stream's last chunk names why the candidate finished.
_GEMINI_FINISH = re.compile(rb'"finishReason" ?: ?"')


def _stream_ended(endpoint: str, body: bytes, *, exhausted: bool) -> bool:
    """Whether a stream reached its provider's real end, not a cut-off connection.

    Chat and completions streams end with ``data: [DONE]`` (the sync SDK stops reading
    right there); Anthropic's with ``event: message_stop`` after ``message_delta``;
    Gemini's (``streamGenerateContent``) with a chunk that has a ``finishReason``, and
    the body read to its end. Others (the Responses API) end where the body does.
    """
    if endpoint.endswith(("/chat/completions", "/completions")):
        return _DONE_EVENT.search(body) is not None
    if endpoint.endswith(("/v1/messages", ":streamRawPredict")):  # Claude, on Vertex too
        return _MESSAGE_STOP.search(body) is not None
    if endpoint.endswith(":streamGenerateContent"):
        events = [e for e in re.split(rb"\r?\n\r?\n", body) if e.strip()]
        return exhausted and bool(events) and _GEMINI_FINISH.search(events[-1]) is not None
    return exhausted or _DONE_EVENT.search(body) is not None
