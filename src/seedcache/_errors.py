"""The exceptions seedcache raises.

Every error is a :class:`SeedCacheError` and also subclasses the built-in that fits it,
so ``except LookupError`` or ``except ValueError`` keep working in user code::

    SeedCacheError
    ├── CacheMiss (LookupError)          a request has no recorded take and may not go live
    ├── NotFoundError (LookupError)      no key, key prefix or take matches what was asked
    │   └── AmbiguousKeyError            a key prefix matches more than one key
    ├── ConfigurationError (ValueError)  a bad mode, option or path given by the user
    └── StoreError (OSError)             the store cannot be read or written
        ├── CorruptEntryError (ValueError)   a stored entry cannot be decoded
        └── UnsafeDataError (ValueError)     stored data would need unpickling; refused

    ExposedProxyWarning (UserWarning)    the proxy listens where other machines reach it

Messages say what happened and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousKeyError",
    "CacheMiss",
    "ConfigurationError",
    "CorruptEntryError",
    "ExposedProxyWarning",
    "NotFoundError",
    "SeedCacheError",
    "StoreError",
    "UnsafeDataError",
]


class SeedCacheError(Exception):
    """Base class of every error raised by seedcache."""


class CacheMiss(SeedCacheError, LookupError):  # noqa: N818 - the name users look for
    """A request has no recorded take and the mode forbids going to the network.

    The message names the endpoint, the model, the key, where the cache looked and the
    nearest recorded request with the parameters that differ. The same facts are
    available as attributes for tools that want to render them differently.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str = "",
        endpoint: str = "",
        model: str | None = None,
        location: str = "",
        differences: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.key = key
        self.endpoint = endpoint
        self.model = model
        self.location = location
        self.differences = differences


class NotFoundError(SeedCacheError, LookupError):
    """No recorded key, key prefix or take matches what was asked for."""


class AmbiguousKeyError(NotFoundError):
    """A key prefix matches several keys; the message lists some of them."""


class ConfigurationError(SeedCacheError, ValueError):
    """A mode, option or path given to seedcache is not usable."""


class StoreError(SeedCacheError, OSError):
    """The store cannot be opened, read or written."""


class CorruptEntryError(StoreError, ValueError):
    """A stored entry or cassette cannot be decoded; nothing was changed."""


class UnsafeDataError(StoreError, ValueError):
    """Stored data asks to be unpickled; seedcache never unpickles anything."""


class ExposedProxyWarning(UserWarning):
    """The proxy listens on an address other machines can reach: anyone there can spend
    the API keys its clients send and read what the cache recorded."""
