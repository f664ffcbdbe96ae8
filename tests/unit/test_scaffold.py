"""harness.registry.scaffold (`harness new OP`): default cases for every op, given options honoured, output shapes, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from harness import ops
from harness.registry.cases import operand_array, operand_arrays, parse_case
from harness.registry.scaffold import ScaffoldError, describe, new_case, parse_attr, parse_shape


def out_size(n: int, k: int, s: int = 1, d: int = 1, padding: str = "SAME") -> int:
    """TensorFlow's output size along one axis (README, "Conventions"), written out here independently."""
    k_eff = (k - 1) * d + 1
    return math.ceil(n / s) if padding == "SAME" else math.ceil((n - k_eff + 1) / s)


def output_comment(case: dict) -> str:
    return describe(case).splitlines()[0]


@pytest.mark.parametrize("op", ops.scaffolded())
def test_every_op_has_a_default_case_that_loads_and_runs(op):
    raw = new_case(op)
    case = parse_case("cases/new.yaml", raw, 0)
    spec = ops.get(op)
    assert set(raw["inputs"]) == {o.name for o in spec.operands}
    assert set(spec.required) <= set(raw["attrs"])
    for name, t in raw["inputs"].items():
        assert set(t["generate"]) == {"dist", "shape", "seed"} and t["generate"]["dist"] == "normal"
        assert t["layout"] == spec.operand(name).op_layout(spec.formats[0])
    assert raw["dtypes"] == ["float32", "float64"] and "expected" not in raw
    for dtype in raw["dtypes"]:
        arrays = operand_arrays(case, dtype)
        assert spec.call(spec.reference, arrays, case.attrs).size > 0
    text = describe(raw)
    assert text.startswith("# output: ")
    assert yaml.safe_load(text) == {"cases": [raw]}


def test_the_defaults_are_the_documented_ones():
    assert new_case("conv2d")["inputs"]["input"]["generate"]["shape"] == [1, 8, 8, 3]
    assert new_case("conv2d")["inputs"]["filters"]["generate"]["shape"] == [3, 3, 3, 4]
    assert new_case("conv2d")["attrs"] == {"strides": 1, "padding": "SAME"}
    assert new_case("conv1d")["inputs"]["filters"]["generate"]["shape"] == [3, 3, 4]
    assert new_case("atrous_conv2d")["attrs"] == {"rate": 2, "padding": "SAME"}
    sep = new_case("separable_conv2d")["inputs"]
    assert sep["depthwise_filter"]["generate"]["shape"] == [3, 3, 3, 2]
    assert sep["pointwise_filter"]["generate"]["shape"] == [1, 1, 6, 4]


def test_given_shapes_attrs_dtypes_tags_and_name_are_honoured():
    raw = new_case(
        "conv2d",
        name="mine",
        shapes={"input": [2, 10, 12, 5]},
        attrs={"strides": 2, "padding": "VALID"},
        dtypes=["float16", "float32"],
        tags=["new", "stride2"],
    )
    assert raw["name"] == "mine" and raw["dtypes"] == ["float16", "float32"] and raw["tags"] == ["new", "stride2"]
    assert raw["attrs"] == {"strides": 2, "padding": "VALID"}
    assert raw["inputs"]["input"]["generate"]["shape"] == [2, 10, 12, 5]
    assert raw["inputs"]["filters"]["generate"]["shape"] == [3, 3, 5, 4]  # the default filter fits the channels
    assert (
        output_comment(raw) == f"# output: NHWC [2, {out_size(10, 3, 2, padding='VALID')}, "
        f"{out_size(12, 3, 2, padding='VALID')}, 4]"
    )  # [2, 4, 5, 4]


def test_channels_first_and_dilations():
    raw = new_case(
        "conv2d",
        shapes={"input": [1, 3, 9, 7], "filters": [2, 3, 3, 5]},
        attrs={"data_format": "NCHW", "strides": [1, 1, 2, 2], "padding": "SAME", "dilations": [1, 1, 2, 2]},
    )
    assert raw["inputs"]["input"]["layout"] == "NCHW"
    assert output_comment(raw) == f"# output: NCHW [1, 5, {out_size(9, 2, 2, 2)}, {out_size(7, 3, 2, 2)}]"  # 5, 4


def test_declared_layouts_are_honoured():
    raw = new_case("conv2d", layouts={"input": "CHW", "filters": "OIHW"})
    assert raw["inputs"]["input"]["layout"] == "CHW" and raw["inputs"]["input"]["generate"]["shape"] == [3, 8, 8]
    assert raw["inputs"]["filters"]["generate"]["shape"] == [4, 3, 3, 3]
    case = parse_case("cases/new.yaml", raw, 0)
    assert operand_array(case, "filters", "float32").shape == (3, 3, 3, 4)
    assert output_comment(raw) == "# output: NHWC [1, 8, 8, 4]"


def test_conv1d_output_shape():
    raw = new_case("conv1d", shapes={"input": [2, 20, 3]}, attrs={"stride": 3, "padding": "VALID", "dilations": 2})
    assert output_comment(raw) == f"# output: NWC [2, {out_size(20, 3, 3, 2, 'VALID')}, 4]"  # [2, 6, 4]


def test_depthwise_and_separable_output_channels():
    depthwise = new_case("depthwise_conv2d", shapes={"filter": [3, 3, 3, 3]})
    assert output_comment(depthwise) == "# output: NHWC [1, 8, 8, 9]"
    raw = new_case(
        "separable_conv2d",
        shapes={"input": [1, 6, 6, 2], "depthwise_filter": [3, 3, 2, 3]},
        attrs={"strides": [1, 2, 2, 1], "padding": "VALID"},
    )
    assert raw["inputs"]["pointwise_filter"]["generate"]["shape"] == [1, 1, 6, 4]
    assert output_comment(raw) == f"# output: NHWC [1, {out_size(6, 3, 2, padding='VALID')}, 2, 4]"  # [1, 2, 2, 4]


def test_transpose_gets_an_output_shape_a_forward_conv_maps_back():
    same = new_case("conv2d_transpose")
    assert same["attrs"]["output_shape"] == [1, 16, 16, 4]  # n * stride
    assert out_size(16, 3, 2) == 8
    valid = new_case(
        "conv2d_transpose",
        shapes={"input": [1, 5, 4, 3], "filters": [3, 2, 6, 3]},
        attrs={"strides": 3, "padding": "VALID"},
    )
    h, w = (5 - 1) * 3 + 3, (4 - 1) * 3 + 2  # (n - 1) * s + k
    assert valid["attrs"]["output_shape"] == [1, h, w, 6]
    assert (out_size(h, 3, 3, padding="VALID"), out_size(w, 2, 3, padding="VALID")) == (5, 4)
    assert output_comment(valid) == f"# output: NHWC [1, {h}, {w}, 6]"
    assert list(valid["attrs"]) == ["output_shape", "strides", "padding"]  # tf.nn's order


def test_symbolic_output_shapes_are_described_per_variant():
    text = describe(new_case("conv2d_transpose", attrs={"output_shape": "all", "strides": 2}))
    assert text.splitlines()[:4] == [
        f"# output (out={h}x{w}): NHWC [1, {h}, {w}, 4]  output_shape=[1, {h}, {w}, 4]"
        for h in (15, 16)
        for w in (15, 16)
    ]


def test_an_integer_dtype_gets_integer_values():
    raw = new_case("conv2d", dtypes=["int32", "float32"])
    assert {t["generate"]["dist"] for t in raw["inputs"].values()} == {"integers"}
    parse_case("cases/new.yaml", raw, 0)


def test_seeds_are_explicit_and_depend_on_name_and_operand():
    a, b = new_case("conv2d", name="a"), new_case("conv2d", name="b")
    seeds = {t["generate"]["seed"] for raw in (a, b) for t in raw["inputs"].values()}
    assert len(seeds) == 4
    assert new_case("conv2d", name="a") == a


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"op": "conv4d"}, "unknown op 'conv4d'; known ops: conv2d, depthwise_conv2d"),
        (
            {"op": "conv2d", "shapes": {"filters": [3, 3]}},
            "--shape filters=3,3: conv2d's filters is HWIO (4 axes), got 2",
        ),
        ({"op": "conv2d", "shapes": {"input": [1, -5, 5, 3]}}, "--shape input=1,-5,5,3: sizes must be non-negative"),
        (
            {"op": "conv2d", "shapes": {"bias": [4]}},
            "--shape bias=4: conv2d has no operand 'bias'; it takes input, filters",
        ),
        (
            {"op": "conv2d", "shapes": {"input": [1, 5, 5, 2], "filters": [3, 3, 3, 4]}},
            "--shape filters=3,3,3,4: the reference rejects this configuration: conv2d: argument 'filters' has in_channels",
        ),
        (
            {"op": "conv2d", "attrs": {"strides": 0}},
            "--attr strides=0: the reference rejects this configuration: "
            "conv2d: argument 'strides'=0: every value must be positive",
        ),
        (
            {"op": "conv2d", "attrs": {"padding": "same"}},
            "--attr padding=same: the reference rejects this configuration",
        ),
        (
            {"op": "conv2d", "attrs": {"groups": 2}},
            "--attr groups=2: conv2d has no attribute 'groups'; it takes strides",
        ),
        (
            {"op": "conv2d", "attrs": {"data_format": "NCW"}},
            "--attr data_format=NCW: conv2d takes data_format NHWC or NCHW",
        ),
        (
            {"op": "depthwise_conv2d", "attrs": {"strides": 2}},
            "--attr strides=2: the reference rejects this configuration",
        ),
        (
            {"op": "conv2d_transpose", "attrs": {"output_shape": [1, 3, 3, 4]}},
            "--attr output_shape=[1, 3, 3, 4]: the reference rejects this configuration",
        ),
        (
            {"op": "conv2d", "layouts": {"filters": "HWXO"}},
            "--layout filters=HWXO: unknown layout for conv2d's filters",
        ),
        ({"op": "conv2d", "layouts": {"kernel": "HWIO"}}, "--layout kernel=HWIO: conv2d has no operand 'kernel'"),
        (
            {
                "op": "conv2d",
                "layouts": {"filters": "IHW"},
                "shapes": {"filters": [3, 3, 3]},
                "attrs": {"padding": "FULL"},
            },
            "--attr padding=FULL",
        ),
        ({"op": "conv2d", "dtypes": ["float8"]}, "--dtype float8: unknown dtype; expected some of float16"),
        ({"op": "conv2d", "dtypes": []}, "--dtype: give at least one"),
        ({"op": "conv2d", "tags": [""]}, "--tag '': expected a non-empty name"),
        ({"op": "conv2d", "name": ""}, "--name '': expected a non-empty one-line name"),
    ],
)
def test_bad_arguments_raise_naming_the_option(kwargs, message):
    with pytest.raises(ScaffoldError) as info:
        new_case(kwargs.pop("op"), **kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_kernel_that_does_not_fit_names_every_option_that_decides_the_fit():
    with pytest.raises(ScaffoldError) as info:
        new_case("conv2d", shapes={"input": [1, 2, 2, 3]}, attrs={"padding": "VALID", "dilations": 2})
    assert str(info.value).startswith(
        "--attr padding=VALID, --shape input=1,2,2,3, --shape filters=3,3,3,4 (default), "
        "--attr dilations=2: the reference rejects this configuration: conv2d: the "
        "filter's effective kernel size 5"
    )


def test_describe_rejects_an_invalid_case():
    raw = new_case("conv2d")
    raw["inputs"]["filters"]["generate"]["shape"] = [3, 3, 2, 4]
    with pytest.raises(ScaffoldError, match="--shape filters=3,3,2,4: the reference rejects"):
        describe(raw)
    with pytest.raises(ScaffoldError, match="field 'op'"):
        describe({**raw, "op": "conv4d"})


@pytest.mark.parametrize(
    "text, shape",
    [("1,8,8,3", [1, 8, 8, 3]), ("1x8x8x3", [1, 8, 8, 3]), ("[3, 3]", [3, 3]), ("5", [5]), (" 2 X 0 ", [2, 0])],
)
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "1,,3", "1;2", "a,b", "1,-2", "1.5,2", "[]"])
def test_parse_shape_rejects(text):
    with pytest.raises(ScaffoldError, match=f"shape {text!r}".replace("[", r"\[").replace("]", r"\]")):
        parse_shape(text)


@pytest.mark.parametrize(
    "text, pair",
    [
        ("strides=2", ("strides", 2)),
        ("padding=SAME", ("padding", "SAME")),
        ("strides=[1,2,2,1]", ("strides", [1, 2, 2, 1])),
        ("strides=1,2,2,1", ("strides", [1, 2, 2, 1])),
        ("padding=[[0,0],[1,1],[2,2],[0,0]]", ("padding", [[0, 0], [1, 1], [2, 2], [0, 0]])),
        ("output_shape=smallest", ("output_shape", "smallest")),
        ("dilations=null", ("dilations", None)),
        (" rate = 2 ", ("rate", 2)),
    ],
)
def test_parse_attr(text, pair):
    assert parse_attr(text) == pair


@pytest.mark.parametrize("text", ["strides", "=2", "strides=", "1x=2", "padding=[[0,0]"])
def test_parse_attr_rejects(text):
    with pytest.raises(ScaffoldError) as info:
        parse_attr(text)
    assert f"attribute {text!r}" in str(info.value)


def test_parsed_options_build_a_case():
    attrs = dict(parse_attr(t) for t in ["strides=1,2", "padding=[[0,0],[1,1],[2,2],[0,0]]"])
    raw = new_case("conv2d", shapes={"input": parse_shape("2x6x7x3")}, attrs=attrs)
    # explicit padding: out = (n + before + after - k_eff) // s + 1
    assert output_comment(raw) == f"# output: NHWC [2, {(6 + 2 - 3) // 1 + 1}, {(7 + 4 - 3) // 2 + 1}, 4]"
    assert np.array_equal(parse_case("n.yaml", raw, 0).attrs["padding"], [[0, 0], [1, 1], [2, 2], [0, 0]])
