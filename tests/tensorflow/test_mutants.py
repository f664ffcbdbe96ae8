"""The mutation self-test on a fast subset of the registry, and the failure diagnosis.

Every mutant in harness/check/mutants.py must be killed by the CI subset (the documents'
fixtures, the examples, the pairwise sweeps and the fast paths' sweep), through a case's item or its reference
self-check item; ``make mutants`` runs the whole
registry. The diagnosis test puts a deliberately wrong kernel in TensorFlow's place
and checks that the failure message names the convention that kernel broke.
"""

from functools import cache
from unittest import mock

import numpy as np
import pytest
from support import ROOT, registry

from harness import ops
from harness.check import mutants, runner
from harness.check.mutants import MUTANTS
from harness.check.runner import run_case
from harness.registry import divergences
from harness.registry.cases import DIVERGENCES_FILE, Case, operand_arrays
from harness.selftest import mutation
from harness.selftest.mutation import killers, tensorflow_memo
from harness.tf.isolation import Returned

CI_SUBSET = [
    ROOT / "cases" / "seeds.yaml",
    ROOT / "cases" / "examples.yaml",
    *sorted((ROOT / "cases" / "sweeps").glob("*_pairwise.yaml")),
    ROOT / "cases" / "sweeps" / "fast_paths.yaml",
    ROOT / "cases" / "sweeps" / "grouped.yaml",
]


@cache
def ci_cases() -> list[Case]:
    """The CI subset's cases, file by file, taken from the registry as this process read it once (``support``)."""
    files = [f.relative_to(ROOT).as_posix() for f in CI_SUBSET]
    return [c for f in files for c in registry() if c.file == f and c.expect_error is None]


KNOWN = divergences.load(ROOT / "cases" / DIVERGENCES_FILE, ROOT)[0]


def test_mutant_names_are_unique_and_at_least_twelve():
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names)) >= 12


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_every_mutant_is_killed_by_the_ci_subset(mutant):
    assert killers(mutant, ci_cases(), "float32", KNOWN, first=True), (
        f"no case of the CI subset notices: {mutant.description}"
    )


def test_the_ci_subset_passes_unmutated():
    # Otherwise a "kill" could be a case that fails anyway.
    with tensorflow_memo():
        failing = [
            c.id
            for c in ci_cases()
            if run_case(c, "float32" if "float32" in c.dtypes else c.dtypes[0], KNOWN, diagnose=False).status
            == "failed"
        ]
    assert failing == []


def test_unknown_mutant_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mutant 'nope'"):
        mutants.get("nope")
    with pytest.raises(SystemExit) as exit_:
        mutation.main(["--mutant", "nope"])
    assert exit_.value.code == 2


# --- diagnosis: a deliberately wrong kernel in TensorFlow's place ---------------------------


def _case(name_part: str, dtype="float32") -> Case:
    return next(c for c in ci_cases() if name_part in c.id and dtype in c.dtypes)


def _wrong_kernel_outcome(case: Case, mutant: mutants.Mutant):
    """Run ``case`` with TensorFlow replaced by the reference broken by ``mutant`` (a wrong kernel)."""
    spec = ops.get(case.op)
    arrays = operand_arrays(case, "float32")
    attrs = spec.resolved(arrays, case.attrs)
    with mutant.apply():
        wrong = np.asarray(ops.get(case.op).call(ops.get(case.op).reference, arrays, attrs))
    with mock.patch.object(runner, "call_tensorflow", lambda op, args, kwargs: Returned(wrong)):
        return run_case(case, "float32", KNOWN)


DIAGNOSED = [  # (suspect, a case whose output depends on the convention)
    ("kernel_rotated", "seeds.yaml::conv2d_same_2x5x5"),
    ("hw_swapped", "seeds.yaml::corr2d_valid_printed_random_5x5"),
    ("same_odd_pad_top_left", "seeds.yaml::transpose_stride2_same"),
    ("depthwise_multiplier_major", "seeds.yaml::depthwise_valid_4x4x2_multiplier2"),
    ("transpose_filter_in_out_swapped", "seeds.yaml::transpose_stride2_same_printed_nhwc"),
    ("transpose_crop_wrong_side", "seeds.yaml::transpose_stride2_same"),
    ("explicit_pads_swapped", "atrous_pairwise/padding=asym/rate=1/shape=b1_9x8"),
]


@pytest.mark.parametrize("suspect,case_part", DIAGNOSED, ids=[d[0] for d in DIAGNOSED])
def test_a_wrong_kernel_gets_a_message_naming_the_broken_convention(suspect, case_part):
    mutant = mutants.get(suspect)
    outcome = _wrong_kernel_outcome(_case(case_part), mutant)
    assert outcome.status == "failed"
    report = outcome.report()
    assert f"[{suspect}]" in report and mutant.convention in report, report


def test_every_suspect_has_a_diagnosis_test():
    assert {name for name, _ in DIAGNOSED} | {"same_symmetric_k_div_2", "explicit_pads_onnx_order"} == {
        m.name for m in mutants.suspects()
    }


def test_a_disagreement_no_suspect_explains_says_so():
    case = _case("seeds.yaml::conv2d_same_2x5x5")
    spec = ops.get(case.op)
    arrays = operand_arrays(case, "float32")
    noise = spec.call(spec.reference, arrays, case.attrs) + np.float32(0.5)
    with mock.patch.object(runner, "call_tensorflow", lambda op, args, kwargs: Returned(noise)):
        outcome = run_case(case, "float32", KNOWN)
    assert outcome.status == "failed"
    assert any("none of the usual suspects" in d for d in outcome.diagnosis), outcome.report()


def test_a_passing_case_pays_no_diagnosis():
    outcome = run_case(_case("seeds.yaml::conv2d_same_2x5x5"), "float32", KNOWN)
    assert outcome.passed and outcome.diagnosis == ()
