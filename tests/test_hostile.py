"""Damaged, hostile and half-written data: clear errors, nothing executed, nothing lost."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import diskcache
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MESSAGES, make_client
from seedcache import CassetteStore, CorruptEntryError, DiskStore, SeedCache, StoreError
from seedcache._codec import decode_entry, encode_entry


def load_error(path) -> str | None:
    """The CorruptEntryError message loading ``path`` gives, or None if it loads."""
    try:
        CassetteStore(path).close()
    except CorruptEntryError as exc:
        return str(exc)
    return None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_as_a_cassette_are_a_clear_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "c.json"
    path.write_bytes(raw)
    error = load_error(path)
    assert error is None or str(path) in error


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
take_like = st.fixed_dictionaries(
    {},
    optional={
        "status": json_value,
        "headers": json_value,
        "body": json_value,
        "fingerprint": json_value,
        "recorded_at": json_value,
    },
)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {"key": st.text(max_size=40) | json_value},
        optional={"request": json_value, "takes": st.lists(take_like, max_size=2) | json_value},
    )
)
def test_any_entry_document_loads_or_fails_clearly(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("fuzz") / "c.json"
    path.write_text(json.dumps({"seedcache": 1, "entries": [document]}))
    error = load_error(path)
    assert error is None or "entries[0]" in error


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256), st.integers(min_value=0, max_value=2000))
def test_damaged_disk_frames_are_corrupt_entries(noise, position):
    from seedcache import Entry, Take

    frame = bytearray(
        encode_entry(Entry("ab" * 16, {"method": "POST"}, [Take(200, (), b'{"x": 1}' * 40)]))
    )
    position %= len(frame)
    damaged = bytes(frame[:position]) + noise + bytes(frame[position + len(noise) :])
    with contextlib.suppress(CorruptEntryError):  # any other exception fails the test
        decode_entry(damaged, where="fuzz")


def test_a_corrupt_disk_entry_is_a_warned_miss_in_auto_and_an_error_in_replay(
    fake, tmp_path, caplog
):
    with SeedCache(tmp_path / "c") as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        [key] = cache.store.keys()
    raw = diskcache.Cache(str(tmp_path / "c"))
    raw.set("entry:" + key, b"SCE1 garbage")
    raw.close()

    with SeedCache(tmp_path / "c", mode="replay") as cache, pytest.raises(CorruptEntryError):
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    with caplog.at_level(logging.WARNING, logger="seedcache"), SeedCache(tmp_path / "c") as cache:
        reply = cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    assert reply.choices[0].message.content
    assert any("treating it as not recorded" in r.getMessage() for r in caplog.records)
    assert fake.request_count == 2
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        again = cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    assert again == reply


def test_a_truncated_cassette_is_never_overwritten_by_auto(fake, tmp_path):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path) as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    damaged = path.read_bytes()[:-40]
    path.write_bytes(damaged)
    with pytest.raises(CorruptEntryError, match=r"c\.json: not valid JSON at line \d+ column"):
        SeedCache.cassette(path, mode="auto")
    assert path.read_bytes() == damaged


def test_a_marker_cannot_point_outside_the_cassette_directory(pytester, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    pytester.makepyfile(
        test_escape="""
        import pytest

        @pytest.mark.seedcache(cassette="../../escaped.json", mode="auto")
        def test_escape(openai_client):
            openai_client.models.list()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cassette '../../escaped.json' is outside*"])
    assert not (pytester.path.parent / "escaped.json").exists()
    assert fake.request_count == 0


RECORDER = textwrap.dedent(
    """
    import sys, openai, seedcache
    kind, location, base_url = sys.argv[1:]
    cache = (seedcache.SeedCache(location) if kind == "disk"
             else seedcache.SeedCache.cassette(location))
    client = cache.wrap(openai.OpenAI(api_key="k", base_url=base_url, max_retries=0))
    for number in range(100_000):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{number}"}], seed=1
        )
    """
)


@pytest.mark.parametrize("kind", ["disk", "cassette"])
def test_sigkill_while_recording_leaves_a_store_that_serves_every_completed_take(
    fake, tmp_path, kind
):
    location = tmp_path / ("cache" if kind == "disk" else "c.json")
    process = subprocess.Popen([sys.executable, "-c", RECORDER, kind, str(location), fake.base_url])
    deadline = time.monotonic() + 60
    while fake.request_count < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert fake.request_count >= 25

    store = DiskStore(location) if kind == "disk" else CassetteStore(location)
    try:
        entries = list(store.entries())
        # Every take that was stored is whole; at most the one in flight is missing.
        assert len(entries) >= fake.request_count - 2
        for entry in entries:
            [take] = entry.takes
            assert json.loads(take.body)["choices"][0]["message"]["content"]
    finally:
        store.close()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert kind == "disk" or len(leftovers) <= 1  # at most one abandoned temp file, never read


def test_read_only_cache_directory_is_a_clear_error_on_write(fake, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    with SeedCache(tmp_path / "c") as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    os.chmod(tmp_path / "c", 0o500)
    try:
        with pytest.raises(StoreError):
            DiskStore(tmp_path / "c").update("ab" * 16, lambda _: None)
    finally:
        os.chmod(tmp_path / "c", 0o700)


def test_an_oversized_cassette_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from seedcache._stores import _cassette

    path = tmp_path / "huge.json"
    path.write_bytes(b'{"seedcache": 1, "entries": []}' + b" " * 2048)
    monkeypatch.setattr(_cassette, "MAX_CASSETTE_BYTES", 1024)
    with pytest.raises(CorruptEntryError, match="over the 1024 byte limit"):
        CassetteStore(path)
