"""Reports over the whole store: ``stats``, ``fingerprints``, ``determinism``, ``report``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .._inspect._catalog import Catalog
from .._inspect._drift import DeterminismRow
from .._inspect._overview import Overview, gather
from .._inspect._overview_html import render_html
from .._inspect._savings import describe_saved, from_counters, is_saving_counter
from .._request._freshness import RefreshRules, parse_pins
from .._stores import Store, is_redis_location
from .._stores._cassette import write_atomically
from .._stores._registry import Registry
from .._takes._take import provider_of_model
from .._units import count, human_bytes, printable, short_count
from ._app import App, cli, pass_app
from ._render import emit_json, short_time, table

__all__: list[str] = []


@cli.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def stats_command(app: App, as_json: bool) -> None:
    """Entries, takes and bytes, by model and fingerprint; hit and miss totals."""
    report = Catalog(app.store()).stats()
    if as_json:
        emit_json(report.as_dict())
        return
    totals = report.totals
    paint = app.paint
    paint.echo(f"{paint('store', bold=True)}    {report.location} ({report.kind})")
    paint.echo(f"{paint('entries', bold=True)}  {totals.entries}")
    paint.echo(f"{paint('takes', bold=True)}    {totals.takes} (+{totals.history} in history)")
    where = "in Redis" if report.kind == "redis" else "on disk"
    paint.echo(
        f"{paint('bytes', bold=True)}    {human_bytes(totals.body_bytes)} of bodies, "
        f"{human_bytes(report.footprint)} {where}"
    )
    plain = {k: v for k, v in report.counters.items() if not is_saving_counter(k)}
    if plain:
        counted = ", ".join(f"{name} {value}" for name, value in sorted(plain.items()))
        paint.echo(f"{paint('counters', bold=True)} {counted} (all sessions)")
    saved = from_counters(report.counters)
    if saved.tokens:
        said = describe_saved(saved.tokens, saved.cost_usd, unpriced=bool(saved.unpriced))
        paint.echo(f"{paint('saved', bold=True)}    {said.removeprefix('saved ')} (all sessions)")
    if totals.by_model:
        paint.echo()
        rows = [
            [model, provider_of_model(model), str(row[0]), str(row[1]), human_bytes(row[2])]
            for model, row in sorted(totals.by_model.items())
        ]
        headers = ["MODEL", "PROVIDER", "ENTRIES", "TAKES", "BYTES"]
        for line in table(paint, headers, rows, right=(2, 3, 4)):
            paint.echo(line)
        paint.echo()
        rows = [
            [model, fingerprint, str(count)]
            for model, counts in sorted(totals.by_fingerprint.items())
            for fingerprint, count in sorted(counts.items())
        ]
        for line in table(paint, ["MODEL", "FINGERPRINT", "TAKES"], rows, right=(2,)):
            paint.echo(line)
    if saved.models:
        paint.echo()
        rows = [
            [
                m.model,
                short_count(m.tokens),
                "price unknown" if m.cost_usd is None else f"${m.cost_usd:,.4f}",
            ]
            for m in saved.models
        ]
        for line in table(paint, ["MODEL", "TOKENS SAVED", "COST SAVED"], rows, right=(1, 2)):
            paint.echo(line)


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
    store = app.writable_store() if reset else app.store()
    if reset:
        Registry(store).reset()
        click.echo(f"forgot every fingerprint seen live in {store.location}", err=True)
        return
    rules = RefreshRules(Registry(store), clock=time.time, pins=parse_pins(pins or None))
    statuses = Catalog(store).fingerprints(rules)
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
    summary = Catalog(app.store()).determinism()
    if as_json:
        emit_json(summary.as_dict())
        return
    if not summary.rows:
        click.echo("no seeded request was recorded more than once", err=True)
        return
    rows = [_determinism_row(row) for row in (*summary.rows, summary.total)]
    for line in table(app.paint, _DETERMINISM_HEADERS, rows, right=range(1, 8)):
        app.paint.echo(line)


# Pairs of takes of one seeded request, and how many of them were identical, by whether
# the two had the same fingerprint, different ones, or one without.
_DETERMINISM_HEADERS = [
    "MODEL",
    "KEYS",
    "SAME-FP PAIRS",
    "SAME-FP IDENTICAL",
    "OTHER-FP PAIRS",
    "OTHER-FP IDENTICAL",
    "NO-FP PAIRS",
    "NO-FP IDENTICAL",
]


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


# Diffs the text report prints in full; --html and --json carry the rest.
_DIFFS_PRINTED = 10


@cli.command("report")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write one self-contained HTML page (no network needed to open it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@pass_app
def report_command(app: App, html_path: Path | None, as_json: bool) -> None:
    """Fingerprints over time, determinism, outputs changed on refresh, tokens saved, size."""
    store = app.store()
    if html_path is not None:
        _refuse_to_overwrite_recordings(store, html_path)
    overview = gather(Catalog(store))
    if html_path is not None:
        page = render_html(overview).encode()
        write_atomically(html_path, page)
        click.echo(f"wrote {html_path} ({human_bytes(len(page))})", err=True)
        return
    if as_json:
        emit_json(overview.as_dict())
        return
    _print_overview(app, overview)


def _refuse_to_overwrite_recordings(store: Store, target: Path) -> None:
    """A report is written over no recording: not the store, nothing inside a cache
    directory, no file that is a cassette."""
    where = target.resolve()
    if not is_redis_location(store.location):
        location = Path(store.location).resolve()
        if where == location or (location.is_dir() and where.is_relative_to(location)):
            raise click.UsageError(
                f"--html {target} would overwrite recordings in {store.location}; "
                "write the report elsewhere"
            )
    if where.is_file():
        with where.open("rb") as handle:
            start = handle.read(4096)
        if start.lstrip().startswith(b"{") and b'"seedcache"' in start:
            raise click.UsageError(f"--html {target} is a seedcache cassette; write elsewhere")


def _print_overview(app: App, overview: Overview) -> None:
    paint = app.paint
    stats, totals = overview.stats, overview.stats.totals
    paint.echo(f"{paint('store', bold=True)}  {stats.location} ({stats.kind})")
    paint.echo(
        f"{count(totals.entries, 'entry', 'entries')}, {count(totals.takes, 'take')} "
        f"(+{totals.history} in history), "
        f"{human_bytes(totals.body_bytes)} of bodies"
    )
    saved = overview.savings
    if saved.tokens:
        paint.echo(describe_saved(saved.tokens, saved.cost_usd, unpriced=bool(saved.unpriced)))
    paint.echo()
    paint.echo(paint("fingerprints seen live", bold=True))
    rows = [
        [s.model, s.fingerprint, short_time(s.first_seen_ms), short_time(s.last_seen_ms),
         str(s.takes), "yes" if s.current else "no"]
        for s in overview.fingerprints
    ]  # fmt: skip
    headers = ["MODEL", "FINGERPRINT", "FIRST SEEN", "LAST SEEN", "TAKES", "CURRENT"]
    for line in table(paint, headers, rows, right=(4,)) if rows else ["  none"]:
        paint.echo(line)
    paint.echo()
    paint.echo(paint("same seed, same output", bold=True))
    if overview.determinism.rows:
        rows = [_determinism_row(row) for row in overview.determinism.rows]
        headers = _DETERMINISM_HEADERS[:6]
        for line in table(paint, headers, [r[:6] for r in rows], right=range(1, 6)):
            paint.echo(line)
    else:
        paint.echo("  no seeded request was recorded more than once")
    paint.echo()
    paint.echo(
        paint("changed on refresh", bold=True)
        + f"  {overview.changed_total} of {count(overview.refreshed_keys, 'refreshed key')}"
    )
    for diff in overview.changed[:_DIFFS_PRINTED]:
        paint.echo()
        paint.echo(f"  {paint(diff.request or diff.key[:12], bold=True)}")
        where = overview.cassettes.get(diff.key)
        places = printable(", ".join(where)) if where else ""
        paint.echo(f"  key {diff.key[:12]}" + (f"  in {places}" if where else ""))
        for line in diff.render(color=paint.enabled).splitlines():
            paint.echo(f"    {line}")
    if overview.changed_total > _DIFFS_PRINTED:
        more = overview.changed_total - _DIFFS_PRINTED
        paint.echo(f"\n  … and {more} more (--html shows them all; seedcache diff KEY one)")
