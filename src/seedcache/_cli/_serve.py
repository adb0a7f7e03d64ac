"""``seedcache serve``: the record/replay proxy in the foreground."""

from __future__ import annotations

import warnings

import click

from .._cache import DEFAULT_UPSTREAM, SeedCache
from .._errors import ExposedProxyWarning
from .._inspect._savings import describe_saved
from .._request._modes import Mode
from .._serve import is_loopback
from .._units import count
from ._app import App, cli, pass_app

__all__: list[str] = []


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port (0: any free one).")
@click.option(
    "--upstream",
    default=DEFAULT_UPSTREAM,
    show_default=True,
    help="The API that misses are fetched from.",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    envvar="SEEDCACHE_MODE",
    default="auto",
    show_default=True,
    help="replay, auto, record or refresh.",
)
@click.option(
    "--repeats",
    type=click.Choice(["first", "takes"]),
    default="first",
    show_default=True,
    help="first: identical requests all replay the first take; "
    "takes: the n-th identical request replays take n.",
)
@click.option(
    "--match-host/--no-match-host",
    default=True,
    show_default=True,
    help="Whether the upstream's scheme and host are part of keys; --no-match-host "
    "replays recordings made against another base URL.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="FIELD",
    help="A request body field left out of keys, as a dotted path (repeatable), "
    "e.g. --ignore user --ignore metadata.session.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header is NAME (repeatable). On loopback, only "
    "loopback names are answered otherwise.",
)
@click.option(
    "--max-body",
    "max_body",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    metavar="MIB",
    help="The largest request body taken, in MiB; larger ones get 413, unread.",
)
@pass_app
def serve_command(
    app: App,
    host: str,
    port: int,
    upstream: str,
    mode: str,
    repeats: str,
    match_host: bool,
    ignore: tuple[str, ...],
    allow_hosts: tuple[str, ...],
    max_body: int,
) -> None:
    """An OpenAI-compatible proxy on loopback: set OPENAI_BASE_URL to the URL it prints.

    Every client that honours OPENAI_BASE_URL (any SDK, curl) records and replays through
    the cache. Clients send their own API key; it is forwarded on a miss, never stored.
    Stop with Ctrl-C: responses in flight finish and are stored first.
    """
    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}: anyone who can reach it can spend your API key "
            "through the cache and read what it recorded",
            err=True,
        )
    cache = SeedCache(
        mode=mode,
        store=app.store(create=True),
        match_host=match_host,
        ignore=ignore,
        miss_advice="to record it, run the proxy with --mode auto and send the request again.",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExposedProxyWarning)  # said above, in CLI words
        proxy = cache.proxy_server(
            upstream,
            host=host,
            port=port,
            repeats=repeats,
            allow_hosts=allow_hosts,
            max_body_bytes=max_body * 1024 * 1024,
        )
    doing = "replaying from" if mode == Mode.REPLAY.value else "recording into"
    click.echo(f"seedcache proxy ({mode}) for {upstream}, {doing} {app.location}", err=True)
    click.echo(f"export OPENAI_BASE_URL={proxy.base_url}")
    try:
        proxy.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal it handled; stopping is what was asked
    finally:
        cache.close()
    stats = cache.stats()
    saved = cache.savings()
    summary = (
        f"stopped: {count(stats.hits, 'hit')}, {stats.recorded} recorded, "
        f"{count(stats.misses, 'miss', 'misses')}"
    )
    if saved.tokens:
        summary += "; " + describe_saved(
            saved.tokens, saved.cost_usd, unpriced=bool(saved.unpriced)
        )
    click.echo(summary, err=True)
