"""The integer reference (harness/conv/quantized.py) against definitions written here a second way: the roundings in
exact rational arithmetic (``Fraction``), the convolutions as loops over Python integers, and values by hand.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from support import assert_value_error

from harness.conv import quantized as Q

# --- the roundings ------------------------------------------------------------------------------------------------


def wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def half_up(f: Fraction) -> int:
    return math.floor(f + Fraction(1, 2))


def half_away(f: Fraction) -> int:
    return int(math.copysign(math.floor(abs(f) + Fraction(1, 2)), f))


def rounded(x: int, q: int, shift: int, rounding: str) -> int:
    """``x * q * 2**(shift - 31)`` rounded as each rule says, in exact arithmetic."""
    if rounding == "single":
        return wrap32(half_up(Fraction(x * q, 2 ** (31 - shift))))
    left, right = max(shift, 0), max(-shift, 0)
    high = half_up(Fraction(wrap32(x * 2**left) * q, 2**31))  # the doubling high multiply, half up
    return half_away(Fraction(high, 2**right)) if rounding == "double" else half_up(Fraction(high, 2**right))


INTEGER_ROUNDINGS = ("double", "single", "double_half_up")


@pytest.mark.parametrize("rounding", INTEGER_ROUNDINGS)
def test_each_rounding_is_its_definition_on_ties_signs_and_shifts(rounding):
    rng = np.random.default_rng(7)
    accs = [0, 1, -1, 35, -35, 34, -34, 2**31 - 1, -(2**31), *rng.integers(-(2**24), 2**24, 40).tolist()]
    for real in [0.5, 0.25, 0.75, 1.0, 3.0, 2.0**-20, 0.0123, 0.3333, *rng.uniform(1e-5, 0.9, 10).tolist()]:
        q, shift = Q.quantize_multiplier(real, rounding)
        got = Q.multiply_by_quantized_multiplier(np.array(accs), q, shift, rounding)
        assert got.tolist() == [rounded(a, q, shift, rounding) for a in accs], (real, q, shift)


def test_the_roundings_differ_where_their_definitions_say():
    """acc = -34 at M = 1/4 is -8.5: gemmlowp's second rounding goes away from zero, the others up. acc = -35 is -8.75:
    the first rounding (-17.5 up to -17) makes a tie of it, which double_half_up rounds up to -8. acc = 35 at M = 1/2
    is 17.5, and -35 is -17.5: every rule rounds them up (the first rounding is half up)."""
    q, shift = Q.quantize_multiplier(0.25)
    assert (q, shift) == (2**30, -1)
    by_rounding = {
        r: Q.multiply_by_quantized_multiplier(np.array([-34, -35, 34]), q, shift, r).tolist() for r in INTEGER_ROUNDINGS
    }
    assert by_rounding == {"double": [-9, -9, 9], "single": [-8, -9, 9], "double_half_up": [-8, -8, 9]}
    q, shift = Q.quantize_multiplier(0.5)
    for r in INTEGER_ROUNDINGS:
        assert Q.multiply_by_quantized_multiplier(np.array([35, -35]), q, shift, r).tolist() == [18, -17]


def test_quantize_multiplier_is_frexp_rounded_half_away_in_q31():
    assert Q.quantize_multiplier(0.5) == (2**30, 0)
    assert Q.quantize_multiplier(1.0) == (2**30, 1)
    assert Q.quantize_multiplier(0.75) == (3 * 2**29, 0)
    assert Q.quantize_multiplier(0.0) == (0, 0)
    assert Q.quantize_multiplier(2.0**-40) == (0, 0)  # below 2**-32: flushed
    # a mantissa that rounds up to 2**31 is halved and the shift raised
    assert Q.quantize_multiplier(1 - 2.0**-40) == (2**30, 1)
    # single-rounding builds cap the shift at 30
    assert Q.quantize_multiplier(2.0**40) == (2**30, 41)
    assert Q.quantize_multiplier(2.0**40, "single") == (2**31 - 1, 30)
    for real in np.random.default_rng(3).uniform(1e-6, 10, 50):
        q, shift = Q.quantize_multiplier(float(real))
        assert 2**30 <= q < 2**31
        assert abs(Fraction(q) * Fraction(2) ** (shift - 31) - Fraction(float(real))) <= Fraction(2) ** (shift - 32)


def test_the_int64_overload_reduces_the_multiplier_to_15_bits():
    q, shift = Q.quantize_multiplier(0.3)
    reduced = (q + 2**15) >> 16
    accs = [0, 1, -1, 123456789, -(2**40), 2**40 + 3]
    got = Q.multiply_by_quantized_multiplier_int64(np.array(accs), q, shift).tolist()
    assert got == [wrap32(half_up(Fraction(a * reduced, 2 ** (15 - shift)))) for a in accs]


def test_xnnpack_rounds_the_float32_product_half_to_even():
    """float32 rounding of 5 * 0.5 = 2.5 is 2 (to even), of 7 * 0.5 = 3.5 is 4; the integer rules give 3 and 4."""
    x = np.zeros((1, 1, 1, 1), np.int8)
    w = np.ones((1, 1, 1, 1), np.int8)
    for bias, want in ((5, 2), (7, 4), (-5, -2)):
        kw = dict(input_scale=1.0, input_zero_point=0, filter_scale=0.5, output_scale=1.0, output_zero_point=0)
        y = Q.conv2d(x, w, np.array([bias], np.int32), rounding="float32", **kw)
        assert int(y.ravel()[0]) == want


def test_activation_ranges_quantize_their_bounds():
    assert Q.activation_range("NONE", 0.1, 3, "int8") == (-128, 127)
    assert Q.activation_range("RELU", 0.1, 3, "int8") == (3, 127)
    assert Q.activation_range("RELU6", 0.1, -10, "int8") == (-10, 50)  # 6 / 0.1 = 60
    assert Q.activation_range("RELU6", 0.01, 0, "int8") == (0, 127)  # 600 is past the top
    assert Q.activation_range("RELU_N1_TO_1", 0.02, 5, "int8") == (-45, 55)
    assert Q.activation_range("RELU6", 0.001, 0, "int16") == (0, 6000)
    # ties: 6 / 4 = 1.5 is 2 both ways; 1 / 0.4 = 2.5 (in float32) is 3 half away from zero (TFLite), 2 to even
    assert Q.activation_range("RELU6", 4.0, 0, "int8")[1] == 2
    assert Q.activation_range("RELU_N1_TO_1", 0.4, 0, "int8") == (-3, 3)
    assert Q.activation_range("RELU_N1_TO_1", 0.4, 0, "int8", "float32") == (-2, 2)


# --- the convolutions, as loops over integers --------------------------------------------------------------------


def same_before(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(output size, padding before) of TensorFlow's SAME padding along one axis."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    return out, total // 2


def geometry(size, kernel, stride, dilation, padding):
    if padding == "SAME":
        return same_before(size, kernel, stride, dilation)
    return max(0, -(-(size - (kernel - 1) * dilation) // stride)), 0


def loop_conv(x, w_ohwi, bias, stride, dilation, padding, groups_by_input=True):
    """acc[n, oy, ox, o] = sum (x - zp already subtracted) * w over taps and the group's input channels, + bias."""
    n_, h, wd, c = x.shape
    o_, kh, kw, per = w_ohwi.shape
    groups = c // per
    oh, top = geometry(h, kh, stride, dilation, padding)
    ow, left = geometry(wd, kw, stride, dilation, padding)
    acc = np.zeros((n_, oh, ow, o_), object)
    for n, oy, ox, o in itertools.product(range(n_), range(oh), range(ow), range(o_)):
        g = o // (o_ // groups)
        total = int(bias[o])
        for ky, kx, i in itertools.product(range(kh), range(kw), range(per)):
            iy, ix = oy * stride + ky * dilation - top, ox * stride + kx * dilation - left
            if 0 <= iy < h and 0 <= ix < wd:
                total += int(x[n, iy, ix, g * per + i]) * int(w_ohwi[o, ky, kx, i])
        acc[n, oy, ox, o] = total
    return acc


def loop_transpose(x, w_ohwi, bias, output_shape, stride, padding):
    n_, h, wd, c = x.shape
    o_, kh, kw, _ = w_ohwi.shape
    top = same_before(output_shape[1], kh, stride, 1)[1] if padding == "SAME" else 0
    left = same_before(output_shape[2], kw, stride, 1)[1] if padding == "SAME" else 0
    acc = np.zeros(output_shape, object)
    for n, iy, ix, ky, kx, o, i in itertools.product(
        range(n_), range(h), range(wd), range(kh), range(kw), range(o_), range(c)
    ):
        oy, ox = iy * stride - top + ky, ix * stride - left + kx
        if 0 <= oy < output_shape[1] and 0 <= ox < output_shape[2]:
            acc[n, oy, ox, o] += int(x[n, iy, ix, i]) * int(w_ohwi[o, ky, kx, i])
    return acc + np.array([int(b) for b in bias], object)


def requantized(acc, input_scale, filter_scales, output_scale, zero_point, rounding, low=-128, high=127):
    out = np.zeros(acc.shape, np.int64)
    for idx in np.ndindex(*acc.shape):
        real = (
            float(np.float32(input_scale)) * float(np.float32(filter_scales[idx[-1]])) / float(np.float32(output_scale))
        )
        q, shift = Q.quantize_multiplier(real, rounding)
        out[idx] = min(high, max(low, rounded(int(acc[idx]), q, shift, rounding) + zero_point))
    return out


def random_params(rng, channels, per_channel):
    return dict(
        input_scale=float(rng.uniform(0.005, 0.1)),
        input_zero_point=int(rng.integers(-128, 128)),
        filter_scale=(rng.uniform(0.001, 0.05, channels).tolist() if per_channel else float(rng.uniform(0.001, 0.05))),
        output_scale=float(rng.uniform(0.01, 0.5)),
        output_zero_point=int(rng.integers(-128, 128)),
    )


def scales_of(params, channels):
    fs = params["filter_scale"]
    return fs if isinstance(fs, list) else [fs] * channels


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rounding", INTEGER_ROUNDINGS)
def test_conv2d_and_depthwise_are_their_loops(seed, rounding):
    rng = np.random.default_rng(seed)
    stride, dilation = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    padding = ("SAME", "VALID")[seed % 2]
    x = rng.integers(-128, 128, (2, 6, 5, 4)).astype(np.int8)
    groups = (1, 2, 4)[seed % 3]
    w = rng.integers(-128, 128, (6 if groups != 4 else 8, 3, 2, 4 // groups)).astype(np.int8)
    bias = rng.integers(-5000, 5000, w.shape[0]).astype(np.int32)
    params = random_params(rng, w.shape[0], per_channel=seed % 2 == 0)
    got = Q.conv2d(x, w, bias, strides=stride, padding=padding, dilations=dilation, rounding=rounding, **params)
    acc = loop_conv(x.astype(np.int64) - params["input_zero_point"], w, bias, stride, dilation, padding)
    want = requantized(
        acc,
        params["input_scale"],
        scales_of(params, w.shape[0]),
        params["output_scale"],
        params["output_zero_point"],
        rounding,
    )
    assert got.dtype == np.int8
    assert got.tolist() == want.tolist()

    # depthwise: multiplier 2, output channel c * 2 + m from input channel c
    w_1hwo = rng.integers(-128, 128, (1, 2, 3, 8)).astype(np.int8)
    params = random_params(rng, 8, per_channel=seed % 2 == 1)
    got = Q.depthwise_conv2d(
        x,
        w_1hwo,
        np.zeros(8, np.int32),
        strides=stride,
        padding=padding,
        dilations=dilation,
        depth_multiplier=2,
        rounding=rounding,
        **params,
    )
    grouped_ohwi = np.transpose(w_1hwo, (3, 1, 2, 0))  # [8, kh, kw, 1]: 4 groups of one input channel
    acc = loop_conv(x.astype(np.int64) - params["input_zero_point"], grouped_ohwi, [0] * 8, stride, dilation, padding)
    want = requantized(
        acc, params["input_scale"], scales_of(params, 8), params["output_scale"], params["output_zero_point"], rounding
    )
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("seed", range(4))
def test_transpose_conv_is_its_scatter(seed):
    rng = np.random.default_rng(10 + seed)
    stride, padding = int(rng.integers(1, 4)), ("SAME", "VALID")[seed % 2]
    kh, kw = 3, 2
    out_h, out_w = 7, 6
    in_h = -(-out_h // stride) if padding == "SAME" else (out_h - kh) // stride + 1
    in_w = -(-out_w // stride) if padding == "SAME" else (out_w - kw) // stride + 1
    x = rng.integers(-128, 128, (1, in_h, in_w, 3)).astype(np.int8)
    w = rng.integers(-128, 128, (5, kh, kw, 3)).astype(np.int8)
    bias = rng.integers(-3000, 3000, 5).astype(np.int32)
    params = random_params(rng, 5, per_channel=True)
    shape = [1, out_h, out_w, 5]
    if padding == "VALID":  # VALID also accepts up to stride - 1 more rows: they see no input
        shape[1] = (in_h - 1) * stride + kh
    got = Q.transpose_conv(shape, w, x, bias, strides=stride, padding=padding, **params)
    acc = loop_transpose(x.astype(np.int64) - params["input_zero_point"], w, bias, shape, stride, padding)
    want = requantized(
        acc,
        params["input_scale"],
        params["filter_scale"],
        params["output_scale"],
        params["output_zero_point"],
        "double",
    )
    assert got.tolist() == want.tolist()


def test_16x8_uses_the_int64_overload_with_an_int64_bias_and_the_int32_rules_with_an_int32_one():
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**15), 2**15, (1, 4, 4, 3)).astype(np.int16)
    w = rng.integers(-127, 128, (2, 2, 2, 3)).astype(np.int8)
    params = dict(
        input_scale=0.001, input_zero_point=0, filter_scale=[0.01, 0.02], output_scale=0.002, output_zero_point=0
    )
    acc = loop_conv(x.astype(np.int64), w, [7, -9], 1, 1, "VALID")
    for bias_dtype, requant in ((np.int64, "int64"), (np.int32, "double")):
        got = Q.conv2d(x, w, np.array([7, -9], bias_dtype), **params)
        assert got.dtype == np.int16
        want = np.zeros(acc.shape, np.int64)
        for idx in np.ndindex(*acc.shape):
            q, shift = Q.quantize_multiplier(0.001 * float(np.float32(params["filter_scale"][idx[-1]])) / 0.002)
            value = (
                Q.multiply_by_quantized_multiplier_int64(np.array(int(acc[idx])), q, shift)
                if requant == "int64"
                else rounded(int(acc[idx]), q, shift, "double")
            )
            want[idx] = min(2**15 - 1, max(-(2**15), int(value)))
        assert got.tolist() == want.tolist(), bias_dtype


# --- bad arguments ----------------------------------------------------------------------------------------------


def valid():
    return dict(
        input=np.zeros((1, 3, 3, 2), np.int8),
        filter=np.ones((4, 2, 2, 2), np.int8),
        bias=np.zeros(4, np.int32),
        input_scale=0.1,
        input_zero_point=0,
        filter_scale=0.2,
        output_scale=0.3,
        output_zero_point=1,
    )


@pytest.mark.parametrize(
    ("arg", "value", "fragment"),
    [
        ("input_scale", 0.0, "positive finite"),
        ("input_scale", -0.5, "positive finite"),
        ("output_scale", float("nan"), "positive finite"),
        ("output_scale", 1e-50, "positive finite"),  # 0 in float32, which a model stores
        ("input_scale", "0.1", "must be a number"),
        ("input_zero_point", 128, "[-128, 127]"),
        ("output_zero_point", -129, "[-128, 127]"),
        ("output_zero_point", 1.5, "integer"),
        ("filter_scale", [0.1, 0.2, 0.3], "3 scales; a per-channel filter needs one per output channel (4)"),
        ("filter_scale", [0.1, 0.0, 0.1, 0.1], "positive finite"),
        ("bias", np.zeros(4, np.int64), "must have dtype int32"),
        ("bias", np.zeros(4, np.float32), "must have dtype int32"),
        ("bias", np.zeros(3, np.int32), "one value per output channel (4)"),
        ("bias", None, "is required"),
        ("input", np.zeros((1, 3, 3, 2), np.uint8), "must have dtype int8 or int16"),
        ("input", np.zeros((3, 3, 2), np.int8), "must have rank 4"),
        ("filter", np.zeros((4, 2, 2, 2), np.int16), "must have dtype int8"),
        ("rounding", "nearest", "must be one of double, single, double_half_up, float32"),
        ("activation", "TANH", "must be one of NONE"),
        ("padding", [[0, 0]] * 4, "'SAME' or 'VALID'"),
        ("strides", 0, "positive integer"),
        ("dilations", [1, 2, 3], "positive integer"),
    ],
)
def test_each_bad_argument_is_named_with_its_value(arg, value, fragment):
    kwargs = {**valid(), arg: value}
    assert_value_error(lambda: Q.conv2d(**kwargs), "quantized.conv2d", f"'{arg}'", fragment)


@pytest.mark.parametrize("rounding", Q.ROUNDINGS)
def test_an_activation_bound_beyond_int32_is_refused_as_tflite_refuses_it(rounding):
    """TFLite's Prepare fails when round(bound / output_scale) leaves int32 (kernel_util.cc Quantize), on every path."""
    kwargs = {**valid(), "activation": "RELU6", "rounding": rounding}
    assert Q.conv2d(**{**kwargs, "output_scale": 6 / 2**30}).shape == (1, 2, 2, 4)  # 2**30: in range
    for scale in (6 / 2**32, 1e-9):
        assert_value_error(lambda s=scale: Q.conv2d(**{**kwargs, "output_scale": s}), "'output_scale'", "beyond int32")
    assert Q.conv2d(**{**kwargs, "activation": "RELU", "output_scale": 1e-9}).shape == (1, 2, 2, 4)  # bound 0
    with pytest.raises(ValueError, match="activation_range: argument 'scale'"):
        Q.activation_range("RELU_N1_TO_1", 1e-10, 0, "int8")


def test_16x8_refuses_a_nonzero_zero_point_and_xnnpack_rounding():
    kwargs = {**valid(), "input": np.zeros((1, 3, 3, 2), np.int16), "bias": np.zeros(4, np.int64)}
    assert_value_error(lambda: Q.conv2d(**kwargs), "'output_zero_point'=1", "symmetric")
    kwargs["output_zero_point"] = 0
    assert_value_error(lambda: Q.conv2d(**kwargs, rounding="float32"), "'rounding'='float32'", "16x8")


def test_depthwise_checks_its_multiplier_and_filter_shape():
    x = np.zeros((1, 3, 3, 2), np.int8)
    kw = dict(input_scale=0.1, input_zero_point=0, filter_scale=0.2, output_scale=0.3, output_zero_point=0)
    assert_value_error(
        lambda: Q.depthwise_conv2d(x, np.zeros((1, 2, 2, 4), np.int8), None, depth_multiplier=3, **kw),
        "'depth_multiplier'=3",
    )
    assert_value_error(lambda: Q.depthwise_conv2d(x, np.zeros((2, 2, 2, 4), np.int8), None, **kw), "[1, kh, kw, C * M]")
    assert_value_error(lambda: Q.depthwise_conv2d(x, np.zeros((1, 2, 2, 3), np.int8), None, **kw), "multiple")


def test_an_accumulator_past_int32_is_an_error_not_a_wrapped_value():
    x = np.full((1, 1, 1, 1), 127, np.int8)
    kw = dict(input_scale=0.1, input_zero_point=-128, filter_scale=0.2, output_scale=0.3, output_zero_point=0)
    bias = np.array([2**31 - 100], np.int32)
    assert_value_error(
        lambda: Q.conv2d(x, np.full((1, 1, 1, 1), 127, np.int8), bias, **kw),
        "accumulator of output element [0, 0, 0, 0]",
        "outside int32",
    )


# --- TensorFlow's own quantized ops ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lo, hi, offset",
    # -round(lo * 255 / (hi - lo)), half away from zero, unclamped: e.g. 1 * 255 / 2 = 127.5 -> 128
    [(-1, 1, 128), (-3, 1, 191), (-1, 3, 64), (-7, 1, 223), (0, 1, 0), (-1, 0, 255), (0.5, 1, -255), (-2, -1, 510),
     (2.5, 2.5, 0)],
)  # fmt: skip
def test_zero_offset_is_the_quint8_integer_of_zero(lo, hi, offset):
    assert Q.zero_offset(lo, hi) == offset


def test_tf_quantized_conv2d_is_its_loop_and_its_range():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2, 5, 6, 3)).astype(np.uint8)
    w = rng.integers(0, 256, (3, 2, 3, 4)).astype(np.uint8)
    ranges = (-1.0, 3.0, -2.0, 0.5)
    ox, ow = Q.zero_offset(*ranges[:2]), Q.zero_offset(*ranges[2:])
    got, low, high = Q.tf_quantized_conv2d(x, w, *ranges, strides=2, padding="SAME")
    # SAME, stride 2: out 3 x 3; total padding rows (3-1)*2+3-5 = 2 (1 before), cols (3-1)*2+2-6 = 0
    assert got.shape == (2, 3, 3, 4) and got.dtype == np.int32
    for n, i, j, o in np.ndindex(got.shape):
        acc = 0
        for di, dj, c in np.ndindex(3, 2, 3):
            r, col = i * 2 - 1 + di, j * 2 + dj
            if 0 <= r < 5 and 0 <= col < 6:
                acc += (int(x[n, r, col, c]) - ox) * (int(w[di, dj, c, o]) - ow)
        assert got[n, i, j, o] == acc
    level = np.float32(np.float32(4.0) / np.float32(255)) * np.float32(np.float32(2.5) / np.float32(255))
    assert (low, high) == (float(level * np.float32(-(2**31))), float(level * np.float32(2**31)))


def test_asymmetric_quantize_spans_zero_and_the_data():
    """Ranges of width 255 give scale 1; the zero point comes from the end with the smaller error; floor(x + 0.5)."""
    q, scale, zp = Q.asymmetric_quantize(np.array([-100, 155, 0.5, -0.5, 2.4], np.float32))
    assert (scale, zp) == (1.0, -28) and q.tolist() == [-128, 127, -27, -28, -26]
    q, scale, zp = Q.asymmetric_quantize(np.array([0, 255], np.float32))  # zero at the bottom of the range
    assert (scale, zp) == (1.0, -128) and q.tolist() == [-128, 127]
    q, scale, zp = Q.asymmetric_quantize(np.array([-255, 0], np.float32))  # -255 + 127 clamps to -128
    assert (scale, zp) == (1.0, 127) and q.tolist() == [-128, 127]
    q, scale, zp = Q.asymmetric_quantize(np.zeros(3, np.float32))
    assert (scale, zp) == (1.0, 0) and q.tolist() == [0, 0, 0]


def test_hybrid_conv2d_scales_exact_integer_sums_per_batch_item():
    x = np.array([[[[0.0], [1.0], [2.55]]], [[[-1.0], [0.0], [1.0]]]], np.float32)  # [2, 1, 3, 1]
    w = np.array([[[[2]]]], np.int8)  # OHWI [1, 1, 1, 1]
    got = Q.hybrid_conv2d(x, w, 0.5)
    for n in range(2):
        q, scale, zp = Q.asymmetric_quantize(x[n])
        want = (((q.astype(np.int64) - zp) * 2).astype(np.float32) * np.float32(scale)) * np.float32(0.5)
        assert got[n].tolist() == want.tolist()
    assert got.dtype == np.float32 and got.shape == (2, 1, 3, 1)


@pytest.mark.parametrize("lo, hi, offset", [(-127, 127, 0), (-1, 0, 127), (0, 1, -128), (-1, 1, 0), (3, 3, -128)])
def test_a_qint8_zero_offset_starts_from_its_lowest(lo, hi, offset):
    assert Q.zero_offset(lo, hi, "qint8") == offset  # -128 - round(lo * 255 / (hi - lo))


def test_tf_quantized_depthwise_conv2d_is_its_loop():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (1, 6, 5, 2)).astype(np.uint8)
    w = rng.integers(-128, 128, (2, 3, 2, 2)).astype(np.int8)  # HWIM, multiplier 2
    got = Q.tf_quantized_depthwise_conv2d(x, w, 0.0, 255.0, -1.0, 0.0, strides=1, padding="VALID", dilations=[2, 1])
    ow = Q.zero_offset(-1.0, 0.0, "qint8")  # 127: the filter's 0.0
    assert got.shape == (1, 4, 3, 4) and got.dtype == np.int32  # rows 6 - 2 * (2 - 1) - 1 + 1, cols 5 - 3 + 1
    for _, i, j, o in np.ndindex(got.shape):
        c, m = divmod(o, 2)
        want = sum(int(x[0, i + 2 * di, j + dj, c]) * (int(w[di, dj, c, m]) - ow) for di, dj in np.ndindex(2, 3))
        assert got[0, i, j, o] == want


# --- QuantizedConv2DWithBias* (oneDNN's fused kernels): tf_fused_quantized_conv ------------------------------------
# Ranges [0, 255] (quint8 input) and +-127 (filter) make both scales 1, so each output is its real value rounded.
UNIT = {"input_dtype": "quint8", "input_range": [0.0, 255.0], "filter_range": [-127.0, 127.0]}


def test_fused_float_bias_is_added_before_one_rounding_half_to_even():
    acc = np.zeros((1, 1, 1, 6), np.int64)
    bias = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32)
    out, low, high = Q.tf_fused_quantized_conv(acc, bias=bias, **UNIT)
    assert out.ravel().tolist() == [0, 2, 2, 0, -2, -2]
    assert (low, high) == (np.float32(-(2.0**31)), np.float32(2.0**31))  # one level: 1 x 1


def test_fused_qint32_bias_is_in_the_accumulators_units():
    out, _, _ = Q.tf_fused_quantized_conv(np.array([[[[5]]]]), bias=np.array([7], np.int32), **UNIT)
    assert out.ravel().tolist() == [12]


def test_fused_requantize_divides_by_the_output_scale_and_saturates():
    acc = np.arange(-3, 13).reshape(1, 1, -1, 1)
    out, low, high = Q.tf_fused_quantized_conv(acc, out_type="qint8", output_range=[-254.0, 254.0], **UNIT)
    assert out.ravel().tolist() == [-2, -1, 0, 0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6, 6]  # x / 2, ties to even
    assert (low, high) == (np.float32(-254.0), np.float32(254.0))
    relu, _, _ = Q.tf_fused_quantized_conv(
        np.array([[[[-40, 40, 600]]]]), relu=True, out_type="quint8", output_range=[0.0, 255.0], **UNIT
    )
    assert relu.ravel().tolist() == [0, 40, 255]


def test_fused_qint32_saturates_where_float32_does():
    acc = np.zeros((1, 1, 1, 2), np.int64)
    out, _, _ = Q.tf_fused_quantized_conv(acc, bias=np.array([1e10, -1e10], np.float32), **UNIT)
    assert out.ravel().tolist() == [2**31 - 128, -(2**31)]  # float32 has no integer in (2**31 - 128, 2**31)


def test_fused_sums_pass_through_float32():
    out, _, _ = Q.tf_fused_quantized_conv(np.array([[[[35623373]]]]), **UNIT)
    assert out.ravel().tolist() == [35623372]  # the nearest float32


def test_fused_qint32_channels_each_in_their_own_scale():
    acc = np.array([[[[300, 300]]]])
    out, low, high = Q.tf_fused_quantized_conv(acc, "quint8", [0.0, 255.0], [[-127.0, -254.0], [127.0, 254.0]])
    assert out.ravel().tolist() == [300, 300]
    assert high.tolist() == [2.0**31, 2.0**32] and low.tolist() == [-(2.0**31), -(2.0**32)]


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"input_dtype": "int8"}, "input_dtype"),
        ({"out_type": "int8"}, "out_type"),
        ({"out_type": "qint8"}, "output_range"),
    ],
)
def test_fused_refuses_bad_arguments_naming_them(kwargs, arg):
    args = {**UNIT, **kwargs}
    with pytest.raises(ValueError, match=f"argument '{arg}'"):
        Q.tf_fused_quantized_conv(np.zeros((1, 1, 1, 1)), **args)


def test_fused_summands_are_added_in_their_own_scale():
    acc = np.array([[[[10, 10, 10]]]])
    out, _, _ = Q.tf_fused_quantized_conv(
        acc,
        **UNIT,
        out_type="quint8",
        output_range=[0.0, 255.0],
        summand=np.array([[[[0, 5, 200]]]], np.uint8),
        summand_range=[0.0, 510.0],  # 2 per level
    )
    assert out.ravel().tolist() == [10, 20, 255]
    signed, _, _ = Q.tf_fused_quantized_conv(
        acc,
        **UNIT,
        relu=True,
        out_type="quint8",
        output_range=[0.0, 255.0],
        summand=np.array([[[[-20, 3, 127]]]], np.int8),
        summand_range=[-127.0, 127.0],  # 1 per level
    )
    assert signed.ravel().tolist() == [0, 13, 137]


def test_fma_float32_rounds_once():
    # (1 + 2**-23) * (1 - 2**-23) + -1 is -2**-46 exactly; a float32 product rounds it to 1 first, giving 0
    a, b = np.float32(1 + 2**-23), np.float32(1 - 2**-23)
    assert Q.fma_float32(a, b, np.float32(-1)) == np.float32(-(2.0**-46))
    assert np.float32(a * b) + np.float32(-1) == 0
    # (1 + 2**-23) 2**-12 x (1 - 2**-23) 2**-12 + (1 + 2**-23) is 2**-70 below the tie between 1 + 2**-23 and
    # 1 + 2**-22: float64 loses the 2**-70 and lands on the tie (to even: 1 + 2**-22); one rounding stays below
    a, b = np.float32((1 + 2**-23) * 2**-12), np.float32((1 - 2**-23) * 2**-12)
    c = np.float32(1 + 2**-23)
    assert np.float32(np.float64(a) * np.float64(b) + np.float64(c)) == np.float32(1 + 2**-22)
    assert Q.fma_float32(a, b, c) == c
