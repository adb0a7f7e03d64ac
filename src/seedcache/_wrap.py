"""Putting a cache transport under an openai client, for either HTTP library family."""

from __future__ import annotations

import importlib
import socket
from typing import Any, TypeVar

from ._core import Core
from ._errors import ConfigurationError

__all__ = ["NO_DELAY", "make_transport", "sdk_library", "sdk_transport", "wrap_client"]

# Without TCP_NODELAY, a request written as headers then body on a kept-alive connection
# waits for the server's delayed ACK: about 40 ms per call, on loopback as on the internet.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

ClientT = TypeVar("ClientT")

_LIBRARIES = ("httpx2", "httpx")


def make_transport(core: Core, *, library: str, is_async: bool, next_transport: Any) -> Any:
    """A cache transport of ``library`` (``httpx2`` or ``httpx``) over ``next_transport``."""
    if library not in _LIBRARIES:
        raise ConfigurationError(f"unknown HTTP library {library!r}; use 'httpx2' or 'httpx'")
    if library == "httpx":
        try:
            from ._adapters import _httpx as adapter
        except ImportError:
            raise ConfigurationError(
                "the legacy httpx family needs httpx, which is not installed. "
                "Install it with `pip install seedcache[httpx]`"
            ) from None
    else:
        from ._adapters import _httpx2 as adapter  # type: ignore[no-redef]
    cls = adapter.AsyncCacheTransport if is_async else adapter.CacheTransport
    return cls(core, next_transport)


def wrap_client(core: Core, client: ClientT, transport: Any) -> tuple[ClientT, Any]:
    """A copy of ``client`` whose HTTP goes through ``core``, and the HTTP client it uses.

    The original client is untouched.
    """
    import openai

    is_async = isinstance(client, openai.AsyncOpenAI)
    if not is_async and not isinstance(client, openai.OpenAI):
        raise ConfigurationError(
            f"wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, not "
            f"{type(client).__name__}; for other httpx clients use cache.transport()"
        )
    library = sdk_library()
    lib = importlib.import_module(library)
    if transport is None:
        # Keep the SDK's own connection limits, as its default client would.
        transport_cls = lib.AsyncHTTPTransport if is_async else lib.HTTPTransport
        transport = transport_cls(limits=openai.DEFAULT_CONNECTION_LIMITS, socket_options=NO_DELAY)
    cache_transport = make_transport(
        core, library=library, is_async=is_async, next_transport=transport
    )
    # DefaultHttpxClient keeps the SDK's timeouts and redirect settings.
    http_client_cls = openai.DefaultAsyncHttpxClient if is_async else openai.DefaultHttpxClient
    http_client = http_client_cls(transport=cache_transport)
    wrapped: ClientT = client.with_options(http_client=http_client)  # type: ignore[attr-defined]
    return wrapped, http_client


def sdk_transport(*, is_async: bool, keep_alive: bool = True) -> Any:
    """A transport of the installed SDK's HTTP library with the SDK's connection limits.

    ``keep_alive=False`` closes every connection after its response: for async clients
    whose event loop ends before anyone could close them (a test's ``asyncio.run``).
    """
    import openai

    lib = importlib.import_module(sdk_library())
    limits = openai.DEFAULT_CONNECTION_LIMITS
    if not keep_alive:
        limits = lib.Limits(max_connections=limits.max_connections, max_keepalive_connections=0)
    transport_cls = lib.AsyncHTTPTransport if is_async else lib.HTTPTransport
    return transport_cls(limits=limits, socket_options=NO_DELAY)


def sdk_library() -> str:
    """``httpx2`` for openai 3.x and later, ``httpx`` for 1.x and 2.x."""
    import openai

    roots = {cls.__module__.split(".")[0] for cls in openai.DefaultHttpxClient.__mro__}
    return "httpx2" if "httpx2" in roots else "httpx"
