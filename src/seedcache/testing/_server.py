"""A fake OpenAI API on loopback that behaves like the real wire, for tests.

Pretty-printed, gzip-encoded, chunked JSON; SSE streams with random ``obfuscation``
padding; ``x-request-id``; secrets in headers that must not be recorded; a fingerprint
that can change while it runs; injected errors, pauses and dropped connections.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from ._anthropic import anthropic_error, count_tokens, messages
from ._bodies import Generated
from ._gemini import gemini, google_error
from ._routes import (
    FileStore,
    answer,
    authorized,
    azure_error,
    models,
    openai_error,
    parse_route,
    tiny_png,
)

__all__ = ["FakeOpenAI", "RecordedRequest"]

_MODELS_WITHOUT_FINGERPRINT = ("gpt-3.5-turbo-0125", "gpt-4.1-nano", "gpt-5")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(slots=True)
class _Fault:
    status: int
    document: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; point clients at ``server.base_url``.

    Seeded requests get text that depends only on the request, the model that answers and
    :attr:`fingerprint`; unseeded ones differ every call. Set :attr:`fingerprint`, or point
    an alias at another dated model in :attr:`model_versions`, to simulate a backend change.
    """

    def __init__(
        self,
        *,
        fingerprint: str = "fp_a1b2c3d4e5",
        gzip_bodies: bool = True,
        model_versions: dict[str, str] | None = None,
        port: int = 0,
    ) -> None:
        self.fingerprint = fingerprint
        self._listen_port = port
        """The port to listen on; 0 picks a free one each start."""
        self.model_versions: dict[str, str] = dict(model_versions or {})
        """Aliases and the dated model that answers them (``{"gpt-4o": "gpt-4o-2024-08-06"}``),
        as the real API names ``gpt-4o-2024-08-06`` in its answer to ``gpt-4o``. A model
        not listed answers under the name it was asked by."""
        self.gzip_bodies = gzip_bodies
        self.requests: list[RecordedRequest] = []
        self.pause_after_first_event: threading.Event | None = None
        """When set to an Event, streams stop after their first event until it is set."""
        self.hold_responses: threading.Event | None = None
        """When set to an Event, every response waits for it (requests are logged first)."""
        self.drop_streams_after: int | None = None
        self.fail_streams_after: int | None = None
        """When set, streams send an ``event: error`` (Anthropic's ``overloaded_error``, as
        its API does mid-stream) after this many events, then end the body cleanly."""
        """When set, streams close the connection after this many events, without ending."""
        self.streams_completed = 0
        """How many streams the server sent to their very end."""
        self._rotation: list[str] = []
        self._faults: list[_Fault] = []
        self._files = FileStore()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the value for ``OpenAI(base_url=...)``.

        Stays the same after :meth:`stop`, so a replay can use the URL it was recorded with.
        """
        if self._port is None:
            raise RuntimeError("the fake server was never started; use it as a context manager")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL for Anthropic's and Gemini's SDKs, which
        add ``/v1/messages`` and ``/v1beta/models/...`` themselves."""
        return self.base_url.removesuffix("/v1")

    @property
    def azure_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, the value for ``AzureOpenAI(azure_endpoint=...)``."""
        return self.base_url.removesuffix("/v1")

    @property
    def request_count(self) -> int:
        """How many requests reached the server."""
        with self._lock:
            return len(self.requests)

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        message: str = "injected",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` and an OpenAI error body."""
        kind = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            403: "request_forbidden",
            429: "requests",
            500: "server_error",
        }.get(status, "server_error")
        document = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        with self._lock:
            self._faults.extend(_Fault(status, document, dict(headers or {})) for _ in range(times))

    def alternate_fingerprints(self, *fingerprints: str) -> None:
        """Serve these fingerprints in turn, one per request, as a backend mid-rollout does.

        With none, go back to :attr:`fingerprint` alone.
        """
        with self._lock:
            self._rotation = list(fingerprints)

    def _serving_fingerprint(self) -> str:
        with self._lock:
            if not self._rotation:
                return self.fingerprint
            self._rotation.append(self._rotation.pop(0))
            return self._rotation[-1]

    def start(self) -> Self:
        """Listen on 127.0.0.1, on the port given (a free one by default)."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Listener(("127.0.0.1", self._listen_port), handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        # A short poll interval makes stop() quick; tests stop servers often.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, so nothing can reach it any more."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._connections.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _respond(self, request: RecordedRequest) -> Generated:
        fault = self._next_fault()
        parts = urlsplit(request.path)
        if fault is not None:
            return _in_provider_shape(fault, parts.path)
        if parts.path.startswith("/v1/messages"):
            return self._anthropic(request, parts.path)
        if "/publishers/anthropic/models/" in parts.path:
            return self._anthropic_on_vertex(request, parts.path)
        if request.method == "POST" and "/models/" in parts.path and ":" in parts.path:
            return self._gemini(request, parts.path, parse_qs(parts.query))
        target = parse_route(request.method, request.path)
        if target is None:
            return azure_error(404, "Resource not found")
        if not authorized(target, request.headers):
            if target.azure:
                return azure_error(401, _AZURE_DENIED)
            return openai_error(401, "You didn't provide an API key.")
        path = target.path
        if request.method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            return models(target)
        if path == "/v1/files" or path.startswith("/v1/files/"):
            with self._lock:
                return self._files.handle(
                    target, request.body, request.headers.get("content-type", "")
                )
        if request.method == "GET" and path.startswith("/v1/images/") and path.endswith(".png"):
            return Generated(raw=tiny_png(random.Random(path)), content_type="image/png")
        if path == "/v1/audio/transcriptions":
            digest = secrets.token_hex(2) if b"seed" not in request.body else "fixed"
            return Generated(
                document={"text": f"Transcribed audio ({len(request.body)} bytes, {digest})."}
            )
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        if not isinstance(payload, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        model = str(payload.get("model") or target.deployment or "")
        dated = self.model_versions.get(model)
        if dated is not None:
            # The answer names the dated model, and its text is that model's own.
            payload = {**payload, "model": dated}
        return answer(
            target,
            payload,
            self._serving_fingerprint(),
            serves_fingerprint=not model.startswith(_MODELS_WITHOUT_FINGERPRINT),
            base_url=self.base_url,
        )

    def _anthropic(self, request: RecordedRequest, path: str) -> Generated:
        headers = request.headers
        if not headers.get("x-api-key") and not headers.get("authorization"):
            return anthropic_error(401, "authentication_error", "x-api-key header is required")
        payload = _json_object(request.body)
        if payload is None:
            return anthropic_error(400, "invalid_request_error", "request body is not JSON")
        if request.method != "POST":
            return anthropic_error(405, "invalid_request_error", f"{request.method} not allowed")
        if path == "/v1/messages/count_tokens":
            return count_tokens(payload)
        if path != "/v1/messages":
            return anthropic_error(404, "not_found_error", f"Not found: {path}")
        return messages(payload)

    def _anthropic_on_vertex(self, request: RecordedRequest, path: str) -> Generated:
        """Claude on Vertex AI: ``…/publishers/anthropic/models/MODEL:rawPredict`` (or
        ``:streamRawPredict``), the model in the path, a Google bearer token."""
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return google_error(401, "Request had invalid authentication credentials.")
        payload = _json_object(request.body)
        if payload is None:
            return google_error(400, "Invalid JSON payload received.")
        model, _, method = path.rpartition("/models/")[2].partition(":")
        if method not in ("rawPredict", "streamRawPredict"):
            return google_error(404, f"Method {method!r} not found.")
        return messages({**payload, "model": model})

    def _gemini(
        self, request: RecordedRequest, path: str, query: dict[str, list[str]]
    ) -> Generated:
        if not request.headers.get("x-goog-api-key") and not query.get("key"):
            return google_error(
                403, "Method doesn't allow unregistered callers. Please use an API Key."
            )
        payload = _json_object(request.body)
        if payload is None:
            return google_error(400, "Invalid JSON payload received.")
        return gemini(path, query, payload)


_STREAM_ERROR = (
    b"event: error\n"
    b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)

# What Anthropic calls each injected status.
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _in_provider_shape(fault: _Fault, path: str) -> Generated:
    """An injected error as the API the request was for shapes its errors."""
    message = fault.document["error"]["message"]
    if path.startswith("/v1/messages"):
        kind = _ANTHROPIC_ERRORS.get(fault.status, "api_error")
        shaped = anthropic_error(fault.status, kind, message)
    elif "/models/" in path and ":" in path:
        shaped = google_error(fault.status, message)
    else:
        shaped = Generated(fault.status, fault.document, indent=4)
    shaped.headers.update(fault.headers)
    return shaped


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


_AZURE_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API "
    "endpoint for your resource."
)


class _Listener(ThreadingHTTPServer):
    # The standard library's backlog of 5 resets bursts of new connections; the real API
    # accepts hundreds at once, and a proxy opening 16 connections at once must not fail.
    request_queue_size = 256

    def server_bind(self) -> None:
        # Like the real API's servers, answer at once: without TCP_NODELAY (inherited by
        # accepted sockets) every response waits ~40 ms for the client's delayed ACK.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the request log instead."""

    def handle(self) -> None:
        # Clients hang up mid-stream on purpose in tests; that is not a server error.
        with contextlib.suppress(ConnectionError):
            super().handle()

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        with self.fake._lock:
            self.fake.requests.append(request)
        hold = self.fake.hold_responses
        if hold is not None:
            hold.wait(timeout=10)
        generated = self.fake._respond(request)
        if generated.events is not None:
            self._send_stream(generated.events)
        elif generated.raw is not None:
            self._send_raw(generated)
        else:
            self._send_json(generated)

    def _common_headers(self, status: int, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("x-request-id", "req_" + secrets.token_hex(16))
        self.send_header("openai-organization", "org-fakeorganization0001")
        self.send_header("openai-project", "proj_fakeproject0001")
        self.send_header("openai-processing-ms", str(secrets.randbelow(900) + 100))
        self.send_header("openai-version", "2020-10-01")
        self.send_header("x-ratelimit-limit-requests", "10000")
        self.send_header("x-ratelimit-remaining-requests", "9999")
        self.send_header(
            "set-cookie", "__cf_bm=" + secrets.token_urlsafe(24) + "; path=/; HttpOnly"
        )
        self.send_header("transfer-encoding", "chunked")

    def _send_json(self, generated: Generated) -> None:
        text = json.dumps(generated.document, indent=generated.indent, ensure_ascii=False) + "\n"
        payload = text.encode()
        self._common_headers(generated.status, "application/json")
        for name, value in generated.headers.items():
            self.send_header(name, value)
        if self.fake.gzip_bodies and "gzip" in self.headers.get("accept-encoding", ""):
            payload = gzip.compress(payload)
            self.send_header("content-encoding", "gzip")
        self.end_headers()
        # Two chunks, as a real server would split a body across frames.
        middle = len(payload) // 2
        for piece in (payload[:middle], payload[middle:]):
            self._chunk(piece)
        self._chunk(b"")

    def _send_raw(self, generated: Generated) -> None:
        assert generated.raw is not None
        self._common_headers(generated.status, generated.content_type)
        self.end_headers()
        self._chunk(generated.raw)
        self._chunk(b"")

    def _send_stream(self, events: list[bytes]) -> None:
        self._common_headers(200, "text/event-stream; charset=utf-8")
        self.end_headers()
        for number, event in enumerate(self._events(events)):
            if self.fake.drop_streams_after is not None and number >= self.fake.drop_streams_after:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if self.fake.fail_streams_after is not None and number >= self.fake.fail_streams_after:
                self._chunk(_STREAM_ERROR)
                break
            self._chunk(event)
        self._chunk(b"")
        with self.fake._lock:
            self.fake.streams_completed += 1

    def _events(self, events: list[bytes]) -> Iterator[bytes]:
        for number, event in enumerate(events):
            yield event
            gate = self.fake.pause_after_first_event
            if number == 0 and gate is not None:
                gate.wait(timeout=10)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
