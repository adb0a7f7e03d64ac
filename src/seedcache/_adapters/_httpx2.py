"""Transports for httpx2 clients (the openai SDK from 3.0 on)."""

from __future__ import annotations

from typing import Any

import httpx2

from .._core import Core
from .._upstream import AsyncLazy, Lazy
from ._shared import (
    AsyncReplayBody,
    AsyncTeeBody,
    SyncReplayBody,
    SyncTeeBody,
    handle_async,
    handle_sync,
)

__all__ = ["AsyncCacheTransport", "CacheTransport"]


class _SyncReplay(SyncReplayBody, httpx2.SyncByteStream):
    pass


class _AsyncReplay(AsyncReplayBody, httpx2.AsyncByteStream):
    pass


class _SyncTee(SyncTeeBody, httpx2.SyncByteStream):
    pass


class _AsyncTee(AsyncTeeBody, httpx2.AsyncByteStream):
    pass


def _build(
    status: int, headers: list[tuple[str, str]], stream: Any, extensions: dict[str, Any]
) -> httpx2.Response:
    return httpx2.Response(status, headers=headers, stream=stream, extensions=extensions)


class CacheTransport(httpx2.BaseTransport):
    """An httpx2 transport that replays recorded responses and records the others.

    ``next_transport`` does the real HTTP (default: a ``httpx2.HTTPTransport`` built on the
    first request that must go live). ``close_next=False`` leaves it open on close.
    """

    def __init__(
        self,
        core: Core,
        next_transport: httpx2.BaseTransport | None = None,
        *,
        close_next: bool = True,
    ) -> None:
        self.core = core
        self._next: Any = next_transport or Lazy(httpx2.HTTPTransport)
        self._close_next = close_next

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Replay or record ``request``."""
        response: httpx2.Response = handle_sync(
            self.core, request, self._next.handle_request, _build, _SyncTee, _SyncReplay
        )
        return response

    def close(self) -> None:
        """Close the next transport, if it is this transport's to close."""
        if self._close_next:
            self._next.close()


class AsyncCacheTransport(httpx2.AsyncBaseTransport):
    """The async twin of :class:`CacheTransport`."""

    def __init__(
        self,
        core: Core,
        next_transport: httpx2.AsyncBaseTransport | None = None,
        *,
        close_next: bool = True,
    ) -> None:
        self.core = core
        self._next: Any = next_transport or AsyncLazy(httpx2.AsyncHTTPTransport)
        self._close_next = close_next

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Replay or record ``request``."""
        response: httpx2.Response = await handle_async(
            self.core, request, self._next.handle_async_request, _build, _AsyncTee, _AsyncReplay
        )
        return response

    async def aclose(self) -> None:
        """Close the next transport, if it is this transport's to close."""
        if self._close_next:
            await self._next.aclose()
