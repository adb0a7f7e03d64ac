"""Credentials inside bodies: never written, though a request or an answer carries them.

Headers and query strings are handled in :mod:`seedcache._request._wire`. Bodies carry secrets too:
a request field ``api_key`` (some gateways take the key in the body), and answers that
hand out new credentials (admin API keys, a Realtime session's ``client_secret``).

- Request body fields named like a credential (:data:`CREDENTIAL_FIELDS`) are replaced by
  a keyed digest, in the key and in what is stored: distinct values stay distinct, none
  is written.
- Anywhere in a stored body (request or answer, JSON or a stream), a string shaped like an
  OpenAI secret key (``sk-…``, ``rk-…``, ``ek_…``) is replaced by ``sk-redacted-<digest>``,
  in place, so the rest of the answer keeps its bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

__all__ = [
    "CREDENTIAL_FIELDS",
    "holds_a_key",
    "may_hold_credentials",
    "redact_fields",
    "redact_keys_in",
    "redact_summary",
]

CREDENTIAL_FIELDS = frozenset(
    {
        "apikey",
        "clientsecret",
        "secretkey",
        "privatekey",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "password",
        "passwd",
        "authorization",
    }
)
"""Body field names whose values are credentials, compared with case, ``_`` and ``-``
removed, at the end of the name: ``api_key``, ``apiKey``, ``openai_api_key``,
``clientSecret``, ``auth_token`` all count; ``max_tokens`` does not."""

# A fixed key: digests must match on every machine that replays a cassette.
_DIGEST_KEY = b"seedcache body credential v1"
# OpenAI secret keys: sk-…, sk-proj-…, sk-admin-…, sk-svcacct-…, restricted rk-…, and the
# Realtime API's ephemeral ek_…; long enough that ordinary words never match.
_SECRET_KEY = re.compile(
    # Not inside a longer word; but right after an escape (\n, \t, %20, \u0020) is a
    # start, since the escape's last letter is not text.
    rb"(?:(?<![A-Za-z0-9])|(?<=\\[ntrbf])|(?<=%[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4}))"
    # What redaction wrote (sk-redacted-…) is no key: redacting twice changes nothing.
    rb"(?:(?:sk|rk)-|ek_)(?!redacted-)[A-Za-z0-9_-]{20,}"
)


# Decides on the raw bytes, in C, whether a body needs walking at all (almost none do).
# A JSON escape (\u0073k-…) may spell either, so it asks for a walk too.
# The names are those _is_credential knows, any separator: "max_tokens" or
# "prompt_cache_key" (in nearly every request) must not cost a walk.
_MAYBE = re.compile(
    rb"(?i:api.?key|secret|private.?key|(?:access|refresh|id|auth).?token|passw|authoriz)"
    rb"|sk-|rk-|ek_|\\u|%"
)
# Credential fields written as text: form fields (client_secret=…) and JSON pairs in a
# body kept as text (too deep to parse, or not JSON at all).
_FIELD_IN_TEXT = re.compile(
    r"(?i)([A-Za-z0-9_-]*(?:api[_-]?key|client[_-]?secret|secret[_-]?key|private[_-]?key"
    r"|access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|password|passwd"
    r"|authorization)\"?\s*[:=]\s*\"?)([^\"&\s,}]+)"
)


# Every match of _MAYBE contains one of these, once lower-cased: finding none of them
# (plain substring searches) settles most requests without running the expression.
_MAYBE_WORDS = (b"key", b"secret", b"token", b"passw", b"authoriz", b"sk-", b"rk-", b"ek_")
_MAYBE_MARKS = (b"\\u", b"%")


def may_hold_credentials(raw: bytes) -> bool:
    """Whether ``raw`` may hold a credential field or a secret key (cheap, may say yes)."""
    lowered = raw.lower()
    # Plain loops: two generators cost more than the searches on a small body.
    for word in _MAYBE_WORDS:
        if word in lowered:
            return _MAYBE.search(raw) is not None
    for mark in _MAYBE_MARKS:
        if mark in raw:
            return _MAYBE.search(raw) is not None
    return False


def _exact(value: Any) -> bytes:
    """A value's bytes for its digest, its type included: 1 and "1" stay apart."""
    return json.dumps(value, sort_keys=True, default=str).encode()


def _digest(value: bytes) -> str:
    return hmac.new(_DIGEST_KEY, value, hashlib.sha256).hexdigest()[:24]


def redact_fields(value: Any) -> Any:
    """``value`` (a parsed JSON body) with every credential field's value a keyed digest,
    and secret keys inside any string replaced."""
    if isinstance(value, dict):
        return {
            k: f"hmac-{_digest(_exact(v))}" if _is_credential(k) else redact_fields(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_fields(item) for item in value]
    if isinstance(value, str) and _SECRET_KEY.search(value.encode()):
        return redact_keys_in(value.encode()).decode()
    return value


def redact_summary(value: Any) -> Any:
    """A stored request summary with no credential left in it: credential fields (by name,
    also as multipart parts and as text), and secret keys in every string and every
    object key (the URL, headers, the body)."""
    if isinstance(value, dict):
        if _is_credential(value.get("name")) and "content" in value:  # a multipart part
            return {**value, "content": f"hmac-{_digest(_exact(value['content']))}"}
        return {
            _redacted_text(k) if isinstance(k, str) else k: (
                f"hmac-{_digest(_exact(v))}" if _is_credential(k) else redact_summary(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_summary(item) for item in value]
    if isinstance(value, str):
        return _redacted_text(value)
    return value


def _is_credential(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    squeezed = "".join(c for c in name.lower() if c.isalnum())
    return squeezed.endswith(tuple(CREDENTIAL_FIELDS))


def _redacted_text(text: str) -> str:
    if _MAYBE.search(text.encode()) is None:
        return text
    form = _redacted_form(text)
    if form is not None:
        return form
    text = _FIELD_IN_TEXT.sub(lambda m: m.group(1) + "hmac-" + _digest(m.group(2).encode()), text)
    if "%" in text:
        # A key percent-encoded (a URL path: /v1/x/%73k-…) shows only decoded; then the
        # decoded text is what is kept, redacted.
        decoded = unquote(text)
        if _SECRET_KEY.search(decoded.encode()):
            text = decoded
    return redact_keys_in(text.encode()).decode()


def holds_a_key(text: str) -> bool:
    """Whether readable ``text`` (an answer as the SDK assembles it) holds a secret key."""
    return ("sk-" in text or "rk-" in text or "ek_" in text) and bool(
        _SECRET_KEY.search(text.encode())
    )


def _redacted_form(text: str) -> str | None:
    """``text`` as a form body with its credential fields digested (names are judged
    decoded: ``api%5Fkey``, ``creds[password]``); None when it is not a form."""
    if not text or "=" not in text or "://" in text or text.startswith("/"):
        return None  # not a form (a URL's query is judged apart, by _wire.keyed_query)
    if any(c.isspace() for c in text):
        return None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    kept = [
        (name, f"hmac-{_digest(value.encode())}" if _is_credential(name) else value)
        for name, value in pairs
    ]
    return redact_keys_in(urlencode(kept).encode()).decode()


def redact_keys_in(body: bytes) -> bytes:
    """``body`` with every secret-key-shaped string replaced in place (other bytes kept)."""
    if b"sk-" not in body and b"rk-" not in body and b"ek_" not in body:
        return body  # the usual case, decided without a regex
    return _SECRET_KEY.sub(lambda m: b"sk-redacted-" + _digest(m.group()).encode(), body)
