"""Anthropic's Messages API, as the fake answers it: messages (text, system prompt, tool
use, extended thinking, ``stop_reason``), ``event:``/``data:`` streams with ``ping`` and
``message_stop``, token counting, and errors in Anthropic's own shape (529 overloaded).

Seeded as the OpenAI routes are: Anthropic has no ``seed``, so the text depends only on
the request (and the dated model), as a deterministic test fake should.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from typing import Any

from ._bodies import Generated
from ._text import story

__all__ = ["anthropic_error", "count_tokens", "messages"]

# Aliases the real API resolves to a dated model, named in every answer.
DATED = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
}


def anthropic_error(status: int, kind: str, message: str) -> Generated:
    """An error as the Messages API shapes it."""
    return Generated(
        status,
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": _id("req_")},
        indent=None,
    )


def count_tokens(payload: dict[str, Any]) -> Generated:
    """``POST /v1/messages/count_tokens``."""
    return Generated(document={"input_tokens": _input_tokens(payload)}, indent=None)


def messages(payload: dict[str, Any]) -> Generated:
    """``POST /v1/messages``: a message, or its stream when ``stream`` is true."""
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        return anthropic_error(400, "invalid_request_error", "model: Field required")
    if not isinstance(payload.get("max_tokens"), int):
        return anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    rng = random.Random(int.from_bytes(_digest(payload)[:8], "big"))
    model = DATED.get(model, model)
    content, stop = _content(payload, rng)
    output = sum(_words(block) for block in content)
    usage = {
        "input_tokens": _input_tokens(payload),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard",
    }
    message = {
        "id": _id("msg_01"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if payload.get("stream"):
        return Generated(events=_events(message), content_type="text/event-stream")
    return Generated(document=message, indent=None)


def _content(payload: dict[str, Any], rng: random.Random) -> tuple[list[dict[str, Any]], str]:
    blocks: list[dict[str, Any]] = []
    thinking = payload.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        blocks.append({"type": "thinking", "thinking": story(rng, 20), "signature": _id("sig")})
    tools = payload.get("tools")
    choice = payload.get("tool_choice") or {}
    last = (payload.get("messages") or [{}])[-1]
    answered_tool = (
        isinstance(last, dict)
        and isinstance(last.get("content"), list)
        and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"])
    )
    if isinstance(tools, list) and tools and not answered_tool and choice.get("type") != "none":
        tool = tools[0] if isinstance(tools[0], dict) else {}
        properties = (tool.get("input_schema") or {}).get("properties") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": _id("toolu_01"),
                "name": tool.get("name", "tool"),
                "input": {name: rng.choice(["Mars", "Venus", "Titan"]) for name in properties},
            }
        )
        return blocks, "tool_use"
    limit = payload["max_tokens"]
    text = story(rng, min(60, max(1, limit)))
    words = text.split(" ")
    stop = "end_turn"
    if len(words) > limit:
        text, stop = " ".join(words[:limit]), "max_tokens"
    blocks.append({"type": "text", "text": text})
    return blocks, stop


def _events(message: dict[str, Any]) -> list[bytes]:
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        opening, deltas = _block_deltas(block)
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        for delta in deltas:
            events.append(
                _event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def _block_deltas(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if block["type"] == "text":
        pieces = _pieces(block["text"])
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]
    if block["type"] == "thinking":
        deltas: list[dict[str, Any]] = [
            {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])
        ]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
        return {"type": "thinking", "thinking": "", "signature": ""}, deltas
    arguments = json.dumps(block["input"])
    opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
    return opening, [{"type": "input_json_delta", "partial_json": p} for p in _pieces(arguments)]


def _pieces(text: str, size: int = 24) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _input_tokens(payload: dict[str, Any]) -> int:
    text = json.dumps([payload.get("system"), payload.get("messages"), payload.get("tools")])
    return max(1, len(text.split()))


def _words(block: dict[str, Any]) -> int:
    text = block.get("text") or block.get("thinking") or json.dumps(block.get("input"))
    return max(1, len(str(text).split()))


def _digest(payload: dict[str, Any]) -> bytes:
    material = {k: v for k, v in payload.items() if k != "stream"}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).digest()


def _id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
