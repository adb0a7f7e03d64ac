"""Shared by the benchmarks: timing side by side, and one table format for every row."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``call`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def alternate(
    calls: dict[str, Callable[[], object]], rounds: int, per_round: int
) -> dict[str, float]:
    """Median per-call seconds of each call, measured in alternating rounds.

    Alternating spreads machine noise over all of them alike: the ratios are what count.
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            samples[name].append(median_seconds(call, per_round))
    return {name: statistics.median(values) for name, values in samples.items()}


def row(label: str, measured: float, goal: str, met: bool, unit: str = "x") -> str:
    """One line of the results table."""
    verdict = "met" if met else "MISSED"
    return f"  {label:<58} {measured:9.2f}{unit:<3} goal {goal:<8} {verdict}"
