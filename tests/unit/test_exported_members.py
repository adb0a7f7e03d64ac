"""The public door: every public name is listed in __all__, in ruff's isort-style order,
shows as ``seedcache.Name``, and importing the package (or its pytest plugin) is cheap."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
    exported = {name: getattr(seedcache, name) for name in seedcache.__all__}
    # "@py_builtins" and friends: pytest rewrites asserts in packages that ship a plugin.
    defined = {
        name
        for name, value in vars(seedcache).items()
        if not name.startswith(("_", "@"))
        and str(getattr(value, "__module__", "")).startswith("seedcache")
    }
    assert defined <= set(exported)
    assert set(exported) <= set(dir(seedcache))


def test_public_classes_read_as_public_in_tracebacks():
    for name in seedcache.__all__:
        value = getattr(seedcache, name)
        if isinstance(value, type):
            assert value.__module__ == "seedcache", name
    assert repr(seedcache.CacheMiss("x")).startswith("CacheMiss(")
    assert f"{seedcache.CacheMiss.__module__}.{seedcache.CacheMiss.__qualname__}" == (
        "seedcache.CacheMiss"
    )


def test_all_is_sorted():
    for module in (seedcache, seedcache.testing):
        assert module.__all__ == sorted(module.__all__, key=isort_style)


def test_loading_the_pytest_plugin_imports_neither_openai_nor_the_core():
    """Every pytest run in a project with seedcache installed loads the plugin."""
    probe = textwrap.dedent(
        """
        import sys
        import seedcache._pytest_plugin
        heavy = [m for m in ("openai", "httpx2", "httpx", "diskcache", "anyio",
                              "seedcache._request._core", "seedcache._cache") if m in sys.modules]
        print(heavy)
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_names_type_checkers_see_are_the_names_exported():
    """``_EXPORTS`` is the one list; the imports under TYPE_CHECKING must repeat it exactly."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(seedcache))
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    seen = {
        (f"{'.' * node.level}{node.module}", alias.name)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name  # "X as X": an explicit re-export
    }
    listed = {(module, name) for module, names in seedcache._EXPORTS.items() for name in names}
    assert seen == listed
