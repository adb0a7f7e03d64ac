"""The first hour, round two: what a new user tripped on, each fixed and held by a test."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from helpers import MESSAGES, make_client
from seedcache import CacheMiss, ConfigurationError, SeedCache


def ask(cache, fake, seed=123):
    raw = cache.wrap(make_client(fake)).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=seed
    )
    return raw.parse().choices[0].message.content, raw.http_response.extensions["seedcache"]


# -- 1. a notebook cell run again pays nothing -----------------------------------------------


def test_repeats_first_replays_the_first_take_to_every_repeat(fake, make_cache):
    cache = make_cache("auto", repeats="first")
    texts = [ask(cache, fake)[0] for _ in range(3)]
    assert fake.request_count == 1
    assert texts == [texts[0]] * 3
    assert [t.status for t in cache.store.get(cache.store.keys()[0]).takes] == [200]


def test_repeats_takes_stays_the_default_and_the_environment_can_choose(
    fake, make_cache, monkeypatch
):
    ask(make_cache("auto"), fake)
    ask(make_cache("auto"), fake)
    cache = make_cache("auto")
    ask(cache, fake)
    ask(cache, fake)  # the second identical call of a session is a new take
    assert fake.request_count == 2
    monkeypatch.setenv("SEEDCACHE_REPEATS", "first")
    cache = make_cache("auto")
    for _ in range(3):
        ask(cache, fake)
    assert fake.request_count == 2
    with pytest.raises(ConfigurationError, match="repeats must be 'first' or 'takes'"):
        make_cache("auto", repeats="all")


# -- 2. the seedcache fixture needs no key in replay -----------------------------------------


def test_the_seedcache_fixture_wraps_a_client_built_without_a_key_in_replay(inner, fake):
    inner.makepyfile(
        test_custom="""
        import openai

        def test_custom(seedcache):
            client = seedcache.wrap(openai.OpenAI())
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1
            )
            assert reply.choices[0].message.content
        """
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    fake.stop()
    inner._monkeypatch.delenv("OPENAI_API_KEY")  # a clean CI: no key at all
    inner.runpytest_subprocess().assert_outcomes(passed=1)


# -- 3. FakeOpenAI on its own -----------------------------------------------------------------


def test_the_fake_server_runs_on_its_own_port_from_the_command_line(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "seedcache.testing", "--port", str(port), "--fingerprint", "fp_x"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in line
        import openai

        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k") as client:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
        assert reply.system_fingerprint == "fp_x"
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
        server.stderr.close()


def test_the_fake_server_takes_a_port():
    import socket

    from seedcache.testing import FakeOpenAI

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeOpenAI(port=port) as server:
        assert server.base_url == f"http://127.0.0.1:{port}/v1"


# -- 4. a host-keyed miss gives the whole fix at once ------------------------------------------


def test_a_miss_across_hosts_says_both_steps_at_once(fake, tmp_path):
    from seedcache.testing import FakeOpenAI

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        ask(cache, fake)
    replaying = SeedCache.cassette(path, mode="replay")
    with FakeOpenAI() as elsewhere, replaying, pytest.raises(CacheMiss) as missed:
        ask(replaying, elsewhere)
    text = str(missed.value)
    assert "turn host matching off" in text
    assert "record it again with host matching off" in text


def test_with_host_matching_off_a_miss_does_not_list_the_url(fake, tmp_path):
    from seedcache.testing import FakeOpenAI

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto", match_host=False) as cache:
        ask(cache, fake)
    with (
        FakeOpenAI() as elsewhere,
        SeedCache.cassette(path, mode="replay", match_host=False) as cache,
        pytest.raises(CacheMiss) as missed,
    ):
        ask(cache, elsewhere, seed=124)
    assert missed.value.differences == ("body.seed: 123 (recorded) vs 124 (now)",)


# -- 5. stale entries in shared cassettes can be pruned ----------------------------------------

SHARED = """
import pytest

pytestmark = pytest.mark.seedcache(cassette="shared.json")

@pytest.mark.parametrize("n", range({count}))
def test_topic(openai_client, n):
    assert openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": f"topic {{n}}"}}], seed=1
    ).choices[0].message.content
"""


def test_prune_unused_removes_what_no_test_of_a_full_passing_run_used(inner, fake):
    shared = inner.path / "cassettes" / "shared.json"
    inner.makepyfile(test_shared=SHARED.format(count=8))
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=8)
    assert len(json.loads(shared.read_text())["entries"]) == 8
    inner.makepyfile(test_shared=SHARED.format(count=3))  # five tests were deleted

    for selection in (["-k", "topic"], ["test_shared.py"]):
        partial = inner.runpytest_subprocess("--seedcache-prune-unused", *selection)
        partial.assert_outcomes(passed=3)
        partial.stdout.fnmatch_lines(["*--seedcache-prune-unused did nothing: this run sel*"])
        assert len(json.loads(shared.read_text())["entries"]) == 8

    result = inner.runpytest_subprocess("--seedcache-prune-unused", "-n", "2")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["seedcache: removed 5 unused takes", "*shared.json: 5"])
    assert len(json.loads(shared.read_text())["entries"]) == 3
    fake.stop()
    inner.runpytest_subprocess().assert_outcomes(passed=3)


# -- 6. cassettes a person can review -----------------------------------------------------------


def test_a_stream_s_readable_output_must_match_its_events(fake, tmp_path):
    from seedcache import CassetteStore, CorruptEntryError

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        chunks = cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=3, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    document = json.loads(path.read_text())
    take = document["entries"][0]["takes"][0]
    assert "\n".join(take["output"]) == text
    take["output"] = ["A reviewer reads this, but the events say otherwise."]
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(CorruptEntryError, match="does not match the recorded events"):
        CassetteStore(path)


# -- 7. the CLI and the report say it once, in plain words --------------------------------------


def cli(*args):
    from click.testing import CliRunner

    from seedcache._cli import cli as command

    return CliRunner().invoke(command, [str(a) for a in args])


def test_stats_and_the_report_read_right(fake, tmp_path, redis_url):
    for location in (str(tmp_path / "c"), redis_url):
        with SeedCache(location, mode="auto") as cache:
            ask(cache, fake)
        with SeedCache(location, mode="replay") as cache:
            ask(cache, fake)
            cost = cache.stats().cost_saved_usd
        assert cost is not None
        assert repr(cost) == repr(round(cost, 12))  # summed exactly: no float noise
        stats = cli("--cache-dir", location, "stats").output
        assert "saved saved" not in stats
        assert "saved    " in stats
        assert ("in Redis" in stats) == location.startswith("redis")
        report = cli("--cache-dir", location, "report").output
        assert "1 entry, 1 take " in report
        assert "1 takes" not in report
        assert "0 of 0 refreshed keys" in report
    with SeedCache(tmp_path / "c", mode="auto") as cache:
        ask(cache, fake)
        ask(cache, fake)  # a second take of one seeded request: determinism has a row
    header = cli("--cache-dir", tmp_path / "c", "determinism").output.splitlines()[0].split("  ")
    names = [name.strip() for name in header if name.strip()]
    assert len(names) == len(set(names))  # no two columns headed alike


# -- 8. verify knows what an answer looks like ---------------------------------------------------


def test_a_take_whose_json_is_not_an_object_is_broken(fake, tmp_path):
    from seedcache import CassetteStore, CorruptEntryError

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        ask(cache, fake)
    document = json.loads(path.read_text())
    document["entries"][0]["takes"][0]["body"] = {"json": 5, "weird": 1}
    path.write_text(json.dumps(document))
    verified = cli("--cassette", path, "verify")
    assert verified.exit_code == 1
    assert "not an object" in verified.output
    with pytest.raises(CorruptEntryError, match="not an object"):
        CassetteStore(path)


# -- 9. replays are told apart in logs ----------------------------------------------------------


def test_a_replay_says_so_in_the_seedcache_log(fake, tmp_path, caplog):
    with SeedCache(tmp_path / "c", mode="auto") as cache:
        ask(cache, fake)
    replaying = SeedCache(tmp_path / "c", mode="replay")
    with replaying, caplog.at_level(logging.DEBUG, logger="seedcache"):
        key = ask(replaying, fake)[1].key
    lines = [r.getMessage() for r in caplog.records if r.name == "seedcache"]
    assert f"replayed POST /v1/chat/completions take 0 (key {key}), no network" in lines


def test_a_cassette_from_a_newer_seedcache_says_so(tmp_path):
    from seedcache import CassetteStore, CorruptEntryError

    path = tmp_path / "c.json"
    path.write_text('{"seedcache": 99, "entries": []}')
    with pytest.raises(CorruptEntryError, match="written by a newer seedcache"):
        CassetteStore(path)


# -- one way to name a store (the house, round two, item 4) -------------------------------------


def test_a_json_location_is_a_cassette_everywhere(fake, tmp_path):
    path = tmp_path / "story.json"
    with SeedCache(path, mode="auto") as cache:
        text = ask(cache, fake)[0]
    assert path.is_file()  # a cassette, not a folder named story.json
    assert cli("--cache-dir", path, "ls").exit_code == 0
    with SeedCache.cassette(path, mode="replay") as cache:
        assert ask(cache, fake)[0] == text


def test_a_folder_of_cassettes_replays_through_seedcache(fake, tmp_path):
    with SeedCache(tmp_path / "cassettes" / "a.json", mode="auto") as cache:
        text = ask(cache, fake)[0]
    with SeedCache(tmp_path / "cassettes", mode="replay") as cache:
        assert cache.store.kind == "cassettes"
        assert ask(cache, fake)[0] == text


TWICE = """
def test_twice(openai_client):
    for _ in range({calls}):
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}], seed=1
        )
"""


def test_prune_unused_removes_what_report_unused_lists(inner, fake):
    inner.makepyfile(test_twice=TWICE.format(calls=2))
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    inner.makepyfile(test_twice=TWICE.format(calls=1))
    reported = inner.runpytest_subprocess("--seedcache-report-unused")
    reported.stdout.fnmatch_lines(["seedcache: 1 unused recording:", "*takes ?1?"])
    pruned = inner.runpytest_subprocess("--seedcache-prune-unused")
    pruned.stdout.fnmatch_lines(["seedcache: removed 1 unused take"])
    [path] = (inner.path / "cassettes").rglob("*.json")
    assert [len(e["takes"]) for e in json.loads(path.read_text())["entries"]] == [1]
    again = inner.runpytest_subprocess("--seedcache-report-unused")
    again.stdout.fnmatch_lines(["seedcache: 0 unused recordings:"])
