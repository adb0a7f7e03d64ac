"""Plain HTTP data shared by every adapter, and the rules for what may be stored.

Adapters turn their library's request into a :class:`CapturedRequest`; everything past
the adapter works on these plain values, so the core never imports an HTTP library.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "CapturedRequest",
    "is_credential_param",
    "is_secret_header",
    "is_secret_param",
    "keep_response_headers",
    "keyed_query",
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
        "x-goog-api-key",  # Gemini
        "ocp-apim-subscription-key",  # Azure API Management
        "x-amz-security-token",  # AWS session credentials (Bedrock)
    }
)
# Header names that read as credentials, whatever the service: refused in match_headers.
_SECRET_HEADER_WORDS = (
    "api-key",
    "apikey",
    "token",
    "secret",
    "password",
    "authorization",
    "cookie",
    "credential",
    "subscription-key",
    "signature",
    "session",
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
        "pwd",
        "passwd",
        "jwt",
        "bearer",
        "session",
        "id_token",
        "refresh_token",
        "client_secret",
        "x_amz_credential",  # a presigned AWS URL's access key id
    }
)
# Names that end like a credential but usually are not one: page tokens, sort keys,
# idempotency keys. Their values stay out of files, but stay in the key (as a keyed
# digest): dropping them made page 2 replay page 1.
_SECRET_QUERY_SUFFIXES = ("key", "token", "secret", "password", "signature", "_sig")
# A fixed key: digests must be the same on every machine that replays a cassette. It
# keeps a stored digest from being looked up in a table of common values' plain hashes.
_QUERY_DIGEST_KEY = b"seedcache query value v1"

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
    # First value of each header by lower-cased name: a key reads several headers, and
    # an SDK sends a dozen or more.
    _first: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first: dict[str, str] = {}
        for key, value in self.headers:
            first.setdefault(key.lower(), value)
        object.__setattr__(self, "_first", first)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return self._first.get(name.lower())


def is_secret_header(name: str) -> bool:
    """True when header ``name`` carries (or reads as) a credential: never stored or keyed."""
    lower = name.lower().replace("_", "-")
    return lower in SECRET_HEADERS or any(word in lower for word in _SECRET_HEADER_WORDS)


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


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").lstrip("$")


def is_credential_param(name: str, extra: Iterable[str] = ()) -> bool:
    """True when query parameter ``name`` is a credential: never keyed, never stored.

    ``name``, lower-cased with ``-`` read as ``_``, is one of :data:`SECRET_QUERY_PARAMS`
    or one of ``extra`` (names a user adds). A request sent with another key still
    replays.
    """
    normal = _normal(name)
    return normal in SECRET_QUERY_PARAMS or any(normal == _normal(e) for e in extra)


def is_secret_param(name: str, extra: Iterable[str] = ()) -> bool:
    """True when the value of query parameter ``name`` must never be stored: a credential,
    or a name ending in ``key``, ``token``, ``secret``, ``password``, ``signature`` or
    ``_sig`` (``pageToken``, ``idempotency_key``)."""
    return is_credential_param(name, extra) or _normal(name).endswith(_SECRET_QUERY_SUFFIXES)


def keyed_query(
    pairs: Sequence[tuple[str, str]], extra: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Query pairs as keys and summaries hold them: credentials dropped, other secret-looking
    values replaced by a keyed digest (distinct values stay distinct, none is written)."""
    extra = tuple(extra)
    kept = []
    for name, value in pairs:
        if is_credential_param(name, extra):
            continue
        if is_secret_param(name):
            digest = hmac.new(_QUERY_DIGEST_KEY, value.encode(), hashlib.sha256).hexdigest()
            value = f"hmac-{digest[:24]}"
        kept.append((name, value))
    return kept
