"""``seedcache refresh``: the drift canary, for a nightly job."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from .._cache import DEFAULT_UPSTREAM
from .._errors import SeedCacheError
from .._inspect._recheck import RESENT_ENDPOINTS, LiveAnswer, Recheck, Target, recheck
from .._request._freshness import model_of
from .._stores import Store, redact
from .._stores._location import scrub_credentials
from .._takes._take import requested_model
from .._units import count
from ._app import App, cli, pass_app

__all__: list[str] = []

# How long one re-sent request may take: long streamed answers take minutes.
_TIMEOUT_SECONDS = 600.0


@cli.command("refresh")
@click.option(
    "--base-url",
    metavar="URL",
    envvar="OPENAI_BASE_URL",
    default=DEFAULT_UPSTREAM,
    show_default=True,
    help="Where to send the requests ($OPENAI_BASE_URL if set). Never the host a recording "
    "names: a cassette edited in a pull request must not receive your key.",
)
@click.option("--dry-run", is_flag=True, help="Compare only; write nothing.")
@click.option("--sample", type=click.IntRange(min=1), help="Send at most N requests.")
@click.option("--model", "models", multiple=True, help="Only requests for this model.")
@click.option(
    "--fail-on-change", is_flag=True, help="Exit 1 when any output differs from its recording."
)
@pass_app
def refresh_command(
    app: App,
    base_url: str,
    dry_run: bool,
    sample: int | None,
    models: tuple[str, ...],
    fail_on_change: bool,
) -> None:
    """Re-send recorded requests live; re-record those whose backend changed.

    Each model's answers are compared with what was recorded: the dated model and the
    fingerprint that answered (then → now), and whether the output changed (for seeded
    requests, or where the backend changed: unseeded answers differ every call). Takes
    whose backend is unchanged are left as they are. The key comes from $OPENAI_API_KEY.
    Exits 1 when a request failed or the upstream could not be reached, and with
    --fail-on-change when an output changed.
    """
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        raise click.UsageError(
            "set OPENAI_API_KEY: refresh sends the recorded requests live with it"
        )
    targets = list(_sampled(_targets(app, models), sample))
    if not targets:
        if models:
            raise click.ClickException(
                f"no recorded request for {', '.join(models)} in {app.location}; "
                "`seedcache ls` lists the models"
            )
        click.echo(f"nothing to re-send in {app.location}", err=True)
        return
    base_url = _checked_base_url(base_url)
    where = redact(base_url)
    note = " (dry run: nothing will be written)" if dry_run else ""
    click.echo(f"re-sending {count(len(targets), 'recorded request')} to {where}{note}", err=True)
    with _Sender(api_key, base_url) as sender:
        result = recheck(targets, sender.send, dry_run=dry_run, clock=time.time)
    _print(app, result, dry_run=dry_run)
    if result.stopped is not None:
        raise click.ClickException(result.stopped)
    if result.failed:
        raise click.ClickException(
            f"{count(result.failed, 'request')} got no usable answer: nothing was compared "
            "for them (is the key valid?)"
        )
    if fail_on_change and result.outputs_changed:
        raise click.exceptions.Exit(1)


def _stores(app: App) -> Iterator[Store]:
    """The writable stores to go through: each cassette of a folder, else the store."""
    store = app.store()
    if store.kind != "cassettes":
        yield store
        return
    from .._stores._folder import CassetteFolder

    assert isinstance(store, CassetteFolder)
    for _, cassette in store.cassettes:
        yield cassette


def _targets(app: App, models: tuple[str, ...]) -> Iterator[Target]:
    for store in _stores(app):
        for entry in store.entries():
            for index, take in enumerate(entry.takes):
                if take.status >= 400:
                    continue  # an error names no backend to compare
                requested = requested_model(entry.request)
                if models and model_of(requested, take) not in models and take.model not in models:
                    continue
                yield store, entry, index


def _sampled(targets: Iterator[Target], limit: int | None) -> Iterator[Target]:
    """At most ``limit`` targets, taken in turn from each model so that every one is seen."""
    if limit is None:
        yield from targets
        return
    by_model: dict[str, list[Target]] = {}
    for target in targets:
        _, entry, index = target
        requested = requested_model(entry.request)
        by_model.setdefault(model_of(requested, entry.takes[index]), []).append(target)
    turns = itertools.zip_longest(*by_model.values())
    chosen = (t for turn in turns for t in turn if t is not None)
    yield from itertools.islice(chosen, limit)


def _print(app: App, result: Recheck, *, dry_run: bool) -> None:
    for drift in sorted(result.models.values(), key=lambda d: d.model):
        if not drift.checked:
            continue  # the run stopped before any of its requests was sent
        app.paint.echo(drift.describe())
        for error in drift.errors:
            app.paint.echo(f"  failed: {error}")
    if result.skipped:
        click.echo(
            f"skipped {count(result.skipped, 'request')}: only POSTs with a JSON body to "
            f"{', '.join(sorted(RESENT_ENDPOINTS))} are sent again",
            err=True,
        )
    if dry_run:
        click.echo("dry run: nothing was written", err=True)
    else:
        click.echo(f"re-recorded {count(result.rerecorded, 'take')} in {app.location}", err=True)


def _checked_base_url(base_url: str) -> str:
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(
            f"{scrub_credentials(base_url)!r} is not an http(s) URL such as "
            "https://api.openai.com/v1",
            param_hint="--base-url",
        )
    return base_url


class _Sender:
    """Sends recorded requests with the caller's key, always to ``base_url``."""

    def __init__(self, api_key: str, base_url: str) -> None:
        try:
            import httpx2 as http
        except ImportError:  # openai 1.x and 2.x bring httpx instead
            import httpx as http  # type: ignore[no-redef]
        self._http: Any = http
        self._client: Any = http.Client(timeout=_TIMEOUT_SECONDS)
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._extra = {
            header: value
            for header, variable in (
                ("openai-organization", "OPENAI_ORG_ID"),
                ("openai-project", "OPENAI_PROJECT_ID"),
            )
            if (value := os.environ.get(variable))
        }

    def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> LiveAnswer:
        """Send one request; its answer decoded."""
        target = self._rebased(url)
        headers = {**headers, **self._extra, "authorization": f"Bearer {self._api_key}"}
        try:
            response = self._client.request(method, target, headers=headers, content=body)
            data = response.read()
        except self._http.HTTPError as exc:
            raise SeedCacheError(
                f"could not reach {redact(target)}: {exc}; nothing more was sent (what is "
                "above was compared, and written unless a dry run)"
            ) from None
        return LiveAnswer(response.status_code, list(response.headers.multi_items()), data)

    def _rebased(self, url: str) -> str:
        """The base URL's scheme, host and path, then the recorded endpoint and query.

        Nothing of the recorded scheme or host is used, nor pasted as text: they come from
        a file anyone may have edited, and the request carries the caller's key.
        """
        recorded = urlsplit(url)
        endpoint = "/" + recorded.path.partition("/v1/")[2]
        if endpoint not in RESENT_ENDPOINTS:  # resendable() let only these through
            raise SeedCacheError(f"refusing to send {endpoint!r}: not a generation endpoint")
        base = urlsplit(self._base_url)
        path = base.path.rstrip("/") + endpoint
        # No recorded query either: the generation endpoints take none, and a planted one
        # could reach a gateway's own switches.
        return urlunsplit((base.scheme, base.netloc, path, "", ""))

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()
