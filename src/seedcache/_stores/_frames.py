"""Decoding stored frames once: the entries behind frames read again and again (every hit).

Stores that read a frame from a database or a server on every request (another process
may have changed it) keep the entries decoded from the latest frames; a frame equal to
the one decoded last time for its key gives the same immutable entry back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import xxhash

from .._errors import CorruptEntryError
from .._takes._take import Entry
from ._codec import decode_entry

__all__ = ["DecodedFrames", "frame_revision"]


def frame_revision(frame: bytes) -> int:
    """An entry's revision: 63 bits of a hash of its stored bytes, never 0 (absent).

    63 bits, so that a Redis script (which knows no unsigned 64-bit numbers) compares it
    as text exactly.
    """
    return (xxhash.xxh3_64_intdigest(frame) >> 1) or 1


class DecodedFrames:
    """The entries decoded from the latest frames, by key, least recently used out first.

    Bounded by bytes rather than by count: a working set of a thousand ordinary entries
    (a test suite, a proxy serving a team) stays decoded, and a few huge ones cannot
    hold much memory; what counts is what an entry holds once inflated. An entry larger
    than ``max_frame`` is decoded on every read.
    """

    def __init__(
        self, location: str, *, max_bytes: int = 64 * 1024 * 1024, max_frame: int = 256 * 1024
    ) -> None:
        self._location = location
        self._max_bytes = max_bytes
        self._max_frame = max_frame
        self._held = 0
        self._decoded: OrderedDict[str, tuple[int, bytes, Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, key: str, frame: bytes) -> Entry:
        """The entry in ``frame``, with its revision; decoded only when the frame is new."""
        with self._lock:
            known = self._decoded.get(key)
        if known is not None and known[1] == frame:
            return known[2]
        where = f"{self._location} entry {key}"
        entry = decode_entry(frame, where=where).with_revision(frame_revision(frame))
        if entry.key != key:
            # Another entry's bytes (a planted row naming its value file): never its answer.
            raise CorruptEntryError(f"{where}: holds the entry of another key ({entry.key})")
        # What it holds in memory: the frame, and the bodies it inflated to.
        size = len(frame) + sum(len(take.body) for take in (*entry.takes, *entry.history))
        if size <= self._max_frame:
            with self._lock:
                replaced = self._decoded.pop(key, None)
                if replaced is not None:
                    self._held -= replaced[0]
                self._decoded[key] = (size, frame, entry)
                self._held += size
                while self._held > self._max_bytes:
                    _, (dropped, _, _) = self._decoded.popitem(last=False)
                    self._held -= dropped
        return entry
