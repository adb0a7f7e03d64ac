"""Refresh acts on a backend change in the run that meets it, with nothing pinned.

The SDK talks over HTTP to the fake server; the server's fingerprint or the dated model
behind an alias changes between runs, as the real backend's do.
"""

from __future__ import annotations

import time

import pytest

from helpers import MESSAGES, make_client, stored_bytes
from seedcache import Action, SeedCache

TOPICS = ["mars", "venus", "the moon", "titan"]


def ask(cache: SeedCache, fake, content: str, *, model: str = "gpt-4o-mini"):
    """One seeded chat call; returns (text, action, fingerprint, model named by the answer)."""
    client = cache.wrap(make_client(fake))
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[*MESSAGES[:1], {"role": "user", "content": content}], seed=123
    )
    completion = raw.parse()
    action = raw.http_response.extensions["seedcache"].action
    return completion.choices[0].message.content, action, completion.system_fingerprint


def record(make_cache, fake, topics=TOPICS, **kwargs) -> dict[str, str]:
    recorder = make_cache("auto")
    return {topic: ask(recorder, fake, topic, **kwargs)[0] for topic in topics}


def test_a_changed_fingerprint_is_refreshed_in_the_run_that_meets_it(fake, make_cache):
    recorded = record(make_cache, fake)
    assert fake.request_count == 4
    fake.fingerprint = "fp_new0000"

    refresher = make_cache("refresh")
    answers = [ask(refresher, fake, topic) for topic in TOPICS]

    assert [a[1] for a in answers] == [Action.REFRESHED] * 4
    assert [a[2] for a in answers] == ["fp_new0000"] * 4
    assert all(answers[i][0] != recorded[t] for i, t in enumerate(TOPICS))
    # The first check asks three times before it calls fp_a gone (a model may serve two
    # fingerprints side by side); the other takes of fp_a are then re-fetched once each.
    assert fake.request_count == 4 + 3 + 3
    stats = refresher.stats()
    assert (stats.refreshed, stats.fingerprint_changes, stats.output_changes) == (4, 4, 4)
    # The next run finds the new recordings current: one live call to learn that.
    again = make_cache("refresh")
    assert [ask(again, fake, t)[1] for t in TOPICS] == [Action.CONFIRMED] + [Action.HIT] * 3
    assert fake.request_count == 11


def test_with_no_change_a_run_costs_one_live_call_per_model_and_replays_the_recording(
    fake, make_cache, store_kind, tmp_path
):
    recorded = record(make_cache, fake)
    nano = record(make_cache, fake, topics=["io", "europa"], model="gpt-4.1-nano")
    before = fake.request_count
    entries = sorted(make_cache("replay").store.entries(), key=lambda e: e.key)
    files = stored_bytes(tmp_path)

    refresher = make_cache("refresh")
    mini_answers = [ask(refresher, fake, t) for t in TOPICS]
    nano_answers = [ask(refresher, fake, t, model="gpt-4.1-nano") for t in ["io", "europa"]]

    assert fake.request_count - before == 2
    assert [a[0] for a in mini_answers] == [recorded[t] for t in TOPICS]
    assert [a[0] for a in nano_answers] == [nano["io"], nano["europa"]]
    assert [a[1] for a in mini_answers] == [Action.CONFIRMED] + [Action.HIT] * 3
    assert [a[1] for a in nano_answers] == [Action.CONFIRMED, Action.HIT]
    stats = refresher.stats()
    assert (stats.refreshed, stats.confirmed, stats.hits) == (0, 2, 4)
    refresher.close()
    assert sorted(make_cache("replay").store.entries(), key=lambda e: e.key) == entries
    if store_kind == "cassette":  # the file committed beside the tests does not move
        assert stored_bytes(tmp_path) == files


def test_a_new_dated_model_behind_an_alias_is_a_backend_change(fake, make_cache):
    fake.model_versions["gpt-4o"] = "gpt-4o-2024-05-13"
    client_kwargs = {"model": "gpt-4o", "input": "Name a planet.", "max_output_tokens": 30}

    def respond(cache):
        raw = cache.wrap(make_client(fake)).responses.with_raw_response.create(**client_kwargs)
        response = raw.parse()
        return response.model, raw.http_response.extensions["seedcache"].action

    assert respond(make_cache("auto")) == ("gpt-4o-2024-05-13", Action.RECORDED)
    # Same dated model: the Responses API has no fingerprint, and nothing changed.
    assert respond(make_cache("refresh")) == ("gpt-4o-2024-05-13", Action.CONFIRMED)

    fake.model_versions["gpt-4o"] = "gpt-4o-2024-08-06"
    refresher = make_cache("refresh")
    assert respond(refresher) == ("gpt-4o-2024-08-06", Action.REFRESHED)
    [change] = refresher.backend_changes()
    assert (change.model, change.before, change.after) == (
        "gpt-4o",
        "gpt-4o-2024-05-13",
        "gpt-4o-2024-08-06",
    )
    assert respond(make_cache("replay")) == ("gpt-4o-2024-08-06", Action.HIT)


def test_a_model_serving_two_fingerprints_side_by_side_causes_no_refresh_storm(fake, make_cache):
    fake.alternate_fingerprints("fp_a", "fp_b")
    topics = [f"planet {i}" for i in range(10)]
    recorded = record(make_cache, fake, topics=topics)
    before = fake.request_count

    for _ in range(3):
        refresher = make_cache("refresh")
        answers = [ask(refresher, fake, t) for t in topics]
        # Each fingerprint costs at most one check; a fingerprint seen live is current.
        assert refresher.stats().refreshed + refresher.stats().confirmed <= 2
        assert sum(a[0] != recorded[t] for a, t in zip(answers, topics, strict=True)) <= 1
    assert fake.request_count - before <= 6


def test_what_a_run_learned_counts_for_every_cache_that_shares_it(fake, tmp_path):
    from seedcache import Backends

    for name in ("a", "b", "c"):
        with SeedCache.cassette(tmp_path / f"{name}.json", mode="auto") as cache:
            ask(cache, fake, name)
    before = fake.request_count

    # Unchanged model: one live call for the whole run, though three cassettes are read.
    run = Backends()
    actions = []
    for name in ("a", "b", "c"):
        with SeedCache.cassette(tmp_path / f"{name}.json", mode="refresh", backends=run) as c:
            actions.append(ask(c, fake, name)[1])
    assert actions == [Action.CONFIRMED, Action.HIT, Action.HIT]
    assert fake.request_count - before == 1


def test_learning_expires_after_the_window_in_a_long_running_process(fake, make_cache):
    now = [time.time()]
    cache_clock = lambda: now[0]  # noqa: E731
    record(make_cache, fake, topics=["mars", "venus", "titan"])
    refresher = make_cache("refresh", clock=cache_clock, fingerprint_window="1h")
    assert ask(refresher, fake, "mars")[1] is Action.CONFIRMED
    assert ask(refresher, fake, "venus")[1] is Action.HIT
    fake.fingerprint = "fp_later"
    now[0] += 2 * 3600
    # Two hours on, the same process learns again and meets the change.
    assert ask(refresher, fake, "titan")[1] is Action.REFRESHED


@pytest.mark.parametrize("pins", ["fp_a1b2c3d4e5"])
def test_pinned_fingerprints_still_decide_without_a_live_call(fake, make_cache, pins):
    record(make_cache, fake, topics=["mars"])
    fake.fingerprint = "fp_new0000"
    before = fake.request_count
    assert ask(make_cache("refresh", fingerprints=pins), fake, "mars")[1] is Action.HIT
    assert fake.request_count == before


def stream_story(client, topic: str) -> tuple[str, str]:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": topic}],
        seed=5,
        stream=True,
    ) as response:
        action = response.http_response.extensions["seedcache"].action
        chunks = list(response.parse())
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), action


def test_a_streamed_check_gives_the_recorded_stream_or_the_new_one(fake, make_cache):
    recorded, _ = stream_story(make_cache("auto").wrap(make_client(fake)), "mars")
    text, action = stream_story(make_cache("refresh").wrap(make_client(fake)), "mars")
    assert (text, action) == (recorded, Action.CONFIRMED)
    fake.fingerprint = "fp_new0000"
    text, action = stream_story(make_cache("refresh").wrap(make_client(fake)), "mars")
    assert action is Action.REFRESHED
    assert text != recorded
    assert stream_story(make_cache("replay").wrap(make_client(fake)), "mars")[0] == text


def test_async_clients_and_concurrent_requests_check_once(fake, make_cache):
    import asyncio

    import openai

    record(make_cache, fake)
    before = fake.request_count

    async def scenario(cache):
        raw = openai.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        client = cache.wrap(raw)
        try:
            raws = await asyncio.gather(
                *(
                    client.chat.completions.with_raw_response.create(
                        model="gpt-4o-mini",
                        messages=[*MESSAGES[:1], {"role": "user", "content": topic}],
                        seed=123,
                    )
                    for topic in TOPICS
                )
            )
        finally:
            await cache.aclose()
            await raw.close()
        return [r.http_response.extensions["seedcache"].action for r in raws]

    refresher = make_cache("refresh")
    actions = asyncio.run(scenario(refresher))
    # One check; the others waited for it and replayed.
    assert sorted(actions) == sorted([Action.CONFIRMED] + [Action.HIT] * 3)
    assert fake.request_count - before == 1

    fake.fingerprint = "fp_new0000"
    actions = asyncio.run(scenario(make_cache("refresh")))
    assert actions == [Action.REFRESHED] * 4


def test_a_check_through_the_proxy_replays_the_recording(fake, make_cache):
    import openai

    recorded = record(make_cache, fake, topics=["mars"])
    cache = make_cache("refresh")
    with cache.proxy(fake.base_url) as base_url:
        client = openai.OpenAI(api_key="sk-test", base_url=base_url, max_retries=0)
        with client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[*MESSAGES[:1], {"role": "user", "content": "mars"}],
                seed=123,
            )
    assert reply.choices[0].message.content == recorded["mars"]
    assert cache.stats().confirmed == 1


def record_two_questions(fake, tmp_path):
    """A cassette with gpt-4o answering q0 and q1: a refresh run checks the model once."""
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        client = cache.wrap(make_client(fake))
        for topic in ("q0", "q1"):
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": topic}], seed=1
            )
    return path


def test_a_cancelled_async_request_never_leaves_its_model_s_check_claimed(fake, tmp_path):
    """An asyncio timeout that lands while the core decides must release the check: the
    next request for the model must not wait for a check nobody will finish."""
    import asyncio
    import contextlib
    import random

    import openai

    path = record_two_questions(fake, tmp_path)

    def ask(topic):
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": topic}], "seed": 1}

    async def trials() -> int:
        stuck = 0
        chance = random.Random(7)
        for _ in range(40):
            cache = SeedCache.cassette(path, mode="refresh")
            raw = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
            client = cache.wrap(raw)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    client.chat.completions.create(**ask("q0")), chance.uniform(0, 0.004)
                )
            try:
                await asyncio.wait_for(client.chat.completions.create(**ask("q1")), 5)
            except TimeoutError:
                stuck += 1
            await cache.aclose()
            await raw.close()
        return stuck

    assert asyncio.run(trials()) == 0


@pytest.mark.parametrize("threads", [1, 16])
def test_two_fingerprints_in_any_mix_and_concurrency_refresh_nothing(fake, make_cache, threads):
    import functools
    from concurrent.futures import ThreadPoolExecutor

    fake.alternate_fingerprints("fp_a", "fp_b")  # recorded while both were served
    topics = [f"moon {i}" for i in range(12)]
    recorded = record(make_cache, fake, topics=topics)
    fake.alternate_fingerprints("fp_a", "fp_a", "fp_a", "fp_b")  # the same two, 3:1
    for _ in range(3):
        refresher = make_cache("refresh")
        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(functools.partial(ask, refresher, fake), topics))
        assert [a[0] for a in answers] == [recorded[t] for t in topics]
        assert refresher.stats().refreshed == 0
        assert refresher.backend_changes() == {}


def test_a_pin_the_model_does_not_serve_is_said_once_and_piles_no_history(fake, make_cache, caplog):
    import logging

    record(make_cache, fake, topics=["mars", "venus"])
    for _ in range(3):
        refresher = make_cache("refresh", fingerprints=["fp_gone"])
        with caplog.at_level(logging.WARNING, logger="seedcache"):
            # One check shows the model's backend; its other take then replays.
            actions = [ask(refresher, fake, t)[1] for t in ("mars", "venus")]
            assert actions == [Action.CONFIRMED, Action.HIT]
    warnings = [r.getMessage() for r in caplog.records if "not a pinned fingerprint" in r.msg]
    assert len(warnings) == 3  # once per run, not once per take
    assert "pin fp_a1b2c3d4e5" in warnings[0]
    entry = make_cache("replay").store.get(make_cache("replay").store.keys()[0])
    assert entry.history == ()


def test_a_cancellation_before_the_storing_thread_starts_releases_the_check(
    fake, tmp_path, monkeypatch
):
    """The window the timing test above hits 1 time in 20: cancelled while a worker thread
    is being acquired, so the recording is never finished. It must be abandoned, or the
    check it claimed holds every later request for the model."""
    import asyncio
    import contextlib

    import anyio
    import openai

    path = record_two_questions(fake, tmp_path)
    real = anyio.to_thread.run_sync
    cancelled = []

    async def run_sync(func, *args, **kwargs):
        finishing = "finish" in getattr(getattr(func, "__code__", None), "co_names", ())
        if finishing and not cancelled:
            cancelled.append(func)
            raise asyncio.CancelledError  # as a cancellation landing before the thread
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", run_sync)

    def ask(topic):
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": topic}], "seed": 1}

    async def run() -> None:
        cache = SeedCache.cassette(path, mode="refresh")
        raw = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        client = cache.wrap(raw)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(asyncio.ensure_future(client.chat.completions.create(**ask("q0"))))
        await asyncio.wait_for(client.chat.completions.create(**ask("q1")), 5)
        await cache.aclose()
        await raw.close()

    asyncio.run(run())
    assert cancelled
