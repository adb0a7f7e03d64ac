"""Token usage a response reported: chat and completions bodies, streams sent with
``include_usage``, embeddings, the Responses API, Anthropic messages and their streams,
Gemini's ``usageMetadata``. Read here, below the request path, so
counting a replay's usage never reaches up into reporting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._take import Take, loads_or_none

__all__ = ["TokenUsage", "remember_usage", "usage_of"]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts one response reported."""

    input: int = 0
    output: int = 0
    cached_input: int = 0
    """Part of ``input`` the provider served from its prompt cache (cheaper)."""
    cache_write_input: int = 0
    """Part of ``input`` written to the provider's prompt cache (Anthropic: dearer)."""

    @property
    def total(self) -> int:
        """Input and output tokens together."""
        return self.input + self.output


def usage_of(take: Take) -> TokenUsage | None:
    """The usage ``take`` reported, or None when it reported none; read once per take."""
    if take.status >= 400:
        return None
    known = take.usage_read
    if known is not None:
        usage: TokenUsage | None = known[0]
        return usage
    usage = _usage_in(loads_or_none(take.body)) if not take.is_stream else _stream_usage(take)
    _remember(take, usage)
    return usage


def remember_usage(take: Take, document: Any) -> None:
    """Note the usage of ``take``, whose JSON body a store just decoded from ``document``:
    a replay's usage is then read without parsing the body again."""
    if take.status < 400 and not take.is_stream:
        _remember(take, _usage_in(document))


def _remember(take: Take, usage: TokenUsage | None) -> None:
    # Takes are frozen for their holders; this is a cache of what their body says.
    object.__setattr__(take, "usage_read", (usage,))


def _stream_usage(take: Take) -> TokenUsage | None:
    # Streams report usage in pieces: Anthropic's input in message_start and the final
    # output in message_delta, Gemini's prompt early and the rest in the last chunk,
    # OpenAI's all in the last chunk. The latest non-zero count of each kind wins.
    found = None
    for line in take.body.split(b"\n"):
        if line.startswith(b"data:") and (b'"usage' in line):
            found = _merged(found, _usage_in(loads_or_none(line[5:])))
    return found


def _merged(before: TokenUsage | None, after: TokenUsage | None) -> TokenUsage | None:
    if before is None or after is None:
        return after or before
    return TokenUsage(
        input=after.input or before.input,
        output=after.output or before.output,
        cached_input=after.cached_input or before.cached_input,
        cache_write_input=after.cache_write_input or before.cache_write_input,
    )


def _usage_in(document: Any) -> TokenUsage | None:
    if not isinstance(document, dict):
        return None
    gemini = document.get("usageMetadata")
    if isinstance(gemini, dict):
        return TokenUsage(
            input=_count(gemini.get("promptTokenCount")),
            # Thinking is billed as output.
            output=_count(gemini.get("candidatesTokenCount"))
            + _count(gemini.get("thoughtsTokenCount")),
            cached_input=_count(gemini.get("cachedContentTokenCount")),
        )
    usage = document.get("usage")
    for wrapper in ("response", "message"):  # Responses API and Anthropic stream events
        if not isinstance(usage, dict) and isinstance(document.get(wrapper), dict):
            usage = document[wrapper].get("usage")
    if not isinstance(usage, dict):
        return None
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        # Anthropic counts cached and cache-writing input apart from input_tokens.
        read = _count(usage.get("cache_read_input_tokens"))
        written = _count(usage.get("cache_creation_input_tokens"))
        return TokenUsage(
            input=_count(usage.get("input_tokens")) + read + written,
            output=_count(usage.get("output_tokens")),
            cached_input=read,
            cache_write_input=written,
        )
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    return TokenUsage(
        input=_count(usage.get("prompt_tokens", usage.get("input_tokens"))),
        output=_count(usage.get("completion_tokens", usage.get("output_tokens"))),
        cached_input=_count(details.get("cached_tokens") if isinstance(details, dict) else 0),
    )


# No answer uses more tokens than this; a larger count is planted, and would add
# astronomical dollars to the stored totals (or overflow a float).
_MAX_TOKENS = 10**9


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _MAX_TOKENS:
        return 0
    return value
