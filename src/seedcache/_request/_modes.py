"""Modes: what the cache does with a request, and how the mode is chosen."""

from __future__ import annotations

import enum

from .. import _settings as settings
from .._errors import ConfigurationError
from .._settings import MODE_ENV_VAR

__all__ = ["Mode", "resolve_mode"]


class Mode(enum.StrEnum):
    """How a :class:`~seedcache.SeedCache` treats each request.

    - ``replay``: never touch the network; a request with no take raises ``CacheMiss``.
    - ``auto``: replay what is recorded, record what is not.
    - ``record``: always go live and replace what was recorded.
    - ``refresh``: replay takes whose fingerprint is still current, re-fetch the others.
    """

    REPLAY = "replay"
    AUTO = "auto"
    RECORD = "record"
    REFRESH = "refresh"

    @classmethod
    def parse(cls, value: str | Mode, *, source: str = "mode") -> Mode:
        """The mode named by ``value``; a ``ConfigurationError`` lists the valid ones."""
        if isinstance(value, Mode):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise ConfigurationError(f"unknown {source} {value!r}; use one of {valid}") from None


def resolve_mode(explicit: str | Mode | None) -> Mode:
    """Pick the mode: the one given in code, else ``$SEEDCACHE_MODE``, else ``auto``."""
    if explicit is not None:
        return Mode.parse(explicit)
    from_env = settings.mode()
    if from_env:
        return Mode.parse(from_env, source=f"{MODE_ENV_VAR} value")
    return Mode.AUTO
