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

# The public names, each with the module that defines it: the one list. ``__all__`` and
# the lazy imports below are made from it; the imports under TYPE_CHECKING repeat it for
# type checkers, which cannot run code (a test keeps the two in step).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "._errors": (
        "AmbiguousKeyError",
        "CacheMiss",
        "ConfigurationError",
        "CorruptEntryError",
        "ExposedProxyWarning",
        "NotFoundError",
        "SeedCacheError",
        "StoreError",
        "UnsafeDataError",
    ),
    "._cache": ("SeedCache",),
    "._request._modes": ("Mode",),
    "._request._outcome": ("OUTCOME_EXTENSION", "OUTCOME_HEADER", "Action", "Outcome"),
    "._request._session": ("Stats",),
    "._request._backends": ("BackendChange", "Backends"),
    "._takes._take": ("Entry", "Take"),
    "._takes._usage": ("TokenUsage",),
    "._stores": (
        "BaseStore",
        "Capabilities",
        "CassetteStore",
        "Change",
        "Check",
        "Copied",
        "DiskStore",
        "Lease",
        "MetaChange",
        "Store",
        "copy_entries",
    ),
    "._stores._summary": ("Summary", "TakeFacts", "Totals"),
    "._inspect._catalog": ("StoreStats",),
    "._inspect._drift": ("DeterminismRow", "DeterminismSummary", "DiffSide", "TakeDiff", "TakeRef"),
    "._inspect._fingerprints": ("FingerprintStatus",),
    "._inspect._savings": ("ModelSavings", "Savings"),
    "._serve": ("Proxy",),
}

if TYPE_CHECKING:
    from ._cache import SeedCache as SeedCache
    from ._errors import AmbiguousKeyError as AmbiguousKeyError
    from ._errors import CacheMiss as CacheMiss
    from ._errors import ConfigurationError as ConfigurationError
    from ._errors import CorruptEntryError as CorruptEntryError
    from ._errors import ExposedProxyWarning as ExposedProxyWarning
    from ._errors import NotFoundError as NotFoundError
    from ._errors import SeedCacheError as SeedCacheError
    from ._errors import StoreError as StoreError
    from ._errors import UnsafeDataError as UnsafeDataError
    from ._inspect._catalog import StoreStats as StoreStats
    from ._inspect._drift import DeterminismRow as DeterminismRow
    from ._inspect._drift import DeterminismSummary as DeterminismSummary
    from ._inspect._drift import DiffSide as DiffSide
    from ._inspect._drift import TakeDiff as TakeDiff
    from ._inspect._drift import TakeRef as TakeRef
    from ._inspect._fingerprints import FingerprintStatus as FingerprintStatus
    from ._inspect._savings import ModelSavings as ModelSavings
    from ._inspect._savings import Savings as Savings
    from ._request._backends import BackendChange as BackendChange
    from ._request._backends import Backends as Backends
    from ._request._modes import Mode as Mode
    from ._request._outcome import OUTCOME_EXTENSION as OUTCOME_EXTENSION
    from ._request._outcome import OUTCOME_HEADER as OUTCOME_HEADER
    from ._request._outcome import Action as Action
    from ._request._outcome import Outcome as Outcome
    from ._request._session import Stats as Stats
    from ._serve import Proxy as Proxy
    from ._stores import BaseStore as BaseStore
    from ._stores import Capabilities as Capabilities
    from ._stores import CassetteStore as CassetteStore
    from ._stores import Change as Change
    from ._stores import Check as Check
    from ._stores import Copied as Copied
    from ._stores import DiskStore as DiskStore
    from ._stores import Lease as Lease
    from ._stores import MetaChange as MetaChange
    from ._stores import Store as Store
    from ._stores import copy_entries as copy_entries
    from ._stores._summary import Summary as Summary
    from ._stores._summary import TakeFacts as TakeFacts
    from ._stores._summary import Totals as Totals
    from ._takes._take import Entry as Entry
    from ._takes._take import Take as Take
    from ._takes._usage import TokenUsage as TokenUsage

__version__ = "0.2.0.dev0"

_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def _isort_order(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions, then dunders: ruff's order for __all__."""
    if name.startswith("__"):
        return 3, name
    return (0 if name.isupper() else 1 if name[0].isupper() else 2), name


__all__ = sorted([*_MODULE_OF, "__version__"], key=_isort_order)


def _public(value: Any) -> Any:
    """Show ``value`` as ``seedcache.Name`` in reprs and tracebacks, as httpx does."""
    if isinstance(value, type):
        value.__module__ = __name__
    return value


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'seedcache' has no attribute {name!r}")
    value = _public(getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# The errors are cheap, and a traceback should name them ``seedcache.CacheMiss`` even
# before anyone wrote that name.
for _name in _EXPORTS["._errors"]:
    __getattr__(_name)
