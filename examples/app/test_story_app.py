"""Tests of the story app, replayed offline from cassettes/examples/app/test_story_app/.

`seedcache_proxy` starts seedcache's proxy for this test's cassette and points
OPENAI_BASE_URL at it, so the app's own `openai.OpenAI()` is replayed unchanged. No API
key, no network. To record again against the real API:

    OPENAI_API_KEY=sk-... pytest --seedcache-mode=record examples/app
"""

from __future__ import annotations

from story_app import stream_story, tell_story


def test_tells_a_story_about_the_topic(seedcache_proxy):
    story = tell_story("a journey to Mars", seed=123)
    assert len(story.split()) > 20


def test_a_seed_makes_the_story_repeatable(seedcache_proxy):
    first = tell_story("a lighthouse keeper", seed=7)
    assert tell_story("a lighthouse keeper", seed=7) == first


def test_without_a_seed_stories_differ(seedcache_proxy):
    # Two live calls gave two stories; the replay gives the same two, in order.
    assert tell_story("a lighthouse keeper") != tell_story("a lighthouse keeper")


def test_streamed_story_equals_the_whole_one(seedcache_proxy):
    assert stream_story("a journey to Mars", seed=123) == tell_story("a journey to Mars", seed=123)
