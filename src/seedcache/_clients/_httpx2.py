"""Transports for httpx2 clients (the openai SDK from 3.0 on)."""

from __future__ import annotations

from typing import Any

import httpx2

from ._transport import (
    AsyncCacheTransportBase,
    AsyncReplayBody,
    AsyncTeeBody,
    CacheTransportBase,
    SyncReplayBody,
    SyncTeeBody,
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


class CacheTransport(CacheTransportBase, httpx2.BaseTransport):
    """A httpx2 transport that replays recorded responses and records the others.

    ``next_transport`` does the real HTTP (default: a ``httpx2.HTTPTransport`` built on the
    first request that must go live).
    """

    build = staticmethod(_build)
    tee = _SyncTee
    replay = _SyncReplay
    default_next = httpx2.HTTPTransport


class AsyncCacheTransport(AsyncCacheTransportBase, httpx2.AsyncBaseTransport):
    """The async twin of :class:`CacheTransport`."""

    build = staticmethod(_build)
    tee = _AsyncTee
    replay = _AsyncReplay
    default_next = httpx2.AsyncHTTPTransport
