"""What a person reads in a take: the generated text, tool calls as JSON, token usage.

Two recordings of the same answer never have the same bytes (ids, timestamps, the
``obfuscation`` padding of every streamed chunk), so drift is judged on this content.
Streams are assembled from their deltas; Responses API streams use the final response
their last event carries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import xxhash

from ._take import Take, identity_of

__all__ = ["Content", "answers_alike", "content_of"]


@dataclass(frozen=True, slots=True)
class Content:
    """The readable content of one take."""

    text: str
    """Generated text; tool calls as ``tool call NAME {json}`` lines; choices labelled."""
    usage: dict[str, int] = field(default_factory=dict)
    """Top-level token counts as the API reported them (``prompt_tokens``, ...)."""


def content_of(take: Take) -> Content:
    """The content of ``take``, whatever endpoint it came from."""
    if take.is_stream:
        return _from_events(list(_events(take.body)))
    try:
        document = json.loads(take.body)
    except (ValueError, RecursionError):
        return Content(take.body.decode("utf-8", "replace"))
    return _from_document(document)


def answers_alike(a: Take, b: Take) -> bool:
    """Whether ``a`` and ``b`` answer alike: same status, backend and content. Ids,
    timestamps and latencies differ on every recording; a review should not see them."""
    return (
        a.status == b.status
        and identity_of(a) == identity_of(b)
        and content_of(a).text == content_of(b).text
    )


def _from_document(document: Any) -> Content:
    if not isinstance(document, dict):
        return Content(_json_text(document))
    usage = _usage(document.get("usage"))
    if isinstance(document.get("error"), dict):
        error = document["error"]
        return Content(f"error: {error.get('message') or _json_text(error)}", usage)
    if isinstance(document.get("choices"), list):
        texts = [_choice_text(c) for c in document["choices"] if isinstance(c, dict)]
        return Content(_label_choices(texts), usage)
    if isinstance(document.get("output"), list):
        return Content(_output_text(document["output"]), usage)
    if document.get("object") == "list" and isinstance(document.get("data"), list):
        return Content(_embeddings_text(document["data"]), usage)
    if isinstance(document.get("text"), str):  # audio transcriptions
        return Content(document["text"], usage)
    if document.get("type") == "message" and isinstance(document.get("content"), list):
        return Content(_anthropic_text(document["content"]), usage)  # Anthropic Messages
    if isinstance(document.get("candidates"), list):  # Gemini
        return Content(_gemini_text([document]), _usage(document.get("usageMetadata")))
    return Content(_json_text(document), usage)


def _anthropic_text(blocks: list[Any]) -> str:
    """Text blocks, then tool calls; thinking is left out (its signature differs on every
    answer, and what the model answered is what drift is about)."""
    lines = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            lines.append(block["text"])
        elif block.get("type") == "tool_use":
            lines.append(_tool_line(block.get("name"), block.get("input")))
    return "\n".join(lines)


def _gemini_text(chunks: list[Any]) -> str:
    """Each candidate's parts across ``chunks`` (one document, or a stream's events)."""
    texts: dict[int, list[str]] = {}
    for chunk in chunks:
        candidates = chunk.get("candidates") if isinstance(chunk, dict) else None
        for candidate in candidates if isinstance(candidates, list) else []:
            if not isinstance(candidate, dict):
                continue
            index = candidate.get("index", 0)
            lines = texts.setdefault(index if isinstance(index, int) else 0, [])
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    lines.append(part["text"])
                elif isinstance(part, dict) and isinstance(part.get("functionCall"), dict):
                    call = part["functionCall"]
                    lines.append("\n" + _tool_line(call.get("name"), call.get("args")))
    return _label_choices(["".join(texts[i]).strip("\n") for i in sorted(texts)])


def _choice_text(choice: dict[str, Any]) -> str:
    message = choice.get("message")
    if isinstance(message, dict):
        parts = [message.get("content"), message.get("refusal")]
        lines = [p for p in parts if isinstance(p, str) and p]
        lines.extend(_tool_calls(message))
        return "\n".join(lines)
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _tool_calls(message: dict[str, Any]) -> Iterator[str]:
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            yield _tool_line(function.get("name"), function.get("arguments"))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        yield _tool_line(legacy.get("name"), legacy.get("arguments"))


def _tool_line(name: Any, arguments: Any) -> str:
    return f"tool call {name} {_arguments_text(arguments)}"


def _arguments_text(arguments: Any) -> str:
    if not isinstance(arguments, str):
        return _json_text(arguments)
    try:
        # Equal arguments compare equal whatever their key order or spacing.
        return _json_text(json.loads(arguments))
    except (ValueError, RecursionError):
        return arguments  # truncated or invalid JSON: show what the model produced


def _output_text(output: list[Any]) -> str:
    lines: list[str] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict):
                    text = part.get("text", part.get("refusal"))
                    if isinstance(text, str):
                        lines.append(text)
        elif kind == "function_call":
            lines.append(_tool_line(item.get("name"), item.get("arguments")))
    return "\n".join(lines)


def _embeddings_text(data: list[Any]) -> str:
    lines = []
    for item in data:
        if not isinstance(item, dict):
            continue
        vector = item.get("embedding")
        size = f"{len(vector)} values" if isinstance(vector, list) else "base64"
        # The digest makes two different vectors read as different text.
        digest = xxhash.xxh3_64_hexdigest(_json_text(vector).encode())
        lines.append(f"embedding {item.get('index')}: {size}, digest {digest}")
    return "\n".join(lines)


def _from_events(events: list[Any]) -> Content:
    if any(isinstance(e, dict) and e.get("type") == "message_start" for e in events):
        return _from_anthropic_events(events)
    if any(isinstance(e, dict) and "candidates" in e for e in events):
        last: Any = next((e["usageMetadata"] for e in reversed(events) if "usageMetadata" in e), {})
        return Content(_gemini_text(events), _usage(last))
    for event in reversed(events):
        # Responses API streams end with the whole response in one event.
        response = event.get("response") if isinstance(event, dict) else None
        if isinstance(response, dict) and isinstance(response.get("output"), list):
            return _from_document(response)
    choices: dict[int, _ChoiceBuilder] = {}
    usage: dict[str, int] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        usage = _usage(event.get("usage")) or usage
        for choice in event.get("choices") or []:
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                choices.setdefault(index if isinstance(index, int) else 0, _ChoiceBuilder()).add(
                    choice
                )
    texts = [choices[i].text() for i in sorted(choices)]
    return Content(_label_choices(texts), usage)


def _from_anthropic_events(events: list[Any]) -> Content:
    """An Anthropic stream joined back into its message's blocks."""
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, int] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        message = event.get("message")
        usage = _usage(message.get("usage") if isinstance(message, dict) else None) or usage
        usage = {**usage, **_usage(event.get("usage"))}
        index = event.get("index")
        if not isinstance(index, int):
            continue
        if event.get("type") == "content_block_start" and isinstance(
            event.get("content_block"), dict
        ):
            blocks[index] = {**event["content_block"], "text": "", "json": ""}
        delta = event.get("delta")
        block = blocks.get(index)
        if event.get("type") != "content_block_delta" or block is None:
            continue
        if isinstance(delta, dict) and isinstance(delta.get("text"), str):
            block["text"] += delta["text"]
        elif isinstance(delta, dict) and isinstance(delta.get("partial_json"), str):
            block["json"] += delta["partial_json"]
    joined = []
    for index in sorted(blocks):
        block = blocks[index]
        if block.get("type") == "tool_use":
            joined.append({**block, "input": _parsed(block["json"])})
        else:
            joined.append(block)
    return Content(_anthropic_text(joined), usage)


def _parsed(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except (ValueError, RecursionError):
        return text


class _ChoiceBuilder:
    """Joins one choice's streamed deltas back into a message."""

    def __init__(self) -> None:
        self.text_parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            text = choice.get("text")  # legacy completions stream plain text
            if isinstance(text, str):
                self.text_parts.append(text)
            return
        for name in ("content", "refusal"):
            if isinstance(delta.get(name), str):
                self.text_parts.append(delta[name])
        for call in delta.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue
            index = call.get("index", 0)
            slot = self.calls.setdefault(index if isinstance(index, int) else 0, {})
            for part in ("name", "arguments"):
                if isinstance(function.get(part), str):
                    slot[part] = slot.get(part, "") + function[part]

    def text(self) -> str:
        lines = ["".join(self.text_parts)] if self.text_parts else []
        for index in sorted(self.calls):
            call = self.calls[index]
            lines.append(_tool_line(call.get("name"), call.get("arguments", "")))
        return "\n".join(lines)


def _events(body: bytes) -> Iterator[Any]:
    for line in body.split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            try:
                yield json.loads(line[5:])
            except (ValueError, RecursionError):
                continue


def _label_choices(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"[choice {i}]\n{text}" for i, text in enumerate(texts))


def _usage(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
