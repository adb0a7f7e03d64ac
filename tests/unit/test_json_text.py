"""dumps_indented writes the text json.dumps writes, for every value, byte for byte."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seedcache._stores._json_text import dumps_indented

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities too: json.dumps writes them by default
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200)
@given(values, st.sampled_from([2, 4]), st.booleans())
def test_same_text_as_json_dumps(value: Any, indent: int, ensure_ascii: bool) -> None:
    expected = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)
    assert dumps_indented(value, indent, ensure_ascii=ensure_ascii) == expected


class Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {1: "a", None: [True]},  # keys json.dumps turns into strings
        [Text("a subclass")],
        OrderedDict(a=1),
        {"deep": [[[[[[[[[[[]]]]]]]]]]]},
        {"": {}, "é\u2028\ud800": [1.5e300, -0.0, 10**20]},
    ],
)
def test_values_it_does_not_walk_itself_still_give_the_same_text(value: Any) -> None:
    for ensure_ascii in (True, False):
        expected = json.dumps(value, indent=2, ensure_ascii=ensure_ascii)
        assert dumps_indented(value, 2, ensure_ascii=ensure_ascii) == expected


def test_a_value_json_cannot_write_raises_as_json_dumps_does() -> None:
    with pytest.raises(TypeError):
        dumps_indented({"a": object()}, 2, ensure_ascii=False)
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular"):
        dumps_indented(looped, 2, ensure_ascii=False)


def _outcome(write: Any) -> Any:
    try:
        return write()
    except (RecursionError, ValueError) as exc:
        return type(exc)


def _json_dumps(value: Any, indent: int, *, ensure_ascii: bool) -> str:
    # Called as dumps_indented is: at the recursion limit a frame more or less decides
    # whether json.dumps itself succeeds.
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


def _nested(depth: int) -> list[Any]:
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


def test_deep_nesting_fails_or_succeeds_exactly_where_json_dumps_does() -> None:
    # The depth where json.dumps starts to fail here (it writes deeply nested values in
    # time growing with the square of the depth: found by bisection, then checked around).
    low, high = 1, sys.getrecursionlimit()
    while low < high:
        middle = (low + high) // 2
        if _outcome(partial(_json_dumps, _nested(middle), 2, ensure_ascii=True)) is RecursionError:
            high = middle
        else:
            low = middle + 1
    # From Python 3.13 the C encoder indents, and may reach past the recursion limit.
    assert 100 < low <= sys.getrecursionlimit()
    for depth in range(low - 3, low + 3):
        value = _nested(depth)
        expected = _outcome(partial(_json_dumps, value, 2, ensure_ascii=True))
        written = _outcome(partial(dumps_indented, value, 2, ensure_ascii=True))
        assert written == expected, depth


def test_writing_leaves_nothing_for_the_garbage_collector() -> None:
    """A closure calling itself is a reference cycle per call: every cassette read would
    leave one for a collection to find."""
    import gc

    value = {"choices": [{"message": {"content": "é", "tools": [1, 2.5, None]}}], "n": {}}
    gc.collect()
    gc.disable()
    try:
        dumps_indented(value, 2, ensure_ascii=False)
        assert gc.collect() == 0
    finally:
        gc.enable()
