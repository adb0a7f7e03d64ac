"""seedcache: record and replay OpenAI API responses, aware of ``seed`` and ``system_fingerprint``.

>>> import openai, seedcache
>>> cache = seedcache.SeedCache(".seedcache")       # doctest: +SKIP
>>> client = cache.wrap(openai.OpenAI())            # doctest: +SKIP

Names are imported on first use: pytest loads seedcache's plugin in every project that
has seedcache installed, and a session that uses none of it must not pay for the core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    AmbiguousKeyError,
    CacheMiss,
    ConfigurationError,
    CorruptEntryError,
    ExposedProxyWarning,
    NotFoundError,
    SeedCacheError,
    StoreError,
    UnsafeDataError,
)

if TYPE_CHECKING:
    from ._cache import SeedCache
    from ._inspect._catalog import StoreStats
    from ._inspect._drift import DeterminismRow, DeterminismSummary, DiffSide, TakeDiff, TakeRef
    from ._inspect._fingerprints import FingerprintStatus
    from ._inspect._savings import ModelSavings, Savings
    from ._request._backends import BackendChange, Backends
    from ._request._flights import Stats
    from ._request._modes import Mode
    from ._request._outcome import OUTCOME_EXTENSION, OUTCOME_HEADER, Action, Outcome
    from ._serve import Proxy
    from ._stores import Capabilities, CassetteStore, Check, DiskStore, Lease, Store
    from ._stores._summary import Summary, TakeFacts, Totals
    from ._takes._take import Entry, Take

__version__ = "0.2.0.dev0"

__all__ = [
    "OUTCOME_EXTENSION",
    "OUTCOME_HEADER",
    "Action",
    "AmbiguousKeyError",
    "BackendChange",
    "Backends",
    "CacheMiss",
    "Capabilities",
    "CassetteStore",
    "Check",
    "ConfigurationError",
    "CorruptEntryError",
    "DeterminismRow",
    "DeterminismSummary",
    "DiffSide",
    "DiskStore",
    "Entry",
    "ExposedProxyWarning",
    "FingerprintStatus",
    "Lease",
    "Mode",
    "ModelSavings",
    "NotFoundError",
    "Outcome",
    "Proxy",
    "Savings",
    "SeedCache",
    "SeedCacheError",
    "Stats",
    "Store",
    "StoreError",
    "StoreStats",
    "Summary",
    "Take",
    "TakeDiff",
    "TakeFacts",
    "TakeRef",
    "Totals",
    "UnsafeDataError",
    "__version__",
]

_LAZY = {
    "SeedCache": "._cache",
    "BackendChange": "._request._backends",
    "Backends": "._request._backends",
    "Stats": "._request._flights",
    "DeterminismRow": "._inspect._drift",
    "DeterminismSummary": "._inspect._drift",
    "TakeDiff": "._inspect._drift",
    "DiffSide": "._inspect._drift",
    "TakeRef": "._inspect._drift",
    "FingerprintStatus": "._inspect._fingerprints",
    "Summary": "._stores._summary",
    "TakeFacts": "._stores._summary",
    "Totals": "._stores._summary",
    "StoreStats": "._inspect._catalog",
    "Savings": "._inspect._savings",
    "ModelSavings": "._inspect._savings",
    "Proxy": "._serve",
    "Capabilities": "._stores",
    "Check": "._stores",
    "Lease": "._stores",
    "Mode": "._request._modes",
    "OUTCOME_EXTENSION": "._request._outcome",
    "OUTCOME_HEADER": "._request._outcome",
    "Action": "._request._outcome",
    "Outcome": "._request._outcome",
    "CassetteStore": "._stores",
    "DiskStore": "._stores",
    "Store": "._stores",
    "Entry": "._takes._take",
    "Take": "._takes._take",
}


def _public(value: Any) -> Any:
    """Show ``value`` as ``seedcache.Name`` in reprs and tracebacks, as httpx does."""
    if isinstance(value, type):
        value.__module__ = __name__
    return value


for _name in __all__:
    if _name in globals():  # the errors, imported above; the rest on first use
        _public(globals()[_name])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seedcache' has no attribute {name!r}")
    value = _public(getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
