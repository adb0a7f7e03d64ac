"""The `seedcache` command group: global options, opening the store, one-line errors."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .. import _settings as settings
from .._cache import DEFAULT_DIR
from .._errors import SeedCacheError, StoreError
from .._settings import DEBUG_ENV_VAR, DIR_ENV_VAR
from .._stores import Store, is_redis_location, open_store, redact
from ._render import Painter

__all__ = ["App", "cli", "open_location", "pass_app"]


@dataclass
class App:
    """What every command gets: where the store is, how to print."""

    cache_dir: str | None
    cassette: Path | None
    paint: Painter
    _store: Store | None = field(default=None, init=False)

    @property
    def location(self) -> str:
        """The cache directory, cassette file or Redis URL (without credentials), as given."""
        location = str(self.cassette or self.cache_dir)
        return redact(location) if is_redis_location(location) else location

    def store(self, *, create: bool = False, tolerate_broken: bool = False) -> Store:
        """The store, opened once; missing ones are an error unless ``create``.

        ``tolerate_broken`` opens a cassette whose entries do not all decode (for verify).
        A folder given as ``--cassette`` is every cassette in it, read-only.
        """
        if self._store is None:
            if self.cassette is not None and self.cassette.is_dir():
                from .._stores._folder import CassetteFolder

                # Named as a cassette: every cassette in it, even an empty folder.
                self._store = CassetteFolder(self.cassette)
            else:
                self._store = open_location(
                    self.cassette or self.cache_dir, create=create, tolerate_broken=tolerate_broken
                )
        return self._store

    def writable_store(self, *, dry_run: bool = False) -> Store:
        """The store, for a command that changes it: refused up front when it cannot be
        changed (a folder of cassettes), before anything is listed or asked."""
        store = self.store()
        if not dry_run and store.kind == "cassettes":
            raise click.ClickException(
                f"{self.location} is a folder of cassettes, read-only here; give a file "
                f"(--cassette {self.location}/NAME.json)"
            )
        return store

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None


def open_location(
    location: str | Path | None, *, create: bool = False, tolerate_broken: bool = False
) -> Store:
    """The store ``location`` names (:func:`~seedcache._stores.open_store`'s table).

    Reading commands never create anything: a mistyped path is an error, not a new empty
    cache.
    """
    if location is None:
        raise click.UsageError("no store given")
    try:
        return open_store(location, create=create, tolerate_broken=tolerate_broken)
    except StoreError as exc:
        if not create and "no cache directory" in str(exc):
            raise SeedCacheError(
                f"{exc}; give --cache-dir (or set {DIR_ENV_VAR}) or --cassette FILE"
            ) from None
        raise


class _Group(click.Group):
    """Runs a command and turns any failure into one line on stderr and an exit code.

    1: the command could not do what was asked (missing store, unknown key, corrupt entry).
    2: the command line itself was wrong (click's usage errors).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_store_options(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except SeedCacheError as exc:
            raise click.ClickException(_one_line(exc)) from None
        except BrokenPipeError:
            # The reader (`| head`) has gone: stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}") from None
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was kept", err=True)
            sys.exit(130)
        except Exception as exc:
            if settings.debug():
                raise
            raise click.ClickException(
                f"unexpected error: {type(exc).__name__}: {_one_line(exc)} "
                f"(set {DEBUG_ENV_VAR}=1 to see where; please report it)"
            ) from None


# Options of the group that take a value; --cache-dir and --cassette may also follow the
# command (`seedcache ls --cache-dir X`), as users type them.
_VALUED = frozenset({"--cache-dir", "--cassette", "--color"})
_STORE_OPTIONS = ("--cache-dir", "--cassette")


def hoist_store_options(args: list[str]) -> list[str]:
    """``args`` with any --cache-dir/--cassette after the command moved before it."""
    position = 0
    while position < len(args):
        word = args[position]
        if word == "--" or not word.startswith("-"):
            break
        position += 2 if word in _VALUED else 1
    if position >= len(args) or args[position] == "--":
        return args
    before, command, after = args[:position], args[position], args[position + 1 :]
    moved: list[str] = []
    kept: list[str] = []
    index = 0
    while index < len(after):
        word = after[index]
        if word == "--":
            kept.extend(after[index:])
            break
        if word in _STORE_OPTIONS and index + 1 < len(after):
            moved.extend(after[index : index + 2])
            index += 2
            continue
        if word.startswith(tuple(f"{name}=" for name in _STORE_OPTIONS)):
            moved.append(word)
        else:
            kept.append(word)
        index += 1
    return [*before, *moved, command, *kept]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = text.splitlines()
    return lines[0] if len(lines) == 1 else f"{lines[0]} (…)"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--cache-dir",
    metavar="DIR|URL",
    envvar=DIR_ENV_VAR,
    show_envvar=True,
    help=f"The cache directory, or a redis:// URL [default: {DEFAULT_DIR}].",
)
@click.option(
    "--cassette",
    type=click.Path(path_type=Path),
    help="A cassette file instead of the cache directory; a folder reads every cassette "
    "in it (read-only).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour output; auto means on a terminal unless NO_COLOR is set.",
)
@click.version_option(package_name="seedcache")
@click.pass_context
def cli(ctx: click.Context, cache_dir: str | None, cassette: Path | None, color: str) -> None:
    """See, compare and manage what seedcache recorded.

    Works on the cache directory (--cache-dir, $SEEDCACHE_DIR, else .seedcache), on one
    cassette file (--cassette FILE), or on every cassette of a folder (--cassette DIR).
    """
    if (
        cassette is not None
        and cache_dir is not None
        and ctx.get_parameter_source("cache_dir") is click.core.ParameterSource.COMMANDLINE
    ):
        raise click.UsageError("give --cache-dir or --cassette, not both")
    app = App(
        cache_dir=None if cassette is not None else (cache_dir or DEFAULT_DIR),
        cassette=cassette,
        paint=Painter(color),
    )
    ctx.obj = app
    ctx.call_on_close(app.close)
    ctx.call_on_close(_show_warnings())


class _ClickHandler(logging.Handler):
    """seedcache's warnings (a damaged entry skipped…) as one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


def _show_warnings() -> Callable[[], None]:
    """Print warnings while the command runs; returns what stops that."""
    logger = logging.getLogger("seedcache")
    handler = _ClickHandler(logging.WARNING)
    logger.addHandler(handler)
    return lambda: logger.removeHandler(handler)


pass_app = click.make_pass_decorator(App)
