"""The YAML case loader (harness/registry/cases.py), without TensorFlow.

Malformed cases: every kind of mistake must come back from ``load_file`` as a
``CaseError`` whose text names the file, the case and the field, while the valid
cases written around it in the same file still load as ``Case`` objects.

Valid cases: defaults, seeded generators, kernel orientation and the layout
conversions done by ``operand_array`` / ``expected_array``, checked element by
element against values written by hand.
"""

import copy
import textwrap

import numpy as np
import pytest
import yaml

from harness import ops
from harness.registry.cases import (
    Case,
    CaseError,
    expected_array,
    item_case_id,
    operand_array,
    operand_arrays,
    split_case_id,
)
from harness.registry.loader import load_file

FILE = "cases.yaml"
DELETE = object()  # marks a field to remove in EDITS below

# A 1x3x3 CHW input and a 1x2x2 IHW single-output filter: small integers, distinct values.
X_CHW = [[[1, 2, 0], [0, 1, 3], [2, 1, 1]]]
W_IHW = [[[1, 0], [-1, 2]]]


def base_case(op: str, name: str) -> dict:
    """A valid case of ``op`` as the YAML loader sees it (plain dicts and lists)."""
    if op == "conv2d":
        return {
            "name": name,
            "op": "conv2d",
            "attrs": {"strides": 1, "padding": "VALID"},
            "inputs": {"input": {"layout": "CHW", "value": X_CHW}, "filters": {"layout": "IHW", "value": W_IHW}},
        }
    if op == "depthwise_conv2d":
        return {
            "name": name,
            "op": "depthwise_conv2d",
            "attrs": {"strides": [1, 1, 1, 1], "padding": "VALID"},
            "inputs": {
                "input": {"layout": "CHW", "value": X_CHW},
                "filter": {"layout": "HWIM", "value": [[[[1]], [[0]]], [[[-1]], [[2]]]]},
            },
        }
    if op == "conv2d_transpose":
        return {
            "name": name,
            "op": "conv2d_transpose",
            "attrs": {"output_shape": "smallest", "strides": 2, "padding": "SAME"},
            "inputs": {
                "input": {"layout": "HWC", "generate": {"dist": "integers", "shape": [2, 2, 3]}},
                "filters": {"layout": "HWOI", "generate": {"dist": "integers", "shape": [3, 3, 2, 3]}},
            },
        }
    raise AssertionError(op)


def edited(case: dict, edits: dict) -> dict:
    """A deep copy of ``case`` with dotted paths set (or removed with DELETE)."""
    case = copy.deepcopy(case)
    for path, value in edits.items():
        *parents, last = path.split(".")
        node = case
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return case


def write(tmp_path, doc, name=FILE):
    """Write ``doc`` (YAML text, or data dumped as YAML) and load it with ``root=tmp_path``."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(doc) if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return load_file(path, root=tmp_path)


def load_cases(tmp_path, *cases, **top):
    return write(tmp_path, {**top, "cases": list(cases)})


def only_case(entries) -> Case:
    assert len(entries) == 1 and isinstance(entries[0], Case), entries
    return entries[0]


def assert_names(err: CaseError, file: str, case: str | None, field: str | None, fragment: str) -> None:
    """The error's attributes and its text both name the file, the case and the field."""
    assert isinstance(err, CaseError), err
    assert (err.file, err.case, err.field) == (file, case, field)
    text = str(err)
    assert text.startswith(file)
    if case is not None:
        assert repr(case) in text
    if field is not None:
        assert f"field {field!r}" in text
    assert fragment in text


# --- one malformed case among valid ones --------------------------------------------------

V = {"layout": "CHW", "generate": {"dist": "normal", "shape": [1, 3, 3]}}  # a valid generated CHW input

# (id, base op, edits to the base case, field named, fragment of the message)
EDITS = [
    ("unknown_op", "conv2d", {"op": "conv4d"}, "op", "unknown op 'conv4d'"),
    ("unknown_case_field", "conv2d", {"atrs": {"strides": 1}}, "atrs", "unknown field"),
    ("missing_op", "conv2d", {"op": DELETE}, "op", "missing field"),
    ("missing_inputs", "conv2d", {"inputs": DELETE}, "inputs", "missing field"),
    ("missing_filters", "conv2d", {"inputs.filters": DELETE}, "inputs.filters", "missing field"),
    ("missing_padding", "conv2d", {"attrs.padding": DELETE}, "attrs.padding", "missing field"),
    ("unknown_attribute", "conv2d", {"attrs.rate": 2}, "attrs.rate", "conv2d has no attribute 'rate'"),
    ("unknown_operand", "conv2d", {"inputs.value": V}, "inputs.value", "no operand 'value'"),
    (
        "chw_layout_2d_literal",
        "conv2d",
        {"inputs.input.value": [[1, 2], [3, 4]]},
        "inputs.input",
        "layout 'CHW' has 3 axes but the value has shape [2, 2]",
    ),
    (
        "generator_rank_vs_layout",
        "conv2d",
        {"inputs.input": {"layout": "CHW", "generate": {"dist": "normal", "shape": [3, 3]}}},
        "inputs.input",
        "layout 'CHW' has 3 axes but the value has shape [3, 3]",
    ),
    ("unknown_layout_letter", "conv2d", {"inputs.input.layout": "CHX"}, "inputs.input.layout", "unknown layout 'CHX'"),
    ("repeated_layout_letter", "conv2d", {"inputs.input.layout": "HHW"}, "inputs.input.layout", "unknown layout 'HHW'"),
    (
        "hwio_for_depthwise_filter",
        "depthwise_conv2d",
        {"inputs.filter.layout": "HWIO"},
        "inputs.filter.layout",
        "unknown layout 'HWIO'",
    ),
    (
        "string_in_nested_literal",
        "conv2d",
        {"inputs.input.value": [[[1, 2, 0], [0, "one", 3], [2, 1, 1]]]},
        "inputs.input.value",
        "non-numeric literal 'one' at index [0][1][1]",
    ),
    (
        "true_in_nested_literal",
        "conv2d",
        {"inputs.input.value": [[[1, 2, 0], [0, 1, 3], [2, True, 1]]]},
        "inputs.input.value",
        "non-numeric literal True at index [0][2][1]",
    ),
    (
        "ragged_literal",
        "conv2d",
        {"inputs.input.value": [[[1, 2, 0], [0, 1], [2, 1, 1]]]},
        "inputs.input.value",
        "ragged literal",
    ),
    (
        "value_and_generate",
        "conv2d",
        {"inputs.input.generate": {"dist": "normal", "shape": [1, 3, 3]}},
        "inputs.input",
        "exactly one of",
    ),
    ("neither_value_nor_generate", "conv2d", {"inputs.input.value": DELETE}, "inputs.input", "exactly one of"),
    (
        "unknown_dist",
        "conv2d",
        {"inputs.input": {"layout": "CHW", "generate": {"dist": "gaussian", "shape": [1, 3, 3]}}},
        "inputs.input.generate.dist",
        "unknown distribution 'gaussian'",
    ),
    ("unknown_dtype", "conv2d", {"dtypes": ["float32", "float8"]}, "dtypes", "unknown dtype 'float8'"),
    (
        "int32_with_normal_generator",
        "conv2d",
        {"dtypes": ["int32"], "inputs.input": V},
        "inputs.input",
        "dtype int32 needs integer values",
    ),
    (
        "int32_with_fractional_literal",
        "conv2d",
        {"dtypes": ["int32"], "inputs.filters.value": [[[1, 0], [-1, 2.5]]]},
        "inputs.filters",
        "dtype int32 needs integer values",
    ),
    ("tolerance_without_reason", "conv2d", {"tolerance": {"c": 4}}, "tolerance.reason", "needs a written reason"),
    (
        "tolerance_blank_reason",
        "conv2d",
        {"tolerance": {"c": 4, "reason": "  "}},
        "tolerance.reason",
        "needs a written reason",
    ),
    ("unknown_data_format", "conv2d", {"attrs.data_format": "NWHC"}, "attrs.data_format", "got 'NWHC'"),
    ("kernel_on_data_operand", "conv2d", {"inputs.input.kernel": "convolution"}, "inputs.input.kernel", "only filters"),
    (
        "unknown_kernel_orientation",
        "conv2d",
        {"inputs.filters.kernel": "flipped"},
        "inputs.filters.kernel",
        "'flipped'",
    ),
    ("gradient_of_unknown_operand", "conv2d", {"gradients": ["input", "filter"]}, "gradients", "no operand 'filter'"),
    ("gradients_not_a_list", "conv2d", {"gradients": {"input": True}}, "gradients", "must be a list of strings"),
    ("gradient_named_twice", "conv2d", {"gradients": ["input", "input"]}, "gradients", "distinct operands"),
    ("block_bytes_zero", "conv2d", {"block_bytes": 0}, "block_bytes", "must be a positive int"),
    ("block_bytes_text", "conv2d", {"block_bytes": "1k"}, "block_bytes", "must be a positive int"),
    (
        "gradients_of_an_error_contract",
        "conv2d",
        {"gradients": "all", "expect_error": {"reference": "ValueError", "tensorflow": "InvalidArgumentError"}},
        "gradients",
        "an error contract",
    ),
]


@pytest.mark.parametrize("op, edits, field, fragment", [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_malformed_case_is_reported_and_the_others_still_load(tmp_path, op, edits, field, fragment):
    bad = edited(base_case(op, "bad"), edits)
    entries = load_cases(tmp_path, base_case("conv2d", "good_before"), bad, base_case(op, "good_after"))

    assert [type(e) for e in entries] == [Case, CaseError, Case]
    assert [entries[0].name, entries[2].name] == ["good_before", "good_after"]
    assert_names(entries[1], FILE, "bad", field, fragment)


def test_the_valid_base_cases_load(tmp_path):
    """Guards the table above: without edits every base case is valid."""
    entries = load_cases(tmp_path, *(base_case(op, op) for op in ("conv2d", "depthwise_conv2d", "conv2d_transpose")))
    assert all(isinstance(e, Case) for e in entries), entries


def test_missing_name_is_reported_by_position(tmp_path):
    bad = edited(base_case("conv2d", "ignored"), {"name": DELETE})
    entries = load_cases(tmp_path, base_case("conv2d", "first"), bad, base_case("conv2d", "third"))

    assert [type(e) for e in entries] == [Case, CaseError, Case]
    assert_names(entries[1], FILE, "#1", "name", "missing field")


def test_duplicate_case_name_keeps_the_first_and_reports_the_second(tmp_path):
    first = base_case("conv2d", "twin")
    second = edited(base_case("conv2d", "twin"), {"attrs.padding": "SAME"})
    entries = load_cases(tmp_path, first, base_case("conv2d", "other"), second)

    assert [type(e) for e in entries] == [Case, Case, CaseError]
    assert entries[0].attrs["padding"] == "VALID"
    assert_names(entries[2], FILE, "twin", "name", "duplicate case name")


def test_error_file_name_is_relative_to_root(tmp_path):
    entries = write(
        tmp_path, {"cases": [edited(base_case("conv2d", "bad"), {"op": "conv4d"})]}, name="cases/sub/file.yaml"
    )
    assert_names(entries[0], "cases/sub/file.yaml", "bad", "op", "unknown op")


# --- whole-file problems -----------------------------------------------------------------


def test_yaml_syntax_error_is_one_error_for_the_whole_file(tmp_path):
    entries = write(
        tmp_path,
        """\
        cases:
          - name: fine
            op: conv2d
            attrs: {strides: 1, padding: VALID
          - name: also_fine
        """,
    )
    assert len(entries) == 1
    assert_names(entries[0], FILE, None, None, "YAML syntax")


def test_top_level_list_is_an_error(tmp_path):
    entries = write(tmp_path, [base_case("conv2d", "listed")])
    assert len(entries) == 1
    assert_names(entries[0], FILE, None, None, "must be a mapping")


def test_unknown_top_level_key_is_an_error(tmp_path):
    entries = write(tmp_path, {"cases": [base_case("conv2d", "ok")], "casse": []})
    assert len(entries) == 1
    assert_names(entries[0], FILE, None, "casse", "unknown top-level field")


def test_empty_file_has_no_cases(tmp_path):
    assert write(tmp_path, "# nothing yet\n") == []


def test_python_tags_are_rejected_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    entries = write(
        tmp_path,
        f"""\
        cases:
          - name: evil
            op: !!python/object/apply:os.system ["touch {marker}"]
        """,
    )
    assert not marker.exists()
    assert len(entries) == 1
    assert_names(entries[0], FILE, None, None, "YAML syntax")


@pytest.mark.parametrize(
    "edits, field",
    [
        ({"op": ["conv2d"]}, "op"),
        (
            {"inputs.input": {"layout": "CHW", "generate": {"dist": ["normal"], "shape": [1, 3, 3]}}},
            "inputs.input.generate.dist",
        ),
    ],
    ids=["op_list", "dist_list"],
)
def test_unhashable_op_or_dist_is_a_case_error(tmp_path, edits, field):
    bad = edited(base_case("conv2d", "bad"), edits)
    entries = load_cases(tmp_path, bad, base_case("conv2d", "good"))
    assert [type(e) for e in entries] == [CaseError, Case]
    assert entries[1].name == "good"
    assert_names(entries[0], FILE, "bad", field, "")


# --- valid cases -------------------------------------------------------------------------


def test_default_dtypes_apply_unless_the_case_sets_its_own_and_tags_add_up(tmp_path):
    own = edited(base_case("conv2d", "own"), {"dtypes": ["float64"], "tags": ["mine"]})
    entries = load_cases(
        tmp_path, base_case("conv2d", "inherits"), own, defaults={"dtypes": ["float16", "bfloat16"], "tags": ["smoke"]}
    )
    inherits, own = entries

    assert (inherits.dtypes, inherits.tags) == (("float16", "bfloat16"), ("smoke",))
    assert (own.dtypes, own.tags) == (("float64",), ("smoke", "mine"))


def test_without_defaults_dtypes_are_float32_and_float64(tmp_path):
    case = only_case(load_cases(tmp_path, base_case("conv2d", "plain")))
    assert case.dtypes == ("float32", "float64")
    assert case.tags == ()
    assert case.id == f"{FILE}::plain"
    assert case.item_name("float32") == "plain[float32]"


def generated_case(name, **input_generate):
    return edited(
        base_case("conv2d", name),
        {
            "inputs.input": {"layout": "CHW", "generate": {"dist": "normal", "shape": [1, 3, 3], **input_generate}},
            "inputs.filters": {"layout": "IHW", "generate": {"dist": "normal", "shape": [1, 3, 3]}},
        },
    )


def test_generator_seeds_are_stable_and_differ_between_operands(tmp_path):
    doc = {"cases": [generated_case("a"), generated_case("b")]}
    first = write(tmp_path / "one", doc)
    second = write(tmp_path / "two", doc)  # another directory: only the root-relative name counts

    for c1, c2 in zip(first, second):
        for operand in ("input", "filters"):
            assert c1.inputs[operand].generator.seed == c2.inputs[operand].generator.seed
            np.testing.assert_array_equal(c1.inputs[operand].values(), c2.inputs[operand].values())
    a, b = first
    # same shape and distribution, different operands -> different seeds and values
    assert a.inputs["input"].generator.seed != a.inputs["filters"].generator.seed
    assert not np.array_equal(a.inputs["input"].values()[0], a.inputs["filters"].values()[0])
    # and the case name is part of the seed
    assert a.inputs["input"].generator.seed != b.inputs["input"].generator.seed


def test_explicit_generator_seed_is_used(tmp_path):
    case = only_case(load_cases(tmp_path, generated_case("seeded", seed=7)))
    assert case.inputs["input"].generator.seed == 7
    np.testing.assert_array_equal(case.inputs["input"].values(), np.random.default_rng(7).normal(0.0, 1.0, (1, 3, 3)))


def test_integer_generators_are_integer_valued(tmp_path):
    case = only_case(load_cases(tmp_path, base_case("conv2d_transpose", "ints")))
    values = case.inputs["input"].values()
    assert case.inputs["input"].integer_valued
    np.testing.assert_array_equal(values, np.round(values))
    assert values.min() >= -3 and values.max() <= 3


# Values 100*c + 10*h + w (or 100*i + 10*h + w) make every element name its own index.
X_CHW_INDEXED = [[[100 * c + 10 * h + w for w in range(4)] for h in range(3)] for c in range(2)]  # C=2, H=3, W=4
W_IHW_INDEXED = [[[100 * i + 10 * h + w for w in range(2)] for h in range(3)] for i in range(2)]  # I=2, H=3, W=2


def indexed_case(name, **edits):
    case = {
        "name": name,
        "op": "conv2d",
        "attrs": {"strides": 1, "padding": "VALID"},
        "inputs": {
            "input": {"layout": "CHW", "value": X_CHW_INDEXED},
            "filters": {"layout": "IHW", "value": W_IHW_INDEXED},
        },
    }
    return edited(case, edits)


def test_operand_array_converts_chw_to_nhwc(tmp_path):
    case = only_case(load_cases(tmp_path, indexed_case("chw")))
    x_nhwc = operand_array(case, "input", "float32")

    assert x_nhwc.shape == (1, 3, 4, 2)
    assert x_nhwc.dtype == np.float32
    assert x_nhwc[0, 0, 0, 0] == 0
    assert x_nhwc[0, 0, 3, 0] == 3  # c=0, h=0, w=3
    assert x_nhwc[0, 2, 0, 0] == 20  # c=0, h=2, w=0
    assert x_nhwc[0, 1, 2, 1] == 112  # c=1, h=1, w=2
    assert x_nhwc[0, 2, 3, 1] == 123
    assert x_nhwc.flags.c_contiguous


def test_operand_array_converts_ihw_to_hwio(tmp_path):
    case = only_case(load_cases(tmp_path, indexed_case("ihw")))
    w_hwio = operand_array(case, "filters", "float64")

    assert w_hwio.shape == (3, 2, 2, 1)
    assert w_hwio.dtype == np.float64
    assert w_hwio[0, 1, 0, 0] == 1  # i=0, h=0, w=1
    assert w_hwio[2, 0, 0, 0] == 20  # i=0, h=2, w=0
    assert w_hwio[1, 1, 1, 0] == 111
    assert w_hwio[2, 1, 1, 0] == 121


def test_operand_array_follows_data_format_nchw(tmp_path):
    case = only_case(load_cases(tmp_path, indexed_case("nchw", **{"attrs.data_format": "NCHW"})))
    x_nchw = operand_array(case, "input", "float32")
    w_hwio = operand_array(case, "filters", "float32")

    assert x_nchw.shape == (1, 2, 3, 4)
    assert x_nchw[0, 1, 2, 3] == 123  # c=1, h=2, w=3
    assert x_nchw[0, 0, 1, 2] == 12
    assert w_hwio.shape == (3, 2, 2, 1)  # filters stay HWIO whatever the data format


def test_convolution_kernel_is_the_correlation_kernel_rotated_180(tmp_path):
    correlation, convolution = load_cases(
        tmp_path,
        indexed_case("corr", **{"inputs.filters.kernel": "correlation"}),
        indexed_case("conv", **{"inputs.filters.kernel": "convolution"}),
    )
    w_corr_hwio = operand_array(correlation, "filters", "float64")
    w_conv_hwio = operand_array(convolution, "filters", "float64")

    np.testing.assert_array_equal(w_conv_hwio, np.flip(w_corr_hwio, axis=(0, 1)))
    # by hand: tap (h, w) of the rotated 3x2 kernel is tap (2 - h, 1 - w) of the written one
    assert w_conv_hwio[0, 0, 1, 0] == 121  # i=1, written h=2, w=1
    assert w_conv_hwio[2, 1, 0, 0] == 0  # i=0, written h=0, w=0
    assert w_conv_hwio[1, 0, 0, 0] == 11  # i=0, written h=1, w=1


def test_default_kernel_is_correlation(tmp_path):
    case = only_case(load_cases(tmp_path, indexed_case("plain")))
    assert case.inputs["filters"].kernel == "correlation"
    assert operand_array(case, "filters", "float64")[0, 0, 1, 0] == 100


# C=2, H=2, W=3. Only the layout matters here: the output shape is checked when the case runs.
EXPECTED_CHW = [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]


def test_expected_array_converts_to_the_data_format(tmp_path):
    nhwc, nchw = load_cases(
        tmp_path,
        indexed_case("nhwc", expected={"layout": "CHW", "value": EXPECTED_CHW}),
        indexed_case("nchw", expected={"layout": "CHW", "value": EXPECTED_CHW}, **{"attrs.data_format": "NCHW"}),
    )
    y_nhwc = expected_array(nhwc, "float32")
    y_nchw = expected_array(nchw, "float64")

    assert y_nhwc.shape == (1, 2, 3, 2) and y_nhwc.dtype == np.float32
    assert y_nhwc[0, 0, 2, 0] == 3  # c=0, h=0, w=2
    assert y_nhwc[0, 1, 0, 1] == 10  # c=1, h=1, w=0
    assert y_nchw.shape == (1, 2, 2, 3) and y_nchw.dtype == np.float64
    assert y_nchw[0, 1, 1, 2] == 12


def test_no_expected_gives_none(tmp_path):
    case = only_case(load_cases(tmp_path, indexed_case("none")))
    assert case.expected is None
    assert expected_array(case, "float32") is None


def test_expected_with_a_kernel_orientation_is_rejected(tmp_path):
    bad = indexed_case("bad", expected={"layout": "CHW", "value": EXPECTED_CHW, "kernel": "convolution"})
    (err,) = load_cases(tmp_path, bad)
    assert_names(err, FILE, "bad", "expected.kernel", "only filters")


@pytest.mark.parametrize("symbol, hw", [("smallest", (3, 3)), ("largest", (4, 4))])
def test_symbolic_output_shape_is_accepted_for_conv2d_transpose(tmp_path, symbol, hw):
    case = only_case(load_cases(tmp_path, edited(base_case("conv2d_transpose", "t"), {"attrs.output_shape": symbol})))
    assert case.attrs["output_shape"] == symbol

    # SAME, stride 2, kernel 3: forward inputs of size 3 and 4 both give 2 outputs
    spec = ops.get("conv2d_transpose")
    arrays = operand_arrays(case, "float64")
    assert spec.resolved(arrays, case.attrs)["output_shape"] == [1, *hw, 2]


@pytest.mark.parametrize("value", ["biggest", "SAME", ""])
def test_other_symbolic_output_shapes_are_rejected(tmp_path, value):
    bad = edited(base_case("conv2d_transpose", "t"), {"attrs.output_shape": value})
    entries = load_cases(tmp_path, bad, base_case("conv2d_transpose", "ok"))
    assert isinstance(entries[1], Case)
    assert_names(entries[0], FILE, "t", "attrs.output_shape", f"unknown value {value!r}")


def test_symbolic_output_shape_is_not_an_attribute_of_conv2d(tmp_path):
    (err,) = load_cases(tmp_path, edited(base_case("conv2d", "c"), {"attrs.output_shape": "smallest"}))
    assert_names(err, FILE, "c", "attrs.output_shape", "conv2d has no attribute 'output_shape'")


def test_tolerance_override_is_kept_with_its_reason(tmp_path):
    case = only_case(
        load_cases(
            tmp_path, edited(base_case("conv2d", "tol"), {"tolerance": {"c": 4, "atol": 1e-6, "reason": " known "}})
        )
    )
    assert (case.tolerance.reason, case.tolerance.c, case.tolerance.atol) == ("known", 4, 1e-6)


@pytest.mark.parametrize(
    "tensorflow",
    [
        {"onednn_kernel": "AbortedError", "eigen_kernel": "InvalidArgumentError"},
        {"onednn_on": "AbortedError", "onednn_off": "InvalidArgumentError"},
    ],
)
def test_an_error_contract_names_the_class_per_kernel_and_accepts_the_older_keys(tmp_path, tensorflow):
    contract = {"reference": "ValueError", "tensorflow": tensorflow}
    case = only_case(load_cases(tmp_path, edited(base_case("conv2d", "e"), {"expect_error": contract})))
    assert case.expect_error.tensorflow_error(eigen_kernel=False) == "AbortedError"
    assert case.expect_error.tensorflow_error(eigen_kernel=True) == "InvalidArgumentError"
    assert case.expect_error.tensorflow_error(eigen_kernel=None) is None  # not measured: the two differ
    one = only_case(
        load_cases(
            tmp_path,
            edited(
                base_case("conv2d", "f"),
                {"expect_error": {"reference": "ValueError", "tensorflow": "InvalidArgumentError"}},
            ),
        )
    )
    assert one.expect_error.tensorflow_error(eigen_kernel=None) == "InvalidArgumentError"
    (err,) = load_cases(
        tmp_path,
        edited(
            base_case("conv2d", "g"),
            {"expect_error": {"reference": "ValueError", "tensorflow": {"onednn_kernel": "AbortedError"}}},
        ),
    )
    assert_names(err, FILE, "g", "expect_error.tensorflow", "{onednn_kernel: Class, eigen_kernel: Class}")


def test_gradients_name_operands_in_the_op_order_and_all_names_every_operand(tmp_path):
    case = only_case(load_cases(tmp_path, edited(base_case("conv2d", "c"), {"gradients": ["filters", "input"]})))
    assert case.gradients == ("input", "filters")
    every = only_case(load_cases(tmp_path, edited(base_case("depthwise_conv2d", "d"), {"gradients": "all"})))
    assert every.gradients == ("input", "filter")
    assert only_case(load_cases(tmp_path, base_case("conv2d", "e"))).gradients == ()


def test_gradient_items_are_the_floating_dtypes_only(tmp_path):
    raw = edited(base_case("conv2d", "c"), {"gradients": "all", "dtypes": ["int32", "bfloat16", "float64"]})
    case = only_case(load_cases(tmp_path, raw))
    assert case.gradient_dtypes == ("bfloat16", "float64")
    assert case.item_name("float64", "gradients") == "c[float64:gradients]"
    assert only_case(load_cases(tmp_path, base_case("conv2d", "d"))).gradient_dtypes == ()


@pytest.mark.parametrize(
    "item_id, case",
    [
        ("cases/x.yaml::a/out=0x9[float32]", "cases/x.yaml::a/out=0x9[float32]"),
        ("cases/x.yaml::a[float64:gradients]", "cases/x.yaml::a[float64]"),
        ("cases/x.yaml::a[float32@onnxruntime]", "cases/x.yaml::a[float32]"),
        ("cases/x.yaml::a[bfloat16@tensorflow-xla]", "cases/x.yaml::a[bfloat16]"),
    ],
)
def test_an_item_names_its_case(item_id, case):
    assert item_case_id(item_id) == case
    assert split_case_id(item_case_id(item_id)) == (
        "cases/x.yaml",
        case.split("::")[1].split("[")[0],
        case.rpartition("[")[2][:-1],
    )
