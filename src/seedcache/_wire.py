"""Plain HTTP data shared by every adapter, and the rules for what may be stored.

Adapters turn their library's request into a :class:`CapturedRequest`; everything past
the adapter works on these plain values, so the core never imports an HTTP library.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "CapturedRequest",
    "is_secret_header",
    "is_secret_param",
    "keep_response_headers",
    "strip_secret_query",
]

Headers = tuple[tuple[str, str], ...]

# Request headers that carry credentials or identify an account. They are never part of
# a key and never stored; matching on them is refused.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",  # Azure OpenAI
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
        "x-api-key",
    }
)

# Query parameters that carry credentials: Azure's api-key, API Management's
# subscription-key, Azure Functions' code, SAS signatures, OAuth tokens. Compared
# lower-cased with "-" read as "_"; any name ending in one of the suffixes counts too.
SECRET_QUERY_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "code",
        "sig",
        "signature",
        "token",
        "access_token",
        "subscription_key",
        "password",
        "secret",
        "auth",
        "authorization",
        "credential",
        "credentials",
    }
)
_SECRET_QUERY_SUFFIXES = ("key", "token", "secret", "password", "signature", "_sig")

# Response headers worth replaying. An allow-list rather than a deny-list: a header we
# have never seen (a new cookie, an account id) is dropped rather than committed.
_KEPT_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "x-request-id",
        "openai-model",
        "openai-processing-ms",
        "openai-version",
        "retry-after",
        "retry-after-ms",
        "x-should-retry",
    }
)
_KEPT_RESPONSE_PREFIXES = ("x-ratelimit-",)


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """One outgoing HTTP request as plain data: what the key and the take summary need."""

    method: str
    url: str
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


def is_secret_header(name: str) -> bool:
    """True when header ``name`` carries a credential and must never be stored."""
    return name.lower() in SECRET_HEADERS


def keep_response_headers(headers: Iterable[tuple[str, str]]) -> Headers:
    """The response headers a take keeps: useful to the SDK, free of secrets.

    Content-Encoding, Content-Length and Transfer-Encoding always go: takes hold the
    decoded body, and a replay that announced gzip would fail to decode.
    """
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower in _KEPT_RESPONSE_HEADERS or lower.startswith(_KEPT_RESPONSE_PREFIXES):
            kept.append((lower, value))
    return tuple(kept)


def is_secret_param(name: str, extra: Iterable[str] = ()) -> bool:
    """True when query parameter ``name`` carries a credential and must never be stored.

    The rule: ``name``, lower-cased with ``-`` read as ``_``, is one of
    :data:`SECRET_QUERY_PARAMS`, ends in ``key``, ``token``, ``secret``, ``password``,
    ``signature`` or ``_sig``, or is one of ``extra`` (names a user adds).
    """
    normal = name.lower().replace("-", "_")
    if normal in SECRET_QUERY_PARAMS or normal.endswith(_SECRET_QUERY_SUFFIXES):
        return True
    return any(normal == e.lower().replace("-", "_") for e in extra)


def strip_secret_query(
    pairs: Sequence[tuple[str, str]], extra: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Query pairs without the ones that carry credentials."""
    extra = tuple(extra)
    return [(k, v) for k, v in pairs if not is_secret_param(k, extra)]
