"""Anthropic and Gemini through the same cache: the real SDKs, over real HTTP, against the
fake's Messages and generateContent routes."""

from __future__ import annotations

import asyncio

import anthropic
import httpx2
import pytest
from google import genai
from google.genai import types

from helpers import stored_bytes
from seedcache import CacheMiss, SeedCache
from seedcache._inspect._savings import price_usd
from seedcache._takes._usage import usage_of

ANTHROPIC_KEY = "sk-ant-api03-SENTINELanthropicKEY0123456789abcdef"
GOOGLE_KEY = "AIzaSENTINELgoogleKEY0123456789abcdefgh"
ASK = [{"role": "user", "content": "Tell me about a journey to Mars."}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def claude(fake, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=ANTHROPIC_KEY, base_url=fake.root_url, max_retries=0, **options
    )


def gemini(fake, **options) -> genai.Client:
    http = types.HttpOptions(base_url=fake.root_url, **options)
    return genai.Client(api_key=GOOGLE_KEY, http_options=http)


def messages_round(client) -> tuple:
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=ASK)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=200, messages=ASK) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    tool = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=200,
        messages=ASK,
        tools=[WEATHER],
        system="You are a weather bot.",
    )
    thinking = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=2000,
        messages=ASK,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=ASK)
    return (
        message.model_dump(),
        streamed,
        final.stop_reason,
        tool.model_dump(),
        thinking.model_dump(),
        counted.input_tokens,
    )


def test_anthropic_records_and_replays_offline_byte_for_byte(fake, tmp_path):
    with SeedCache(tmp_path / "c", mode="auto") as cache, claude(fake) as own:
        recorded = messages_round(cache.wrap(own))
        assert cache.stats().recorded == 5
    assert recorded[3]["stop_reason"] == "tool_use"
    assert recorded[4]["content"][0]["type"] == "thinking"
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache, claude(fake) as own:
        replayed = messages_round(cache.wrap(own))
        assert cache.stats().hits == 5
    assert replayed == recorded
    assert ANTHROPIC_KEY.encode() not in stored_bytes(tmp_path)


def test_async_anthropic_streams_replay(fake, tmp_path):
    async def ask(cache) -> str:
        async with anthropic.AsyncAnthropic(
            api_key=ANTHROPIC_KEY, base_url=fake.root_url, max_retries=0
        ) as own:
            client = cache.wrap(own)
            async with client.messages.stream(
                model="claude-sonnet-4-5", max_tokens=100, messages=ASK
            ) as stream:
                return "".join([text async for text in stream.text_stream])

    with SeedCache(tmp_path / "c", mode="auto") as cache:
        recorded = asyncio.run(ask(cache))
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        assert asyncio.run(ask(cache)) == recorded


def test_an_anthropic_stream_cut_before_message_stop_is_never_stored(fake, tmp_path):
    fake.drop_streams_after = 4
    with SeedCache(tmp_path / "c", mode="auto") as cache, claude(fake) as own:
        client = cache.wrap(own)
        # The SDK lets the transport's error through mid-stream.
        with (
            pytest.raises((anthropic.APIError, httpx2.TransportError)),
            client.messages.stream(
                model="claude-sonnet-4-5", max_tokens=100, messages=ASK
            ) as stream,
        ):
            stream.get_final_message()
        assert cache.store.keys() == []


def test_anthropic_overloaded_passes_through_and_is_never_stored(fake, tmp_path):
    fake.fail_next(529, message="Overloaded")
    with SeedCache(tmp_path / "c", mode="auto") as cache, claude(fake) as own:
        client = cache.wrap(own)
        with pytest.raises(anthropic.APIStatusError) as raised:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=ASK)
        assert raised.value.status_code == 529
        assert cache.store.keys() == []


def test_signed_headers_are_neither_stored_nor_keyed(fake, tmp_path):
    """SigV4 (Bedrock) signs every request anew: a signed call must replay."""

    def signed(stamp: str) -> anthropic.Anthropic:
        return claude(
            fake,
            default_headers={
                "authorization": f"AWS4-HMAC-SHA256 Credential=AKIA/{stamp}, Signature={stamp}",
                "x-amz-date": stamp,
                "x-amz-security-token": f"token-{stamp}",
                "x-amz-content-sha256": f"sha-{stamp}",
            },
        )

    with SeedCache(tmp_path / "c", mode="auto") as cache, signed("20261203T010101Z") as own:
        first = cache.wrap(own).messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=ASK
        )
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache, signed("20261203T020202Z") as own:
        again = cache.wrap(own).messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=ASK
        )
    assert again.content == first.content
    stored = stored_bytes(tmp_path)
    assert b"20261203T010101Z" not in stored
    assert b"AKIA" not in stored


def test_anthropic_usage_and_backend_are_read_from_takes(fake, tmp_path):
    with SeedCache(tmp_path / "c", mode="auto") as cache, claude(fake) as own:
        client = cache.wrap(own)
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=ASK)
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=60, messages=ASK) as s:
            s.until_done()
        takes = [e.takes[0] for e in cache.store.entries()]
    assert {t.model for t in takes} == {"claude-sonnet-4-5-20250929"}
    for take in takes:
        usage = usage_of(take)
        assert usage is not None
        assert usage.input > 0
        assert usage.output > 1
        assert price_usd(take.model, usage) > 0


def gemini_round(own: genai.Client, cache: SeedCache) -> tuple:
    client = cache.wrap(own)
    answer = client.models.generate_content(model="gemini-2.0-flash", contents="Mars?")
    streamed = "".join(
        chunk.text
        for chunk in client.models.generate_content_stream(
            model="gemini-2.0-flash", contents="Mars?"
        )
    )
    called = client.models.generate_content(
        model="gemini-2.0-flash",
        contents="The weather in Paris?",
        config=types.GenerateContentConfig(
            tools=[
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name="get_weather",
                            parameters=types.Schema(
                                type="OBJECT", properties={"city": types.Schema(type="STRING")}
                            ),
                        )
                    ]
                )
            ],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )

    async def in_async() -> str:
        reply = await client.aio.models.generate_content(
            model="gemini-2.0-flash", contents="Venus?"
        )
        # The connection the user's own async client pooled lives in this event loop.
        await own.aio.aclose()
        return reply.text

    return (
        answer.text,
        answer.model_version,
        streamed,
        called.function_calls[0].name,
        asyncio.run(in_async()),
    )


def test_gemini_records_and_replays_offline_sync_async_and_streams(fake, tmp_path):
    with SeedCache(tmp_path / "c", mode="auto") as cache, gemini(fake) as own:
        recorded = gemini_round(own, cache)
        assert cache.stats().recorded == 4
    assert recorded[1] == "gemini-2.0-flash-001"
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache, gemini(fake) as own:
        assert gemini_round(own, cache) == recorded
        assert cache.stats().hits == 4
    assert GOOGLE_KEY.encode() not in stored_bytes(tmp_path)


def test_a_gemini_key_in_the_url_is_neither_stored_nor_keyed(fake, tmp_path):
    """REST callers put the key in the URL (``?key=``); another key still replays."""
    url = f"{fake.root_url}/v1beta/models/gemini-2.0-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "Mars?"}]}]}

    def ask(cache, key):
        with httpx2.Client(transport=cache.transport()) as http:
            return http.post(url, params={"key": key}, json=body).json()

    with SeedCache(tmp_path / "c", mode="auto") as cache:
        recorded = ask(cache, GOOGLE_KEY)
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        assert ask(cache, "AIzaANOTHERkey") == recorded
    assert GOOGLE_KEY.encode() not in stored_bytes(tmp_path)


def test_gemini_usage_is_counted_and_priced(fake, tmp_path):
    with SeedCache(tmp_path / "c", mode="auto") as cache, gemini(fake) as own:
        cache.wrap(own).models.generate_content(model="gemini-2.0-flash", contents="Mars?")
        take = next(cache.store.entries()).takes[0]
    usage = usage_of(take)
    assert usage is not None
    assert usage.input > 0
    assert usage.output > 0
    assert price_usd(take.model, usage) > 0


def test_a_miss_in_replay_names_the_provider_call(fake, tmp_path):
    with (
        SeedCache(tmp_path / "c", mode="replay") as cache,
        claude(fake) as own,
        pytest.raises(CacheMiss) as miss,
    ):
        cache.wrap(own).messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=ASK)
    assert "/v1/messages" in str(miss.value)


def test_the_proxy_serves_anthropic_and_gemini_upstreams(fake, tmp_path):
    """``seedcache serve --upstream https://api.anthropic.com``, for clients in any language."""

    def through_proxy(cache) -> tuple:
        with cache.proxy(fake.root_url) as url:
            with anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=url, max_retries=0) as c:
                message = c.messages.create(model="claude-sonnet-4-5", max_tokens=60, messages=ASK)
                with c.messages.stream(
                    model="claude-sonnet-4-5", max_tokens=60, messages=ASK
                ) as stream:
                    streamed = "".join(stream.text_stream)
            options = types.HttpOptions(base_url=url)
            with genai.Client(api_key=GOOGLE_KEY, http_options=options) as g:
                text = g.models.generate_content(model="gemini-2.0-flash", contents="Mars?").text
        return message.content[0].text, streamed, text

    with SeedCache(tmp_path / "c", mode="auto") as cache:
        recorded = through_proxy(cache)
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        assert through_proxy(cache) == recorded
        assert cache.stats().hits == 3
    stored = stored_bytes(tmp_path)
    assert ANTHROPIC_KEY.encode() not in stored
    assert GOOGLE_KEY.encode() not in stored


def test_what_a_person_reads_in_anthropic_and_gemini_takes(fake, tmp_path):
    """`show`, drift and the report read the answer, not the JSON around it: a streamed
    take reads as the same text as the whole answer it streams."""
    from seedcache._takes._content import content_of

    tool_ask = [{"role": "user", "content": "The weather in Paris?"}]
    with SeedCache(tmp_path / "c", mode="auto") as cache, claude(fake) as own:
        client = cache.wrap(own)
        whole = client.messages.create(model="claude-sonnet-4-5", max_tokens=80, messages=ASK)
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=80, messages=ASK) as s:
            s.until_done()
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=80, messages=tool_ask, tools=[WEATHER]
        )
        with gemini(fake) as g:
            wrapped = cache.wrap(g)
            answer = wrapped.models.generate_content(model="gemini-2.0-flash", contents="Mars?")
            list(wrapped.models.generate_content_stream(model="gemini-2.0-flash", contents="Mars?"))
        texts = {content_of(e.takes[0]).text for e in cache.store.entries()}
    assert whole.content[0].text in texts
    assert answer.text in texts
    assert len(texts) == 3  # each stream reads as the whole answer it repeats
    assert any(t.startswith("tool call get_weather {") for t in texts)


def test_an_anthropic_stream_with_an_error_event_is_never_stored(fake, tmp_path):
    """Anthropic reports an overload mid-stream as an ``error`` event in a 200 body."""
    fake.fail_streams_after = 3
    with SeedCache(tmp_path / "c", mode="auto") as cache, claude(fake) as own:
        client = cache.wrap(own)
        with (
            pytest.raises(anthropic.APIStatusError, match="Overloaded"),
            client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=ASK) as s,
        ):
            s.until_done()
        assert cache.store.keys() == []
    fake.fail_streams_after = None
    with SeedCache(tmp_path / "c", mode="auto") as cache, claude(fake) as own:
        with cache.wrap(own).messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, messages=ASK
        ) as s:
            s.until_done()
        assert len(cache.store.keys()) == 1


def test_claude_on_vertex_records_and_replays_and_its_bearer_is_never_stored(fake, tmp_path):
    """AnthropicVertex is built like Anthropic: wrap() takes it, streams included."""
    token = "ya29.SENTINELgoogleOAUTHtoken0123456789"

    def ask(cache) -> tuple:
        with anthropic.AnthropicVertex(
            region="us-east5",
            project_id="proj",
            access_token=token,
            base_url=f"{fake.root_url}/v1",
            max_retries=0,
        ) as own:
            client = cache.wrap(own)
            whole = client.messages.create(model="claude-sonnet-4-5", max_tokens=60, messages=ASK)
            with client.messages.stream(
                model="claude-sonnet-4-5", max_tokens=60, messages=ASK
            ) as stream:
                streamed = "".join(stream.text_stream)
        return whole.content[0].text, streamed

    with SeedCache(tmp_path / "c", mode="auto") as cache:
        recorded = ask(cache)
        assert {s.model for s in cache.store.summaries()} == {"claude-sonnet-4-5"}
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        assert ask(cache) == recorded
    assert token.encode() not in stored_bytes(tmp_path)


def test_a_wrapped_gemini_aio_client_outlives_each_event_loop(fake, tmp_path):
    """Scripts call ``asyncio.run`` again and again; genai makes its own async client per
    loop, so the wrapped one must not keep a connection of a loop that ended."""
    with SeedCache(tmp_path / "c", mode="auto") as cache, gemini(fake) as own:
        client = cache.wrap(own)
        for run in range(3):
            asyncio.run(
                client.aio.models.generate_content(model="gemini-2.0-flash", contents=f"run {run}")
            )
        assert cache.stats().recorded == 3


def test_only_an_anthropic_requests_miss_is_an_anthropic_error(fake, tmp_path):
    """An app with a fallback on ``except anthropic.AnthropicError`` must not swallow
    another provider's miss."""
    from helpers import make_client

    with SeedCache(tmp_path / "c", mode="replay") as cache, claude(fake) as own:
        with pytest.raises(CacheMiss) as openai_miss:
            cache.wrap(make_client(fake)).chat.completions.create(model="gpt-4o-mini", messages=ASK)
        with pytest.raises(CacheMiss) as anthropic_miss:
            cache.wrap(own).messages.create(model="claude-sonnet-4-5", max_tokens=9, messages=ASK)
    assert not isinstance(openai_miss.value, anthropic.AnthropicError)
    assert isinstance(anthropic_miss.value, anthropic.AnthropicError)
