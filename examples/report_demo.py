"""Build a small cache that drifted, and its `seedcache report --html` page.

Runs offline against seedcache's fake OpenAI server: two backend fingerprints over a
day, keys refreshed when the fingerprint changed (their output changed with it), seeded
requests recorded more than once, and replays that saved tokens.

    python examples/report_demo.py DIRECTORY    # writes DIRECTORY/report.html
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import openai

from seedcache import SeedCache
from seedcache._inspect._catalog import Catalog
from seedcache._inspect._overview import gather
from seedcache._inspect._overview_html import render_html
from seedcache.testing import FakeOpenAI

HOUR = 3600.0
PROMPTS = ["Write a short story about a journey to Mars.", "Name three moons of Jupiter."]


class Clock:
    def __init__(self) -> None:
        self.now = time.time() - 30 * HOUR

    def __call__(self) -> float:
        return self.now


def ask(cache: SeedCache, fake: FakeOpenAI, prompt: str, seed: int | None = 123) -> None:
    with openai.OpenAI(api_key="demo", base_url=fake.base_url) as client:
        cache.wrap(client).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt}],
            seed=seed,
            max_tokens=60,
        )


def main(directory: Path) -> Path:
    clock = Clock()
    with FakeOpenAI() as fake:
        fake.fingerprint = "fp_f33640a400"
        with SeedCache(directory, mode="auto", clock=clock) as cache:
            for prompt in PROMPTS:
                ask(cache, fake, prompt)
                ask(cache, fake, prompt)  # a seeded repeat: a second take
            ask(cache, fake, "Describe the red dust.", seed=None)
        clock.now += 20 * HOUR
        fake.fingerprint = "fp_a7d06e1d8f"  # the backend changed
        with SeedCache(directory, mode="auto", clock=clock) as cache:
            ask(cache, fake, "Which planet is largest?")
        with SeedCache(directory, mode="refresh", clock=clock) as cache:
            for prompt in PROMPTS:
                ask(cache, fake, prompt)
        with SeedCache(directory, mode="replay", clock=clock) as cache:
            for _ in range(25):
                for prompt in PROMPTS:
                    ask(cache, fake, prompt)
        with SeedCache(directory, mode="replay") as cache:
            page = render_html(gather(Catalog(cache.store)))
    target = directory / "report.html"
    target.write_text(page)
    return target


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".seedcache-report-demo")))
