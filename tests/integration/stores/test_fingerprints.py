"""The fingerprint registry, what counts as current, and durations with units."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seedcache import ConfigurationError, DiskStore, Take
from seedcache._request._backends import Backends
from seedcache._request._freshness import RefreshRules, parse_pins
from seedcache._request._policy import Freshness
from seedcache._stores._registry import Registry
from seedcache._takes._take import Identity
from seedcache._units import format_duration, parse_duration

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
T0_MS = 1_790_000_000_000


# The `store` fixture (conftest) runs each test taking it over these stores.
pytestmark = pytest.mark.stores("disk", "cassette")


class Clock:
    def __init__(self, ms: int = T0_MS) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def take(fingerprint: str | None, *, at_ms: int = T0_MS, model: str = "gpt-4o") -> Take:
    return Take(200, (), b"{}", fingerprint=fingerprint, model=model, recorded_at_ms=at_ms)


def test_registry_remembers_first_and_last_sightings(store):
    registry = Registry(store)
    registry.observe("gpt-4o", "fp_a", T0_MS)
    registry.observe("gpt-4o", "fp_a", T0_MS + 2 * HOUR_MS)
    registry.observe("gpt-4o", "fp_b", T0_MS + 3 * HOUR_MS)
    registry.observe("gpt-4o-mini", "fp_c", T0_MS)
    seen = Registry(store).load()
    assert seen["gpt-4o"].last_live_ms == T0_MS + 3 * HOUR_MS
    assert seen["gpt-4o"].fingerprints["fp_a"].first_seen_ms == T0_MS
    assert seen["gpt-4o"].fingerprints["fp_a"].last_seen_ms == T0_MS + 2 * HOUR_MS
    assert seen["gpt-4o"].fingerprints["fp_b"].first_seen_ms == T0_MS + 3 * HOUR_MS
    assert set(seen) == {"gpt-4o", "gpt-4o-mini"}


def test_sightings_within_a_minute_do_not_rewrite_the_registry(store):
    registry = Registry(store)
    registry.observe("gpt-4o", "fp_a", T0_MS)
    registry.observe("gpt-4o", "fp_a", T0_MS + 30_000)
    assert registry.load()["gpt-4o"].last_live_ms == T0_MS
    registry.observe("gpt-4o", "fp_b", T0_MS + 31_000)  # a new fingerprint always counts
    assert set(registry.load()["gpt-4o"].fingerprints) == {"fp_a", "fp_b"}
    registry.observe("gpt-4o", "fp_a", T0_MS + 2 * MINUTE_MS)
    assert registry.load()["gpt-4o"].fingerprints["fp_a"].last_seen_ms == T0_MS + 2 * MINUTE_MS


def test_an_out_of_order_sighting_never_moves_time_backwards(store):
    registry = Registry(store)
    registry.observe("gpt-4o", "fp_a", T0_MS + HOUR_MS)
    registry.observe("gpt-4o", "fp_a", T0_MS)
    seen = registry.load()["gpt-4o"]
    assert seen.last_live_ms == T0_MS + HOUR_MS
    assert seen.fingerprints["fp_a"].first_seen_ms == T0_MS
    assert seen.fingerprints["fp_a"].last_seen_ms == T0_MS + HOUR_MS


@pytest.mark.parametrize(
    "blob",
    [b"not json", b"[]", b'{"models": 3}', b'{"models": {"gpt-4o": {"last_live_ms": "x"}}}'],
)
def test_a_damaged_registry_reads_as_empty(tmp_path, blob):
    store = DiskStore(tmp_path / "d")
    store.update_meta("fingerprints", lambda _: blob)
    assert Registry(store).load() == {}
    Registry(store).observe("gpt-4o", "fp_a", T0_MS)  # and heals on the next sighting
    assert set(Registry(store).load()["gpt-4o"].fingerprints) == {"fp_a"}
    store.close()


def test_a_take_is_current_only_when_this_run_saw_its_backend_live(store):
    clock = Clock()
    backends = Backends(clock=clock)
    rules = RefreshRules(Registry(store), clock=clock, backends=backends)
    # Nothing learned yet: unsure, to be checked live.
    assert rules.freshness(take("fp_a"), "gpt-4o") is Freshness.UNSURE
    backends.learn("gpt-4o", Identity("gpt-4o", "fp_a"), now=clock())
    assert rules.freshness(take("fp_a"), "gpt-4o") is Freshness.CURRENT
    assert rules.freshness(take("fp_b"), "gpt-4o") is Freshness.UNSURE
    # A fingerprint seen live again is current again: side by side.
    backends.learn("gpt-4o", Identity("gpt-4o", "fp_b"), now=clock())
    assert rules.freshness(take("fp_b"), "gpt-4o") is Freshness.CURRENT
    # Another dated model behind the same alias is another backend.
    dated = take(None, model="gpt-4o-2024-08-06")
    assert rules.freshness(dated, "gpt-4o") is Freshness.UNSURE
    # Errors name no backend.
    error = Take(400, (), b"{}", model="gpt-4o", recorded_at_ms=T0_MS)
    assert rules.freshness(error, "gpt-4o") is Freshness.CURRENT
    # What a run learned lasts an hour, then it is learned again.
    clock.ms += 2 * HOUR_MS
    assert rules.freshness(take("fp_a"), "gpt-4o") is Freshness.UNSURE


def test_the_registry_calls_current_what_the_latest_live_run_saw(store):
    clock = Clock()
    registry = Registry(store)
    rules = RefreshRules(registry, clock=clock)
    registry.observe("gpt-4o", "fp_a", T0_MS, run_started_ms=T0_MS)
    registry.observe("gpt-4o", "fp_b", T0_MS + MINUTE_MS, run_started_ms=T0_MS)
    assert rules.current("gpt-4o") == {"fp_a", "fp_b"}  # side by side in one run
    # The next run, a minute later, saw only fp_c: only fp_c is current, however recent.
    registry.observe("gpt-4o", "fp_c", T0_MS + 2 * MINUTE_MS, run_started_ms=T0_MS + 90_000)
    assert rules.current("gpt-4o") == {"fp_c"}
    assert rules.current("gpt-4o-mini") == frozenset()


def test_a_registry_written_before_runs_were_noted_keeps_its_hour(store):
    clock = Clock(T0_MS + 70 * MINUTE_MS)
    registry = Registry(store)
    registry.observe("gpt-4o", "fp_a", T0_MS)
    registry.observe("gpt-4o", "fp_b", T0_MS + 70 * MINUTE_MS)
    assert RefreshRules(registry, clock=clock).current("gpt-4o") == {"fp_b"}


def test_max_age_makes_any_take_stale(store):
    clock = Clock(T0_MS + 10 * HOUR_MS)
    backends = Backends(clock=clock)
    backends.learn("gpt-4o", Identity("gpt-4o", None), now=clock())
    assert (
        RefreshRules(Registry(store), clock=clock, backends=backends).freshness(
            take(None), "gpt-4o"
        )
        is Freshness.CURRENT
    )
    aged = RefreshRules(Registry(store), clock=clock, backends=backends, max_age="9h")
    assert aged.freshness(take(None), "gpt-4o") is Freshness.STALE
    fresh = take(None, at_ms=T0_MS + 2 * HOUR_MS)
    assert aged.freshness(fresh, "gpt-4o") is Freshness.CURRENT


def test_pins_decide_without_a_live_call(store):
    rules = RefreshRules(Registry(store), clock=Clock(), pins=parse_pins("fp_x, fp_y"))
    assert rules.freshness(take("fp_y"), "gpt-4o") is Freshness.CURRENT
    # Not pinned: checked, and kept if the model still answers from its backend.
    assert rules.freshness(take("fp_a"), "gpt-4o") is Freshness.UNSURE
    assert rules.current(None) == {"fp_x", "fp_y"}


def test_pins_from_arguments_and_environment(monkeypatch):
    monkeypatch.delenv("SEEDCACHE_FINGERPRINTS", raising=False)
    assert parse_pins(None) == frozenset()
    assert parse_pins(["fp_a", " fp_b "]) == {"fp_a", "fp_b"}
    monkeypatch.setenv("SEEDCACHE_FINGERPRINTS", "fp_c fp_d,fp_e")
    assert parse_pins(None) == {"fp_c", "fp_d", "fp_e"}
    with pytest.raises(ConfigurationError, match="non-empty strings"):
        parse_pins(["fp_a", ""])
    with pytest.raises(ConfigurationError, match="non-empty strings"):
        parse_pins([3])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("1h30m", 5400),
        ("45 min", 2700),
        ("2w", 14 * 86400),
        ("0.5h", 1800),
        ("90s", 90),
        (timedelta(minutes=3), 180),
    ],
)
def test_durations_with_units(text, seconds):
    assert parse_duration(text, name="max_age").total_seconds() == seconds


@pytest.mark.parametrize("bad", [30, 2.5, "30", "", "30 days ago", "-1h", "0s", "5y", timedelta(0)])
def test_durations_without_a_usable_unit_are_refused(bad):
    with pytest.raises(ConfigurationError, match="max_age"):
        parse_duration(bad, name="max_age")


def test_durations_read_back():
    assert [format_duration(timedelta(seconds=s)) for s in (40, 600, 7200, 3 * 86400)] == [
        "40s",
        "10m",
        "2h",
        "3d",
    ]


def test_bad_options_fail_when_the_cache_is_made(tmp_path):
    from seedcache import SeedCache

    with pytest.raises(ConfigurationError, match="max_age needs a unit"):
        SeedCache(tmp_path, max_age=30)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="fingerprint_window"):
        SeedCache(tmp_path, fingerprint_window="soon")
    with pytest.warns(DeprecationWarning, match="fingerprint_max_age no longer"):
        SeedCache(tmp_path, fingerprint_max_age="1d").close()
