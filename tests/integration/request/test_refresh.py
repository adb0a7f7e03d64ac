"""Fingerprint-aware refresh, end to end: the SDK over HTTP to the fake server."""

from __future__ import annotations

import logging

import pytest

from helpers import MESSAGES, make_client
from seedcache import Action, SeedCache

HOUR = 3600.0
T0 = 1_790_000_000.0  # a fixed instant; tests move time by hand, never sleep


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += hours * HOUR


@pytest.fixture
def clock():
    return Clock()


def ask(cache: SeedCache, fake, content: str = "mars", **params):
    """One seeded chat call through ``cache``; returns (text, action, fingerprint)."""
    client = cache.wrap(make_client(fake))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[*MESSAGES[:1], {"role": "user", "content": content}],
        seed=123,
        **params,
    )
    completion = raw.parse()
    outcome = raw.http_response.extensions["seedcache"]
    return completion.choices[0].message.content, outcome.action, completion.system_fingerprint


def test_refresh_refetches_a_take_once_its_fingerprint_is_no_longer_served(
    fake, make_cache, clock, caplog
):
    fake.fingerprint = "fp_a"
    old_text, action, _ = ask(make_cache("auto", clock=clock), fake)
    assert action is Action.RECORDED

    fake.fingerprint = "fp_b"
    clock.advance(2)
    # auto replays whatever the fingerprint.
    assert ask(make_cache("auto", clock=clock), fake)[1] is Action.HIT
    assert fake.request_count == 1

    refresher = make_cache("refresh", clock=clock)
    with caplog.at_level(logging.INFO, logger="seedcache"):
        new_text, action, fingerprint = ask(refresher, fake)
    assert (action, fingerprint) == (Action.REFRESHED, "fp_b")
    assert fake.request_count == 1 + 3  # asked three times: fp_a might be served beside fp_b
    assert new_text != old_text
    stats = refresher.stats()
    assert (stats.refreshed, stats.fingerprint_changes, stats.output_changes) == (1, 1, 1)
    [line] = [r.getMessage() for r in caplog.records if r.name == "seedcache"]
    assert "gpt-4o-mini" in line
    assert "fp_a -> fp_b" in line
    assert "output changed" in line

    # The next run checks once, finds fp_b still served, and replays what it recorded.
    again = make_cache("refresh", clock=clock)
    assert ask(again, fake) == (new_text, Action.CONFIRMED, "fp_b")
    assert fake.request_count == 5

    [key] = [e.key for e in again.store.entries() if e.history]
    entry = again.entry(key[:8])
    assert [t.fingerprint for t in entry.takes] == ["fp_b"]
    assert [t.fingerprint for t in entry.history] == ["fp_a"]
    diff = again.diff(key[:8])
    assert (diff.a.label, diff.b.label) == ("h0", "0")
    assert (diff.a.take.fingerprint, diff.b.take.fingerprint) == ("fp_a", "fp_b")
    assert diff.fingerprint_changed
    assert not diff.identical
    assert diff.a.content.text == old_text
    assert diff.b.content.text == new_text
    rendered = diff.render()
    assert "fingerprint fp_a" in rendered.splitlines()[0]
    assert "fingerprint fp_b" in rendered.splitlines()[1]
    assert "[-" in rendered
    assert "{+" in rendered


def drift_from_fp_a_to_fp_b(fake, make_cache, clock) -> str:
    """Record under fp_a; two hours later another call shows fp_b live. The fp_a text."""
    fake.fingerprint = "fp_a"
    text, _, _ = ask(make_cache("auto", clock=clock), fake)
    fake.fingerprint = "fp_b"
    clock.advance(2)
    ask(make_cache("auto", clock=clock), fake, content="venus")
    return text


def test_replay_ignores_fingerprints(fake, make_cache, clock):
    text = drift_from_fp_a_to_fp_b(fake, make_cache, clock)
    fake.stop()
    assert ask(make_cache("replay", clock=clock), fake) == (text, Action.HIT, "fp_a")


@pytest.mark.parametrize(
    ("pins", "expected_requests"),
    [("fp_a", 0), (["fp_b"], 1), ("fp_b, fp_c", 1), (["fp_a", "fp_b"], 0)],
)
def test_pinned_fingerprints_decide_what_is_current(
    fake, make_cache, clock, pins, expected_requests
):
    drift_from_fp_a_to_fp_b(fake, make_cache, clock)
    before = fake.request_count

    ask(make_cache("refresh", clock=clock, fingerprints=pins), fake)
    assert fake.request_count - before == expected_requests


def test_pins_come_from_the_environment(fake, make_cache, clock, monkeypatch):
    fake.fingerprint = "fp_a"
    ask(make_cache("auto", clock=clock), fake)
    fake.fingerprint = "fp_b"
    monkeypatch.setenv("SEEDCACHE_FINGERPRINTS", "fp_b")
    assert ask(make_cache("refresh", clock=clock), fake)[1] is Action.REFRESHED
    monkeypatch.setenv("SEEDCACHE_FINGERPRINTS", "fp_b,fp_a")
    assert ask(make_cache("refresh", clock=clock), fake)[1] is Action.HIT


def test_the_stored_registry_plays_no_part_in_what_refresh_decides(fake, make_cache, clock):
    fake.fingerprint = "fp_a"
    recorder = make_cache("auto", clock=clock)
    ask(recorder, fake)
    # A cassette written by hand, or a registry lost: the take is there, the registry not.
    recorder.store.update_meta("fingerprints", lambda _: None)

    assert ask(make_cache("refresh", clock=clock), fake)[1] is Action.CONFIRMED
    assert fake.request_count == 2


def test_a_take_older_than_max_age_is_refetched_even_from_the_same_backend(fake, make_cache, clock):
    fake.fingerprint = "fp_a"
    ask(make_cache("auto", clock=clock), fake)
    clock.advance(48)
    refresher = make_cache("refresh", clock=clock, max_age="1d")
    assert ask(refresher, fake)[1] is Action.REFRESHED
    stats = refresher.stats()
    assert (stats.refreshed, stats.fingerprint_changes, stats.output_changes) == (1, 0, 0)
    assert refresher.backend_changes() == {}
    diff = refresher.diff(refresher.store.keys()[0])
    assert diff.identical
    assert "No differences found." in diff.render()


def test_two_fingerprints_served_alternately_are_both_current(fake, make_cache, clock):
    fake.alternate_fingerprints("fp_a", "fp_b")
    recorder = make_cache("auto", clock=clock)
    recorded = {ask(recorder, fake, content=f"planet {i}")[2] for i in range(4)}
    assert recorded == {"fp_a", "fp_b"}
    status = {s.fingerprint: s.current for s in recorder.fingerprints()}
    assert status == {"fp_a": True, "fp_b": True}


def test_the_registry_survives_a_restart(fake, make_cache, clock):
    fake.fingerprint = "fp_a"
    ask(make_cache("auto", clock=clock), fake)
    clock.advance(1)
    fake.fingerprint = "fp_b"
    ask(make_cache("auto", clock=clock), fake, content="venus")

    statuses = make_cache("replay", clock=clock).fingerprints()
    # The latest run that went live saw only fp_b.
    assert [(s.model, s.fingerprint, s.current, s.takes) for s in statuses] == [
        ("gpt-4o-mini", "fp_a", False, 1),
        ("gpt-4o-mini", "fp_b", True, 1),
    ]
    assert statuses[0].first_seen_ms == round(T0 * 1000)
    assert statuses[1].last_seen_ms == round((T0 + HOUR) * 1000)


def test_takes_without_a_fingerprint_are_judged_by_their_dated_model_and_age(
    fake, make_cache, clock
):
    client_params = {"model": "gpt-4.1-nano", "messages": MESSAGES, "seed": 1}
    recorder = make_cache("auto", clock=clock)
    recorder.wrap(make_client(fake)).chat.completions.create(**client_params)
    clock.advance(24 * 30)

    def refresh(**options):
        cache = make_cache("refresh", clock=clock, **options)
        raw = cache.wrap(make_client(fake)).chat.completions.with_raw_response.create(
            **client_params
        )
        return raw.http_response.extensions["seedcache"].action

    # A null fingerprint is no mismatch: the model that answers is the same.
    assert refresh() is Action.CONFIRMED
    assert refresh(max_age="31d") is Action.CONFIRMED
    assert refresh(max_age="29d") is Action.REFRESHED
    assert fake.request_count == 4


def test_max_age_applies_to_takes_with_a_fingerprint_too(fake, make_cache, clock, monkeypatch):
    ask(make_cache("auto", clock=clock), fake)
    clock.advance(3)
    assert ask(make_cache("refresh", clock=clock, fingerprints="fp_a1b2c3d4e5"), fake)[1] is (
        Action.HIT
    )
    monkeypatch.setenv("SEEDCACHE_MAX_AGE", "2h")
    assert ask(make_cache("refresh", clock=clock), fake)[1] is Action.REFRESHED


def test_refresh_replaces_a_streamed_take_and_keeps_the_old_one(fake, make_cache, clock):
    def stream(cache):
        client = cache.wrap(make_client(fake))
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, seed=7, stream=True
            )
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    fake.fingerprint = "fp_a"
    old = stream(make_cache("auto", clock=clock))
    fake.fingerprint = "fp_b"
    new = stream(make_cache("refresh", clock=clock, fingerprints=["fp_b"]))
    assert new != old
    cache = make_cache("replay", clock=clock)
    diff = cache.diff(cache.store.keys()[0])
    assert (diff.a.content.text, diff.b.content.text) == (old, new)
    assert stream(cache) == new


def test_history_is_bounded(fake, make_cache, clock):
    for round_ in range(4):
        fake.fingerprint = f"fp_{round_}"
        ask(
            make_cache("refresh", clock=clock, fingerprints=[fake.fingerprint], history_limit=2),
            fake,
        )
    entry = make_cache("replay").entry(make_cache("replay").store.keys()[0])
    assert [t.fingerprint for t in entry.takes] == ["fp_3"]
    assert [t.fingerprint for t in entry.history] == ["fp_1", "fp_2"]
