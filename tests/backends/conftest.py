"""What the backend adapters' tests share: a backend's result on a case judged by the registry's backend entries.

The adapters' tests check a backend against the NumPy reference (no TensorFlow). Where the backend itself behaves
otherwise, the known divergence declared for it in cases/known_divergences.yaml (``backend: <name>``) says so, as
it does for ``make verify BACKENDS=...``: there is no table of expected differences in the tests. The verdict is
``harness.check.verdict``'s, so an entry that no longer holds fails as it does in a run.
"""

from __future__ import annotations

import pytest
from support import CASES, ROOT

from harness import backends
from harness.check.prepare import prepare
from harness.check.verdict import REFERENCE, Verdict, checks_behaviour, verdict
from harness.conv.tolerance import compare
from harness.registry import divergences
from harness.registry.cases import DIVERGENCES_FILE


@pytest.fixture(scope="session")
def backend_divergences() -> tuple[divergences.Divergence, ...]:
    """The forward entries of cases/known_divergences.yaml that declare a backend's own differences."""
    entries, errors = divergences.load(CASES / DIVERGENCES_FILE, ROOT)
    assert errors == [], errors
    return tuple(d for d in entries if d.backend is not None)


@pytest.fixture(scope="session")
def judge(backend_divergences, env):
    """``judge(case, dtype, backend)``: the backend's output against the reference's under the case's bound, as a
    ``Verdict`` given the entries declared for that backend that apply to the case at ``dtype`` on this machine. The
    backend's exception (``harness.backends.NotCovered`` too: the tests pick cases it covers) is its behaviour."""

    def judged(case, dtype: str, backend: backends.Backend) -> Verdict:
        p = prepare(case, dtype)
        if p.reference_error is not None:
            raise p.reference_error
        applicable = p.applicable(backend_divergences, env, backend=backend.name)
        try:
            out = backends.run(backend, case.op, p.arrays, p.attrs, dtype)
        except Exception as exc:  # noqa: BLE001 - the backend's error is its behaviour
            first = str(exc).strip().splitlines()
            behaviour, detail = f"raises {type(exc).__name__}", first[0][:300] if first else ""
        else:
            check = compare(backend.name, out, REFERENCE, p.reference, p.bound)
            behaviour, detail = checks_behaviour(backend.name, [check])
        return verdict(backend.name, behaviour, detail, applicable)

    return judged
