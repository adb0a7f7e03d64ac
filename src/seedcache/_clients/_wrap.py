"""Putting a cache transport under an SDK client (OpenAI, Anthropic, Gemini), for either
HTTP library family.

``wrap(client)`` keeps what the user configured on the client's HTTP client: its
transport (proxies, mounts, ``verify``/``cert``, limits) answers the misses, and its
headers, params, cookies, timeout, auth, redirects and event hooks are carried to the
HTTP client the copy uses, so they apply to replays too. Nothing new is built upstream.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, TypeVar

from .._errors import ConfigurationError
from .._request._core import Core
from ._upstream import Borrowed, Upstreams

__all__ = ["client_library", "make_transport", "sdk_library", "wrap_client"]

ClientT = TypeVar("ClientT")

_LIBRARIES = ("httpx2", "httpx")


def make_transport(
    core: Core, *, library: str, is_async: bool, next_transport: Any, close_next: bool = True
) -> Any:
    """A cache transport of ``library`` (``httpx2`` or ``httpx``) over ``next_transport``.

    ``close_next=False`` leaves the next transport open when the cache transport closes:
    it is shared, or belongs to the user.
    """
    if library not in _LIBRARIES:
        raise ConfigurationError(f"unknown HTTP library {library!r}; use 'httpx2' or 'httpx'")
    if library == "httpx":
        try:
            from . import _httpx as adapter
        except ImportError:
            raise ConfigurationError(
                "the legacy httpx family needs httpx, which is not installed. "
                "Install it with `pip install seedcache[httpx]`"
            ) from None
    else:
        from . import _httpx2 as adapter  # type: ignore[no-redef]
    cls = adapter.AsyncCacheTransport if is_async else adapter.CacheTransport
    return cls(core, next_transport, close_next=close_next)


def wrap_client(
    core: Core, client: ClientT, transport: Any, upstreams: Upstreams
) -> tuple[ClientT, list[tuple[Any, bool]]]:
    """A copy of ``client`` whose HTTP goes through ``core``, and the HTTP clients it
    uses, each with whether it is async (closing it then needs an event loop).

    The original client is untouched. Misses go to ``transport`` when given (then owned:
    closed with the copy), else through the client's own HTTP client.
    """
    sdk = _sdk_of(client)
    if sdk == "google":
        if transport is not None:
            raise ConfigurationError(
                "wrap(transport=...) is not available for google-genai clients: misses go "
                "through the client's own HTTP clients (set them in HttpOptions)"
            )
        return _wrap_genai(core, client, upstreams)
    if sdk is None:
        raise ConfigurationError(
            f"wrap() takes an OpenAI, Anthropic (Bedrock, Vertex) or google.genai client, "
            f"sync or async, not {type(client).__name__}; for other httpx clients use "
            "cache.transport()"
        )
    # The Stainless-built SDKs (openai, anthropic) share their client design: an HTTP
    # client in `_client`, `with_options(http_client=...)` to copy, an async `close`.
    is_async = inspect.iscoroutinefunction(getattr(type(client), "close", None))
    # The SDK keeps its HTTP client in `_client` and offers no public way to read it;
    # without it, wrap() would silently drop the user's proxies, CA bundle and hooks.
    user_http = getattr(client, "_client", None)
    library = client_library(user_http) if user_http is not None else sdk_library(sdk)
    if transport is not None:
        next_transport, owned = transport, True
    elif user_http is not None and not user_http.is_closed:
        next_transport, owned = Borrowed(user_http), False
    else:
        next_transport, owned = upstreams.get(library, is_async=is_async), False
    cache_transport = make_transport(
        core, library=library, is_async=is_async, next_transport=next_transport, close_next=owned
    )
    http_client = http_client_class(library, is_async=is_async, sdk=sdk)(
        transport=cache_transport, **_client_settings(user_http)
    )
    wrapped: ClientT = client.with_options(http_client=http_client)  # type: ignore[attr-defined]
    return wrapped, [(http_client, is_async)]


def _wrap_genai(
    core: Core, client: ClientT, upstreams: Upstreams
) -> tuple[ClientT, list[tuple[Any, bool]]]:
    """A new ``google.genai.Client`` like ``client`` whose sync and async HTTP clients
    (``client.aio``) go through ``core``. Given httpx clients, the SDK never switches its
    async side to aiohttp, so recordings are the same whether aiohttp is installed. Misses
    of the sync side go through the user's own HTTP client; those of the async side
    through the cache's, without keep-alive (see below)."""
    from google import genai

    api = client._api_client  # type: ignore[attr-defined]  # no public accessor
    made: dict[bool, Any] = {}
    sync_user = getattr(api, "_httpx_client", None)
    for is_async, user_http in (
        (False, sync_user),
        (True, getattr(api, "_async_httpx_client", None)),
    ):
        known = user_http if user_http is not None else sync_user
        library = client_library(known) if known is not None else sdk_library("openai")
        if is_async:
            # genai makes its own async client anew for each event loop; one given in
            # HttpOptions it keeps, so a pooled connection of a loop that ended would
            # break the next `asyncio.run`. Without keep-alive none outlives its loop.
            next_transport: Any = upstreams.get(library, is_async=True, keep_alive=False)
        elif user_http is not None and not user_http.is_closed:
            next_transport = Borrowed(user_http)
        else:
            next_transport = upstreams.get(library, is_async=False)
        cache_transport = make_transport(
            core,
            library=library,
            is_async=is_async,
            next_transport=next_transport,
            close_next=False,
        )
        lib = importlib.import_module(library)
        cls = lib.AsyncClient if is_async else lib.Client
        made[is_async] = cls(transport=cache_transport, **_client_settings(user_http))
    options = api._http_options.model_copy(
        update={"httpx_client": made[False], "httpx_async_client": made[True]}
    )
    wrapped: ClientT = genai.Client(  # type: ignore[assignment]
        vertexai=api.vertexai,
        api_key=api.api_key,
        credentials=api._credentials,
        project=api.project,
        location=api.location,
        http_options=options,
    )
    return wrapped, [(made[False], False), (made[True], True)]


def _sdk_of(client: Any) -> str | None:
    """``openai``, ``anthropic`` or ``google`` (genai): the SDK ``client`` comes from."""
    root = type(client).__module__.split(".")[0]
    if root in ("openai", "anthropic") and hasattr(client, "with_options"):
        return root
    if type(client).__module__.startswith("google.genai") and hasattr(client, "_api_client"):
        return "google"
    return None


def http_client_class(library: str, *, is_async: bool, sdk: str = "openai") -> Any:
    """The HTTP client class to build for ``library``: the SDK's defaults where it has them."""
    module = importlib.import_module(sdk)
    if library == sdk_library(sdk):
        return module.DefaultAsyncHttpxClient if is_async else module.DefaultHttpxClient
    lib = importlib.import_module(library)
    return lib.AsyncClient if is_async else lib.Client


def _client_settings(http_client: Any) -> dict[str, Any]:
    """What a user set on an HTTP client above the transport, to carry to a new one."""
    if http_client is None:
        return {}
    return {
        "headers": http_client.headers,
        "params": http_client.params,
        "cookies": http_client.cookies,
        "timeout": http_client.timeout,
        "auth": http_client.auth,
        "event_hooks": http_client.event_hooks,
        "follow_redirects": http_client.follow_redirects,
        "max_redirects": http_client.max_redirects,
        "trust_env": http_client.trust_env,
    }


def client_library(http_client: Any) -> str:
    """``httpx2`` or ``httpx``: the family ``http_client`` belongs to."""
    return _library_of(http_client if isinstance(http_client, type) else type(http_client))


@functools.cache
def _library_of(kind: type) -> str:
    """:func:`client_library` by class: every test's transport asks about the same one."""
    roots = {cls.__module__.split(".")[0] for cls in kind.__mro__}
    for library in _LIBRARIES:
        if library in roots:
            return library
    raise ConfigurationError(
        f"the client's HTTP client is a {kind.__name__}, neither httpx2 nor httpx"
    )


def sdk_library(sdk: str = "openai") -> str:
    """The HTTP library ``sdk`` builds on: ``httpx2`` for openai 3.x and anthropic 2.x,
    ``httpx`` before."""
    return client_library(importlib.import_module(sdk).DefaultHttpxClient)
