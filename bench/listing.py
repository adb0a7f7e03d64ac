"""`seedcache ls` and `stats` on a big cache: the summary index against decoding every entry.

Builds a cache of N entries (default 100,000; `--quick`: 10,000) with chat-sized bodies,
then times, alternating in each round: the `ls` and `stats` commands end to end (in
process, output discarded), and the naive way of listing (decode every entry, as a cache
without an index must). Prints medians and the ratio naive / index.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from seedcache import DiskStore, Entry, Take
from seedcache._cli import cli
from seedcache._index import summarize

QUICK = "--quick" in sys.argv
ENTRIES = 10_000 if QUICK else 100_000
ROUNDS = 3


def build(directory: Path) -> None:
    store = DiskStore(directory)
    text = "The rocket rose over the red dust. " * 20
    with store.batch():
        for number in range(ENTRIES):
            body = {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 31, "completion_tokens": 200, "total_tokens": 231},
                "system_fingerprint": f"fp_{number % 3}",
            }
            key = f"{number:032x}"
            entry = Entry(
                key,
                {
                    "method": "POST",
                    "url": "https://api.openai.com/v1/chat/completions",
                    "body": {"model": "gpt-4o-mini", "seed": number, "messages": []},
                },
                [
                    Take(
                        200,
                        (("content-type", "application/json"),),
                        json.dumps(body, indent=2).encode(),
                        f"fp_{number % 3}",
                        "gpt-4o-mini-2024-07-18",
                        1_790_000_000_000 + number,
                        400,
                    )
                ],
            )
            store.update(key, lambda _, entry=entry: entry)
    store.close()


def run_command(directory: Path, command: str) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        cli(["--cache-dir", str(directory), command], standalone_mode=False)
    return time.perf_counter() - started


def naive_listing(directory: Path) -> float:
    started = time.perf_counter()
    store = DiskStore(directory)
    rows = [summarize(entry) for entry in store.entries()]
    store.close()
    assert len(rows) == ENTRIES
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp) / "cache"
        started = time.perf_counter()
        build(directory)
        print(f"built {ENTRIES} entries in {time.perf_counter() - started:.1f} s")
        times: dict[str, list[float]] = {"ls": [], "stats": [], "decode every entry": []}
        for _ in range(ROUNDS):
            times["ls"].append(run_command(directory, "ls"))
            times["stats"].append(run_command(directory, "stats"))
            times["decode every entry"].append(naive_listing(directory))
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"listing {ENTRIES} entries, median of {ROUNDS} rounds")
        for name, seconds in medians.items():
            print(f"  {name:<20} {seconds:7.2f} s")
        naive = medians["decode every entry"]
        print(f"  ratio decode-every-entry / ls:    {naive / medians['ls']:.1f}x")
        print(f"  ratio decode-every-entry / stats: {naive / medians['stats']:.1f}x")


if __name__ == "__main__":
    main()
