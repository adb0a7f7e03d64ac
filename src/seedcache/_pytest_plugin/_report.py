"""What the plugin tells the user: a short miss, and the summary of the whole run."""

from __future__ import annotations

import functools
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from .._units import count

__all__ = ["CONSUMED_PROPERTY", "STATS_PROPERTY", "Reporter", "miss_text", "short_miss"]

STATS_PROPERTY = "seedcache"
CONSUMED_PROPERTY = "seedcache-consumed"


def miss_text(error: BaseException) -> str | None:
    """The miss explanation carried by ``error``, or None when it is not a miss."""
    from .._errors import CacheMiss

    if isinstance(error, CacheMiss):
        return str(error)
    # Through the proxy the SDK sees a 404 whose body is the miss.
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None or headers.get("x-seedcache") != "miss":
        return None
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else str(error)


def short_miss(text: str, excinfo: pytest.ExceptionInfo[BaseException], nodeid: str) -> str:
    """The failure for a miss: where the test asked, and the miss; no library frames."""
    lines = [f"{nodeid} made a request that is not recorded:"]
    frame = _last_user_frame(excinfo)
    if frame is not None:
        lines.append(f"  {frame}")
    lines.append("")
    lines.append(f"CacheMiss: {text}")
    return "\n".join(lines)


@functools.cache
def _library_roots() -> tuple[str, ...]:
    """Where code that is not the user's lives: installed packages, the standard library,
    and seedcache itself (which may be an editable install in a source tree)."""
    paths = sysconfig.get_paths()
    roots = {paths[name] for name in ("purelib", "platlib", "stdlib") if name in paths}
    roots.add(str(Path(__file__).resolve().parent.parent))
    return tuple(sorted(roots))


def _last_user_frame(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    found = None
    roots = _library_roots()
    for entry in excinfo.traceback:
        path = str(entry.path)
        if path.startswith(roots):
            continue
        source = entry.statement
        found = f"{path}:{entry.lineno + 1}: {str(source).strip()}"
    return found


class Reporter:
    """Adds up every test's counters (from xdist workers too) and prints the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: dict[str, int] = {}
        self.consumed: dict[str, dict[str, int]] = {}
        self.tests = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        # Counters travel in user_properties, which xdist sends from workers.
        for name, value in report.user_properties:
            if name == STATS_PROPERTY and isinstance(value, dict):
                self.tests += 1
                for counter, count in value.items():
                    self.counts[counter] = self.counts.get(counter, 0) + int(count)
            elif name == CONSUMED_PROPERTY and isinstance(value, dict):
                path, used = value.get("path"), value.get("consumed")
                if isinstance(path, str) and isinstance(used, dict):
                    known = self.consumed.setdefault(path, {})
                    for key, count in used.items():
                        known[key] = max(known.get(key, 0), int(count))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.tests:
            return
        counts = self.counts
        mode = self.config.getoption("--seedcache-mode") or self.config.getini("seedcache_mode")
        line = (
            f"seedcache: {counts.get('hits', 0)} hits, {counts.get('recorded', 0)} recorded, "
            f"{counts.get('refreshed', 0)} refreshed, {counts.get('misses', 0)} misses "
            f"in {count(self.tests, 'test')} (mode {mode})"
        )
        tokens = counts.get("tokens_saved", 0)
        if tokens:
            from .._savings import describe_saved

            priced = tokens > counts.get("unpriced_tokens", 0)
            cost = counts.get("micro_usd_saved", 0) / 1_000_000 if priced else None
            line += "; " + describe_saved(
                tokens, cost, unpriced=bool(counts.get("unpriced_tokens"))
            )
        terminalreporter.write_line(line)
        if self.consumed:
            unused = list(_unused(self.consumed))
            terminalreporter.write_line(f"seedcache: {count(len(unused), 'unused recording')}:")
            for line in unused:
                terminalreporter.write_line(f"  {line}")


def _unused(consumed: dict[str, dict[str, int]]) -> Iterable[str]:
    """Takes that no test of the run asked for, cassette by cassette.

    Decided once the whole run is over: on a shared cassette, what one test leaves is
    usually another test's.
    """
    from .._errors import StoreError
    from .._stores._cassette import read_cassette

    for path, used in sorted(consumed.items()):
        try:
            contents = read_cassette(Path(path))
        except (StoreError, ValueError):
            continue
        for entry in contents.entries:
            first = used.get(entry.key, 0)
            if first < len(entry.takes):
                yield f"{path}: key {entry.key} takes {list(range(first, len(entry.takes)))}"
