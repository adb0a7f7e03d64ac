"""Take codecs: byte-exact round trips, readable cassettes, clear errors on damage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seedcache import CorruptEntryError, Entry, Take
from seedcache._stores._codec import (
    decode_entry,
    encode_entry,
    entry_from_document,
    entry_to_document,
)

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"message": {"content": "café"}}],
    "system_fingerprint": "fp_1",
    "temperature": 0.7,
}


def entry_with(body: bytes, content_type: str = "application/json") -> Entry:
    take = Take(200, (("content-type", content_type),), body, "fp_1", "gpt-4o", 1699290000123, 812)
    return Entry("0123abcd", {"method": "POST", "url": "https://x/v1/chat/completions"}, [take])


def document_round_trip(entry: Entry) -> tuple[dict, Entry]:
    text = json.dumps(entry_to_document(entry), indent=2, ensure_ascii=False)
    document = json.loads(text)
    return document, entry_from_document(document, where="test")


@pytest.mark.parametrize(
    ("body", "layout"),
    [
        (json.dumps(CHAT, indent=2, ensure_ascii=False) + "\n", "indent2+newline"),
        (json.dumps(CHAT, indent=4), "indent4+ascii"),
        (json.dumps(CHAT, separators=(",", ":"), ensure_ascii=False), "compact"),
        (json.dumps(CHAT), "spaced+ascii"),
    ],
)
def test_json_bodies_are_stored_as_objects_when_that_is_byte_exact(body, layout):
    """Real bodies are pretty (2 spaces + newline), errors 4 spaces, 2023 ones compact."""
    document, back = document_round_trip(entry_with(body.encode()))
    stored = document["takes"][0]["body"]
    assert stored["layout"] == layout
    assert stored["json"]["choices"][0]["message"]["content"] == "café"
    assert back.takes[0].body == body.encode()


def test_json_that_no_layout_reproduces_is_kept_as_exact_text():
    """Floats written differently than Python would, or odd spacing: keep the text."""
    body = b'{"embedding": [0.10000000, -1e-05],  "x": 1}\n'
    document, back = document_round_trip(entry_with(body))
    assert document["takes"][0]["body"] == {"text": body.decode()}
    assert back.takes[0].body == body


def test_sse_bodies_are_one_line_per_entry():
    body = b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'
    document, back = document_round_trip(entry_with(body, "text/event-stream; charset=utf-8"))
    assert document["takes"][0]["body"]["sse"][:2] == ['data: {"a":1}', ""]
    assert back.takes[0].body == body


def test_non_utf8_bodies_round_trip_as_base64():
    body = b"\xff\xfe binary \x00"
    document, back = document_round_trip(entry_with(body, "application/octet-stream"))
    assert "base64" in document["takes"][0]["body"]
    assert back.takes[0].body == body


def test_take_metadata_round_trips_in_both_forms():
    entry = entry_with(b'{"a": 1}')
    _, from_document = document_round_trip(entry)
    from_frame = decode_entry(encode_entry(entry), where="test")
    assert from_document == entry
    assert from_frame == entry


@given(
    body=st.binary(max_size=2048),
    content_type=st.sampled_from(
        ["application/json", "text/event-stream", "text/plain", "application/octet-stream"]
    ),
)
def test_any_bytes_round_trip_exactly(body, content_type):
    """Whatever the upstream sent, replay gives back the same bytes, from either form (a
    JSON answer is an object or a list: nothing else is recorded)."""
    if content_type == "application/json" and body and body.lstrip()[:1] not in b"{[":
        return
    entry = entry_with(body, content_type)
    assert decode_entry(encode_entry(entry), where="t").takes[0].body == body
    assert document_round_trip(entry)[1].takes[0].body == body


def test_large_bodies_are_compressed_on_disk():
    body = (json.dumps(CHAT, indent=2) * 40).encode()
    frame = encode_entry(entry_with(body))
    assert len(frame) < len(body) / 3


@pytest.mark.parametrize(
    "frame", [b"", b"SCE1", b"XXXX\x00\x00\x00\x02{}", b"SCE1\x00\x00\x00\x05{nope"]
)
def test_damaged_frames_raise_corrupt_entry(frame):
    with pytest.raises(CorruptEntryError):
        decode_entry(frame, where="disk entry")


def test_truncated_frame_names_the_take():
    frame = encode_entry(entry_with(b'{"a": 1}'))
    with pytest.raises(CorruptEntryError, match=r"takes\[0\].*truncated"):
        decode_entry(frame[:-3], where="disk entry")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(key="../../etc/passwd"), "not a seedcache key"),
        (lambda d: d.update(key="ab0 c1"), "not a seedcache key"),
        (lambda d: d.update(key="ABCDEF"), "not a seedcache key"),
        (lambda d: d.update(key="ab\u0661"), "not a seedcache key"),
        (lambda d: d["takes"][0].update(status="200"), r"takes\[0\]\.status: expected int"),
        (lambda d: d["takes"][0].update(body={"nope": 1}), "expected one of json"),
        (lambda d: d["takes"][0].update(recorded_at="yesterday"), "not an ISO 8601 time"),
    ],
)
def test_bad_documents_say_where_and_what(mutate, message):
    document = json.loads(json.dumps(entry_to_document(entry_with(b'{"a": 1}'))))
    mutate(document)
    with pytest.raises(CorruptEntryError, match=message):
        entry_from_document(document, where="cassette.json: entries[0]")


def _frame(key: str, text: str) -> bytes:
    take = Take(200, (("content-type", "application/json"),), json.dumps({"a": text}).encode())
    return encode_entry(Entry(key, {"method": "POST"}, (take,)))


def test_decoded_frames_keep_a_working_set_within_their_byte_budget():
    from seedcache._stores._frames import DecodedFrames

    frames = {f"{n:032x}": _frame(f"{n:032x}", "x" * 500) for n in range(1000)}
    body_bytes = len(json.dumps({"a": "x" * 500}))
    budget = 200 * (len(next(iter(frames.values()))) + body_bytes)  # room for 200 entries
    decoded = DecodedFrames("here", max_bytes=budget)
    first = {key: decoded.entry(key, frame) for key, frame in frames.items()}
    recent = list(frames)[-150:]
    # The latest frames come back as the very entries decoded; the oldest were let go.
    assert all(decoded.entry(key, frames[key]) is first[key] for key in recent)
    assert (
        decoded.entry(next(iter(frames)), frames[next(iter(frames))])
        is not first[next(iter(frames))]
    )
    assert decoded._held <= budget
    # A changed frame is decoded again, and its place in the budget is counted once.
    key = recent[-1]
    changed = _frame(key, "y" * 500)
    assert decoded.entry(key, changed).takes[0].body != first[key].takes[0].body
    assert decoded._held <= budget
    with pytest.raises(CorruptEntryError, match=r"here entry 0+1: holds the entry of another key"):
        decoded.entry(f"{1:032x}", frames[f"{2:032x}"])


def test_decoded_frames_count_what_an_entry_inflates_to():
    from seedcache._stores._frames import DecodedFrames

    body = b'{"a": "' + b"a" * 100_000 + b'"}'  # a frame of a few hundred bytes
    take = Take(200, (("content-type", "application/json"),), body)
    frames = {f"{n:032x}": encode_entry(Entry(f"{n:032x}", {}, (take,))) for n in range(10)}
    assert all(len(frame) < 2_000 for frame in frames.values())
    decoded = DecodedFrames("here", max_bytes=250_000)
    for key, frame in frames.items():
        decoded.entry(key, frame)
    assert decoded._held <= 250_000
    assert len(decoded._decoded) == 2


@pytest.mark.parametrize(
    ("text", "is_one"),
    [("0a9f", True), ("", False), ("0A9F", False), ("0a 9f", False), ("0a\u0661", False)],
)
def test_a_key_is_lower_case_hex_digits_for_cassettes_and_redis_names(text, is_one):
    from seedcache._stores._codec import is_key
    from seedcache._stores._redis import _key_in

    assert is_key(text) is is_one
    assert (_key_in(f"ns:{{{text}}}".encode(), len("ns:{")) == text) is is_one


_USAGES = [
    {"usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}},
    {"usage": {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4}}},
    {"response": {"usage": {"input_tokens": 5, "output_tokens": 7}}},
    {"usage": {"input_tokens": 3, "cache_read_input_tokens": 2, "output_tokens": 1}},
    {"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6}},
    {"usage": {"prompt_tokens": True, "completion_tokens": 10**12}},
    {"usage": "none"},
    {"id": "no usage at all"},
]


@given(
    document=st.sampled_from(_USAGES),
    status=st.sampled_from([200, 201, 400, 429, 500]),
    indent=st.sampled_from([None, 2]),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"]),
)
def test_a_decoded_take_reports_the_usage_its_bytes_hold(document, status, indent, content_type):
    """A cassette decode reads usage from the body it already parsed: the same usage a
    parse of the replayed bytes gives, for every kind of answer and status."""
    from seedcache._takes._usage import usage_of

    body = json.dumps({"id": "x", **document}, indent=indent).encode()
    take = Take(status, (("content-type", content_type),), body)
    entry = Entry("0123abcd", {"method": "POST", "url": "https://x/v1/chat"}, [take])
    decoded = document_round_trip(entry)[1].takes[0]
    fresh = Take(status, (("content-type", content_type),), decoded.body)
    assert decoded.body == body
    assert usage_of(decoded) == usage_of(fresh) == usage_of(take)
    assert usage_of(fresh) == usage_of(fresh)  # read once, then remembered
