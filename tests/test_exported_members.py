"""The public door: every public name is listed in __all__, in ruff's isort-style order."""

from __future__ import annotations

import seedcache
import seedcache.testing


def isort_style(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions, then dunders (ruff RUF022)."""
    if name.startswith("__"):
        return 3, name
    if name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


def test_all_public_names_are_exported():
    # "@py_builtins" and friends: pytest rewrites asserts in packages that ship a plugin.
    public = {name for name in vars(seedcache) if not name.startswith(("_", "@"))}
    assert public - {"annotations", "testing"} == set(seedcache.__all__) - {"__version__"}


def test_all_is_sorted():
    for module in (seedcache, seedcache.testing):
        assert module.__all__ == sorted(module.__all__, key=isort_style)
