"""Comparing takes: a word-level diff of two, and how deterministic seeded calls were.

The diff follows the cookbook's ``compare_responses`` (removed in red, added in green) at
word rather than line level, beside each side's fingerprint, usage and recording time.
The determinism summary answers the question OpenAI's page leaves open: of the seeded
calls recorded more than once, how often was the output identical under the same
fingerprint, and how often under different ones.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .._errors import NotFoundError, SeedCacheError
from .._stores._summary import Summary
from .._takes._content import Content, content_of
from .._takes._take import Entry, Take
from .._units import count, printable

__all__ = [
    "DeterminismRow",
    "DeterminismSummary",
    "DiffSide",
    "TakeDiff",
    "describe_request",
    "determinism",
    "diff_entry",
    "diff_takes",
    "select_take",
    "take_labels",
]

TakeRef = int | str
"""A take of an entry: ``0``, ``1``, ... for takes in replay order (``-1`` the last);
``"h0"`` for the most recently replaced take kept as history, ``"h1"`` the one before."""

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")
_RED, _GREEN, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[0m"


@dataclass(frozen=True, slots=True)
class DiffSide:
    """One side of a diff: which take, and what it holds."""

    label: str
    take: Take
    content: Content

    def describe(self) -> str:
        """Fingerprint, recording time and token usage on one line."""
        usage = ", ".join(f"{k} {v}" for k, v in self.content.usage.items()) or "no usage"
        return printable(
            f"take {self.label}  fingerprint {self.take.fingerprint or '-'}  "
            f"recorded {format_time(self.take.recorded_at_ms)}  {usage}"
        )


@dataclass(frozen=True, slots=True)
class TakeDiff:
    """A word-level comparison of two takes of one key."""

    key: str
    a: DiffSide
    b: DiffSide
    segments: tuple[tuple[str, str], ...]
    """``("equal" | "delete" | "insert", text)`` in reading order."""
    request: str = ""
    """The request as a person recognises it: endpoint, model, last user message."""

    @property
    def identical(self) -> bool:
        """True when the content (text, tool calls) is the same on both sides."""
        return self.a.content.text == self.b.content.text

    @property
    def fingerprint_changed(self) -> bool:
        """True when both sides have a fingerprint and they differ."""
        a, b = self.a.take.fingerprint, self.b.take.fingerprint
        return a is not None and b is not None and a != b

    def render(self, *, color: bool = False) -> str:
        """The diff as text: red/green when ``color``, else ``[-removed-]{+added+}``."""
        lines = [f"--- {self.a.describe()}", f"+++ {self.b.describe()}", ""]
        if self.identical:
            lines.append("No differences found.")
            return "\n".join(lines)
        out = []
        for op, raw in self.segments:
            text = printable(raw)  # stored text never reaches a terminal raw
            if op == "equal":
                out.append(text)
            elif color:
                out.append(f"{_RED if op == 'delete' else _GREEN}{text}{_RESET}")
            else:
                out.append(f"[-{text}-]" if op == "delete" else f"{{+{text}+}}")
        lines.append("".join(out))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for scripts."""
        return {
            "key": self.key,
            "request": self.request,
            "identical": self.identical,
            "fingerprint_changed": self.fingerprint_changed,
            "a": _side_dict(self.a),
            "b": _side_dict(self.b),
            "segments": [{"op": op, "text": text} for op, text in self.segments],
        }


def _side_dict(side: DiffSide) -> dict[str, Any]:
    return {
        "take": side.label,
        "fingerprint": side.take.fingerprint,
        "model": side.take.model,
        "recorded_at": format_time(side.take.recorded_at_ms),
        "usage": side.content.usage,
        "text": side.content.text,
    }


def diff_takes(key: str, a: tuple[str, Take], b: tuple[str, Take]) -> TakeDiff:
    """Compare two labelled takes word by word."""
    side_a = DiffSide(a[0], a[1], content_of(a[1]))
    side_b = DiffSide(b[0], b[1], content_of(b[1]))
    return TakeDiff(key, side_a, side_b, _word_diff(side_a.content.text, side_b.content.text))


def diff_entry(entry: Entry, a: TakeRef | None = None, b: TakeRef | None = None) -> TakeDiff:
    """Compare two takes of ``entry``; by default what ``refresh`` replaced with its successor.

    Without references: the most recently replaced take (``h0``) against the newest take,
    or, with no history, takes ``0`` and ``1``.
    """
    if (a is None) != (b is None):
        raise SeedCacheError("give two takes to compare, or none for the default pair")
    if a is None or b is None:
        a, b = _default_pair(entry)
    diff = diff_takes(entry.key, select_take(entry, a), select_take(entry, b))
    return replace(diff, request=describe_request(entry.request))


# How much of the user's message names a request in a report line.
_PROMPT_SHOWN = 60


def describe_request(request: dict[str, Any]) -> str:
    """``POST /v1/chat/completions gpt-4o-mini "Generate a short story about…"``."""
    url = str(request.get("url", ""))
    path = url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0]
    body = request.get("body")
    parts = [printable(f"{request.get('method', '?')} /{path}")]
    if isinstance(body, dict):
        model = body.get("model")
        if isinstance(model, str):
            parts.append(printable(model))
        prompt = _last_user_text(body)
        if prompt:
            flat = " ".join(prompt.split())
            if len(flat) > _PROMPT_SHOWN:
                flat = flat[: _PROMPT_SHOWN - 1].rstrip() + "…"
            parts.append(printable(f'"{flat}"'))
    return " ".join(parts)


def _last_user_text(body: dict[str, Any]) -> str:
    """The last thing the user said: chat messages, Responses ``input``, a prompt."""
    for field in ("messages", "input", "prompt", "contents"):
        value = body.get(field)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            for item in reversed(value):
                if isinstance(item, str):
                    return item
                if isinstance(item, dict) and item.get("role", "user") == "user":
                    text = _text_of(item.get("content", item.get("parts")))
                    if text:
                        return text
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if isinstance(t, str))
    return ""


def take_labels(entry: Entry) -> list[tuple[str, Take]]:
    """Every take of ``entry`` with its label: takes in replay order, then history newest first."""
    labelled = [(str(i), t) for i, t in enumerate(entry.takes)]
    labelled += [(f"h{i}", t) for i, t in enumerate(reversed(entry.history))]
    return labelled


def _default_pair(entry: Entry) -> tuple[TakeRef, TakeRef]:
    if entry.history and entry.takes:
        newest = max(range(len(entry.takes)), key=lambda i: entry.takes[i].recorded_at_ms)
        return "h0", newest
    if len(entry.takes) >= 2:
        return 0, 1
    raise SeedCacheError(
        f"key {entry.key} has {count(len(entry.takes), 'take')} and no history: nothing to compare"
    )


def select_take(entry: Entry, ref: TakeRef) -> tuple[str, Take]:
    """The take of ``entry`` that ``ref`` names, with its canonical label."""
    text = str(ref).strip().lower()
    pool, label = entry.takes, text
    if text.startswith("h"):
        pool, text = tuple(reversed(entry.history)), text[1:]
    try:
        index = int(text)
        take = pool[index]
    except (ValueError, IndexError):
        available = ", ".join(label for label, _ in take_labels(entry)) or "none"
        raise NotFoundError(
            f"key {entry.key} has no take {ref!r}; its takes are: {available}"
        ) from None
    if not label.startswith("h") and index < 0:
        label = str(len(pool) + index)
    return label, take


def _word_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    segments: list[tuple[str, str]] = []
    removed, added = "", ""
    for position, (op, a0, a1, b0, b1) in enumerate(opcodes):
        between_changes = 0 < position < len(opcodes) - 1
        if op != "equal":
            removed += "".join(a[a0:a1])
            added += "".join(b[b0:b1])
        elif between_changes and _is_glue(a[a0:a1]):
            # A word or two shared between two changes ("the", ", and") reads as noise;
            # folding it in shows whole phrases replaced.
            removed += "".join(a[a0:a1])
            added += "".join(a[a0:a1])
        else:
            segments.extend(_flush(removed, added))
            removed, added = "", ""
            segments.append(("equal", "".join(a[a0:a1])))
    segments.extend(_flush(removed, added))
    return tuple(segments)


def _is_glue(tokens: list[str]) -> bool:
    return sum(1 for t in tokens if not t.isspace()) <= 2 and "\n" not in "".join(tokens)


def _flush(removed: str, added: str) -> list[tuple[str, str]]:
    return [(op, text) for op, text in (("delete", removed), ("insert", added)) if text]


def format_time(ms: int) -> str:
    """A recording time as UTC ISO 8601 to the second."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- determinism ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeterminismRow:
    """Pairs of takes of seeded requests, by whether fingerprints matched, and how many agreed."""

    model: str
    keys: int = 0
    same_pairs: int = 0
    same_identical: int = 0
    different_pairs: int = 0
    different_identical: int = 0
    unknown_pairs: int = 0
    """Pairs where a side has no fingerprint: nothing says whether the backend changed."""
    unknown_identical: int = 0

    def __add__(self, other: DeterminismRow) -> DeterminismRow:
        return DeterminismRow(
            "all",
            *(getattr(self, f) + getattr(other, f) for f in _COUNTS),
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"model": self.model, **{f: getattr(self, f) for f in _COUNTS}}


_COUNTS = (
    "keys",
    "same_pairs",
    "same_identical",
    "different_pairs",
    "different_identical",
    "unknown_pairs",
    "unknown_identical",
)


@dataclass(frozen=True, slots=True)
class DeterminismSummary:
    """The determinism of seeded requests recorded more than once, per model."""

    rows: tuple[DeterminismRow, ...]

    @property
    def total(self) -> DeterminismRow:
        """All models together."""
        return sum(self.rows, DeterminismRow("all"))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "models": [row.as_dict() for row in self.rows],
            "total": self.total.as_dict(),
        }


def determinism(summaries: Iterable[Summary]) -> DeterminismSummary:
    """Compare every pair of successful takes (history included) of each seeded request.

    Outputs are compared by the content hash each summary keeps, so no body is decoded.
    """
    counts: dict[str, list[int]] = {}
    for summary in summaries:
        if summary.seed is None or summary.take_count + summary.history_count < 2:
            continue
        takes = [t for t in summary.all_takes if t.status == 200]
        if len(takes) < 2:
            continue
        row = counts.setdefault(summary.model or "?", [0] * len(_COUNTS))
        row[0] += 1
        for first, second in itertools.combinations(takes, 2):
            column = _pair_column(first.fingerprint, second.fingerprint)
            row[column] += 1
            row[column + 1] += first.content == second.content
    rows = tuple(DeterminismRow(model, *row) for model, row in sorted(counts.items()))
    return DeterminismSummary(rows)


def _pair_column(a: str | None, b: str | None) -> int:
    if a is None or b is None:
        return 5
    return 1 if a == b else 3
