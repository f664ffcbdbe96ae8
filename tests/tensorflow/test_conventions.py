"""Breaking one convention at a time in the reference must make the documents' fixtures fail.

This proves the seed cases can fail, and for the right reason: each mutant changes
exactly one convention (see harness/check/mutants.py), and the cases listed here are the
ones whose printed values depend on it. Runs TensorFlow (through the runner).
"""

import pytest
from support import ROOT

from harness.check.mutants import MUTANTS
from harness.check.runner import run_case
from harness.registry.cases import Case
from harness.registry.loader import load_file
from harness.selftest.mutation import killers

SEEDS = [c for c in load_file(ROOT / "cases" / "seeds.yaml", ROOT) if isinstance(c, Case)]

TRANSPOSES = {"transpose_stride2_same", "transpose_stride2_same_printed_nhwc"}
RANDOM = {"corr2d_valid_printed_random_5x5", "conv1x1_equals_matmul_3x8x8_to_5"}  # the only non-integer fixtures
ASYMMETRIC_KERNELS = {
    "atrous_rate2_valid_10x10",
    "conv2d_same_2x5x5",
    "corr2d_valid_printed_random_5x5",
    "depthwise_same_2x5x5",
} | TRANSPOSES  # (the 4x4x2 depthwise kernel is symmetric; 1x1 cannot turn)
EXPECTED_KILLERS = {
    "transpose_no_rotation": TRANSPOSES,
    "kernel_rotated": ASYMMETRIC_KERNELS,
    "hw_swapped": ASYMMETRIC_KERNELS,  # the same fixtures: none is symmetric under transposition either
    # the 3x3 SAME conv2d / depthwise fixtures pad (1, 1) symmetrically; only the stride-2 transpose has an odd pad
    "same_odd_pad_top_left": TRANSPOSES,
    "same_symmetric_k_div_2": TRANSPOSES,  # k // 2 = 1 on both sides is right for the 3x3 stride-1 ones
    "valid_size_off_by_one": {"atrous_rate2_valid_10x10", "depthwise_valid_4x4x2_multiplier2"} | RANDOM,
    "dilation_as_stride": {"atrous_rate2_valid_10x10"},  # the only dilated fixture
    "explicit_pads_onnx_order": set(),  # no fixture uses explicit padding: the sweeps cover it
    "explicit_pads_swapped": set(),
    "depthwise_multiplier_major": {"depthwise_valid_4x4x2_multiplier2"},
    "groups_interleaved": set(),  # no fixture is grouped: cases/sweeps/grouped.yaml is
    "transpose_filter_in_out_swapped": TRANSPOSES,
    "transpose_crop_wrong_side": TRANSPOSES,
    "accumulate_float16": RANDOM,  # integer fixtures sum exactly even in float16
    "nchw_as_nhwc": set(),  # every fixture is NHWC (converted from the documents' CHW)
    "separable_pointwise_first": set(),  # no separable fixture
    "pointwise_guard_reads_one_axis": set(),  # no fixture pads explicitly: cases/sweeps/fast_paths.yaml does
    "transpose_gradient_channels_first_pads": set(),  # a gradient rule: the fixtures are forward outputs
    "bfloat16_truncated": set(),  # the fixtures are float32 (the mutant runs at bfloat16 where a case has it)
}


def test_seed_fixtures_pass_unmutated():
    failing = [c.name for c in SEEDS if not run_case(c, "float32").passed]
    assert failing == []


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_broken_convention_fails_the_fixtures_that_depend_on_it(mutant):
    # the fixtures' own outputs only (their reference self-check items are test_mutants.py's)
    killed = {name.split("::")[1].rsplit("[", 1)[0] for name in killers(mutant, SEEDS, "float32", self_check=False)}
    assert killed == EXPECTED_KILLERS[mutant.name]


def test_the_mutants_are_undone_after_use():
    for mutant in MUTANTS:
        killers(mutant, SEEDS[:1], "float32")
    test_seed_fixtures_pass_unmutated()
