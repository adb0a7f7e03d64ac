"""`seedcache report`: the same facts as text, JSON and one self-contained HTML page."""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser

from click.testing import CliRunner

from helpers import MESSAGES, make_client
from seedcache import SeedCache
from seedcache._cli import cli
from seedcache._inspect._catalog import Catalog
from seedcache._inspect._overview import gather
from seedcache._inspect._overview_html import render_html
from seedcache._stores import DiskStore

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time() - 10 * HOUR

    def __call__(self) -> float:
        return self.now


def ask(cache: SeedCache, fake, content: str, seed: int = 123) -> None:
    cache.wrap(make_client(fake)).chat.completions.create(
        model="gpt-4o-mini",
        messages=[*MESSAGES[:1], {"role": "user", "content": content}],
        seed=seed,
    )


def drifted_cache(fake, directory):
    """Two fingerprints over time, two refreshed keys whose output changed, some replays."""
    clock = Clock()
    fake.fingerprint = "fp_a"
    with SeedCache(directory, mode="auto", clock=clock) as cache:
        ask(cache, fake, "mars")
        ask(cache, fake, "venus")
    fake.fingerprint = "fp_b"
    clock.now += 3 * HOUR
    with SeedCache(directory, mode="auto", clock=clock) as cache:
        ask(cache, fake, "jupiter")  # fp_b seen live: fp_a is no longer current
    with SeedCache(directory, mode="refresh", clock=clock) as cache:
        ask(cache, fake, "mars")
        ask(cache, fake, "venus")
        assert cache.stats().refreshed == 2
    with SeedCache(directory, mode="replay", clock=clock) as cache:
        for _ in range(3):
            ask(cache, fake, "jupiter")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.ids.update(value for name, value in attrs if name == "id" and value)

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_report_shows_every_section_and_agrees_with_stats(fake, tmp_path):
    directory = tmp_path / "cache"
    drifted_cache(fake, directory)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--cache-dir", str(directory), "report", "--html", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    page = _Page()
    page.feed(html)
    assert {"fingerprints", "determinism", "changes", "saved", "size"} <= page.ids
    assert page.tags.count("del") >= 2  # the word diffs of both refreshed keys
    assert page.tags.count("ins") >= 2
    assert "svg" in page.tags
    assert not re.search(r"(https?:)?//[a-z0-9]", html, re.IGNORECASE)  # no URL at all
    assert "<script" not in html

    stats = json.loads(
        CliRunner().invoke(cli, ["--cache-dir", str(directory), "stats", "--json"]).stdout
    )
    facts = json.loads(
        CliRunner().invoke(cli, ["--cache-dir", str(directory), "report", "--json"]).stdout
    )
    assert facts["store"]["entries"] == stats["entries"] == 3
    assert facts["store"]["takes"] == stats["takes"]
    assert facts["changed_on_refresh"] == 2
    assert {s["fingerprint"] for s in facts["fingerprints"]} == {"fp_a", "fp_b"}
    assert facts["saved"]["tokens_saved"] == stats["saved"]["tokens_saved"] > 0
    assert facts["saved"]["cost_saved_usd"] > 0
    text = "".join(page.text)
    assert f"{stats['entries']}" in text
    assert "fp_a" in text
    assert "fp_b" in text

    printed = CliRunner().invoke(cli, ["--cache-dir", str(directory), "report"]).stdout
    assert "changed on refresh" in printed
    assert "2 of 2 refreshed keys" in printed


def test_recorded_text_is_escaped_never_markup(tmp_path):
    store = DiskStore(tmp_path / "c")
    from seedcache import Entry, Take

    body = json.dumps(
        {"model": "<script>alert(1)</script>", "choices": [{"message": {"content": "<b>x</b>"}}]}
    ).encode()
    take = Take(200, (("content-type", "application/json"),), body, "fp_<i>", "<img src=x>", 1, 1)
    request = {"method": "POST", "url": "u", "body": {"model": "<img src=x>", "seed": 1}}
    store.update("ab12", lambda _: Entry("ab12", request, (take, take)))
    html = render_html(gather(Catalog(store)))
    store.close()
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;img src=x&gt;" in html


def test_the_report_is_light_and_quick_for_ten_thousand_entries(tmp_path):
    from seedcache import Entry, Take

    store = DiskStore(tmp_path / "big")
    text = "The rocket rose over the red dust. " * 10
    with store.batch():
        for number in range(10_000):
            body = json.dumps(
                {
                    "model": "gpt-4o-mini-2024-07-18",
                    "system_fingerprint": f"fp_{number % 4}",
                    "choices": [{"message": {"content": f"{text}{number % 7}"}}],
                }
            ).encode()
            takes = tuple(
                Take(200, (("content-type", "application/json"),), body, f"fp_{n}", "m", n, 1)
                for n in range(2)
            )
            key = f"{number:032x}"
            request = {"method": "POST", "url": "u", "body": {"model": "m", "seed": number}}
            entry = Entry(key, request, takes)
            store.update(key, lambda _, entry=entry: entry)
    started = time.perf_counter()
    html = render_html(gather(Catalog(store)))
    elapsed = time.perf_counter() - started
    store.close()
    assert len(html.encode()) <= 1_000_000
    print(f"report over 10,000 entries: {elapsed:.2f} s, {len(html.encode())} bytes")
