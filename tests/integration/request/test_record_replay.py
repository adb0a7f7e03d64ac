"""Record through the real SDK from the fake server, stop it, replay offline: identical."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest

import seedcache
from helpers import (
    MESSAGES,
    SENTINEL_KEY,
    SENTINEL_ORG,
    SENTINEL_PROJECT,
    make_client,
    stored_bytes,
)
from redis_servers import stored_bytes as redis_bytes
from seedcache import Action, CacheMiss


class Story(pydantic.BaseModel):
    title: str
    chapters: int


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        },
    },
}

# (resource path, method, arguments): each endpoint the cache must carry.
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "chat": (
        "chat.completions",
        "create",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "seed": 7, "temperature": 0.7},
    ),
    "chat-null-fingerprint": (
        "chat.completions",
        "create",
        {"model": "gpt-4.1-nano", "messages": MESSAGES, "seed": 7},
    ),
    "chat-tools": (
        "chat.completions",
        "create",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "tools": [WEATHER_TOOL]},
    ),
    "parse": (
        "chat.completions",
        "parse",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "response_format": Story},
    ),
    "completions": (
        "completions",
        "create",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 16},
    ),
    "embeddings-base64": (
        "embeddings",
        "create",
        {"model": "text-embedding-3-small", "input": "journey to Mars"},
    ),
    "embeddings-float": (
        "embeddings",
        "create",
        {
            "model": "text-embedding-3-small",
            "input": ["a", "b"],
            "encoding_format": "float",
            "dimensions": 256,
        },
    ),
    "responses": ("responses", "create", {"model": "gpt-4.1-nano", "input": "Tell a story"}),
    "models": ("models", "list", {}),
    "transcription": (
        "audio.transcriptions",
        "create",
        {"model": "whisper-1", "file": ("a.wav", b"RIFF-fake-audio-seed")},
    ),
}


def call_raw(client: openai.OpenAI, endpoint: str):
    path, method, arguments = ENDPOINTS[endpoint]
    resource = functools.reduce(getattr, path.split("."), client)
    return getattr(resource.with_raw_response, method)(**arguments)


def comparable(parsed: Any) -> Any:
    data = getattr(parsed, "data", None)
    if data is not None and not hasattr(parsed, "model_dump"):
        return [item.model_dump() for item in data]  # a page of models
    return parsed.model_dump(warnings=False) if hasattr(parsed, "model_dump") else parsed


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_record_then_replay_offline_is_identical(fake, make_cache, endpoint):
    """For every endpoint: same parsed object, same body bytes, no request on replay."""
    recorder = make_cache("auto")
    live = call_raw(recorder.wrap(make_client(fake)), endpoint)
    live_body, live_parsed = live.http_response.content, comparable(live.parse())
    assert live.headers["x-seedcache"].startswith("recorded")
    recorder.close()
    requests_seen = fake.request_count
    fake.stop()

    replayer = make_cache("replay")
    again = call_raw(replayer.wrap(make_client(fake)), endpoint)
    assert again.headers["x-seedcache"].startswith("hit; take=0")
    assert again.http_response.content == live_body
    assert comparable(again.parse()) == live_parsed
    assert again.request_id == live.request_id
    assert fake.request_count == requests_seen == 1


def test_second_call_in_auto_is_a_hit_without_network(fake, make_cache):
    cache = make_cache("auto")
    client = cache.wrap(make_client(fake))
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
    cache.close()
    second_cache = make_cache("auto")
    second = second_cache.wrap(make_client(fake)).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=1
    )
    assert second == first
    assert fake.request_count == 1
    assert second_cache.stats().hits == 1


def test_wrap_returns_a_copy_and_leaves_the_original_alone(fake, make_cache):
    original = make_client(fake)
    cache = make_cache("replay")
    wrapped = cache.wrap(original)
    assert wrapped is not original
    response = original.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert "x-seedcache" not in response.headers
    assert fake.request_count == 1
    with pytest.raises(CacheMiss):
        wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert fake.request_count == 1


def test_unseeded_repeats_replay_in_order_and_seeded_ones_agree(fake, make_cache):
    """The cookbook: two unseeded calls differ and replay differently, in order."""

    def story(client: openai.OpenAI, seed: int | None = None) -> str:
        extra = {} if seed is None else {"seed": seed}
        response = client.chat.completions.create(
            model="gpt-3.5-turbo-1106", messages=MESSAGES, max_tokens=200, temperature=0.7, **extra
        )
        return response.choices[0].message.content or ""

    recorder = make_cache("auto")
    client = recorder.wrap(make_client(fake))
    live = [story(client), story(client), story(client, 123), story(client, 123)]
    assert live[0] != live[1]
    assert live[2] == live[3]
    recorder.close()
    fake.stop()

    client = make_cache("replay").wrap(make_client(fake))
    assert [story(client), story(client), story(client, 123), story(client, 123)] == live
    assert story(client) == live[1]  # beyond the recorded takes: the last one again


def test_strict_replay_refuses_a_repeat_beyond_the_takes(fake, make_cache):
    client = make_cache("auto").wrap(make_client(fake))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    strict = make_cache("replay", strict=True).wrap(make_client(fake))
    strict.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(CacheMiss, match="1 take"):
        strict.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_miss_in_replay_explains_itself_and_sends_nothing(fake, make_cache):
    make_cache("auto").wrap(make_client(fake)).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=123, temperature=0.7
    )
    cache = make_cache("replay")
    with pytest.raises(CacheMiss) as raised:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=124, temperature=0.7
        )
    message = str(raised.value)
    assert "POST /v1/chat/completions" in message
    assert "'gpt-4o-mini'" in message
    assert raised.value.key in message
    assert cache.store.location in message
    assert "body.seed: 123 (recorded) vs 124 (now)" in message
    assert raised.value.differences == ("body.seed: 123 (recorded) vs 124 (now)",)
    assert isinstance(raised.value, LookupError)
    assert fake.request_count == 1
    assert cache.stats().misses == 1


def test_record_mode_always_fetches_and_replaces(fake, make_cache):
    auto = make_cache("auto").wrap(make_client(fake))
    first = auto.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    recorder = make_cache("record")
    second = recorder.wrap(make_client(fake)).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert fake.request_count == 2
    assert second != first
    (entry,) = list(recorder.store.entries())
    assert len(entry.takes) == 1
    replayed = (
        make_cache("replay")
        .wrap(make_client(fake))
        .chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    )
    assert replayed == second


@pytest.mark.parametrize("status", [401, 403, 407, 408, 409, 429, 500, 503])
def test_transient_and_credential_errors_are_passed_through_and_never_stored(
    fake, make_cache, status
):
    """Retried statuses would replay a passing fault; 401/403/407 depend on the key, not
    the request, and must not be served after the key is fixed."""
    cache = make_cache("auto")
    client = cache.wrap(make_client(fake))
    fake.fail_next(status)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raised.value.status_code == status
    assert cache.store.keys() == []
    assert cache.stats().passthrough == 1
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(cache.store.keys()) == 1


def test_sdk_retries_reach_the_transport_and_only_the_success_is_stored(fake, make_cache):
    cache = make_cache("auto")
    client = cache.wrap(make_client(fake, max_retries=2))
    fake.fail_next(500, times=2, headers={"retry-after-ms": "1"})
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=5)
    assert fake.request_count == 3
    (entry,) = list(cache.store.entries())
    assert [t.status for t in entry.takes] == [200]


def test_client_errors_are_recorded_and_replayed(fake, make_cache):
    """A 400 is an answer: error-handling code can be tested offline."""
    recorder = make_cache("auto").wrap(make_client(fake))
    with pytest.raises(openai.BadRequestError) as live:
        recorder.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=3)
    fake.stop()
    replayer = make_cache("replay").wrap(make_client(fake))
    with pytest.raises(openai.BadRequestError) as replayed:
        replayer.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=3)
    assert replayed.value.message == live.value.message
    assert replayed.value.request_id == live.value.request_id
    assert replayed.value.code == "decimal_above_max_value"


def test_bodies_are_stored_decoded_without_transfer_headers(fake, make_cache):
    """The fake server gzips like the real one; a replay that said gzip would break the SDK."""
    cache = make_cache("auto")
    cache.wrap(make_client(fake)).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (entry,) = list(cache.store.entries())
    take = entry.takes[0]
    assert take.body.startswith(b"{\n  ")
    assert take.body.endswith(b"}\n")
    names = {name for name, _ in take.headers}
    assert {"content-encoding", "content-length", "transfer-encoding"}.isdisjoint(names)
    assert {"content-type", "x-request-id", "openai-version"} <= names
    assert take.fingerprint == "fp_a1b2c3d4e5"
    assert take.model == "gpt-4o-mini"


def test_outcome_travels_with_the_response_and_is_counted(fake, make_cache):
    """The extension and the header say what the cache did; stats count it."""
    recorder = make_cache("auto")
    client = recorder.wrap(make_client(fake))
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    repeat = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert first.http_response.extensions["seedcache"].action is Action.RECORDED
    # The second identical call of a session is a new take, as the cookbook needs.
    assert repeat.http_response.extensions["seedcache"].action is Action.RECORDED
    assert recorder.stats().as_dict() == {
        "hits": 0,
        "joined": 0,
        "recorded": 2,
        "refreshed": 0,
        "confirmed": 0,
        "fingerprint_changes": 0,
        "output_changes": 0,
        "passthrough": 0,
        "misses": 0,
        "write_errors": 0,
    }
    recorder.close()

    replayer = make_cache("auto")
    client = replayer.wrap(make_client(fake))
    hits = [
        client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        for _ in range(2)
    ]
    outcomes = [h.http_response.extensions["seedcache"] for h in hits]
    assert [(o.action, o.take) for o in outcomes] == [(Action.HIT, 0), (Action.HIT, 1)]
    assert hits[1].headers["x-seedcache"] == f"hit; take=1; key={outcomes[1].key}"
    assert replayer.stats().hits == 2
    assert fake.request_count == 2


def test_secrets_never_reach_the_store(fake, store_kind, tmp_path: Path, make_cache):
    """API key, organization, project, cookies: in no stored byte, whatever the endpoint."""
    cache = make_cache("auto")
    client = cache.wrap(make_client(fake, default_query={"api-key": SENTINEL_KEY}))
    for endpoint in ENDPOINTS:
        call_raw(client, endpoint)
    cache.close()
    data = stored_bytes(tmp_path) if store_kind != "redis" else redis_bytes(cache.location)
    assert len(data) > 10_000
    for secret in (
        SENTINEL_KEY,
        SENTINEL_ORG,
        SENTINEL_PROJECT,
        "org-fakeorganization0001",
        "proj_fakeproject0001",
        "__cf_bm",
        "Bearer",
    ):
        assert secret.encode() not in data, secret


def test_cache_is_a_context_manager_and_reports_itself(tmp_path):
    with seedcache.SeedCache(tmp_path / "c", mode="replay") as cache:
        assert "replay" in repr(cache)
    with pytest.raises(seedcache.ConfigurationError):
        seedcache.SeedCache(tmp_path / "c").wrap(object())


NO_OUTPUT_FIELDS = ["user", "metadata", "store", "safety_identifier", "prompt_cache_key"]


def test_calls_differing_only_in_ignored_fields_share_one_recording(fake, make_cache):
    def ask(client, who):
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            seed=3,
            user=who,
            metadata={"run": who},
            store=who == "a",
            safety_identifier=who,
            prompt_cache_key=who,
        )

    first = ask(make_cache("auto", ignore=NO_OUTPUT_FIELDS).wrap(make_client(fake)), "a")
    fake.stop()
    replay = make_cache("replay", ignore=NO_OUTPUT_FIELDS).wrap(make_client(fake))
    assert ask(replay, "b") == first
    with pytest.raises(seedcache.CacheMiss) as missed:
        make_cache("replay", ignore=["user"]).wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=4, user="c"
        )
    # The miss names what really differs, not the ignored field.
    assert "body.seed: 3 (recorded) vs 4 (now)" in str(missed.value)
    assert "body.user" not in str(missed.value)


def test_a_miss_recorded_with_the_host_tells_to_record_again_when_matching_is_off(fake, make_cache):
    make_cache("auto").wrap(make_client(fake)).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=1
    )
    fake.stop()
    with pytest.raises(CacheMiss) as missed:
        make_cache("replay", match_host=False).wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
    assert "keyed under other matching rules" in str(missed.value)
    assert "turn host matching off" not in str(missed.value)


def test_a_miss_that_differs_only_in_host_under_match_host_off_says_record_again(
    fake, make_cache, tmp_path
):
    make_cache("auto").wrap(make_client(fake)).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=1
    )
    fake.stop()
    elsewhere = openai.OpenAI(api_key=SENTINEL_KEY, base_url="http://localhost:9/v1")
    with pytest.raises(CacheMiss) as missed:
        make_cache("replay", match_host=False).wrap(elsewhere).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
    elsewhere.close()
    assert "recorded with host matching on" in str(missed.value)
