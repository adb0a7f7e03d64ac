"""Trust, round two: what a planted row, a secret-looking value, a wrong clock, a full
store or a hostile entry could do, each test named after what it protects."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from conftest import MESSAGES, make_client
from seedcache import Action, SeedCache
from test_hostile import cli, point_row_at, recorded_disk_entry


def value_file_of(directory, key) -> str | None:
    with contextlib.closing(sqlite3.connect(directory / "cache.db")) as db:
        row = db.execute("SELECT filename FROM Cache WHERE key = ?", (f"entry:{key}",)).fetchone()
    return None if row is None else row[0]


def ask_story(cache, fake, seed=1):
    raw = cache.wrap(make_client(fake)).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=seed
    )
    return raw.parse().choices[0].message.content, raw.http_response.extensions["seedcache"]


# -- 1. value files are only diskcache's own -----------------------------------------------


@pytest.mark.parametrize("name", ["cache.db", "cache.db-wal", "cache.db-shm", "./cache.db"])
def test_a_planted_row_never_deletes_the_cache_database(fake, tmp_path, name):
    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    with SeedCache(directory, mode="auto") as cache:  # leaves a WAL and SHM beside it
        ask_story(cache, fake, seed=2)
        point_row_at(directory, key, name)
        text, outcome = ask_story(cache, fake)  # the broken entry is recorded again
    assert outcome.action is Action.RECORDED
    assert (directory / "cache.db").is_file()
    with SeedCache(directory, mode="replay") as cache:
        assert ask_story(cache, fake)[0] == text
        assert ask_story(cache, fake, seed=2)[1].action is Action.HIT


def test_verify_fix_never_deletes_the_cache_database(fake, tmp_path):
    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    point_row_at(directory, key, "cache.db")
    assert cli("--cache-dir", directory, "verify", "--fix").exit_code == 0
    assert (directory / "cache.db").is_file()
    assert cli("--cache-dir", directory, "verify").exit_code == 0


def long_embedding(cache, fake, word: str):
    """An answer large enough that diskcache keeps it in a value file of its own."""
    return cache.wrap(make_client(fake)).embeddings.create(
        model="text-embedding-3-large", input=[f"{word} {i}" for i in range(12)]
    )


def test_a_row_naming_another_entry_s_value_file_neither_reads_nor_deletes_it(fake, tmp_path):
    directory = tmp_path / "c"
    with SeedCache(directory, mode="auto") as cache:
        victim = long_embedding(cache, fake, "victim").data[0].embedding
        long_embedding(cache, fake, "planted")
        victim_key, planted_key = sorted(
            cache.store.keys(), key=lambda k: "victim" in str(cache.entry(k).request)
        )[::-1]
    victim_file = value_file_of(directory, victim_key)
    assert victim_file is not None
    assert victim_file.endswith(".val")
    point_row_at(directory, planted_key, victim_file)

    with SeedCache(directory, mode="auto") as cache:
        planted = long_embedding(cache, fake, "planted")  # not the victim's answer
        assert planted.data[0].embedding != victim
    assert cli("--cache-dir", directory, "verify", "--fix").exit_code == 0
    with SeedCache(directory, mode="replay") as cache:
        assert long_embedding(cache, fake, "victim").data[0].embedding == victim
