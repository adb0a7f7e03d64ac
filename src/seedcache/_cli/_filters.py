"""Which entries and takes a command applies to: by model, fingerprint, endpoint and time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from .._errors import ConfigurationError
from .._stores._summary import Summary, TakeFacts
from .._units import parse_duration

__all__ = ["Filters", "filter_options", "moment"]

F = TypeVar("F", bound=Callable[..., Any])


def moment(text: str, *, option: str) -> int:
    """A cut-off in epoch milliseconds: ``7d`` (that long ago) or a date ``2026-11-01``."""
    try:
        span = parse_duration(text, name=option)
    except ConfigurationError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise click.BadParameter(
                f"{text!r} is neither a duration (30d, 12h) nor a date (2026-11-01)",
                param_hint=option,
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return round(parsed.timestamp() * 1000)
    return round((time.time() - span.total_seconds()) * 1000)


@dataclass(frozen=True)
class Filters:
    """Conditions that must all hold; an empty filter matches everything."""

    models: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    endpoint: str | None = None
    since_ms: int | None = None
    before_ms: int | None = None

    @property
    def empty(self) -> bool:
        """True when no condition was given."""
        return self == Filters()

    def take_matches(self, summary: Summary, take: TakeFacts) -> bool:
        """Whether one take of ``summary`` matches every condition."""
        if self.models and summary.model not in self.models and take.model not in self.models:
            return False
        if self.fingerprints and take.fingerprint not in self.fingerprints:
            return False
        if self.endpoint and self.endpoint not in summary.endpoint:
            return False
        if self.since_ms is not None and take.recorded_at_ms < self.since_ms:
            return False
        return self.before_ms is None or take.recorded_at_ms < self.before_ms

    def entry_matches(self, summary: Summary) -> bool:
        """Whether any take of ``summary`` matches (an entry without takes matches no filter)."""
        if self.empty:
            return True
        return any(self.take_matches(summary, t) for t in summary.all_takes)


def filter_options(func: F) -> F:
    """The ``--model``, ``--fingerprint``, ``--endpoint`` options shared by commands."""
    func = click.option(
        "--endpoint", metavar="TEXT", help="Only endpoints containing TEXT, e.g. chat/completions."
    )(func)
    func = click.option(
        "--fingerprint", "fingerprints", multiple=True, metavar="FP", help="Only takes with FP."
    )(func)
    return click.option(
        "--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable)."
    )(func)
