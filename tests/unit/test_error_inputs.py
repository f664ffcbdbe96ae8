"""The error inputs generated from each op's spec (harness.registry.error_inputs). No TensorFlow here."""

from __future__ import annotations

import collections

import pytest
import yaml

from harness import ops
from harness.check.prepare import prepare
from harness.registry import error_inputs
from harness.registry.cases import Case, CaseError, parse_case
from harness.registry.loader import load_file

ALL_OPS = [*ops.OPS, *ops.RAW_OPS]


@pytest.mark.parametrize("op", ALL_OPS)
def test_the_base_configuration_of_every_op_is_valid(op):
    case = parse_case("f.yaml", error_inputs.base_case(op, ["float32"]), 0)
    p = prepare(case, "float32")
    assert p.reference_error is None, p.reference_error


@pytest.mark.parametrize("op", ALL_OPS)
def test_every_op_gets_every_class_that_applies(op):
    items = error_inputs.error_inputs(op)
    classes = {i.cls for i in items}
    want = set(error_inputs.CLASSES)
    spec = ops.get(op)
    if spec.kind in ("conv", "depthwise", "separable", "fused"):
        want -= {"output_shape"}  # no output_shape or sizes argument (a fused op's size may be any)
    if not spec.forms.explicit_padding:  # (a 3-D tf.raw_ops.Conv has the attribute, and refuses EXPLICIT)
        want -= {"explicit_padding"}
    assert classes == want
    labels = [(i.cls, i.label) for i in items]
    assert len(labels) == len(set(labels)), "labels are unique within an op and class"


@pytest.mark.parametrize("op", ALL_OPS)
def test_every_generated_input_is_a_valid_case_that_the_reference_decides(op):
    """Each parses in the registry's schema, and the reference either rejects it with ValueError or computes it:
    never another exception (a reference that crashes on malformed input is a bug)."""
    outcomes = collections.Counter()
    for item in error_inputs.error_inputs(op):
        case = parse_case("f.yaml", {**item.case, "name": item.label, "reference_decides": True}, 0)
        p = prepare(case, "float32")
        outcomes["rejected" if p.reference_error is not None else "computed"] += 1
    assert outcomes["rejected"] > outcomes["computed"] > 0 or outcomes["computed"] == 0


def test_each_class_changes_only_what_it_names():
    base = error_inputs.base_case("conv2d", ["float32"])
    items = {(i.cls, i.label): i.case for i in error_inputs.error_inputs("conv2d")}
    rank5 = items["wrong_rank", "input=rank5"]
    assert rank5["inputs"]["input"]["generate"]["shape"] == [1, 5, 5, 2, 1] and rank5["inputs"]["input"]["raw"]
    assert rank5["inputs"]["filters"] == base["inputs"]["filters"] and rank5["attrs"] == base["attrs"]
    assert items["int_value", "strides=2pow63"]["attrs"]["strides"] == 2**63
    assert items["not_int", "dilations=None"]["attrs"]["dilations"] is None
    assert items["empty_axis", "filters.I=0"]["inputs"]["filters"]["generate"]["shape"] == [3, 3, 0, 4]
    negative = items["explicit_padding", "negative/W/after"]["attrs"]["padding"]
    assert negative == [[0, 0], [0, 0], [0, -1], [0, 0]]
    exceeds = items["kernel_exceeds_input", "NCHW/W/dilation/VALID"]
    assert exceeds["attrs"]["data_format"] == "NCHW" and exceeds["attrs"]["padding"] == "VALID"
    assert exceeds["inputs"]["input"]["generate"]["shape"] == [1, 5, 2, 2]  # declared NHWC: W is axis 2
    assert exceeds["attrs"]["dilations"] == [1, 2]


def test_raw_ops_are_malformed_in_their_own_argument_forms():
    items = {(i.cls, i.label): i.case for i in error_inputs.error_inputs("conv2d_backprop_input")}
    base = error_inputs.base_case("conv2d_backprop_input", ["float32"])
    assert base["attrs"]["input_sizes"] == [1, 5, 5, 2] and base["attrs"]["strides"] == [1, 1, 1, 1]
    assert items["explicit_padding", "negative/H/before"]["attrs"]["padding"] == "EXPLICIT"
    assert items["explicit_padding", "negative/H/before"]["attrs"]["explicit_paddings"] == [0, 0, -1, 0, 0, 0, 0, 0]
    assert items["output_shape", "input_sizes[3]+1"]["attrs"]["input_sizes"] == [1, 5, 5, 3]


def test_the_covering_subset_meets_every_class_of_every_op_and_every_facet():
    items = [i for op in ALL_OPS for i in error_inputs.error_inputs(op)]
    kept = error_inputs.covering(items)
    assert len(kept) < len(items) / 3
    assert {(i.op, i.cls) for i in kept} == {(i.op, i.cls) for i in items}
    assert {(i.cls, f) for i in kept for f in i.facets} == {(i.cls, f) for i in items for f in i.facets}


def _load(tmp_path, text, monkeypatch, mode="pairwise"):
    monkeypatch.setenv("HARNESS_SWEEP", mode)
    path = tmp_path / "gen.yaml"
    path.write_text(text, encoding="utf-8")
    return load_file(path, tmp_path)


def test_a_case_file_asks_for_them_and_the_full_mode_runs_every_one(tmp_path, monkeypatch):
    text = yaml.safe_dump({"error_inputs": [{"name": "g", "ops": ["conv1d"], "classes": ["wrong_rank", "int_value"]}]})
    pairwise = _load(tmp_path, text, monkeypatch)
    full = _load(tmp_path, text, monkeypatch, "full")
    assert all(isinstance(c, Case) and c.reference_decides and c.dtypes == ("float32",) for c in full)
    assert len(pairwise) < len(full) == len(error_inputs.error_inputs("conv1d", ("wrong_rank", "int_value")))
    assert "g/conv1d/wrong_rank/input=rank0" in {c.name for c in full}
    assert {"error", "generated", "wrong_rank"} <= set(next(c for c in full if "wrong_rank" in c.name).tags)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"name": "g", "ops": ["conv9d"]}, "ops"),
        ({"name": "g", "classes": ["nonsense"]}, "classes"),
        ({"name": "g", "cover": "some"}, "cover"),
        ({"name": "g", "dtypes": []}, "dtypes"),
        ({"name": "g", "colour": "red"}, "colour"),
        ({"ops": "all"}, "name"),
    ],
)
def test_a_bad_entry_names_the_file_the_entry_and_the_field(tmp_path, monkeypatch, entry, field):
    (err,) = _load(tmp_path, yaml.safe_dump({"error_inputs": [entry]}), monkeypatch)
    assert isinstance(err, CaseError) and err.field == field and err.file == "gen.yaml"


def test_reference_decides_is_exclusive_with_what_it_decides():
    base = {**error_inputs.base_case("conv2d", ["float32"]), "reference_decides": True}
    with pytest.raises(CaseError, match="reference_decides"):
        parse_case("f.yaml", {**base, "expect_error": {"reference": "ValueError", "tensorflow": "X"}}, 0)
    with pytest.raises(CaseError, match="true or false"):
        parse_case("f.yaml", {**base, "reference_decides": "yes"}, 0)


def test_a_rejected_input_is_an_error_contract_and_an_accepted_one_is_not():
    items = {(i.cls, i.label): i.case for i in error_inputs.error_inputs("conv2d")}
    rejected = parse_case("f.yaml", {**items["int_value", "strides=0"], "name": "r", "reference_decides": True}, 0)
    accepted = parse_case("f.yaml", {**items["not_int", "dilations=None"], "name": "a", "reference_decides": True}, 0)
    p, q = prepare(rejected, "float32"), prepare(accepted, "float32")
    assert p.expects_error and p.bound is None and "strides" in str(p.reference_error)
    assert not q.expects_error and q.bound is not None
