"""Entries to bytes and back: a readable document for cassettes, a compact frame for disk.

Both forms hold only data (JSON and raw bytes); decoding never runs code. Every decode
error becomes :class:`~seedcache.CorruptEntryError` naming what was wrong where.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from .._errors import CorruptEntryError
from .._takes._content import content_of
from .._takes._take import Entry, Take
from .._takes._usage import remember_usage
from ._json_text import dumps_indented

__all__ = [
    "decode_entry",
    "encode_entry",
    "entry_from_document",
    "entry_to_document",
    "is_key",
]

# (indent, ensure_ascii) pairs tried when storing a JSON body as an object; the first
# that reproduces the recorded bytes exactly wins. OpenAI pretty-prints with 2 spaces,
# some error bodies use 4, 2023-era bodies are compact.
_JSON_LAYOUTS: tuple[tuple[str, int | None, tuple[str, str] | None], ...] = (
    ("indent2", 2, None),
    ("indent4", 4, None),
    ("compact", None, (",", ":")),
    ("spaced", None, None),
)

_FRAME_MAGIC = b"SCE1"
_FRAME_HEADER = struct.Struct(">4sI")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX_DIGITS = "0123456789abcdef"
_COMPRESS_FROM = 256  # bytes; smaller bodies never shrink enough to pay for zlib


# -- documents (cassettes, export) ---------------------------------------------------------


def entry_to_document(entry: Entry) -> dict[str, Any]:
    """The entry as a JSON-ready dict, bodies as readable as byte-exactness allows."""
    return {
        "key": entry.key,
        "request": entry.request,
        "takes": [_take_to_document(t) for t in entry.takes],
        "history": [_take_to_document(t) for t in entry.history],
    }


def entry_from_document(document: Any, *, where: str) -> Entry:
    """Rebuild an entry from :func:`entry_to_document` output; ``where`` names it in errors."""
    doc = _expect(document, dict, where)
    key = _expect(doc.get("key"), str, f"{where}.key")
    if not is_key(key):
        raise CorruptEntryError(f"{where}.key: {key!r} is not a seedcache key (hex digits)")
    request = _expect(doc.get("request"), dict, f"{where}.request")
    takes = _expect(doc.get("takes", []), list, f"{where}.takes")
    history = _expect(doc.get("history", []), list, f"{where}.history")
    return Entry(
        key=key,
        request=request,
        takes=tuple(_take_from_document(t, f"{where}.takes[{i}]") for i, t in enumerate(takes)),
        history=tuple(
            _take_from_document(t, f"{where}.history[{i}]") for i, t in enumerate(history)
        ),
    )


def is_key(text: str) -> bool:
    """Whether ``text`` is a seedcache key: lower-case hex digits, at least one."""
    # What strip leaves past the ends is not a hex digit: one C call, not a walk.
    return bool(text) and not text.strip(_HEX_DIGITS)


def _take_to_document(take: Take) -> dict[str, Any]:
    names = [name for name, _ in take.headers]
    headers: Any = (
        dict(take.headers) if len(set(names)) == len(names) else [list(h) for h in take.headers]
    )
    document: dict[str, Any] = {
        "status": take.status,
        "fingerprint": take.fingerprint,
        "model": take.model,
        "recorded_at": _iso(take.recorded_at_ms),
        "latency_ms": take.latency_ms,
        "headers": headers,
    }
    if take.is_stream:
        # A stream's exact events replay; the answer they spell is what a reviewer reads.
        document["output"] = content_of(take).text.split("\n")
    document["body"] = _body_to_document(take.body, is_stream=take.is_stream)
    return document


def _take_from_document(document: Any, where: str) -> Take:
    doc = _expect(document, dict, where)
    raw_headers = doc.get("headers", {})
    if isinstance(raw_headers, dict):
        pairs = list(raw_headers.items())
    else:
        pairs = []
        for index, pair in enumerate(_expect(raw_headers, list, f"{where}.headers")):
            items = _expect(pair, list, f"{where}.headers[{index}]")
            if len(items) != 2:
                raise CorruptEntryError(
                    f"{where}.headers[{index}]: expected a [name, value] pair, "
                    f"found {len(items)} items"
                )
            pairs.append((items[0], items[1]))
    headers = []
    for name, value in pairs:
        if not isinstance(value, str):
            _expect(value, str, f"{where}.headers.{name}")  # raises, naming the header
        headers.append((str(name).lower(), value))
    body_document = doc.get("body")
    body = _body_from_document(body_document, f"{where}.body")
    if "output" in doc:
        _check_output(doc["output"], body, f"{where}.output")
    take = checked_take(
        where,
        status=doc.get("status"),
        headers=headers,
        body=body,
        fingerprint=doc.get("fingerprint") or None,
        model=doc.get("model") or None,
        recorded_at_ms=_parse_iso(doc.get("recorded_at"), f"{where}.recorded_at"),
        latency_ms=_milliseconds(doc.get("latency_ms", 0), f"{where}.latency_ms"),
    )
    if isinstance(body_document, dict) and "json" in body_document:
        # The body was rendered from this value: its usage needs no second parse.
        remember_usage(take, body_document["json"])
    return take


# Bounds every store holds a take to: what an API answer can be, not what a planted entry
# says. Times past year 9999 overflow dates; a name longer than this is no model name.
_MAX_TIME_MS = 253_402_300_799_999
_MAX_LATENCY_MS = 10**9
_MAX_NAME = 256


def checked_take(
    where: str,
    *,
    status: Any,
    headers: Any,
    body: bytes,
    fingerprint: Any,
    model: Any,
    recorded_at_ms: Any,
    latency_ms: Any,
) -> Take:
    """A take whose every field has the type and range an API answer can have.

    One schema for every store: a value of the wrong type or out of range is a
    :class:`CorruptEntryError` naming where it is, never a take that breaks listing,
    prices or replay later.
    """
    code = _expect(status, int, f"{where}.status")
    if not 100 <= code <= 599:
        raise CorruptEntryError(f"{where}.status: {code} is not an HTTP status")
    for name, value in (("fingerprint", fingerprint), ("model", model)):
        if value is not None and (not isinstance(value, str) or len(value) > _MAX_NAME):
            raise CorruptEntryError(f"{where}.{name}: expected a short string or null")
    at = _expect(recorded_at_ms, int, f"{where}.recorded_at_ms")
    if not 0 <= at <= _MAX_TIME_MS:
        raise CorruptEntryError(f"{where}.recorded_at_ms: {at} is not a time")
    latency = _expect(latency_ms, int, f"{where}.latency_ms")
    if not 0 <= latency <= _MAX_LATENCY_MS:
        raise CorruptEntryError(f"{where}.latency_ms: {latency} is not a duration")
    pairs = tuple(headers)
    if not _plain_pairs(pairs):
        if not all(
            isinstance(pair, tuple | list)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
            for pair in pairs
        ):
            raise CorruptEntryError(f"{where}.headers: expected [name, value] pairs of strings")
        pairs = tuple((str(k), str(v)) for k, v in pairs)
    # Every JSON answer of these APIs is an object (a list for Gemini's unstreamed
    # chunks); a bare 5 would reach the SDK as something no call returns. Checked by its
    # first byte: decoding is hot.
    if 200 <= code < 300 and body and _is_json(pairs) and body.lstrip()[:1] not in b"{[":
        raise CorruptEntryError(
            f"{where}.body: a JSON answer that is not an object, which no endpoint returns"
        )
    return Take(
        status=code,
        headers=pairs,
        body=body,
        fingerprint=fingerprint,
        model=model,
        recorded_at_ms=at,
        latency_ms=latency,
    )


def _plain_pairs(pairs: tuple[Any, ...]) -> bool:
    """Whether every header is already a (str, str) tuple, as every decoder gives them:
    then they are kept as they are, not checked and rebuilt one by one."""
    for pair in pairs:
        if type(pair) is not tuple or len(pair) != 2:
            return False
        name, value = pair
        if type(name) is not str or type(value) is not str:
            return False
    return True


def _body_to_document(body: bytes, *, is_stream: bool) -> dict[str, Any]:
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}
    if is_stream:
        return {"sse": text.split("\n")}
    as_json = _json_body(text)
    return as_json if as_json is not None else {"text": text}


def _json_body(text: str) -> dict[str, Any] | None:
    """``{"json": value, "layout": ...}`` when some layout reproduces ``text`` exactly."""
    stripped = text.removesuffix("\n")
    if not stripped.startswith(("{", "[")):
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    newline = "+newline" if stripped != text else ""
    ascii_flag = stripped.isascii() and "\\u" in stripped
    for name, indent, separators in _JSON_LAYOUTS:
        rendered = _render(value, indent, separators, ensure_ascii=ascii_flag)
        if rendered == stripped:
            return {"json": value, "layout": name + newline + ("+ascii" if ascii_flag else "")}
    return None


def _body_from_document(document: Any, where: str) -> bytes:
    doc = _expect(document, dict, where)
    if "json" in doc:
        layout = _expect(doc.get("layout", "compact"), str, f"{where}.layout")
        name, *flags = layout.split("+")
        for candidate, indent, separators in _JSON_LAYOUTS:
            if candidate == name:
                rendered = _render(doc["json"], indent, separators, ensure_ascii="ascii" in flags)
                return (rendered + ("\n" if "newline" in flags else "")).encode()
        raise CorruptEntryError(f"{where}.layout: unknown JSON layout {layout!r}")
    if "sse" in doc:
        lines = _expect(doc["sse"], list, f"{where}.sse")
        return "\n".join(_expect(line, str, f"{where}.sse[]") for line in lines).encode()
    if "text" in doc:
        text: str = _expect(doc["text"], str, f"{where}.text")
        return text.encode()
    if "base64" in doc:
        try:
            return base64.b64decode(_expect(doc["base64"], str, f"{where}.base64"), validate=True)
        except ValueError as exc:
            raise CorruptEntryError(f"{where}.base64: {exc}") from None
    raise CorruptEntryError(f"{where}: expected one of json, sse, text or base64")


def _render(
    value: Any, indent: int | None, separators: tuple[str, str] | None, *, ensure_ascii: bool
) -> str:
    if indent is not None:
        return dumps_indented(value, indent, ensure_ascii=ensure_ascii)
    return json.dumps(value, separators=separators, ensure_ascii=ensure_ascii)


def _check_output(output: Any, body: bytes, where: str) -> None:
    """A stream's readable ``output`` must be what its events spell: an edit that changed
    the events but not the text a reviewer reads would replay something else unseen."""
    lines = _expect(output, list, where)
    spelled = content_of(Take(200, (("content-type", "text/event-stream"),), body)).text
    if "\n".join(_expect(line, str, f"{where}[]") for line in lines) != spelled:
        raise CorruptEntryError(
            f"{where}: does not match the recorded events; the cassette was edited by hand "
            "(record it again, or make the two agree)"
        )


# -- frames (disk store) -------------------------------------------------------------------


def encode_entry(entry: Entry) -> bytes:
    """A compact frame: magic, header length, JSON header, then the (maybe deflated) bodies."""
    blobs: list[bytes] = []

    def meta(take: Take) -> dict[str, Any]:
        body = take.body
        encoding = "raw"
        if len(body) >= _COMPRESS_FROM:
            packed = zlib.compress(body, 6)
            if len(packed) < len(body) * 0.9:
                body, encoding = packed, "zlib"
        blobs.append(body)
        return {
            "status": take.status,
            "headers": [list(h) for h in take.headers],
            "fingerprint": take.fingerprint,
            "model": take.model,
            "recorded_at_ms": take.recorded_at_ms,
            "latency_ms": take.latency_ms,
            "size": len(body),
            "encoding": encoding,
        }

    header = {
        "key": entry.key,
        "request": entry.request,
        "takes": [meta(t) for t in entry.takes],
        "history": [meta(t) for t in entry.history],
    }
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    return b"".join([_FRAME_HEADER.pack(_FRAME_MAGIC, len(head)), head, *blobs])


def decode_entry(frame: bytes, *, where: str) -> Entry:
    """Rebuild an entry from :func:`encode_entry` output."""
    if len(frame) < _FRAME_HEADER.size or frame[:4] != _FRAME_MAGIC:
        raise CorruptEntryError(f"{where}: not a seedcache entry (bad magic or truncated)")
    _, head_len = _FRAME_HEADER.unpack_from(frame)
    offset = _FRAME_HEADER.size + head_len
    try:
        header = json.loads(frame[_FRAME_HEADER.size : offset])
    except (ValueError, RecursionError) as exc:
        raise CorruptEntryError(f"{where}: entry header is not JSON ({exc})") from None
    doc = _expect(header, dict, where)

    def take(meta: Any, at: str) -> Take:
        nonlocal offset
        m = _expect(meta, dict, at)
        size = _expect(m.get("size"), int, f"{at}.size")
        blob = frame[offset : offset + size]
        if len(blob) != size:
            raise CorruptEntryError(f"{at}: body truncated ({len(blob)} of {size} bytes)")
        offset += size
        if m.get("encoding") == "zlib":
            blob = _inflate(blob, at, budget[0])
            budget[0] -= len(blob)
        return checked_take(
            at,
            status=m.get("status"),
            headers=_expect(m.get("headers"), list, f"{at}.headers"),
            body=blob,
            fingerprint=m.get("fingerprint"),
            model=m.get("model"),
            recorded_at_ms=m.get("recorded_at_ms"),
            latency_ms=m.get("latency_ms"),
        )

    # One budget for the whole frame: many small bombs are one big one.
    budget = [min(_MAX_INFLATED, max(_FREE_INFLATE, len(frame) * _MAX_RATIO))]
    try:
        takes = [take(m, f"{where}.takes[{i}]") for i, m in enumerate(doc.get("takes", []))]
        history = [take(m, f"{where}.history[{i}]") for i, m in enumerate(doc.get("history", []))]
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CorruptEntryError):
            raise
        raise CorruptEntryError(f"{where}: malformed take ({exc})") from None
    return Entry(
        key=_expect(doc.get("key"), str, f"{where}.key"),
        request=_expect(doc.get("request"), dict, f"{where}.request"),
        takes=tuple(takes),
        history=tuple(history),
    )


# -- helpers -------------------------------------------------------------------------------


def _is_json(headers: tuple[Any, ...]) -> bool:
    for name, value in headers:
        if str(name).lower() == "content-type":
            media = str(value).split(";")[0].strip().lower()
            return media == "application/json" or media.endswith("+json")
    return False


# Inflating: any body up to this size; a larger one only at a ratio an API answer can
# compress to (a 300 KB frame must not become 300 MB on every read); never past the cap.
_FREE_INFLATE = 8 * 1024 * 1024
_MAX_RATIO = 200
_MAX_INFLATED = 256 * 1024 * 1024


def _inflate(blob: bytes, where: str, allowed: int) -> bytes:
    """``blob`` inflated, refused past ``allowed`` bytes (what is left of the frame's
    budget: any size up to 8 MiB, more only at a ratio an answer compresses to)."""
    allowed = max(0, allowed)
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(blob, allowed)
    except zlib.error as exc:
        raise CorruptEntryError(f"{where}: body does not inflate ({exc})") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise CorruptEntryError(
            f"{where}: body inflates beyond {allowed} bytes ({len(blob)} stored); refused"
        )
    return body


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    # bool is an int to isinstance; a status of `true` is still corrupt.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CorruptEntryError(f"{where}: expected {names}, found {type(value).__name__}")
    return value


def _milliseconds(value: Any, where: str) -> int:
    number = _expect(value, (int, float), where)
    if isinstance(number, float) and not math.isfinite(number):
        raise CorruptEntryError(f"{where}: {number} is not a duration")
    return int(number)


def _iso(ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(value: Any, where: str) -> int:
    text = _expect(value, str, where)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CorruptEntryError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic: a float timestamp would not round-trip to the millisecond.
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
