"""Rebuild cassettes/journey_to_mars.json from the figures the cookbook page published.

The cassette is made through seedcache itself: the example's four calls run in
``record`` mode against a transport that answers with the published responses, shaped
like 2023 chat completions (compact JSON, fingerprint ``fp_fefa7b2153``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai

import seedcache

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import journey_to_mars  # noqa: E402
from _cookbook import (  # noqa: E402
    FINGERPRINT,
    MODEL,
    PROMPT_TOKENS,
    SEEDED_STORY,
    UNSEEDED_STORIES,
)

# Around the day the page was published, 6 November 2023.
_CREATED = 1699290000
_IDS = (
    "chatcmpl-8HuqyPzDjGPUnm2ZyvSEhq8kE4Nvr",
    "chatcmpl-8HuqzJyxHqr3vPPbCjusmRw1n0Uqq",
    "chatcmpl-8Hur0UWc6yhDyEOIgwgPKg1vsDVjD",
    "chatcmpl-8Hur1xAK3KBDLmXzNTe7wXYJjpqsc",
)


def _published() -> Iterator[tuple[str, int]]:
    yield from UNSEEDED_STORIES
    yield SEEDED_STORY
    yield SEEDED_STORY


def _responder() -> httpx2.MockTransport:
    answers = iter(enumerate(_published()))

    def handler(request: httpx2.Request) -> httpx2.Response:
        index, (story, completion_tokens) = next(answers)
        body = {
            "id": _IDS[index],
            "object": "chat.completion",
            "created": _CREATED + 7 * index,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": story},
                    "finish_reason": "length" if completion_tokens == 200 else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": completion_tokens,
                "total_tokens": PROMPT_TOKENS + completion_tokens,
            },
            "system_fingerprint": FINGERPRINT,
        }
        return httpx2.Response(
            200,
            headers={
                "content-type": "application/json",
                "openai-version": "2020-10-01",
                "x-request-id": f"req_{index:032x}",
            },
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        )

    return httpx2.MockTransport(handler)


class _PublicationClock:
    """Time as it was on the day of the page: each call a couple of seconds later."""

    def __init__(self) -> None:
        self.now = float(_CREATED)

    def __call__(self) -> float:
        self.now += 2.5
        return self.now


def main() -> None:
    target = journey_to_mars.DEFAULT_CASSETTE
    target.unlink(missing_ok=True)
    with seedcache.SeedCache.cassette(target, mode="record", clock=_PublicationClock()) as cache:
        client = cache.wrap(openai.OpenAI(api_key="unused"), transport=_responder())
        messages = (journey_to_mars.SYSTEM_MESSAGE, journey_to_mars.USER_REQUEST)
        for seed in (None, None, journey_to_mars.SEED, journey_to_mars.SEED):
            client.chat.completions.create(
                model=MODEL,
                messages=[
                    {"role": "system", "content": messages[0]},
                    {"role": "user", "content": messages[1]},
                ],
                max_tokens=200,
                temperature=0.7,
                **({"seed": seed} if seed else {}),
            )
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
