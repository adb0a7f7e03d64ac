"""Replay speed: hits against the SDK's floor, at scale, against vcrpy; storage; import cost.

Every ratio compares two things measured side by side, in alternating rounds, in this
run. `--quick` shrinks the sizes for a fast look; the goals are for the full run.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import openai
from _redis import redis_server
from _table import alternate, median_seconds, row

import seedcache
from seedcache import CassetteStore, DiskStore, Entry, Take
from seedcache._stores._codec import encode_entry
from seedcache.testing import FakeOpenAI

QUICK = "--quick" in sys.argv
ROUNDS = 5 if QUICK else 15
PER_ROUND = 20 if QUICK else 50
BIG_STORE = 10_000 if QUICK else 100_000
BIG_CASSETTE = 1_000
API = "https://api.openai.com/v1"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Mars?"}], "seed": 1}
rng = random.Random(7)


def chat_body() -> bytes:
    text = " ".join(rng.choice(["red", "dust", "rocket", "orbit", "crew"]) for _ in range(150))
    document = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1790000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 150, "total_tokens": 181},
        "system_fingerprint": "fp_bench",
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def embeddings_body() -> bytes:
    vector = [round(rng.uniform(-0.1, 0.1), 9) for _ in range(1536)]
    document = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def stream_body() -> bytes:
    events = []
    for index in range(200):
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1790000000,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "delta": {"content": f"w{index} "}, "finish_reason": None}],
            "obfuscation": "x" * (index % 7),
        }
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    return b"".join(events) + b"data: [DONE]\n\n"


BODIES = {"chat": chat_body(), "embeddings": embeddings_body(), "stream": stream_body()}


def mock_transport() -> httpx2.MockTransport:
    """Serves the same bytes as the recorded takes, from memory: the SDK's floor."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        payload = json.loads(request.content)
        if request.url.path.endswith("/embeddings"):
            body, kind = BODIES["embeddings"], "application/json"
        elif payload.get("stream"):
            body, kind = BODIES["stream"], "text/event-stream; charset=utf-8"
        else:
            body, kind = BODIES["chat"], "application/json"
        return httpx2.Response(200, headers={"content-type": kind}, content=body)

    return httpx2.MockTransport(handler)


def floor_client() -> openai.OpenAI:
    http_client = openai.DefaultHttpxClient(transport=mock_transport())
    return openai.OpenAI(api_key="bench", base_url=API, http_client=http_client)


CALLS: dict[str, Callable[[openai.OpenAI], object]] = {
    "chat": lambda c: c.chat.completions.create(**CHAT),
    "embeddings": lambda c: c.embeddings.create(model="text-embedding-3-small", input="hi"),
    "stream": lambda c: list(c.chat.completions.create(**CHAT, stream=True)),
}


def recorded_cache(make: Callable[[str], seedcache.SeedCache]) -> openai.OpenAI:
    """Record the three calls once, then return a replay-mode client over the same store."""
    with make("record") as recorder:
        client = recorder.wrap(
            openai.OpenAI(api_key="bench", base_url=API), transport=mock_transport()
        )
        for call in CALLS.values():
            call(client)
    cache = make("replay")
    return cache.wrap(openai.OpenAI(api_key="bench", base_url=API), transport=mock_transport())


def hit_overhead(lines: list[str], temp: Path, redis_url: str) -> None:
    floor = floor_client()
    stores = {
        "disk": recorded_cache(lambda mode: seedcache.SeedCache(temp / "disk", mode=mode)),
        "cassette": recorded_cache(
            lambda mode: seedcache.SeedCache.cassette(temp / "c.json", mode=mode)
        ),
        "redis": recorded_cache(lambda mode: seedcache.SeedCache(redis_url, mode=mode)),
    }
    for kind, call in CALLS.items():
        contenders = {"floor": lambda call=call: call(floor)}
        contenders.update({name: (lambda c=c, call=call: call(c)) for name, c in stores.items()})
        medians = alternate(contenders, ROUNDS, PER_ROUND)
        for name in stores:
            # Redis answers over loopback: one round trip per hit on top of the floor.
            goal = 1.15 if name == "redis" else 1.10 if kind == "stream" else 1.05
            ratio = medians[name] / medians["floor"]
            lines.append(
                row(
                    f"hit / MockTransport, {kind}, {name} ({medians['floor'] * 1000:.2f} ms floor)",
                    ratio,
                    f"<= {goal}",
                    ratio <= goal,
                )
            )


def async_hit_overhead(lines: list[str], temp: Path) -> None:
    """The chat hit from an `AsyncOpenAI` client, over the stores `hit_overhead` recorded."""
    loop = asyncio.new_event_loop()
    floor = openai.AsyncOpenAI(
        api_key="bench",
        base_url=API,
        http_client=openai.DefaultAsyncHttpxClient(transport=mock_transport()),
    )
    caches = {
        "disk": seedcache.SeedCache(temp / "disk", mode="replay"),
        "cassette": seedcache.SeedCache.cassette(temp / "c.json", mode="replay"),
    }
    clients = {"floor": floor}
    for name, cache in caches.items():
        raw = openai.AsyncOpenAI(api_key="bench", base_url=API)
        clients[name] = cache.wrap(raw, transport=mock_transport())
    contenders = {
        name: (lambda c=c: loop.run_until_complete(c.chat.completions.create(**CHAT)))
        for name, c in clients.items()
    }
    medians = alternate(contenders, ROUNDS, PER_ROUND)
    for name in caches:
        ratio = medians[name] / medians["floor"]
        floor_ms = medians["floor"] * 1000
        label = f"hit / MockTransport, chat from AsyncOpenAI, {name} ({floor_ms:.2f} ms floor)"
        lines.append(row(label, ratio, "<= 1.05", ratio <= 1.05))
    loop.close()


def fill_disk(directory: Path, count: int) -> None:
    store = DiskStore(directory)
    filler = Take(200, (("content-type", "application/json"),), BODIES["chat"], "fp_x", "m", 0, 1)
    with store.batch():
        for number in range(count):
            key = f"{rng.getrandbits(128):032x}"
            entry = Entry(
                key, {"method": "POST", "url": f"{API}/x", "body": {"n": number}}, [filler]
            )
            store.update(key, lambda _, entry=entry: entry)
    store.close()


def scale(lines: list[str], temp: Path) -> None:
    clients = {}
    for label, size in (("small", 100), ("big", BIG_STORE)):
        directory = temp / f"scale-{label}"
        fill_disk(directory, size)
        clients[label] = recorded_cache(lambda mode, d=directory: seedcache.SeedCache(d, mode=mode))
    medians = alternate(
        {k: (lambda c=c: CALLS["chat"](c)) for k, c in clients.items()}, ROUNDS, PER_ROUND
    )
    ratio = medians["big"] / medians["small"]
    lines.append(
        row(f"hit with {BIG_STORE:,} entries / with 100 (disk)", ratio, "<= 1.2", ratio <= 1.2)
    )


def vcrpy_rows(lines: list[str], temp: Path) -> None:
    try:
        import vcr
    except ImportError:
        lines.append("  vcrpy is not installed: `pip install vcrpy` to compare (nox -s bench does)")
        return
    prompts = [f"question {i}" for i in range(BIG_CASSETTE)]
    target = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": prompts[BIG_CASSETTE // 2]}],
    }
    recorder = vcr.VCR(match_on=["method", "scheme", "host", "port", "path", "query", "body"])
    with FakeOpenAI() as server:
        plain = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
        for count in (1, BIG_CASSETTE):
            chosen = prompts[:count] if count > 1 else [target["messages"][0]["content"]]
            with recorder.use_cassette(str(temp / f"vcr-{count}.yaml"), record_mode="all"):
                for prompt in chosen:
                    plain.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
                    )
            with seedcache.SeedCache.cassette(temp / f"sc-{count}.json", mode="auto") as cache:
                wrapped = cache.wrap(plain)
                for prompt in chosen:
                    wrapped.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
                    )
        base_url = server.base_url
    replay_vcr = vcr.VCR(
        match_on=["method", "scheme", "host", "port", "path", "query", "body"], record_mode="none"
    )
    client = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)
    for count in (1, BIG_CASSETTE):
        vcr_path, sc_path = str(temp / f"vcr-{count}.yaml"), temp / f"sc-{count}.json"

        def vcr_load(vcr_path: str = vcr_path) -> None:
            with replay_vcr.use_cassette(vcr_path):
                pass

        def sc_load(sc_path: Path = sc_path) -> None:
            seedcache.SeedCache.cassette(sc_path, mode="replay").close()

        loads = alternate({"vcrpy": vcr_load, "seedcache": sc_load}, 3, 3)
        with replay_vcr.use_cassette(vcr_path, allow_playback_repeats=True):
            vcr_call = median_seconds(
                lambda: client.chat.completions.create(**target), 5 if QUICK else 15
            )
        cache = seedcache.SeedCache.cassette(sc_path, mode="replay")
        wrapped = cache.wrap(client)
        sc_call = median_seconds(
            lambda wrapped=wrapped: wrapped.chat.completions.create(**target),
            20 if QUICK else 50,
        )
        cache.close()
        call_ratio = vcr_call / sc_call
        load_ratio = loads["vcrpy"] / loads["seedcache"]
        big = count == BIG_CASSETTE
        lines.append(
            row(
                f"vcrpy / seedcache per call, {count} interaction(s) "
                f"({vcr_call * 1000:.1f} vs {sc_call * 1000:.2f} ms)",
                call_ratio,
                ">= 50" if big else "-",
                call_ratio >= 50 or not big,
            )
        )
        lines.append(
            row(
                f"vcrpy / seedcache cassette load, {count} interaction(s) "
                f"({loads['vcrpy'] * 1000:.0f} vs {loads['seedcache'] * 1000:.1f} ms)",
                load_ratio,
                ">= 10" if big else "-",
                load_ratio >= 10 or not big,
            )
        )


def cassette_scale(lines: list[str], temp: Path) -> None:
    clients = {}
    for count in (1, BIG_CASSETTE):
        path = temp / f"scale-{count}.json"
        store = CassetteStore(path)
        filler = Take(
            200, (("content-type", "application/json"),), BODIES["chat"], "fp_x", "m", 0, 1
        )
        with store.batch():
            for number in range(count - 1):
                key = f"{rng.getrandbits(128):032x}"
                entry = Entry(
                    key, {"method": "POST", "url": f"{API}/x", "body": {"n": number}}, [filler]
                )
                store.update(key, lambda _, entry=entry: entry)
        clients[count] = recorded_cache(
            lambda mode, p=path: seedcache.SeedCache.cassette(p, mode=mode)
        )
    medians = alternate(
        {k: (lambda c=c: CALLS["chat"](c)) for k, c in clients.items()}, ROUNDS, PER_ROUND
    )
    ratio = medians[BIG_CASSETTE] / medians[1]
    lines.append(
        row(f"hit from a {BIG_CASSETTE:,}-entry cassette / 1-entry", ratio, "<= 1.2", ratio <= 1.2)
    )


def storage(lines: list[str]) -> None:
    for kind in ("chat", "embeddings"):
        body = BODIES[kind]
        take = Take(200, (("content-type", "application/json"),), body, "fp_x", "gpt-4o-mini", 1, 1)
        frame = encode_entry(Entry("ab" * 16, {"method": "POST", "url": API, "body": {}}, [take]))
        ratio = len(frame) / len(body)
        lines.append(
            row(
                f"disk bytes per take / body bytes, {kind} ({len(body):,} B body)",
                ratio,
                "<= 1.0",
                ratio <= 1.0,
            )
        )


def startup(lines: list[str]) -> None:
    # What a program using the cache imports (`import seedcache` alone imports names on
    # first use), in alternating rounds: two medians taken apart differed by the noise.
    def run(code: str) -> Callable[[], object]:
        return lambda: subprocess.run([sys.executable, "-c", code], check=True)

    medians = alternate(
        {
            "openai": run("import openai"),
            "both": run("import openai; from seedcache import SeedCache"),
        },
        rounds=5,
        per_round=3,
    )
    extra_ms = (medians["both"] - medians["openai"]) * 1000
    lines.append(
        row(
            f"import seedcache's SeedCache on top of openai ({medians['openai'] * 1000:.0f} ms)",
            extra_ms,
            "<= 50",
            extra_ms <= 50,
            unit="ms",
        )
    )


def main() -> None:
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        temp = Path(directory)
        started = time.perf_counter()
        with redis_server() as redis_url:
            hit_overhead(lines, temp, redis_url)
        async_hit_overhead(lines, temp)
        scale(lines, temp)
        cassette_scale(lines, temp)
        vcrpy_rows(lines, temp)
        storage(lines)
        startup(lines)
    print(
        f"replay benchmarks ({'quick' if QUICK else 'full'}; {time.perf_counter() - started:.0f} s)"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
