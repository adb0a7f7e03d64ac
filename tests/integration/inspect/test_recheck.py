"""``seedcache refresh``, the drift canary: live re-sends against the fake server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from helpers import SENTINEL_KEY, make_client, stored_bytes
from seedcache import SeedCache
from seedcache._cli import cli

TOPICS = ["mars", "venus", "titan"]


def record(cache: SeedCache, fake, *, model: str = "gpt-4o-mini", topics=TOPICS) -> None:
    client = cache.wrap(make_client(fake))
    for topic in topics:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": topic}], seed=9
        )


@pytest.fixture
def environment(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)


def canary(location_option: str, location: str, *args: str):
    return CliRunner().invoke(cli, [location_option, location, "refresh", *args])


@pytest.fixture(params=["cassette", "folder", "disk", "redis"])
def recorded(request, fake, tmp_path):
    """(--option, location, files to compare or None) with three gpt-4o-mini takes and
    two gpt-4.1-nano takes recorded under fp_a."""
    fake.fingerprint = "fp_a"
    kind = request.param
    if kind == "redis":
        location = request.getfixturevalue("redis_url")
        option, root = "--cache-dir", None
        caches = [SeedCache(location, mode="auto")]
    elif kind == "disk":
        location = str(tmp_path / "cache")
        option, root = "--cache-dir", None  # SQLite pages move on reads; entries compared
        caches = [SeedCache(location, mode="auto")]
    elif kind == "cassette":
        location = str(tmp_path / "c.json")
        option, root = "--cassette", tmp_path
        caches = [SeedCache.cassette(location, mode="auto")]
    else:
        location = str(tmp_path / "cassettes")
        option, root = "--cassette", tmp_path / "cassettes"
        caches = [
            SeedCache.cassette(tmp_path / "cassettes" / "a" / "one.json", mode="auto"),
            SeedCache.cassette(tmp_path / "cassettes" / "b" / "two.json", mode="auto"),
        ]
    record(caches[0], fake)
    record(caches[-1], fake, model="gpt-4.1-nano", topics=TOPICS[:2])
    for cache in caches:
        cache.close()
    return option, location, root


def test_a_dry_run_reports_the_change_and_writes_nothing(environment, fake, recorded):
    option, location, root = recorded
    before = stored_bytes(root) if root is not None else None
    listed = canary_ls(option, location)
    sent = fake.request_count
    fake.fingerprint = "fp_b"

    result = canary(option, location, "--dry-run")

    assert result.exit_code == 0, result.output
    assert fake.request_count - sent == 5
    assert "gpt-4o-mini  fp_a → fp_b, 3 of 3 changed backend, 3 outputs changed" in result.stdout
    # gpt-4.1-nano serves no fingerprint: same dated model, so the same backend.
    assert "gpt-4.1-nano  unchanged, 0 of 2 changed backend" in result.stdout
    assert "dry run: nothing was written" in result.stderr
    assert canary_ls(option, location) == listed
    if before is not None:
        assert stored_bytes(root) == before


def canary_ls(option: str, location: str) -> list[dict]:
    result = CliRunner().invoke(cli, [option, location, "ls", "--json"])
    assert result.exit_code == 0, result.output
    return sorted(json.loads(result.stdout), key=lambda row: (row["key"], row.get("cassette")))


def test_a_real_run_rerecords_only_what_changed(environment, fake, recorded):
    option, location, _ = recorded
    fake.fingerprint = "fp_b"
    result = canary(option, location)
    assert result.exit_code == 0, result.output
    assert "re-recorded 3 takes" in result.stderr

    # gpt-4.1-nano names no fingerprint: its backend looks the same, but the fake's seeded
    # text moved with the server's fingerprint. Said, and caught by --fail-on-change, but
    # not re-recorded: only a changed backend is.
    again = canary(option, location, "--fail-on-change")
    assert again.exit_code == 1, again.output
    assert "gpt-4o-mini  unchanged, 0 of 3 changed backend, 0 outputs changed" in again.stdout
    assert "gpt-4.1-nano  unchanged, 0 of 2 changed backend, 2 outputs changed" in again.stdout
    assert "re-recorded 0 takes" in again.stderr
    rows = canary_ls(option, location)
    mini = [row for row in rows if row["model"] == "gpt-4o-mini"]
    assert [(row["fingerprints"], row["history"]) for row in mini] == [(["fp_b"], 1)] * 3
    nano = [row for row in rows if row["model"] == "gpt-4.1-nano"]
    assert [row["history"] for row in nano] == [0, 0]


def test_fail_on_change_exits_1_when_an_output_changed(environment, fake, recorded):
    option, location, _ = recorded
    fake.fingerprint = "fp_b"
    result = canary(option, location, "--fail-on-change", "--dry-run")
    assert result.exit_code == 1
    assert "3 outputs changed" in result.stdout


def test_sample_and_model_bound_the_cost(environment, fake, recorded):
    option, location, _ = recorded
    sent = fake.request_count
    result = canary(option, location, "--dry-run", "--sample", "2")
    assert result.exit_code == 0, result.output
    assert fake.request_count - sent == 2
    # Taken in turn from each model: both are seen.
    assert "gpt-4o-mini" in result.stdout
    assert "gpt-4.1-nano" in result.stdout
    result = canary(option, location, "--dry-run", "--model", "gpt-4.1-nano")
    assert fake.request_count - sent == 4
    assert "gpt-4o-mini" not in result.stdout


def test_a_new_dated_model_is_a_change_without_any_fingerprint(environment, fake, tmp_path):
    fake.model_versions["gpt-4o"] = "gpt-4o-2024-05-13"
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        cache.wrap(make_client(fake)).embeddings.create(model="gpt-4o", input="hello")
    fake.model_versions["gpt-4o"] = "gpt-4o-2024-08-06"
    result = canary("--cassette", str(path))
    assert result.exit_code == 0, result.output
    assert "gpt-4o  gpt-4o-2024-05-13 → gpt-4o-2024-08-06, 1 of 1 changed backend" in (
        result.stdout
    )


def test_without_a_key_it_says_what_to_set_and_sends_nothing(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with SeedCache.cassette(tmp_path / "c.json", mode="auto") as cache:
        record(cache, fake, topics=["mars"])
    sent = fake.request_count
    result = canary("--cassette", str(tmp_path / "c.json"))
    assert result.exit_code == 2
    assert "set OPENAI_API_KEY" in result.output
    assert fake.request_count == sent


def test_an_unreachable_upstream_is_one_clear_line(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    with SeedCache.cassette(tmp_path / "c.json", mode="auto") as cache:
        record(cache, fake, topics=["mars"])
    before = stored_bytes(tmp_path)
    fake.stop()
    result = canary("--cassette", str(tmp_path / "c.json"), "--base-url", fake.base_url)
    assert result.exit_code == 1
    assert "could not reach http://127.0.0.1:" in result.output
    assert "Traceback" not in result.output
    assert stored_bytes(tmp_path) == before


def test_the_key_goes_only_to_the_base_url_never_to_a_host_a_cassette_names(fake, tmp_path):
    from seedcache.testing import FakeOpenAI

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        record(cache, fake, topics=["mars"])
    with FakeOpenAI() as attacker:
        # A pull request edits one line of a committed cassette.
        document = json.loads(path.read_text())
        document["entries"][0]["request"]["url"] = f"{attacker.base_url}/chat/completions"
        path.write_text(json.dumps(document))
        sent = fake.request_count
        result = CliRunner().invoke(
            cli,
            ["--cassette", str(path), "refresh", "--dry-run", "--base-url", fake.base_url],
            env={"OPENAI_API_KEY": SENTINEL_KEY},
        )
        assert result.exit_code == 0, result.output
        assert attacker.request_count == 0
    assert fake.request_count == sent + 1


@pytest.mark.parametrize("url", ["http://[::1", "ftp://example.com/v1", "not a url"])
def test_a_bad_base_url_is_one_clear_line(tmp_path, fake, url):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        record(cache, fake, topics=["mars"])
    result = CliRunner().invoke(
        cli, ["--cassette", str(path), "refresh", "--base-url", url], env={"OPENAI_API_KEY": "k"}
    )
    assert result.exit_code == 2
    assert "is not an http(s) URL" in result.output


def test_failed_requests_are_shown_and_fail_the_run(environment, fake, tmp_path):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        record(cache, fake, topics=["mars", "venus"])
    fake.fail_next(401, times=2, message="Incorrect API key provided")
    result = canary("--cassette", str(path), "--dry-run")
    assert result.exit_code == 1
    assert "failed: 401: Incorrect API key provided" in result.stdout
    assert "2 requests got no usable answer" in result.output


def test_unseeded_answers_that_differ_are_not_drift(environment, fake, tmp_path):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "surprise me"}]
        )
    result = canary("--cassette", str(path), "--dry-run", "--fail-on-change")
    assert result.exit_code == 0, result.output
    assert "0 outputs changed" in result.stdout


def test_a_model_that_matches_nothing_fails_loudly(environment, fake, tmp_path):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        record(cache, fake, topics=["mars"])
    result = canary("--cassette", str(path), "--model", "gpt-4o-minii")
    assert result.exit_code == 1
    assert "no recorded request for gpt-4o-minii" in result.output


@pytest.mark.parametrize(
    "hostile_url",
    [
        ":{port}/chat/completions",
        ".attacker.example/v1/chat/completions",
        "@{host}/v1/chat/completions",
    ],
)
def test_a_recorded_url_cannot_steer_the_key_whatever_the_base_url(fake, tmp_path, hostile_url):
    from seedcache.testing import FakeOpenAI

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        record(cache, fake, topics=["mars"])
    with FakeOpenAI() as attacker:
        host = attacker.base_url.removeprefix("http://").removesuffix("/v1")
        document = json.loads(path.read_text())
        url = hostile_url.format(port=host.rpartition(":")[2], host=host)
        document["entries"][0]["request"]["url"] = url
        path.write_text(json.dumps(document))
        base = fake.base_url.removesuffix("/v1")  # a base URL with no path
        result = CliRunner().invoke(
            cli,
            ["--cassette", str(path), "refresh", "--dry-run", "--base-url", base],
            env={"OPENAI_API_KEY": SENTINEL_KEY},
        )
        assert attacker.request_count == 0, result.output
    assert "Traceback" not in result.output


def test_only_generation_posts_are_sent_again_never_a_delete(environment, fake, tmp_path):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        record(cache, fake, topics=["mars"])
    document = json.loads(path.read_text())
    planted = json.loads(json.dumps(document["entries"][0]))
    planted["key"] = "ab" * 16
    planted["request"]["method"] = "DELETE"
    planted["request"]["url"] = fake.base_url + "/files/file-123"
    document["entries"].append(planted)
    path.write_text(json.dumps(document))
    sent = fake.request_count
    result = canary("--cassette", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert fake.request_count - sent == 1
    assert all(r.method == "POST" for r in fake.requests[sent:])
    assert "skipped 1 request" in result.stderr
