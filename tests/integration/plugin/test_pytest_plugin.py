"""The pytest plugin, run the way users run it: inner pytest sessions via pytester.

The inner tests talk to the project's fake server (OPENAI_BASE_URL), never the real API.
Inner sessions run in subprocesses: an in-process run restores ``sys.modules`` afterwards,
which leaves the worker with two copies of modules such as httpcore2, and later tests
then fail to recognise its exceptions.
"""

from __future__ import annotations

import json
import re

from helpers import SENTINEL_KEY

STORY_TEST = """
def test_story(openai_client):
    reply = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "PROMPT"}],
        seed=1,
    )
    assert reply.choices[0].message.content
"""

# Asks about each topic in $TOPICS, then fails if $FAIL is 1.
TOPICS_TEST = """
import os

def test_story(openai_client):
    for topic in os.environ["TOPICS"].split(","):
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": topic}], seed=1
        )
    assert os.environ.get("FAIL") != "1"
"""


def cassette(pytester, module, test):
    return pytester.path / "cassettes" / module / f"{test}.json"


def test_records_in_auto_then_replays_offline(inner, fake, monkeypatch):
    inner.makepyfile(test_story=STORY_TEST.replace("PROMPT", "Mars"))
    recorded = inner.runpytest_subprocess("--seedcache-mode=auto")
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(["seedcache: 0 hits, 1 recorded, 0 refreshed, 0 misses*"])
    path = cassette(inner, "test_story", "test_story")
    assert json.loads(path.read_text())["entries"][0]["request"]["body"]["seed"] == 1
    assert SENTINEL_KEY not in path.read_text()
    assert fake.request_count == 1

    fake.stop()
    monkeypatch.delenv("OPENAI_API_KEY")  # replay needs no key
    replayed = inner.runpytest_subprocess()
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["seedcache: 1 hits, 0 recorded, 0 refreshed, 0 misses*replay*"])


def test_the_placeholder_keys_are_put_back_after_each_test(inner, fake, monkeypatch):
    """A replay sets a placeholder key for SDKs that refuse to start without one; the next
    test sees the environment as it was, whatever the test did to it."""
    inner.makepyfile(test_story=STORY_TEST.replace("PROMPT", "Mars"))
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    fake.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    inner.makepyfile(
        test_after="""
        import os

        def test_a_replay_sets_what_is_missing(seedcache):
            assert os.environ["OPENAI_API_KEY"].startswith("sk-seedcache")
            assert os.environ["ANTHROPIC_API_KEY"].startswith("sk-seedcache")
            os.environ["GEMINI_API_KEY"] = "set-by-the-test"

        def test_z_sees_the_environment_as_it_was():
            assert "OPENAI_API_KEY" not in os.environ
            assert os.environ["ANTHROPIC_API_KEY"] == ""
            assert "GEMINI_API_KEY" not in os.environ
        """
    )
    result = inner.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_a_changed_prompt_fails_in_replay_with_what_differs_and_how_to_record(inner, fake):
    inner.makepyfile(test_story=STORY_TEST.replace("PROMPT", "Mars"))
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    inner.makepyfile(test_story=STORY_TEST.replace("PROMPT", "Venus"))
    result = inner.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*CacheMiss: no recorded response for POST /v1/chat/completions (model 'gpt-4o-mini')*",
            "*body.messages?0?.content: ?Mars? (recorded) vs ?Venus? (now)*",
            "*record it with: pytest --seedcache-mode=auto 'test_story.py::test_story'*",
        ]
    )
    assert fake.request_count == 1  # replay never reached the network


def test_the_flag_overrides_the_marker(inner, fake):
    inner.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.seedcache(mode="auto", cassette="custom/story.json")
        def test_marked(openai_client):
            openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=2
            )
        """
    )
    inner.runpytest_subprocess("--seedcache-mode=replay").assert_outcomes(failed=1)
    assert fake.request_count == 0
    inner.runpytest_subprocess().assert_outcomes(passed=1)  # the marker's auto applies
    assert fake.request_count == 1
    assert (inner.path / "cassettes" / "custom" / "story.json").is_file()


def test_ini_sets_mode_and_directory(inner, fake):
    inner.makeini("[pytest]\nseedcache_mode = auto\nseedcache_dir = recordings\n")
    inner.makepyfile(test_story=STORY_TEST.replace("PROMPT", "Mars"))
    inner.runpytest_subprocess().assert_outcomes(passed=1)
    assert (inner.path / "recordings" / "test_story" / "test_story.json").is_file()


def test_parametrized_tests_get_distinct_readable_cassettes(inner):
    inner.makepyfile(
        test_params="""
        import pytest

        @pytest.mark.parametrize("topic", ["Mars", "the Moon / Phobos"])
        def test_topic(openai_client, topic):
            openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": topic}], seed=3
            )

        class TestGroup:
            def test_member(self, openai_client):
                openai_client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], seed=4
                )
        """
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=3)
    names = sorted(p.name for p in (inner.path / "cassettes" / "test_params").iterdir())
    # A capital in an id is marked, so that [Mars] and [mars] differ on any file system.
    assert names[:2] == ["TestGroup.test_member.json", "test_topic[^Mars].json"]
    # An escaped id carries a hash of the raw id: "a/b" and "a_b" never share a file.
    assert re.fullmatch(r"test_topic\[the Moon _ Phobos\]~[0-9a-f]{10}\.json", names[2])


def test_record_mode_rewrites_the_cassette_from_scratch(inner, monkeypatch):
    inner.makepyfile(test_story=TOPICS_TEST)
    path = cassette(inner, "test_story", "test_story")

    def topics():
        document = json.loads(path.read_text())
        return sorted(e["request"]["body"]["messages"][0]["content"] for e in document["entries"])

    monkeypatch.setenv("TOPICS", "Mars,Venus")
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    assert topics() == ["Mars", "Venus"]
    monkeypatch.setenv("TOPICS", "Jupiter")
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    assert topics() == ["Jupiter", "Mars", "Venus"]  # auto only adds
    inner.runpytest_subprocess("--seedcache-mode=record").assert_outcomes(passed=1)
    assert topics() == ["Jupiter"]  # record starts over
    monkeypatch.setenv("TOPICS", "Saturn")
    monkeypatch.setenv("FAIL", "1")
    inner.runpytest_subprocess("--seedcache-mode=record").assert_outcomes(failed=1)
    assert topics() == ["Jupiter"]  # a failed recording leaves the cassette as it was
    assert [p.name for p in path.parent.iterdir()] == ["test_story.json"]


def test_a_swallowed_miss_still_fails_the_test(inner):
    inner.makepyfile(
        test_swallow="""
        def ask(client):
            try:
                return client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                ).choices[0].message.content
            except Exception:
                return "fallback answer"

        def test_swallow(openai_client):
            assert ask(openai_client) == "fallback answer"
        """
    )
    result = inner.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*1 request(s) had no recorded response, though the code under test swallowed*",
            "*record it with: pytest --seedcache-mode=auto 'test_swallow.py::test_swallow'*",
        ]
    )


def test_async_client_fixture(inner, fake):
    inner.makepyfile(
        test_async="""
        import asyncio

        def test_async(async_openai_client):
            async def main():
                reply = await async_openai_client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=5
                )
                return reply.choices[0].message.content

            assert asyncio.run(main())
        """
    )
    # An unclosed connection would surface as one of these warnings.
    strict = [
        "-W",
        "error::ResourceWarning",
        "-W",
        "error::pytest.PytestUnraisableExceptionWarning",
    ]
    inner.runpytest_subprocess("--seedcache-mode=auto", *strict).assert_outcomes(passed=1)
    fake.stop()
    inner.runpytest_subprocess(*strict).assert_outcomes(passed=1)


APP_TEST = """
import openai

def summarize(text):
    # Application code: builds its own client from the environment.
    client = openai.OpenAI()
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], seed=9
    )
    client.close()
    return reply.choices[0].message.content

def test_summarize(seedcache_proxy):
    assert summarize("a long text about Mars")
"""


def test_proxy_fixture_records_code_that_builds_its_own_client(inner, fake, monkeypatch):
    inner.makepyfile(test_app=APP_TEST)
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    assert fake.request_count == 1
    fake.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    result = inner.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["seedcache: 1 hits*"])
    inner.makepyfile(test_app=APP_TEST.replace("about Mars", "about Venus"))
    result = inner.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recorded response*", "*record it with*"])


def test_report_unused_lists_takes_no_test_asks_for(inner, monkeypatch):
    inner.makepyfile(test_story=TOPICS_TEST)
    monkeypatch.setenv("TOPICS", "Mars,Venus")
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    monkeypatch.setenv("TOPICS", "Mars")
    result = inner.runpytest_subprocess("--seedcache-report-unused")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["seedcache: 1 unused recording:", "*test_story.json: key *"])
