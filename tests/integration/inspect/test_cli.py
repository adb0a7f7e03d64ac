"""The `seedcache` command line, through click's runner, over stores recorded via the SDK."""

from __future__ import annotations

import json
import re
from pathlib import Path

import diskcache
import pytest
from click.testing import CliRunner

from helpers import MESSAGES, make_client
from seedcache import CassetteStore, DiskStore, SeedCache
from seedcache._cli import cli

T0 = 1_790_000_000.0  # 2026-09-21
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A cache directory with a bit of everything, recorded through the SDK."""
    from seedcache.testing import FakeOpenAI

    root = tmp_path_factory.mktemp("recorded")
    clock = Clock()
    with FakeOpenAI(fingerprint="fp_a") as fake:

        def session(mode="auto", **options):
            return SeedCache(root / "cache", mode=mode, clock=clock, **options)

        with session() as cache:
            client = cache.wrap(make_client(fake))
            for _ in range(2):  # one seeded key, two identical takes under fp_a
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=42)
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "drifts"}], seed=1
            )
            client.embeddings.create(model="text-embedding-3-small", input="hello")
            client.chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES, seed=5)
        clock.now += 40 * DAY
        fake.fingerprint = "fp_b"
        with session("refresh", fingerprints=["fp_b"]) as cache:
            client = cache.wrap(make_client(fake))
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "drifts"}], seed=1
            )
    return root / "cache"


@pytest.fixture
def cache_dir(recorded, tmp_path):
    """A private copy of the recorded cache, free to change."""
    target = tmp_path / "cache"
    target.mkdir()
    for path in recorded.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def run(*args, input=None, env=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env)
    # Never a traceback: every failure is a clean exit with a message.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def keys_by_model(cache_dir):
    rows = json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)
    return {row["model"]: row["key"] for row in rows if row["model"] != "gpt-4o-mini"} | {
        ("drift" if row["history"] else "seeded"): row["key"]
        for row in rows
        if row["model"] == "gpt-4o-mini"
    }


def test_ls_lists_one_row_per_key(cache_dir):
    result = run("--cache-dir", cache_dir, "ls")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "KEY",
        "PROVIDER",
        "ENDPOINT",
        "MODEL",
        "SEED",
        "TAKES",
        "FINGERPRINTS",
        "RECORDED",
        "SIZE",
    ]
    assert len(lines) == 1 + 4
    drift = next(line for line in lines if "+1 replaced" in line)
    assert "fp_b" in drift
    assert "2026-10-31" in drift  # recorded-at of the newest take
    assert "\x1b[" not in result.stdout  # piped: no colour


def test_ls_json_and_filters(cache_dir, monkeypatch):
    rows = json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)
    assert {r["model"] for r in rows} == {"gpt-4o-mini", "text-embedding-3-small", "gpt-4.1-nano"}
    seeded = next(r for r in rows if r["seed"] == 42)
    assert (seeded["takes"], seeded["history"], seeded["fingerprints"]) == (2, 0, ["fp_a"])
    assert len(seeded["key"]) == 32

    def count(*options):
        return len(json.loads(run("--cache-dir", cache_dir, "ls", "--json", *options).stdout))

    assert count("--model", "gpt-4o-mini") == 2
    assert count("--fingerprint", "fp_b") == 1
    assert count("--endpoint", "embeddings") == 1
    assert count("--since", "2026-10-01") == 1
    monkeypatch.setattr("time.time", lambda: T0 + 45 * DAY)
    assert count("--since", "10d") == 1
    assert count("--limit", "2") == 2
    ordered = json.loads(run("--cache-dir", cache_dir, "ls", "--json", "--sort", "key").stdout)
    assert [r["key"] for r in ordered] == sorted(r["key"] for r in rows)


def test_ls_with_bad_since_is_a_usage_error(cache_dir):
    result = run("--cache-dir", cache_dir, "ls", "--since", "yesterday-ish")
    assert result.exit_code == 2
    assert "neither a duration" in result.stderr


def test_show_renders_request_and_takes(cache_dir):
    key = keys_by_model(cache_dir)["seeded"]
    result = run("--cache-dir", cache_dir, "show", key[:6])
    assert result.exit_code == 0
    out = result.stdout
    assert f"key      {key}" in out
    assert "POST http://127.0.0.1:" in out
    assert '"seed": 42' in out
    assert out.count("fingerprint fp_a") == 2
    assert "prompt_tokens" in out
    assert "sk-proj" not in out


def test_show_json_raw_and_history(cache_dir):
    key = keys_by_model(cache_dir)["drift"]
    document = json.loads(run("--cache-dir", cache_dir, "show", key, "--json").stdout)
    assert [(t["take"], t["fingerprint"]) for t in document["takes"]] == [
        ("0", "fp_b"),
        ("h0", "fp_a"),
    ]
    assert document["request"]["body"]["seed"] == 1
    raw = run("--cache-dir", cache_dir, "show", key, "--take", "h0", "--raw").stdout_bytes
    assert json.loads(raw)["system_fingerprint"] == "fp_a"
    result = run("--cache-dir", cache_dir, "show", key, "--raw")
    assert result.exit_code == 2
    assert "--take" in result.stderr
    result = run("--cache-dir", cache_dir, "show", key, "--take", "h5")
    assert result.exit_code == 1
    assert "its takes are: 0, h0" in result.stderr


@pytest.mark.parametrize(
    ("prefix", "message"),
    [("ffffffffff", "no recorded key starts with 'ffffffffff'"), ("", "give a key")],
)
def test_show_unknown_key_fails_cleanly(cache_dir, prefix, message):
    result = run("--cache-dir", cache_dir, "show", prefix)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_ambiguous_prefix_lists_candidates(tmp_path):
    store = DiskStore(tmp_path / "c")
    from seedcache import Entry, Take

    for key in ("abc1" + "0" * 28, "abc2" + "0" * 28):
        store.update(
            key, lambda _, key=key: Entry(key, {"method": "GET", "url": "u"}, [Take(200, (), b"")])
        )
    store.close()
    result = run("--cache-dir", tmp_path / "c", "show", "abc")
    assert result.exit_code == 1
    assert "2 keys start with 'abc'" in result.stderr
    assert "give more characters" in result.stderr


def test_diff_shows_the_refreshed_take_against_the_old_one(cache_dir):
    key = keys_by_model(cache_dir)["drift"]
    result = run("--cache-dir", cache_dir, "diff", key[:8])
    assert result.exit_code == 0
    first, second = result.stdout.splitlines()[:2]
    assert first.startswith("--- take h0  fingerprint fp_a")
    assert second.startswith("+++ take 0  fingerprint fp_b")
    assert "[-" in result.stdout
    assert "{+" in result.stdout
    coloured = run("--color", "always", "--cache-dir", cache_dir, "diff", key[:8]).stdout
    assert "\x1b[31m" in coloured
    assert "\x1b[32m" in coloured
    no_color = run("--cache-dir", cache_dir, "diff", key[:8], env={"NO_COLOR": "1"}).stdout
    assert "\x1b[" not in no_color
    document = json.loads(run("--cache-dir", cache_dir, "diff", key, "0", "h0", "--json").stdout)
    assert (document["a"]["fingerprint"], document["b"]["fingerprint"]) == ("fp_b", "fp_a")
    assert document["fingerprint_changed"] is True


def test_diff_of_identical_seeded_takes(cache_dir):
    key = keys_by_model(cache_dir)["seeded"]
    result = run("--cache-dir", cache_dir, "diff", key)
    assert "No differences found." in result.stdout
    assert run("--cache-dir", cache_dir, "diff", key, "0").exit_code == 2
    single = keys_by_model(cache_dir)["gpt-4.1-nano"]
    result = run("--cache-dir", cache_dir, "diff", single)
    assert result.exit_code == 1
    assert "nothing to compare" in result.stderr


def test_stats_counts_entries_models_fingerprints_and_sessions(cache_dir):
    document = json.loads(run("--cache-dir", cache_dir, "stats", "--json").stdout)
    assert (document["entries"], document["takes"], document["history"]) == (4, 5, 1)
    models = {m["model"]: m for m in document["models"]}
    assert models["gpt-4o-mini"]["takes"] == 4
    fingerprints = {(f["model"], f["fingerprint"]): f["takes"] for f in document["fingerprints"]}
    assert fingerprints[next(k for k in fingerprints if k[1] == "fp_a")] == 3
    assert document["counters"]["recorded"] == 5
    assert document["counters"]["refreshed"] == 1
    assert document["counters"]["fingerprint_changes"] == 1
    assert document["disk_bytes"] > document["body_bytes"] > 0
    text = run("--cache-dir", cache_dir, "stats").stdout
    assert "entries  4" in text
    assert "recorded 5" in text


def test_fingerprints_marks_the_current_ones(cache_dir, monkeypatch):
    monkeypatch.setattr("time.time", lambda: T0 + 40 * DAY + 60)
    document = json.loads(run("--cache-dir", cache_dir, "fingerprints", "--json").stdout)
    current = {(s["fingerprint"], s["current"]) for s in document}
    assert ("fp_b", True) in current
    assert ("fp_a", False) in current  # last seen 40 days before fp_b
    pinned = json.loads(
        run("--cache-dir", cache_dir, "fingerprints", "--pin", "fp_a", "--json").stdout
    )
    assert {s["fingerprint"] for s in pinned if s["current"]} == {"fp_a"}
    table = run("--cache-dir", cache_dir, "fingerprints").stdout
    assert re.search(r"fp_b .* yes", table)


def test_fingerprints_reset_forgets_what_was_seen_live_and_keeps_the_takes(cache_dir):
    before = json.loads(run("--cache-dir", cache_dir, "fingerprints", "--json").stdout)
    assert any(s["last_seen_ms"] for s in before)
    result = run("--cache-dir", cache_dir, "fingerprints", "--reset")
    assert result.exit_code == 0
    assert "forgot every fingerprint seen live" in result.stderr
    after = json.loads(run("--cache-dir", cache_dir, "fingerprints", "--json").stdout)
    assert {s["fingerprint"] for s in after} == {s["fingerprint"] for s in before}
    assert all(s["last_seen_ms"] is None for s in after)
    assert sum(s["takes"] for s in after) == sum(s["takes"] for s in before)


def test_determinism_table_and_json(cache_dir):
    document = json.loads(run("--cache-dir", cache_dir, "determinism", "--json").stdout)
    [row] = document["models"]
    assert row["model"] == "gpt-4o-mini"
    # seed 42: two fp_a takes, identical; seed 1: fp_a vs fp_b, different text
    assert (row["same_pairs"], row["same_identical"]) == (1, 1)
    assert (row["different_pairs"], row["different_identical"]) == (1, 0)
    text = run("--cache-dir", cache_dir, "determinism").stdout
    assert "1 (100%)" in text
    assert "0 (0%)" in text


def test_rm_asks_then_removes(cache_dir):
    key = keys_by_model(cache_dir)["gpt-4.1-nano"]
    declined = run("--cache-dir", cache_dir, "rm", key[:10], input="n\n")
    assert declined.exit_code == 1
    assert key in declined.stdout
    dry = run("--cache-dir", cache_dir, "rm", key[:10], "--dry-run")
    assert f"would remove {key}" in dry.stdout
    assert len(json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)) == 4
    accepted = run("--cache-dir", cache_dir, "rm", key[:10], input="y\n")
    assert accepted.exit_code == 0
    assert len(json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)) == 3
    missing = run("--cache-dir", cache_dir, "rm", key, "--yes")
    assert missing.exit_code == 1


def test_prune_by_fingerprint_keeps_other_takes(cache_dir):
    dry = run("--cache-dir", cache_dir, "prune", "--fingerprint", "fp_a", "--dry-run", "--json")
    plan = json.loads(dry.stdout)
    assert (plan["takes"], plan["entries"], plan["entries_removed"]) == (3, 2, 1)
    assert len(json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)) == 4
    result = run("--cache-dir", cache_dir, "prune", "--fingerprint", "fp_a", "--yes")
    assert result.exit_code == 0
    rows = json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)
    assert len(rows) == 3
    drift = next(r for r in rows if r["seed"] == 1)
    assert (drift["takes"], drift["history"]) == (1, 0)


def test_prune_older_than_model_and_all(cache_dir, monkeypatch):
    monkeypatch.setattr("time.time", lambda: T0 + 45 * DAY)
    run("--cache-dir", cache_dir, "prune", "--older-than", "30d", "--model", "gpt-4.1-nano", "-y")
    rows = json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)
    assert "gpt-4.1-nano" not in {r["model"] for r in rows}
    run("--cache-dir", cache_dir, "prune", "--older-than", "30d", "-y")
    rows = json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)
    assert [(r["seed"], r["takes"], r["history"]) for r in rows] == [(1, 1, 0)]
    assert run("--cache-dir", cache_dir, "prune", "--all", "-y").exit_code == 0
    assert json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout) == []


@pytest.mark.parametrize("options", [[], ["--all", "--model", "m"]])
def test_prune_needs_exactly_one_kind_of_selection(cache_dir, options):
    result = run("--cache-dir", cache_dir, "prune", *options)
    assert result.exit_code == 2
    assert "say what to prune" in result.stderr


def test_export_import_round_trip_is_lossless(cache_dir, tmp_path):
    cassette = tmp_path / "team" / "recordings.json"
    assert run("--cache-dir", cache_dir, "export", cassette).exit_code == 0
    back = tmp_path / "back"
    assert run("--cache-dir", back, "import", cassette).exit_code == 0
    second = tmp_path / "second.json"
    assert run("--cassette", cassette, "export", second).exit_code == 0

    original, restored = DiskStore(cache_dir), DiskStore(back)
    copy = CassetteStore(second)
    try:
        assert original.keys() == restored.keys()
        for entry in original.entries():
            assert entry == restored.get(entry.key) == copy.get(entry.key)
        assert json.loads(original.get_meta("fingerprints")) == json.loads(
            restored.get_meta("fingerprints")
        )
    finally:
        original.close()
        restored.close()
    # The restored cache replays offline, exactly.
    with SeedCache(back, mode="replay") as cache:
        client = cache.wrap(make_client_for_replay(original_url(cassette)))
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=42)
        assert reply.system_fingerprint == "fp_a"


def original_url(cassette: Path) -> str:
    document = json.loads(cassette.read_text())
    url = document["entries"][0]["request"]["url"]
    return url[: url.index("/v1/") + 3]


def make_client_for_replay(base_url):
    import openai

    return openai.OpenAI(api_key="unused", base_url=base_url, max_retries=0)


def test_import_leaves_existing_keys_alone_unless_replace(cache_dir, tmp_path):
    cassette = tmp_path / "c.json"
    key = keys_by_model(cache_dir)["drift"]
    run("--cache-dir", cache_dir, "export", cassette, "--key", key[:8])
    assert len(json.loads(cassette.read_text())["entries"]) == 1
    # the drift key loses its history take
    run("--cache-dir", cache_dir, "prune", "--fingerprint", "fp_a", "--model", "gpt-4o-mini", "-y")
    result = run("--cache-dir", cache_dir, "import", cassette)
    assert "left 1 entry already there untouched" in result.stderr
    rows = {r["key"]: r for r in json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)}
    assert (rows[key]["takes"], rows[key]["history"]) == (1, 0)
    result = run("--cache-dir", cache_dir, "import", cassette, "--replace")
    assert result.exit_code == 0
    rows = {r["key"]: r for r in json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)}
    assert (rows[key]["takes"], rows[key]["history"]) == (1, 1)


def test_export_onto_itself_is_refused(cache_dir):
    result = run("--cache-dir", cache_dir, "export", cache_dir)
    assert result.exit_code == 2


def test_verify_reports_and_fixes_a_corrupt_entry(cache_dir):
    key = keys_by_model(cache_dir)["seeded"]
    assert run("--cache-dir", cache_dir, "verify").exit_code == 0
    raw = diskcache.Cache(str(cache_dir))
    raw.set("entry:" + key, b"SCE1 not really a frame")
    raw.close()
    shown = run("--cache-dir", cache_dir, "show", key)
    assert shown.exit_code == 1
    assert key in shown.stderr
    result = run("--cache-dir", cache_dir, "verify")
    assert result.exit_code == 1
    assert f"broken  {key}" in result.stdout
    assert "checked 4 entries: 1 broken" in result.stderr
    fixed = run("--cache-dir", cache_dir, "verify", "--fix")
    assert fixed.exit_code == 0
    assert run("--cache-dir", cache_dir, "verify").exit_code == 0
    assert len(json.loads(run("--cache-dir", cache_dir, "ls", "--json").stdout)) == 3


def test_verify_fixes_a_cassette_with_a_broken_entry(cache_dir, tmp_path):
    cassette = tmp_path / "c.json"
    run("--cache-dir", cache_dir, "export", cassette)
    document = json.loads(cassette.read_text())
    document["entries"][1]["takes"][0]["status"] = "two hundred"
    cassette.write_text(json.dumps(document))
    listed = run("--cassette", cassette, "ls")
    assert listed.exit_code == 1
    assert "verify" in listed.stderr
    result = run("--cassette", cassette, "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["checked"] == 4
    assert "entries[1].takes[0].status" in report["broken"][0]["error"]
    assert run("--cassette", cassette, "verify", "--fix").exit_code == 0
    assert len(json.loads(run("--cassette", cassette, "ls", "--json").stdout)) == 3


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--cache-dir", "{tmp}/nowhere", "ls"], 1, "no cache directory at"),
        (["--cache-dir", "{tmp}/plain", "ls"], 1, "is not a seedcache directory"),
        (["--cassette", "{tmp}/missing.json", "stats"], 1, "no cassette at"),
        (["--cassette", "{tmp}/bad.json", "ls"], 1, "not valid JSON at line 1"),
        (["--cache-dir", "{tmp}/a", "--cassette", "{tmp}/b.json", "ls"], 2, "not both"),
        (["lsx"], 2, "No such command"),
        (["ls", "--sort", "colour"], 2, "Invalid value for '--sort'"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(tmp_path, args, code, message):
    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("not a cache")
    result = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "nowhere").exists()  # reading never creates a cache


def test_cache_dir_comes_from_the_environment(cache_dir):
    result = CliRunner().invoke(cli, ["ls", "--json"], env={"SEEDCACHE_DIR": str(cache_dir)})
    assert len(json.loads(result.stdout)) == 4


def test_a_store_with_nothing_recorded(tmp_path):
    DiskStore(tmp_path / "empty").close()
    result = run("--cache-dir", tmp_path / "empty", "ls")
    assert result.exit_code == 0
    assert "nothing recorded" in result.stderr
    assert (
        json.loads(run("--cache-dir", tmp_path / "empty", "determinism", "--json").stdout)["models"]
        == []
    )


def test_the_script_entry_point_is_installed():
    from importlib.metadata import entry_points

    [script] = [e for e in entry_points(group="console_scripts") if e.name == "seedcache"]
    assert script.value == "seedcache._cli:main"


# -- papercuts found by trying the CLI as a new user ----------------------------------------


def test_store_options_are_accepted_after_the_command_too(cache_dir):
    before = run("--cache-dir", cache_dir, "ls", "--json").stdout
    assert run("ls", "--cache-dir", cache_dir, "--json").stdout == before
    assert run("ls", f"--cache-dir={cache_dir}", "--json").stdout == before
    assert run("stats", "--json", "--cache-dir", cache_dir).exit_code == 0


def test_export_refuses_a_target_that_is_neither_a_directory_nor_a_cassette(cache_dir, tmp_path):
    result = run("--cache-dir", cache_dir, "export", str(tmp_path / "out.txt"))
    assert result.exit_code == 2
    assert "neither a cache directory nor a .json cassette" in result.stderr
    assert not (tmp_path / "out.txt").exists()
    assert run("--cache-dir", cache_dir, "export", str(tmp_path / "copy")).exit_code == 0


def test_a_file_that_is_not_a_cassette_is_named_as_such(tmp_path):
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[project]\nname = "x"\n')
    result = run("--cassette", str(toml), "ls")
    assert result.exit_code == 1
    assert "not a seedcache cassette" in result.stderr
    assert "restore" not in result.stderr
    assert toml.read_text() == '[project]\nname = "x"\n'


def test_messages_use_proper_plurals(cache_dir, tmp_path):
    first = run("--cache-dir", cache_dir, "export", str(tmp_path / "all.json")).stderr
    assert re.search(r"^copied \d+ entries to ", first)
    again = run("--cache-dir", cache_dir, "export", str(tmp_path / "all.json")).stderr
    assert re.search(r"left \d+ entries already there untouched", again)
    checked = run("--cache-dir", cache_dir, "verify").stderr
    assert re.search(r"checked \d+ entries: 0 broken", checked)
    for text in (first, again, checked):
        assert "(y/ies)" not in text
    table = run("--cache-dir", cache_dir, "ls", "--all").stdout
    assert not re.search(r"\+\d+h\b", table)
    assert "+1 replaced" in table
