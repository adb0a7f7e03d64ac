"""`seedcache report --html` over 10,000 entries: time to build and size of the page.

Builds a cache of 10,000 seeded entries with two takes under two fingerprints each (so
every section has work: timelines, determinism over 10,000 keys, refreshed keys with
diffs), then builds the page three times. Goals: at most 2 s and 1 MB.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _table import row

from seedcache import DiskStore, Entry, Take
from seedcache._inspect._catalog import Catalog
from seedcache._inspect._overview import gather
from seedcache._inspect._overview_html import render_html

ENTRIES = 2_000 if "--quick" in sys.argv else 10_000
TEXT = "The rocket rose over the red dust and the crew watched the stars. " * 6


def build(directory: Path) -> DiskStore:
    store = DiskStore(directory)
    with store.batch():
        for number in range(ENTRIES):

            def take(fingerprint: str, variant: int, at: int) -> Take:
                body = {
                    "model": "gpt-4o-mini-2024-07-18",
                    "system_fingerprint": fingerprint,
                    "choices": [{"message": {"content": f"{TEXT}{variant}"}}],
                    "usage": {"prompt_tokens": 30, "completion_tokens": 90},
                }
                headers = (("content-type", "application/json"),)
                return Take(200, headers, json.dumps(body).encode(), fingerprint, "m", at, 1)

            key = f"{number:032x}"
            request = {"method": "POST", "url": "u", "body": {"model": "m", "seed": number}}
            takes = (take("fp_b", number % 3, 2_000 + number),)
            history = (take("fp_a", number % 5, 1_000 + number),) if number % 10 == 0 else ()
            entry = Entry(key, request, (*takes, take("fp_a", 0, 1500)), history)
            store.update(key, lambda _, entry=entry: entry)
    return store


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        store = build(Path(temp) / "cache")
        times, size = [], 0
        for _ in range(3):
            started = time.perf_counter()
            page = render_html(gather(Catalog(store)))
            times.append(time.perf_counter() - started)
            size = len(page.encode())
        store.close()
    seconds = statistics.median(times)
    print(f"report over {ENTRIES:,} entries, median of 3")
    print(row(f"build seconds ({seconds:.2f} s)", seconds, "<= 2.0", seconds <= 2.0))
    print(row(f"page megabytes ({size:,} bytes)", size / 1e6, "<= 1.0", size <= 1_000_000))


if __name__ == "__main__":
    main()
