"""Deterministic and random prose for the fake server's completions."""

from __future__ import annotations

import random

__all__ = ["story"]

_OPENINGS = (
    "In the year 2050,",
    "Long ago,",
    "On a quiet morning,",
    "Beyond the last station,",
    "In the not-so-distant future,",
    "At the edge of the map,",
)
_SUBJECTS = (
    "a team of astronauts",
    "a curious engineer",
    "the crew of the Odyssey",
    "a lone pilot",
    "two old friends",
    "a café owner from Lyon",
    "the navigator",
)
_VERBS = (
    "set out on",
    "prepared for",
    "dreamed of",
    "embarked on",
    "charted",
    "survived",
)
_OBJECTS = (
    "a journey to Mars",
    "a long voyage",
    "a mission beyond the stars",
    "the red planet",
    "a storm of dust",
    "an unexpected discovery",
    "the way home",
)
_ENDINGS = (
    "and nothing was ever the same.",
    "with courage and resilience.",
    "under a sky full of stars.",
    "while Earth slept below.",
    "— naïve, hopeful, brave.",
)


def story(rng: random.Random, words: int) -> str:
    """About ``words`` words of prose in short paragraphs, drawn from ``rng``."""
    sentences: list[str] = []
    count = 0
    while count < words:
        sentence = " ".join(
            (
                rng.choice(_OPENINGS),
                rng.choice(_SUBJECTS),
                rng.choice(_VERBS),
                rng.choice(_OBJECTS),
                rng.choice(_ENDINGS),
            )
        )
        sentences.append(sentence)
        count += len(sentence.split())
    paragraphs = [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    return "\n\n".join(paragraphs)
