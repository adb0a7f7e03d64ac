"""Explaining a miss: what was asked, what is recorded nearest to it, and what to do.

Built outside the core's lock, from the store's summaries first: only requests to the
same endpoint and model are decoded, so a miss in a big cache stays quick and other
requests of the session are not held up while it is explained.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from .._errors import CacheMiss, CorruptEntryError
from .._stores import Store
from .._units import count
from ._keys import Canonical, KeyConfig
from ._modes import Mode
from ._nearest import host_only, nearest
from ._policy import Miss

__all__ = ["explain_miss"]

# Decoding is what costs: compare with this many recorded requests at most.
_COMPARED = 2000
_SHOWN = 12


def explain_miss(
    canonical: Canonical,
    decision: Miss,
    *,
    store: Store,
    mode: Mode,
    key_config: KeyConfig,
    advice: Callable[[], str],
) -> CacheMiss:
    """The :class:`CacheMiss` for ``canonical``, saying why and what to do."""
    location = store.location
    model = canonical.model
    lines = [
        f"no recorded response for {canonical.endpoint}"
        + (f" (model {model!r})" if model else "")
        + f" in {location}; mode is {mode.value!r}, so the network is not used.",
        f"key: {canonical.key}",
    ]
    differences: tuple[str, ...] = ()
    if decision.recorded:
        lines.append(
            f"the key has {count(decision.recorded, 'take')} and this is repeat "
            f"#{decision.occurrence + 1}; strict replay forbids reusing the last take"
        )
    found = nearest(canonical, _likely_first(canonical, store), ignore=key_config.ignore)
    hosts = None if found is None else host_only(found.summary, canonical.summary)
    if found is not None and hosts is not None and not key_config.match_host:
        # The host is not part of keys now: a URL that differs only in it is no difference
        # to list beside others (alone, it is the host advice below).
        kept = [d for d in found.differences if not d.startswith("url:")]
        if kept:
            found = replace(found, differences=kept)
    if found is None:
        lines.append("nothing is recorded there yet.")
    elif not decision.recorded and not found.differences:
        lines.append(
            f"recorded request {found.key} is the same as sent, but was keyed under other "
            "matching rules (host matching, ignore, match_headers or namespace), which "
            "change keys: record it again with the rules in use."
        )
    elif not decision.recorded:
        differences = tuple(found.differences)
        lines.append(f"nearest recorded request: {found.key}, which differs in:")
        lines.extend(f"  {d}" for d in differences[:_SHOWN])
        if len(differences) > _SHOWN:
            lines.append(f"  … and {len(differences) - _SHOWN} more")
        if hosts is not None and len(differences) == 1:
            lines.append(_host_advice(hosts, match_host=key_config.match_host))
    lines.append(advice())
    return CacheMiss(
        "\n".join(lines),
        key=canonical.key,
        endpoint=canonical.endpoint,
        model=model,
        location=location,
        differences=differences,
    )


def _likely_first(canonical: Canonical, store: Store) -> Iterator[tuple[str, dict[str, Any]]]:
    """Recorded requests, those to the same endpoint and model first, decoded lazily."""
    ranked = sorted(
        store.summaries(),
        key=lambda s: (s.endpoint != canonical.endpoint, s.model != canonical.model),
    )
    for summary in itertools.islice(ranked, _COMPARED):
        try:
            entry = store.get(summary.key)
        except CorruptEntryError:
            continue
        if entry is not None:
            yield entry.key, entry.request


def _host_advice(origins: tuple[str, str], *, match_host: bool) -> str:
    where = f"recorded at {origins[0]}, asked at {origins[1]}"
    if match_host:
        # Both steps at once: a key recorded with host matching on holds the host, so
        # turning it off alone would only lead to the next miss.
        return (
            f"it differs only in its host: {where}. To replay across hosts, turn "
            "host matching off (pytest ini: seedcache_match_host = false; "
            "SeedCache(match_host=False); seedcache serve --no-match-host) and record it "
            "again with host matching off: a key recorded with it on holds the host."
        )
    return (
        f"it differs only in its host ({where}), but it was recorded with host "
        "matching on, so its key holds the host: record it again with host "
        "matching off."
    )
