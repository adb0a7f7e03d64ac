"""Where live requests go: the user's own HTTP client, or a transport made on first use.

Building a transport is not free: each makes an SSL context, and loading the system's CA
certificates takes about 30 ms. A replayed test suite never goes upstream, so nothing
here is built until a request must go live.

- :class:`Borrowed` sends through the transport of a client the user configured (proxies,
  mounts, ``verify``/``cert``, limits, HTTP/2): ``wrap()`` keeps all of it. It is not
  seedcache's to close.
- :class:`Lazy` / :class:`AsyncLazy` build the SDK's default transport on the first live
  request. :class:`Upstreams` keeps one of each kind per cache, shared by every client
  the cache builds, and closes them with the cache.
"""

from __future__ import annotations

import importlib
import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["NO_DELAY", "AsyncLazy", "Borrowed", "Lazy", "Upstreams", "sdk_transport"]

# Without TCP_NODELAY, a request written as headers then body on a kept-alive connection
# waits for the server's delayed ACK: about 40 ms per call, on loopback as on the internet.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def sdk_transport(library: str, *, is_async: bool, keep_alive: bool = True) -> Any:
    """A transport of ``library`` with the SDK's connection limits and TCP_NODELAY.

    ``keep_alive=False`` closes every connection after its response: for async clients
    whose event loop ends before anyone could close them (a test's ``asyncio.run``).
    """
    import openai

    lib = importlib.import_module(library)
    limits = openai.DEFAULT_CONNECTION_LIMITS
    if not keep_alive:
        limits = lib.Limits(max_connections=limits.max_connections, max_keepalive_connections=0)
    transport_cls = lib.AsyncHTTPTransport if is_async else lib.HTTPTransport
    return transport_cls(limits=limits, socket_options=NO_DELAY)


class Lazy:
    """A sync transport built by ``factory`` on the first request, then reused."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._made: Any = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the transport was built (something went live)."""
        return self._made is not None

    def _transport(self) -> Any:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._factory()
        return self._made

    def handle_request(self, request: Any) -> Any:
        """Send ``request`` through the transport, building it first if need be."""
        return self._transport().handle_request(request)

    def close(self) -> None:
        """Close the transport if it was built."""
        if self._made is not None:
            self._made.close()


class AsyncLazy(Lazy):
    """The async twin of :class:`Lazy`."""

    async def handle_async_request(self, request: Any) -> Any:
        """Send ``request`` through the transport, building it first if need be."""
        return await self._transport().handle_async_request(request)

    async def aclose(self) -> None:
        """Close the transport if it was built."""
        if self._made is not None:
            await self._made.aclose()


class Borrowed:
    """Sends through the transport a user's HTTP client would pick for the URL.

    httpx offers no public way to reach a client's transports; ``_transport_for_url`` is
    the one it uses itself to honour mounts and proxies, unchanged since httpx 0.18 and
    in httpx2. The client is held so that it lives (and stays open) while wrapped
    clients use it; closing is its owner's business.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        pick = getattr(client, "_transport_for_url", None)
        fixed = getattr(client, "_transport", None)
        if pick is None and fixed is None:
            raise TypeError(f"cannot find the transport of {type(client).__name__}")
        self._pick: Callable[[Any], Any] = pick if pick is not None else (lambda url: fixed)

    def handle_request(self, request: Any) -> Any:
        """Send ``request`` the way the user's client would."""
        return self._pick(request.url).handle_request(request)

    async def handle_async_request(self, request: Any) -> Any:
        """Send ``request`` the way the user's async client would."""
        return await self._pick(request.url).handle_async_request(request)

    def close(self) -> None:
        """Nothing: the user's client is not seedcache's to close."""

    async def aclose(self) -> None:
        """Nothing: the user's client is not seedcache's to close."""


class Upstreams:
    """One lazily built transport per kind (library, sync or async, keep-alive) for a cache."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, bool, bool], Lazy] = {}
        self._lock = threading.Lock()

    def get(self, library: str, *, is_async: bool, keep_alive: bool = True) -> Lazy:
        """The shared transport of that kind (not built until used)."""
        kind = (library, is_async, keep_alive)
        with self._lock:
            found = self._made.get(kind)
            if found is None:
                cls = AsyncLazy if is_async else Lazy
                found = self._made[kind] = cls(
                    lambda: sdk_transport(library, is_async=is_async, keep_alive=keep_alive)
                )
        return found

    @property
    def built(self) -> int:
        """How many transports were built so far."""
        return sum(lazy.built for lazy in self._made.values())

    def close(self) -> list[AsyncLazy]:
        """Close the sync transports; return the async ones, which need :meth:`aclose`."""
        pending = []
        for lazy in self._made.values():
            if isinstance(lazy, AsyncLazy):
                if lazy.built:
                    pending.append(lazy)
            else:
                lazy.close()
        return pending

    async def aclose(self) -> None:
        """Close every transport that was built."""
        for lazy in self.close():
            await lazy.aclose()
