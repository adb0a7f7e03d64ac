"""OpenAI-shaped response bodies and stream events, built the way the real API builds them."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import struct
import time
from typing import Any

from ._text import story

__all__ = ["Generated", "generate"]


class Generated:
    """A response to send: status, JSON document or SSE events."""

    def __init__(
        self,
        status: int = 200,
        document: Any = None,
        events: list[bytes] | None = None,
        indent: int | None = 2,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.document = document
        self.events = events
        self.indent = indent
        self.raw = raw
        """Bytes sent as they are (file contents, images), with ``content_type``."""
        self.content_type = content_type
        self.headers = dict(headers or {})
        """Sent besides the usual ones (``retry-after-ms`` on an injected error)."""


def _rng(request: dict[str, Any], fingerprint: str | None, path: str) -> random.Random:
    """Seeded requests: text depends only on the request and the fingerprint."""
    seed = request.get("seed")
    if seed is None and path not in ("/v1/embeddings", "/v1/audio/transcriptions"):
        return random.Random(secrets.randbits(64))
    material = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
    digest = hashlib.sha256(
        json.dumps([material, fingerprint, path], sort_keys=True, default=str).encode()
    ).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _prompt_tokens(request: dict[str, Any]) -> int:
    messages = request.get("messages")
    if isinstance(messages, list):
        return sum(_tokens(str(m.get("content", ""))) + 4 for m in messages if isinstance(m, dict))
    return _tokens(json.dumps(request.get("prompt") or request.get("input") or ""))


def generate(
    path: str, request: dict[str, Any], fingerprint: str | None, model_fp: bool
) -> Generated:
    """The response for ``path``; ``model_fp`` False serves ``null`` fingerprints."""
    fp = fingerprint if model_fp else None
    rng = _rng(request, fingerprint, path)
    if path == "/v1/chat/completions":
        return _chat(request, fp, rng)
    if path == "/v1/completions":
        return _completion(request, fp, rng)
    if path == "/v1/embeddings":
        return _embeddings(request, rng)
    if path == "/v1/responses":
        return _responses(request, rng)
    return Generated(404, _error(f"Invalid URL (POST {path})", "invalid_request_error"), indent=4)


def _error(message: str, kind: str, param: str | None = None, code: str | None = None) -> Any:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _ident(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _chat_content(request: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    """(content, finish_reason), honouring max_tokens and JSON-schema response formats."""
    response_format = request.get("response_format") or {}
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return json.dumps(from_schema(schema, rng)), "stop"
    # Without a limit the model stops on its own, well before this.
    limit = request.get("max_tokens") or request.get("max_completion_tokens") or 4096
    text = story(rng, rng.randint(60, 260))
    words = text.split(" ")
    if len(words) > limit:
        return " ".join(words[:limit]), "length"
    return text, "stop"


def from_schema(schema: dict[str, Any], rng: random.Random) -> Any:
    """A value that validates against ``schema``: enough JSON Schema for pydantic models
    (objects, arrays, enums, consts, nullable and union types, ``$defs`` references)."""
    return _value(schema, rng, schema.get("$defs") or schema.get("definitions") or {}, 0)


def _value(schema: Any, rng: random.Random, defs: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 12:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _value(defs.get(ref.rsplit("/", 1)[-1], {}), rng, defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for union in ("anyOf", "oneOf", "allOf"):
        options = schema.get(union)
        if isinstance(options, list) and options:
            concrete = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _value((concrete or options)[0], rng, defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _value(sub, rng, defs, depth + 1) for name, sub in props.items()}
    if kind == "array":
        low = int(schema.get("minItems", 1))
        high = max(low, min(int(schema.get("maxItems", 3)), low + 2))
        items = schema.get("items", {})
        return [_value(items, rng, defs, depth + 1) for _ in range(rng.randint(low, high))]
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 100)))
    if kind == "number":
        return round(rng.uniform(schema.get("minimum", 0), schema.get("maximum", 100)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return rng.choice(("Mars", "Odyssey", "dust", "courage", "home"))


def _logprobs(text: str, rng: random.Random, top: int) -> list[dict[str, Any]]:
    """Token log-probabilities for ``text``: plausible, and as seeded as the text is."""
    entries = []
    for index, word in enumerate(text.split(" ")):
        token = word if index == 0 else " " + word
        chosen = -round(rng.random() ** 2 * 2.5, 6)
        alternatives = [{"token": token, "logprob": chosen, "bytes": list(token.encode())}]
        for rank in range(1, top):
            other = " " + rng.choice(("red", "dust", "stars", "home", "crew", "orbit"))
            logprob = round(chosen - rank - rng.random(), 6)
            alternatives.append({"token": other, "logprob": logprob, "bytes": list(other.encode())})
        entries.append(
            {
                "token": token,
                "logprob": chosen,
                "bytes": list(token.encode()),
                "top_logprobs": alternatives[:top],
            }
        )
    return entries


def _usage(request: dict[str, Any], completion: int) -> dict[str, Any]:
    prompt = _prompt_tokens(request)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat(request: dict[str, Any], fp: str | None, rng: random.Random) -> Generated:
    temperature = request.get("temperature")
    if isinstance(temperature, (int, float)) and not 0 <= temperature <= 2:
        return Generated(
            400,
            _error(
                f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                f"but got {temperature} instead.",
                "invalid_request_error",
                "temperature",
                "decimal_above_max_value",
            ),
            indent=2,
        )
    model = str(request.get("model", "gpt-4o-mini"))
    created = int(time.time())
    ident = _ident("chatcmpl-")
    count = max(1, int(request.get("n") or 1))
    choices = []
    for index in range(count):
        # Each choice its own seeded draw; the first is the one n=1 gives.
        choice_rng = rng if index == 0 else random.Random(rng.getrandbits(64))
        choices.append(_choice(request, choice_rng))
    completion = sum(choice.tokens for choice in choices)
    if request.get("stream"):
        return Generated(events=_chat_events(request, ident, created, model, fp, choices))
    document = {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": index,
                "message": choice.message,
                "logprobs": None
                if choice.logprobs is None
                else {"content": choice.logprobs, "refusal": None},
                "finish_reason": choice.finish,
            }
            for index, choice in enumerate(choices)
        ],
        "usage": _usage(request, completion),
        "service_tier": "default",
        "system_fingerprint": fp,
    }
    return Generated(document=document)


class _Choice:
    """One generated choice: its message, why it ended, its tokens and log-probabilities."""

    def __init__(
        self,
        message: dict[str, Any],
        finish: str,
        tokens: int,
        logprobs: list[dict[str, Any]] | None,
    ) -> None:
        self.message = message
        self.finish = finish
        self.tokens = tokens
        self.logprobs = logprobs


def _choice(request: dict[str, Any], rng: random.Random) -> _Choice:
    tools = request.get("tools")
    if tools:
        function = tools[0].get("function", {})
        arguments = json.dumps(from_schema(function.get("parameters", {}), rng))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": _ident("call_"),
                    "type": "function",
                    "function": {"name": function.get("name", "tool"), "arguments": arguments},
                }
            ],
            "refusal": None,
            "annotations": [],
        }
        return _Choice(message, "tool_calls", _tokens(arguments), None)
    content, finish = _chat_content(request, rng)
    message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    logprobs = None
    if request.get("logprobs"):
        logprobs = _logprobs(content, rng, int(request.get("top_logprobs") or 0))
    return _Choice(message, finish, _tokens(content), logprobs)


def _sse(document: Any) -> bytes:
    return (
        b"data: "
        + json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n\n"
    )


def _obfuscation() -> str:
    return secrets.token_urlsafe(secrets.randbelow(12) + 2)


def _chat_events(
    request: dict[str, Any],
    ident: str,
    created: int,
    model: str,
    fp: str | None,
    choices: list[_Choice],
) -> list[bytes]:
    base = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": fp,
    }
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))

    def chunk(
        index: int, delta: dict[str, Any], reason: str | None = None, logprobs: Any = None
    ) -> bytes:
        doc = {
            **base,
            "choices": [
                {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": reason}
            ],
        }
        if include_usage:
            doc["usage"] = None
        doc["obfuscation"] = _obfuscation()
        return _sse(doc)

    events = []
    for index, choice in enumerate(choices):
        events.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
        message = choice.message
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            events.append(chunk(index, {"tool_calls": [{"index": 0, **call}]}))
        else:
            words = str(message["content"]).split(" ")
            for position, word in enumerate(words):
                logprobs = None
                if choice.logprobs is not None:
                    logprobs = {"content": [choice.logprobs[position]], "refusal": None}
                text = word if position == 0 else " " + word
                events.append(chunk(index, {"content": text}, logprobs=logprobs))
        events.append(chunk(index, {}, choice.finish))
    if include_usage:
        completion = sum(choice.tokens for choice in choices)
        events.append(
            _sse(
                {
                    **base,
                    "choices": [],
                    "usage": _usage(request, completion),
                    "obfuscation": _obfuscation(),
                }
            )
        )
    events.append(b"data: [DONE]\n\n")
    return events


def _completion(request: dict[str, Any], fp: str | None, rng: random.Random) -> Generated:
    model = str(request.get("model", "gpt-3.5-turbo-instruct"))
    limit = request.get("max_tokens") or 16
    words = story(rng, 40).split(" ")[:limit]
    text = " " + " ".join(words)
    finish = "length" if len(words) >= limit else "stop"
    ident, created = _ident("cmpl-"), int(time.time())
    usage = {k: v for k, v in _usage(request, len(words)).items() if not k.endswith("details")}
    if request.get("stream"):
        events = [
            _sse(
                {
                    "id": ident,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "text": (" " if i else "") + w,
                            "index": 0,
                            "logprobs": None,
                            "finish_reason": finish if i == len(words) - 1 else None,
                        }
                    ],
                    "system_fingerprint": fp,
                }
            )
            for i, w in enumerate(words)
        ]
        return Generated(events=[*events, b"data: [DONE]\n\n"])
    return Generated(
        document={
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
            "system_fingerprint": fp,
        }
    )


def _embeddings(request: dict[str, Any], rng: random.Random) -> Generated:
    inputs = request.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    dims = int(request.get("dimensions") or 1536)
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for index, _ in enumerate(items):
        vector = [round(rng.uniform(-0.08, 0.08), 10) for _ in range(dims)]
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(_tokens(str(i)) for i in items)
    return Generated(
        document={
            "object": "list",
            "data": data,
            "model": str(request.get("model", "text-embedding-3-small")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _responses(request: dict[str, Any], rng: random.Random) -> Generated:
    model = str(request.get("model", "gpt-4.1-nano"))
    text_format = (request.get("text") or {}).get("format") or {}
    if isinstance(text_format, dict) and text_format.get("type") == "json_schema":
        text = json.dumps(from_schema(text_format.get("schema") or {}, rng))
    else:
        text = story(rng, rng.randint(20, 60))
    ident, created = _ident("resp_"), int(time.time())
    message_id = _ident("msg_")
    output = [
        {
            "id": message_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        }
    ]
    usage = {
        "input_tokens": _prompt_tokens(request),
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": _tokens(text),
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": _prompt_tokens(request) + _tokens(text),
    }
    response = {
        "id": ident,
        "object": "response",
        "created_at": created,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "temperature": request.get("temperature", 1.0),
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "usage": usage,
        "metadata": {},
    }
    if not request.get("stream"):
        return Generated(document=response)
    sequence = iter(range(10_000))

    def event(kind: str, payload: dict[str, Any]) -> bytes:
        doc = {"type": kind, "sequence_number": next(sequence), **payload}
        return f"event: {kind}\n".encode() + _sse(doc)

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events = [
        event("response.created", {"response": pending}),
        event("response.in_progress", {"response": pending}),
    ]
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    events.append(
        event(
            "response.output_item.added",
            {"output_index": 0, "item": {**output[0], "status": "in_progress", "content": []}},
        )
    )
    events.append(
        event(
            "response.content_part.added",
            {"item_id": message_id, "output_index": 0, "content_index": 0, "part": part},
        )
    )
    for i, word in enumerate(text.split(" ")):
        events.append(
            event(
                "response.output_text.delta",
                {
                    "item_id": message_id,
                    "output_index": 0,
                    "content_index": 0,
                    "logprobs": [],
                    "delta": word if i == 0 else " " + word,
                    "obfuscation": _obfuscation(),
                },
            )
        )
    events.append(
        event(
            "response.output_text.done",
            {
                "item_id": message_id,
                "output_index": 0,
                "content_index": 0,
                "logprobs": [],
                "text": text,
            },
        )
    )
    events.append(event("response.output_item.done", {"output_index": 0, "item": output[0]}))
    events.append(event("response.completed", {"response": response}))
    return Generated(events=events)
