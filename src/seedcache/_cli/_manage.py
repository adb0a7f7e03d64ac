"""Removing recordings and checking them: ``rm``, ``prune``, ``verify``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import click

from .._inspect._catalog import Catalog
from .._inspect._prefixes import resolve_key
from .._stores._summary import Summary, summarize, take_facts
from .._takes._take import Entry, Take
from .._units import count
from ._app import App, cli, pass_app
from ._filters import Filters, filter_options, moment
from ._render import emit_json, progress

__all__: list[str] = []


def _confirm(question: str, *, yes: bool) -> None:
    if not yes:
        click.confirm(question, abort=True, err=True)


@cli.command("rm")
@click.argument("keys", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def rm_command(app: App, keys: tuple[str, ...], dry_run: bool, yes: bool) -> None:
    """Remove the entries KEY... (unique prefixes are enough) with all their takes."""
    store = app.writable_store(dry_run=dry_run)
    known = store.keys()
    chosen = list(dict.fromkeys(resolve_key(k, known, location=store.location) for k in keys))
    for key in chosen:
        click.echo(f"{'would remove' if dry_run else 'remove'} {key}")
    if dry_run:
        return
    _confirm(f"Remove {count(len(chosen), 'entry', 'entries')}?", yes=yes)
    with store.batch():
        for key in chosen:
            store.delete(key)
    click.echo(f"removed {len(chosen)} entr{'y' if len(chosen) == 1 else 'ies'}", err=True)


@dataclass(frozen=True)
class _Cut:
    """What pruning one entry removes."""

    key: str
    takes: int
    whole: bool


@cli.command("prune")
@click.option("--older-than", metavar="AGE", help="Takes recorded before AGE ago (30d) or a date.")
@filter_options
@click.option("--all", "everything", is_flag=True, help="Every entry.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print what was (or would be) removed as JSON."
)
@pass_app
def prune_command(
    app: App,
    older_than: str | None,
    models: tuple[str, ...],
    fingerprints: tuple[str, ...],
    endpoint: str | None,
    everything: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Remove takes matching every given condition; an entry left without takes goes too.

    History takes that match are removed as well.
    """
    filters = Filters(
        models=models,
        fingerprints=fingerprints,
        endpoint=endpoint,
        before_ms=None if older_than is None else moment(older_than, option="--older-than"),
    )
    if everything == (not filters.empty):
        raise click.UsageError(
            "say what to prune: --older-than, --fingerprint, --model, --endpoint, or --all"
        )
    store = app.writable_store(dry_run=dry_run)
    cuts = [cut for s in store.summaries() if (cut := _plan(s, filters)) is not None]
    removed_takes = sum(c.takes for c in cuts)
    whole = sum(c.whole for c in cuts)
    verb = "would remove" if dry_run else "removing"
    report = (
        f"{verb} {count(removed_takes, 'take')} from {count(len(cuts), 'entry', 'entries')}, "
        f"{whole} entirely"
    )
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "takes": removed_takes,
                "entries": len(cuts),
                "entries_removed": whole,
                "keys": [c.key for c in cuts],
            }
        )
    else:
        click.echo(report, err=True)
        if dry_run:
            for cut in cuts:
                what = "entry" if cut.whole else count(cut.takes, "take")
                click.echo(f"  {cut.key}  {what}")
    if dry_run or not cuts:
        return
    _confirm(f"Remove {count(removed_takes, 'take')}?", yes=yes)
    with store.batch():
        for cut in progress(cuts, "pruning"):
            store.update(cut.key, lambda entry: _prune(entry, filters))
    if not as_json:
        click.echo("done", err=True)


def _plan(summary: Summary, filters: Filters) -> _Cut | None:
    if filters.empty:
        return _Cut(summary.key, len(summary.all_takes), whole=True)
    matching = [t for t in summary.all_takes if filters.take_matches(summary, t)]
    if not matching:
        return None
    left = [t for t in summary.takes if not filters.take_matches(summary, t)]
    return _Cut(summary.key, len(matching), whole=not left)


def _prune(entry: Entry | None, filters: Filters) -> Entry | None:
    if entry is None or filters.empty:
        return None
    summary = summarize(entry)

    def kept(takes: tuple[Take, ...]) -> tuple[Take, ...]:
        return tuple(t for t in takes if not filters.take_matches(summary, take_facts(t)))

    pruned = dataclasses.replace(entry, takes=kept(entry.takes), history=kept(entry.history))
    return pruned if pruned.takes else None


@cli.command("verify")
@click.option("--fix", is_flag=True, help="Remove the entries that cannot be decoded.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def verify_command(app: App, fix: bool, as_json: bool) -> None:
    """Decode every take; report the ones that fail. Exit 1 when any is left broken."""
    check = Catalog(app.store(tolerate_broken=True)).verify(fix=fix)
    checked, broken, foreign = check.checked, check.broken, check.foreign
    fixed = check.fixed
    if as_json:
        emit_json(
            {
                "checked": checked,
                "broken": [{"where": w, "error": e} for w, e in broken],
                "foreign_rows": foreign,
                "fixed": fixed,
            }
        )
    else:
        for where, error in broken:
            click.echo(f"{'removed' if fix else 'broken'}  {where}: {error}")
        if foreign:
            click.echo(
                f"{count(foreign, 'row')} not written by seedcache (pickled data); they are never "
                "read. Remove the directory if you do not know where they came from.",
                err=True,
            )
        click.echo(
            f"checked {count(checked, 'entry', 'entries')}: {len(broken)} broken"
            + (", removed" if fixed else ""),
            err=True,
        )
    if broken and not fix:
        raise SystemExit(1)
