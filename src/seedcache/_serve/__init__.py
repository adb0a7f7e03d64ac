"""The record/replay proxy (``seedcache serve``): optional, needs ``seedcache[serve]``."""

from __future__ import annotations

from ._server import Proxy, is_loopback

__all__ = ["Proxy", "is_loopback"]
