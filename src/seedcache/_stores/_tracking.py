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
once the message has crossed the network (on one machine, at once). Anything
wrong with the connection (the server drops it, the process forked, a message of a shape
never sent) ends the keeping: what was kept is forgotten and every read goes to the
server, as it would without tracking. A server that refuses tracking (older than 6, an ACL
without ``CLIENT``, a proxy in front) never starts it. A cluster is not tracked: each node
would need its own connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

__all__ = ["TrackedFrames"]

_CHANNEL = "__redis__:invalidate"

_log = logging.getLogger("seedcache")


class TrackedFrames:
    """The frames read from the server that it has not since said changed, by key.

    Bounded by bytes, oldest out first; a frame over ``max_frame`` is never kept.
    """

    def __init__(
        self,
        connection: Any,
        prefix: str,
        location: str,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_frame: int = 4 * 1024 * 1024,
    ) -> None:
        self._connection = connection
        self._start = len(prefix.encode())
        self._location = location
        self._max_bytes = max_bytes
        self._max_frame = max_frame
        self._frames: dict[str, bytes] = {}
        self._held = 0
        # Messages taken in so far: a frame read while one arrived may predate it.
        self._changes = 0
        self._live = True
        self._pid = os.getpid()
        self._lock = threading.Lock()

    @classmethod
    def start(cls, client: Any, namespace: str, location: str) -> TrackedFrames | None:
        """Track ``namespace`` on ``client``'s server; None when the server will not."""
        import redis

        if not isinstance(client, redis.Redis):
            return None  # a cluster
        pool = client.connection_pool
        # RESP2 whatever the URL asks: its messages arrive as ordinary pub/sub replies.
        # Without redis-py's maintenance notices, which it only reads over RESP3.
        options = {k: v for k, v in pool.connection_kwargs.items() if "maint_" not in k}
        connection = pool.connection_class(**{**options, "protocol": 2})
        prefix = f"{namespace}:{{"
        try:
            connection.connect()
            own_id = _ask(connection, "CLIENT", "ID")
            _ask(
                connection,
                "CLIENT",
                "TRACKING",
                "ON",
                "REDIRECT",
                own_id,
                "BCAST",
                "PREFIX",
                prefix,
            )
            _ask(connection, "SUBSCRIBE", _CHANNEL)
        except (redis.RedisError, OSError) as exc:
            with contextlib.suppress(Exception):
                connection.disconnect()
            _log.debug("%s does not track changes (%s): every read asks it", location, exc)
            return None
        return cls(connection, prefix, location)

    def frame(self, key: str) -> tuple[bytes | None, int]:
        """The kept frame of ``key`` (None when there is none), and a token for :meth:`keep`."""
        with self._lock:
            self._take_in()
            return self._frames.get(key), self._changes

    def keep(self, key: str, frame: bytes, token: int) -> None:
        """Keep ``frame``, read after :meth:`frame` gave ``token``, unless a change came since."""
        size = len(frame)
        with self._lock:
            if not self._live or token != self._changes or size > self._max_frame:
                return
            replaced = self._frames.pop(key, None)
            if replaced is not None:
                self._held -= len(replaced)
            self._frames[key] = frame
            self._held += size
            while self._held > self._max_bytes:
                oldest = next(iter(self._frames))
                self._held -= len(self._frames.pop(oldest))

    def forget(self, key: str) -> None:
        """Drop ``key``'s frame: this store changed it, or is waiting for someone who will."""
        with self._lock:
            dropped = self._frames.pop(key, None)
            if dropped is not None:
                self._held -= len(dropped)

    def close(self) -> None:
        """Stop tracking and close the connection."""
        with self._lock:
            self._stop("closed")

    def _take_in(self) -> None:
        if not self._live:
            return
        if os.getpid() != self._pid:
            self._stop("forked")  # the socket is the parent's: never read it here
            return
        try:
            while self._connection.can_read(timeout=0):
                self._apply(self._connection.read_response())
        except Exception as exc:  # any failure at all ends the keeping, safely
            self._stop(f"{type(exc).__name__}: {exc}")

    def _apply(self, message: Any) -> None:
        self._changes += 1
        names = _changed_names(message)
        if names is None:
            self._frames.clear()  # FLUSHDB, FLUSHALL, or a message not understood
            self._held = 0
            return
        for name in names:
            if name.endswith(b"}"):  # an entry; leases end in ":lease" and change no frame
                dropped = self._frames.pop(name[self._start : -1].decode(errors="replace"), None)
                if dropped is not None:
                    self._held -= len(dropped)

    def _stop(self, why: str) -> None:
        if not self._live:
            return
        self._live = False
        self._frames.clear()
        self._held = 0
        if why != "forked":
            with contextlib.suppress(Exception):
                self._connection.disconnect()
        if why != "closed":
            _log.debug("%s: stopped tracking changes (%s): every read asks it", self._location, why)


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
