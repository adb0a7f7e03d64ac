"""What the cache did with one request; travels with the response."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["OUTCOME_EXTENSION", "OUTCOME_HEADER", "Action", "Outcome"]

OUTCOME_EXTENSION = "seedcache"
"""Key of the :class:`Outcome` in ``response.extensions``."""
OUTCOME_HEADER = "x-seedcache"
"""Response header carrying the outcome, visible through ``with_raw_response``."""


class Action(enum.StrEnum):
    """The cache's part in one response."""

    HIT = "hit"
    """Replayed from a recorded take; no network."""
    JOINED = "joined"
    """Waited for an identical request in flight and replayed its take."""
    RECORDED = "recorded"
    """Fetched live and stored as a new take."""
    REFRESHED = "refreshed"
    """Fetched live to replace a take whose backend is no longer served (or too old)."""
    CONFIRMED = "confirmed"
    """Fetched live in ``refresh`` to learn what the model serves now; the backend was
    unchanged, so the recorded take was replayed and kept."""
    PASSTHROUGH = "passthrough"
    """Fetched live and not stored (a retryable error status, or a broken stream)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened: the action, the request's key and the take's index."""

    action: Action
    key: str
    take: int | None = None

    def header_value(self) -> str:
        """``hit; take=0; key=…``: the form used in the response header."""
        take = "" if self.take is None else f"; take={self.take}"
        return f"{self.action.value}{take}; key={self.key}"
