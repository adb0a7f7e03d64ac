"""`seedcache ls` and `stats` on a big cache: the summary index against decoding every entry.

Builds a cache of N entries (default 100,000; `--quick`: 10,000) with chat-sized bodies,
then times, alternating in each round: `ls` (the newest 50), `ls --all`, and `stats`
end to end (in process, output discarded), and the naive way of listing (decode every
entry, as a cache without an index must). Prints medians, the ratios naive / command,
and the goals: `stats` within 0.2 s and `ls` within 0.3 s on 100,000 entries.
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
from seedcache._stores._summary import summarize

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


def run_command(directory: Path, *command: str) -> float:
    started = time.perf_counter()
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.suppress(SystemExit),
    ):
        cli(["--cache-dir", str(directory), *command], standalone_mode=False)
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
        times: dict[str, list[float]] = {
            "ls": [],
            "ls --all": [],
            "stats": [],
            "decode every entry": [],
        }
        for _ in range(ROUNDS):
            times["ls"].append(run_command(directory, "ls"))
            times["ls --all"].append(run_command(directory, "ls", "--all"))
            times["stats"].append(run_command(directory, "stats"))
            times["decode every entry"].append(naive_listing(directory))
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"listing {ENTRIES} entries, median of {ROUNDS} rounds")
        for name, seconds in medians.items():
            print(f"  {name:<20} {seconds:7.2f} s")
        naive = medians["decode every entry"]
        for name in ("ls", "ls --all", "stats"):
            print(f"  ratio decode-every-entry / {name + ':':<10} {naive / medians[name]:7.1f}x")
        print(f"  goal: stats <= 0.2 s ({'met' if medians['stats'] <= 0.2 else 'missed'})")
        print(f"  goal: ls (newest 50) <= 0.3 s ({'met' if medians['ls'] <= 0.3 else 'missed'})")


if __name__ == "__main__":
    main()
