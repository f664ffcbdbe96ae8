"""The backprop references are the adjoints of the forward references (pure NumPy, float64, no TensorFlow).

For a convolution y = conv(x, w), linear in x and in w, and any y-shaped array dy:

    <conv(x, w), dy> == <x, backprop_input(x.shape, w, dy)> == <w, backprop_filter(x, w.shape, dy)>

and, for conv2d, also == <x, conv2d_transpose(dy, w, output_shape=x.shape)>. Every side sums
the same products x * w * dy, so all agree to within the tolerance model's bound for that
triple sum: c * u * K * S, with S the sum of |x| |w| |dy| over the terms and K their number
(``bound_for`` applied to the scalar form below). The configurations are every combination
of the sweeps in cases/sweeps/conv2d.yaml and depthwise.yaml (both data formats), expanded
by harness.registry.sweeps, so the test follows the sweep files.
"""

import os

import numpy as np
import pytest
from support import ROOT

from harness import ops
from harness.conv import reference
from harness.conv.tolerance import bound_for, compare
from harness.ops import gradients
from harness.registry.cases import Case, operand_array
from harness.registry.loader import load_file
from harness.registry.sweeps import SWEEP_ENV


def _sweep_cases(file: str, op: str) -> list[Case]:
    """Every combination of the sweeps of ``op`` in ``file`` (HARNESS_SWEEP=full semantics), whose kernel fits."""
    saved = os.environ.get(SWEEP_ENV)
    os.environ[SWEEP_ENV] = "full"
    try:
        entries = load_file(ROOT / "cases" / "sweeps" / file, ROOT)
    finally:
        if saved is None:
            del os.environ[SWEEP_ENV]
        else:
            os.environ[SWEEP_ENV] = saved
    spec = ops.get(op)
    cases = [c for c in entries if isinstance(c, Case) and c.op == op]
    return [
        c
        for c in cases
        if ops.kernel_fits(spec, {o.name: operand_array(c, o.name, "float64").shape for o in spec.operands}, c.attrs)
    ]


CONV2D_CASES = _sweep_cases("conv2d.yaml", "conv2d")
DEPTHWISE_CASES = _sweep_cases("depthwise.yaml", "depthwise_conv2d")


def test_the_sweeps_cover_every_padding_stride_dilation_and_format():
    for cases in (CONV2D_CASES, DEPTHWISE_CASES):
        fmts = {ops.get(c.op).data_format(c.attrs) for c in cases}
        paddings = {c.attrs["padding"] if isinstance(c.attrs["padding"], str) else "explicit" for c in cases}
        strided = {any(v > 1 for v in np.ravel(c.attrs["strides"])) for c in cases}
        dilated = {any(v > 1 for v in np.ravel(c.attrs.get("dilations") or 1)) for c in cases}
        assert fmts == {"NHWC", "NCHW"} and paddings == {"SAME", "VALID", "explicit"}
        assert strided == {True, False} and dilated == {True, False}
    # every combination of the grid whose kernel fits (none of these sweeps drops any)
    assert len(CONV2D_CASES) == len(
        [
            c
            for c in load_file(ROOT / "cases" / "sweeps" / "conv2d.yaml", ROOT)
            if isinstance(c, Case) and c.op == "conv2d"
        ]
    )


def _check_equal_inner_products(forward, x, w, dy, attrs, sides: dict) -> None:
    """Every side equals <forward(x, w), dy> within the bound of the triple sum x * w * dy."""

    def triple(x, w, dy, **attrs):  # the scalar form <forward(x, w), dy>: trilinear, so bound_for applies
        return np.asarray(np.vdot(forward(x, w, **attrs), dy))

    bound = bound_for(triple, {"x": x, "w": w, "dy": dy}, attrs, np.float64)
    lhs = triple(x, w, dy, **attrs)
    assert not bound.exact and bound.per_element > 0
    for name, value in sides.items():
        result = compare(name, np.asarray(value), "<forward, dy>", lhs, bound)
        assert result.ok, result.line()


@pytest.mark.parametrize("case", CONV2D_CASES, ids=lambda c: c.name)
def test_conv2d_adjoints(case):
    spec = ops.get("conv2d")
    fmt = spec.data_format(case.attrs)
    x, w_hwio = (operand_array(case, o.name, "float64") for o in spec.operands)
    dy = np.random.default_rng(len(case.name)).normal(size=reference.conv2d(x, w_hwio, **case.attrs).shape)
    raw = gradients.raw_attrs(ops.get("conv2d"), case.attrs, fmt)
    d_input = reference.conv2d_backprop_input(list(x.shape), w_hwio, dy, **raw)
    d_filter = reference.conv2d_backprop_filter(x, list(w_hwio.shape), dy, **raw)
    transposed = reference.conv2d_transpose(
        dy,
        w_hwio,
        list(x.shape),
        case.attrs["strides"],
        case.attrs["padding"],
        data_format=fmt,
        dilations=case.attrs.get("dilations"),
    )
    assert d_input.shape == x.shape and d_filter.shape == w_hwio.shape
    _check_equal_inner_products(
        reference.conv2d,
        x,
        w_hwio,
        dy,
        case.attrs,
        {
            "<x, conv2d_transpose(dy, w)>": np.vdot(x, transposed),
            "<x, conv2d_backprop_input>": np.vdot(x, d_input),
            "<w, conv2d_backprop_filter>": np.vdot(w_hwio, d_filter),
        },
    )


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=lambda c: c.name)
def test_depthwise_adjoints(case):
    spec = ops.get("depthwise_conv2d")
    fmt = spec.data_format(case.attrs)
    x, w_hwim = (operand_array(case, o.name, "float64") for o in spec.operands)
    dy = np.random.default_rng(len(case.name)).normal(size=reference.depthwise_conv2d(x, w_hwim, **case.attrs).shape)
    raw = gradients.raw_attrs(ops.get("depthwise_conv2d"), case.attrs, fmt)
    d_input = reference.depthwise_conv2d_native_backprop_input(list(x.shape), w_hwim, dy, **raw)
    d_filter = reference.depthwise_conv2d_native_backprop_filter(x, list(w_hwim.shape), dy, **raw)
    assert d_input.shape == x.shape and d_filter.shape == w_hwim.shape
    _check_equal_inner_products(
        reference.depthwise_conv2d,
        x,
        w_hwim,
        dy,
        case.attrs,
        {
            "<x, depthwise_backprop_input>": np.vdot(x, d_input),
            "<w, depthwise_backprop_filter>": np.vdot(w_hwim, d_filter),
        },
    )


def test_the_adjoint_check_catches_an_off_by_one_tap():
    """A backprop that reads one tap too far must fail the same check (the test can fail)."""
    rng = np.random.default_rng(0)
    x, w_hwio = rng.normal(size=(1, 6, 5, 2)), rng.normal(size=(3, 3, 2, 3))
    attrs = {"strides": 1, "padding": "SAME"}
    dy = rng.normal(size=reference.conv2d(x, w_hwio, **attrs).shape)
    shifted = np.roll(reference.conv2d_backprop_input(list(x.shape), w_hwio, dy, [1, 1, 1, 1], "SAME"), 1, axis=2)
    with pytest.raises(AssertionError):
        _check_equal_inner_products(reference.conv2d, x, w_hwio, dy, attrs, {"shifted": np.vdot(x, shifted)})


def test_input_sizes_may_be_the_two_spatial_sizes():
    rng = np.random.default_rng(1)
    w_hwio, dy_nchw = rng.normal(size=(3, 2, 3, 4)), rng.normal(size=(2, 4, 4, 3))
    full = reference.conv2d_backprop_input([2, 3, 7, 6], w_hwio, dy_nchw, [1, 1, 2, 2], "SAME", data_format="NCHW")
    spatial = reference.conv2d_backprop_input([7, 6], w_hwio, dy_nchw, [1, 1, 2, 2], "SAME", data_format="NCHW")
    assert full.shape == (2, 3, 7, 6)
    np.testing.assert_array_equal(full, spatial)


# --- bad arguments ------------------------------------------------------------------------

RNG = np.random.default_rng(2)
X = RNG.normal(size=(1, 7, 6, 3)).astype(np.float32)
W_HWIO = RNG.normal(size=(3, 2, 3, 4)).astype(np.float32)
DY = RNG.normal(size=(1, 4, 3, 4)).astype(np.float32)  # conv2d(X, W_HWIO, strides 2, SAME)
W_HWIM = RNG.normal(size=(3, 2, 3, 2)).astype(np.float32)
DY_DW = RNG.normal(size=(1, 4, 3, 6)).astype(np.float32)
GOOD = {
    "conv2d_backprop_input": dict(
        input_sizes=[1, 7, 6, 3], filter=W_HWIO, out_backprop=DY, strides=[1, 2, 2, 1], padding="SAME"
    ),
    "conv2d_backprop_filter": dict(
        input=X, filter_sizes=[3, 2, 3, 4], out_backprop=DY, strides=[1, 2, 2, 1], padding="SAME"
    ),
    "depthwise_conv2d_native_backprop_input": dict(
        input_sizes=[1, 7, 6, 3], filter=W_HWIM, out_backprop=DY_DW, strides=[1, 2, 2, 1], padding="SAME"
    ),
    "depthwise_conv2d_native_backprop_filter": dict(
        input=X, filter_sizes=[3, 2, 3, 2], out_backprop=DY_DW, strides=[1, 2, 2, 1], padding="SAME"
    ),
}
EXPLICIT = dict(padding="EXPLICIT", explicit_paddings=[0, 0, 1, 1, 0, 1, 0, 0])
COMMON_BAD = [  # (changes, the argument the message must name)
    (dict(strides=[2, 2]), "strides"),
    (dict(strides=2), "strides"),
    (dict(strides=[2, 2, 2, 1]), "strides"),
    (dict(strides=[1, 0, 2, 1]), "strides"),
    (dict(dilations=[1, 2]), "dilations"),
    (dict(dilations=[1, 1, 1, 2]), "dilations"),
    (dict(padding="same"), "padding"),
    (dict(padding=[[0, 0], [1, 1], [1, 1], [0, 0]]), "padding"),
    (dict(padding="EXPLICIT"), "explicit_paddings"),
    (dict(explicit_paddings=[0, 0, 1, 1, 0, 1, 0, 0]), "explicit_paddings"),
    (dict(EXPLICIT, explicit_paddings=[1, 1, 0, 1, 0, 0]), "explicit_paddings"),
    (dict(EXPLICIT, explicit_paddings=[0, 0, -1, 1, 0, 1, 0, 0]), "explicit_paddings"),
    (dict(EXPLICIT, explicit_paddings=[0, 0, 1, 1, 0, 1, 1, 0]), "explicit_paddings"),
    (dict(data_format="NWHC"), "data_format"),
    (dict(padding="VALID"), None),  # out_backprop's size no longer matches: named below per op
]
SPECIFIC_BAD = {
    "conv2d_backprop_input": [
        (dict(input_sizes=[1, 7, 6]), "input_sizes"),
        (dict(input_sizes=[1.0, 7.0, 6.0, 3.0]), "input_sizes"),
        (dict(input_sizes=[1, 9, 6, 3]), "input_sizes"),
        (dict(input_sizes=[2, 7, 6, 3]), "input_sizes"),
        (dict(input_sizes=[1, 7, 6, 5]), "input_sizes"),
        (dict(filter=W_HWIO[0]), "filter"),
        (dict(out_backprop=DY.astype(np.float64)), "out_backprop"),
        (dict(out_backprop=DY[..., :3]), "out_backprop"),
        (dict(use_cudnn_on_gpu="yes"), "use_cudnn_on_gpu"),
    ],
    "conv2d_backprop_filter": [
        (dict(filter_sizes=[3, 2]), "filter_sizes"),
        (dict(filter_sizes=[3, 2, 2, 4]), "filter_sizes"),
        (dict(filter_sizes=[3, 2, 3, 5]), "filter_sizes"),
        (dict(input=X[0]), "input"),
        (dict(out_backprop=DY[:, :3]), "filter_sizes"),
        (dict(out_backprop=np.concatenate([DY, DY])), "out_backprop"),
    ],
    "depthwise_conv2d_native_backprop_input": [
        (dict(input_sizes=[7, 6]), "input_sizes"),
        (dict(input_sizes=[1, 9, 6, 3]), "input_sizes"),
        (dict(input_sizes=[1, 7, 6, 2]), "input_sizes"),
        (dict(out_backprop=DY_DW[..., :5]), "out_backprop"),
        (dict(filter=W_HWIM.astype(np.float64)), "out_backprop"),
    ],
    "depthwise_conv2d_native_backprop_filter": [
        (dict(filter_sizes=[3, 2, 3]), "filter_sizes"),
        (dict(filter_sizes=[3, 2, 2, 3]), "filter_sizes"),
        (dict(filter_sizes=[3, 2, 3, 3]), "out_backprop"),
        (dict(out_backprop=DY_DW[:, :, :2]), "filter_sizes"),
    ],
}
SIZE_ARG = {
    "conv2d_backprop_input": "input_sizes",
    "conv2d_backprop_filter": "filter_sizes",
    "depthwise_conv2d_native_backprop_input": "input_sizes",
    "depthwise_conv2d_native_backprop_filter": "filter_sizes",
}
BAD = [(op, changes, arg or SIZE_ARG[op]) for op in GOOD for changes, arg in COMMON_BAD + SPECIFIC_BAD[op]]


@pytest.mark.parametrize("op", GOOD)
def test_the_good_arguments_are_accepted(op):
    for extra in ({}, EXPLICIT):
        out = getattr(reference, op)(**{**GOOD[op], **extra})
        assert out.dtype == np.float32


@pytest.mark.parametrize("op,changes,arg", BAD, ids=lambda v: v if isinstance(v, str) else None)
def test_bad_arguments_raise_value_error_naming_the_op_and_argument(op, changes, arg):
    with pytest.raises(ValueError, match=rf"^{op}: .*'{arg}'"):
        getattr(reference, op)(**{**GOOD[op], **changes})
