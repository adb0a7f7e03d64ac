"""The proxy as a small ASGI app: every request goes through the cache's own async transport.

Nothing here decides anything: the request is rebuilt for the upstream and handed to the
same transport ``cache.wrap()`` uses, so keys, takes, modes, streaming and the fingerprint
registry behave exactly as for a wrapped client. A take recorded here replays through
``wrap()`` and the other way round.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .._clients._transport import AsyncReplayBody
from .._clients._upstream import AsyncLazy, sdk_transport
from .._clients._wrap import make_transport, sdk_library
from .._errors import CacheMiss, ConfigurationError
from .._request._core import Core
from .._request._outcome import OUTCOME_HEADER

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ProxyApp", "proxy_base_url"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""The largest request body the proxy takes (the API's own upload limits are about this:
audio files of 25 MB; larger files go through the Uploads API in 64 MB parts)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Connection-level headers describe one hop, not the request; httpx sets its own.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

_log = logging.getLogger("seedcache.serve")


def proxy_base_url(host: str, port: int, upstream: str) -> str:
    """The base URL clients use: the proxy's address with the upstream's path (``/v1``)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{urlsplit(upstream).path.rstrip('/')}"


class ProxyApp:
    """An ASGI application that answers OpenAI API requests from the cache or the upstream."""

    def __init__(
        self,
        core: Core,
        upstream: str,
        transport: Any = None,
        *,
        allowed_hosts: frozenset[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._max_body = max_body_bytes
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = upstream if "@" not in upstream else "that URL"
            raise ConfigurationError(
                f"upstream must be an http(s) URL such as https://api.openai.com/v1, not {shown}"
            )
        if parts.username is not None or parts.password is not None:
            raise ConfigurationError(
                "the upstream URL holds credentials (user:password@); they would not be sent "
                "and must not be stored. Give the URL without them: clients send their own "
                "Authorization, which the proxy forwards"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError("the upstream URL must have no query or fragment")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self._allowed_hosts = allowed_hosts
        """Host header names accepted (None: any); a loopback proxy accepts only loopback."""
        # The same HTTP library, limits and socket options as a wrapped SDK client.
        library = sdk_library()
        self._http = importlib.import_module(library)
        # Built on the first miss, not now: a replaying proxy never goes upstream.
        upstream_transport = transport or AsyncLazy(lambda: sdk_transport(library, is_async=True))
        self._transport = make_transport(
            core, library=library, is_async=True, next_transport=upstream_transport
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http_request(scope, receive, send)

    def upstream_url(self, path: str, query: bytes, raw_path: bytes | None = None) -> str | None:
        """Where a request for ``path`` goes, or None when the target is not acceptable.

        Only origin-form targets (``/v1/x``; ``/x`` maps under the upstream's path) with
        no ``.`` or ``..`` segment, no control character, ``\\`` or ``;``: anything else
        could reach another host or a path outside the API (``@host/x``,
        ``/v1/%2e%2e/admin``, ``/v1/..\\admin`` and ``/v1/..;/admin`` for servers that
        read those as separators). The URL is the upstream's origin plus the path as
        received, percent-encoding kept.
        """
        if not path.startswith("/") or path.startswith("//"):
            return None
        if any(ord(c) < 0x20 or ord(c) == 0x7F or c in "\\;" for c in path):
            return None
        if {".", ".."} & set(path.split("/")):
            return None
        sent = raw_path.decode("latin-1") if raw_path else path
        if not sent.startswith("/") or sent.startswith("//") or "#" in sent:
            return None
        if not (path == self._prefix or path.startswith(self._prefix + "/")):
            sent = self._prefix + sent
        url = self._origin + sent
        return f"{url}?{query.decode('latin-1')}" if query else url

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._transport.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_error(send, refusal[0], refusal[1], "seedcache_bad_request")
            return
        url = self.upstream_url(
            scope["path"], scope.get("query_string", b""), scope.get("raw_path")
        )
        if url is None:
            message = (
                "the request target must be a path under the upstream's "
                f"({self._prefix or '/'}), with no '.' or '..' segment, '\\' or ';'"
            )
            await _send_error(send, 400, message, "seedcache_bad_request")
            return
        body = await _read_body(receive, scope["headers"], self._max_body)
        if body is None:
            message = (
                f"the request body is over the proxy's limit of {self._max_body} bytes; "
                "start it with a larger --max-body if the API takes it"
            )
            await _send_error(send, 413, message, "seedcache_bad_request")
            return
        if body and not _is_api_body(scope["headers"]):
            message = (
                "the request body must be application/json (or multipart/form-data for "
                "uploads), as the OpenAI API takes it"
            )
            await _send_error(send, 415, message, "seedcache_bad_request")
            return
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        request = self._http.Request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self._transport.handle_async_request(request)
        except CacheMiss as miss:
            await _send_error(send, 404, str(miss), "seedcache_miss", outcome="miss")
            return
        except self._http.TransportError as exc:
            message = f"seedcache could not reach the upstream {self._origin}: {exc!r}"
            await _send_error(send, 502, message, "seedcache_upstream_error")
            return
        headers_out = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.multi_items()
            if name.lower() not in _HOP_BY_HOP
        ]
        whole = _replayed_whole(response, scope["method"])
        if whole is not None:
            # A replay is in memory: one message with its length, rather than a chunked
            # body (more writes, more for the client to reassemble).
            headers_out.append((b"content-length", str(len(whole)).encode()))
            start = {"type": "http.response.start", "status": response.status_code}
            await send({**start, "headers": headers_out})
            await send({"type": "http.response.body", "body": whole, "more_body": False})
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": headers_out,
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why the request must not be served, as (status, message); None when it may be."""
        if self._allowed_hosts is None:
            return None
        host = _header(scope, b"host")
        name = _host_name(host) if host is not None else None
        if name is None or not (is_loopback(name) or name in self._allowed_hosts):
            return (
                400,
                f"the Host header {host!r} is not allowed: a proxy on loopback answers "
                "requests for localhost, 127.0.0.1 and [::1] only (another name is how a "
                "web page would reach it through DNS rebinding). Allow a name with "
                "`seedcache serve --allow-host NAME`",
            )
        return None


def _replayed_whole(response: Any, method: str) -> bytes | None:
    """A replayed response's whole body, when it may be sent with a Content-Length; None
    for a live one (streamed as it arrives) and for answers that carry no body."""
    stream = response.stream
    if not isinstance(stream, AsyncReplayBody) or method == "HEAD":
        return None
    if response.status_code < 200 or response.status_code in (204, 304):
        return None
    return stream.whole()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name.lower() == wanted:
            return str(value.decode("latin-1"))
    return None


def _host_name(host: str) -> str | None:
    """The name in a Host header (``[::1]:8080`` → ``::1``), lower-cased; None if malformed."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest[1:].isdigit()) or (rest and rest[0] != ":"):
            return None
        return name
    name, _, port = host.partition(":")
    if port and not port.isdigit():
        return None
    return name or None


def _is_api_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media in (b"application/json", b"multipart/form-data") or media.endswith(
                b"+json"
            )
    return False


async def _read_body(
    receive: Receive, headers: list[tuple[bytes, bytes]], limit: int
) -> bytes | None:
    """The request body; None when it is (or says it will be) over ``limit`` bytes, which
    is then not read into memory."""
    declared = _header({"headers": headers}, b"content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _send_error(
    send: Send, status: int, message: str, code: str, *, outcome: str | None = None
) -> None:
    """An error in the OpenAI shape, so SDKs show the message to the user."""
    document = {"error": {"message": message, "type": code, "param": None, "code": code}}
    body = json.dumps(document, indent=2).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if outcome is not None:
        headers.append((OUTCOME_HEADER.encode(), outcome.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
