"""A Redis store keeps the frames it read until the server says they changed (client-side
caching, broadcast mode): a repeated hit costs no round trip, and every change by anyone
(another store, a stranger's client, FLUSHDB) is seen on the next read. When the server
will not track, or the tracking connection is lost, every read goes to the server."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from helpers import entry, take
from redis_servers import ForgettingRelay, RedisServer
from seedcache import CorruptEntryError, Entry, StoreError
from seedcache._stores import _tracking
from seedcache._stores._codec import encode_entry
from seedcache._stores._redis import RedisStore


def hget_calls(server_url: str) -> int:
    raw = redis.Redis.from_url(server_url)
    stats = raw.info("commandstats").get("cmdstat_hget", {"calls": 0})
    raw.close()
    return int(stats["calls"])


def two_takes(current: Entry | None) -> Entry:
    return entry("ab12", take(b"1"), take(b"2"))


@contextlib.contextmanager
def mine_and_theirs(location: str, server_url: str) -> Iterator[tuple[RedisStore, ...]]:
    """Two stores on ``location`` and a stranger's client; "ab12" recorded and read by mine."""
    mine, theirs = RedisStore(location), RedisStore(location)
    raw = redis.Redis.from_url(server_url)
    mine.update("ab12", lambda _: entry())
    assert mine.get("ab12") == entry()
    try:
        yield mine, theirs, raw
    finally:
        for closing in (mine, theirs, raw):
            closing.close()


def assert_every_read_asks_the_server(mine: RedisStore, theirs: RedisStore, url: str) -> None:
    changed = theirs.update("ab12", two_takes)
    assert mine.get("ab12") == changed
    before = hget_calls(url)
    assert mine.get("ab12") == changed
    assert hget_calls(url) == before + 1


@pytest.fixture
def server(tmp_path) -> RedisServer:
    started = RedisServer(tmp_path / "redis")
    yield started
    started.stop()


def test_a_repeated_read_asks_the_server_once(server):
    store = RedisStore(server.url)
    store.update("ab12", lambda _: entry())
    assert store.get("ab12") == entry()
    before = hget_calls(server.url)
    for _ in range(50):
        assert store.get("ab12") == entry()
    assert hget_calls(server.url) == before
    store.close()


def test_every_change_by_anyone_is_seen_on_the_next_read(server):
    with mine_and_theirs(server.url, server.url) as (mine, theirs, raw):
        changed = theirs.update("ab12", two_takes)
        assert mine.get("ab12") == changed
        assert theirs.delete("ab12") is True
        assert mine.get("ab12") is None

        mine.update("ab12", lambda _: entry())
        assert mine.get("ab12") == entry()
        raw.hset("seedcache:{ab12}", "frame", b"planted")  # a stranger's client
        with pytest.raises(CorruptEntryError):
            mine.get("ab12")

        raw.delete("seedcache:{ab12}")
        mine.update("ab12", lambda _: entry())
        assert mine.get("ab12") == entry()
        raw.flushdb()
        assert mine.get("ab12") is None


def test_a_lost_tracking_connection_sends_every_read_to_the_server(server):
    with mine_and_theirs(server.url, server.url) as (mine, theirs, raw):
        assert raw.client_kill_filter(_type="pubsub") >= 1  # the tracking connections
        assert_every_read_asks_the_server(mine, theirs, server.url)


def test_a_server_that_refuses_tracking_is_read_every_time(server):
    raw = redis.Redis.from_url(server.url)
    raw.acl_setuser(
        "plain",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-client"],
    )
    raw.close()
    location = f"redis://plain:pw@127.0.0.1:{server.port}/0"
    with mine_and_theirs(location, server.url) as (mine, theirs, _):
        assert_every_read_asks_the_server(mine, theirs, server.url)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_never_reads_its_parents_tracking_connection(server):
    mine, theirs = RedisStore(server.url), RedisStore(server.url)
    mine.update("ab12", lambda _: entry())
    assert mine.get("ab12") == entry()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: wait for the change, read, report what it saw
        os.close(write)
        os.read(read, 1)
        seen = mine.get("ab12")
        os._exit(0 if seen is not None and len(seen.takes) == 2 else 1)
    os.close(read)
    changed = theirs.update("ab12", two_takes)
    os.write(write, b"x")
    os.close(write)
    assert os.waitpid(child, 0)[1] == 0  # the child saw the change, from the server
    assert mine.get("ab12") == changed  # and the parent still hears of it
    mine.close()
    theirs.close()


def test_tracking_starts_with_the_first_read(server):
    raw = redis.Redis.from_url(server.url)
    store = RedisStore(server.url)
    store.update("ab12", lambda _: entry())
    assert store.keys() == ["ab12"]  # listing and writing need no tracking connection
    assert [c for c in raw.client_list() if "P" in c["flags"]] == []
    store.get("ab12")
    assert len([c for c in raw.client_list() if "P" in c["flags"]]) == 1
    store.close()
    raw.close()


def test_a_change_behind_a_backlog_of_messages_is_still_seen(server):
    # Others wrote a great deal while this store sat idle: the server holds messages for it
    # that its socket has no room for, and one about ab12 waits behind them. The change
    # is acknowledged, then the server is busy for a moment; the read must still see it.
    with mine_and_theirs(server.url, server.url) as (mine, _, raw):
        noise = raw.pipeline(transaction=False)
        for n in range(60_000):
            noise.hset(f"seedcache:{{n{n}}}", "frame", b"x")
        noise.execute()
        changed = entry("ab12", take(b"changed"))
        raw.hset("seedcache:{ab12}", "frame", encode_entry(changed))
        busy = threading.Thread(
            target=lambda: redis.Redis.from_url(server.url).execute_command("DEBUG", "SLEEP", 1)
        )
        busy.start()
        time.sleep(0.05)
        seen = mine.get("ab12")
        assert seen is not None
        assert seen.takes == changed.takes
        busy.join()


def tracking_ids(raw: redis.Redis) -> list[int]:
    return [int(c["id"]) for c in raw.client_list() if "P" in c["flags"]]


def test_a_store_idle_through_a_great_many_changes_starts_tracking_afresh(server):
    with mine_and_theirs(server.url, server.url) as (mine, _, raw):
        before = tracking_ids(raw)
        for n in range(1_200):  # one message each, more than are worth reading
            raw.hset(f"seedcache:{{n{n}}}", "frame", b"x")
        changed = entry("ab12", take(b"changed"))
        raw.hset("seedcache:{ab12}", "frame", encode_entry(changed))
        seen = mine.get("ab12")
        assert seen is not None
        assert seen.takes == changed.takes
        after = tracking_ids(raw)
        assert len(after) == 1
        assert after != before  # the backlog went with the old connection
        reads = hget_calls(server.url)
        assert mine.get("ab12") == seen
        assert hget_calls(server.url) == reads  # kept again


def test_an_entry_given_an_expiry_is_read_every_time(server):
    # The server says an expiring key changed only when it removes it, which may be long
    # after it expired: such an entry is never kept.
    with mine_and_theirs(server.url, server.url) as (mine, _, raw):
        raw.pexpire("seedcache:{ab12}", 60_000)
        for _ in range(3):
            reads = hget_calls(server.url)
            assert mine.get("ab12") == entry()
            assert hget_calls(server.url) == reads + 1


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_fork_while_another_thread_reads_leaves_the_child_able_to_read(server):
    store = RedisStore(server.url)
    store.update("ab12", lambda _: entry())
    store.get("ab12")
    reading = threading.Event()
    reading.set()

    def read_on() -> None:
        while reading.is_set():
            store.get("ab12")

    reader = threading.Thread(target=read_on)
    reader.start()
    try:
        for _ in range(10):
            child = os.fork()
            if child == 0:
                signal.alarm(10)  # a child stuck on a lock the fork copied held dies of it
                os._exit(0 if store.get("ab12") == entry() else 1)
            assert os.waitpid(child, 0)[1] == 0
    finally:
        reading.clear()
        reader.join()
        store.close()


def test_a_connection_forgotten_on_the_way_is_noticed(server):
    relay = ForgettingRelay(server.port)
    mine = RedisStore(f"redis://127.0.0.1:{relay.port}/0")
    theirs = RedisStore(server.url)
    try:
        theirs.update("ab12", lambda _: entry())
        assert mine.get("ab12") == entry()
        relay.forget()  # as a load balancer does with idle connections
        time.sleep(0.2)  # the relay notices within 50 ms; nothing after reaches this store
        changed = theirs.update("ab12", two_takes)
        time.sleep(1.2)  # a reading store makes sure it is still heard about once a second
        for _ in range(2):  # the first read may find the pool's connection gone as well
            with contextlib.suppress(StoreError):
                mine.get("ab12")
        assert mine.get("ab12") == changed
    finally:
        for closing in (mine, theirs, relay):
            closing.close()


def test_tracking_comes_back_a_while_after_its_connection_was_lost(server, monkeypatch):
    monkeypatch.setattr(_tracking, "_RETRY_SECONDS", 0.2)
    with mine_and_theirs(server.url, server.url) as (mine, theirs, raw):
        assert raw.client_kill_filter(_type="pubsub") >= 1
        assert_every_read_asks_the_server(mine, theirs, server.url)
        time.sleep(0.3)
        mine.get("ab12")  # tracks again, on a new connection
        reads = hget_calls(server.url)
        assert mine.get("ab12") is not None
        assert hget_calls(server.url) == reads  # kept again
        changed = theirs.update("ab12", lambda _: entry("ab12", take(b"3")))
        assert mine.get("ab12") == changed  # and heard about
        mine.close()
        time.sleep(0.3)
        assert tracking_ids(raw) == []  # closed for good
        assert mine.get("ab12") == changed
        assert tracking_ids(raw) == []
