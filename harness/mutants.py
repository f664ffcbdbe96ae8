"""Deliberately broken conventions, applied to the reference in-process, to prove the registry catches them.

Each mutant is a context manager that patches ``harness.reference`` (or the op
registry's reference entry) for the duration of a ``with`` block; nothing on
disk changes. ``python -m harness.mutants [case files...]`` runs every case at
its first dtype under every mutant and prints which cases kill which mutant.

A mutant that no case kills means the registry cannot tell that convention
apart from its plausible mistake: add a case.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Sequence
from unittest import mock

import numpy as np

from harness import divergences, ops, reference
from harness.cases import DIVERGENCES_FILE, Case, CaseError, load_file
from harness.divergences import Environment
from harness.runner import run_case


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    apply: Callable[[], ContextManager]


def _swap_same(win, padding):
    return dataclasses.replace(win, pad_before=win.pad_after, pad_after=win.pad_before) if padding == "SAME" else win


@contextmanager
def _same_odd_pad_first():
    real_window, real_windows = reference.window, reference.windows

    def window(op, size, kernel, stride, dilation, padding):
        return _swap_same(real_window(op, size, kernel, stride, dilation, padding), padding)

    def windows(op, sizes, kernels, strides, dilations, padding):
        return tuple(_swap_same(w, padding) for w in real_windows(op, sizes, kernels, strides, dilations, padding))

    with mock.patch.object(reference, "window", window), mock.patch.object(reference, "windows", windows):
        yield


@contextmanager
def _depthwise_multiplier_major():
    real = reference._depthwise

    def depthwise(x_nsc, w_sim, wins):
        out = real(x_nsc, w_sim, wins)
        channels, multiplier = w_sim.shape[-2:]
        split = out.reshape(out.shape[:-1] + (channels, multiplier))
        return np.swapaxes(split, -1, -2).reshape(out.shape)  # m * C + c instead of c * M + m

    with mock.patch.object(reference, "_depthwise", depthwise):
        yield


@contextmanager
def _transpose_without_rotation():
    real = reference.conv2d_transpose

    def conv2d_transpose(input, filters, *args, **kwargs):
        # Zero insertion then correlation with the kernel as given, i.e. the 180-degree rotation dropped.
        return real(input, np.flip(np.asarray(filters), axis=(0, 1)), *args, **kwargs)

    spec = dataclasses.replace(ops.OPS["conv2d_transpose"], reference=conv2d_transpose)
    with mock.patch.dict(ops.OPS, {"conv2d_transpose": spec}):
        yield


MUTANTS: tuple[Mutant, ...] = (
    Mutant("transpose_no_rotation", "conv2d_transpose correlates with the unrotated kernel", _transpose_without_rotation),
    Mutant("same_odd_pad_top_left", "SAME puts the odd padding pixel at the top / left", _same_odd_pad_first),
    Mutant("depthwise_multiplier_major", "depthwise output channel m * C + c instead of c * M + m", _depthwise_multiplier_major),
)


def killers(mutant: Mutant, cases: Iterable[Case], dtype: str | None = None, known: Sequence = ()) -> list[str]:
    """Names (``case[dtype]``) of the cases that fail under ``mutant``.

    ``known`` are the known divergences: with them, a case where TensorFlow diverges anyway counts only if the
    mutant makes it fail (an xfailed case survives).
    """
    failed = []
    env = Environment.current()
    with mutant.apply():
        for case in cases:
            dt = dtype if dtype in case.dtypes else case.dtypes[0]
            if run_case(case, dt, known, env).status == "failed":
                failed.append(f"{case.id}[{dt}]")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="case files (default: every cases/**/*.yaml)")
    parser.add_argument("--dtype", default="float32", help="dtype to run each case at, if the case has it")
    parser.add_argument("--list", action="store_true", help="list every killing case, not just the count")
    args = parser.parse_args(argv)
    files = args.files or sorted(Path("cases").rglob("*.yaml"))
    cases = [c for f in files for c in load_file(f, Path.cwd()) if not isinstance(c, CaseError)]
    known, _ = divergences.load(Path("cases") / DIVERGENCES_FILE) if (Path("cases") / DIVERGENCES_FILE).exists() else ([], [])
    unmutated = [c.id for c in cases if run_case(c, args.dtype if args.dtype in c.dtypes else c.dtypes[0], known).status == "failed"]
    if unmutated:
        print(f"{len(unmutated)} case(s) fail without any mutant; fix them first: {unmutated[:3]}")
        return 2
    survived = 0
    print(f"{len(cases)} cases")
    for mutant in MUTANTS:
        dead = killers(mutant, cases, args.dtype, known)
        survived += not dead
        print(f"{mutant.name:<30} {'killed' if dead else 'SURVIVED':<9} by {len(dead)} case(s)  ({mutant.description})")
        for name in dead if args.list else dead[:5]:
            print(f"    {name}")
        if not args.list and len(dead) > 5:
            print(f"    ... and {len(dead) - 5} more")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
