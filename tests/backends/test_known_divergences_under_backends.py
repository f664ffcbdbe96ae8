"""Every case of cases/known_divergences.yaml under every installed backend, as ``--backend NAME`` items run it.

The default run checks these cases against TensorFlow only. Here each backend is checked against TensorFlow on
them through ``harness.check.runner.run_backend`` (the path of the plugin's ``--backend`` items, with the same items:
every dtype of every case that is not an error contract), so that a case a backend breaks, or a backend difference
that no ``backend:`` entry of the same file declares, fails the day it is added rather than in the next
``make verify BACKENDS=...``. A backend whose package is not installed is skipped, saying which extra installs it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from support import CASES, ROOT

from harness import backends
from harness.check.quantized import PATHS as QUANTIZED_PATHS
from harness.check.runner import run_backend
from harness.registry import divergences
from harness.registry.cases import DIVERGENCES_FILE, Case
from harness.registry.loader import load_file

FILE = CASES / DIVERGENCES_FILE
# the oracle is the default item; LiteRT's paths run the quantized cases only (test_quantized_cases_under_litert)
BACKENDS = [name for name in backends.BUILTIN if name != backends.ORACLE and name not in QUANTIZED_PATHS]


@pytest.fixture(scope="module")
def known():
    entries, errors = divergences.load(FILE, ROOT, scope=None)  # as the plugin loads them
    assert errors == [], errors
    return tuple(entries)


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", BACKENDS)
def test_known_divergence_cases_under_backend(name, known, env):
    backend = backends.resolve(name, ROOT)
    if backend.unavailable:
        pytest.skip(backend.unavailable)
    entries = load_file(FILE, ROOT)
    failed = [f"malformed: {entry}" for entry in entries if not isinstance(entry, Case)]
    statuses = Counter()
    for case in entries:
        if not isinstance(case, Case) or case.expect_error:  # the plugin makes no backend item of an error contract
            continue
        for dtype in case.dtypes:
            outcome = run_backend(case, dtype, backend, known, env)
            statuses[outcome.status] += 1
            if outcome.status == "failed":
                failed.append(
                    f"{case.id}[{dtype}@{name}]: {'; '.join(outcome.errors)} (TensorFlow: {outcome.tensorflow})"
                )
    assert statuses["passed"] + statuses["xfailed"] > 0, f"{name} ran none of the items: {dict(statuses)}"
    assert not failed, (
        f"{len(failed)} of {sum(statuses.values())} items of {DIVERGENCES_FILE} fail under --backend {name} "
        f"(a case the backend breaks needs a `backend: {name}` entry with evidence, or a fix):\n" + "\n".join(failed)
    )


@pytest.mark.tensorflow  # the models are built in TensorFlow's process
@pytest.mark.parametrize("name", ["litert-builtin"])
def test_quantized_cases_under_litert(name, env):
    """cases/quantized.yaml through LiteRT's optimized kernels (its other paths run in make verify BACKENDS=...):
    every item agrees with the integer reference bit for bit, or a known divergence of that path says why."""
    backend = backends.resolve(name, ROOT)
    if backend.unavailable:
        pytest.skip(backend.unavailable)
    entries, errors = divergences.load(FILE, ROOT)
    assert errors == [], errors
    statuses, failed = Counter(), []
    for case in load_file(CASES / "quantized.yaml", ROOT):
        assert isinstance(case, Case), case
        for dtype in case.dtypes:
            outcome = run_backend(case, dtype, backend, entries, env)
            statuses[outcome.status] += 1
            if outcome.status == "failed":
                failed.append(outcome.report())
    assert not failed, "\n\n".join(failed)
    assert statuses["xfailed"] > 0 and statuses["passed"] > 0, dict(statuses)
