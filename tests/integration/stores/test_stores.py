"""Stores: one protocol over diskcache and cassette files; data only, written safely."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
from pathlib import Path

import diskcache
import pytest

from seedcache import (
    CassetteStore,
    CorruptEntryError,
    DiskStore,
    Entry,
    SeedCache,
    StoreError,
    Take,
    UnsafeDataError,
)

# The two local stores (the contract module covers every store); `store` is conftest's.
pytestmark = pytest.mark.stores("disk", "cassette")


def entry(key: str = "ab12", body: bytes = b'{"ok": true}') -> Entry:
    return Entry(
        key,
        {"method": "POST", "url": "https://x/v1/embeddings", "body": {}},
        [Take(200, (("content-type", "application/json"),), body, None, "m", 1, 2)],
    )


def test_update_get_delete_and_keys(store):
    assert store.get("ab12") is None
    store.update("ab12", lambda current: entry())
    store.update("cd34", lambda current: entry("cd34"))
    assert store.get("ab12") == entry()
    assert set(store.keys()) == {"ab12", "cd34"}
    assert [e.key for e in store.entries()] == store.keys()
    assert store.delete("ab12") is True
    assert store.delete("ab12") is False
    assert store.keys() == ["cd34"]


def test_update_sees_the_current_entry(store):
    store.update("ab12", lambda current: entry())

    def add_take(current):
        return dataclasses.replace(current, takes=(*current.takes, Take(201, (), b"second")))

    store.update("ab12", add_take)
    assert [t.status for t in store.get("ab12").takes] == [200, 201]


def test_meta_blobs_round_trip(store):
    assert store.get_meta("fingerprints") is None
    seen = []

    def change(current):
        seen.append(current)
        return b'{"gpt-4o": ["fp_1"]}'

    store.update_meta("fingerprints", change)
    assert json.loads(store.get_meta("fingerprints")) == {"gpt-4o": ["fp_1"]}
    store.update_meta("fingerprints", change)
    assert seen[0] is None
    assert json.loads(seen[1]) == {"gpt-4o": ["fp_1"]}
    store.update_meta("fingerprints", lambda current: None)
    assert store.get_meta("fingerprints") is None


def test_data_survives_reopening(store_kind, tmp_path):
    path = tmp_path / ("d" if store_kind == "disk" else "c.json")
    first = DiskStore(path) if store_kind == "disk" else CassetteStore(path)
    first.update("ab12", lambda _: entry())
    first.close()
    second = DiskStore(path) if store_kind == "disk" else CassetteStore(path)
    assert second.get("ab12") == entry()
    second.close()


def test_disk_directory_is_private(tmp_path):
    DiskStore(tmp_path / "private").close()
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o700


def test_disk_path_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(StoreError, match="is a file, not a directory"):
        DiskStore(target)


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_planted_pickle_value_is_refused_and_runs_nothing(tmp_path):
    """A cache directory from elsewhere must never be able to run code."""
    directory, marker = tmp_path / "cache", tmp_path / "pwned"
    DiskStore(directory).close()
    planted = diskcache.Cache(str(directory))  # the stock Disk pickles objects
    planted.set("entry:ab12", _Exploit(marker))
    planted.close()
    store = DiskStore(directory)
    with pytest.raises(UnsafeDataError, match="never unpickles"):
        store.get("ab12")
    store.close()
    assert not marker.exists()


class _Tripwire:
    """Unpickling this touches a file: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_planted_pickle_key_is_never_unpickled(tmp_path, caplog):
    directory = tmp_path / "cache"
    marker = tmp_path / "unpickled"
    DiskStore(directory).close()
    planted = diskcache.Cache(str(directory))
    planted.set(_Tripwire(marker), b"x")
    planted.set("entry:" + "ab" * 16, _Tripwire(marker))
    planted.close()
    store = DiskStore(directory)
    assert store.keys() == ["ab" * 16]
    with pytest.raises(UnsafeDataError, match="never unpickles"):
        store.get("ab" * 16)
    # Listing goes on past it, saying so (verify names it).
    with caplog.at_level(logging.WARNING, logger="seedcache"):
        assert list(store.summaries()) == []
    assert "never unpickles" in caplog.text
    assert store.foreign_rows() == 2
    store.close()
    assert not marker.exists()


def test_disk_store_refuses_to_pickle_on_write(tmp_path):
    store = DiskStore(tmp_path / "cache")
    with pytest.raises(TypeError, match="only bytes"):
        store._cache.set("entry:x", {"not": "bytes"})
    store.close()


def test_cassette_is_pretty_json_written_atomically(tmp_path):
    path = tmp_path / "sub" / "c.json"
    store = CassetteStore(path)
    store.update("ab12", lambda _: entry())
    text = path.read_text()
    assert text.startswith('{\n  "seedcache": 1,')
    assert json.loads(text)["entries"][0]["takes"][0]["body"]["json"] == {"ok": True}
    assert [p.name for p in path.parent.iterdir()] == ["c.json"]  # no temp file left behind


def test_cassette_write_failure_keeps_the_old_file_and_memory(tmp_path, monkeypatch):
    """A failed write (disk full) loses nothing already recorded."""
    path = tmp_path / "c.json"
    store = CassetteStore(path)
    store.update("ab12", lambda _: entry())
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StoreError, match="No space left"):
        store.update("cd34", lambda _: entry("cd34"))
    with pytest.raises(StoreError, match="No space left"):
        store.update("ab12", lambda _: None)
    with pytest.raises(StoreError, match="No space left"):
        store.update_meta("fingerprints", lambda _: b"{}")
    assert path.read_bytes() == before
    assert store.keys() == ["ab12"]
    assert store.get("ab12") == entry()
    assert store.get_meta("fingerprints") is None
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_cassette_meta_must_be_json(tmp_path):
    store = CassetteStore(tmp_path / "c.json")
    with pytest.raises(StoreError, match="not JSON"):
        store.update_meta("fingerprints", lambda _: b"\x00binary")
    assert store.get_meta("fingerprints") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"seedcache": 1, "entries": [\n  {"key": ', r"line 2 column 11"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "not a seedcache cassette"),
        (b'{"seedcache": 1, "entries": {}}', "'entries' must be a list"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not a seedcache"),
    ],
)
def test_damaged_cassette_names_the_file_and_position(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(CorruptEntryError, match=message) as raised:
        CassetteStore(path)
    assert str(path) in str(raised.value)
    assert path.read_bytes() == content


def test_damaged_cassette_is_not_overwritten_by_auto(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b"{broken")
    with pytest.raises(CorruptEntryError):
        SeedCache.cassette(path, mode="auto")
    assert path.read_bytes() == b"{broken"


def test_disk_store_on_unreadable_database_is_a_store_error(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        DiskStore(directory)
    assert isinstance(StoreError("x"), OSError)
    assert sqlite3  # the error wraps sqlite3.DatabaseError


def test_disk_reads_see_changes_made_by_another_store_and_stay_private(tmp_path):
    first, second = DiskStore(tmp_path / "d"), DiskStore(tmp_path / "d")
    first.update("ab12", lambda _: entry())
    assert [t.status for t in first.get("ab12").takes] == [200]
    given = first.get("ab12")
    with pytest.raises(AttributeError):
        given.takes.append(Take(500, (), b"mutated by a caller"))
    assert [t.status for t in first.get("ab12").takes] == [200]

    def add_take(current):
        more = (*current.takes, Take(201, (), b"from another process"))
        return dataclasses.replace(current, takes=more)

    second.update("ab12", add_take)
    assert [t.status for t in first.get("ab12").takes] == [200, 201]
    first.close()
    second.close()


def test_a_read_inside_a_batch_sees_the_batch_own_changes(store):
    """Reads made while a batch is open see what it changed, not yet committed."""
    store.update("ab12", lambda _: entry())
    with store.batch():
        store.update("cd34", lambda _: entry("cd34"))
        store.update("ab12", lambda _: None)
        assert store.get("cd34") == entry("cd34")
        assert store.get("ab12") is None
    assert store.get("cd34") == entry("cd34")


def test_a_directory_read_that_needs_no_waiting_is_answered_at_once(tmp_path):
    """What an async client's replay calls on its event loop: the row as it is now."""
    from seedcache._stores._base import NOT_IN_MEMORY

    first, second = DiskStore(tmp_path / "d"), DiskStore(tmp_path / "d")
    assert first.get_in_memory("ab12") is None
    first.update("ab12", lambda _: entry())
    assert second.get_in_memory("ab12") == entry()

    def add_take(current):
        return dataclasses.replace(current, takes=(*current.takes, Take(201, (), b"later")))

    second.update("ab12", add_take)
    assert [t.status for t in first.get_in_memory("ab12").takes] == [200, 201]
    big = entry("cd34", body=b'{"v": "' + os.urandom(60_000).hex().encode() + b'"}')
    first.update("cd34", lambda _: big)
    # A value kept in a file of its own is read in a worker thread, not on the loop.
    assert second.get_in_memory("cd34") is NOT_IN_MEMORY
    assert second.get("cd34") == big
    first.close()
    assert second.get_in_memory("ab12") is not NOT_IN_MEMORY
    second.close()


def test_a_change_made_in_place_is_rolled_back_with_a_failed_write(store, monkeypatch):
    """The change function cannot edit what it is given; a failed write leaves it as it was."""
    store.update("ab12", lambda _: entry())

    def add_take(current):
        with pytest.raises(AttributeError):
            current.takes.append(Take(201, (), b"edited in place"))
        return dataclasses.replace(current, takes=(*current.takes, Take(201, (), b"second")))

    def failing_write(*args, **kwargs):
        raise StoreError("cannot write: No space left on device")

    target = "_put" if isinstance(store, DiskStore) else "_write"
    monkeypatch.setattr(store, target, failing_write)
    with pytest.raises(StoreError):
        store.update("ab12", add_take)
    monkeypatch.undo()
    assert len(store.get("ab12").takes) == 1
    with pytest.raises(AttributeError):  # immutable: the store's entry cannot change
        store.get("ab12").takes.append(Take(202, (), b"x"))
    assert len(store.get("ab12").takes) == 1


_WRITER = """
import sys
from seedcache import CassetteStore, Entry, Take

path, worker = sys.argv[1], int(sys.argv[2])
store = CassetteStore(path)
for n in range(25):
    key = f"{worker:02x}{n:02x}"
    take = Take(200, (("content-type", "application/json"),), b"{}", None, "m", 1, 2)
    store.update(key, lambda current: Entry(key, {"method": "POST", "url": "u"}, [take]))
    shared = Take(200, (("content-type", "application/json"),), b"{}", None, "m", worker, 2)

    def add(current):
        current = current or Entry("ff", {"method": "POST", "url": "u"})
        return Entry("ff", current.request, (*current.takes, shared))

    store.update("ff", add)
"""


def test_processes_writing_one_cassette_lose_nothing(tmp_path):
    """Four processes, each adding 25 keys and 25 takes to one shared key, at once."""
    import subprocess
    import sys

    path = tmp_path / "shared.json"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(worker)])
        for worker in range(4)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0, 0]
    store = CassetteStore(path)
    assert len(store.keys()) == 4 * 25 + 1
    assert len(store.get("ff").takes) == 4 * 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.json"]
