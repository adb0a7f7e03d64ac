"""A nightly ``pytest --seedcache-mode=refresh`` over a suite of per-test cassettes.

The suite is laid out as users lay theirs out (packages, twin module names, a class,
parametrize ids); the fake server changes its fingerprint between runs.
"""

from __future__ import annotations

import pytest
from test_plugin_layout import ASK, write

from helpers import stored_bytes

STORY = (
    ASK
    + """
import pytest

class TestStories:
    def test_mars(self, openai_client):
        assert ask(openai_client, "{where} mars")

    def test_venus(self, openai_client):
        assert ask(openai_client, "{where} venus")

@pytest.mark.parametrize("moon", ["io", "europa", "titan/1"])
def test_moons(openai_client, moon):
    assert ask(openai_client, "{where} " + moon)
"""
)

SUITE = {
    "tests/__init__.py": "",
    "tests/unit/__init__.py": "",
    "tests/unit/test_story.py": STORY.replace("{where}", "unit"),
    "tests/api/__init__.py": "",
    "tests/api/test_story.py": STORY.replace("{where}", "api"),
}


def summary_line(result) -> str:
    [line] = [x for x in result.outlines if x.startswith("seedcache: ") and " hits" in x]
    return line


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_refresh_run_after_a_backend_change_refreshes_every_test(inner, fake, workers):
    write(inner, SUITE)
    recorded = inner.runpytest_subprocess("--seedcache-mode=auto", *workers)
    recorded.assert_outcomes(passed=10)
    assert "0 hits, 10 recorded" in summary_line(recorded)
    assert fake.request_count == 10
    cassettes = inner.path / "cassettes"
    assert len(list(cassettes.rglob("*.json"))) == 10

    fake.fingerprint = "fp_new0000"
    result = inner.runpytest_subprocess("--seedcache-mode=refresh", *workers)
    result.assert_outcomes(passed=10)
    # Each process's first check asks three times before calling fp_a gone.
    checks = 2 if workers else 1
    assert fake.request_count == 20 + 2 * checks
    line = summary_line(result)
    assert "10 refreshed (fp_a1b2c3d4e5 → fp_new0000)" in line
    result.stdout.fnmatch_lines(
        ["seedcache: 10 outputs changed on refresh; see them with: seedcache --cassette *"]
    )
    for path in cassettes.rglob("*.json"):
        assert b'"fingerprint": "fp_new0000"' in path.read_bytes()

    # Nothing changed since: one live call per model and worker, no file moves, and
    # --seedcache-fail-on-drift has nothing to fail on.
    before = stored_bytes(cassettes)
    sent = fake.request_count
    drift_check = ["--seedcache-mode=refresh", "--seedcache-fail-on-drift", *workers]
    result = inner.runpytest_subprocess(*drift_check)
    result.assert_outcomes(passed=10)
    assert result.ret == 0
    assert fake.request_count - sent <= checks
    assert "0 refreshed" in summary_line(result)
    assert stored_bytes(cassettes) == before

    if workers:
        return  # the rest does not depend on xdist, and xdist sessions are slow to start
    # Another change: the tests pass, the run fails, and the recordings are refreshed.
    fake.fingerprint = "fp_third"
    result = inner.runpytest_subprocess(*drift_check)
    result.assert_outcomes(passed=10)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*--seedcache-fail-on-drift: the run fails*"])
    for path in cassettes.rglob("*.json"):
        assert b'"fingerprint": "fp_third"' in path.read_bytes()
