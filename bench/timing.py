"""Timing helpers shared by the benchmark's float and int8 rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def interleaved(calls: dict[str, Callable[[], object]], warmup: int, repeat: int) -> dict[str, list[float]]:
    """Seconds of ``repeat`` runs of every call, after ``warmup`` untimed rounds, the calls alternating each round."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def repeated(fn: Callable[[], object], warmup: int, repeat: int) -> list[float]:
    """Seconds of ``repeat`` runs of ``fn`` after ``warmup`` untimed ones."""
    return interleaved({"": fn}, warmup, repeat)[""]


def median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None
