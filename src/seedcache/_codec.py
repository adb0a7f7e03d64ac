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

from ._errors import CorruptEntryError
from ._takes import Entry, Take

__all__ = [
    "decode_entry",
    "encode_entry",
    "entry_from_document",
    "entry_to_document",
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
    if not key or any(c not in "0123456789abcdef" for c in key):
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


def _take_to_document(take: Take) -> dict[str, Any]:
    names = [name for name, _ in take.headers]
    headers: Any = (
        dict(take.headers) if len(set(names)) == len(names) else [list(h) for h in take.headers]
    )
    return {
        "status": take.status,
        "fingerprint": take.fingerprint,
        "model": take.model,
        "recorded_at": _iso(take.recorded_at_ms),
        "latency_ms": take.latency_ms,
        "headers": headers,
        "body": _body_to_document(take.body, is_stream=take.is_stream),
    }


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
    headers = tuple((str(k).lower(), _expect(v, str, f"{where}.headers.{k}")) for k, v in pairs)
    fingerprint = doc.get("fingerprint")
    model = doc.get("model")
    return Take(
        status=_expect(doc.get("status"), int, f"{where}.status"),
        headers=headers,
        body=_body_from_document(doc.get("body"), f"{where}.body"),
        fingerprint=_expect(fingerprint, str, f"{where}.fingerprint") if fingerprint else None,
        model=_expect(model, str, f"{where}.model") if model else None,
        recorded_at_ms=_parse_iso(doc.get("recorded_at"), f"{where}.recorded_at"),
        latency_ms=_milliseconds(doc.get("latency_ms", 0), f"{where}.latency_ms"),
    )


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
        rendered = json.dumps(value, indent=indent, separators=separators, ensure_ascii=ascii_flag)
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
                rendered = json.dumps(
                    doc["json"],
                    indent=indent,
                    separators=separators,
                    ensure_ascii="ascii" in flags,
                )
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
            try:
                blob = zlib.decompress(blob)
            except zlib.error as exc:
                raise CorruptEntryError(f"{at}: body does not inflate ({exc})") from None
        return Take(
            status=_expect(m.get("status"), int, f"{at}.status"),
            headers=tuple((str(k), str(v)) for k, v in _expect(m.get("headers"), list, at)),
            body=blob,
            fingerprint=m.get("fingerprint"),
            model=m.get("model"),
            recorded_at_ms=_expect(m.get("recorded_at_ms"), int, f"{at}.recorded_at_ms"),
            latency_ms=_expect(m.get("latency_ms"), int, f"{at}.latency_ms"),
        )

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
