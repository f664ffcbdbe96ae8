"""Integer reference of TensorFlow Lite's quantized convolutions (int8, and 16x8), written from the quantization spec.

TFLite stores a real value ``r`` as an integer ``q`` with ``r = scale * (q - zero_point)``:

* activations (input, output): int8 with one scale and a zero point in [-128, 127], or int16 with zero point 0
  (the 16x8 scheme);
* weights: int8, symmetric (zero point 0), one scale per tensor or one per output channel;
* bias: int32 (int64 for 16x8) with scale ``input_scale * filter_scale[c]`` and zero point 0.

A quantized convolution is then, per output element of channel ``c`` (TFLite's ``ConvPerChannel``)::

    acc = sum over taps and input channels of (x - input_zero_point) * w   + bias[c]      (exact, in integers)
    y   = clamp(requantize(acc, M[c]) + output_zero_point, activation range)
    M[c] = input_scale * filter_scale[c] / output_scale                                     (in double)

The window geometry (padding, strides, dilations, groups, the transpose's ``output_shape``) is TensorFlow's, which
TFLite shares: the sums are the float64 reference (``harness.conv.reference``) of the integer operands, which is
exact, as every product and partial sum is an integer far below 2**53 (|x - zp| <= 2**16, |w| <= 2**7).

What differs between TFLite's kernels is ``requantize``: how ``acc * M`` is rounded to an integer. ``ROUNDINGS``
names each rule the runtimes use, each written from its definition (see ``multiply_by_quantized_multiplier``):

* ``double``: gemmlowp's ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT`` (TFLite's reference
  kernels, and every kernel of the builds without ``TFLITE_SINGLE_ROUNDING``);
* ``single``: one rounding of the 64-bit product, half up (builds with ``TFLITE_SINGLE_ROUNDING``);
* ``double_half_up``: the doubling high multiply, then a rounding shift that rounds ties up (NEON's
  ``vqrdmulh`` + ``vrshl``, and ruy's x86 kernels);
* ``float32``: XNNPACK's: ``acc`` and ``M`` in float32, their float32 product rounded half to even.

Layouts are TFLite's: data NHWC; conv and transpose-conv filters OHWI; depthwise filters 1HW(C*M), output channel
``c * M + m`` from input channel ``c``. Every invalid argument raises ``ValueError`` naming the function, the argument
and its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from harness.conv import reference

ROUNDINGS = ("double", "single", "double_half_up", "float32")
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")
# The activation types and their bias types (TFLite's quantization spec; 16x8 also takes an int32 bias).
ACTIVATION_DTYPES = {"int8": ("int32",), "int16": ("int64", "int32")}
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _fail(op: str, arg: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{op}: argument '{arg}'={value!r} {why}")


def _wrap32(v: np.ndarray) -> np.ndarray:
    """int64 values taken modulo 2**32 into int32's range (two's complement, what the compiled kernels' int32
    arithmetic gives where it overflows)."""
    return ((v - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN


# --- multipliers and rounding ---------------------------------------------------------------------------------


def quantize_multiplier(real: float, rounding: str = "double") -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ~= q * 2**(shift - 31)`` with ``q`` a Q31 integer in [2**30, 2**31).

    ``q = round(frexp(real).mantissa * 2**31)``, ties away from zero; a mantissa rounding up to 2**31 is halved and
    the shift raised; a multiplier below 2**-32 is flushed to (0, 0). Single-rounding builds also cap the shift at
    30 (q = 2**31 - 1). ``float32`` (XNNPACK) does not use it; it is given the ``double`` result.
    """
    if not math.isfinite(real) or real < 0:
        raise _fail("quantize_multiplier", "real", real, "must be a finite number >= 0")
    if real == 0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = math.floor(mantissa * (1 << 31) + 0.5)  # exact: mantissa * 2**31 is a double with at most 53 bits
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if rounding == "single" and shift > 30:
        return INT32_MAX, 30
    return q, shift


def quantized_multipliers(
    input_scale: float, filter_scale: ArrayLike, output_scale: float, rounding: str = "double"
) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift), int64 [channels]: ``quantize_multiplier`` of each channel's real multiplier
    ``input_scale * filter_scale[c] / output_scale`` (in double, as TFLite's Prepare computes it)."""
    pairs = [quantize_multiplier(input_scale * float(f) / output_scale, rounding) for f in np.ravel(filter_scale)]
    q, shift = zip(*pairs) if pairs else ((), ())
    return np.array(q, np.int64), np.array(shift, np.int64)


def _srdhm(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul(a, q)``: the high 32 bits of ``2 * a * q``, rounded by a nudge
    of +-2**30 and a division truncated toward zero (saturated for a = q = INT32_MIN, which q >= 0 excludes)."""
    ab = a * q
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    return np.asarray(np.sign(nudged) * (np.abs(nudged) >> 31), np.int64)


def _rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT(x, e)``: x / 2**e rounded to nearest, ties away from zero."""
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return np.asarray((x >> exponent) + ((x & mask) > threshold), np.int64)


def _shifted_left(x: np.ndarray, left: np.ndarray) -> np.ndarray:
    """``x * 2**left`` in int32 arithmetic (wrapping, as the kernels' ``x * (1 << left_shift)`` does)."""
    low = x & 0xFFFFFFFF
    return np.where(left >= 32, 0, _wrap32(low << np.minimum(left, 31)))


def multiply_by_quantized_multiplier(
    acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, rounding: str = "double"
) -> np.ndarray:
    """``acc * multiplier * 2**(shift - 31)`` rounded to an integer by ``rounding`` (one of the integer ``ROUNDINGS``),
    elementwise with broadcasting (per channel: ``multiplier`` and ``shift`` along the last axis). int64 in and out.

    * double: ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc * 2**ls, q), rs)`` with ``ls = max(shift,
      0)``, ``rs = max(-shift, 0)``: two roundings, the first half up, the second half away from zero;
    * single: ``(acc * q + 2**(30 - shift)) >> (31 - shift)``, one rounding half up, the result taken as int32;
    * double_half_up: the doubling high multiply (half up), then ``(t + 2**(rs - 1)) >> rs`` (half up).
    """
    x = np.asarray(acc, np.int64)
    q = np.asarray(multiplier, np.int64)
    s = np.asarray(shift, np.int64)
    if rounding == "single":
        total = 31 - s
        return _wrap32((x * q + (np.int64(1) << (total - 1))) >> total)
    left, right = np.maximum(s, 0), np.maximum(-s, 0)
    if rounding == "double":
        return _rounding_divide_by_pot(_srdhm(_shifted_left(x, left), q), right)
    if rounding == "double_half_up":
        t = (_shifted_left(x, left) * q + (1 << 30)) >> 31
        return np.where(right > 0, (t + ((np.int64(1) << right) >> 1)) >> right, t)
    raise _fail("multiply_by_quantized_multiplier", "rounding", rounding, f"must be one of {', '.join(ROUNDINGS[:3])}")


def multiply_by_quantized_multiplier_int64(acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> np.ndarray:
    """TFLite's int64 overload (16x8 kernels with an int64 accumulator), the same in every build: the Q31 multiplier
    reduced to 15 bits, ``r = (q + 2**15) >> 16`` (0x7FFF from 0x7FFF0000 on), then ``(acc * r + 2**(14 - shift))
    >> (15 - shift)``, taken as int32."""
    x = np.asarray(acc, np.int64)
    q = np.asarray(multiplier, np.int64)
    s = np.asarray(shift, np.int64)
    reduced = np.where(q < 0x7FFF0000, (q + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - s
    # total >= 1 for every shift QuantizeMultiplier gives a conv (multipliers below 2**14); a larger one shifts left
    rounded = np.where(
        total > 0,
        (x * reduced + (np.int64(1) << np.maximum(total - 1, 0))) >> np.maximum(total, 0),
        x * reduced << np.maximum(-total, 0),
    )
    return _wrap32(rounded)


def activation_range(
    activation: str,
    scale: float,
    zero_point: int,
    dtype: str,
    rounding: str = "double",
    *,
    op: str = "activation_range",
    scale_arg: str = "scale",
) -> tuple[int, int]:
    """[low, high] of the output's integers under a fused activation (``ACTIVATIONS``), within the dtype's range.

    TFLite's kernels (``CalculateActivationRangeQuantized``): a bound ``f`` is ``zero_point + round(f / scale)``, the
    quotient in float32 and rounded half away from zero; a rounded quotient beyond int32's range fails the model's
    Prepare (``kernel_util.cc``'s ``Quantize``), whatever the path: ValueError naming ``op``'s ``scale_arg``.
    XNNPACK's (``float32``): ``rint(f / scale + zero_point)`` in float32, half to even.
    """
    lo, hi = np.iinfo(np.dtype(dtype)).min, np.iinfo(np.dtype(dtype)).max
    bounds = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
    if activation not in bounds:
        raise _fail(op, "activation", activation, f"must be one of {', '.join(ACTIVATIONS)}")
    s = np.float32(scale)

    def q(f: float) -> int:
        v = np.float32(np.float32(f) / s)
        rounded = math.copysign(math.floor(abs(float(v)) + 0.5), float(v))
        if not INT32_MIN <= rounded <= float(np.float32(INT32_MAX)):  # TFLite compares with float(INT32_MAX), 2**31
            raise _fail(
                op,
                scale_arg,
                scale,
                f"puts {activation}'s bound {f:g} at {rounded:.4g}, beyond int32: TFLite's kernels refuse the "
                f"activation range (kernel_util.cc Quantize: no_integer_overflow_from_quantization)",
            )
        if rounding == "float32":
            return int(np.rint(np.float32(np.float32(f) / s) + np.float32(zero_point)))
        return zero_point + int(rounded)

    low, high = bounds[activation]
    return (lo if low is None else max(lo, q(low))), (hi if high is None else min(hi, q(high)))


# --- arguments ------------------------------------------------------------------------------------------------


def _int_array(op: str, arg: str, value: Any, dtypes: Sequence[str], ndim: int) -> np.ndarray:
    try:
        a = np.asarray(value)
    except ValueError:
        raise _fail(op, arg, value, "is not an array") from None
    if a.dtype.name not in dtypes:
        raise _fail(op, arg, f"<array of {a.dtype.name}>", f"must have dtype {' or '.join(dtypes)}")
    if a.ndim != ndim:
        raise _fail(op, arg, f"<array of shape {list(a.shape)}>", f"must have rank {ndim}")
    return a


def _scale(op: str, arg: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(op, arg, value, "must be a number")
    v = float(np.float32(value))  # a model stores its scales as float32
    if not math.isfinite(v) or v <= 0:
        raise _fail(op, arg, value, "must be a positive finite float32")
    return v


def _zero_point(op: str, arg: str, value: Any, dtype: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _fail(op, arg, value, "must be an integer")
    if dtype == "int16" and value != 0:
        raise _fail(op, arg, value, "must be 0: int16 activations are symmetric (16x8 quantization)")
    info = np.iinfo(np.dtype(dtype))
    if not info.min <= value <= info.max:
        raise _fail(op, arg, value, f"must be in [{info.min}, {info.max}] ({dtype})")
    return int(value)


def _filter_scales(op: str, value: Any, channels: int) -> np.ndarray:
    values = [value] if np.ndim(value) == 0 else list(np.asarray(value).ravel()) if np.ndim(value) == 1 else None
    if values is None:
        raise _fail(op, "filter_scale", value, "must be a number or a list of one per output channel")
    if len(values) not in (1, channels):
        raise _fail(
            op,
            "filter_scale",
            value,
            f"has {len(values)} scales; a per-channel filter needs one per output channel ({channels})",
        )
    numeric = [
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in values
    ]
    stored = np.array([np.float32(v) if ok else np.nan for v, ok in zip(values, numeric)], np.float64)
    bad = ~(np.isfinite(stored) & (stored > 0))
    if bad.any():  # the first bad one, named as _scale names it
        _scale(op, "filter_scale", values[int(np.argmax(bad))])
    return np.repeat(stored, channels) if len(values) == 1 else stored


class Quantized:
    """The checked quantization arguments of one call (shared by the three ops)."""

    def __init__(
        self,
        op: str,
        x: Any,
        input_scale: Any,
        input_zero_point: Any,
        filter_scale: Any,
        output_scale: Any,
        output_zero_point: Any,
        channels: int,
        activation: str,
        rounding: str,
    ) -> None:
        self.op = op
        self.dtype = x.dtype.name
        if rounding not in ROUNDINGS:
            raise _fail(op, "rounding", rounding, f"must be one of {', '.join(ROUNDINGS)}")
        if rounding == "float32" and self.dtype != "int8":
            raise _fail(op, "rounding", rounding, "(XNNPACK's) has no 16x8 kernels: use an integer rounding")
        if activation not in ACTIVATIONS:
            raise _fail(op, "activation", activation, f"must be one of {', '.join(ACTIVATIONS)}")
        self.rounding, self.activation = rounding, activation
        self.input_scale = _scale(op, "input_scale", input_scale)
        self.input_zero_point = _zero_point(op, "input_zero_point", input_zero_point, self.dtype)
        self.filter_scale = _filter_scales(op, filter_scale, channels)
        self.output_scale = _scale(op, "output_scale", output_scale)
        self.output_zero_point = _zero_point(op, "output_zero_point", output_zero_point, self.dtype)
        self.output_range = activation_range(
            activation,
            self.output_scale,
            self.output_zero_point,
            self.dtype,
            rounding,
            op=op,
            scale_arg="output_scale",
        )

    def bias(self, value: Any, channels: int, required: bool = True) -> np.ndarray:
        """The bias as int64 [channels] (zeros when None and not ``required``), of one of the dtypes the activation's
        scheme takes. TFLite's quantized CONV_2D and DEPTHWISE_CONV_2D require one (their Prepare fails without)."""
        if value is None and required:
            raise _fail(self.op, "bias", None, "is required: TFLite's quantized kernels of this op need a bias")
        if value is None:
            return np.zeros(channels, np.int64)
        b = _int_array(self.op, "bias", value, ACTIVATION_DTYPES[self.dtype], 1)
        if b.shape[0] != channels:
            raise _fail(
                self.op,
                "bias",
                f"<array of shape {list(b.shape)}>",
                f"must have one value per output channel ({channels})",
            )
        return b.astype(np.int64)

    def requantize(self, acc: np.ndarray, accumulator: str) -> np.ndarray:
        """acc [..., channels] (int64, bias added) -> the output integers, in the activation's dtype."""
        low, high = self.output_range
        if self.rounding == "float32":
            # XNNPACK: float32(input_scale * filter_scale) / output_scale, each step in float32. The zero point and
            # the clamp stay in float32 too: exact below 2**24, and a value beyond clamps to the same bound.
            s = (np.float32(self.input_scale) * self.filter_scale.astype(np.float32)) / np.float32(self.output_scale)
            v = acc.astype(np.float32)
            np.multiply(v, s.astype(np.float32), out=v)
            np.rint(v, out=v)
            v += np.float32(self.output_zero_point)
            return np.clip(v, low, high, out=v).astype(self.dtype)
        else:
            q, shift = quantized_multipliers(self.input_scale, self.filter_scale, self.output_scale, self.rounding)
            if accumulator == "int64":
                scaled = multiply_by_quantized_multiplier_int64(acc, q, shift)
            else:
                scaled = multiply_by_quantized_multiplier(acc, q, shift, self.rounding)
        return np.asarray(np.clip(scaled + self.output_zero_point, low, high), self.dtype)


def _accumulator(op: str, sums: np.ndarray, bias: np.ndarray, kind: str) -> np.ndarray:
    """The exact sums (integers, or float64 holding them) plus the bias, as int64; ValueError where an int32 accumulator cannot
    hold one (TFLite's arithmetic overflows there: its result is undefined)."""
    acc: np.ndarray = sums.astype(np.int64) if sums.dtype.kind == "i" else np.asarray(np.rint(sums), np.int64)
    acc += bias
    if kind == "int32" and acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        where = np.unravel_index(int(np.argmax((acc < INT32_MIN) | (acc > INT32_MAX))), acc.shape)
        raise ValueError(
            f"{op}: the accumulator of output element {list(map(int, where))} is "
            f"{int(acc[where])}, outside int32: TFLite's int32 arithmetic overflows there"
        )
    return acc


def _accumulator_kind(dtype: str, bias: Any) -> str:
    """int32, but for 16x8 with an int64 bias (or none, which TFLite gives the int64 kernel)."""
    if dtype == "int16" and (bias is None or np.asarray(bias).dtype == np.int64):
        return "int64"
    return "int32"


def _input(op: str, value: Any) -> np.ndarray:
    return _int_array(op, "input", value, ("int8", "int16"), 4)


def _filter(op: str, value: Any) -> np.ndarray:
    return _int_array(op, "filter", value, ("int8",), 4)


def _spatial_pair(op: str, arg: str, value: Any) -> list[int]:
    pair = [value, value] if np.ndim(value) == 0 else list(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in pair):
        raise _fail(op, arg, value, "must be a positive integer or a list of 2 ([height, width])")
    return [int(v) for v in pair]


def _padding(op: str, value: Any) -> str:
    if value not in ("SAME", "VALID"):
        raise _fail(op, "padding", value, "must be 'SAME' or 'VALID' (TFLite has no explicit padding)")
    return str(value)


# --- ops ------------------------------------------------------------------------------------------------------


# The quantization arguments every op takes, as ``Quantized`` checks them.
PARAMS = (
    "input_scale",
    "input_zero_point",
    "filter_scale",
    "output_scale",
    "output_zero_point",
    "activation",
    "rounding",
)


def _run(
    op: str,
    x_nhwc: np.ndarray,
    w_q: np.ndarray,
    bias: Any,
    params: dict[str, Any],
    sums_of: Any,
    bias_required: bool = True,
) -> np.ndarray:
    """The quantized op: ``params`` checked, the bias read, ``sums_of(x - input_zero_point, w_q)`` (the reference of
    the integer operands, exact) plus the bias requantized. ``w_q``: the int8 filter, output channels last."""
    channels = w_q.shape[-1]
    qp = Quantized(op, x_nhwc, channels=channels, **params)
    b = qp.bias(bias, channels, required=bias_required)
    shifted = x_nhwc.astype(np.int64) - qp.input_zero_point
    # int32 operands when no sum of an output's products can leave int32: the reference's integer path, exact and
    # at float32 GEMM speed for int8 values; float64 otherwise (exact below 2**53, far above any int16 sum)
    terms = w_q.size // channels if channels else 0
    largest = int(np.abs(shifted).max(initial=0)) * 128 * terms
    dtype = np.int32 if largest <= INT32_MAX else np.float64
    sums = sums_of(shifted.astype(dtype), w_q.astype(dtype))
    kind = _accumulator_kind(qp.dtype, bias)
    return qp.requantize(_accumulator(op, sums, b, kind), kind)


def conv2d(
    input: ArrayLike,
    filter: ArrayLike,
    bias: ArrayLike | None,
    *,
    input_scale: float,
    input_zero_point: int,
    filter_scale: float | Sequence[float],
    output_scale: float,
    output_zero_point: int,
    strides: Any = 1,
    padding: str = "VALID",
    dilations: Any = 1,
    activation: str = "NONE",
    rounding: str = "double",
) -> np.ndarray:
    """TFLite's quantized ``CONV_2D``.

    input: NHWC int8 (or int16 for 16x8); filter: OHWI int8 [O, kh, kw, C / groups] (grouped when C is a multiple of
    the filter's I); bias: [O] int32 (16x8: int64 or int32), required; filter_scale: one, or one per output channel.
    strides, dilations: an int or [height, width]; padding: "SAME" or "VALID". Returns NHWC [N, H', W', O] in the
    input's dtype.
    """
    op = "quantized.conv2d"
    x_nhwc, w_ohwi = _input(op, input), _filter(op, filter)
    w_hwio = np.transpose(w_ohwi, (1, 2, 3, 0))
    window = (_spatial_pair(op, "strides", strides), _padding(op, padding), _spatial_pair(op, "dilations", dilations))
    params = {k: v for k, v in locals().items() if k in PARAMS}
    return _run(
        op,
        x_nhwc,
        w_hwio,
        bias,
        params,
        lambda x, w: reference.conv2d(x, w, window[0], window[1], dilations=window[2]),
    )


def depthwise_conv2d(
    input: ArrayLike,
    filter: ArrayLike,
    bias: ArrayLike | None,
    *,
    input_scale: float,
    input_zero_point: int,
    filter_scale: float | Sequence[float],
    output_scale: float,
    output_zero_point: int,
    strides: Any = 1,
    padding: str = "VALID",
    dilations: Any = 1,
    depth_multiplier: int | None = None,
    activation: str = "NONE",
    rounding: str = "double",
) -> np.ndarray:
    """TFLite's quantized ``DEPTHWISE_CONV_2D``: input channel ``c`` correlated with filter channels ``c * M ... c * M
    + M - 1``.

    input: NHWC int8 (or int16) [N, H, W, C]; filter: [1, kh, kw, C * M] int8; bias: [C * M], required;
    ``depthwise_multiplier``: M (checked against the filter when given). Returns NHWC [N, H', W', C * M].
    """
    op = "quantized.depthwise_conv2d"
    x_nhwc, w_1hwo = _input(op, input), _filter(op, filter)
    channels_in, channels = x_nhwc.shape[3], w_1hwo.shape[3]
    shape = f"<array of shape {list(w_1hwo.shape)}>"
    if w_1hwo.shape[0] != 1:
        raise _fail(op, "filter", shape, "must be [1, kh, kw, C * M]")
    if channels_in == 0 or channels % channels_in:
        raise _fail(op, "filter", shape, f"must have a multiple of the input's {channels_in} channels")
    if depth_multiplier is not None and depth_multiplier * channels_in != channels:
        raise _fail(
            op,
            "depth_multiplier",
            depth_multiplier,
            f"times the input's {channels_in} channels must be the filter's {channels}",
        )
    # a grouped conv2d with one input channel per group: group c gives output channels [c * M, (c + 1) * M)
    w_hwio = np.transpose(w_1hwo, (1, 2, 0, 3))
    window = (_spatial_pair(op, "strides", strides), _padding(op, padding), _spatial_pair(op, "dilations", dilations))
    params = {k: v for k, v in locals().items() if k in PARAMS}
    return _run(
        op,
        x_nhwc,
        w_hwio,
        bias,
        params,
        lambda x, w: reference.conv2d(x, w, window[0], window[1], dilations=window[2]),
    )


def transpose_conv(
    output_shape: Sequence[int],
    filter: ArrayLike,
    input: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    input_scale: float,
    input_zero_point: int,
    filter_scale: float | Sequence[float],
    output_scale: float,
    output_zero_point: int,
    strides: Any = 1,
    padding: str = "VALID",
    activation: str = "NONE",
    rounding: str = "double",
) -> np.ndarray:
    """TFLite's quantized ``TRANSPOSE_CONV`` (operands in its order: output_shape, weights, input, bias): the gradient
    of a conv2d of an ``output_shape`` input with respect to that input, in integers.

    output_shape: [N, H, W, O]; filter: OHWI int8 [O, kh, kw, C]; input: NHWC [N, h, w, C] (the forward conv's
    output); bias: [O] or None. Returns NHWC int8 (or int16) of ``output_shape``.
    """
    op = "quantized.transpose_conv"
    x_nhwc, w_ohwi = _input(op, input), _filter(op, filter)
    w_hwio = np.transpose(w_ohwi, (1, 2, 3, 0))  # output channels last, for _run; HWOI for the op
    stride, pad = _spatial_pair(op, "strides", strides), _padding(op, padding)
    params = {k: v for k, v in locals().items() if k in PARAMS}
    return _run(
        op,
        x_nhwc,
        w_hwio,
        bias,
        params,
        lambda x, w: reference.conv2d_transpose(x, np.swapaxes(w, 2, 3), list(output_shape), stride, pad),
        bias_required=False,
    )


# --- TensorFlow's own quantized ops (tf.raw_ops) ----------------------------------------------------------------
#
# Written from their kernels' documented arithmetic (quantization_utils.h, uniform_quant_ops/math_utils.h):
# ``UniformQuantizedConvolution`` is the ops above under single rounding with no bias (harness.tf.quantized_ops), and
# these are the other two that compute on the CPU by default.


def zero_offset(range_min: float, range_max: float, dtype: str = "quint8") -> int:
    """The integer of ``dtype`` (quint8 or qint8) that stands for 0.0 in ``[range_min, range_max]``: TensorFlow's
    ``FloatToQuantizedUnclamped<T>(0, min, max)``. The range's width in float32, widened by 256/255 in double,
    ``lowest - round(min * 256 / width)`` half away from zero, not clamped (it may leave the dtype's range);
    ``lowest`` (0 or -128) when min == max."""
    lowest = {"quint8": 0, "qint8": -128}[dtype]
    lo, hi = np.float32(range_min), np.float32(range_max)
    if lo == hi:
        return lowest
    scale = 256 / (float(np.float32(hi - lo)) * (256 / 255.0))
    v = float(lo) * scale
    return lowest - int(math.copysign(math.floor(abs(v) + 0.5), v))


def _level(range_min: float, range_max: float) -> float:
    """``FloatForOneQuantizedLevel<quint8>``: the range's width over 255, in float32."""
    return float(np.float32(np.float32(range_max) - np.float32(range_min)) / np.float32(255))


def _offset_operands(
    op: str, input: ArrayLike, filter: ArrayLike, filter_dtypes: Sequence[str], ranges: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """A quint8 input and a quint8 / qint8 filter (uint8 / int8, rank 4) less their ``zero_offset``s, as float64
    (exact): the operands of the raw ops' integer sums. ``ranges``: min_input, max_input, min_filter, max_filter."""
    x = _int_array(op, "input", input, ("uint8",), 4)
    w = _int_array(op, "filter", filter, filter_dtypes, 4)
    filter_kind = "qint8" if w.dtype == np.int8 else "quint8"
    return (
        x.astype(np.float64) - zero_offset(ranges[0], ranges[1]),
        w.astype(np.float64) - zero_offset(ranges[2], ranges[3], filter_kind),
    )


def tf_quantized_conv2d(
    input: ArrayLike,
    filter: ArrayLike,
    min_input: float,
    max_input: float,
    min_filter: float,
    max_filter: float,
    strides: Any = 1,
    padding: str = "VALID",
    dilations: Any = 1,
) -> tuple[np.ndarray, float, float]:
    """``tf.raw_ops.QuantizedConv2D``: input NHWC uint8 (quint8), filter HWIO uint8 or int8 (quint8 or qint8), each
    with the real range its integers span. Returns (the int32 sums ``sum((x - zero_offset(input range)) * (w -
    zero_offset(filter range)))`` over TensorFlow's conv2d windows, padding contributing 0, wrapped to int32;
    min_output, max_output: the float32 range of one int32 level, ``level(input) * level(filter)`` times int32's
    lowest and highest; a quint8 filter's levels, as the Eigen kernel computes them). Only oneDNN's kernels (a
    qint8 filter) take dilations."""
    op = "quantized.tf_quantized_conv2d"
    x, w = _offset_operands(op, input, filter, ("uint8", "int8"), (min_input, max_input, min_filter, max_filter))
    stride, pad = _spatial_pair(op, "strides", strides), _padding(op, padding)
    sums = reference.conv2d(x, w, stride, pad, dilations=_spatial_pair(op, "dilations", dilations))
    level = np.float32(np.float32(_level(min_input, max_input)) * np.float32(_level(min_filter, max_filter)))
    low, high = level * np.float32(INT32_MIN), level * np.float32(INT32_MAX)
    return np.asarray(_wrap32(sums.astype(np.int64)), np.int32), float(low), float(high)


def tf_quantized_depthwise_conv2d(
    input: ArrayLike,
    filter: ArrayLike,
    min_input: float,
    max_input: float,
    min_filter: float,
    max_filter: float,
    strides: Any = 1,
    padding: str = "VALID",
    dilations: Any = 1,
) -> np.ndarray:
    """``tf.raw_ops.QuantizedDepthwiseConv2D``: input NHWC uint8 (quint8), filter HWIM int8 (qint8), each with its
    real range. Returns the int32 sums ``sum((x - zero_offset(input range)) * (w - zero_offset(filter range)))`` over
    depthwise_conv2d's windows (output channel ``c * M + m``), padding contributing 0."""
    op = "quantized.tf_quantized_depthwise_conv2d"
    x, w = _offset_operands(op, input, filter, ("int8",), (min_input, max_input, min_filter, max_filter))
    stride, pad = _spatial_pair(op, "strides", strides), _padding(op, padding)
    sums = reference.depthwise_conv2d(x, w, [1, *stride, 1], pad, dilations=_spatial_pair(op, "dilations", dilations))
    return np.asarray(_wrap32(sums.astype(np.int64)), np.int32)


FUSED_OUTPUTS = {"qint32": (INT32_MIN, INT32_MAX), "qint8": (-128, 127), "quint8": (0, 255)}


def _summand_scaled(op: str, summand: np.ndarray, summand_range: Sequence[float] | None) -> tuple[Any, np.ndarray]:
    """(scale, values) of a fused op's summand, both float32: 1 and the values of a float32 summand; for uint8 / int8
    (quint8 / qint8) ``max(|min_summand|, |max_summand|) / 255`` (or ``/ 127``) and the integers."""
    f32 = np.float32
    if summand.dtype == np.float32:
        return f32(1), summand
    if summand.dtype not in (np.uint8, np.int8) or summand_range is None or len(summand_range) != 2:
        raise _fail(op, "summand", f"<{summand.dtype} array>", "must be float32, or uint8 / int8 with a summand_range")
    top = max(abs(f32(summand_range[0])), abs(f32(summand_range[1])))
    return f32(top / f32(255 if summand.dtype == np.uint8 else 127)), summand.astype(f32)


def fma_float32(a: ArrayLike, b: ArrayLike, c: ArrayLike) -> np.ndarray:
    """``a * b + c`` rounded once to float32 (to nearest, ties to even), as a fused multiply-add instruction computes
    it, for float32 operands. The product is exact in float64; the float64 sum is rounded to odd (its error, from
    TwoSum, pushes an inexact sum off an even last bit toward the exact value), which makes the final rounding to
    float32's 24 bits the correct one."""
    p = np.asarray(a, np.float32).astype(np.float64) * np.asarray(b, np.float32).astype(np.float64)
    q = np.asarray(c, np.float32).astype(np.float64)
    p, q = np.broadcast_arrays(p, q)
    total = p + q
    back = total - p
    error = (p - (total - back)) + (q - back)
    inexact_even = (error != 0) & ((total.view(np.int64) & 1) == 0)
    towards = np.where(error > 0, np.inf, -np.inf)
    return np.asarray(np.where(inexact_even, np.nextafter(total, towards), total).astype(np.float32))


def tf_fused_quantized_conv(
    acc: ArrayLike,
    input_dtype: str,
    input_range: Sequence[float],
    filter_range: Sequence[Any],
    bias: ArrayLike | None = None,
    relu: bool = False,
    out_type: str = "qint32",
    output_range: Sequence[float] | None = None,
    summand: ArrayLike | None = None,
    summand_range: Sequence[float] | None = None,
) -> tuple[np.ndarray, Any, Any]:
    """The ``QuantizedConv2DWithBias*`` / ``QuantizedDepthwiseConv2DWithBias*`` family (oneDNN's
    ``_MklQuantizedConv2D*``: mkl_conv_ops.cc) from their exact sums ``acc`` (``tf_quantized_conv2d`` with ranges
    that put 0.0 at integer 0: the raw products, NHWC, output channels last).

    Symmetric scales, all in float32: the input's ``max(|min|, |max|) / L`` (L = 255 for a quint8 input, 127 for
    qint8), each output channel's filter ``max(|min_c|, |max_c|) / 127`` (``filter_range``: min_filter, max_filter,
    scalars or one per channel). The real value ``float32(acc) * (input scale x filter scale)`` plus the bias (a
    float32 bias as given; an int32 one divided by ``L x 127 / (input max x filter max)``), plus the ``summand`` of the
    ``...Sum...`` ops (output-shaped: float32 as given; uint8 (quint8) or int8 (qint8) times ``max(|min|, |max|)`` of
    ``summand_range`` over 255 or 127; added by one fused multiply-add, as oneDNN's sum post-op), then ReLU
    (``relu``), then divided by the output's scale and rounded half to even, saturated to ``out_type``: qint32 in each
    channel's own scale (its level, ``min/max_output`` per channel), qint8 / quint8 in ``output_range``'s
    (min/max_freezed_output: ``max(|min|, |max|) / 127`` or ``/ 255``).

    Returns (the output as int64, min_output, max_output): for qint32 ``QuantizationRangeForMultiplication`` in
    float32, ``(max_input - min_input) / L' x (max_filter - min_filter) / 254`` (L' 255 or 254) times int32's lowest
    and highest, one per channel when the filter range is; for qint8 / quint8 ``output_range`` as given."""
    op = "quantized.tf_fused_quantized_conv"
    f32 = np.float32
    if input_dtype not in ("quint8", "qint8"):
        raise _fail(op, "input_dtype", input_dtype, "must be 'quint8' or 'qint8'")
    if out_type not in FUSED_OUTPUTS:
        raise _fail(op, "out_type", out_type, f"must be one of {', '.join(FUSED_OUTPUTS)}")
    if out_type != "qint32" and (output_range is None or len(output_range) != 2):
        raise _fail(op, "output_range", output_range, f"must be [min, max] for a {out_type} output")
    levels = f32(255 if input_dtype == "quint8" else 127)
    input_max = max(abs(f32(input_range[0])), abs(f32(input_range[1])))
    input_scale = f32(input_max / levels)
    lo_f = np.atleast_1d(np.asarray(filter_range[0], f32))
    hi_f = np.atleast_1d(np.asarray(filter_range[1], f32))
    filter_max = np.maximum(np.abs(lo_f), np.abs(hi_f))
    filter_scale = (filter_max.astype(np.float64) / 127.0).astype(f32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = np.asarray(acc, np.int64).astype(f32) * (input_scale * filter_scale).astype(f32)
        if bias is not None:
            b = np.asarray(bias)
            if b.dtype.kind == "i":  # a qint32 bias in the units of L x 127 per input max x filter max
                units = (f32(levels * 127) / (input_max * filter_max).astype(f32)).astype(f32)
                b = (b.astype(f32) / units).astype(f32)
            v = (v + b.astype(f32)).astype(f32)
        if summand is not None:  # oneDNN's sum post-op: one fused multiply-add
            scale, values = _summand_scaled(op, np.asarray(summand), summand_range)
            v = fma_float32(scale, values, v)
        if relu:
            v = np.maximum(v, f32(0))
        if out_type == "qint32":
            out_scale = filter_scale * input_scale
        else:
            assert output_range is not None
            out_max = max(abs(f32(output_range[0])), abs(f32(output_range[1])))
            out_scale = f32(out_max / f32(255 if out_type == "quint8" else 127))
        q = np.rint((v * (f32(1) / np.asarray(out_scale, f32)).astype(f32)).astype(f32))
    low, high = FUSED_OUTPUTS[out_type]
    # float32 holds no integer between 2**31 - 128 and 2**31: the largest qint32 it saturates to is 2**31 - 128
    out = np.clip(np.nan_to_num(q, nan=0.0), low, 2147483520.0 if out_type == "qint32" else high)
    if out_type != "qint32":
        return out.astype(np.int64), f32(output_range[0]), f32(output_range[1])  # type: ignore[index]
    width_in = f32(f32(input_range[1]) - f32(input_range[0])) / f32(255 if input_dtype == "quint8" else 254)
    width_f = (hi_f - lo_f).astype(f32) / f32(254)
    level = (width_in * width_f).astype(f32)
    low_out, high_out = level * f32(INT32_MIN), level * f32(INT32_MAX)
    scalar = np.ndim(filter_range[0]) == 0
    return out.astype(np.int64), (low_out[0] if scalar else low_out), (high_out[0] if scalar else high_out)


def asymmetric_quantize(x: np.ndarray) -> tuple[np.ndarray, float, int]:
    """TensorFlow's ``AsymmetricQuantize`` of float32 ``x`` to int8 (uniform_quant_ops/math_utils.h): the range
    [min(0, min x), max(0, max x)] over 255 levels (scale in float32), the zero point of the end with the smaller
    error, rounded half away from zero; ``floor(x * inverse_scale + 0.5) + zero_point`` in float32, clamped.
    Returns (int8 values, scale, zero point); an all-zero range gives zeros, scale 1, zero point 0."""
    v = np.asarray(x, np.float32)
    rmin = float(min(np.float32(0), v.min())) if v.size else 0.0
    rmax = float(max(np.float32(0), v.max())) if v.size else 0.0
    scale = float(np.float32((rmax - rmin) / 255.0))
    inverse = np.float32(255.0 / (rmax - rmin)) if rmax != rmin else np.float32(0)
    if scale == 0 or not np.isfinite(inverse):
        return np.zeros(v.shape, np.int8), 1.0, 0
    from_min, from_max = -128 - rmin / scale, 127 - rmax / scale
    zp = from_min if 128 + abs(rmin / scale) < 127 + abs(rmax / scale) else from_max
    zero_point = -128 if zp <= -128 else 127 if zp >= 127 else int(math.copysign(math.floor(abs(zp) + 0.5), zp))
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.floor(v * inverse + np.float32(0.5)).astype(np.int64) + zero_point
    return np.clip(q, -128, 127).astype(np.int8), scale, zero_point


def hybrid_conv2d(
    input: ArrayLike,
    filter: ArrayLike,
    filter_scale: float | Sequence[float],
    strides: Any = 1,
    padding: str = "VALID",
    dilations: Any = 1,
) -> np.ndarray:
    """``tf.raw_ops.UniformQuantizedConvolutionHybrid``: float32 input NHWC, int8 filter OHWI [O, kh, kw, C / groups]
    (grouped when C is a multiple of the filter's I; depthwise: [C * M, kh, kw, 1]) with one scale or one per output
    channel (zero point 0). Each batch item is quantized by
    ``asymmetric_quantize``; the integer sums (its zero point's padding contributes 0) become
    ``float32(float32(acc) * input_scale[n]) * filter_scale[o]``. Returns float32 NHWC."""
    op = "quantized.hybrid_conv2d"
    x = np.asarray(input)
    if x.dtype != np.float32 or x.ndim != 4:
        raise _fail(op, "input", f"<array of {x.dtype.name} {list(x.shape)}>", "must be float32 NHWC")
    w_ohwi = _filter(op, filter)
    scales = _filter_scales(op, filter_scale, w_ohwi.shape[0]).astype(np.float32)
    window = (_spatial_pair(op, "strides", strides), _padding(op, padding), _spatial_pair(op, "dilations", dilations))
    w_hwio = np.transpose(w_ohwi.astype(np.float64), (1, 2, 3, 0))
    quantized = [asymmetric_quantize(item) for item in x]  # per batch item
    q = np.stack([v for v, _, _ in quantized]) if quantized else np.zeros(x.shape, np.int8)
    zero_points = np.array([zp for _, _, zp in quantized], np.float64).reshape(-1, 1, 1, 1)
    acc = reference.conv2d(q.astype(np.float64) - zero_points, w_hwio, *window[:2], dilations=window[2])
    input_scales = np.array([s for _, s, _ in quantized], np.float32).reshape(-1, 1, 1, 1)
    return np.asarray((acc.astype(np.float32) * input_scales) * scales, np.float32)
