"""Every op spec is complete: the generic tests that PyTorch's OpInfo derives from ``op_db``, over ``ops.OPS``.

A new op that misses a piece (a reference, a wrapper, cases, a relation name that does not exist...) fails here
with the op and the piece named, before anything else runs it.
"""

import dataclasses
import inspect

import numpy as np
import pytest

from harness import ops
from harness.conv import layouts, reference
from harness.conv.padding import ArgForms
from harness.registry import scaffold
from harness.registry.cases import operand_arrays, parse_case
from harness.selftest import relations
from harness.tf import kernel_probe, wrappers

SPECS = list(ops.OPS.values())
ids = [s.name for s in SPECS]


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_reference_and_wrapper_have_the_tf_nn_signature(spec):
    names = [o.name for o in spec.operands] + list(spec.attrs)
    for where, fn in (
        ("harness.conv.reference", spec.reference),
        ("harness.tf.wrappers", getattr(wrappers, spec.name)),
    ):
        params = list(inspect.signature(fn).parameters)
        assert params[: len(names)] == names, f"{where}.{spec.name}: parameters {params}, the spec says {names}"
        required = [p.name for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty]
        assert set(required) <= {o.name for o in spec.operands} | set(spec.required), (where, required)
    # The reference is the function of the op's name (convolution_2d's is tf.nn.convolution's: convolution)
    assert spec.reference.__name__ in (spec.name, spec.function.rsplit(".", 1)[-1])
    assert spec.reference is getattr(reference, spec.reference.__name__)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_layouts_and_forms_are_consistent(spec):
    assert spec.kind in ops.KINDS
    assert isinstance(spec.forms, ArgForms)
    for fmt in spec.formats:
        assert len(fmt) == spec.rank and set(fmt) == set(spec.formats[0]), fmt
        assert {"N", "C"} <= set(fmt) and set(layouts.spatial(fmt)) <= set(layouts.SPATIAL_LETTERS), fmt
    for o in spec.operands:
        assert o.kind in ("data", "filter"), o
        if o.kind == "filter":
            assert len(o.layout) == spec.rank, o
            assert set(layouts.spatial(spec.formats[0])) <= set(o.layout), o
    assert set(spec.required) <= set(spec.attrs)
    if spec.forms.stride_arg:
        assert spec.forms.stride_arg in spec.attrs
    assert spec.forms.dilation_arg in spec.attrs
    assert set(spec.defaults) <= set(spec.attrs)
    assert (len(spec.formats) > 1) == ("data_format" in spec.attrs)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_the_scaffold_default_case_runs_through_the_reference(spec):
    case = parse_case("<scaffold>", scaffold.new_case(spec.name), 0)
    arrays = operand_arrays(case, "float64")
    out = spec.call(spec.reference, arrays, spec.resolved(arrays, case.attrs))
    assert np.isfinite(out).all() and out.size > 0


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_tensorflow_kernels_are_probed(spec):
    assert spec.tf_kernels and set(spec.tf_kernels) <= set(kernel_probe.KERNELS), spec.tf_kernels
    assert set(spec.tf_gradient_kernels) <= set(kernel_probe.KERNELS), spec.tf_gradient_kernels


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_relations_named_by_the_spec_exist(spec):
    known = {r.name for r in relations.RELATIONS}
    assert set(spec.relations) <= known, set(spec.relations) - known


def test_every_relation_holds_for_some_op():
    assert all(r.ops for r in relations.RELATIONS), [r.name for r in relations.RELATIONS if not r.ops]


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_the_gradient_rule_has_one_gradient_per_operand(spec):
    if spec.gradient is None:
        pytest.skip(f"{spec.name} has no reference gradient rule")
    case = parse_case("<scaffold>", scaffold.new_case(spec.name), 0)
    arrays = operand_arrays(case, "float64")
    attrs = spec.resolved(arrays, case.attrs)
    y = spec.call(spec.reference, arrays, attrs)
    grads = spec.gradient(spec, arrays, attrs, np.ones_like(y))
    assert set(grads) == {o.name for o in spec.operands}
    for name, g in grads.items():
        assert np.shape(g) == np.shape(arrays[name]), name


def test_every_op_has_registry_cases(registry):
    have = {case.op for case in registry}
    assert set(ops.OPS) <= have, set(ops.OPS) - have


def test_get_names_the_known_ops():
    with pytest.raises(ValueError, match="known ops: " + ", ".join(ops.OPS)):
        ops.get("conv4d")


# --- the raw backprop ops (ops.RAW_OPS) ----------------------------------------------------------------------------

RAW = [s for s in ops.RAW_OPS.values() if s.kind == "backprop"]
RAW_CONV = [s for s in ops.RAW_OPS.values() if s.kind == "conv"]
FUSED = [s for s in ops.RAW_OPS.values() if s.kind == "fused"]


@pytest.mark.parametrize("spec", RAW_CONV, ids=[s.name for s in RAW_CONV])
def test_raw_conv_takes_tf_raw_ops_conv_s_arguments_and_names_its_layouts(spec):
    """tf.raw_ops.Conv, one spec per rank: the reference and the wrapper take the operands, then every attribute;
    its data_format values CHANNELS_LAST / CHANNELS_FIRST name the rank's two layouts."""
    assert spec.kind == "conv" and spec.function == "tf.raw_ops.Conv" and spec.reference is reference.conv
    for fn in (spec.reference, getattr(wrappers, spec.name)):
        params = list(inspect.signature(fn).parameters)
        assert params[:2] == ["input", "filter"] and set(spec.attrs) <= set(params), params
    channels_last, channels_first = spec.formats
    assert spec.data_format({"data_format": "CHANNELS_FIRST"}) == channels_first
    assert spec.data_format({}) == spec.data_format({"data_format": "CHANNELS_LAST"}) == channels_last
    assert spec.format_value(channels_first) == "CHANNELS_FIRST"
    moved, attrs = spec.in_format({}, {"strides": [1] * len(channels_last)}, channels_first)
    assert attrs["data_format"] == "CHANNELS_FIRST"


@pytest.mark.parametrize("spec", FUSED, ids=[s.name for s in FUSED])
def test_a_fused_op_takes_tf_raw_ops_positional_tensors_and_bounds_its_resize(spec):
    """FusedResizeAndPadConv2D / FusedPadConv2D: input, (size,) paddings and filter come first, as tf.raw_ops
    orders its tensors; only the resizing op rounds before its sums (OpSpec.rounding)."""
    assert spec.function.startswith("tf.raw_ops.Fused") and spec.formats == ("NHWC",)
    for fn in (spec.reference, getattr(wrappers, spec.name)):
        params = list(inspect.signature(fn).parameters)
        assert params[: len(spec.positional)] == list(spec.positional) and set(spec.attrs) <= set(params)
    assert (spec.rounding is not None) == ("size" in spec.attrs)


def test_the_resize_is_the_legacy_bilinear_one_and_its_rounding_bounds_a_float32_evaluation():
    """The reference interpolates at TensorFlow's legacy positions (float32 scale in / out, no half-pixel offset);
    the same formula evaluated in float32 stays within the bound that OpSpec.rounding adds."""
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
    one = np.ones((1, 1, 1, 1), np.float32)
    attrs = {"paddings": [[0, 0]] * 4, "mode": "REFLECT", "strides": [1, 1, 1, 1], "padding": "VALID"}
    y = reference.fused_resize_and_pad_conv2d(x, [6, 6], filter=one, **attrs)
    # row 1 reads position 4/6 = 0.6667 between rows 0 and 1: 1 + (5 - 1) * 0.6667 along H (column 0)
    np.testing.assert_allclose(y[0, :, 0, 0], [1, 1 + 4 * (2 / 3), 1 + 4 * (4 / 3), 9, 9 + 4 * (2 / 3), 13], rtol=1e-6)
    # A float32 evaluation of the op's own formula (the lerps in float32, as TensorFlow's kernel; then the same
    # padding and correlation), where interpolating between a huge and a tiny row rounds far above the sum's bound:
    # rows at positions i / 40 between 1e6 and 1e-3 (align_corners), a 1x1 filter (K = 1).
    x = np.array([1e6, 1e-3], np.float32).reshape(1, 2, 1, 1)
    w = np.full((1, 1, 1, 2), 0.75, np.float32)
    spec = ops.get("fused_resize_and_pad_conv2d")
    attrs = {"size": [41, 1], "paddings": [[0, 0], [2, 1], [0, 0], [0, 0]], "mode": "SYMMETRIC",
             "strides": [1, 1, 1, 1], "padding": "VALID", "resize_align_corners": True}  # fmt: skip
    arrays = {"input": x, "filter": w}
    want = spec.call(spec.reference, arrays, attrs).astype(np.float64)
    rows = reference._legacy_resampling(2, 41, True)
    top, bottom, lerp = x[:, rows.low], x[:, rows.high], rows.lerp.astype(np.float32)[:, None, None]
    resized = (top + (bottom - top) * lerp).astype(np.float32)  # float32 throughout, as TensorFlow's kernel
    padded = np.pad(resized, attrs["paddings"], mode="symmetric")
    got = reference.conv2d(padded.astype(np.float64), w.astype(np.float64), 1, "VALID")
    bound = spec.bound(arrays, attrs, np.float32)
    assert (np.abs(got - want) <= bound.per_element).all()
    plain = dataclasses.replace(spec, rounding=None).bound(arrays, attrs, np.float32)
    assert not (np.abs(got - want) <= plain.per_element).all()  # without the resize's term it would not hold
    assert not bound.exact and bound.quantum == 0.0  # a resize leaves no exact sums to rely on


@pytest.mark.parametrize("spec", RAW, ids=[s.name for s in RAW])
def test_a_raw_op_has_tf_raw_ops_signature_and_is_named_by_a_forward_op(spec):
    """Reference and wrapper take ``positional`` (the operands and the sizes argument, or, for an op that reads
    only an operand's shape, the operands) first, then the other attributes by keyword; some tf.nn op names it as
    its raw backprop op, unless TensorFlow's own gradients never call it; its output layout is a filter layout for
    a filter gradient."""
    assert spec.kind == "backprop" and spec.function.startswith(("tf.raw_ops.", "tf.nn."))
    operands = [o.name for o in spec.operands]
    positional = spec.positional or tuple(operands)
    if spec.shape_operand is None:
        assert set(positional) == {*operands, spec.required[0]}
    else:  # the operand takes the sizes argument's place
        assert spec.required[0] == "strides" and len(operands) == 3 and not spec.tf_kernels
    for where, fn in (
        ("harness.conv.reference", spec.reference),
        ("harness.tf.wrappers", getattr(wrappers, spec.name)),
    ):
        params = list(inspect.signature(fn).parameters)
        assert params[: len(positional)] == list(positional), (where, params)
        assert set(spec.attrs) <= set(params), (where, set(spec.attrs) - set(params))
    forward, wrt = spec.gradient_of
    assert wrt in {o.name for o in ops.get(forward).operands}
    named = {n for s in SPECS for n in s.raw_backprop.values()}
    assert spec.name in named or spec.function.startswith("tf.nn.") or spec.shape_operand is not None
    assert (spec.output_layout != "") == (ops.get(forward).operand(wrt).kind == "filter")
    assert set(spec.tf_kernels) <= set(kernel_probe.KERNELS)


def test_an_op_that_reads_an_operand_s_shape_equals_the_op_given_its_sizes():
    """Conv2DBackpropInputV2 / FilterV2 and the 3-D V1 ops compute what the sizes-taking op computes for the shape
    of their input / filter, whatever that operand holds."""
    rng = np.random.default_rng(0)
    x, w, dy = rng.normal(size=(2, 5, 6, 2)), rng.normal(size=(3, 2, 2, 4)), rng.normal(size=(2, 3, 3, 4))
    window = {"strides": [1, 2, 2, 1], "padding": "SAME"}
    np.testing.assert_array_equal(
        reference.conv2d_backprop_input_v2(np.full_like(x, np.nan), w, dy, **window),
        reference.conv2d_backprop_input(list(x.shape), w, dy, **window),
    )
    np.testing.assert_array_equal(
        reference.conv2d_backprop_filter_v2(x, np.full_like(w, np.nan), dy, **window),
        reference.conv2d_backprop_filter(x, list(w.shape), dy, **window),
    )
    with pytest.raises(ValueError, match="'input' has dtype float32 but 'filter' has dtype float64"):
        reference.conv2d_backprop_input_v2(x.astype(np.float32), w, dy, **window)
    x3, w3, dy3 = rng.normal(size=(1, 3, 4, 5, 2)), rng.normal(size=(2, 3, 2, 2, 3)), rng.normal(size=(1, 2, 4, 3, 3))
    window = {"strides": [1, 2, 1, 2, 1], "padding": "SAME"}
    np.testing.assert_array_equal(
        reference.conv3d_backprop_input(np.full_like(x3, np.nan), w3, dy3, **window),
        reference.conv3d_backprop_input_v2(list(x3.shape), w3, dy3, **window),
    )
    np.testing.assert_array_equal(
        reference.conv3d_backprop_filter(x3, np.full_like(w3, np.nan), dy3, **window),
        reference.conv3d_backprop_filter_v2(x3, list(w3.shape), dy3, **window),
    )


def test_every_raw_op_has_value_cases_and_error_contracts(registry):
    for name in ops.RAW_OPS:
        cases = [c for c in registry if c.op == name]
        assert any(c.expect_error for c in cases) and any(not c.expect_error for c in cases), name


def test_arguments_put_a_raw_op_s_sizes_between_its_operands():
    spec = ops.get("conv2d_backprop_filter")
    x, dy = np.zeros((1, 5, 5, 2)), np.zeros((1, 3, 3, 4))
    args, kwargs = spec.arguments(
        {"input": x, "out_backprop": dy}, {"filter_sizes": [3, 3, 2, 4], "strides": [1, 1, 1, 1], "padding": "VALID"}
    )
    assert args[0] is x and args[1] == [3, 3, 2, 4] and args[2] is dy
    assert kwargs == {"strides": [1, 1, 1, 1], "padding": "VALID"}


def test_in_format_moves_the_data_and_every_format_ordered_attribute():
    spec = ops.get("conv2d_backprop_input")
    w, dy = np.zeros((2, 3, 4, 5)), np.zeros((1, 6, 7, 5))
    attrs = {
        "input_sizes": [1, 6, 7, 4],
        "strides": [1, 2, 1, 1],
        "padding": "EXPLICIT",
        "explicit_paddings": [0, 0, 1, 2, 3, 4, 0, 0],
        "data_format": "NHWC",
    }
    arrays, moved = spec.in_format({"filter": w, "out_backprop": dy}, attrs, "NCHW")
    assert arrays["filter"] is w and arrays["out_backprop"].shape == (1, 5, 6, 7)
    assert moved == {
        "input_sizes": [1, 4, 6, 7],
        "strides": [1, 1, 2, 1],
        "padding": "EXPLICIT",
        "explicit_paddings": [0, 0, 0, 0, 1, 2, 3, 4],
        "data_format": "NCHW",
    }
    # per-spatial-axis values do not depend on the format
    _, moved = ops.get("conv2d").in_format(
        {"input": dy, "filters": w}, {"strides": [2, 1], "padding": [[0, 0], [1, 2], [3, 4], [0, 0]]}, "NCHW"
    )
    assert moved["strides"] == [2, 1] and moved["padding"] == [[0, 0], [0, 0], [1, 2], [3, 4]]
