"""A tiny application: it builds its own OpenAI client, as real code does.

Nothing here knows about seedcache. Its tests (``test_story_app.py``) replay the calls
from ``cassettes/examples/app/test_story_app/`` through the ``seedcache_proxy`` fixture, offline.
"""

from __future__ import annotations

from typing import Any

import openai

MODEL = "gpt-4o-mini"
SYSTEM = "You are a helpful assistant that generates short stories."


def _request(topic: str, seed: int | None) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Generate a short story about {topic}."},
        ],
        "max_tokens": 200,
        "temperature": 0.7,
        "seed": seed,
    }


def tell_story(topic: str, *, seed: int | None = None) -> str:
    """A short story about ``topic``; the same ``seed`` gives the same story (mostly)."""
    with openai.OpenAI() as client:  # reads OPENAI_API_KEY and OPENAI_BASE_URL
        reply = client.chat.completions.create(**_request(topic, seed))
    return reply.choices[0].message.content or ""


def stream_story(topic: str, *, seed: int) -> str:
    """The same story, streamed; returns the text once the stream has ended."""
    with openai.OpenAI() as client:
        stream = client.chat.completions.create(**_request(topic, seed), stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
