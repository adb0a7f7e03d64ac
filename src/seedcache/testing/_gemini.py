"""Gemini's ``generateContent`` and ``streamGenerateContent?alt=sse``, as the fake answers
them: candidates with text or function calls, ``usageMetadata``, the dated
``modelVersion``, and errors in Google's shape.

The text depends only on the request (Gemini's ``seed`` included), as a deterministic
test fake should.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from typing import Any

from ._bodies import Generated
from ._text import story

__all__ = ["gemini", "google_error"]

# Aliases and the version each answers with.
VERSIONS = {"gemini-2.0-flash": "gemini-2.0-flash-001", "gemini-1.5-pro": "gemini-1.5-pro-002"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(status: int, message: str) -> Generated:
    """An error as Google's APIs shape it."""
    return Generated(
        status,
        {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}},
        indent=2,
    )


def gemini(path: str, query: dict[str, list[str]], payload: dict[str, Any]) -> Generated:
    """``POST /v1beta/models/MODEL:generateContent`` (or ``:streamGenerateContent``)."""
    name, _, method = path.rpartition("/models/")[2].partition(":")
    if method not in ("generateContent", "streamGenerateContent"):
        return google_error(404, f"Method {method or path!r} not found.")
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        return google_error(400, "* GenerateContentRequest.contents: contents is not specified")
    rng = random.Random(int.from_bytes(_digest(name, payload)[:8], "big"))
    prompt = max(1, len(json.dumps(contents).split()))
    declarations = [
        d
        for tool in payload.get("tools") or []
        if isinstance(tool, dict)
        for d in tool.get("functionDeclarations") or tool.get("function_declarations") or []
    ]
    answered = any(
        isinstance(part, dict) and ("functionResponse" in part or "function_response" in part)
        for content in contents
        if isinstance(content, dict)
        for part in content.get("parts") or []
    )
    if declarations and not answered:
        declared = declarations[0] if isinstance(declarations[0], dict) else {}
        properties = (declared.get("parameters") or {}).get("properties") or {}
        args = {p: rng.choice(["Mars", "Venus", "Titan"]) for p in properties}
        parts: list[dict[str, Any]] = [
            {"functionCall": {"name": declared.get("name"), "args": args}}
        ]
        words = 5
    else:
        text = story(rng, 40)
        parts = [{"text": text}]
        words = len(text.split())
    version = VERSIONS.get(name, name)
    response_id = secrets.token_urlsafe(16)
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": words,
        "totalTokenCount": prompt + words,
    }
    if method == "generateContent":
        return Generated(
            document={
                "candidates": [
                    {
                        "content": {"parts": parts, "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                "modelVersion": version,
                "responseId": response_id,
            }
        )
    if query.get("alt") != ["sse"]:
        return google_error(400, "the fake streams only with alt=sse")
    chunks = _split(parts)
    events = []
    for number, chunk in enumerate(chunks):
        last = number == len(chunks) - 1
        candidate: dict[str, Any] = {"content": {"parts": chunk, "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        document = {
            "candidates": [candidate],
            "usageMetadata": usage if last else {"promptTokenCount": prompt},
            "modelVersion": version,
            "responseId": response_id,
        }
        events.append(b"data: " + json.dumps(document).encode() + b"\r\n\r\n")
    return Generated(events=events, content_type="text/event-stream")


def _split(parts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    if "text" not in parts[0]:
        return [parts]
    words = parts[0]["text"].split(" ")
    third = max(1, len(words) // 3)
    pieces = [" ".join(words[i : i + third]) for i in range(0, len(words), third)]
    return [[{"text": (piece if i == 0 else " " + piece)}] for i, piece in enumerate(pieces)]


def _digest(model: str, payload: dict[str, Any]) -> bytes:
    return hashlib.sha256(
        json.dumps([model, payload], sort_keys=True, default=str).encode()
    ).digest()
