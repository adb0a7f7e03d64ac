"""Request keys: the same logical call gives the same key, any change gives another.

Pure functions, no I/O. The key is ``xxh3_128`` over a canonical JSON document made of
the method, the URL (scheme, host, path, sorted query), the canonical body, the
allow-listed headers, an optional namespace and the key-scheme version. The response's
fingerprint is never part of it.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import xxhash

from .._errors import ConfigurationError
from .._takes._take import requested_model
from ._redact import may_hold_credentials, redact_fields, redact_keys_in, redact_summary
from ._wire import CapturedRequest, is_secret_header, keyed_query

__all__ = [
    "DEFAULT_MATCH_HEADERS",
    "KEY_LENGTH",
    "KEY_SCHEME_VERSION",
    "Canonical",
    "KeyConfig",
    "canonical_json",
    "canonicalize",
    "field_paths",
    "names",
]

# Bump when the canonical document changes shape, so old keys can never collide with new.
KEY_SCHEME_VERSION = 1
KEY_LENGTH = 32
"""Hex digits in a key (xxh3_128)."""

_MAX_TEXT_SUMMARY = 64 * 1024


DEFAULT_MATCH_HEADERS = ("openai-beta", "anthropic-beta", "anthropic-version")
"""Request headers that change the answer: beta features and Anthropic's API version."""


class KeyMemo:
    """The keys of the latest requests keyed under one :class:`KeyConfig`, least recently
    used out first.

    Keys only: a request is remembered by a tuple of its text and bytes and its key, which
    the garbage collector never has to walk. Keeping whole results (each holding the
    request with its headers, for a summary) made every collection of a long test run
    walk thousands of objects more.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._known: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request: tuple[Any, ...]) -> str | None:
        """The key remembered for ``request``, if any."""
        with self._lock:
            found = self._known.get(request)
            if found is not None:
                self._known.move_to_end(request)
            return found

    def put(self, request: tuple[Any, ...], key: str) -> None:
        """Remember ``key`` for ``request``."""
        with self._lock:
            self._known[request] = key
            if len(self._known) > self._size:
                self._known.popitem(last=False)


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """What makes two requests the same call.

    ``match_host=False`` lets recordings made against one base URL (a proxy, Azure, a
    local server) replay against another. ``match_headers`` names the request headers that
    change the answer; credentials can never be named. ``ignore`` names body fields left
    out of the key, as dotted paths (``"user"``, ``"metadata.session"``,
    ``"messages.*.name"``: ``*`` is every key or item, a number one list item).
    ``secret_params`` names query parameters that carry credentials, beyond those the
    built-in rule recognises (:func:`~seedcache._request._wire.is_secret_param`).
    """

    match_host: bool = True
    match_headers: tuple[str, ...] = DEFAULT_MATCH_HEADERS
    namespace: str | None = None
    ignore: tuple[str, ...] = ()
    secret_params: tuple[str, ...] = ()
    _memo: KeyMemo = field(
        default_factory=KeyMemo, init=False, repr=False, compare=False, hash=False
    )
    """Requests already keyed under this config (not part of what it means)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ignore", field_paths(self.ignore))
        object.__setattr__(self, "secret_params", names(self.secret_params, "secret_params"))
        lowered = tuple(sorted({h.lower() for h in self.match_headers}))
        secret = [h for h in lowered if is_secret_header(h)]
        if secret:
            raise ConfigurationError(
                f"match_headers may not include credentials ({', '.join(secret)}): "
                "they would become part of every key and of what is stored"
            )
        object.__setattr__(self, "match_headers", lowered)


def shared_key_config(
    *,
    match_host: bool,
    match_headers: Iterable[str],
    namespace: str | None,
    ignore: str | Iterable[str],
    secret_params: str | Iterable[str],
) -> KeyConfig:
    """The :class:`KeyConfig` for these options, one object for equal options.

    A suite opens a cache per test, all with the same options: they share one config
    (and its memo of keyed requests) instead of each checking the options again.
    """
    # Frozen once: a generator given here is read here, and both paths below see it.
    headers, fields, params = _frozen(match_headers), _frozen(ignore), _frozen(secret_params)
    try:
        return _shared_key_config(match_host, headers, namespace, fields, params)
    except TypeError:  # an option that cannot be hashed: KeyConfig says what is wrong
        return KeyConfig(
            match_host=match_host,
            match_headers=tuple(headers),
            namespace=namespace,
            ignore=fields,  # type: ignore[arg-type]  # checked by KeyConfig
            secret_params=params,  # type: ignore[arg-type]
        )


# typed: 1 and True are equal and hash alike, but "ns": 1 and "ns": true are other keys.
@functools.lru_cache(maxsize=32, typed=True)
def _shared_key_config(
    match_host: bool,
    match_headers: tuple[str, ...],
    namespace: str | None,
    ignore: Any,
    secret_params: Any,
) -> KeyConfig:
    return KeyConfig(
        match_host=match_host,
        match_headers=match_headers,
        namespace=namespace,
        ignore=ignore,
        secret_params=secret_params,
    )


def _frozen(values: str | Iterable[str]) -> str | tuple[str, ...]:
    """``values`` as something hashable; a lone string stays one, for KeyConfig to refuse."""
    return values if isinstance(values, str) else tuple(values)


class Canonical:
    """A request reduced to what identifies it: its key and a readable, secret-free summary.

    The summary is made the first time it is read (``describe``), or given: a replay
    reads the key only.
    """

    __slots__ = ("_describe", "_summary", "key")

    def __init__(
        self,
        key: str,
        summary: dict[str, Any] | None = None,
        *,
        describe: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        if (summary is None) == (describe is None):
            raise TypeError("Canonical takes either a summary or describe=, exactly one")
        self.key = key
        self._summary = summary
        self._describe = describe

    def __repr__(self) -> str:
        return f"Canonical(key={self.key!r})"

    @property
    def summary(self) -> dict[str, Any]:
        """Method, URL, body (and headers, namespace, ignored fields when there are any)."""
        if self._summary is None:
            assert self._describe is not None
            # Two threads may both describe it: the same value, computed twice.
            self._summary = self._describe()
        return self._summary

    @property
    def endpoint(self) -> str:
        """Method and path, e.g. ``POST /v1/chat/completions``."""
        return f"{self.summary['method']} {urlsplit(self.summary['url']).path}"

    @property
    def model(self) -> str | None:
        """The model asked for (a JSON body's ``model``, or Gemini's path), if any."""
        return requested_model(self.summary)


def names(values: str | Iterable[str], option: str, what: str = "names") -> tuple[str, ...]:
    """``values`` as a tuple without duplicates; a lone string is refused, not split."""
    if isinstance(values, str):
        raise ConfigurationError(
            f"{option} takes a list of {what}, not the string {values!r}; "
            f"write {option}=[{values!r}]"
        )
    return tuple(dict.fromkeys(values))


def field_paths(paths: str | Iterable[str]) -> tuple[str, ...]:
    """``paths`` checked as dotted body field paths, duplicates dropped."""
    checked = names(paths, "ignore", "field paths")
    for path in checked:
        if not isinstance(path, str) or not all(path.split(".")):
            raise ConfigurationError(
                f"ignore: {path!r} is not a field path; use dotted names such as "
                "'user' or 'metadata.session'"
            )
    return checked


def canonical_json(value: Any) -> str:
    """Compact JSON with keys sorted at every depth: one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonicalize(request: CapturedRequest, config: KeyConfig = KeyConfig()) -> Canonical:
    """Reduce ``request`` to its key and summary.

    A process that sends the same request again and again (a development loop, the
    proxy) finds the result of a small request remembered by its config, which takes
    parsing and hashing off the path of a hit.
    """
    if len(request.body) > _MEMO_MAX_BODY:
        return _canonicalize(request, config)
    memo_key = (
        request.method,
        request.url,
        request.body,
        request.header("content-type"),
        *[request.header(name) for name in config.match_headers],
    )
    memo = config._memo
    found = memo.get(memo_key)
    if found is not None:
        # The summary, needed only to store a take or explain a miss, is made again then.
        return Canonical(found, describe=functools.partial(_summary_again, request, config))
    canonical = _canonicalize(request, config)
    memo.put(memo_key, canonical.key)
    return canonical


def _summary_again(request: CapturedRequest, config: KeyConfig) -> dict[str, Any]:
    return _canonicalize(request, config).summary


_MEMO_MAX_BODY = 64 * 1024


def _canonicalize(request: CapturedRequest, config: KeyConfig) -> Canonical:
    parts = urlsplit(request.url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = sorted(keyed_query(pairs, extra=config.secret_params))
    # Credentials in the URL (http://user:pass@host) are never keyed nor stored.
    origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"
    kind, body = _canonical_body(request)
    body_may_hold_credentials = may_hold_credentials(request.body)
    if kind == "json" and body_may_hold_credentials:
        # Keyed by a digest, stored as one: distinct values stay apart, none is written.
        body = redact_fields(body)
    headers = {
        name: value for name in config.match_headers if (value := request.header(name)) is not None
    }
    summarize = functools.partial(
        _summary,
        request=request,
        kind=kind,
        url=f"{origin}{parts.path}",
        query=query,
        headers=headers,
        namespace=config.namespace,
        body_may_hold_credentials=body_may_hold_credentials,
    )
    ignored = None
    if config.ignore:
        # The summary keeps what the key leaves out: it is made before the fields go.
        summarize = functools.partial(summarize, body=_summary_body(request, body))
        ignored = [path for path in config.ignore if _drop(body, path.split("."))]
    else:
        summarize = functools.partial(summarize, body=None, parsed=body)
    document = {
        "v": KEY_SCHEME_VERSION,
        "ns": config.namespace,
        "method": request.method.upper(),
        "origin": origin if config.match_host else None,
        "path": parts.path,
        "query": query,
        "headers": headers,
        "body": body,
    }
    if kind != "json":
        # Told apart from JSON: text/plain "hello" must not replay {"text": "hello"}.
        document["body_kind"] = kind
    try:
        text = canonical_json(document)
    except RecursionError:
        # Nested deeper than even the C encoder reaches from here: key the exact bytes.
        document["body"] = _digest(request.body)
        text = canonical_json(document)
    key = xxhash.xxh3_128_hexdigest(text.encode())
    # A replay needs the key alone; the summary is made when a take is stored or a miss
    # explained.
    return Canonical(key, describe=functools.partial(summarize, ignored=ignored))


def _summary(
    *,
    request: CapturedRequest,
    kind: str,
    url: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    namespace: str | None,
    body_may_hold_credentials: bool,
    body: Any,
    ignored: list[str] | None,
    parsed: Any = None,
) -> dict[str, Any]:
    """The readable, secret-free request summary a take is stored with."""
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    summary: dict[str, Any] = {
        "method": request.method.upper(),
        "url": url,
        "body": body if ignored is not None else _summary_body(request, parsed),
    }
    if kind != "json":
        summary["body_kind"] = kind
    if ignored:
        summary["ignored"] = ignored
    if headers:
        summary["headers"] = headers
    if namespace is not None:
        summary["namespace"] = namespace
    if body_may_hold_credentials or may_hold_credentials(
        (url + "".join(headers.values())).encode()
    ):
        # What is stored never holds a secret, wherever the request put one.
        summary = redact_summary(summary)
    return summary


def _summary_body(request: CapturedRequest, body: Any) -> Any:
    """The body as a summary shows it: keys sorted, or as text when nested too deep."""
    if _may_nest_deeper_than(request.body, _MAX_SUMMARY_DEPTH) and _deeper_than(
        body, _MAX_SUMMARY_DEPTH
    ):
        # Readable and flat for every encoder; kept as a digest when it may hold a
        # credential, since text too deep to parse cannot be redacted field by field.
        if may_hold_credentials(request.body):
            return _digest(request.body)
        return _opaque(redact_keys_in(request.body))
    return _sorted(body)


def _canonical_body(request: CapturedRequest) -> tuple[str, Any]:
    """The body's kind (``json``, ``multipart``, ``text``, ``bytes``) and the body as a
    comparable value: JSON parsed and normalised, multipart by parts.

    Parsing and normalising happen inside the C decoder (no Python recursion), so any
    nesting the SDK could serialise can be keyed.
    """
    raw = request.body
    if not raw:
        return "json", None
    content_type = (request.header("content-type") or "").lower()
    if content_type.startswith("multipart/"):
        parts = _multipart_parts(raw, content_type)
        if parts is not None:
            return "multipart", {"multipart": parts}
    try:
        parsed = _BODY_DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        opaque = _opaque(raw)
        return ("text" if "text" in opaque else "bytes"), opaque
    if isinstance(parsed, dict) and parsed.get("stream") is False:
        # `.parse()` sends "stream": false where `.create()` leaves it out; same call.
        del parsed["stream"]
    return "json", parsed


def _number(text: str) -> float | int:
    """Integral floats become ints (``1.0`` and ``1`` are one number to the API)."""
    value = float(text)
    return int(value) if value.is_integer() else value


# What json.loads(raw, parse_float=_number) does, without building a decoder per call (the
# larger part of keying a small body).
_BODY_DECODER = json.JSONDecoder(parse_float=_number)


# Summaries deeper than this are kept as the body's text: a summary is for reading, and
# writers with pretty-printing (cassettes) recurse in Python.
_MAX_SUMMARY_DEPTH = 64


def _may_nest_deeper_than(raw: bytes, limit: int) -> bool:
    """False when ``raw`` has too few brackets to nest containers more than ``limit`` deep
    (counted in C; almost every request ends here, without a walk)."""
    return raw.count(b"{") + raw.count(b"[") > limit


def _deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests containers more than ``limit`` deep (no recursion)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def _drop(value: Any, path: list[str]) -> bool:
    """Remove the field at ``path`` from ``value`` in place; True when something was there."""
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        names = list(value) if head == "*" else [head] if head in value else []
    elif isinstance(value, list):
        count = len(value)
        if head == "*":
            names = list(range(count))
        elif head.isdigit() and int(head) < count:
            names = [int(head)]
        else:
            names = []
    else:
        return False
    if not rest:
        for name in reversed(names):  # from the end, so list indices stay valid
            del value[name]
        return bool(names)
    found = False
    for name in names:
        found = _drop(value[name], rest) or found
    return found


def _sorted(value: Any) -> Any:
    """Keys sorted at every depth: summaries read the same whatever order the SDK sent."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _opaque(raw: bytes) -> dict[str, Any]:
    """A body that is not JSON: readable text when small, a digest otherwise."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and len(raw) <= _MAX_TEXT_SUMMARY:
        return {"text": text}
    return _digest(raw)


def _multipart_parts(raw: bytes, content_type: str) -> list[dict[str, Any]] | None:
    """Parts of a multipart body, without the random boundary that differs every call."""
    boundary = None
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        return None
    delimiter = b"--" + boundary.encode("latin-1")
    parts: list[dict[str, Any]] = []
    for chunk in raw.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            return None
        parts.append(_describe_part(head.decode("latin-1"), content.removesuffix(b"\r\n")))
    return parts


def _describe_part(head: str, content: bytes) -> dict[str, Any]:
    part: dict[str, Any] = {}
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            for param in value.split(";")[1:]:
                key, _, val = param.strip().partition("=")
                part[key.lower()] = val.strip('"')
        elif name.strip().lower() == "content-type":
            part["content-type"] = value.strip()
    if "filename" in part:
        # Uploaded files are identified by their bytes; their text has no place in a summary.
        part["content"] = _digest(content)
    else:
        opaque = _opaque(content)
        part["content"] = opaque.get("text", opaque)
    return part


def _digest(raw: bytes) -> dict[str, Any]:
    return {"bytes": len(raw), "xxh3": xxhash.xxh3_128_hexdigest(raw)}
