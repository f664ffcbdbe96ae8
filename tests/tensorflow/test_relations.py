"""The metamorphic relations of harness/selftest/relations.py, on the registry cases of their ops (``spread``).

Each relation is checked on the reference, on TensorFlow, and between them
(``harness.selftest.relations.check``). Configurations come from the registry: every case
that is not an error contract, a known-divergence repro or a realistic layer shape
(those are large; ``python -m harness.selftest.relations cases/realistic.yaml`` runs them).
TensorFlow calls that meet a known divergence's condition are skipped by the same
conditions ``cases/known_divergences.yaml`` declares.
"""

from collections import Counter
from unittest import mock

import pytest
from support import ROOT

from harness.check import mutants
from harness.registry import divergences
from harness.registry.cases import DIVERGENCES_FILE, Case
from harness.registry.loader import load_file
from harness.selftest import relations
from harness.selftest.relations import RELATIONS, check

KNOWN = divergences.load(ROOT / "cases" / DIVERGENCES_FILE, ROOT)[0]
SKIPPED_FILES = {DIVERGENCES_FILE, "errors.yaml", "realistic.yaml"}
FILES = [p for p in sorted((ROOT / "cases").rglob("*.yaml")) if p.name not in SKIPPED_FILES]
CASES = [c for f in FILES for c in load_file(f, ROOT) if isinstance(c, Case) and c.computes]
# make test checks a relation on at most this many cases of each file, spread evenly over it (a sweep's cases are
# alike); python -m harness.selftest.relations checks it on all of them.
PER_FILE = 60


def spread(cases: list[Case], per_file: int = PER_FILE) -> list[Case]:
    """At most ``per_file`` of each file's cases, evenly spaced through it (first and last included)."""
    by_file: dict[str, list[Case]] = {}
    for case in cases:
        by_file.setdefault(case.file, []).append(case)
    chosen = []
    for mine in by_file.values():
        n = len(mine)
        picks = sorted({round(i * (n - 1) / (per_file - 1)) for i in range(per_file)}) if n > per_file else range(n)
        chosen += [mine[i] for i in picks]
    return chosen


SIDES = ("reference", "tensorflow", "reference vs tensorflow", "tensorflow vs reference")


@pytest.mark.parametrize("relation", RELATIONS, ids=lambda r: r.name)
def test_relation_holds_on_the_registry(relation):
    mine = spread([case for case in CASES if case.op in relation.ops])
    checks = [ch for case in mine for ch in check(relation, case, "float32", KNOWN)]
    failed = [ch.line() for ch in checks if ch.status == "failed"]
    assert not failed, f"{len(failed)} failed checks of {relation.name} ({relation.statement}):\n" + "\n".join(
        failed[:8]
    )
    passed = Counter(ch.side for ch in checks if ch.status == "passed")
    # Not vacuous: the reference and TensorFlow were really compared on many configurations. (Without oneDNN,
    # TensorFlow has no NCHW kernels, so layout_invariance's all-TensorFlow side is excused everywhere.)
    assert passed["reference"] >= 20 and sum(passed[side] for side in SIDES[1:]) >= 20, dict(passed)


# Each relation that the reference could break is broken by a mutant: the relation's reference side must notice.
CAUGHT_BY = {
    "layout_invariance": "nchw_as_nhwc",
    "convolution_is_rotated_correlation": "kernel_rotated",
    "one_by_one_is_matmul": "accumulate_float16",
    "input_channel_sum": "accumulate_float16",
    "depthwise_is_per_channel_conv2d": "depthwise_multiplier_major",
    "groups_are_concatenated": "groups_interleaved",
    "separable_is_depthwise_then_pointwise": "valid_size_off_by_one",
    "atrous_is_zero_inserted_kernel": "dilation_as_stride",
    "dilation_is_zero_inserted_kernel": "dilation_as_stride",
    "conv1d_is_conv2d_height_1": "hw_swapped",
    "transpose_is_zero_insertion": "transpose_no_rotation",
    "explicit_padding_is_np_pad": "explicit_pads_swapped",
    "same_is_explicit": "same_odd_pad_top_left",
    # output_channel_stack and atrous_is_dilated_conv2d: both sides run the same reference machinery, so no
    # reference mutant separates them; they are checks on TensorFlow (and between the two).
}


def _no_tensorflow(*args):
    def run(call):
        raise relations.Excused("TensorFlow not used in this self-test")

    return run


@pytest.mark.parametrize("relation_name,mutant_name", sorted(CAUGHT_BY.items()))
def test_relation_catches_a_broken_reference(relation_name, mutant_name):
    relation = relations.get(relation_name)
    # the first 60 of its ops' cases, the grouped ones first (they are all a grouping relation applies to)
    mine = sorted((c for c in CASES if c.op in relation.ops), key=lambda c: "grouped" not in c.tags)[:60]
    with mutants.get(mutant_name).apply(), mock.patch.object(relations, "_tensorflow_run", _no_tensorflow):
        failed = [
            ch for c in mine for ch in check(relation, c, "float32") if ch.side == "reference" and ch.status == "failed"
        ]
    assert failed, f"{mutant_name} did not break {relation_name} on the reference"


def test_every_relation_is_named_in_the_catch_table_or_excused():
    assert set(CAUGHT_BY) | {"output_channel_stack", "atrous_is_dilated_conv2d"} == {r.name for r in RELATIONS}


def test_unknown_relation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown relation 'nope'"):
        relations.get("nope")
