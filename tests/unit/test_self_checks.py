"""The reference self-check items (harness/check/self_checks.py): no TensorFlow, so they run here. A case whose
reference is right passes; the reference broken where TensorFlow cannot see it (an NCHW gradient rule) fails."""

from support import ROOT

from harness.check import mutants, self_checks
from harness.check.self_checks import run_self_checks
from harness.registry.cases import Case
from harness.registry.loader import load_file

FILE = ROOT / "cases" / "sweeps" / "transpose_pairwise.yaml"
CASES = [c for c in load_file(FILE, ROOT) if isinstance(c, Case) and self_checks.applies(c)]
NCHW_EXPLICIT = [c for c in CASES if c.attrs.get("data_format") == "NCHW" and not isinstance(c.attrs["padding"], str)]


def test_the_checks_pass_on_the_reference_and_compare_every_gradient():
    for case in CASES[:20] + NCHW_EXPLICIT[:5]:
        outcome = run_self_checks(case)
        assert outcome.status == "passed", outcome.report()
        subjects = {c.subject for c in outcome.comparisons}
        assert {"<input, d/dinput>", "<filters, d/dfilters>"} <= subjects, subjects
        assert any(s.endswith("d/dinput") and "converted" in s for s in subjects), subjects


def test_a_channels_first_gradient_bug_fails_them():
    assert NCHW_EXPLICIT
    with mutants.get("transpose_gradient_channels_first_pads").apply():
        outcome = run_self_checks(NCHW_EXPLICIT[0])
    assert outcome.status == "failed" and outcome.errors, outcome.report()


def test_which_cases_have_one():
    realistic = [c for c in load_file(ROOT / "cases" / "realistic.yaml", ROOT) if isinstance(c, Case)]
    errors = [c for c in load_file(ROOT / "cases" / "errors.yaml", ROOT) if isinstance(c, Case)]
    assert realistic and not any(self_checks.applies(c) for c in realistic)
    assert errors and not any(self_checks.applies(c) for c in errors)
    computing = [c for c in load_file(FILE, ROOT) if isinstance(c, Case) and c.computes]
    assert len(computing) > 50 and all(self_checks.applies(c) for c in computing)
