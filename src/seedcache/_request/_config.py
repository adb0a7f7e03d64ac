"""How one core handles requests: fixed when the cache opens, never changed after."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .._stores import Store
from ._freshness import RefreshRules
from ._keys import KeyConfig
from ._modes import Mode

__all__ = ["DEFAULT_MISS_ADVICE", "Clock", "CoreConfig"]

Clock = Callable[[], float]

# What a miss suggests, unless the owner of the core knows better (the pytest plugin, the
# proxy). The mode given in code wins over the environment, so both are named.
DEFAULT_MISS_ADVICE = (
    "to record it, run once in mode 'auto' with an API key: SeedCache(..., mode='auto'), "
    "or SEEDCACHE_MODE=auto where the code gives no mode."
)


def _default_advice() -> str:
    return DEFAULT_MISS_ADVICE


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Everything a core needs to know besides its session (``dataclasses.replace`` makes
    a variant: the proxy's core counts repeats differently, over the same session)."""

    store: Store
    mode: Mode
    key_config: KeyConfig
    rules: RefreshRules
    strict: bool = False
    history_limit: int = 5
    clock: Clock = time.time
    count_repeats: bool = True
    """Whether the n-th identical request maps to take n (else always to take 0)."""
    miss_advice: Callable[[], str] = _default_advice
    """Gives the last line of every miss: how to record what was missing (asked only
    when a miss happens; the pytest plugin's checks the file system)."""
