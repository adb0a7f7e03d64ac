"""The public door: every public name is listed in __all__, sorted."""

from __future__ import annotations

import seedcache
import seedcache.testing


def test_all_public_names_are_exported():
    public = {name for name in vars(seedcache) if not name.startswith("_")}
    modules = {"annotations"}
    assert public - modules - {"testing"} == set(seedcache.__all__) - {"__version__"}


def test_all_is_sorted():
    assert seedcache.__all__[:-1] == sorted(seedcache.__all__[:-1])
    assert seedcache.testing.__all__ == sorted(seedcache.testing.__all__)
