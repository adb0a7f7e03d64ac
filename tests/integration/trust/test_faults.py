"""Faults that must never become a wrong answer or a lost take.

Each test is named after what it protects. Upstreams are the fake server, or an
``httpx2.MockTransport`` where the fault is in the bytes themselves.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os

import httpx2
import openai
import pytest

from helpers import MESSAGES, SENTINEL_KEY, make_client
from seedcache import SeedCache

HOUR = 3600.0
DAY = 24 * HOUR
T0 = 1_790_000_000.0


def mock_client(cache: SeedCache, handler) -> openai.OpenAI:
    """A wrapped client whose upstream is ``handler``."""
    http_client = openai.DefaultHttpxClient(transport=httpx2.MockTransport(handler))
    client = openai.OpenAI(
        api_key=SENTINEL_KEY, base_url="https://api.test/v1", max_retries=0, http_client=http_client
    )
    return cache.wrap(client)


def sse(*documents) -> list[bytes]:
    return [b"data: " + json.dumps(d).encode() + b"\n\n" for d in documents] + [b"data: [DONE]\n\n"]


def tool_chunk(delta, finish=None):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_a",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_a_stream_cut_short_is_not_stored_when_its_text_mentions_done(make_cache):
    """`data: [DONE]` inside a tool call's arguments is not the end of the stream."""
    arguments = json.dumps({"note": "the server says\ndata: [DONE]\nbut it is not"})
    events = sse(
        tool_chunk({"role": "assistant", "content": None}),
        tool_chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": arguments},
                    }
                ]
            }
        ),
        tool_chunk({}, finish="tool_calls"),
    )
    calls = []

    def handler(request):
        calls.append(request)
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(events)
        )

    cache = make_cache("auto")
    client = mock_client(cache, handler)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = iter(stream)
    next(chunks)
    next(chunks)
    stream.close()  # the caller stopped after two chunks
    assert cache.store.keys() == []
    whole = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )
    assert whole[-1].choices[0].finish_reason == "tool_calls"
    assert len(calls) == 2
    assert len(cache.store.keys()) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404])
@pytest.mark.parametrize("mode", ["record", "refresh"])
def test_an_error_never_replaces_a_recorded_success(fake, make_cache, caplog, status, mode):
    recorded = (
        make_cache("auto")
        .wrap(make_client(fake))
        .chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
    )
    fake.fail_next(status)
    options = {"fingerprints": ["fp_other"]} if mode == "refresh" else {}
    with caplog.at_level(logging.WARNING, logger="seedcache"), pytest.raises(openai.APIStatusError):
        make_cache(mode, **options).wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
    fake.stop()
    replayed = (
        make_cache("replay")
        .wrap(make_client(fake))
        .chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
    )
    assert replayed == recorded
    if status not in (401, 403):  # those are never stored at all, nothing to warn about
        assert "kept the recorded take" in caplog.text


def test_a_retried_transient_error_does_not_shift_takes(fake, make_cache):
    """Re-recording two unseeded calls where the first attempt got a 500 and was retried."""

    def two_calls(cache, retries=0):
        client = cache.wrap(make_client(fake, max_retries=retries))
        return [
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            .choices[0]
            .message.content
            for _ in range(2)
        ]

    stale = two_calls(make_cache("auto"))
    fake.fail_next(500, headers={"retry-after-ms": "1"})
    fresh = two_calls(make_cache("record"), retries=2)
    assert fresh != stale
    fake.stop()
    assert two_calls(make_cache("replay")) == fresh


_JSON_LIST = json.dumps({"id": "x", "object": "list", "data": []}).encode()


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(
            {"content-type": "application/json", "content-encoding": "gzip"},
            gzip.compress(_JSON_LIST, mtime=0)[:-12],
            id="truncated gzip",
        ),
        pytest.param(
            {"content-type": "application/json"}, b'{"object": "list", "da', id="cut short"
        ),
        pytest.param({"content-type": "application/json"}, b"<<not json>>", id="invalid json"),
        pytest.param(
            {"content-type": "text/html"}, b"<html><body>Gateway login</body></html>", id="html"
        ),
    ],
)
def test_a_broken_200_is_never_stored(make_cache, headers, body):
    cache = make_cache("auto")

    def handler(request):
        return httpx2.Response(200, headers=headers, content=body)

    client = mock_client(cache, handler)
    # The caller may or may not get an error; nothing may be stored either way.
    with contextlib.suppress(Exception):
        client.models.list()
    assert cache.store.keys() == []


def test_a_clock_from_the_future_does_not_poison_the_fingerprint_registry(fake, make_cache):
    class Clock:
        now = T0 + 365 * DAY

        def __call__(self):
            return self.now

    clock = Clock()

    def ask(mode, content):
        client = make_cache(mode, clock=clock).wrap(make_client(fake))
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": content}], seed=1
        )
        return raw.http_response.extensions["seedcache"].action.value

    fake.fingerprint = "fp_a"
    assert ask("auto", "a") == "recorded"  # a run whose clock is a year ahead
    clock.now = T0
    fake.fingerprint = "fp_b"
    assert ask("refresh", "b") == "recorded"
    # Every cache is a run of its own: it checks what the model serves now, live.
    assert ask("refresh", "b") == "confirmed"
    clock.now = T0 + 2 * HOUR
    assert ask("refresh", "c") == "recorded"
    assert ask("refresh", "a") == "refreshed"  # fp_a, though "seen" a year ahead, is gone
    assert ask("refresh", "a") == "confirmed"


def test_a_failed_write_still_gives_the_caller_its_paid_response(
    fake, tmp_path, monkeypatch, caplog
):
    cache = SeedCache.cassette(tmp_path / "c.json", mode="auto")
    client = cache.wrap(make_client(fake))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with caplog.at_level(logging.ERROR, logger="seedcache"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=2, stream=True
        )
        assert [c.choices[0].delta.content for c in stream if c.choices]
    assert reply.choices[0].message.content
    assert cache.stats().write_errors == 2
    assert "could not be recorded" in caplog.text
    assert "No space left on device" in caplog.text
    cache.close()


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1.0}
    for _ in range(depth):
        value = {"x": value}
    return value


def test_a_deeply_nested_body_is_keyed_recorded_and_replayed(fake, make_cache):
    body = nested(500)

    def ask(cache):
        return cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1, extra_body={"deep": body}
        )

    recorded = ask(make_cache("auto"))
    fake.stop()
    assert ask(make_cache("replay")) == recorded
