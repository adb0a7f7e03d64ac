"""RedisStore: entries on a Redis (or Valkey) server, shared by every machine that can reach it.

Data layout, for namespace ``ns`` (see ``docs/design.md``):

- ``ns:{KEY}``: a hash per entry: ``frame`` (the same data-only frame as the disk store),
  ``summary`` (its :class:`Summary`), ``rev`` (the revision: a hash of the frame);
- ``ns:{KEY}:lease``: the lease on the key, a token with the server's expiry (``PX``);
- ``ns:meta:NAME``: the named blobs (fingerprint registry, counters).

Everything about one entry lives in one hash slot (the ``{KEY}`` hash tag), so every
operation is a single-slot one and a Redis Cluster needs nothing else. Writes are
optimistic transactions (``WATCH`` / ``MULTI``): a reader sees the old entry or the new,
never half of one. Leases are set with ``SET NX PX`` and checked by small scripts on the
server, so no machine's clock decides anything; waiters are woken over pub/sub.

Nothing is pickled: values are bytes and JSON. Credentials in the location never appear
in :attr:`location`, messages or logs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import ConfigurationError, CorruptEntryError, StoreError
from .._takes._take import Entry
from ._base import (
    MAX_LEASE_SECONDS,
    BaseStore,
    Capabilities,
    Change,
    Lease,
    MetaChange,
    skip_damaged,
)
from ._codec import encode_entry, is_key
from ._frames import DecodedFrames, frame_revision
from ._location import redact, scrub_credentials, server_name
from ._summary import Summary, parse_many, summarize
from ._tracking import TrackedFrames

__all__ = ["RedisStore"]

_DEFAULT_NAMESPACE = "seedcache"
_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BATCH = 500  # keys per pipeline when listing
_DECODED_SIZE = 256
_WATCH_RETRIES = 100
# Bulk strings past this are refused by a stock server (proto-max-bulk-len, 512 MB).
_DEFAULT_MAX_BULK = 512 * 1024 * 1024

_log = logging.getLogger("seedcache")

# Lease scripts: each touches the entry's hash and its lease, one slot.
# A lease without expiry, or with more left than any lease runs, was never written by
# seedcache (every lease is SET with PX, and renewed): it is planted or broken, and
# waiting on it would wait forever or ten minutes. It is taken over.
_CLAIM = """
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
if rev ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[2])
if left == -1 or left > tonumber(ARGV[4]) then redis.call('DEL', KEYS[2]) end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
"""


def _revision(stored: Any) -> int:
    """A stored ``rev`` field as a number; -1 (matching no revision) when it is not one."""
    try:
        return int(stored or 0)
    except (TypeError, ValueError):
        return -1


def _key_in(name: bytes, start: int) -> str | None:
    """The entry key in a hash name; None for a name seedcache never writes (not UTF-8,
    not hex), which a stranger may have put in the namespace."""
    try:
        key = name.decode()[start:-1]
    except UnicodeDecodeError:
        return None
    return key if is_key(key) else None


class RedisStore(BaseStore):
    """Entries on a Redis server or cluster, named by a URL.

    ``redis://[user:password@]host:port/db``, ``rediss://`` for TLS, or
    ``unix:///path/to/socket?db=0``; ``?namespace=NAME`` keeps several projects apart on
    one server (default ``seedcache``). A cluster is detected: point at any node.
    Needs ``pip install 'seedcache[redis]'``.
    """

    def __init__(self, url: str) -> None:
        try:
            import redis
            from redis.cluster import RedisCluster
        except ImportError:
            raise ConfigurationError(
                f"{redact(url)} needs the Redis client: pip install 'seedcache[redis]'"
            ) from None
        self._redis = redis
        connect_url, namespace = _split_namespace(url)
        self._location = redact(url)
        self._ns = namespace
        self._where = server_name(url)
        self._frames = DecodedFrames(self._location)
        self._tokens: dict[str, str] = {}
        self._pending: list[tuple[str, Change]] | None = None
        with self._talking("connect to"):
            client: Any = redis.Redis.from_url(connect_url)
            info = client.info("cluster")
            if info.get("cluster_enabled"):
                client.close()
                client = RedisCluster.from_url(connect_url)
            self._client = client
            self._max_bulk = self._server_limit()
            self._warn_if_evicting()
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        # Started by the first read: listing and writing need none of it.
        self._tracked: TrackedFrames | None = None
        self._tracking_asked = False
        self._tracking_lock = threading.Lock()

    # -- what the store is -----------------------------------------------------------------

    @property
    def location(self) -> str:
        """The URL without credentials."""
        return self._location

    @property
    def kind(self) -> str:
        """A Redis server."""
        return "redis"

    @property
    def capabilities(self) -> Capabilities:
        """Leases hold across machines; totals kept; writable."""
        return Capabilities(running_totals=True)

    # -- entries ---------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, decoded once per distinct frame; read from the server only
        when it said the entry changed since it was last read (or cannot say)."""
        tracked = self._tracked if self._tracking_asked else self._start_tracking()
        if tracked is None:
            with self._talking("read from"):
                frame = self._client.hget(self._entry(key), "frame")
            return None if frame is None else self._decode(key, frame)
        kept, token = tracked.frame(key)
        if kept is not None:
            return self._decode(key, kept)
        with self._talking("read from"):
            read = self._client.pipeline(transaction=False)
            read.hget(self._entry(key), "frame")
            read.pttl(self._entry(key))
            frame, expiry = read.execute()
        if frame is None:
            return None
        entry = self._decode(key, frame)  # a frame that does not decode is never kept
        if expiry == -1:  # one given an expiry (by someone else) is read every time
            tracked.keep(key, frame, token)
        return entry

    def update(self, key: str, change: Change) -> Entry | None:
        """Apply ``change`` to the entry as stored now, in one optimistic transaction.

        Inside :meth:`batch` the change is applied when the batch ends (to the entry as
        it is then); the entry returned is the change applied to the entry as it is now.
        """
        if self._pending is not None:
            self._pending.append((key, change))
            current = self.get(key)
            return change(current)
        return self._apply(key, change)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it was there."""
        with self._talking("delete from"):
            removed = bool(self._client.delete(self._entry(key)))
        self._forget(key)
        if removed:
            self._wake(key)
        return removed

    def keys(self) -> list[str]:
        """Every key, sorted."""
        prefix = f"{self._ns}:{{"
        with self._talking("list"):
            names = self._client.scan_iter(match=f"{prefix}*}}", count=1000, _type="HASH")
            found = {key for name in names if (key := _key_in(name, len(prefix))) is not None}
        return sorted(found)

    def entries(self) -> Iterator[Entry]:
        """Every entry, in key order, read a few hundred at a time."""
        for keys, frames in self._fields(self.keys(), "frame"):
            for key, frame in zip(keys, frames, strict=True):
                entry = None if frame is None else skip_damaged(partial(self._decode, key, frame))
                if entry is not None:
                    yield entry

    def summaries(self) -> Iterator[Summary]:
        """Every entry's summary, in key order; a missing one is rebuilt from its entry."""
        for keys, raws in self._fields(self.keys(), "summary"):
            present = [(k, r) for k, r in zip(keys, raws, strict=True) if r is not None]
            parsed = parse_many([k for k, _ in present], [r for _, r in present])
            by_key = {s.key: s for s in parsed if s is not None}
            for key in keys:
                summary = by_key.get(key)
                if summary is None:
                    entry = skip_damaged(partial(self.get, key))
                    summary = None if entry is None else summarize(entry)
                if summary is not None:
                    yield summary

    def footprint(self) -> int:
        """Bytes of the stored frames and summaries."""
        total = 0
        for keys, frames in self._fields(self.keys(), "frame"):
            total += sum(len(f) for f in frames if f is not None)
            total += 64 * len(keys)  # summary and key names, roughly
        return total

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect changes and apply them at the end; a failure inside applies none.

        Entries on a server are not one file or one database: each change is still its
        own transaction when applied, to the entry as it is then.
        """
        if self._pending is not None:
            yield
            return
        self._pending = []
        try:
            yield
        except BaseException:
            self._pending = None
            raise
        pending, self._pending = self._pending, None
        for key, change in pending:
            self._apply(key, change)

    # -- named blobs -----------------------------------------------------------------------

    def get_meta(self, name: str) -> bytes | None:
        """A named blob."""
        with self._talking("read from"):
            value: bytes | None = self._client.get(self._meta(name))
        return value

    def update_meta(self, name: str, change: MetaChange) -> bytes | None:
        """Change a named blob in an optimistic transaction."""
        target = self._meta(name)

        def attempt(pipe: Any) -> bytes | None:
            updated = change(pipe.get(target))
            self._check_size(updated, name)
            pipe.multi()
            if updated is None:
                pipe.delete(target)
            else:
                pipe.set(target, updated)
            return updated

        stored: bytes | None = self._transaction(attempt, target)
        return stored

    # -- leases ----------------------------------------------------------------------------

    def claim(self, key: str, revision: int, seconds: float) -> Lease | None:
        """Lease ``key`` with the server's expiry if its entry is still at ``revision``."""
        if revision == 0:
            revision = self._revision_of_damaged(key)
        token = uuid.uuid4().hex
        keys = [self._entry(key), self._lease(key)]
        with self._talking("lease a key on"):
            granted = self._claim(
                keys=keys, args=[str(revision), token, _ms(seconds), _ms(MAX_LEASE_SECONDS)]
            )
        if not granted:
            self._forget(key)  # changed, or leased by another: read it afresh
            return None
        self._tokens[key] = token
        return Lease(key, token)

    def renew(self, lease: Lease, seconds: float) -> bool:
        """Extend ``lease`` on the server; False when it expired and was lost."""
        with self._talking("renew a lease on"):
            return bool(
                self._renew(keys=[self._lease(lease.key)], args=[lease.token, _ms(seconds)])
            )

    def release(self, lease: Lease) -> None:
        """Give ``lease`` up and wake the waiters."""
        self._tokens.pop(lease.key, None)
        with self._talking("release a lease on"):
            self._release(
                keys=[self._lease(lease.key)], args=[lease.token, self._channel(lease.key)]
            )

    def wait(self, key: str, revision: int, timeout: float) -> None:
        """Sleep until woken by a change or a release, or the lease's expiry, or ``timeout``."""
        self._forget(key)  # what the waiter reads next comes from the server
        deadline = time.monotonic() + timeout
        with self._talking("wait on"):
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self._channel(key))
                while True:
                    # Subscribed first, then looked: a change in between still wakes us.
                    current = self._client.hget(self._entry(key), "rev")
                    if _revision(current) != revision:
                        return
                    left_ms = self._client.pttl(self._lease(key))
                    left = deadline - time.monotonic()
                    if left_ms < 0 or left <= 0 or left_ms > _ms(MAX_LEASE_SECONDS):
                        return  # no lease (released, or expired with a crashed holder)
                    pubsub.get_message(timeout=min(left, left_ms / 1000 + 0.01, 1.0))
            finally:
                pubsub.close()

    def close(self) -> None:
        """Close the connections."""
        with self._tracking_lock:
            self._tracking_asked = True  # a read after closing asks the server
            if self._tracked is not None:
                self._tracked.close()
        with contextlib.suppress(Exception):
            self._client.close()

    # -- inside ----------------------------------------------------------------------------

    def _apply(self, key: str, change: Change) -> Entry | None:
        target, lease = self._entry(key), self._lease(key)

        def attempt(pipe: Any) -> Entry | None:
            frame = pipe.hget(target, "frame")
            current = None if frame is None else self._decode(key, frame)
            updated = change(current)
            token = self._tokens.get(key)
            holds = token is not None and pipe.get(lease) == token.encode()
            pipe.multi()
            if updated is None:
                pipe.delete(target)
                written = None
            else:
                written = encode_entry(updated)
                self._check_size(written, key)
                revision = frame_revision(written)
                summary = summarize(updated).to_bytes()
                pipe.delete(target)
                pipe.hset(target, mapping={"frame": written, "summary": summary, "rev": revision})
            if holds:
                pipe.delete(lease)  # storing ends this store's lease
            return (
                None
                if updated is None or written is None
                else updated.with_revision(frame_revision(written))
            )

        stored: Entry | None = self._transaction(attempt, target, lease)
        self._tokens.pop(key, None)
        self._forget(key)
        # After the transaction: a cluster refuses PUBLISH inside one. Waiters that miss
        # this (subscribed a moment late) see the new revision when they look.
        self._wake(key)
        return stored

    def _transaction(self, attempt: Callable[[Any], Any], *watched: str) -> Any:
        with self._talking("write to"):
            for _ in range(_WATCH_RETRIES):
                with self._client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(*watched)
                        result = attempt(pipe)
                        pipe.execute()
                        return result
                    except self._redis.WatchError:
                        continue  # another writer was first: read again and redo the change
            raise StoreError(
                f"{self._location}: the entry kept changing under {_WATCH_RETRIES} attempts"
            )

    def _fields(self, keys: list[str], field: str) -> Iterator[tuple[list[str], list[Any]]]:
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            with self._talking("read from"):
                pipe = self._client.pipeline(transaction=False)
                for key in chunk:
                    pipe.hget(self._entry(key), field)
                yield chunk, pipe.execute()

    def _start_tracking(self) -> TrackedFrames | None:
        with self._tracking_lock:
            if not self._tracking_asked:
                self._tracked = TrackedFrames.start(self._client, self._ns, self._location)
                self._tracking_asked = True
        return self._tracked

    def _forget(self, key: str) -> None:
        if self._tracked is not None:
            self._tracked.forget(key)

    def _decode(self, key: str, frame: bytes) -> Entry:
        return self._frames.entry(key, frame)

    def _revision_of_damaged(self, key: str) -> int:
        """0, unless the entry exists but does not decode: the core counts that as absent."""
        try:
            self.get(key)
        except CorruptEntryError:
            with self._talking("read from"):
                return _revision(self._client.hget(self._entry(key), "rev"))
        return 0

    def _wake(self, key: str) -> None:
        with self._talking("write to"):
            self._client.publish(self._channel(key), "changed")

    def _check_size(self, value: bytes | None, name: str) -> None:
        if value is not None and len(value) > self._max_bulk:
            raise StoreError(
                f"{name}: {len(value)} bytes is over what {self._location} accepts in one value "
                f"({self._max_bulk} bytes, proto-max-bulk-len)"
            )

    def _server_limit(self) -> int:
        try:
            found = self._client.config_get("proto-max-bulk-len")
        except self._redis.ResponseError:
            return _DEFAULT_MAX_BULK  # CONFIG is often disabled on managed servers
        values = list(found.values()) if isinstance(found, dict) else []
        try:
            return int(values[0])
        except (IndexError, TypeError, ValueError):
            return _DEFAULT_MAX_BULK

    def _warn_if_evicting(self) -> None:
        try:
            found = self._client.config_get("maxmemory-policy")
        except self._redis.ResponseError:
            return
        policies = {str(v) for v in found.values()} if isinstance(found, dict) else set()
        evicting = {p for p in policies if p.startswith("allkeys")}
        if evicting:
            _log.warning(
                "%s has maxmemory-policy %s: the server may evict recordings when its memory "
                "fills. Set maxmemory-policy noeviction (or volatile-lru) for a cache that "
                "must keep what it recorded",
                self._location,
                ", ".join(sorted(evicting)),
            )

    @contextlib.contextmanager
    def _talking(self, what: str) -> Iterator[None]:
        """Every Redis error as a :class:`StoreError` naming the server, never a password."""
        try:
            yield
        except self._redis.RedisError as exc:
            if isinstance(exc, self._redis.WatchError):
                raise
            reason = scrub_credentials(str(exc))
            raise StoreError(
                f"cannot {what} Redis at {self._where}: {type(exc).__name__}: {reason}"
            ) from None

    def _entry(self, key: str) -> str:
        return f"{self._ns}:{{{key}}}"

    def _lease(self, key: str) -> str:
        return f"{self._ns}:{{{key}}}:lease"

    def _channel(self, key: str) -> str:
        return f"{self._ns}:{{{key}}}:wake"

    def _meta(self, name: str) -> str:
        return f"{self._ns}:meta:{name}"


def _split_namespace(url: str) -> tuple[str, str]:
    """The URL for the client (without ``namespace``) and the namespace."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [value for name, value in query if name == "namespace"]
    namespace = names[-1] if names else _DEFAULT_NAMESPACE
    if not _NAMESPACE.fullmatch(namespace):
        raise ConfigurationError(
            f"namespace {namespace!r} in {redact(url)}: "
            "use 1 to 64 letters, digits, '.', '_' or '-'"
        )
    rest = urlencode([(name, value) for name, value in query if name != "namespace"])
    return urlunsplit(parts._replace(query=rest)), namespace


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
