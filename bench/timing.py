"""What the benchmark's float and int8 rows share: timing, and the layout of their tables."""

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


def aligned(head: Sequence[str], lines: Sequence[Sequence[object]], left: int) -> str:
    """A table: ``head``, a rule, then ``lines``; the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]

    def fmt(cells: Sequence[object]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths)] + [fmt(c) for c in lines])
