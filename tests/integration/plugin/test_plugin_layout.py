"""The plugin on suites laid out as users lay them out: packages, twin module names,
classes, odd parametrize ids, shared cassettes, xdist. Each records, then replays offline.

Inner sessions run in subprocesses against the project's fake server, as in
``test_pytest_plugin.py``.
"""

from __future__ import annotations

import json
import textwrap

import pytest

ASK = """
def ask(client, prompt):
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], seed=7
    ).choices[0].message.content
"""


def write(pytester, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def entries(path) -> list[dict]:
    return json.loads(path.read_text())["entries"]


def prompts(path) -> list[str]:
    return sorted(e["request"]["body"]["messages"][0]["content"] for e in entries(path))


def replay_offline(inner, fake, monkeypatch, *args, passed):
    fake.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    result = inner.runpytest_subprocess(*args)
    result.assert_outcomes(passed=passed)
    return result


SHARED_SUITE = {
    "tests/__init__.py": "",
    "tests/test_shared.py": ASK
    + """
import pytest

pytestmark = pytest.mark.seedcache(cassette="shared/group.json")

class TestGroup:
    def test_a(self, openai_client):
        assert ask(openai_client, "alpha")

    def test_b(self, openai_client):
        assert ask(openai_client, "beta")

@pytest.mark.parametrize("n", range(12))
def test_many(openai_client, n):
    assert ask(openai_client, f"topic {n}")
""",
}


@pytest.mark.parametrize("mode", ["record", "auto"])
def test_tests_sharing_a_cassette_each_keep_their_recording(inner, fake, monkeypatch, mode):
    write(inner, SHARED_SUITE)
    inner.runpytest_subprocess(f"--seedcache-mode={mode}").assert_outcomes(passed=14)
    path = inner.path / "cassettes" / "shared" / "group.json"
    assert len(entries(path)) == 14
    replay_offline(inner, fake, monkeypatch, passed=14)


def test_record_on_a_shared_cassette_replaces_only_the_keys_it_recorded(inner, fake, monkeypatch):
    write(inner, SHARED_SUITE)
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=14)
    path = inner.path / "cassettes" / "shared" / "group.json"
    before = {e["key"]: e for e in entries(path)}
    fake.fingerprint = "fp_new0000"  # so that what test_a records differs
    inner.runpytest_subprocess("--seedcache-mode=record", "-k", "test_a").assert_outcomes(passed=1)
    after = {e["key"]: e for e in entries(path)}
    assert after.keys() == before.keys()
    changed = [k for k in after if after[k] != before[k]]
    assert len(changed) == 1
    assert after[changed[0]]["request"]["body"]["messages"][0]["content"] == "alpha"


def test_a_failing_test_leaves_a_shared_cassette_as_it_was_in_record_mode(inner, monkeypatch):
    write(inner, SHARED_SUITE)
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=14)
    path = inner.path / "cassettes" / "shared" / "group.json"
    before = path.read_bytes()
    write(
        inner,
        {
            "tests/test_shared.py": SHARED_SUITE["tests/test_shared.py"].replace(
                'assert ask(openai_client, "alpha")', 'ask(openai_client, "alpha"); assert 0'
            )
        },
    )
    inner.runpytest_subprocess("--seedcache-mode=record", "-k", "test_a").assert_outcomes(failed=1)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["group.json"]


@pytest.mark.parametrize("mode", ["auto", "record"])
def test_xdist_workers_merge_into_one_shared_cassette(inner, fake, monkeypatch, mode):
    write(inner, SHARED_SUITE)
    recorded = inner.runpytest_subprocess("-n", "4", f"--seedcache-mode={mode}")
    recorded.assert_outcomes(passed=14)
    recorded.stdout.fnmatch_lines(["seedcache: 0 hits, 14 recorded, 0 refreshed, 0 misses*"])
    path = inner.path / "cassettes" / "shared" / "group.json"
    assert len(entries(path)) == 14
    assert sorted(p.name for p in path.parent.iterdir()) == ["group.json"]  # no stray files
    # Two workers read what four wrote (each worker started costs seconds of imports).
    replayed = replay_offline(inner, fake, monkeypatch, "-n", "2", passed=14)
    replayed.stdout.fnmatch_lines(["seedcache: 14 hits, 0 recorded, 0 refreshed, 0 misses*"])


TWIN_SUITE = {
    "tests/__init__.py": "",
    "tests/unit/__init__.py": "",
    "tests/unit/test_api.py": ASK
    + """
def test_call(openai_client):
    assert ask(openai_client, "unit")
""",
    "tests/integration/__init__.py": "",
    "tests/integration/test_api.py": ASK
    + """
import pytest

def test_call(openai_client):
    assert ask(openai_client, "integration")

@pytest.mark.parametrize("path", ["a/b", "a:b", "a?b", "a_b", "../../escape", "x" * 300])
def test_path(openai_client, path):
    assert ask(openai_client, f"path {path}")

class TestNested:
    class TestDeeper:
        def test_call(self, openai_client):
            assert ask(openai_client, "nested")
""",
}


def test_every_test_gets_its_own_cassette(inner, fake, monkeypatch):
    write(inner, TWIN_SUITE)
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=9)
    root = inner.path / "cassettes"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))
    assert len(files) == 9, files
    assert "tests/unit/test_api/test_call.json" in files
    assert "tests/integration/test_api/test_call.json" in files
    assert "tests/integration/test_api/test_path[a_b].json" in files  # unescaped: no hash
    assert "tests/integration/test_api/TestNested.TestDeeper.test_call.json" in files
    for name in files:
        assert len(entries(root / name)) == 1
        assert len(name.rsplit("/", 1)[-1].encode()) <= 255
    assert prompts(root / "tests/unit/test_api/test_call.json") == ["unit"]
    assert fake.request_count == 9
    replay_offline(inner, fake, monkeypatch, passed=9)


def test_credential_errors_are_never_recorded(inner, fake):
    test = ASK + "\ndef test_auth(openai_client):\n    ask(openai_client, 'x')\n"
    write(inner, {"test_auth.py": test})
    for status in (401, 403):
        fake.fail_next(status)
        inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(failed=1)
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    assert fake.request_count == 3


MATCH_HOST_SUITE = {
    "tests/__init__.py": "",
    "tests/test_gateway.py": ASK
    + """
def test_through_gateway(openai_client):
    assert ask(openai_client, "via a gateway")
""",
}


def test_recorded_against_one_host_replays_against_another_with_match_host_off(
    inner, fake, monkeypatch
):
    write(inner, MATCH_HOST_SUITE)
    inner.makeini("[pytest]\nseedcache_match_host = false\n")
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    fake.stop()
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    monkeypatch.delenv("OPENAI_API_KEY")
    inner.runpytest_subprocess().assert_outcomes(passed=1)


def test_a_miss_that_differs_only_in_host_says_so_briefly(inner, fake, monkeypatch):
    write(inner, MATCH_HOST_SUITE)
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    fake.stop()
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    result = inner.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*CacheMiss: no recorded response for POST /v1/chat/completions*",
            "*differs only in its host*seedcache_match_host*",
            "*record it with: pytest --seedcache-mode=auto 'tests/test_gateway.py::*",
        ]
    )
    assert "SEEDCACHE_MODE" not in output
    failure = output.split("_ test_through_gateway _")[1].split("short test summary")[0]
    assert "site-packages" not in failure
    assert len(failure.splitlines()) < 30, failure


def test_markers_merge_closest_first_and_seedcache_config_gives_directory_defaults(
    inner, fake, monkeypatch
):
    write(
        inner,
        {
            "tests/__init__.py": "",
            "tests/conftest.py": """
                import pytest

                @pytest.fixture
                def seedcache_config():
                    return {"match_host": False, "ignore": ["user"]}
            """,
            "tests/test_merge.py": """
                import pytest

                pytestmark = pytest.mark.seedcache(cassette="merged.json", mode="replay")

                @pytest.mark.seedcache(mode="auto")
                class TestMerged:
                    def test_one(self, openai_client):
                        openai_client.chat.completions.create(
                            model="gpt-4o-mini",
                            messages=[{"role": "user", "content": "merged"}],
                            user=__import__("os").environ.get("END_USER", "alice"),
                        )
            """,
        },
    )
    inner.runpytest_subprocess().assert_outcomes(passed=1)  # the class's auto beats replay
    path = inner.path / "cassettes" / "merged.json"
    assert len(entries(path)) == 1  # the module's cassette still applies
    fake.stop()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9/v1")  # another host
    monkeypatch.setenv("END_USER", "bob")  # an ignored field
    inner.runpytest_subprocess("--seedcache-mode=replay").assert_outcomes(passed=1)


def test_an_unknown_marker_option_is_a_clear_error(inner):
    write(
        inner,
        {
            "test_typo.py": """
                import pytest

                @pytest.mark.seedcache(mach_host=False)
                def test_typo(openai_client):
                    pass
            """
        },
    )
    result = inner.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown seedcache option 'mach_host'*match_host*"])


def test_a_replayed_suite_builds_no_ssl_context(inner, fake, monkeypatch):
    """Nothing upstream exists in replay: each SSL context costs about 30 ms a test."""
    write(
        inner,
        {
            "tests/__init__.py": "",
            "tests/conftest.py": """
                import ssl

                loads = []
                _original = ssl.SSLContext.load_verify_locations

                def _counting(self, *args, **kwargs):
                    loads.append(1)
                    return _original(self, *args, **kwargs)

                ssl.SSLContext.load_verify_locations = _counting

                def pytest_terminal_summary(terminalreporter):
                    terminalreporter.write_line(f"ssl contexts built: {len(loads)}")
            """,
            "tests/test_clients.py": ASK
            + """
import asyncio

def test_sync(openai_client):
    assert ask(openai_client, "sync")

def test_async(async_openai_client):
    async def main():
        reply = await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "async"}], seed=7
        )
        return reply.choices[0].message.content
    assert asyncio.run(main())
""",
        },
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=2)
    result = replay_offline(inner, fake, monkeypatch, passed=2)
    result.stdout.fnmatch_lines(["ssl contexts built: 0"])


def test_re_recording_an_unchanged_suite_leaves_every_cassette_byte_identical(inner, fake):
    from helpers import stored_bytes

    write(
        inner,
        {
            **SHARED_SUITE,
            "tests/test_own.py": ASK
            + """
def test_own(openai_client):
    assert ask(openai_client, "own")

def test_stream(openai_client):
    chunks = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "s"}], seed=7, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
""",
        },
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=16)
    cassettes = inner.path / "cassettes"
    before = stored_bytes(cassettes)
    inner.runpytest_subprocess("--seedcache-mode=record").assert_outcomes(passed=16)
    assert fake.request_count == 32  # everything was fetched again...
    assert stored_bytes(cassettes) == before  # ...and nothing moved
    stream = json.loads((cassettes / "tests" / "test_own" / "test_stream.json").read_text())
    # The answer a stream spells sits beside its events, for a reviewer.
    output = stream["entries"][0]["takes"][0]["output"]
    assert isinstance(output, list)
    assert " ".join(output).strip()
