"""Request keys: same call, same key; any change, another key."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seedcache import ConfigurationError
from seedcache._request._keys import KeyConfig, canonicalize, shared_key_config
from seedcache._request._wire import CapturedRequest

URL = "https://api.openai.com/v1/chat/completions"
BODY = {
    "messages": [{"role": "user", "content": "Hi"}],
    "model": "gpt-4o-mini",
    "seed": 123,
    "temperature": 0.7,
}


def request(body: object = BODY, *, url: str = URL, headers: tuple = (), raw: bytes | None = None):
    content = raw if raw is not None else json.dumps(body, separators=(",", ":")).encode()
    return CapturedRequest("POST", url, (("content-type", "application/json"), *headers), content)


def key(req: CapturedRequest, **config: object) -> str:
    return canonicalize(req, KeyConfig(**config)).key  # type: ignore[arg-type]


def test_key_ignores_top_level_and_nested_key_order():
    """openai 2.x and 3.x order top-level keys differently; the key must not care."""
    v3 = json.dumps(BODY, separators=(",", ":"))
    v2 = json.dumps(dict(reversed(BODY.items())), separators=(",", ":"))
    assert v2 != v3
    assert key(request(raw=v2.encode())) == key(request(raw=v3.encode()))


def test_key_ignores_whitespace_and_ascii_escaping():
    """Pretty or compact, escaped or not: the same JSON value."""
    body = {**BODY, "messages": [{"role": "user", "content": "café"}]}
    compact = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    spaced = json.dumps(body, indent=2, ensure_ascii=True).encode()
    assert key(request(raw=compact)) == key(request(raw=spaced))


def test_stream_false_equals_absent_but_null_differs_from_absent():
    """`.parse()` adds "stream": false; temperature=None is sent as null and means something."""
    assert key(request({**BODY, "stream": False})) == key(request(BODY))
    assert key(request({**BODY, "stream": True})) != key(request(BODY))
    without = {k: v for k, v in BODY.items() if k != "temperature"}
    assert key(request({**without, "temperature": None})) != key(request(without))


def test_integral_floats_equal_ints():
    """1.0 and 1 are the same number to the API."""
    assert key(request({**BODY, "temperature": 1.0})) == key(request({**BODY, "temperature": 1}))


def test_seed_is_in_the_key():
    assert key(request({**BODY, "seed": 124})) != key(request(BODY))


def test_query_is_sorted_and_secret_query_params_ignored():
    """extra_query lands in the URL; Azure's api-key parameter never counts."""
    a = key(request(url=URL + "?b=2&a=1&api-key=secret1"))
    b = key(request(url=URL + "?a=1&b=2&api-key=secret2"))
    assert a == b
    assert key(request(url=URL + "?a=1&b=3")) != a


def test_host_counts_unless_match_host_is_off():
    other = "http://127.0.0.1:9999/v1/chat/completions"
    assert key(request(url=other)) != key(request())
    assert key(request(url=other), match_host=False) == key(request(), match_host=False)


def test_only_allow_listed_headers_count():
    """user-agent and x-stainless-* change between runs without changing the call."""
    noisy = (
        ("user-agent", "OpenAI/Python 3.54.0"),
        ("x-stainless-retry-count", "1"),
        ("authorization", "Bearer sk-1"),
    )
    assert key(request(headers=noisy)) == key(request())
    assert key(request(headers=(("openai-beta", "assistants=v2"),))) != key(request())


def test_secret_headers_cannot_be_matched():
    with pytest.raises(ConfigurationError, match="authorization"):
        KeyConfig(match_headers=("Authorization",))


def test_namespace_separates_keys():
    assert key(request(), namespace="a") != key(request(), namespace="b")


def test_multipart_bodies_are_keyed_on_parts_not_boundary():
    """Identical uploads differ in bytes because of the random boundary."""

    def upload(boundary: str, audio: bytes) -> CapturedRequest:
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                f"Content-Type: audio/wav\r\n\r\n"
            ).encode()
            + audio
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return CapturedRequest(
            "POST",
            "https://api.openai.com/v1/audio/transcriptions",
            (("content-type", f"multipart/form-data; boundary={boundary}"),),
            body,
        )

    assert key(upload("abc123", b"RIFF1")) == key(upload("zzz999", b"RIFF1"))
    assert key(upload("abc123", b"RIFF1")) != key(upload("abc123", b"RIFF2"))
    summary = canonicalize(upload("abc123", b"RIFF1")).summary
    assert summary["body"]["multipart"][1]["filename"] == "a.wav"


def test_non_json_bodies_are_keyed_on_their_bytes():
    assert key(request(raw=b"not json")) == key(request(raw=b"not json"))
    assert key(request(raw=b"not json")) != key(request(raw=b"not json!"))


def test_summary_is_readable_and_secret_free():
    req = request(url=URL + "?api-key=AZURE-SECRET", headers=(("authorization", "Bearer sk-x"),))
    canonical = canonicalize(req)
    text = json.dumps(canonical.summary)
    assert "AZURE-SECRET" not in text
    assert "sk-x" not in text
    assert canonical.endpoint == "POST /v1/chat/completions"
    assert canonical.model == "gpt-4o-mini"


def test_a_request_keyed_again_has_the_same_key_and_summary():
    """The second time, the key comes from the config's memory; the summary is the same."""
    config = KeyConfig(match_headers=("openai-beta",), ignore=("user",))
    body = {**BODY, "user": "alice", "metadata": {"api_key": "sk-" + "x" * 30}}
    req = request(body, url=URL + "?api-key=AZURE", headers=(("openai-beta", "v2"),))
    first = canonicalize(req, config)
    again = canonicalize(req, config)
    assert again.key == first.key
    assert again.summary == first.summary
    assert "sk-xxx" not in json.dumps(again.summary)
    assert again.summary["ignored"] == ["user"]
    assert canonicalize(request(body), config).key != first.key  # no header: another call


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), json_value, min_size=1, max_size=6))
def test_equivalent_json_gives_the_same_key(body):
    """Any key order and any spacing: one key."""
    shuffled = dict(reversed(list(body.items())))
    a = json.dumps(body, separators=(",", ":")).encode()
    b = json.dumps(shuffled, indent=3, ensure_ascii=True).encode()
    assert key(request(raw=a)) == key(request(raw=b))


@given(
    field=st.sampled_from(["seed", "temperature", "content", "tools", "max_tokens", "model"]),
    value=json_value,
)
def test_any_parameter_change_changes_the_key(field, value):
    """Change one parameter (seed, temperature, a message character, tools…): another key."""
    base = {**BODY, "max_tokens": 200, "tools": [{"type": "function", "function": {"name": "f"}}]}
    changed = json.loads(json.dumps(base))
    if field == "content":
        changed["messages"][0]["content"] = "Hi" + (str(value) if value not in (None, "") else "!")
    else:
        changed[field] = value
    normalised_same = json.dumps(changed, sort_keys=True) == json.dumps(base, sort_keys=True)
    if isinstance(value, float) and value.is_integer() and base.get(field) == int(value):
        normalised_same = True
    if not normalised_same:
        assert key(request(changed)) != key(request(base))


def test_ignored_fields_leave_the_key_but_stay_in_the_summary():
    with_user = {**BODY, "user": "alice", "metadata": {"session": "s1", "team": "a"}}
    other_user = {**BODY, "user": "bob", "metadata": {"session": "s2", "team": "a"}}
    assert key(request(with_user)) != key(request(other_user))
    ignore = ("user", "metadata.session")
    assert key(request(with_user), ignore=ignore) == key(request(other_user), ignore=ignore)
    assert key(request(with_user), ignore=ignore) == key(
        request({**BODY, "metadata": {"team": "a"}}), ignore=ignore
    )
    other_team = {**other_user, "metadata": {"session": "s2", "team": "b"}}
    assert key(request(with_user), ignore=ignore) != key(request(other_team), ignore=ignore)
    summary = canonicalize(request(with_user), KeyConfig(ignore=ignore)).summary
    assert summary["body"]["user"] == "alice"  # the request as sent
    assert summary["ignored"] == ["user", "metadata.session"]


def test_ignore_reaches_every_list_item_with_a_star():
    def named(name: str) -> dict:
        return {**BODY, "messages": [{"role": "user", "content": "Hi", "name": name}]}

    assert key(request(named("a")), ignore=["messages.*.name"]) == key(
        request(named("b")), ignore=["messages.*.name"]
    )
    assert key(request(named("a")), ignore=["messages.0.name"]) == key(
        request(named("b")), ignore=["messages.0.name"]
    )
    assert key(request(named("a")), ignore=["messages.1.name"]) != key(
        request(named("b")), ignore=["messages.1.name"]
    )


def test_ignore_of_an_absent_field_keeps_the_key_and_bad_paths_are_refused():
    assert key(request(), ignore=["user", "metadata.x"]) == key(request())
    with pytest.raises(ConfigurationError, match="list of field paths"):
        KeyConfig(ignore="user")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not a field path"):
        KeyConfig(ignore=("metadata..x",))


def shared_options(**changes: object) -> dict[str, object]:
    options: dict[str, object] = {
        "match_host": True,
        "match_headers": (),
        "namespace": None,
        "ignore": (),
        "secret_params": (),
    }
    options.update(changes)
    return options


def test_caches_with_equal_options_share_a_config_and_unequal_ones_never_do():
    first = shared_key_config(**shared_options(ignore=["user"]))  # type: ignore[arg-type]
    assert shared_key_config(**shared_options(ignore=("user",))) is first  # type: ignore[arg-type]
    assert shared_key_config(**shared_options(ignore=["metadata"])) is not first  # type: ignore[arg-type]


def test_namespaces_that_compare_equal_but_key_differently_share_no_config():
    """1 == True and they hash alike; "ns": 1 and "ns": true are different keys."""
    shared_key_config(**shared_options(namespace=1))  # type: ignore[arg-type]
    second = shared_key_config(**shared_options(namespace=True))  # type: ignore[arg-type]
    assert canonicalize(request(), second).key == key(request(), namespace=True)


def test_options_that_cannot_be_shared_are_used_as_given():
    """An unhashable option: the config is built from the options, generators included."""
    config = shared_key_config(
        **shared_options(namespace=["n"], ignore=(p for p in ["user"]))  # type: ignore[arg-type]
    )
    assert config.ignore == ("user",)
