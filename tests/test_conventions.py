"""Breaking one convention at a time in the reference must make the documents' fixtures fail.

This proves the seed cases can fail, and for the right reason: each mutant changes
exactly one convention (see harness/mutants.py), and the cases listed here are the
ones whose printed values depend on it. Runs TensorFlow (through the runner).
"""

from pathlib import Path

import pytest

from harness.cases import Case, load_file
from harness.mutants import MUTANTS, killers
from harness.runner import run_case

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [c for c in load_file(ROOT / "cases" / "seeds.yaml", ROOT) if isinstance(c, Case)]

EXPECTED_KILLERS = {
    "transpose_no_rotation": {"transpose_stride2_same", "transpose_stride2_same_printed_nhwc"},
    # the 3x3 SAME conv2d / depthwise fixtures pad symmetrically (1, 1); only the stride-2 transpose has an odd pad
    "same_odd_pad_top_left": {"transpose_stride2_same", "transpose_stride2_same_printed_nhwc"},
    "depthwise_multiplier_major": {"depthwise_valid_4x4x2_multiplier2"},
}


def test_seed_fixtures_pass_unmutated():
    failing = [c.name for c in SEEDS if not run_case(c, "float32").passed]
    assert failing == []


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_broken_convention_fails_the_fixtures_that_depend_on_it(mutant):
    killed = {name.split("::")[1].rsplit("[", 1)[0] for name in killers(mutant, SEEDS, "float32")}
    assert killed == EXPECTED_KILLERS[mutant.name]


def test_the_mutants_are_undone_after_use():
    for mutant in MUTANTS:
        killers(mutant, SEEDS[:1], "float32")
    test_seed_fixtures_pass_unmutated()
