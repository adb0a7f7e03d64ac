"""Transports for legacy httpx clients (openai 1.x and 2.x, other httpx-based SDKs)."""

from __future__ import annotations

from typing import Any

import httpx

from ._transport import (
    AsyncCacheTransportBase,
    AsyncReplayBody,
    AsyncTeeBody,
    CacheTransportBase,
    SyncReplayBody,
    SyncTeeBody,
)

__all__ = ["AsyncCacheTransport", "CacheTransport"]


class _SyncReplay(SyncReplayBody, httpx.SyncByteStream):
    pass


class _AsyncReplay(AsyncReplayBody, httpx.AsyncByteStream):
    pass


class _SyncTee(SyncTeeBody, httpx.SyncByteStream):
    pass


class _AsyncTee(AsyncTeeBody, httpx.AsyncByteStream):
    pass


def _build(
    status: int, headers: list[tuple[str, str]], stream: Any, extensions: dict[str, Any]
) -> httpx.Response:
    return httpx.Response(status, headers=headers, stream=stream, extensions=extensions)


class CacheTransport(CacheTransportBase, httpx.BaseTransport):
    """A httpx transport that replays recorded responses and records the others.

    ``next_transport`` does the real HTTP (default: a ``httpx.HTTPTransport`` built on the
    first request that must go live).
    """

    build = staticmethod(_build)
    tee = _SyncTee
    replay = _SyncReplay
    default_next = httpx.HTTPTransport


class AsyncCacheTransport(AsyncCacheTransportBase, httpx.AsyncBaseTransport):
    """The async twin of :class:`CacheTransport`."""

    build = staticmethod(_build)
    tee = _AsyncTee
    replay = _AsyncReplay
    default_next = httpx.AsyncHTTPTransport
