"""Reading commands over a folder of cassettes: "did my suite drift?" in one command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from helpers import make_client, stored_bytes
from seedcache import SeedCache
from seedcache._cli import cli

PROMPTS = {
    "tests/test_a/test_mars.json": "Tell me about Mars.",
    "tests/test_a/test_venus.json": "Tell me about Venus.",
    "tests/sub/test_b/test_titan.json": "Tell me about Titan, the largest moon of Saturn, "
    "in a story long enough to be cut short in the report.",
}


def ask(cache: SeedCache, fake, prompt: str) -> None:
    cache.wrap(make_client(fake)).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], seed=3
    )


@pytest.fixture
def drifted(fake, tmp_path):
    """Three cassettes recorded under fp_a; two of them refreshed under fp_b."""
    root = tmp_path / "cassettes"
    fake.fingerprint = "fp_a"
    for name, prompt in PROMPTS.items():
        with SeedCache.cassette(root / name, mode="auto") as cache:
            ask(cache, fake, prompt)
    fake.fingerprint = "fp_b"
    for name in list(PROMPTS)[:2]:
        with SeedCache.cassette(root / name, mode="refresh") as cache:
            ask(cache, fake, PROMPTS[name])
    (root / "notes.json").write_text('{"not": "a cassette"}')
    return root


def run(*args: str):
    return CliRunner().invoke(cli, [*args], catch_exceptions=False)


def test_ls_over_a_folder_names_each_entry_s_cassette(drifted):
    result = run("--cassette", str(drifted), "ls")
    assert result.exit_code == 0, result.output
    assert "CASSETTE" in result.stdout
    for name in PROMPTS:
        assert name in result.stdout
    rows = json.loads(run("--cassette", str(drifted), "ls", "--json").stdout)
    assert sorted(r["cassette"] for r in rows) == sorted(PROMPTS)


def test_show_and_diff_over_a_folder_name_the_cassette(drifted):
    key = json.loads((drifted / "tests/test_a/test_mars.json").read_text())["entries"][0]["key"]
    shown = run("--cassette", str(drifted), "show", key[:10])
    assert shown.exit_code == 0, shown.output
    assert "cassette tests/test_a/test_mars.json" in shown.stdout
    diffed = run("--cassette", str(drifted), "diff", key[:10])
    assert diffed.exit_code == 0, diffed.output
    assert "tests/test_a/test_mars.json" in diffed.stdout
    assert "fingerprint fp_a" in diffed.stdout


@pytest.mark.parametrize("command", ["stats", "fingerprints", "determinism", "verify"])
def test_every_reading_command_accepts_a_folder(drifted, command):
    result = run("--cassette", str(drifted), command)
    if command == "verify":
        # The file that is not a cassette is named, not silently skipped.
        assert result.exit_code == 1
        assert "notes.json" in result.output
    else:
        assert result.exit_code == 0, result.output
    if command == "fingerprints":
        assert "fp_a" in result.stdout
        assert "fp_b" in result.stdout


def test_report_over_a_folder_names_each_changed_request_and_shows_its_diff(drifted):
    result = run("--cassette", str(drifted), "report")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "changed on refresh  2 of 2 refreshed keys" in out
    assert 'POST /v1/chat/completions gpt-4o-mini "Tell me about Mars."' in out
    assert "in tests/test_a/test_venus.json" in out
    assert "[-" in out
    assert "{+" in out
    facts = json.loads(run("--cassette", str(drifted), "report", "--json").stdout)
    assert sorted(c["cassettes"][0] for c in facts["changes"]) == sorted(list(PROMPTS)[:2])
    assert all(c["request"].startswith("POST /v1/chat/completions") for c in facts["changes"])


def test_a_long_prompt_is_shortened_where_a_request_is_named(drifted, fake):
    name = "tests/sub/test_b/test_titan.json"
    fake.fingerprint = "fp_c"
    with SeedCache.cassette(drifted / name, mode="refresh") as cache:
        ask(cache, fake, PROMPTS[name])
    out = run("--cassette", str(drifted), "report").stdout
    assert '"Tell me about Titan, the largest moon of Saturn, in a story…"' in out


@pytest.mark.parametrize(
    "args",
    [["rm", "--yes", "{key}"], ["prune", "--all", "--yes"], ["fingerprints", "--reset"]],
    ids=["rm", "prune", "reset"],
)
def test_changing_commands_refuse_a_folder_and_change_nothing(drifted, args):
    key = json.loads((drifted / "tests/test_a/test_mars.json").read_text())["entries"][0]["key"]
    before = stored_bytes(drifted)
    result = run("--cassette", str(drifted), *(a.replace("{key}", key) for a in args))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "is a folder of cassettes, read-only here; give a file" in result.output
    assert "remov" not in result.output  # refused before anything is listed as done
    assert stored_bytes(drifted) == before


def test_a_key_two_cassettes_share_is_read_from_the_one_refreshed(fake, tmp_path):
    root = tmp_path / "cassettes"
    fake.fingerprint = "fp_a"
    for name in ("a_test_one.json", "b_test_two.json"):
        with SeedCache.cassette(root / name, mode="auto") as cache:
            ask(cache, fake, "Tell me about Io.")
    fake.fingerprint = "fp_b"
    with SeedCache.cassette(root / "b_test_two.json", mode="refresh") as cache:
        ask(cache, fake, "Tell me about Io.")
    facts = json.loads(run("--cassette", str(root), "report", "--json").stdout)
    assert facts["changed_on_refresh"] == 1
    [change] = facts["changes"]
    assert change["cassettes"] == ["b_test_two.json"]
    key = change["key"]
    diffed = run("--cassette", str(root), "diff", key[:10])
    assert diffed.exit_code == 0, diffed.output
    assert "fingerprint fp_b" in diffed.stdout
