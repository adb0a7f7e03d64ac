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
from collections.abc import Iterator
from pathlib import Path

from .._errors import StoreError

__all__ = ["exclusive", "lock_path"]


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock that guards changes to ``path`` (waits for other holders)."""
    guard = lock_path(path)
    try:
        guard.parent.mkdir(parents=True, exist_ok=True)
        descriptor = _acquire(guard)
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


def _acquire(guard: Path) -> int:
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
            _lock(descriptor)
            held = os.fstat(descriptor)
            try:
                current = os.stat(guard)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)  # the holder before us removed this file; lock the new one


if sys.platform == "win32":  # pragma: no cover - not run in CI
    import msvcrt

    def _lock(descriptor: int) -> None:
        while True:  # LK_LOCK gives up after ten seconds; keep waiting like flock does
            try:
                msvcrt.locking(descriptor, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue

else:
    import fcntl

    def _lock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
