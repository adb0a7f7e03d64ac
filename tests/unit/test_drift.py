"""Content extraction, word diffs and the determinism summary, over wire-shaped bodies."""

from __future__ import annotations

import json

import pytest

from seedcache import Entry, NotFoundError, SeedCacheError, Take
from seedcache._inspect._drift import determinism, diff_entry, diff_takes
from seedcache._stores._summary import summarize
from seedcache._takes._content import content_of

JSON = (("content-type", "application/json"),)
SSE = (("content-type", "text/event-stream; charset=utf-8"),)


def chat(text, *, fingerprint="fp_a", tool_calls=None, n=1):
    message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    if tool_calls:
        message["tool_calls"] = tool_calls
    document = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": i, "message": message, "logprobs": None, "finish_reason": "stop"}
            for i in range(n)
        ],
        "usage": {
            "prompt_tokens": 31,
            "completion_tokens": 9,
            "total_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    }
    body = json.dumps(document, indent=2).encode() + b"\n"
    return Take(200, JSON, body, fingerprint=fingerprint, model="gpt-4o-2024-08-06")


def sse(*events):
    return b"".join(
        b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events
    )


def chunk(delta, *, index=0, obfuscation="x7Qz"):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-mini",
        "service_tier": "default",
        "system_fingerprint": "fp_b",
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}],
        "obfuscation": obfuscation,
    }


def test_chat_content_and_usage():
    content = content_of(chat("The rocket rose."))
    assert content.text == "The rocket rose."
    assert content.usage == {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}


def test_tool_call_arguments_compare_as_json():
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"c"}'},
    }
    same = {**call, "function": {**call["function"], "arguments": '{"unit": "c", "city": "Paris"}'}}
    first, second = chat(None, tool_calls=[call]), chat(None, tool_calls=[same])
    assert content_of(first).text == 'tool call get_weather {"city": "Paris", "unit": "c"}'
    assert content_of(first).text == content_of(second).text
    broken = {**call, "function": {"name": "f", "arguments": '{"city": "Par'}}
    assert content_of(chat(None, tool_calls=[broken])).text == 'tool call f {"city": "Par'


def test_several_choices_are_labelled():
    assert content_of(chat("Hi", n=2)).text == "[choice 0]\nHi\n\n[choice 1]\nHi"


def test_chat_stream_is_assembled_from_deltas_and_usage_chunk():
    body = (
        sse(
            chunk({"role": "assistant", "content": "", "refusal": None}),
            chunk({"content": "Red "}, obfuscation="a"),
            chunk({"content": "planet."}, obfuscation="bcd"),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "land", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"site":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Jezero"}'}}]}),
            {
                **chunk({}),
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            },
        )
        + b"data: [DONE]\n\n"
    )
    content = content_of(Take(200, SSE, body))
    assert content.text == 'Red planet.\ntool call land {"site": "Jezero"}'
    assert content.usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def test_legacy_completion_body_and_stream():
    document = {"object": "text_completion", "choices": [{"text": "\n\nOnce", "index": 0}]}
    assert content_of(Take(200, JSON, json.dumps(document).encode())).text == "\n\nOnce"
    body = sse(
        {"choices": [{"text": "Once", "index": 0}]}, {"choices": [{"text": " upon", "index": 0}]}
    )
    assert content_of(Take(200, SSE, body + b"data: [DONE]\n\n")).text == "Once upon"


def test_responses_api_body_and_stream():
    response = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello there.", "annotations": []}],
            },
            {
                "type": "function_call",
                "name": "lookup",
                "arguments": '{"q":"mars"}',
                "call_id": "call_2",
            },
        ],
        "usage": {
            "input_tokens": 12,
            "output_tokens": 4,
            "total_tokens": 16,
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }
    expected = 'Hello there.\ntool call lookup {"q": "mars"}'
    assert content_of(Take(200, JSON, json.dumps(response).encode())).text == expected
    events = (
        b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
        b'"response":{"id":"resp_1","status":"in_progress","output":[]}}\n\n'
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
        b'"sequence_number":1,"delta":"Hello"}\n\n'
        b"event: response.completed\ndata: "
        + json.dumps(
            {"type": "response.completed", "sequence_number": 2, "response": response}
        ).encode()
        + b"\n\n"
    )
    content = content_of(Take(200, SSE, events))
    assert content.text == expected
    assert content.usage == {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16}


def test_embeddings_differ_when_vectors_differ():
    def embedding(vector):
        document = {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        }
        return Take(200, JSON, json.dumps(document).encode())

    first = content_of(embedding([0.1, 0.2])).text
    assert first.startswith("embedding 0: 2 values")
    assert first != content_of(embedding([0.1, 0.3])).text


def test_errors_and_plain_text():
    error = {
        "error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}
    }
    assert content_of(Take(400, JSON, json.dumps(error, indent=4).encode())).text == (
        "error: Invalid value for 'temperature'"
    )
    text = Take(200, (("content-type", "text/plain"),), b"just words\n")
    assert content_of(text).text == "just words\n"


def test_word_diff_marks_removed_and_added_words():
    diff = diff_takes(
        "k", ("0", chat("The red planet waited.")), ("1", chat("The blue planet waited."))
    )
    assert diff.segments == (
        ("equal", "The "),
        ("delete", "red"),
        ("insert", "blue"),
        ("equal", " planet waited."),
    )
    assert not diff.identical
    assert not diff.fingerprint_changed
    plain = diff.render()
    assert plain.endswith("The [-red-]{+blue+} planet waited.")
    coloured = diff.render(color=True)
    assert "\x1b[31mred\x1b[0m" in coloured
    assert "\x1b[32mblue\x1b[0m" in coloured
    assert "prompt_tokens 31" in plain.splitlines()[0]
    assert diff.as_dict()["segments"][1] == {"op": "delete", "text": "red"}


def test_default_pair_and_take_references():
    old, new, other = chat("a", fingerprint="fp_a"), chat("b", fingerprint="fp_b"), chat("c")
    entry = Entry("ab", {}, takes=[new, other], history=[chat("z"), old])
    diff = diff_entry(entry)
    assert (diff.a.label, diff.a.take) == ("h0", old)
    assert diff.fingerprint_changed
    assert diff_entry(entry, "h1", -1).a.content.text == "z"
    assert diff_entry(entry, "h1", -1).b.label == "1"
    assert diff_entry(Entry("cd", {}, takes=[old, new])).b.take is new
    with pytest.raises(NotFoundError, match="no take '7'; its takes are: 0, 1, h0, h1"):
        diff_entry(entry, "0", "7")
    with pytest.raises(SeedCacheError, match="nothing to compare"):
        diff_entry(Entry("ef", {}, takes=[old]))
    with pytest.raises(SeedCacheError, match="give two takes"):
        diff_entry(entry, 0)


def seeded(model, seed=123):
    return {"method": "POST", "url": "u", "body": {"model": model, "seed": seed}}


def test_determinism_counts_pairs_by_fingerprint():
    entries = [
        # same fingerprint, identical twice; then a new fingerprint with different text
        Entry("1", seeded("gpt-4o"), takes=[chat("x"), chat("x"), chat("y", fingerprint="fp_b")]),
        # same fingerprint, different text
        Entry("2", seeded("gpt-4o"), takes=[chat("p")], history=[chat("q")]),
        # no fingerprint on one side
        Entry(
            "3", seeded("gpt-5"), takes=[chat("m", fingerprint=None), chat("m", fingerprint=None)]
        ),
        # ignored: unseeded, a single take, an error take
        Entry("4", {"body": {"model": "gpt-4o"}}, takes=[chat("x"), chat("y")]),
        Entry("5", seeded("gpt-4o"), takes=[chat("x")]),
        Entry("6", seeded("gpt-4o"), takes=[chat("x"), Take(400, JSON, b"{}")]),
    ]
    summary = determinism(summarize(e) for e in entries)  # from summaries, bodies unread
    rows = {row.model: row.as_dict() for row in summary.rows}
    assert rows["gpt-4o"] == {
        "model": "gpt-4o",
        "keys": 2,
        "same_pairs": 2,
        "same_identical": 1,
        "different_pairs": 2,
        "different_identical": 0,
        "unknown_pairs": 0,
        "unknown_identical": 0,
    }
    assert rows["gpt-5"]["unknown_pairs"] == 1
    assert rows["gpt-5"]["unknown_identical"] == 1
    assert summary.total.keys == 3
    assert summary.as_dict()["total"]["same_pairs"] == 2
