"""A test's seedcache options, merged from every place a suite can set them.

Closest wins, field by field: ``--seedcache-mode`` (mode only), then the markers from the
test function out (function, class, module, then markers a conftest added), then the
``seedcache_config`` fixture a conftest can override per directory, then the ini options,
then the defaults. A field one place sets does not hide the fields another place sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

__all__ = ["CACHE_OPTIONS", "OptionError", "merged_options"]

CACHE_OPTIONS = frozenset(
    {
        "match_host",
        "ignore",
        "secret_params",
        "match_headers",
        "namespace",
        "strict",
        "history_limit",
        "fingerprints",
        "fingerprint_window",
        "fingerprint_max_age",
        "max_age",
    }
)
"""The :class:`SeedCache` options a marker or ``seedcache_config`` may set."""
_PLUGIN_OPTIONS = frozenset({"cassette", "mode"})
_KNOWN = CACHE_OPTIONS | _PLUGIN_OPTIONS


class OptionError(Exception):
    """An option the plugin does not know, or a marker written wrongly."""


def merged_options(item: pytest.Item, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The options for ``item``: ``defaults`` (from ``seedcache_config``) under its markers."""
    if not isinstance(defaults, Mapping):
        raise OptionError(
            f"the seedcache_config fixture must return a dict, not {type(defaults).__name__}"
        )
    _check(defaults, "the seedcache_config fixture")
    merged = dict(defaults)
    markers = list(item.iter_markers("seedcache"))
    for marker in reversed(markers):  # farthest first, so closer markers overwrite
        if marker.args:
            raise OptionError(
                "@pytest.mark.seedcache takes keyword arguments only, e.g. "
                "@pytest.mark.seedcache(cassette='shared.json', mode='auto')"
            )
        _check(marker.kwargs, "@pytest.mark.seedcache")
        merged.update(marker.kwargs)
    return merged


def _check(options: Mapping[str, Any], source: str) -> None:
    for name in options:
        if name not in _KNOWN:
            raise OptionError(
                f"unknown seedcache option {name!r} in {source}; known options: "
                f"{', '.join(sorted(_KNOWN))}"
            )
