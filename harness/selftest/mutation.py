"""The mutation self-test: every convention mutant (``harness.check.mutants``) must be killed by some case.

``make mutants`` (``python -m harness.selftest.mutation``) runs every computing case under every mutant and prints
which cases kill each; a mutant no case kills means the registry cannot tell that convention from its plausible
mistake (add a case). TensorFlow's outputs are memoized: a mutant changes the reference, never TensorFlow.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

from harness.check import runner, self_checks
from harness.check.mutants import MUTANTS, Mutant, get
from harness.check.runner import run_case
from harness.check.self_checks import run_self_checks
from harness.registry import divergences
from harness.registry.loader import computing_cases
from harness.tf.environment import Environment


@contextmanager
def tensorflow_memo():
    """Answer repeated TensorFlow calls from memory: a mutant changes the reference, never TensorFlow's output."""
    real, memo = runner.call_tensorflow, {}

    def call(op, args, kwargs):
        key = hashlib.sha256(pickle.dumps((op, args, sorted(kwargs.items(), key=lambda kv: kv[0])))).digest()
        if key not in memo:
            memo[key] = real(op, args, kwargs)
        return memo[key]

    with mock.patch.object(runner, "call_tensorflow", call):
        yield


def _dtype_for(case, dtype: str | None) -> str:
    return dtype if dtype is not None and dtype in case.dtypes else case.dtypes[0]


def killers(
    mutant: Mutant,
    cases: Iterable,
    dtype: str | None = None,
    known: Sequence = (),
    first: bool = False,
    self_check: bool = True,
) -> list[str]:
    """Names (``case[dtype]``, or ``case[float64:reference]`` for a self-check item) of the cases that fail under
    ``mutant`` (only the first one with ``first``), each at the mutant's dtype if it has one. ``self_check``: a case
    whose own item passes may still kill through its reference self-check item (``harness.check.self_checks``).

    ``known`` are the known divergences: with them, a case where TensorFlow diverges anyway counts only if the
    mutant makes it fail (an xfailed case survives). Callers should pass cases that pass unmutated.
    """
    env = Environment.current()
    failed = []
    with ExitStack() as stack:
        stack.enter_context(mutant.apply())
        for case in cases:
            dt = _dtype_for(case, mutant.dtype or dtype)
            if run_case(case, dt, known, env, diagnose=False).status == "failed":
                failed.append(f"{case.id}[{dt}]")
            elif self_check and self_checks.applies(case) and run_self_checks(case, env.memory).status == "failed":
                failed.append(f"{case.id}[{self_checks.DTYPE}:{self_checks.CHECK}]")
            if first and failed:
                break
    return failed


def table(results: Sequence[tuple[Mutant, list[str]]], n_cases: int, show: int = 3) -> str:
    """The Markdown table ``make mutants`` prints: mutant, killed or survived, by which cases."""
    lines = [f"{n_cases} cases, one dtype each", "", "| mutant | result | killed by | e.g. |", "|---|---|---|---|"]
    for mutant, dead in results:
        examples = ", ".join(f"`{d}`" for d in dead[:show]) + (" ..." if len(dead) > show else "")
        lines.append(f"| {mutant.name} | {'killed' if dead else '**SURVIVED**'} | {len(dead)} case(s) | {examples} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.selftest.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="case files (default: every cases/**/*.yaml)")
    parser.add_argument(
        "--dtype", default="float32", help="dtype to run each case at, if the case has it (default float32)"
    )
    parser.add_argument("--mutant", action="append", default=[], help="run only this mutant (repeatable)")
    parser.add_argument("--list", action="store_true", help="list every killing case, not just the first few")
    args = parser.parse_args(argv)
    try:
        chosen = [get(name) for name in args.mutant] or list(MUTANTS)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        cases = computing_cases(args.files)  # error contracts test argument checks, not the conventions mutated here
    except FileNotFoundError as exc:
        parser.error(str(exc))
    known = divergences.registry()
    start = time.perf_counter()
    with tensorflow_memo():
        failing = [
            c.id for c in cases if run_case(c, _dtype_for(c, args.dtype), known, diagnose=False).status == "failed"
        ]
        if failing:
            print(f"{len(failing)} case(s) fail without any mutant; fix them first: {failing[:3]}")
            return 2
        results = [(m, killers(m, cases, args.dtype, known)) for m in chosen]
    print(table(results, len(cases), show=10**9 if args.list else 3))
    survived = [m.name for m, dead in results if not dead]
    print(
        f"\n{len(results) - len(survived)} of {len(results)} mutants killed in {time.perf_counter() - start:.0f} s"
        + (f"; SURVIVED: {', '.join(survived)}" if survived else "")
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
