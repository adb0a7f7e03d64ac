"""Reading a whole file of known size, refusing more than a limit.

``handle.read(limit + 1)`` with a limit of hundreds of megabytes asks for a buffer that
large first: for a small cassette or value file the allocation and its return to the
system cost several times the read itself (~40 µs against ~8). The size ``fstat`` gave
is read instead, plus one byte that tells whether the file grew since.
"""

from __future__ import annotations

from typing import BinaryIO

__all__ = ["read_bounded"]


def read_bounded(handle: BinaryIO, size: int, limit: int) -> bytes:
    """The rest of ``handle``, expected to be ``size`` bytes; at most ``limit + 1`` bytes,
    so a caller sees a file over its limit as one."""
    data = handle.read(min(size, limit) + 1)
    if len(data) <= size or len(data) > limit:
        return data
    # The file grew after it was measured: read on, still bounded.
    return data + handle.read(limit + 1 - len(data))
