"""Every ``SEEDCACHE_*`` environment variable, read here and nowhere else.

Domain code takes values as arguments; where an argument is left out, it asks this
module. One place lists what the environment can change, and tests can see it all.
"""

from __future__ import annotations

import os

__all__ = [
    "DEBUG_ENV_VAR",
    "DIR_ENV_VAR",
    "FINGERPRINTS_ENV_VAR",
    "MAX_AGE_ENV_VAR",
    "MODE_ENV_VAR",
    "REPEATS_ENV_VAR",
    "debug",
    "directory",
    "fingerprints",
    "max_age",
    "mode",
    "repeats",
]

DIR_ENV_VAR = "SEEDCACHE_DIR"
"""Where the cache lives (a directory) when no location is given."""
MODE_ENV_VAR = "SEEDCACHE_MODE"
"""The mode when none is given in code."""
FINGERPRINTS_ENV_VAR = "SEEDCACHE_FINGERPRINTS"
"""Pinned current fingerprints for ``refresh``, separated by commas or spaces."""
MAX_AGE_ENV_VAR = "SEEDCACHE_MAX_AGE"
"""Re-fetch takes older than this in ``refresh`` (``30d``, ``12h``)."""
REPEATS_ENV_VAR = "SEEDCACHE_REPEATS"
"""``takes`` (the n-th identical request replays take n) or ``first`` (every repeat
replays the first take)."""
DEBUG_ENV_VAR = "SEEDCACHE_DEBUG"
"""Show the traceback of an unexpected CLI error."""


def _read(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def directory() -> str | None:
    """``$SEEDCACHE_DIR``, if set."""
    return _read(DIR_ENV_VAR)


def mode() -> str | None:
    """``$SEEDCACHE_MODE``, if set."""
    return _read(MODE_ENV_VAR)


def fingerprints() -> str | None:
    """``$SEEDCACHE_FINGERPRINTS``, if set."""
    return _read(FINGERPRINTS_ENV_VAR)


def max_age() -> str | None:
    """``$SEEDCACHE_MAX_AGE``, if set."""
    return _read(MAX_AGE_ENV_VAR)


def repeats() -> str | None:
    """``$SEEDCACHE_REPEATS``, if set."""
    return _read(REPEATS_ENV_VAR)


def debug() -> bool:
    """Whether ``$SEEDCACHE_DEBUG`` asks for tracebacks."""
    return _read(DEBUG_ENV_VAR) is not None
