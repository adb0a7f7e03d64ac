"""The overview as one self-contained HTML page: inline CSS and SVG, no script, no URL.

It opens from a CI artifact with no network. Everything taken from the store (model
names, fingerprints, generated text) is escaped: a recording is data, never markup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape

from .._takes._take import provider_of_model
from .._units import count, human_bytes, short_count
from ._drift import DeterminismRow, TakeDiff
from ._fingerprints import FingerprintStatus
from ._overview import Overview
from ._savings import describe_saved, dollars

__all__ = ["render_html"]

_WIDTH = 640
_ROW = 22
_LABEL = 150

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#1d2330;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2.2rem;
border-bottom:1px solid #e3e6ec;padding-bottom:.3rem}h3{font-size:1rem;margin:1.2rem 0 .4rem}
.muted{color:#6b7280}.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border:1px solid #e3e6ec;border-radius:8px;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.3rem}table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .8rem;text-align:left;border-bottom:1px solid #f0f1f4}
th{font-weight:600;color:#4b5563}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,Menlo,Consolas,monospace}
.diff{white-space:pre-wrap;border:1px solid #e3e6ec;border-radius:6px;padding:.6rem .8rem;
background:#fafbfc;font:13px/1.5 ui-monospace,Menlo,Consolas,monospace}
del{background:#ffe0e0;color:#9b1c1c;text-decoration:line-through}
ins{background:#dcfce7;color:#166534;text-decoration:none}
svg text{font:12px system-ui,sans-serif;fill:#374151}
"""


def render_html(overview: Overview) -> str:
    """The whole page."""
    stats = overview.stats
    totals = stats.totals
    generated = _when(overview.generated_ms)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>seedcache report: {escape(stats.location)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>seedcache report</h1>",
        f'<p class="muted">{escape(stats.location)} ({escape(stats.kind)}), {generated}</p>',
        '<div class="cards">',
        _card("entries", f"{totals.entries:,}"),
        _card("takes", f"{totals.takes:,}", f"+{totals.history:,} in history"),
        _card("bodies", human_bytes(totals.body_bytes), f"{human_bytes(stats.footprint)} stored"),
        _card(
            "keys refreshed", f"{overview.refreshed_keys:,}", f"{overview.changed_total:,} changed"
        ),
        _card("tokens saved", short_count(overview.savings.tokens), _cost(overview)),
        "</div>",
        _fingerprints_section(overview.fingerprints),
        _determinism_section(overview.determinism.rows),
        _changes_section(overview),
        _savings_section(overview),
        _size_section(overview),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _card(title: str, value: str, note: str = "") -> str:
    extra = f'<span class="muted">{escape(note)}</span>' if note else ""
    return f'<div class="card">{escape(title)}<b>{escape(value)}</b>{extra}</div>'


def _cost(overview: Overview) -> str:
    cost = overview.savings.cost_usd
    if cost is None:
        return "price unknown" if overview.savings.tokens else "no hits recorded"
    return f"≈ {dollars(cost)}" + (" (some models unpriced)" if overview.savings.unpriced else "")


def _fingerprints_section(statuses: list[FingerprintStatus]) -> str:
    out = ['<h2 id="fingerprints">Fingerprints seen live</h2>']
    if not statuses:
        return out[0] + '<p class="muted">No fingerprint recorded or seen live.</p>'
    out.append(
        '<p class="muted">Each bar runs from the first to the last live response that '
        "carried the fingerprint; a new bar is a backend change. Green: current.</p>"
    )
    by_model: dict[str, list[FingerprintStatus]] = defaultdict(list)
    for status in statuses:
        by_model[status.model].append(status)
    for model, rows in sorted(by_model.items()):
        out.append(f"<h3>{escape(model)}</h3>")
        out.append(_timeline(rows))
    return "\n".join(out)


def _timeline(rows: list[FingerprintStatus]) -> str:
    seen = [r for r in rows if r.first_seen_ms is not None and r.last_seen_ms is not None]
    start = min((r.first_seen_ms or 0 for r in seen), default=0)
    end = max((r.last_seen_ms or 0 for r in seen), default=0)
    span = max(end - start, 60_000)
    height = _ROW * len(rows) + 24
    width = _WIDTH - _LABEL - 70
    svg = [f'<svg width="{_WIDTH}" height="{height}" role="img">']
    for row_number, row in enumerate(rows):
        y = row_number * _ROW + 4
        label = escape(row.fingerprint[:22])
        svg.append(f'<text x="0" y="{y + 13}">{label}</text>')
        if row.first_seen_ms is not None and row.last_seen_ms is not None:
            x = _LABEL + width * (row.first_seen_ms - start) / span
            # A sighting is an instant; a bar of at least 2% of the width stays a bar.
            bar = max(width * 0.02, width * (row.last_seen_ms - row.first_seen_ms) / span)
            color = "#16a34a" if row.current else "#9ca3af"
            svg.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{bar:.1f}" height="12" rx="3" '
                f'fill="{color}"><title>{escape(row.fingerprint)}: '
                f"{_when(row.first_seen_ms)} to {_when(row.last_seen_ms)}</title></rect>"
            )
        else:
            svg.append(f'<text x="{_LABEL}" y="{y + 13}" class="muted">only in recordings</text>')
        svg.append(f'<text x="{_WIDTH - 60}" y="{y + 13}">{count(row.takes, "take")}</text>')
    axis = _ROW * len(rows) + 18
    # Within one minute both ends would read the same: then the seconds tell them apart.
    when = _when if end - start >= 60_000 else _when_to_the_second
    svg.append(f'<text x="{_LABEL}" y="{axis}">{when(start) if seen else ""}</text>')
    last = when(end) if seen else ""
    svg.append(f'<text x="{_LABEL + width}" y="{axis}" text-anchor="end">{last}</text>')
    svg.append("</svg>")
    return "".join(svg)


def _determinism_section(rows: Iterable[DeterminismRow]) -> str:
    rows = list(rows)
    out = ['<h2 id="determinism">Same seed, same output?</h2>']
    if not rows:
        return out[0] + '<p class="muted">No seeded request was recorded more than once.</p>'
    out.append(
        '<p class="muted">Pairs of takes of one seeded request: how many gave identical '
        "output, under the same fingerprint and under different ones.</p>"
    )
    for row in rows:
        keys = count(row.keys, "key")
        out.append(f'<h3>{escape(row.model)} <span class="muted">{keys}</span></h3>')
        bars = [
            ("same fingerprint", row.same_identical, row.same_pairs),
            ("different fingerprints", row.different_identical, row.different_pairs),
            ("fingerprint unknown", row.unknown_identical, row.unknown_pairs),
        ]
        svg = [f'<svg width="{_WIDTH}" height="{_ROW * 3 + 4}" role="img">']
        for number, (label, identical, pairs) in enumerate(bars):
            y = number * _ROW + 2
            width = _WIDTH - _LABEL - 120
            share = identical / pairs if pairs else 0.0
            svg.append(f'<text x="0" y="{y + 13}">{label}</text>')
            svg.append(
                f'<rect x="{_LABEL}" y="{y + 3}" width="{width}" height="12" rx="3" '
                'fill="#f3f4f6"/>'
            )
            if pairs:
                svg.append(
                    f'<rect x="{_LABEL}" y="{y + 3}" width="{width * share:.1f}" height="12" '
                    'rx="3" fill="#2563eb"/>'
                )
            text = f"{identical}/{pairs} identical" if pairs else "no pairs"
            svg.append(f'<text x="{_LABEL + width + 8}" y="{y + 13}">{text}</text>')
        svg.append("</svg>")
        out.append("".join(svg))
    return "\n".join(out)


def _changes_section(overview: Overview) -> str:
    out = ['<h2 id="changes">Output changed on refresh</h2>']
    if not overview.changed:
        return out[0] + '<p class="muted">No refreshed key changed its output.</p>'
    shown = len(overview.changed)
    if overview.changed_total > shown:
        out.append(f'<p class="muted">The first {shown} of {overview.changed_total}.</p>')
    for diff in overview.changed:
        out.append(_diff(diff, overview.cassettes.get(diff.key, [])))
    return "\n".join(out)


def _diff(diff: TakeDiff, cassettes: list[str]) -> str:
    spans = []
    for op, text in diff.segments:
        if op == "delete":
            spans.append(f"<del>{escape(text)}</del>")
        elif op == "insert":
            spans.append(f"<ins>{escape(text)}</ins>")
        else:
            spans.append(escape(text))
    where = f"<br>in {escape(', '.join(cassettes))}" if cassettes else ""
    return (
        f"<h3>{escape(diff.request or diff.key[:12])}</h3>"
        f'<p class="muted">key <code>{escape(diff.key[:12])}</code>{where}<br>'
        f"- {escape(diff.a.describe())}<br>+ {escape(diff.b.describe())}</p>"
        f'<div class="diff">{"".join(spans)}</div>'
    )


def _savings_section(overview: Overview) -> str:
    saved = overview.savings
    out = ['<h2 id="saved">Tokens and cost saved</h2>']
    if not saved.models:
        return out[0] + '<p class="muted">No replayed take reported its usage yet.</p>'
    out.append(f"<p>{escape(describe_saved(saved.tokens, saved.cost_usd))} over every session.</p>")
    rows = [
        [
            escape(m.model),
            short_count(m.tokens),
            "price unknown" if m.cost_usd is None else f"${m.cost_usd:,.4f}",
        ]
        for m in saved.models
    ]
    out.append(_table(["model", "tokens", "cost"], rows, numeric=(1, 2)))
    return "\n".join(out)


def _size_section(overview: Overview) -> str:
    totals = overview.stats.totals
    by_model = [
        [escape(model), provider_of_model(model), f"{row[0]:,}", f"{row[1]:,}", human_bytes(row[2])]
        for model, row in sorted(totals.by_model.items())
    ]
    by_endpoint = [
        [escape(name), f"{entries:,}", human_bytes(size)]
        for name, (entries, size) in sorted(overview.endpoints.items())
    ]
    return "\n".join(
        [
            '<h2 id="size">What the cache holds</h2>',
            "<h3>By model</h3>",
            _table(
                ["model", "provider", "entries", "takes", "bodies"], by_model, numeric=(2, 3, 4)
            ),
            "<h3>By endpoint</h3>",
            _table(["endpoint", "entries", "bodies"], by_endpoint, numeric=(1, 2)),
        ]
    )


def _table(headers: list[str], rows: list[list[str]], *, numeric: tuple[int, ...]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _when_to_the_second(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
