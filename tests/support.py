"""What the harness's own tests share: where the repository is, and the registry read once.

Imported by test modules (``from support import ROOT``) and by ``tests/conftest.py``, which turns these into
fixtures. pytest puts ``tests/`` on ``sys.path`` because ``tests/conftest.py`` lives there (no ``__init__.py``).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import pytest

from harness.registry.cases import Case
from harness.registry.loader import load_file
from harness.tf.environment import Environment, load_recorded

ROOT = Path(__file__).resolve().parents[1]  # the repository
CASES = ROOT / "cases"
# pytest.ini of a throwaway project whose cases/ folder is a registry of its own (its own known divergences)
PROJECT_INI = "[pytest]\nharness_cases = cases\nharness_shipped = none\n"
# Options of every pytest run in this process (pytester.runpytest_inprocess): hypothesis's plugin imports hypothesis
# at the end of a run and pytester unloads what a run imported, so each run would import it again (seconds).
IN_PROCESS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
MACHINES = ROOT / "tests" / "machines"  # recorded machines (``harness machine --record``)


@cache
def registry() -> tuple[Case, ...]:
    """Every case of ``cases/`` (sweeps expanded, error contracts included), in file order; errors left out."""
    return tuple(c for path in sorted(CASES.rglob("*.yaml")) for c in load_file(path, ROOT) if isinstance(c, Case))


@cache
def recorded_machine(name: str) -> Environment:
    """A recorded machine (``tests/machines/<name>.json``) running TensorFlow as ``make verify`` does: one intra-op
    thread (``wrappers.pin_environment``; a record holds the machine, not a run's settings)."""
    return dataclasses.replace(load_recorded(MACHINES / f"{name}.json"), intra_op_threads=1)


def assert_value_error(fn, *fragments) -> str:
    """``fn()`` raises ValueError whose message contains every fragment; returns the message."""
    with pytest.raises(ValueError) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message
