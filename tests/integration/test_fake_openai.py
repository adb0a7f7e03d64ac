"""FakeOpenAI as users build on it: Azure, n, logprobs, structured outputs, images, files,
models, and the API's 404 for any other route, through the real SDK, sync and async,
directly and through ``wrap()`` record → replay."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib

import httpx2
import openai
import pydantic
import pytest

import seedcache
from helpers import SENTINEL_KEY, make_client, stored_bytes

MESSAGES = [{"role": "user", "content": "Plan a trip to Mars."}]
API_VERSION = "2024-10-21"


class Stop(pydantic.BaseModel):
    name: str
    days: int
    kind: str = pydantic.Field(json_schema_extra={"enum": ["moon", "planet"]})


class Trip(pydantic.BaseModel):
    title: str
    crewed: bool
    budget: float
    stops: list[Stop]
    backup: Stop | None


def azure(fake, **options) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=fake.azure_endpoint,
        api_version=API_VERSION,
        api_key=SENTINEL_KEY,
        max_retries=0,
        **options,
    )


def is_png(data: bytes) -> bool:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    length, kind = struct.unpack(">I4s", data[8:16])
    header = data[16 : 16 + length]
    crc = struct.unpack(">I", data[16 + length : 20 + length])[0]
    return kind == b"IHDR" and zlib.crc32(kind + header) & 0xFFFFFFFF == crc


# -- Azure -----------------------------------------------------------------------------------


def test_azure_clients_record_and_replay_and_their_key_is_never_stored(fake, tmp_path):
    with seedcache.SeedCache(tmp_path / "c", mode="auto") as cache:
        client = cache.wrap(azure(fake))
        recorded = client.chat.completions.create(model="my-deployment", messages=MESSAGES, seed=4)
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(
                model="my-deployment", messages=MESSAGES, seed=4, stream=True
            )
            if c.choices
        )
        client.close()
    assert recorded.choices[0].message.content == streamed
    assert fake.requests[0].path.startswith("/openai/deployments/my-deployment/chat/completions")
    assert fake.requests[0].headers["api-key"] == SENTINEL_KEY
    calls = fake.request_count

    async def replay() -> str:
        with seedcache.SeedCache(tmp_path / "c", mode="replay") as cache:
            raw = openai.AsyncAzureOpenAI(
                azure_endpoint=fake.azure_endpoint, api_version=API_VERSION, api_key="other"
            )
            again = await cache.wrap(raw).chat.completions.create(
                model="my-deployment", messages=MESSAGES, seed=4
            )
            await raw.close()
            await cache.aclose()
            return str(again.choices[0].message.content)

    assert asyncio.run(replay()) == recorded.choices[0].message.content
    assert fake.request_count == calls
    assert SENTINEL_KEY.encode() not in stored_bytes(tmp_path)


def test_azure_through_the_proxy(fake, tmp_path):
    cache = seedcache.SeedCache(tmp_path / "c", mode="auto")
    with cache, cache.proxy(fake.azure_endpoint) as url:
        client = openai.AzureOpenAI(
            azure_endpoint=url, api_version=API_VERSION, api_key=SENTINEL_KEY, max_retries=0
        )
        first = client.embeddings.create(model="embedder", input="red dust")
        second = client.embeddings.create(model="embedder", input="red dust")
        client.close()
    assert first.data[0].embedding == second.data[0].embedding
    assert fake.request_count == 1
    assert SENTINEL_KEY.encode() not in stored_bytes(tmp_path)


def test_azure_answers_like_azure(fake):
    bare = openai.OpenAI(api_key="k", base_url=fake.azure_endpoint + "/openai", max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing_version:
        bare.chat.completions.create(model="d", messages=MESSAGES)
    assert missing_version.value.body["code"] == "404"
    url = f"{fake.azure_endpoint}/openai/deployments/d/chat/completions?api-version={API_VERSION}"
    denied = httpx2.post(url, json={"messages": MESSAGES})  # no api-key, no token
    assert denied.status_code == 401
    assert "Access denied" in denied.json()["error"]["message"]
    assert denied.json()["error"]["code"] == "401"
    token = openai.AzureOpenAI(
        azure_endpoint=fake.azure_endpoint,
        api_version=API_VERSION,
        azure_ad_token="aad-token",
        max_retries=0,
    )
    assert token.chat.completions.create(model="d", messages=MESSAGES).choices


# -- chat: n, logprobs, structured outputs -----------------------------------------------


def test_n_choices_and_logprobs_follow_the_seed(fake):
    client = make_client(fake)
    ask = {"model": "gpt-4o-mini", "messages": MESSAGES, "seed": 7, "n": 2}
    ask |= {"logprobs": True, "top_logprobs": 3}
    first, again = client.chat.completions.create(**ask), client.chat.completions.create(**ask)
    assert [c.index for c in first.choices] == [0, 1]
    assert first.choices[0].message.content != first.choices[1].message.content
    assert [c.message.content for c in first.choices] == [c.message.content for c in again.choices]
    tokens = first.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == first.choices[0].message.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 3 for t in tokens)
    assert [t.logprob for t in tokens] == [t.logprob for t in again.choices[0].logprobs.content]
    stream = client.chat.completions.create(**ask, stream=True)
    texts = {0: "", 1: ""}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {i: c.message.content for i, c in enumerate(first.choices)}


def test_structured_outputs_validate_against_the_model(fake, tmp_path):
    with seedcache.SeedCache(tmp_path / "c", mode="auto") as cache:
        client = cache.wrap(make_client(fake))
        parsed = client.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, seed=1, response_format=Trip
        )
        trip = parsed.choices[0].message.parsed
        assert isinstance(trip, Trip)
        assert all(stop.kind in ("moon", "planet") for stop in trip.stops)
        response = client.responses.parse(model="gpt-4.1-nano", input="Plan it.", text_format=Trip)
        assert isinstance(response.output_parsed, Trip)
    calls = fake.request_count
    with seedcache.SeedCache(tmp_path / "c", mode="replay") as cache:
        client = cache.wrap(make_client(fake))
        again = client.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, seed=1, response_format=Trip
        )
        assert again.choices[0].message.parsed == trip
        replayed = client.responses.parse(model="gpt-4.1-nano", input="Plan it.", text_format=Trip)
        assert replayed.output_parsed == response.output_parsed
    assert fake.request_count == calls


# -- images, files, models, unknown routes -----------------------------------------------


def test_images_as_base64_png_or_url(fake, tmp_path):
    with seedcache.SeedCache(tmp_path / "c", mode="auto") as cache:
        client = cache.wrap(make_client(fake))
        image = client.images.generate(model="gpt-image-1", prompt="red dust", n=2)
        assert len(image.data) == 2
        assert all(is_png(base64.b64decode(item.b64_json)) for item in image.data)
        linked = client.images.generate(model="dall-e-3", prompt="red dust", response_format="url")
    assert linked.data[0].url.startswith(fake.base_url)
    with seedcache.SeedCache(tmp_path / "c", mode="replay") as cache:
        client = cache.wrap(make_client(fake))
        again = client.images.generate(model="gpt-image-1", prompt="red dust", n=2)
    assert again.data[0].b64_json == image.data[0].b64_json


def test_files_upload_list_retrieve_content_delete_sync_and_async(fake, tmp_path):
    client = make_client(fake)
    uploaded = client.files.create(file=("notes.jsonl", b'{"a": 1}\n'), purpose="batch")
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("notes.jsonl", 9, "batch")
    assert [f.id for f in client.files.list()] == [uploaded.id]
    assert client.files.retrieve(uploaded.id).filename == "notes.jsonl"
    assert client.files.content(uploaded.id).content == b'{"a": 1}\n'

    async def more() -> None:
        raw = openai.AsyncOpenAI(api_key="k", base_url=fake.base_url, max_retries=0)
        assert (await raw.files.retrieve(uploaded.id)).id == uploaded.id
        assert (await raw.files.delete(uploaded.id)).deleted
        with pytest.raises(openai.NotFoundError):
            await raw.files.retrieve(uploaded.id)
        await raw.close()

    asyncio.run(more())
    # Through wrap(): the upload is recorded and replayed (multipart keyed without boundary).
    with seedcache.SeedCache(tmp_path / "c", mode="auto") as cache:
        recorded = cache.wrap(make_client(fake)).files.create(
            file=("a.txt", b"hello"), purpose="assistants"
        )
    with seedcache.SeedCache(tmp_path / "c", mode="replay") as cache:
        replayed = cache.wrap(make_client(fake)).files.create(
            file=("a.txt", b"hello"), purpose="assistants"
        )
    assert replayed.id == recorded.id


def test_models_and_unknown_routes_answer_as_the_api_does(fake):
    client = make_client(fake)
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.models.retrieve("gpt-nope")
    for method in ("get", "post", "delete"):
        with pytest.raises(openai.NotFoundError) as unknown:
            getattr(client, method)("/nothing/here", cast_to=object)
        assert unknown.value.body["message"] == f"Invalid URL ({method.upper()} /v1/nothing/here)"


def test_the_same_through_the_async_client_recorded_then_replayed(fake, tmp_path):
    """n and logprobs, structured outputs, images and models, async, via wrap()."""

    async def session(mode: str) -> list[object]:
        cache = seedcache.SeedCache(tmp_path / "c", mode=mode)
        raw = openai.AsyncOpenAI(api_key=SENTINEL_KEY, base_url=fake.base_url, max_retries=0)
        client = cache.wrap(raw)
        chat = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=3, n=2, logprobs=True, top_logprobs=2
        )
        parsed = await client.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, seed=3, response_format=Trip
        )
        response = await client.responses.parse(
            model="gpt-4.1-nano", input="Plan it.", text_format=Trip
        )
        image = await client.images.generate(model="gpt-image-1", prompt="dust")
        model = await client.models.retrieve("gpt-4o-mini")
        await raw.close()
        await cache.aclose()
        assert len(chat.choices) == 2
        assert chat.choices[1].logprobs.content[0].top_logprobs
        assert isinstance(parsed.choices[0].message.parsed, Trip)
        assert is_png(base64.b64decode(image.data[0].b64_json))
        return [
            [c.message.content for c in chat.choices],
            [t.logprob for t in chat.choices[0].logprobs.content],
            parsed.choices[0].message.parsed,
            response.output_parsed,
            image.data[0].b64_json,
            model.id,
        ]

    recorded = asyncio.run(session("auto"))
    calls = fake.request_count
    assert asyncio.run(session("replay")) == recorded
    assert fake.request_count == calls


def test_an_injected_error_carries_its_headers_and_the_providers_own_shape(fake):
    fake.fail_next(500, headers={"retry-after-ms": "1"})
    fake.fail_next(529, message="Overloaded")
    fake.fail_next(503, message="The model is overloaded.")
    with httpx2.Client(base_url=fake.root_url) as http:
        openai_shaped = http.post(
            "/v1/chat/completions", json={}, headers={"authorization": "Bearer k"}
        )
        anthropic_shaped = http.post("/v1/messages", json={}, headers={"x-api-key": "k"})
        google_shaped = http.post(
            "/v1beta/models/gemini-2.0-flash:generateContent",
            json={},
            headers={"x-goog-api-key": "k"},
        )
    assert openai_shaped.headers["retry-after-ms"] == "1"
    assert openai_shaped.json()["error"]["type"] == "server_error"
    assert anthropic_shaped.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert google_shaped.json()["error"]["status"] == "UNAVAILABLE"
