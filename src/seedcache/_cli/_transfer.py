"""Moving recordings between cache directories and cassette files: ``export``, ``import``.

Entries are copied whole by :func:`~seedcache.copy_entries`, so a round trip loses
nothing. A key already at the destination is left alone unless ``--replace``: copying
never destroys a recording silently.
"""

from __future__ import annotations

from pathlib import Path

import click

from .._inspect._prefixes import resolve_key
from .._stores import Store, is_redis_location, redact
from .._stores._copy import Copied, copy_entries
from .._units import count
from ._app import App, cli, open_location, pass_app
from ._render import progress

__all__: list[str] = []


def _copy(source: Store, target: Store, keys: list[str], *, replace: bool) -> Copied:
    return copy_entries(
        source,
        target,
        keys,
        existing="replace" if replace else "skip",
        progress=lambda chosen: progress(chosen, "copying"),
    )


def _same_place(a: str, b: str) -> bool:
    if is_redis_location(a) or is_redis_location(b):
        return redact(a) == redact(b)
    return Path(a).resolve() == Path(b).resolve()


def _check_target(target: str) -> None:
    """A target must say what it is: a directory, a ``.json`` cassette, or a Redis URL."""
    if is_redis_location(target):
        return
    path = Path(target)
    if path.is_dir() or path.suffix.lower() == ".json" or (not path.suffix and not path.exists()):
        return
    raise click.UsageError(
        f"TARGET {target!r} is neither a cache directory nor a .json cassette: give a "
        "directory (it is created if missing), a file name ending in .json, or a redis:// URL"
    )


def _report(copied: int, skipped: int, destination: str) -> None:
    click.echo(f"copied {count(copied, 'entry', 'entries')} to {destination}", err=True)
    if skipped:
        click.echo(
            f"left {count(skipped, 'entry', 'entries')} already there untouched "
            "(--replace overwrites them)",
            err=True,
        )


@cli.command("export")
@click.argument("target", metavar="TARGET")
@click.option("--model", "models", multiple=True, metavar="MODEL", help="Only this model.")
@click.option("--key", "keys", multiple=True, metavar="KEY", help="Only this key (prefix).")
@click.option("--replace", is_flag=True, help="Overwrite entries the target already has.")
@pass_app
def export_command(
    app: App, target: str, models: tuple[str, ...], keys: tuple[str, ...], replace: bool
) -> None:
    """Copy recordings to TARGET: a .json cassette file, a cache directory or a redis:// URL."""
    _check_target(target)
    source = app.store()
    if _same_place(source.location, str(target)):
        raise click.UsageError("TARGET is the store being exported")
    listed = [s.key for s in source.summaries() if not models or s.model in models]
    chosen = list(dict.fromkeys(listed))
    if len(chosen) < len(listed):
        # A folder of cassettes: one request recorded by several tests is one entry.
        click.echo(
            f"{count(len(listed) - len(chosen), 'entry', 'entries')} shared by several "
            "cassettes: copied once each, from the cassette refreshed or recorded last",
            err=True,
        )
    if keys:
        known = source.keys()
        wanted = {resolve_key(k, known, location=source.location) for k in keys}
        chosen = [k for k in chosen if k in wanted]
    destination = open_location(target, create=True)
    try:
        copied, skipped = _copy(source, destination, chosen, replace=replace)
    finally:
        destination.close()
    _report(copied, skipped, destination.location)


@cli.command("import")
@click.argument("source", metavar="SOURCE")
@click.option("--replace", is_flag=True, help="Overwrite entries this store already has.")
@pass_app
def import_command(app: App, source: str, replace: bool) -> None:
    """Copy recordings from SOURCE (a .json cassette, a cache directory or a redis:// URL)."""
    origin = open_location(source)
    try:
        folder = app.cassette is not None and app.cassette.is_dir()
        target = app.writable_store() if folder else app.store(create=True)
        if _same_place(origin.location, target.location):
            raise click.UsageError("SOURCE is the store being imported into")
        copied, skipped = _copy(origin, target, origin.keys(), replace=replace)
    finally:
        origin.close()
    _report(copied, skipped, target.location)
