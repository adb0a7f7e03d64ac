"""An exclusive lock between processes, held on a file beside the one being changed.

A cassette is replaced atomically by renaming a new file over it, so the cassette itself
cannot carry the lock (a rename gives it a new inode). The lock lives in
``.<name>.lock`` next to it and is removed when released, so no stray files are left in
a directory that is committed. Removing a lock file races with a process that opened it
just before: after locking, the holder checks that the path still names the file it
locked, and starts over if not.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .._errors import StoreError

__all__ = ["LOCK_TIMEOUT_SECONDS", "exclusive", "lock_path"]

LOCK_TIMEOUT_SECONDS = 120.0
"""How long a writer waits for another to finish: writes take milliseconds, so a lock held
this long belongs to a stopped or hung process, and waiting on would hang this one too."""


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: Path, *, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the lock that guards changes to ``path``, waiting at most ``timeout`` seconds
    for another holder (then a :class:`StoreError` names the process that holds it)."""
    guard = lock_path(path)
    try:
        guard.parent.mkdir(parents=True, exist_ok=True)
        descriptor = _acquire(guard, time.monotonic() + timeout)
    except TimeoutError:
        raise StoreError(
            f"{path} has been locked by {_holder(guard)} for {timeout:.0f} s (stopped or "
            f"hung?); nothing was written. Let that process finish or stop it; if none "
            f"runs, remove {guard}"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot lock {path} for writing: {exc}") from exc
    try:
        yield
    finally:
        # Unlink before unlocking: a waiter that then gets the lock sees the path gone
        # (or a newer file) and starts over on the current one.
        with contextlib.suppress(OSError):
            guard.unlink()
        os.close(descriptor)


# A lock file planted as a symbolic link must not make us create or open its target.
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _holder(guard: Path) -> str:
    """Who holds the lock, as its holder wrote it (``process 1234``)."""
    try:
        written = guard.read_bytes()[:32].decode("ascii", "replace").strip()
    except OSError:
        written = ""
    return f"process {written}" if written.isdigit() else "another process"


def _acquire(guard: Path, deadline: float) -> int:
    while True:
        try:
            descriptor = os.open(guard, os.O_RDWR | os.O_CREAT | _NO_FOLLOW, 0o644)
        except OSError as exc:
            if guard.is_symlink():
                raise StoreError(
                    f"the lock file {guard} is a symbolic link; seedcache never follows one. "
                    "Remove it (nothing holds a lock through it)"
                ) from exc
            raise
        try:
            _lock(descriptor, deadline)
            held = os.fstat(descriptor)
            try:
                current = os.stat(guard)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                # Who holds it, for a writer that waits too long to say.
                os.ftruncate(descriptor, 0)
                os.lseek(descriptor, 0, os.SEEK_SET)
                os.write(descriptor, str(os.getpid()).encode())
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)  # the holder before us removed this file; lock the new one


# How often a waiting writer tries again: quick at first, then at most every 50 ms.
_FIRST_RETRY, _LONGEST_RETRY = 0.002, 0.05

if sys.platform == "win32":  # pragma: no cover - not run in CI
    import msvcrt

    def _try_lock(descriptor: int) -> bool:
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(descriptor: int) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _lock(descriptor: int, deadline: float) -> None:
    """Take the lock, retrying until ``deadline`` (then :class:`TimeoutError`)."""
    pause = _FIRST_RETRY
    while not _try_lock(descriptor):
        if time.monotonic() >= deadline:
            raise TimeoutError
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_RETRY)
