"""Test helpers: a fake OpenAI server on loopback that behaves like the real API.

>>> from seedcache.testing import FakeOpenAI
>>> with FakeOpenAI() as server:
...     server.base_url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

from ._server import FakeOpenAI, RecordedRequest

__all__ = ["FakeOpenAI", "RecordedRequest"]
