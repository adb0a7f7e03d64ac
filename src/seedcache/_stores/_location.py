"""Telling a server URL from a path, and showing it without its credentials."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import ConfigurationError

__all__ = ["REDIS_SCHEMES", "is_redis_location", "redact", "scrub_credentials", "server_name"]

REDIS_SCHEMES = ("redis", "rediss", "unix")


def is_redis_location(location: str) -> bool:
    """Whether ``location`` names a Redis server rather than a directory or file."""
    return location.split("://", 1)[0].lower() in REDIS_SCHEMES and "://" in location


def redact(url: str) -> str:
    """``url`` without user name or password (in the authority or the query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{_port(url)}" if _port(url) else "")
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _SECRET]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def server_name(url: str) -> str:
    """``host:port`` (or the socket's path) for messages."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{_port(url) or 6379}"


_SECRET = frozenset({"password", "username", "user"})


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        raise ConfigurationError(f"{scrub_credentials(url)}: the port is not a number") from None


def scrub_credentials(text: str) -> str:
    """``text`` with anything like URL credentials (``//user:pass@``) taken out."""
    return re.sub(r"//[^/@\s]*@", "//", text)
