"""TensorFlow's execution modes agree with each other: eager, ``tf.function`` and XLA (``jit_compile=True``).

Each mode is a backend (``tensorflow-function``, ``tensorflow-xla``) checked against eager TensorFlow by
``runner.run_backend``, on the hand-picked part of the registry: the seed fixtures, the examples, the cases the
property search found and the known divergences' own repro cases (where eager TensorFlow is wrong, raises or
aborts, and a graph mode may behave differently). A difference is either within tolerance or a tracked
expectation (``backend:`` entries of cases/known_divergences.yaml). The whole registry runs with
``make verify BACKENDS="tensorflow-function tensorflow-xla"``.
"""

from __future__ import annotations

import pytest
from support import ROOT

from harness import backends
from harness.check.runner import run_backend
from harness.registry import divergences
from harness.registry.cases import Case
from harness.registry.loader import load_file
from harness.tf.environment import Environment

FILES = [
    "seeds.yaml",
    "examples.yaml",
    "known_divergences.yaml",
    *(f"found/{p.name}" for p in sorted((ROOT / "cases" / "found").glob("*.yaml"))),
]
ITEMS = [
    (case, dtype)
    for name in FILES
    for case in load_file(ROOT / "cases" / name, ROOT)
    if isinstance(case, Case) and not case.expect_error
    for dtype in case.dtypes
]
KNOWN = divergences.load(ROOT / "cases" / "known_divergences.yaml", ROOT)[0]


@pytest.fixture(scope="module")
def env():
    return Environment.current()


@pytest.mark.parametrize("mode", ["tensorflow-function", "tensorflow-xla"])
@pytest.mark.parametrize("case, dtype", ITEMS, ids=[f"{c.id}[{d}]" for c, d in ITEMS])
def test_graph_modes_agree_with_eager(case, dtype, mode, env):
    outcome = run_backend(case, dtype, backends.resolve(mode), KNOWN, env)
    if outcome.status == "xfailed":
        pytest.xfail(f"known divergence {outcome.divergence.id}")
    assert outcome.status in ("passed", "skipped"), outcome.report()
