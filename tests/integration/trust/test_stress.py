"""Many processes on one store: nothing lost, nothing duplicated, each miss fetched once.

Marked ``stress``: run with the suite, and alone by ``nox -s stress``.
"""

from __future__ import annotations

import os
import textwrap
from collections import Counter

import pytest

from inner_sessions import finish, start_python
from seedcache import DiskStore
from seedcache._stores import open_store

PROCESSES = 8
# Each process asks REQUESTS of PROMPTS prompts: most prompts are asked by several
# processes at once. `nox -s stress` runs eight times as many (SEEDCACHE_STRESS_SCALE=8).
SCALE = int(os.environ.get("SEEDCACHE_STRESS_SCALE", "1"))
REQUESTS = 75 * SCALE
PROMPTS = 100 * SCALE

WORKER = (
    textwrap.dedent(
        """
    import asyncio, random, sys
    import openai, seedcache

    kind, directory, base_url, number = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    prompts = random.Random(number).sample(range(PROMPTS), REQUESTS)

    def request(prompt):
        return {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"prompt {prompt}"}],
            "seed": prompt % 7,
        }

    with seedcache.SeedCache(directory, mode="auto") as cache:
        if kind == "sync":
            with openai.OpenAI(api_key="k", base_url=base_url, max_retries=0) as raw:
                client = cache.wrap(raw)
                for prompt in prompts:
                    if prompt % 5 == 0:
                        list(client.chat.completions.create(**request(prompt), stream=True))
                    else:
                        client.chat.completions.create(**request(prompt))
        else:
            async def main():
                raw = openai.AsyncOpenAI(api_key="k", base_url=base_url, max_retries=0)
                client = cache.wrap(raw)
                for prompt in prompts:
                    if prompt % 5 == 0:
                        stream = await client.chat.completions.create(
                            **request(prompt), stream=True
                        )
                        async for _ in stream:
                            pass
                    else:
                        await client.chat.completions.create(**request(prompt))
                await raw.close()
                await cache.aclose()

            asyncio.run(main())
    """
    )
    .replace("PROMPTS", str(PROMPTS))
    .replace("REQUESTS", str(REQUESTS))
)


@pytest.fixture
def shared_location(store_kind: str, store_location: str) -> str:
    """One location every worker process opens: a directory, or a Redis namespace."""
    if store_kind == "disk":
        DiskStore(store_location).close()
    return store_location


@pytest.mark.stress
@pytest.mark.stores("disk", "redis")
def test_eight_processes_share_one_store(fake, shared_location, fork_server, tmp_path):
    workers = [
        start_python(
            fork_server,
            WORKER,
            "sync" if n % 2 else "async",
            shared_location,
            fake.base_url,
            str(n),
            where=tmp_path,
        )
        for n in range(PROCESSES)
    ]
    outputs = [finish(worker) for worker in workers]
    assert [err for err, code in outputs if code != 0] == []

    import random

    wanted = set()
    for n in range(PROCESSES):
        wanted.update(random.Random(n).sample(range(PROMPTS), REQUESTS))
    store = open_store(shared_location)
    try:
        entries = list(store.entries())
    finally:
        store.close()
    # Every distinct request fetched upstream exactly once, stored once, with one take.
    assert len(entries) == len(wanted)
    assert all(len(e.takes) == 1 for e in entries)
    assert fake.request_count == len(wanted)
    per_body = Counter(r.body for r in fake.requests)
    assert max(per_body.values()) == 1
