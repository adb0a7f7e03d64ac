"""Running the proxy on uvicorn: in the foreground (the CLI) or on a background thread (tests).

uvicorn because it streams ASGI responses chunk by chunk with backpressure, keeps
connections alive, shuts down gracefully on SIGINT/SIGTERM (in-flight responses finish,
so their takes are stored), and installs without compiled parts. The socket is bound
here, before uvicorn starts, so the URL (with a port picked by the system) is known
at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from .._errors import ConfigurationError, ExposedProxyWarning
from .._request._core import Core
from ._app import DEFAULT_MAX_BODY_BYTES, ProxyApp, is_loopback, proxy_base_url

__all__ = ["DEFAULT_HEADER_TIMEOUT", "DEFAULT_MAX_BODY_BYTES", "Proxy", "is_loopback"]

DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a new connection has to send a whole request head: a client that opens
connections and sends nothing (or a byte at a time) must not hold them open."""


_START_TIMEOUT_SECONDS = 15.0
# How long a shutdown waits for responses still streaming before it cuts them.
_GRACEFUL_SECONDS = 30


def _headers_in_time(seconds: float) -> Any:
    """uvicorn's h11 protocol, closing a connection that does not send its request in time
    (uvicorn has no such timeout of its own): each request head within ``seconds`` of
    the connection opening or the last response, and a body that never pauses longer than
    :data:`_BODY_PAUSE_SECONDS`."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class RequestsInTime(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._due = self.loop.call_later(seconds, self._late)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                # A head is in; the body may take long, but must not stop for long.
                self._due.cancel()
                self._due = self.loop.call_later(_BODY_PAUSE_SECONDS, self._late)
            elif state is not h11.IDLE:
                self._due.cancel()  # the whole request is in
            # Still in a head: the deadline set when it was due stands, however the bytes
            # trickle in.

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._due.cancel()
            self._due = self.loop.call_later(seconds, self._late)

        def connection_lost(self, exc: Exception | None) -> None:
            self._due.cancel()
            super().connection_lost(exc)

        def _late(self) -> None:
            waiting = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return RequestsInTime


# A request body that stops for this long is abandoned (uploads stream steadily).
_BODY_PAUSE_SECONDS = 60.0


class Proxy:
    """The proxy, bound to its socket: :meth:`run` serves here, :meth:`background` elsewhere."""

    def __init__(
        self,
        core: Core,
        *,
        upstream: str,
        host: str = "127.0.0.1",
        port: int = 0,
        transport: Any = None,
        allow_hosts: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    ) -> None:
        try:
            import uvicorn
        except ImportError:
            raise ConfigurationError(
                "the proxy needs uvicorn: install it with `pip install 'seedcache[serve]'`"
            ) from None
        allowed = frozenset(h.lower() for h in allow_hosts)
        if not is_loopback(host):
            warnings.warn(
                f"the seedcache proxy listens on {host}: anyone who can reach it can spend "
                "the API keys its clients send and read what the cache recorded",
                ExposedProxyWarning,
                stacklevel=3,
            )
        # On loopback, only loopback names (and those allowed) may be in the Host header;
        # elsewhere the user chose who may reach it, and the names are theirs to list.
        loopback = is_loopback(host)
        self._app = ProxyApp(
            core,
            upstream,
            transport,
            allowed_hosts=allowed if loopback or allowed else None,
            max_body_bytes=max_body_bytes,
        )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: uvicorn writes the head and the body separately,
        # and without it the body waits for the client's delayed ACK (~40 ms per response).
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._socket.listen(128)
        bound_port = self._socket.getsockname()[1]
        self.base_url = proxy_base_url(host, bound_port, upstream)
        """The URL to give clients (``OPENAI_BASE_URL``)."""
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            lifespan="on",
            # h11, not httptools: httptools turns an absolute-form target
            # (`GET http://elsewhere/v1/x`) into its path before the app sees it, and the
            # proxy refuses anything but origin-form requests.
            http=_headers_in_time(header_timeout),
            timeout_graceful_shutdown=_GRACEFUL_SECONDS,
            # Live responses carry the upstream's own; replays are not "from" anywhere.
            server_header=False,
            date_header=False,
        )
        self._server: Any = uvicorn.Server(config)

    def close(self) -> None:
        """Release the socket of a proxy that will not be run."""
        self._socket.close()

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM; in-flight responses finish first."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()

    @contextlib.contextmanager
    def background(self) -> Iterator[str]:
        """Serve on a daemon thread; yields the base URL; stops (gracefully) on exit."""
        thread = threading.Thread(target=self.run, name="seedcache-proxy", daemon=True)
        thread.start()
        waited = 0.0
        while not self._server.started:
            if not thread.is_alive():
                raise ConfigurationError("the proxy failed to start; see the log above")
            if waited > _START_TIMEOUT_SECONDS:
                raise ConfigurationError("the proxy did not start within 15 seconds")
            threading.Event().wait(0.01)
            waited += 0.01
        try:
            yield self.base_url
        finally:
            self._server.should_exit = True
            thread.join()
