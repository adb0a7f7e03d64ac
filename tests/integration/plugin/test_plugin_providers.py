"""The Anthropic and Gemini fixtures, run as users run them: inner pytest sessions that
record against the fake, then replay offline with no key."""

from __future__ import annotations

import json

PROVIDERS_TEST = """
import asyncio


def test_claude(anthropic_client):
    reply = anthropic_client.messages.create(
        model="claude-sonnet-4-5", max_tokens=100,
        messages=[{"role": "user", "content": "Mars?"}],
    )
    with anthropic_client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100,
        messages=[{"role": "user", "content": "Venus?"}],
    ) as stream:
        assert "".join(stream.text_stream)
    assert reply.content[0].text


def test_async_claude(async_anthropic_client):
    async def ask():
        reply = await async_anthropic_client.messages.create(
            model="claude-sonnet-4-5", max_tokens=100,
            messages=[{"role": "user", "content": "Titan?"}],
        )
        return reply.content[0].text
    assert asyncio.run(ask())


def test_gemini(genai_client):
    assert genai_client.models.generate_content(model="gemini-2.0-flash", contents="Mars?").text

    async def ask():
        reply = await genai_client.aio.models.generate_content(
            model="gemini-2.0-flash", contents="Venus?"
        )
        return reply.text
    assert asyncio.run(ask())
"""

KEYS = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY")


def test_provider_fixtures_record_then_replay_offline_without_keys(inner, fake, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.root_url)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.root_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-SENTINELinnerKEY0123456789")
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSENTINELinnerKEY0123456789abcdef")
    inner.makepyfile(test_providers=PROVIDERS_TEST)
    recorded = inner.runpytest_subprocess("--seedcache-mode=auto")
    recorded.assert_outcomes(passed=3)
    files = sorted((inner.path / "cassettes" / "test_providers").glob("*.json"))
    assert [f.name for f in files] == [
        "test_async_claude.json",
        "test_claude.json",
        "test_gemini.json",
    ]
    for file in files:
        text = file.read_text()
        assert "SENTINEL" not in text
        assert json.loads(text)["entries"]

    fake.stop()
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    replayed = inner.runpytest_subprocess()
    replayed.assert_outcomes(passed=3)
    replayed.stdout.fnmatch_lines(["seedcache: 5 hits, 0 recorded, 0 refreshed, 0 misses*replay*"])


def test_a_miss_through_the_anthropic_fixture_says_what_to_record(inner, fake, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.root_url)
    inner.makepyfile(test_providers=PROVIDERS_TEST)
    result = inner.runpytest_subprocess("-k", "test_claude")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recorded response for POST /v1/messages*"])
    result.stdout.no_fnmatch_line("*Connection error*")
