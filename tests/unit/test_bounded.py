"""Reading whole files against a limit, when the size measured first is no longer true."""

from __future__ import annotations

import io

import pytest

from seedcache._stores._bounded import read_bounded


@pytest.mark.parametrize("size", [0, 5, 10])
def test_a_file_of_the_measured_size_is_read_whole(size: int) -> None:
    data = bytes(range(size))
    assert read_bounded(io.BytesIO(data), size, limit=100) == data


def test_a_file_that_grew_after_it_was_measured_is_read_to_its_end() -> None:
    data = b"x" * 50
    assert read_bounded(io.BytesIO(data), 10, limit=100) == data


def test_a_file_that_shrank_is_read_as_it_is_now() -> None:
    assert read_bounded(io.BytesIO(b"abc"), 10, limit=100) == b"abc"


@pytest.mark.parametrize("measured", [10, 101, 500])
def test_a_file_over_the_limit_reads_as_one_byte_past_it(measured: int) -> None:
    data = b"y" * 500
    assert len(read_bounded(io.BytesIO(data), measured, limit=100)) == 101
