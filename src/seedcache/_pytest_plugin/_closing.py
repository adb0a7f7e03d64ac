"""Closing a test's cache, whose async clients may belong to an event loop that is gone."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._cache import SeedCache

__all__ = ["close_cache"]


def close_cache(cache: SeedCache) -> None:
    """Close sync and async clients alike; the event loop that made them may be gone."""
    if not cache._has_async_clients():
        cache.close()  # the usual case, and a thread plus an event loop less per test
        return
    errors: list[BaseException] = []

    def close_async() -> None:
        try:
            asyncio.run(cache.aclose())
        except Exception as exc:  # a loop-bound connection from a closed loop
            errors.append(exc)

    # A thread of its own: the test's event loop may still be running in this one.
    thread = threading.Thread(target=close_async)
    thread.start()
    thread.join()
    if errors:
        cache.close()
