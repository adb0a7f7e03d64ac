"""Token usage a response reported: chat and completions bodies, streams sent with
``include_usage``, embeddings, the Responses API. Read here, below the request path, so
counting a replay's usage never reaches up into reporting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._take import Take, loads_or_none

__all__ = ["TokenUsage", "usage_of"]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts one response reported."""

    input: int = 0
    output: int = 0
    cached_input: int = 0
    """Part of ``input`` the provider served from its prompt cache (cheaper)."""

    @property
    def total(self) -> int:
        """Input and output tokens together."""
        return self.input + self.output


def usage_of(take: Take) -> TokenUsage | None:
    """The usage ``take`` reported, or None when it reported none."""
    if take.status >= 400:
        return None
    if not take.is_stream:
        return _usage_in(loads_or_none(take.body))
    found = None
    for line in take.body.split(b"\n"):
        if line.startswith(b"data:") and b'"usage"' in line:
            found = _usage_in(loads_or_none(line[5:])) or found
    return found


def _usage_in(document: Any) -> TokenUsage | None:
    if not isinstance(document, dict):
        return None
    usage = document.get("usage")
    if not isinstance(usage, dict) and isinstance(document.get("response"), dict):
        usage = document["response"].get("usage")  # Responses API stream events
    if not isinstance(usage, dict):
        return None
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
