"""Reports over the whole store: ``stats``, ``fingerprints``, ``determinism``."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click

from .._counters import COUNTERS_META, read_counters
from .._drift import DeterminismRow, determinism
from .._fingerprints import Currency, Registry, fingerprint_statuses, parse_pins
from .._stores import DiskStore
from ._app import App, cli, pass_app
from ._render import emit_json, human_bytes, progress, short_time, table

__all__: list[str] = []


@cli.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def stats_command(app: App, as_json: bool) -> None:
    """Entries, takes and bytes, by model and fingerprint; hit and miss totals."""
    store = app.store()
    entries = takes = history = body_bytes = 0
    by_model: Counter[tuple[str, str]] = Counter()
    by_fingerprint: Counter[tuple[str, str]] = Counter()
    model_entries: Counter[str] = Counter()
    for summary in store.summaries():
        entries += 1
        takes += summary.take_count
        history += summary.history_count
        body_bytes += summary.size
        model = summary.model or "-"
        model_entries[model] += 1
        for take in summary.all_takes:
            by_model[model, "takes"] += 1
            by_model[model, "bytes"] += take.size
            by_fingerprint[take.model or model, take.fingerprint or "-"] += 1
    counters = read_counters(store.get_meta(COUNTERS_META))
    disk_bytes = _disk_bytes(Path(store.location))
    if as_json:
        emit_json(
            {
                "location": store.location,
                "entries": entries,
                "takes": takes,
                "history": history,
                "body_bytes": body_bytes,
                "disk_bytes": disk_bytes,
                "models": [
                    {
                        "model": m,
                        "entries": n,
                        "takes": by_model[m, "takes"],
                        "bytes": by_model[m, "bytes"],
                    }
                    for m, n in sorted(model_entries.items())
                ],
                "fingerprints": [
                    {"model": m, "fingerprint": fp, "takes": n}
                    for (m, fp), n in sorted(by_fingerprint.items())
                ],
                "counters": counters,
            }
        )
        return
    paint = app.paint
    kind = "cache directory" if isinstance(store, DiskStore) else "cassette"
    paint.echo(f"{paint('store', bold=True)}    {store.location} ({kind})")
    paint.echo(f"{paint('entries', bold=True)}  {entries}")
    paint.echo(f"{paint('takes', bold=True)}    {takes} (+{history} in history)")
    paint.echo(
        f"{paint('bytes', bold=True)}    {human_bytes(body_bytes)} of bodies, "
        f"{human_bytes(disk_bytes)} on disk"
    )
    if counters:
        totals = ", ".join(f"{name} {value}" for name, value in sorted(counters.items()))
        paint.echo(f"{paint('counters', bold=True)} {totals} (all sessions)")
    if model_entries:
        paint.echo()
        rows = [
            [m, str(n), str(by_model[m, "takes"]), human_bytes(by_model[m, "bytes"])]
            for m, n in sorted(model_entries.items())
        ]
        for line in table(paint, ["MODEL", "ENTRIES", "TAKES", "BYTES"], rows, right=(1, 2, 3)):
            paint.echo(line)
        paint.echo()
        rows = [[m, fp, str(n)] for (m, fp), n in sorted(by_fingerprint.items())]
        for line in table(paint, ["MODEL", "FINGERPRINT", "TAKES"], rows, right=(2,)):
            paint.echo(line)


def _disk_bytes(location: Path) -> int:
    if location.is_file():
        return location.stat().st_size
    return sum(p.stat().st_size for p in location.rglob("*") if p.is_file())


@cli.command("fingerprints")
@click.option(
    "--pin",
    "pins",
    multiple=True,
    metavar="FP",
    help="Count FP as current (repeatable; default $SEEDCACHE_FINGERPRINTS).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--reset",
    is_flag=True,
    help="Forget every fingerprint seen live (recorded takes stay); refresh learns anew.",
)
@pass_app
def fingerprints_command(app: App, pins: tuple[str, ...], as_json: bool, reset: bool) -> None:
    """Per model: the fingerprints seen live, first and last seen, takes; which are current."""
    store = app.store()
    if reset:
        Registry(store).reset()
        click.echo(f"forgot every fingerprint seen live in {store.location}", err=True)
        return
    currency = Currency(Registry(store), clock=time.time, pins=parse_pins(pins or None))
    recorded = (
        (take.model or summary.model, take.fingerprint)
        for summary in store.summaries()
        for take in summary.all_takes
    )
    statuses = fingerprint_statuses(currency, recorded)
    if as_json:
        emit_json([s.as_dict() for s in statuses])
        return
    if not statuses:
        click.echo(f"no fingerprint recorded or seen live in {store.location}", err=True)
        return
    rows = [
        [
            s.model,
            s.fingerprint,
            short_time(s.first_seen_ms),
            short_time(s.last_seen_ms),
            str(s.takes),
            app.paint("yes", fg="green") if s.current else "no",
        ]
        for s in statuses
    ]
    headers = ["MODEL", "FINGERPRINT", "FIRST SEEN", "LAST SEEN", "TAKES", "CURRENT"]
    for line in table(app.paint, headers, rows, right=(4,)):
        app.paint.echo(line)


@cli.command("determinism")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def determinism_command(app: App, as_json: bool) -> None:
    """For seeded requests recorded more than once: how often the outputs were identical.

    Every pair of takes of a key counts once: under the same fingerprint, under different
    ones, or unknown (a side without a fingerprint).
    """
    store = app.store()
    keys = [
        s.key
        for s in store.summaries()
        if s.seed is not None and s.take_count + s.history_count > 1
    ]
    entries = (
        entry for key in progress(keys, "comparing takes") if (entry := store.get(key)) is not None
    )
    summary = determinism(entries)
    if as_json:
        emit_json(summary.as_dict())
        return
    if not summary.rows:
        click.echo("no seeded request was recorded more than once", err=True)
        return
    headers = [
        "MODEL",
        "KEYS",
        "SAME FP",
        "IDENTICAL",
        "DIFFERENT FP",
        "IDENTICAL",
        "NO FP",
        "IDENTICAL",
    ]
    rows = [_determinism_row(row) for row in (*summary.rows, summary.total)]
    for line in table(app.paint, headers, rows, right=range(1, 8)):
        app.paint.echo(line)


def _determinism_row(row: DeterminismRow) -> list[str]:
    return [
        row.model,
        str(row.keys),
        str(row.same_pairs),
        _share(row.same_identical, row.same_pairs),
        str(row.different_pairs),
        _share(row.different_identical, row.different_pairs),
        str(row.unknown_pairs),
        _share(row.unknown_identical, row.unknown_pairs),
    ]


def _share(part: int, whole: int) -> str:
    if not whole:
        return "-"
    return f"{part} ({100 * part / whole:.0f}%)"
