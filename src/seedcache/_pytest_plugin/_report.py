"""What the plugin tells the user: a short miss, and the summary of the whole run."""

from __future__ import annotations

import dataclasses
import functools
import math
import sysconfig
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .._units import count

if TYPE_CHECKING:
    from .._takes._take import Entry

__all__ = [
    "CHANGES_PROPERTY",
    "CONSUMED_PROPERTY",
    "STATS_PROPERTY",
    "USAGE_PROPERTY",
    "Reporter",
    "miss_text",
    "prune_unused",
    "short_miss",
]

STATS_PROPERTY = "seedcache"
CONSUMED_PROPERTY = "seedcache-consumed"
CHANGES_PROPERTY = "seedcache-changes"
USAGE_PROPERTY = "seedcache-usage"


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
        self.changes: dict[tuple[str, str, str], int] = {}
        self.usage: dict[tuple[str, tuple[int, ...]], int] = {}
        """Replays by model and token usage, priced once for the summary."""
        self.tests = 0
        self.pruned: list[str] = []
        """What --seedcache-prune-unused did or why it did nothing, said in the summary."""

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        config = session.config
        is_controller = not hasattr(config, "workerinput")
        # The xdist controller waits on its workers meanwhile: loading the price list there
        # now takes it off the end of the run, where the summary needs it (unless a run
        # priced today is remembered: the list may not be needed at all).
        if (
            getattr(config.option, "numprocesses", None)
            and is_controller
            and self._remembered_runs() is None
        ):
            threading.Thread(target=_load_prices, name="seedcache-prices", daemon=True).start()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        # Counters travel in user_properties, which xdist sends from workers.
        for name, value in report.user_properties:
            if name == STATS_PROPERTY and isinstance(value, dict):
                self.tests += 1
                for counter, count in value.items():
                    self.counts[counter] = self.counts.get(counter, 0) + int(count)
            elif name == USAGE_PROPERTY and isinstance(value, list):
                for model, *counts, times in value:
                    replayed = (str(model), tuple(int(n) for n in counts))
                    self.usage[replayed] = self.usage.get(replayed, 0) + int(times)
            elif name == CHANGES_PROPERTY and isinstance(value, list):
                for model, before, after, replaced in value:
                    change = (str(model), str(before), str(after))
                    self.changes[change] = self.changes.get(change, 0) + int(replaced)
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
        refreshed = f"{counts.get('refreshed', 0)} refreshed"
        if self.changes:
            refreshed += f" ({self._describe_changes()})"
        confirmed = counts.get("confirmed", 0)
        line = (
            f"seedcache: {counts.get('hits', 0)} hits, {counts.get('recorded', 0)} recorded, "
            f"{refreshed}, {counts.get('misses', 0)} misses"
            + (f", {count(confirmed, 'live check')}" if confirmed else "")
            + f" in {count(self.tests, 'test')} (mode {mode})"
        )
        saved = self._describe_savings()
        if saved is not None:
            line += "; " + saved
        terminalreporter.write_line(line)
        changed = counts.get("output_changes", 0)
        if changed:
            terminalreporter.write_line(
                f"seedcache: {count(changed, 'output')} changed on refresh; see them with: "
                f"seedcache --cassette {self._cassette_dir()} report",
                yellow=True,
            )
            if self.fails_on_drift:
                terminalreporter.write_line(
                    "seedcache: --seedcache-fail-on-drift: the run fails (the refreshed "
                    "recordings are kept)",
                    red=True,
                )
        for line in self.pruned:
            terminalreporter.write_line(line)
        if self.consumed and self.config.getoption("--seedcache-report-unused"):
            unused = list(_unused(self.consumed))
            terminalreporter.write_line(f"seedcache: {count(len(unused), 'unused recording')}:")
            for line in unused:
                terminalreporter.write_line(f"  {line}")

    @property
    def fails_on_drift(self) -> bool:
        """Whether this run must fail: asked to, and some output changed on refresh."""
        asked = bool(self.config.getoption("--seedcache-fail-on-drift"))
        return asked and self.counts.get("output_changes", 0) > 0

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller adds up every worker and judges
        if self.config.getoption("--seedcache-prune-unused"):
            self.pruned = self._prune_unused(session)
        if self.fails_on_drift and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _prune_unused(self, session: pytest.Session) -> list[str]:
        """Remove entries no test of this run used, if the run can tell: every test
        selected, and every test passed."""
        option = self.config.option
        # Paths or test ids on the command line, -k, -m, --deselect, --lf: a part of the
        # suite, whose cassettes (shared ones above all) hold entries other tests use.
        named = self.config.args_source is pytest.Config.ArgsSource.ARGS
        filtered = any(
            getattr(option, name, None) for name in ("keyword", "markexpr", "deselect", "lf")
        )
        if named or filtered:
            return [
                "seedcache: --seedcache-prune-unused did nothing: this run selected some "
                "tests only (paths, test ids, -k, -m, --deselect or --lf), so the others' "
                "entries look unused; run the whole suite with it"
            ]
        if session.testsfailed or session.exitstatus != pytest.ExitCode.OK:
            return [
                "seedcache: --seedcache-prune-unused did nothing: the run did not pass, "
                "and a failed test may not have asked for everything it uses"
            ]
        removed = prune_unused(self.consumed)
        total = sum(removed.values())
        lines = [f"seedcache: removed {count(total, 'unused take')}"]
        lines += [f"  {path}: {n}" for path, n in sorted(removed.items()) if n]
        return lines

    def _describe_savings(self) -> str | None:
        """What the run's replays saved, priced now; None when they saved no tokens.

        A replayed suite saves the same from run to run. Loading the price list takes
        about a tenth of a second, more than a hundred replayed tests: what a run saved is
        kept in pytest's cache under a digest of its replays and of the price list's
        version and day, and a run with the same digest reuses it.
        """
        if not self.usage:
            return None
        from .._inspect._savings import describe_saved

        digest = _digest_of(self.usage)
        runs = self._remembered_runs() or {}
        saved = _checked_saving(runs.get(digest))
        if saved is None:
            saved = self._price()
            self._remember(digest, saved, runs)
        tokens, cost, unpriced = saved
        if not tokens:
            return None
        return describe_saved(tokens, cost, unpriced=unpriced)

    def _price(self) -> tuple[int, float | None, bool]:
        from .._inspect._savings import savings_of
        from .._takes._usage import TokenUsage

        saved = savings_of(
            (model, TokenUsage(*counts), times) for (model, counts), times in self.usage.items()
        )
        return saved.tokens, saved.cost_usd, bool(saved.unpriced)

    def _remembered_runs(self) -> dict[str, Any] | None:
        """The savings remembered for today's price list, by digest; None when pytest's
        cache is off or holds none (or something else: it is a folder of the project)."""
        cache = getattr(self.config, "cache", None)
        if cache is None:
            return None
        record = cache.get(_SAVINGS_RECORD, None)
        if not isinstance(record, dict) or record.get("prices") != _price_list_version():
            return None
        runs = record.get("runs")
        return runs if isinstance(runs, dict) else None

    def _remember(
        self, digest: str, saved: tuple[int, float | None, bool], runs: dict[str, Any]
    ) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None:
            return
        tokens, cost, unpriced = saved
        kept = {d: run for d, run in runs.items() if d != digest}
        kept[digest] = {"tokens": tokens, "cost_usd": cost, "unpriced": unpriced}
        # A few runs: a suite, and the parts of it run now and then (-k, a folder).
        kept = dict(list(kept.items())[-_RUNS_REMEMBERED:])
        cache.set(_SAVINGS_RECORD, {"prices": _price_list_version(), "runs": kept})

    def _describe_changes(self) -> str:
        ranked = sorted(self.changes.items(), key=lambda item: -item[1])
        shown = [f"{before} → {after}" for (_, before, after), _ in ranked[:3]]
        models = {model for model, _, _ in self.changes}
        if len(models) > 1:
            shown = [f"{m}: {b} → {a}" for (m, b, a), _ in ranked[:3]]
        more = len(ranked) - len(shown)
        return ", ".join(shown) + (f", +{more} more" if more > 0 else "")

    def _cassette_dir(self) -> str:
        path = self.config.rootpath / self.config.getini("seedcache_dir")
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


_SAVINGS_RECORD = "seedcache/savings"
_RUNS_REMEMBERED = 8


def _digest_of(usage: dict[tuple[str, tuple[int, ...]], int]) -> str:
    """A digest of a run's replays (model, token counts, times): equal runs, equal digests."""
    import json

    import xxhash

    rows = sorted([model, list(counts), times] for (model, counts), times in usage.items())
    return xxhash.xxh3_128_hexdigest(json.dumps(rows, separators=(",", ":")).encode())


def _price_list_version() -> str:
    """The price list's version and today's date (UTC): prices change with either."""
    import datetime
    import importlib.metadata

    try:
        version = importlib.metadata.version("genai-prices")
    except importlib.metadata.PackageNotFoundError:
        version = "-"
    return f"{version}/{datetime.datetime.now(datetime.UTC).date().isoformat()}"


def _checked_saving(found: Any) -> tuple[int, float | None, bool] | None:
    """A remembered saving, if it has the shape and range a real one has."""
    if not isinstance(found, dict):
        return None
    tokens, cost, unpriced = found.get("tokens"), found.get("cost_usd"), found.get("unpriced")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        return None
    if cost is not None and (
        not isinstance(cost, int | float)
        or isinstance(cost, bool)
        or not math.isfinite(cost)
        or cost < 0
    ):
        return None
    if not isinstance(unpriced, bool):
        return None
    return tokens, None if cost is None else float(cost), unpriced


def _load_prices() -> None:
    from .._inspect._savings import price_usd
    from .._takes._usage import TokenUsage

    price_usd("gpt-4o-mini", TokenUsage(input=1))


def prune_unused(consumed: dict[str, dict[str, int]]) -> dict[str, int]:
    """Remove from each cassette what no test asked for (what ``--seedcache-report-unused``
    lists): whole entries, and takes past the last one asked for. A cassette left with
    nothing is removed. How many takes went, per cassette."""
    from .._errors import StoreError
    from .._stores import CassetteStore

    removed: dict[str, int] = {}
    for path, used in consumed.items():
        if not Path(path).exists():
            continue
        try:
            store = CassetteStore(path)
            cut = 0
            with store.batch():
                for summary in list(store.summaries()):
                    keep = used.get(summary.key, 0)
                    if keep >= summary.take_count:
                        continue
                    cut += summary.take_count - keep
                    if keep == 0:
                        store.delete(summary.key)
                    else:
                        store.update(summary.key, functools.partial(_first_takes, keep))
            if not store.keys():
                Path(path).unlink()
        except StoreError:
            continue  # a cassette that cannot be read or written keeps what it has
        removed[path] = cut
    return removed


def _first_takes(keep: int, entry: Entry | None) -> Entry | None:
    return None if entry is None else dataclasses.replace(entry, takes=entry.takes[:keep])


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
