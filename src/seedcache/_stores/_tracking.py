"""Frames a Redis server has promised to say are stale: client-side caching, broadcast mode.

A hit on Redis is a round trip (~0.15 ms on loopback, more across a network) for bytes
that almost never change. Since Redis 6 a server can tell a client when keys change
(``CLIENT TRACKING``). One extra connection per store asks to hear of every change under
the namespace (``BCAST PREFIX ns:{``) and subscribes to the invalidation channel; a frame
read from the server is kept until a message names its key, and before each read the
messages already arrived are taken in (a poll that does not wait, about a microsecond).

Broadcast mode rather than the default one: in the default mode the server remembers what
each connection read, so every pooled connection would have to redirect its messages to
ours; broadcast needs nothing of them, at the price of one message per change under the
namespace, which a cache that is mostly read can afford.

The server queues its message while it runs the change and sends it in the same pass as
its answer to the writer, so a change acknowledged to anyone is seen by the next read here
once the message has crossed the network (on one machine, at once). When messages have
come since the last read, more may still wait at the server (the socket holds only so
much): the read then asks the server, on the same connection, to answer once everything
queued before is sent, and takes all of it in; it asks the same at least once a second
of reading, since a connection that only listens never notices a load balancer or a NAT
forgetting it. Past a thousand changed keys in one go, the connection and its backlog
are dropped and tracking starts afresh. A key given an expiry is never kept: the server
says it changed when it removes it, which may be long after it expired. Anything wrong
with the connection (the server drops it, no answer within 10 s or the URL's
``socket_timeout``, a message of a shape never sent) ends the keeping: what was kept is
forgotten and every read goes to the server, as it would without tracking, until a read
30 s later tries a new connection; a forked child never uses its parent's. A server
that refuses tracking (older than 6, an ACL without ``CLIENT``, a proxy in front) never
starts it. A cluster is not tracked: each node would need its own connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

__all__ = ["TrackedFrames"]

_CHANNEL = "__redis__:invalidate"
_MARK = "seedcache-caught-up"
_PONG = [b"pong", _MARK.encode()]
# Changed keys read in one go past which the backlog is dropped rather than read.
_MOST_TAKEN_IN = 1000
# How often a reading store makes sure its connection is still heard (one round trip).
_CONFIRM_EVERY_SECONDS = 1.0
# How long the server may take to answer that (a busy server answers late; a gone one never),
# unless the URL's socket_timeout is shorter.
_ANSWER_SECONDS = 10.0
# After tracking stopped on a failure, how long before a read tries a new connection.
_RETRY_SECONDS = 30.0

_log = logging.getLogger("seedcache")


class TrackedFrames:
    """The frames read from the server that it has not since said changed, by key.

    Bounded by bytes, oldest out first; a frame over ``max_frame`` is never kept.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        prefix: str,
        location: str,
        *,
        answer_seconds: float = _ANSWER_SECONDS,
        max_bytes: int = 64 * 1024 * 1024,
        max_frame: int = 4 * 1024 * 1024,
    ) -> None:
        self._connect = connect
        self._connection = connect()
        self._start = len(prefix.encode())
        self._location = location
        self._max_bytes = max_bytes
        self._max_frame = max_frame
        self._frames: dict[str, bytes] = {}
        self._held = 0
        # Messages taken in so far: a frame read while one arrived may predate it.
        self._changes = 0
        self._live = True
        self._retry_at: float | None = None  # when to track again after a failure
        self._answer_seconds = answer_seconds
        self._confirmed = time.monotonic()  # when the server last said all was sent
        self._pid = os.getpid()
        self._lock = threading.Lock()

    @classmethod
    def start(cls, client: Any, namespace: str, location: str) -> TrackedFrames | None:
        """Track ``namespace`` on ``client``'s server; None when the server will not."""
        import redis

        if not isinstance(client, redis.Redis):
            return None  # a cluster
        prefix = f"{namespace}:{{"
        pool = client.connection_pool
        timeout = pool.connection_kwargs.get("socket_timeout") or _ANSWER_SECONDS
        try:
            return cls(
                partial(_tracking_connection, pool, prefix),
                prefix,
                location,
                answer_seconds=min(float(timeout), _ANSWER_SECONDS),
            )
        except Exception as exc:  # refused, or anything else: tracking only saves time
            _log.debug("%s does not track changes (%s): every read asks it", location, exc)
            return None

    def frame(self, key: str) -> tuple[bytes | None, int]:
        """The kept frame of ``key`` (None when there is none), and a token for :meth:`keep`."""
        if os.getpid() != self._pid:
            return None, -1  # a forked child: see the note above _take_in
        with self._lock:
            self._take_in()
            return self._frames.get(key), self._changes

    def keep(self, key: str, frame: bytes, token: int) -> None:
        """Keep ``frame``, read after :meth:`frame` gave ``token``, unless a change came since."""
        size = len(frame)
        if os.getpid() != self._pid:
            return
        with self._lock:
            if not self._live or token != self._changes or size > self._max_frame:
                return
            self._drop(key)
            self._frames[key] = frame
            self._held += size
            while self._held > self._max_bytes:
                self._drop(next(iter(self._frames)))

    def forget(self, key: str) -> None:
        """Drop ``key``'s frame: this store changed it, or is waiting for someone who will."""
        if os.getpid() != self._pid:
            return
        with self._lock:
            self._drop(key)

    def close(self) -> None:
        """Stop tracking and close the connection."""
        if os.getpid() != self._pid:
            return
        with self._lock:
            self._stop("closed")

    # A forked child checks the process id before anything else, and then touches neither
    # the lock (another thread of the parent may have held it at the fork, and no one
    # would ever release it in the child) nor the socket (the parent's): it reads the
    # server every time.

    def _take_in(self) -> None:
        if not self._live:
            self._maybe_track_again()
            return
        try:
            stale = time.monotonic() - self._confirmed > _CONFIRM_EVERY_SECONDS
            if stale or self._connection.can_read(timeout=0):
                self._catch_up()
        except Exception as exc:  # any failure at all ends the keeping, safely
            self._stop(f"{type(exc).__name__}: {exc}")

    def _catch_up(self) -> None:
        """Take in every message the server queued before now.

        After messages came, more may wait at the server behind what the socket could
        hold (a store that sat idle while thousands of changes went by), the one about
        the key being read among them; and a connection that only listens would never
        notice a device on the way forgetting it (a load balancer, a NAT), so it is also
        asked now and then when nothing came. A ``PING`` on the subscribed connection is
        answered after every message queued before it.
        """
        self._connection.send_command("PING", _MARK, check_health=False)
        taken = 0
        while True:
            if not self._connection.can_read(timeout=self._answer_seconds):
                raise TimeoutError(f"no answer to PING in {self._answer_seconds:g} s")
            reply = self._connection.read_response()
            if reply == _PONG:
                self._confirmed = time.monotonic()
                return
            taken += self._apply(reply)
            if taken > _MOST_TAKEN_IN:
                self._start_over()
                return

    def _maybe_track_again(self) -> None:
        """After a failure, a new connection now and then: a blip in the network should not
        cost a long-running process its kept entries for good. Never once closed."""
        now = time.monotonic()
        if self._retry_at is None or now < self._retry_at:
            return
        try:
            self._reconnect()
        except Exception:  # still failing: the reads go on asking the server
            self._retry_at = now + _RETRY_SECONDS
            return
        self._live = True
        self._retry_at = None
        _log.debug("%s: tracking changes again", self._location)

    def _start_over(self) -> None:
        """Forget everything and track on a new connection: reading a backlog this long
        costs more than reading again the few entries kept. The server drops the old
        connection's backlog with it."""
        self._forget_all()
        self._connection.disconnect()
        self._reconnect()

    def _reconnect(self) -> None:
        self._connection = self._connect()
        self._changes += 1  # a frame read before this may have missed a message
        self._confirmed = time.monotonic()

    def _apply(self, message: Any) -> int:
        """Forget what ``message`` says changed; how many keys it named."""
        self._changes += 1
        names = _changed_names(message)
        if names is None:
            self._forget_all()  # FLUSHDB, FLUSHALL, or a message not understood
            return 1
        for name in names:
            if name.endswith(b"}"):  # an entry; leases end in ":lease" and change no frame
                self._drop(name[self._start : -1].decode(errors="replace"))
        return len(names)

    def _stop(self, why: str) -> None:
        if why == "closed":
            self._retry_at = None  # closed for good, even while waiting to retry
        if not self._live:
            return
        self._live = False
        self._forget_all()
        with contextlib.suppress(Exception):
            self._connection.disconnect()
        if why != "closed":
            self._retry_at = time.monotonic() + _RETRY_SECONDS
            _log.debug("%s: stopped tracking changes (%s): every read asks it", self._location, why)

    def _drop(self, key: str) -> None:
        dropped = self._frames.pop(key, None)
        if dropped is not None:
            self._held -= len(dropped)

    def _forget_all(self) -> None:
        self._frames.clear()
        self._held = 0


def _tracking_connection(pool: Any, prefix: str) -> Any:
    """A new connection to ``pool``'s server that hears of every change under ``prefix``."""
    # RESP2 whatever the URL asks: its messages arrive as ordinary pub/sub replies.
    # Without redis-py's maintenance notices, which it only reads over RESP3.
    options = {k: v for k, v in pool.connection_kwargs.items() if "maint_" not in k}
    connection = pool.connection_class(**{**options, "protocol": 2})
    try:
        connection.connect()
        own_id = _ask(connection, "CLIENT", "ID")
        tracking = ("CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", "PREFIX", prefix)
        _ask(connection, *tracking)
        _ask(connection, "SUBSCRIBE", _CHANNEL)
    except BaseException:
        with contextlib.suppress(Exception):
            connection.disconnect()
        raise
    return connection


def _ask(connection: Any, *command: Any) -> Any:
    connection.send_command(*command)
    return connection.read_response()


def _changed_names(message: Any) -> list[bytes] | None:
    """The key names in an invalidation message; None for "everything" or any other shape."""
    if (
        isinstance(message, list)
        and len(message) == 3
        and message[0] == b"message"
        and isinstance(message[2], list)
        and all(isinstance(name, bytes) for name in message[2])
    ):
        return message[2]
    return None
