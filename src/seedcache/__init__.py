"""seedcache: record and replay OpenAI API responses, aware of ``seed`` and ``system_fingerprint``.

>>> import openai, seedcache
>>> cache = seedcache.SeedCache(".seedcache")       # doctest: +SKIP
>>> client = cache.wrap(openai.OpenAI())            # doctest: +SKIP
"""

from __future__ import annotations

from ._cache import SeedCache
from ._core import Stats
from ._drift import DeterminismRow, DeterminismSummary, TakeDiff
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
from ._fingerprints import FingerprintStatus
from ._keys import KeyConfig
from ._modes import Mode
from ._outcome import OUTCOME_EXTENSION, OUTCOME_HEADER, Action, Outcome
from ._stores import CassetteStore, DiskStore, Store
from ._takes import Entry, Take

__version__ = "0.1.0"

__all__ = [
    "OUTCOME_EXTENSION",
    "OUTCOME_HEADER",
    "Action",
    "AmbiguousKeyError",
    "CacheMiss",
    "CassetteStore",
    "ConfigurationError",
    "CorruptEntryError",
    "DeterminismRow",
    "DeterminismSummary",
    "DiskStore",
    "Entry",
    "ExposedProxyWarning",
    "FingerprintStatus",
    "KeyConfig",
    "Mode",
    "NotFoundError",
    "Outcome",
    "SeedCache",
    "SeedCacheError",
    "Stats",
    "Store",
    "StoreError",
    "Take",
    "TakeDiff",
    "UnsafeDataError",
    "__version__",
]
