"""Looking at recordings: ``ls``, ``show``, ``diff``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .._inspect._catalog import Catalog
from .._inspect._drift import diff_entry, format_time, select_take, take_labels
from .._inspect._prefixes import find_entry
from .._stores._summary import Summary
from .._takes._content import content_of
from .._takes._take import Take, provider_of, provider_of_path
from .._units import human_bytes, printable
from ._app import App, cli, pass_app
from ._filters import Filters, filter_options, moment
from ._render import emit_json, short_time, table

__all__: list[str] = []

_SHORT_KEY = 12
# Rows the table shows unless asked for more: a terminal's worth, read without sorting
# the whole store.
_NEWEST = 50
_SORTS = {
    "recorded": lambda s: (s.recorded_at_ms, s.key),
    "key": lambda s: s.key,
    "model": lambda s: (s.model or "", s.key),
    "size": lambda s: (s.size, s.key),
    "takes": lambda s: (s.take_count, s.key),
}


@cli.command("ls")
@filter_options
@click.option("--since", metavar="WHEN", help="Only takes recorded since WHEN (7d, 2026-11-01).")
@click.option(
    "--sort",
    type=click.Choice(sorted(_SORTS)),
    default="recorded",
    show_default=True,
    help="Order of the rows.",
)
@click.option("--reverse", is_flag=True, help="Reverse the order.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many rows.")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"Show every entry (the table shows the newest {_NEWEST} by default).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (every entry) instead of a table."
)
@pass_app
def ls_command(
    app: App,
    models: tuple[str, ...],
    fingerprints: tuple[str, ...],
    endpoint: str | None,
    since: str | None,
    sort: str,
    reverse: bool,
    limit: int | None,
    show_all: bool,
    as_json: bool,
) -> None:
    """One row per recorded request: endpoint, model, seed, takes, fingerprints, size.

    The table shows the newest entries; --all, --limit or --json show more.
    """
    filters = Filters(
        models=models,
        fingerprints=fingerprints,
        endpoint=endpoint,
        since_ms=None if since is None else moment(since, option="--since"),
    )
    newest = None if show_all or as_json or limit is not None else _NEWEST
    listing = Catalog(app.store()).listing(
        matches=None if filters.empty else filters.entry_matches,
        sort=_SORTS[sort],
        reverse=reverse,
        newest=newest,
    )
    rows = listing.rows if limit is None else listing.rows[:limit]
    if as_json:
        emit_json([_summary_dict(s) for s in rows])
        return
    if not rows:
        message = "nothing recorded" if filters.empty else "no entry matches"
        click.echo(f"{message} in {app.location}", err=True)
        return
    headers = [
        "KEY",
        "PROVIDER",
        "ENDPOINT",
        "MODEL",
        "SEED",
        "TAKES",
        "FINGERPRINTS",
        "RECORDED",
        "SIZE",
    ]
    body = [_summary_row(s) for s in rows]
    right: tuple[int, ...] = (4, 5, 8)
    if any(s.origin is not None for s in rows):  # a folder of cassettes: say which
        headers.append("CASSETTE")
        for row, summary in zip(body, rows, strict=True):
            row.append(summary.origin or "-")
    lines = table(app.paint, headers, body, right=right)
    app.paint.echo("\n".join(lines))
    if listing.total is not None:
        click.echo(
            f"the newest {len(rows)} of {listing.total} entries; --all shows every one", err=True
        )


def _summary_row(summary: Summary) -> list[str]:
    takes = str(summary.take_count)
    if summary.history_count:
        takes += f" +{summary.history_count} replaced"
    return [
        summary.key[:_SHORT_KEY],
        _provider(summary),
        summary.endpoint,
        summary.model or "-",
        "-" if summary.seed is None else str(summary.seed),
        takes,
        ",".join(summary.fingerprints) or "-",
        short_time(summary.recorded_at_ms),
        human_bytes(summary.size),
    ]


def _summary_dict(summary: Summary) -> dict[str, Any]:
    return {
        "key": summary.key,
        "provider": _provider(summary),
        "endpoint": summary.endpoint,
        "model": summary.model,
        "seed": summary.seed,
        "takes": summary.take_count,
        "history": summary.history_count,
        "fingerprints": summary.fingerprints,
        "recorded_at": format_time(summary.recorded_at_ms) if summary.recorded_at_ms else None,
        "size": summary.size,
        **({"cassette": summary.origin} if summary.origin is not None else {}),
    }


def _provider(summary: Summary) -> str:
    return provider_of_path(summary.endpoint.partition(" ")[2])


def _cassettes_holding(app: App, key: str) -> list[str]:
    """The cassettes of a folder that hold ``key`` (none for any other store)."""
    store = app.store()
    if store.kind != "cassettes":
        return []
    return [str(s.origin) for s in store.summaries() if s.key == key]


@cli.command("show")
@click.argument("key")
@click.option("--take", "take_ref", metavar="TAKE", help="Only this take (0, 1, h0, ...).")
@click.option("--raw", is_flag=True, help="Write the take's body bytes exactly as recorded.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show_command(app: App, key: str, take_ref: str | None, raw: bool, as_json: bool) -> None:
    """The request and each take of KEY (a unique prefix is enough)."""
    entry = find_entry(app.store(), key)
    labelled = take_labels(entry)
    if take_ref is not None:
        labelled = [select_take(entry, take_ref)]
    if raw:
        if len(labelled) != 1:
            raise click.UsageError("--raw writes one body: add --take (e.g. --take 0)")
        sys.stdout.buffer.write(labelled[0][1].body)
        sys.stdout.buffer.flush()
        return
    cassettes = _cassettes_holding(app, entry.key)
    if as_json:
        emit_json(
            {
                "key": entry.key,
                "provider": provider_of(entry.request),
                "request": entry.request,
                "takes": [_take_dict(label, t) for label, t in labelled],
                **({"cassettes": cassettes} if cassettes else {}),
            }
        )
        return
    paint = app.paint
    paint.echo(paint("key      ", bold=True) + entry.key)
    if cassettes:
        paint.echo(paint("cassette ", bold=True) + printable(", ".join(cassettes)))
    request = entry.request
    paint.echo(paint("provider ", bold=True) + provider_of(request))
    line = printable(f"{request.get('method')} {request.get('url')}")
    paint.echo(paint("request  ", bold=True) + line)
    for name, value in sorted((request.get("headers") or {}).items()):
        paint.echo(printable(f"         {name}: {value}"))
    if request.get("body") is not None:
        paint.echo(printable(json.dumps(request["body"], indent=2, ensure_ascii=False)))
    ignored = request.get("ignored")
    if isinstance(ignored, list) and ignored:
        fields = printable(", ".join(str(field) for field in ignored))
        paint.echo(f"ignored  {fields} (as sent above, but not part of the key)")
    for label, take in labelled:
        paint.echo()
        content = content_of(take)
        usage = ", ".join(f"{k} {v}" for k, v in content.usage.items()) or "no usage"
        title = f"take {label}" if not label.startswith("h") else f"history {label}"
        facts = printable(
            f"  status {take.status}  fingerprint {take.fingerprint or '-'}  "
            f"model {take.model or '-'}  recorded {format_time(take.recorded_at_ms)}  "
            f"latency {take.latency_ms} ms  {usage}"
        )
        paint.echo(paint(title, bold=True) + facts)
        for line in printable(content.text or "(no text)").splitlines() or [""]:
            paint.echo(f"  {line}")


def _take_dict(label: str, take: Take) -> dict[str, Any]:
    content = content_of(take)
    return {
        "take": label,
        "status": take.status,
        "fingerprint": take.fingerprint,
        "model": take.model,
        "recorded_at": format_time(take.recorded_at_ms),
        "latency_ms": take.latency_ms,
        "headers": dict(take.headers),
        "usage": content.usage,
        "text": content.text,
    }


@cli.command("diff")
@click.argument("key")
@click.argument("takes", nargs=-1, metavar="[TAKE_A TAKE_B]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def diff_command(app: App, key: str, takes: tuple[str, ...], as_json: bool) -> None:
    """Word-level diff of two takes of KEY: removed words red, added green.

    Without TAKE_A TAKE_B: the take refresh replaced last (h0) against the newest take,
    or takes 0 and 1.
    """
    if len(takes) not in (0, 2):
        raise click.UsageError("give two takes to compare (e.g. h0 0), or none")
    entry = find_entry(app.store(), key)
    diff = diff_entry(entry, *takes) if takes else diff_entry(entry)
    cassettes = _cassettes_holding(app, entry.key)
    if as_json:
        emit_json({**diff.as_dict(), **({"cassettes": cassettes} if cassettes else {})})
        return
    if cassettes:
        app.paint.echo(f"cassette {', '.join(cassettes)}")
    for line in diff.render(color=app.paint.enabled).splitlines():
        app.paint.echo(line)
