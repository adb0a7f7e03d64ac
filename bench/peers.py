"""seedcache beside its peers: cassetter and vcrpy replaying the same 1,000 recorded chat
interactions through the real SDK, and the floor (the SDK on a MockTransport answering the
recorded response from memory: same status, headers and bytes). seedcache replays from a
cassette, a cache directory and Redis (a real redis-server on loopback). Every ratio is
measured side by side, in alternating rounds, in this run. cassetter and vcrpy are
installed by `nox -s bench` only.

Three views of the same replays, because they cost different things:
- per call: a replay of an interaction already replayed once (each contender is warmed
  first). cassetter and vcrpy decode their whole file when it opens, seedcache decodes
  a large cassette's entry, or a directory's, when it is first read; warming puts every
  contender in its steady state, so the per-call ratio compares the replay path alone;
- open and replay each of the 1,000 interactions once: everything a suite replaying a
  shared cassette end to end pays, first reads and loading included;
- opening the 1,000-interaction cassette and replaying its first call (seedcache and
  cassetter), and the same first replay from a 10,000-entry cassette.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx2
import openai
from _redis import redis_server
from _table import row

import seedcache
from seedcache import CassetteStore, DiskStore, Entry, copy_entries
from seedcache.testing import FakeOpenAI

QUICK = "--quick" in sys.argv
INTERACTIONS = 1_000
BIG_CASSETTE = 10_000
# Many short rounds: a pause of this noisy machine lands on one contender's round, and
# the median over rounds leaves it out.
ROUNDS = 15 if QUICK else 41
CALLS_PER_ROUND = 20 if QUICK else 30
VCR_CALLS_PER_ROUND = 1 if QUICK else 2  # ~0.1 s each at 1,000 interactions
PROMPTS = [f"question {i}" for i in range(INTERACTIONS)]
MATCH = ["method", "scheme", "host", "port", "path", "query", "body"]


def ask(client: openai.OpenAI, prompt: str) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], seed=1
    )


def record(temp: Path) -> str:
    """Record every prompt once for each contender; return the base URL they were sent to."""
    with FakeOpenAI() as server:
        plain = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
        with seedcache.SeedCache.cassette(temp / "seedcache.json", mode="auto") as cache:
            wrapped = cache.wrap(plain)
            for prompt in PROMPTS:
                ask(wrapped, prompt)
        disk = DiskStore(temp / "seedcache-disk")
        copy_entries(CassetteStore(temp / "seedcache.json"), disk)
        disk.close()
        for name, open_cassette in _peers(temp, record_mode="all").items():
            with open_cassette():
                for prompt in PROMPTS:
                    ask(plain, prompt)
            print(f"  recorded {INTERACTIONS} interactions with {name}", file=sys.stderr)
        return server.base_url


def _peers(temp: Path, *, record_mode: str) -> dict[str, Callable[[], AbstractContextManager[Any]]]:
    peers: dict[str, Callable[[], AbstractContextManager[Any]]] = {}
    try:
        import cassetter
    except ImportError:
        print("  cassetter is not installed (nox -s bench installs it)", file=sys.stderr)
    else:
        cassetter_path = str(temp / "cassetter.yaml")
        peers["cassetter"] = lambda: cassetter.use_cassette(cassetter_path, record_mode=record_mode)
    try:
        import vcr
    except ImportError:
        print("  vcrpy is not installed (nox -s bench installs it)", file=sys.stderr)
    else:
        recorder = vcr.VCR(match_on=MATCH)
        vcr_path = str(temp / "vcrpy.yaml")
        if record_mode == "all":
            peers["vcrpy"] = lambda: recorder.use_cassette(vcr_path, record_mode="all")
        else:
            peers["vcrpy"] = lambda: recorder.use_cassette(
                vcr_path, record_mode="none", allow_playback_repeats=True
            )
    return peers


def floor_client(temp: Path, base_url: str) -> openai.OpenAI:
    """The SDK answered from memory with the recorded bytes: what no cache can beat."""
    answers = {}
    for entry in CassetteStore(temp / "seedcache.json").entries():
        prompt = entry.request["body"]["messages"][0]["content"]
        answers[prompt] = entry.takes[0]

    def handler(request: httpx2.Request) -> httpx2.Response:
        take = answers[json.loads(request.content)["messages"][0]["content"]]
        # The recorded headers too: the SDK reads them on every response.
        return httpx2.Response(take.status, headers=take.headers, content=take.body)

    http_client = openai.DefaultHttpxClient(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="bench", base_url=base_url, http_client=http_client)


def per_call(temp: Path, base_url: str, redis_url: str) -> dict[str, float]:
    """Median microseconds per replayed call, each contender in its own turn of each round."""
    plain = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)
    with seedcache.SeedCache(redis_url, mode="auto") as loader:
        copy_entries(CassetteStore(temp / "seedcache.json"), loader.store)
    caches = {
        "seedcache cassette": seedcache.SeedCache.cassette(temp / "seedcache.json", mode="replay"),
        "seedcache directory": seedcache.SeedCache(temp / "seedcache-disk", mode="replay"),
        "seedcache redis": seedcache.SeedCache(redis_url, mode="replay"),
    }
    contenders: dict[str, tuple[openai.OpenAI, Callable[[], AbstractContextManager[Any]], int]] = {
        "floor": (floor_client(temp, base_url), nullcontext, CALLS_PER_ROUND),
        **{name: (c.wrap(plain), nullcontext, CALLS_PER_ROUND) for name, c in caches.items()},
    }
    for name, open_cassette in _peers(temp, record_mode="none").items():
        calls = VCR_CALLS_PER_ROUND if name == "vcrpy" else CALLS_PER_ROUND
        contenders[name] = (plain, open_cassette, calls)
    # cassetter and vcrpy decode their file on every open, as each round does.
    for name in caches:
        for prompt in PROMPTS:
            ask(contenders[name][0], prompt)
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    chooser = random.Random(7)
    for _ in range(ROUNDS):
        for name, (client, open_cassette, calls) in contenders.items():
            prompts = [chooser.choice(PROMPTS) for _ in range(calls)]
            with open_cassette():
                ask(client, prompts[0])  # the first replay of a round is not timed
                samples = []
                for prompt in prompts:
                    started = time.perf_counter()
                    ask(client, prompt)
                    samples.append(time.perf_counter() - started)
            rounds[name].append(_median(samples))
    for cache in caches.values():
        cache.close()
    return {name: _median(values) * 1e6 for name, values in rounds.items()}


def end_to_end(temp: Path, base_url: str, redis_url: str) -> dict[str, float]:
    """Milliseconds to open the recordings and replay each interaction once, in an order
    of its own for each repeat: the floor's client is built before the clock starts."""
    plain = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)
    floor = floor_client(temp, base_url)

    def through(open_cache: Callable[[], seedcache.SeedCache]) -> Callable[[list[str]], None]:
        def run(prompts: list[str]) -> None:
            with open_cache() as cache:
                client = cache.wrap(plain)
                for prompt in prompts:
                    ask(client, prompt)

        return run

    def floor_run(prompts: list[str]) -> None:
        for prompt in prompts:
            ask(floor, prompt)

    runs: dict[str, Callable[[list[str]], None]] = {
        "floor": floor_run,
        "seedcache cassette": through(
            lambda: seedcache.SeedCache.cassette(temp / "seedcache.json", mode="replay")
        ),
        "seedcache directory": through(
            lambda: seedcache.SeedCache(temp / "seedcache-disk", mode="replay")
        ),
        "seedcache redis": through(lambda: seedcache.SeedCache(redis_url, mode="replay")),
    }
    peers = _peers(temp, record_mode="none")
    if "cassetter" in peers:
        open_cassetter = peers["cassetter"]

        def cassetter_run(prompts: list[str]) -> None:
            with open_cassetter():
                for prompt in prompts:
                    ask(plain, prompt)

        runs["cassetter"] = cassetter_run
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(2 if QUICK else 5):
        prompts = random.Random(repeat).sample(PROMPTS, len(PROMPTS))
        for name, run in runs.items():
            started = time.perf_counter()
            run(prompts)
            samples[name].append(time.perf_counter() - started)
    return {name: _median(values) * 1e3 for name, values in samples.items()}


def loading(temp: Path, base_url: str) -> dict[str, float]:
    """Milliseconds to open a 1,000-interaction cassette and replay its first call."""
    plain = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)

    def seedcache_load() -> None:
        with seedcache.SeedCache.cassette(temp / "seedcache.json", mode="replay") as cache:
            ask(cache.wrap(plain), PROMPTS[INTERACTIONS // 2])

    loads: dict[str, Callable[[], None]] = {"seedcache": seedcache_load}
    peers = _peers(temp, record_mode="none")
    if "cassetter" in peers:
        open_cassetter = peers["cassetter"]

        def cassetter_load() -> None:
            with open_cassetter():
                ask(plain, PROMPTS[INTERACTIONS // 2])

        loads["cassetter"] = cassetter_load
    big = big_cassette(temp)

    def big_load() -> None:
        with seedcache.SeedCache.cassette(big, mode="replay") as cache:
            ask(cache.wrap(plain), PROMPTS[INTERACTIONS // 2])

    loads[f"seedcache {BIG_CASSETTE:,}"] = big_load
    samples: dict[str, list[float]] = {name: [] for name in loads}
    for _ in range(3 if QUICK else 7):
        for name, load in loads.items():
            started = time.perf_counter()
            load()
            samples[name].append(time.perf_counter() - started)
    return {name: _median(values) * 1e3 for name, values in samples.items()}


def big_cassette(temp: Path) -> Path:
    """The 1,000 recorded interactions and 9,000 more like them (other keys, the same
    answers): a cassette of 10,000 entries whose middle prompt is a recorded one."""
    recorded = list(CassetteStore(temp / "seedcache.json").entries())
    path = temp / "seedcache-10k.json"
    store = CassetteStore(path)
    with store.batch():
        for number in range(BIG_CASSETTE):
            entry = recorded[number % INTERACTIONS]
            if number >= INTERACTIONS:
                request = json.loads(json.dumps(entry.request))
                request["body"]["messages"][0]["content"] = f"other question {number}"
                entry = Entry(f"{number:032x}", request, entry.takes)
            store.update(entry.key, lambda _, entry=entry: entry)
    return path


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def rows(
    calls: dict[str, float], whole: dict[str, float], loads: dict[str, float]
) -> Iterator[str]:
    floor = calls["floor"]
    yield "  per call (warm), µs: " + ", ".join(f"{name} {us:,.0f}" for name, us in calls.items())
    for name, goal in (
        ("seedcache cassette", 1.05),
        ("seedcache directory", 1.05),
        # Redis answers over loopback: one round trip per hit on top of the floor.
        ("seedcache redis", 1.15),
    ):
        ratio = calls[name] / floor
        yield row(f"{name} hit / floor", ratio, f"<= {goal}", ratio <= goal)
    best = max(calls["seedcache cassette"], calls["seedcache directory"])
    for peer in ("cassetter", "vcrpy"):
        if peer in calls:
            ratio = calls[peer] / best
            yield row(f"{peer} / seedcache per call", ratio, ">= 1.0", ratio >= 1.0)
    yield "  open + replay each interaction once, ms: " + ", ".join(
        f"{name} {ms:,.0f}" for name, ms in whole.items()
    )
    for name in ("seedcache cassette", "seedcache directory", "seedcache redis"):
        ratio = whole[name] / whole["floor"]
        yield f"  {name + ' / floor, each interaction once':<58} {ratio:9.2f}x"
    if "cassetter" in whole:
        ratio = max(whole["seedcache cassette"], whole["seedcache directory"]) / whole["cassetter"]
        yield row("seedcache / cassetter, each interaction once", ratio, "<= 1.0", ratio <= 1.0)
    yield "  load + first replay, ms: " + ", ".join(f"{n} {ms:,.0f}" for n, ms in loads.items())
    if "cassetter" in loads:
        ratio = loads["seedcache"] / loads["cassetter"]
        yield row("seedcache / cassetter, 1,000-entry cassette load", ratio, "<= 1.0", ratio <= 1.0)
    big = loads[f"seedcache {BIG_CASSETTE:,}"] / 1000
    yield row(
        f"seedcache {BIG_CASSETTE:,}-entry cassette, first replay", big, "<= 0.5", big <= 0.5, "s"
    )


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        temp = Path(directory)
        base_url = record(temp)
        with redis_server() as redis_url:
            calls = per_call(temp, base_url, redis_url)
            whole = end_to_end(temp, base_url, redis_url)
        loads = loading(temp, base_url)
    print(
        f"peers: {INTERACTIONS:,} recorded chat interactions, replayed through the SDK "
        f"({'quick' if QUICK else 'full'}; {time.perf_counter() - started:.0f} s)"
    )
    for line in rows(calls, whole, loads):
        print(line)


if __name__ == "__main__":
    main()
