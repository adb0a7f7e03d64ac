"""The store contract: every store passes the same cases, and a new store must too.

Each case gets ``open_store``, which opens another store object over the same location
(another process would do the same), so sharing is tested as users share: through the
location, never through one object.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

import pytest

from helpers import Opener as OpenStore
from helpers import entry, take
from seedcache import Entry, StoreError, Take
from seedcache._request._flights import LeaseKeeper
from seedcache._stores import Store
from seedcache._stores._summary import Totals, summarize

pytestmark = pytest.mark.stores("cassette", "indexed cassette", "disk", "memory", "redis")


def appending(new: Take) -> Callable[[Entry | None], Entry]:
    def change(current: Entry | None) -> Entry:
        if current is None:
            return entry("ab12", new)
        return dataclasses.replace(current, takes=(*current.takes, new))

    return change


# -- entries ---------------------------------------------------------------------------


def test_entries_round_trip_and_are_immutable(store: Store) -> None:
    assert store.get("ab12") is None
    stored = store.update("ab12", lambda _: entry())
    assert stored == entry() == store.get("ab12")
    got = store.get("ab12")
    assert got is not None
    with pytest.raises(AttributeError):
        got.takes.append(take())  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.key = "cd34"  # type: ignore[misc]
    assert store.update("ab12", lambda _: None) is None
    assert store.get("ab12") is None


def test_a_revision_changes_with_the_entry_and_only_then(store: Store) -> None:
    first = store.update("ab12", lambda _: entry())
    assert first is not None
    assert first.revision != 0
    read = store.get("ab12")
    assert read is not None
    assert read.revision == first.revision
    second = store.update("ab12", appending(take(b"2")))
    assert second is not None
    assert second.revision not in (0, first.revision)
    assert store.get("ab12").revision == second.revision  # type: ignore[union-attr]


def test_delete_keys_and_entries_agree(store: Store) -> None:
    for key in ("ab12", "cd34", "ef56"):
        store.update(key, lambda _, key=key: entry(key))
    assert store.delete("cd34") is True
    assert store.delete("cd34") is False
    assert sorted(store.keys()) == ["ab12", "ef56"]
    assert [e.key for e in store.entries()] == store.keys()
    assert sorted(s.key for s in store.summaries()) == ["ab12", "ef56"]


def test_concurrent_updates_from_many_stores_lose_nothing(open_store: OpenStore) -> None:
    """Eight store objects on one location, each adding takes to a shared key at once."""
    stores = [open_store() for _ in range(8)]
    errors: list[BaseException] = []

    def work(worker: int, store: Store) -> None:
        try:
            for n in range(15):
                store.update("ab12", appending(take(f"{worker}-{n}".encode(), at=n)))
                store.update(
                    f"{worker:02x}{n:02x}", lambda _, w=worker, n=n: entry(f"{w:02x}{n:02x}")
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    fresh = open_store()
    shared = fresh.get("ab12")
    assert shared is not None
    assert sorted(t.body for t in shared.takes) == sorted(
        f"{w}-{n}".encode() for w in range(8) for n in range(15)
    )
    assert len(fresh.keys()) == 8 * 15 + 1


def test_a_failed_write_changes_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.update("ab12", lambda _: entry())

    def failing(current: Entry | None) -> Entry:
        raise StoreError("cannot write: No space left on device")

    with pytest.raises(StoreError):
        store.update("ab12", failing)

    def half_a_batch() -> None:
        with store.batch():
            store.update("cd34", lambda _: entry("cd34"))
            store.update("ab12", appending(take(b"2")))
            raise StoreError("the batch failed half way")

    with pytest.raises(StoreError):
        half_a_batch()
    assert store.get("cd34") is None
    assert [t.body for t in store.get("ab12").takes] == [b'{"ok": true}']  # type: ignore[union-attr]


def test_iterating_while_another_store_writes(open_store: OpenStore) -> None:
    reader, writer = open_store(), open_store()
    for n in range(40):
        writer.update(f"{n:04x}", lambda _, n=n: entry(f"{n:04x}"))
    done = threading.Event()

    def write() -> None:
        n = 40
        while not done.is_set():
            writer.update(f"{n:04x}", lambda _, n=n: entry(f"{n:04x}"))
            writer.delete(f"{n - 40:04x}")
            n += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(5):
            seen = list(reader.entries())
            assert all(e.takes and e.key == summarize(e).key for e in seen)
            assert list(reader.summaries())
    finally:
        done.set()
        thread.join()


# -- listing -----------------------------------------------------------------------------


def test_totals_follow_every_change(store: Store) -> None:
    store.update("ab12", lambda _: entry("ab12", take(at=5, fingerprint="fp_a")))
    store.update("cd34", lambda _: entry("cd34", take(at=7), take(at=9, fingerprint="fp_b")))
    store.update("ab12", appending(take(b"longer body", at=11, fingerprint="fp_a")))
    store.delete("cd34")
    store.update("ef56", lambda _: entry("ef56"))
    expected = Totals.of(store.summaries())
    assert store.totals() == expected
    assert (expected.entries, expected.takes) == (2, 3)
    assert expected.by_fingerprint["m"] == {"fp_a": 2, "-": 1}


def test_newest_lists_the_most_recently_recorded_first(store: Store) -> None:
    for n, at in enumerate([30, 10, 50, 20, 40]):
        store.update(f"{n:04x}", lambda _, n=n, at=at: entry(f"{n:04x}", take(at=at)))
    assert [s.recorded_at_ms for s in store.newest(3)] == [50, 40, 30]
    assert len(store.newest(10)) == 5
    assert store.footprint() > 0


# -- meta ----------------------------------------------------------------------------------


def test_meta_updates_from_many_stores_add_up(open_store: OpenStore) -> None:
    stores = [open_store() for _ in range(4)]

    def bump(raw: bytes | None) -> bytes:
        return str(int(raw or b"0") + 1).encode()

    def work(store: Store) -> None:
        for _ in range(20):
            store.update_meta("counter", bump)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert open_store().get_meta("counter") == b"80"
    assert stores[0].update_meta("counter", lambda _: None) is None
    assert stores[0].get_meta("counter") is None


# -- leases --------------------------------------------------------------------------------


def test_one_lease_per_key_until_released(store: Store) -> None:
    lease = store.claim("ab12", 0, 30)
    assert lease is not None
    assert store.claim("ab12", 0, 30) is None
    assert store.claim("cd34", 0, 30) is not None  # leases are per key
    store.release(lease)
    again = store.claim("ab12", 0, 30)
    assert again is not None
    assert again != lease
    store.release(lease)  # a stale lease releases nothing
    assert store.claim("ab12", 0, 30) is None


def test_a_lease_is_refused_once_the_entry_changed(store: Store) -> None:
    assert store.claim("ab12", 12345, 30) is None  # not the revision of "absent"
    stored = store.update("ab12", lambda _: entry())
    assert stored is not None
    assert store.claim("ab12", 0, 30) is None  # decided before the entry existed
    assert store.claim("ab12", stored.revision, 30) is not None


def test_storing_the_entry_ends_the_lease(store: Store) -> None:
    lease = store.claim("ab12", 0, 30)
    assert lease is not None
    stored = store.update("ab12", lambda _: entry())
    assert stored is not None
    assert store.claim("ab12", stored.revision, 30) is not None
    assert store.renew(lease, 30) is False


def test_a_lease_expires_unless_renewed(store: Store) -> None:
    lease = store.claim("ab12", 0, 0.3)
    assert lease is not None
    assert store.renew(lease, 5) is True
    time.sleep(0.5)
    assert store.claim("ab12", 0, 30) is None  # renewed past the first expiry
    short = store.claim("cd34", 0, 0.05)
    assert short is not None
    time.sleep(0.2)
    taker = store.claim("cd34", 0, 30)
    assert taker is not None  # expired: another holder takes over
    assert store.renew(short, 30) is False


def test_leases_shared_across_store_objects_when_the_store_says_so(open_store: OpenStore) -> None:
    first, second = open_store(), open_store()
    lease = first.claim("ab12", 0, 30)
    assert lease is not None
    if open_store.shares_leases:
        assert second.claim("ab12", 0, 30) is None
        first.release(lease)
        assert second.claim("ab12", 0, 30) is not None
    else:
        assert second.claim("ab12", 0, 30) is not None


def test_wait_returns_when_the_entry_changes(open_store: OpenStore) -> None:
    holder = open_store()
    waiter = holder if not open_store.shares_leases else open_store()
    lease = holder.claim("ab12", 0, 30)
    assert lease is not None
    timer = threading.Timer(0.1, lambda: holder.update("ab12", lambda _: entry()))
    timer.start()
    started = time.monotonic()
    waiter.wait("ab12", 0, 20)
    waited = time.monotonic() - started
    timer.join()
    assert waited < 10  # woken by the change, not by the timeout
    assert waiter.get("ab12") == entry()


def test_wait_gives_up_at_its_timeout(store: Store) -> None:
    assert store.claim("ab12", 0, 30) is not None
    started = time.monotonic()
    store.wait("ab12", 0, 0.2)
    assert time.monotonic() - started >= 0.2


def test_a_held_lease_is_renewed_until_dropped(open_store: OpenStore) -> None:
    """A response streaming in longer than a lease lasts keeps its lease."""
    holder = open_store()
    other = open_store() if open_store.shares_leases else holder
    keeper = LeaseKeeper(0.3)
    lease = holder.claim("ab12", 0, keeper.seconds)
    assert lease is not None
    keeper.hold(holder, lease)
    time.sleep(0.9)  # three lease lengths
    assert other.claim("ab12", 0, 30) is None
    keeper.drop(lease)
    time.sleep(0.5)
    assert other.claim("ab12", 0, 30) is not None


def test_a_crashed_holders_lease_lapses_and_a_waiter_takes_over(open_store: OpenStore) -> None:
    holder = open_store()
    waiter = open_store() if open_store.shares_leases else holder
    assert holder.claim("ab12", 0, 0.3) is not None  # and the holder is never heard of again
    started = time.monotonic()
    waiter.wait("ab12", 0, 20)
    assert time.monotonic() - started < 10
    assert waiter.claim("ab12", 0, 30) is not None
