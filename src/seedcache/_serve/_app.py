"""The proxy as a small ASGI app: every request goes through the cache's own async transport.

Nothing here decides anything: the request is rebuilt for the upstream and handed to the
same transport ``cache.wrap()`` uses, so keys, takes, modes, streaming and the fingerprint
registry behave exactly as for a wrapped client. A take recorded here replays through
``wrap()`` and the other way round.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .._core import Core
from .._errors import CacheMiss, ConfigurationError
from .._outcome import OUTCOME_HEADER
from .._wrap import make_transport, sdk_library, sdk_transport

__all__ = ["ProxyApp", "proxy_base_url"]

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

    def __init__(self, core: Core, upstream: str, transport: Any = None) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                "upstream must be an http(s) URL such as https://api.openai.com/v1, "
                f"not {upstream!r}"
            )
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        # The same HTTP library, limits and socket options as a wrapped SDK client.
        library = sdk_library()
        self._http = importlib.import_module(library)
        self._transport = make_transport(
            core,
            library=library,
            is_async=True,
            next_transport=transport or sdk_transport(is_async=True),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http_request(scope, receive, send)

    def upstream_url(self, path: str, query: bytes) -> str:
        """Where a request for ``path`` goes: ``/v1/x`` and ``/x`` both map under the prefix."""
        if not (path == self._prefix or path.startswith(self._prefix + "/")):
            path = self._prefix + path
        url = self._origin + path
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
        body = await _read_body(receive)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        url = self.upstream_url(scope["path"], scope.get("query_string", b""))
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
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name.encode("latin-1"), value.encode("latin-1"))
                        for name, value in response.headers.multi_items()
                        if name.lower() not in _HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
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
