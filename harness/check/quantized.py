"""Run one quantized case (``Case.quantization``) at one scheme through TFLite's interpreter paths, bit for bit.

The case's real operands become a one-op TFLite model (``harness.tf.tflite``): built from the case's parameters, or
converted and calibrated by TFLite's converter, whose chosen parameters and integer weights are read back from the
model. Every path then runs the same model on the same integer input, and its output must be, exactly, the integer
reference's (``harness.conv.quantized``) under the rounding the path declares (``PATHS``):

* ``tflite-ref``: the reference kernels (``BUILTIN_REF``), gemmlowp's double rounding;
* ``tflite-builtin``: the optimized kernels (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``), which are meant to compute what
  the reference kernels compute: double rounding;
* ``tflite``: the default path, XNNPACK: single rounding;

and TensorFlow's own quantized convolutions on the same integers (``RAW_PATHS``, int8 conv2d and depthwise cases):

* ``tf-uniform``: ``UniformQuantizedConvolution``, the integer reference under single rounding with no bias (the
  op has no bias operand), clamped to the activation's range;
* ``tf-uniform-hybrid``: ``UniformQuantizedConvolutionHybrid`` on the case's real input: ``integer.hybrid_conv2d``;
* ``tf-quantized-conv2d``: ``QuantizedConv2D`` with quint8 operands (the int8 integers + 128): its int32 sums and
  output range, ``integer.tf_quantized_conv2d`` (no groups, no dilations, equal strides);
* ``tf-quantized-conv2d-qint8``, ``tf-quantized-per-channel``, ``tf-quantized-depthwise``: ``QuantizedConv2D`` with
  a qint8 filter, ``QuantizedConv2DPerChannel`` (a filter range per output channel) and
  ``QuantizedDepthwiseConv2D``, in a graph with a constant filter (their CPU kernels are placeholders for oneDNN's
  rewrite): their int32 sums;
* ``FUSED_PATHS``: the fused ``QuantizedConv2D*`` / ``QuantizedDepthwiseConv2D*`` ops (with ReLU where the case
  has an activation; qint32, qint8 or quint8 outputs; the ``...Sum...`` ones with a seeded summand), the same way:
  ``integer.tf_fused_quantized_conv`` of their sums (``_fused_expected``).

A path whose output is the reference's under another rounding "rounds <rule>"; one that matches no rounding has
``wrong_values``. Both are failures unless a known divergence of that path (``backend: <path>``) declares them.
Each comparison's detail counts the differing outputs, gives the largest difference in LSB and names the rounding
the output matched, if any.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from harness import ops
from harness.check.verdict import AGREES, REFERENCE, Verdict, call_behaviour, combined, verdict
from harness.conv import layouts
from harness.conv import quantized as integer
from harness.conv.tolerance import Bound, Comparison, compare
from harness.registry.cases import Case, CaseError, operand_arrays
from harness.registry.divergences import Divergence, features, in_scope, matching
from harness.registry.quantization import SCHEMES, TFLITE_OPS, QuantizationError, quantize
from harness.tf import quantized_ops, tflite
from harness.tf.environment import Environment
from harness.tf.isolation import Raised, Result, Returned, call_tensorflow
from harness.tf.tflite import CHANNEL_AXIS, QUANTIZATION_KEYS

# path -> (the interpreter: tf.lite's, in TensorFlow's process, or LiteRT's; its op resolver,
# harness.tf.tflite.RESOLVERS; the rounding it declares). The default item runs tf.lite's (DEFAULT_PATHS); LiteRT's
# are backends (--backend litert ...).
PATHS = {
    "tflite-ref": ("tensorflow", "ref", "double"),
    "tflite-builtin": ("tensorflow", "builtin", "double"),
    "tflite": ("tensorflow", "auto", "single"),
    "litert-ref": ("litert", "ref", "double"),
    "litert-builtin": ("litert", "builtin", "double"),
    "litert": ("litert", "auto", "single"),
}


class Fused(NamedTuple):
    """A fused path: the op without and with the case's activation (ReLU), its bias ("float": real values,
    "qint32": the case's int32 bias, or None), whether it takes one filter range for all channels, and its summand's
    dtype (the ``...Sum...`` ops: float32, uint8 for quint8, int8 for qint8)."""

    plain: str
    relu: str
    bias: str | None = None
    one_range: bool = False
    summand: str | None = None


# The fused family (oneDNN's _MklQuantizedConv2D* kernels), by path.
FUSED_PATHS: dict[str, Fused] = {
    "tf-quantized-conv2d-relu": Fused("QuantizedConv2DAndRelu", "QuantizedConv2DAndRelu"),
    # QuantizedConv2DAndRequantize takes scalar filter ranges only
    "tf-quantized-conv2d-nobias-requantize": Fused(
        "QuantizedConv2DAndRequantize", "QuantizedConv2DAndReluAndRequantize", one_range=True
    ),
    "tf-quantized-conv2d-bias": Fused("QuantizedConv2DWithBias", "QuantizedConv2DWithBiasAndRelu", "float"),
    "tf-quantized-conv2d-requantize": Fused(
        "QuantizedConv2DWithBiasAndRequantize", "QuantizedConv2DWithBiasAndReluAndRequantize", "qint32"
    ),
    "tf-quantized-conv2d-sum": Fused(
        "QuantizedConv2DWithBiasSumAndRelu", "QuantizedConv2DWithBiasSumAndRelu", "float", summand="float32"
    ),
    "tf-quantized-conv2d-sum-requantize": Fused(
        "QuantizedConv2DWithBiasSumAndReluAndRequantize",
        "QuantizedConv2DWithBiasSumAndReluAndRequantize",
        "qint32",
        summand="uint8",
    ),
    "tf-quantized-conv2d-signed-sum-requantize": Fused(
        "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize",
        "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize",
        "qint32",
        summand="int8",
    ),
    "tf-quantized-depthwise-bias": Fused(
        "QuantizedDepthwiseConv2DWithBias", "QuantizedDepthwiseConv2DWithBiasAndRelu", "float"
    ),
    "tf-quantized-depthwise-requantize": Fused(
        "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize",
        "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize",
        "qint32",
    ),
}

# TensorFlow's own quantized convolutions (harness.tf.quantized_ops), each against the integer reference of what it
# computes: the TFLite op under single rounding with no bias (it has no bias operand), the hybrid op's float output,
# the quint8 op's int32 sums. Only for the int8 cases each one can express (``_raw_expected``).
RAW_PATHS = {
    "tf-uniform": ("tf_uniform_conv", "single"),
    "tf-uniform-hybrid": ("tf_uniform_conv_hybrid", "hybrid"),
    "tf-quantized-conv2d": ("tf_quantized_conv2d", "accumulator"),
    "tf-quantized-conv2d-qint8": ("tf_quantized_conv_qint8", "accumulator"),
    "tf-quantized-per-channel": ("tf_quantized_conv_qint8", "accumulator"),
    "tf-quantized-depthwise": ("tf_quantized_conv_qint8", "accumulator"),
    **{path: ("tf_quantized_conv_fused", "onednn") for path in FUSED_PATHS},
}
PATHS.update({path: ("tensorflow-raw", op, rounding) for path, (op, rounding) in RAW_PATHS.items()})
TFLITE_PATHS = ("tflite-ref", "tflite-builtin", "tflite")  # tf.lite's interpreter paths
DEFAULT_PATHS = (*TFLITE_PATHS, *RAW_PATHS)
LABELS = {
    "tflite-ref": "TFLite (BUILTIN_REF)",
    "tflite-builtin": "TFLite (optimized)",
    "tflite": "TFLite (XNNPACK)",
    "litert-ref": "LiteRT (BUILTIN_REF)",
    "litert-builtin": "LiteRT (optimized)",
    "litert": "LiteRT (XNNPACK)",
    "tf-uniform": "TensorFlow UniformQuantizedConvolution",
    "tf-uniform-hybrid": "TensorFlow UniformQuantizedConvolutionHybrid",
    "tf-quantized-conv2d": "TensorFlow QuantizedConv2D (quint8)",
    "tf-quantized-conv2d-qint8": "TensorFlow QuantizedConv2D (qint8 filter)",
    "tf-quantized-per-channel": "TensorFlow QuantizedConv2DPerChannel",
    "tf-quantized-depthwise": "TensorFlow QuantizedDepthwiseConv2D",
    "tf-quantized-conv2d-relu": "TensorFlow QuantizedConv2DAndRelu",
    "tf-quantized-conv2d-nobias-requantize": "TensorFlow QuantizedConv2D(AndRelu)AndRequantize",
    "tf-quantized-conv2d-bias": "TensorFlow QuantizedConv2DWithBias(AndRelu)",
    "tf-quantized-conv2d-requantize": "TensorFlow QuantizedConv2DWithBias(AndRelu)AndRequantize",
    "tf-quantized-conv2d-sum": "TensorFlow QuantizedConv2DWithBiasSumAndRelu",
    "tf-quantized-conv2d-sum-requantize": "TensorFlow QuantizedConv2DWithBiasSumAndReluAndRequantize",
    "tf-quantized-conv2d-signed-sum-requantize": "TensorFlow QuantizedConv2DWithBiasSignedSumAndReluAndRequantize",
    "tf-quantized-depthwise-bias": "TensorFlow QuantizedDepthwiseConv2DWithBias(AndRelu)",
    "tf-quantized-depthwise-requantize": "TensorFlow QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize",
}


@dataclass(frozen=True)
class QuantizedCall:
    """One quantized case at one scheme, ready to run: TFLite's op, its model (the flatbuffer, uint8), the integer
    input (NHWC), weights (OHWI, or 1HW(C*M) for depthwise) and bias, the parameters (``QUANTIZATION_KEYS`` and
    ``activation``) and TFLite's attributes (strides, padding, dilations or output_shape)."""

    op: str
    dtype: str
    model: np.ndarray = field(repr=False)
    input_q: np.ndarray = field(repr=False)
    filter_q: np.ndarray = field(repr=False)
    bias_q: np.ndarray = field(repr=False)
    params: Mapping[str, Any]
    attrs: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray] = field(repr=False, default_factory=dict)  # the case's real operands (float64)
    calibrated: bool = False

    def reference(self, rounding: str, bias: np.ndarray | None = None) -> np.ndarray:
        """The integer reference's output under ``rounding`` (with ``bias`` instead of the case's, when given)."""
        bias_q = self.bias_q if bias is None else bias
        kwargs = {k: self.params[k] for k in QUANTIZATION_KEYS}
        common = dict(
            strides=self.attrs["strides"],
            padding=self.attrs["padding"],
            activation=self.params["activation"],
            rounding=rounding,
            **kwargs,
        )
        if self.op == "transpose_conv":
            return integer.transpose_conv(self.attrs["output_shape"], self.filter_q, self.input_q, bias_q, **common)
        fn = integer.conv2d if self.op == "conv2d" else integer.depthwise_conv2d
        return fn(self.input_q, self.filter_q, bias_q, dilations=self.attrs["dilations"], **common)

    def roundings(self) -> tuple[str, ...]:
        """The roundings that apply at this scheme (XNNPACK's float32 has no 16x8 kernels)."""
        return integer.ROUNDINGS if self.dtype == "int8" else tuple(r for r in integer.ROUNDINGS if r != "float32")


class ServerError(RuntimeError):
    """TensorFlow's process could not build, convert or read the case's model (the message says what it did)."""


def _server(name: str, *args: Any) -> Any:
    result = call_tensorflow(name, args, {})
    if not isinstance(result, Returned):
        behaviour, detail = call_behaviour(result, "TensorFlow") or ("failed", "")
        raise ServerError(f"{name} {behaviour}: {detail}")
    return result.value


def tflite_filter(op: str, w: np.ndarray) -> np.ndarray:
    """A tf.nn filter (HWIO; HWIM for depthwise; HWOI for conv2d_transpose) in TFLite's layout for ``op`` (OHWI;
    [1, kh, kw, I * M] for depthwise, output channel i * M + m; OHWI for transpose_conv)."""
    if op == "depthwise_conv2d":
        return w.reshape(1, w.shape[0], w.shape[1], -1)
    return layouts.convert(w, "HWIO" if op == "conv2d" else "HWOI", "OHWI")


def prepare(case: Case, dtype: str) -> QuantizedCall:
    """``case`` (quantized) at scheme ``dtype`` as a ``QuantizedCall``; CaseError for a malformed case, ServerError
    when TensorFlow's process fails to make its model."""
    q = case.quantization
    if q is None:
        raise ValueError(f"{case.id} is not a quantized case")
    spec = ops.get(case.op)
    op = TFLITE_OPS[case.op]
    arrays = operand_arrays(case, "float64")
    x, w = arrays[spec.data.name], arrays[spec.kernel_operand.name]
    strides, dilations, padding = spec.window_attrs(case.attrs)
    attrs: dict[str, Any] = {"strides": list(strides), "padding": padding}
    if op == "transpose_conv":
        attrs["output_shape"] = [int(v) for v in case.attrs["output_shape"]]
    else:
        attrs["dilations"] = list(dilations)
    if q.calibration is not None:
        model = _server(
            "tflite_convert",
            op,
            {"input": x, "filter": w},
            attrs,
            q.calibration.samples,
            q.calibration.seed,
            SCHEMES[dtype],
            q.activation,
        )
        read = _server("tflite_read", model)
        params = read["params"]
        filter_q, bias_q = read["filter"], read["bias"]
        if bias_q is None:
            bias_q = np.zeros(filter_q.shape[CHANNEL_AXIS[op]], np.int32)
    else:
        w_tfl = tflite_filter(op, w)
        channels = w_tfl.shape[CHANNEL_AXIS[op]]
        try:
            params = q.params(channels)
            bias_q = q.bias_values(channels, dtype)
        except QuantizationError as exc:
            raise CaseError(case.file, case.name, f"quantization.{exc.field}", exc.message) from None
        scales = np.asarray(params["filter_scale"], np.float64)
        axis_scales = scales if op == "depthwise_conv2d" else scales.reshape(-1, 1, 1, 1)
        filter_q = quantize(w_tfl, axis_scales, 0, np.int8)
        model = _server("tflite_build", op, list(x.shape), filter_q, bias_q, {**params, "dtype": dtype}, attrs)
    input_q = quantize(x, params["input_scale"], params["input_zero_point"], np.dtype(dtype))
    return QuantizedCall(op, dtype, model, input_q, filter_q, bias_q, params, attrs, arrays, q.calibrated)


def exact_bound(shape: tuple[int, ...]) -> Bound:
    """The bound of an integer comparison: bit equality everywhere."""
    return Bound(per_element=np.zeros(shape), exact=True, c=0.0, u=0.0, override=None)


def roundings_matched(out: np.ndarray, by_rounding: Mapping[str, np.ndarray]) -> list[str]:
    """The roundings (keys of ``by_rounding``) whose output ``out`` is, exactly."""
    return [r for r, v in by_rounding.items() if v.shape == out.shape and np.array_equal(v, out)]


def judge(
    path: str, out: np.ndarray, by_rounding: Mapping[str, np.ndarray], declared_elsewhere: Sequence[str] = ()
) -> tuple[Comparison, str, str]:
    """(comparison, behaviour, detail) of ``path``'s output against the reference under the path's rounding. An
    output that several other roundings give (they differ only on ties) "rounds" the first of them that a known
    divergence declares (``declared_elsewhere``: behaviours), else the first of ``ROUNDINGS``."""
    declared = PATHS[path][2]
    want = by_rounding[declared]
    comparison = compare(path, out, REFERENCE, want, exact_bound(want.shape))
    matched = roundings_matched(out, by_rounding)
    if comparison.ok:
        exact = f"exact, {declared} rounding" if declared in integer.ROUNDINGS else f"exact ({declared})"
        return dataclasses.replace(comparison, detail=exact), AGREES, ""
    if out.shape != want.shape:
        return (
            comparison,
            "wrong_shape",
            f"{LABELS[path]} returned shape {list(out.shape)}, the reference {list(want.shape)}",
        )
    differ = out.astype(np.int64) != want.astype(np.int64)
    if declared not in integer.ROUNDINGS:  # a raw op's sums or float output: no rounding to name
        largest = float(np.abs(out.astype(np.float64) - want.astype(np.float64)).max())
        what = f"{int(differ.sum())} of {out.size} outputs differ from the reference's {declared}, by up to {largest:g}"
        return dataclasses.replace(comparison, detail=what), "wrong_values", f"{LABELS[path]}: {what}"
    lsb = int(np.abs(out.astype(np.int64) - want.astype(np.int64)).max())
    what = f"{int(differ.sum())} of {out.size} outputs differ from {declared} rounding, by up to {lsb} LSB"
    what += (
        f"; the output is the reference's under {', '.join(matched)} rounding"
        if matched
        else (
            "; it matches no rounding ("
            + ", ".join(f"{r}: {int((v != out).sum())} differ" for r, v in by_rounding.items())
            + ")"
        )
    )
    comparison = dataclasses.replace(comparison, detail=what)
    rounds = [f"rounds {r}" for r in matched]
    behaviour = next((b for b in rounds if b in declared_elsewhere), rounds[0] if rounds else "wrong_values")
    return comparison, behaviour, f"{LABELS[path]}: {what}"


def _raw_expected(path: str, call: QuantizedCall) -> tuple[tuple, dict[str, np.ndarray], Any] | str:
    """(the server call's arguments, the reference's output by rounding, QuantizedConv2D's expected output range) of
    a raw op's path for ``call``, or why the op cannot express the case."""
    if call.dtype != "int8" or call.op == "transpose_conv":
        return f"{RAW_PATHS[path][0]} takes int8 conv2d and depthwise_conv2d only"
    p, a = call.params, call.attrs
    if path == "tf-uniform":
        zeros = np.zeros_like(call.bias_q)
        low_high = integer.activation_range(p["activation"], p["output_scale"], p["output_zero_point"], "int8")
        args = (call.op, call.input_q, call.filter_q, dict(p), dict(a), list(low_high))
        # its output is qint32 holding the clamped int8 values
        return args, {r: call.reference(r, bias=zeros).astype(np.int32) for r in call.roundings()}, None
    if path == "tf-uniform-hybrid":
        x_real = np.asarray(call.arrays["input"], np.float32)  # conv2d's and depthwise_conv2d's data operand
        w_ohwi = np.transpose(call.filter_q, (3, 1, 2, 0)) if call.op == "depthwise_conv2d" else call.filter_q
        want = integer.hybrid_conv2d(x_real, w_ohwi, p["filter_scale"], a["strides"], a["padding"], a["dilations"])
        return (call.op, x_real, call.filter_q, list(p["filter_scale"]), dict(a)), {"hybrid": want}, None
    strides = [int(v) for v in a["strides"]]
    # int8 -> quint8 (+128) for the data; for the qint8-filter ops the ranges put 0.0 at integer 0 (quint8 [0, 255],
    # qint8 [-127, 127]), where the ops' asymmetric definition and oneDNN's symmetric kernels mean the same sums
    x_u8 = (call.input_q.astype(np.int16) + 128).astype(np.uint8)
    s_in, s_w = p["input_scale"], (p["filter_scale"] or [1.0])[0]  # no output channels: any filter range
    if path in ("tf-quantized-conv2d-qint8", "tf-quantized-per-channel", "tf-quantized-depthwise", *FUSED_PATHS):
        depthwise = path.startswith("tf-quantized-depthwise")
        if depthwise != (call.op == "depthwise_conv2d"):
            return f"{RAW_PATHS[path][0]} is the {'depthwise' if depthwise else 'conv2d'} op"
        if call.op == "conv2d" and call.filter_q.shape[3] != call.input_q.shape[3]:
            return "QuantizedConv2D has no groups"
        if strides[0] != strides[1]:
            return "these ops take equal strides only"
        lo_in, hi_in, lo_w, hi_w = 0.0, 255.0, -127.0, 127.0  # the sums do not depend on the scales
        ranges = [lo_in, hi_in, lo_w, hi_w]
        if depthwise:  # [1, kh, kw, C*M] -> HWIM
            w = call.filter_q.reshape(*call.filter_q.shape[1:3], call.input_q.shape[3], -1)
            acc = integer.tf_quantized_depthwise_conv2d(
                x_u8, w, lo_in, hi_in, lo_w, hi_w, strides, a["padding"], a["dilations"]
            )
        else:
            w = np.ascontiguousarray(np.transpose(call.filter_q, (1, 2, 3, 0)))  # OHWI -> HWIO
            sums = integer.tf_quantized_conv2d(x_u8, w, lo_in, hi_in, lo_w, hi_w, strides, a["padding"], a["dilations"])
            acc = sums[0]
        if path in FUSED_PATHS:
            return _fused_expected(path, call, x_u8, w, acc)
        if path == "tf-quantized-per-channel":  # the filter's range per output channel: 127 times its scale
            scales = np.asarray(p["filter_scale"], np.float32)
            per_channel = [lo_in, hi_in, [float(v) for v in -127 * scales], [float(v) for v in 127 * scales]]
            return ("per_channel", x_u8, w, per_channel, dict(a)), {"accumulator": acc}, None  # 0.0 at integer 0
        return (call.op, x_u8, w, ranges, dict(a)), {"accumulator": acc}, None
    if call.op != "conv2d" or call.filter_q.shape[3] != call.input_q.shape[3]:
        return "QuantizedConv2D has no groups"
    if any(int(d) != 1 for d in a["dilations"]) or strides[0] != strides[1]:
        return "QuantizedConv2D takes neither dilations nor unequal strides"
    # the quint8 filter too (+128); each range puts 0.0 at the zero point + 128 (the sums depend on integers only)
    w_u8 = np.transpose(call.filter_q.astype(np.int16) + 128, (1, 2, 3, 0)).astype(np.uint8)  # OHWI -> HWIO
    zp = p["input_zero_point"]
    ranges = [s_in * (-128 - zp), s_in * (127 - zp), -128 * s_w, 127 * s_w]
    acc, low, high = integer.tf_quantized_conv2d(
        x_u8, w_u8, ranges[0], ranges[1], ranges[2], ranges[3], strides=strides, padding=a["padding"]
    )
    return (x_u8, w_u8, ranges, dict(a)), {"accumulator": acc}, (low, high)


def _fused_expected(
    path: str, call: QuantizedCall, x_u8: np.ndarray, w: np.ndarray, acc: np.ndarray
) -> tuple[tuple, dict[str, np.ndarray], Any]:
    """A fused path's call and expected output (``_raw_expected``): the case's quint8 input over [0, 255 x input
    scale], the filter over +-127 x each channel's scale (or the largest, where the op takes one range), the case's
    int32 bias as a qint32 bias (the same units) or as float32 real values; ReLU where the case has an activation
    (``FUSED_PATHS``: the op with or without it); requantized to the case's output scale, +-127 x it for qint8 and
    [0, 255 x it] for quint8."""
    p, a = call.params, call.attrs
    fused = FUSED_PATHS[path]
    op = fused.relu if p["activation"] != "NONE" else fused.plain
    relu, bias_kind = "Relu" in op, fused.bias
    s_in, s_w = p["input_scale"], np.asarray(p["filter_scale"], np.float32)
    if fused.one_range:
        s_w = np.float32(s_w.max(initial=1.0))
        filter_range: list[Any] = [float(-127 * s_w), float(127 * s_w)]
    else:
        filter_range = [[float(v) for v in -127 * s_w], [float(v) for v in 127 * s_w]]
    ranges = [0.0, 255 * s_in, *filter_range]
    bias = None
    if bias_kind == "float":
        bias = (call.bias_q * np.float32(s_in) * s_w).astype(np.float32)
    elif bias_kind == "qint32":
        bias = call.bias_q.astype(np.int32)
    out_type = quantized_ops.FUSED_OPS[op]
    s_out = p["output_scale"]
    output_range = {"qint32": None, "quint8": [0.0, 255 * s_out], "qint8": [-127 * s_out, 127 * s_out]}[out_type]
    summand, summand_range = _summand(fused.summand, acc.shape, s_out)
    want, low, high = integer.tf_fused_quantized_conv(
        acc, "quint8", ranges[:2], ranges[2:], bias, relu, out_type, output_range, summand, summand_range
    )
    args = (op, x_u8, w, bias, ranges, output_range, dict(a), summand, summand_range)
    return args, {"onednn": want.astype(np.int32)}, (low, high)


def _summand(dtype: str | None, shape: tuple[int, ...], output_scale: float) -> tuple[Any, Any]:
    """(summand, summand_range) of a ``...Sum...`` path (None, None for the others): seeded values of the output's
    shape, as a residual connection adds the output of an earlier layer in the same scale: real values within about
    +-60 output scales (float32), or quint8 over [0, 255 output scales], or qint8 over +-127."""
    if dtype is None:
        return None, None
    rng = np.random.default_rng(0)
    if dtype == "float32":
        return (rng.normal(0.0, 20 * output_scale, shape)).astype(np.float32), None
    if dtype == "uint8":
        return rng.integers(0, 256, shape).astype(np.uint8), [0.0, 255 * output_scale]
    return rng.integers(-128, 128, shape).astype(np.int8), [-127 * output_scale, 127 * output_scale]


def run_model(runtime: str, model: np.ndarray, input_q: np.ndarray, resolver: str) -> Result:
    """A model run by tf.lite in TensorFlow's process, or by LiteRT here (it imports no TensorFlow), as a call's
    result: Returned, or Raised with the error."""
    if runtime == "tensorflow":
        return call_tensorflow("tflite_run", (model, input_q, resolver), {})
    if runtime != "litert":
        raise ValueError(f"run_model: no interpreter {runtime!r}")
    try:
        return Returned(tflite.run(model, input_q, resolver, runtime=runtime))
    except Exception as exc:  # every interpreter error is an outcome to report
        return Raised(type(exc).__name__, str(exc).strip())


def features_of(case: Case, dtype: str, env: Environment) -> dict:
    """The divergence features of quantized ``case`` at ``dtype`` (``harness.registry.divergences.features``): its
    geometry is the float op's, whose float64 reference gives the output's shape (no model, no TensorFlow)."""
    spec = ops.get(case.op)
    arrays = operand_arrays(case, "float64")
    return features(case.op, dtype, arrays, case.attrs, spec.call(spec.reference, arrays, case.attrs), env)


def run_quantized(
    case: Case,
    dtype: str,
    divergences: Sequence[Divergence] = (),
    env: Environment | None = None,
    paths: Sequence[str] = DEFAULT_PATHS,
    keep_outputs: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Run quantized ``case`` at ``dtype`` through ``paths``; never raises for a bad case or a failing path. Returns
    (status, the other fields of the ``harness.check.runner.Outcome``)."""
    env = env or Environment.current()
    try:
        call = prepare(case, dtype)
    except (CaseError, ValueError, ServerError) as exc:
        return "failed", {"errors": (f"malformed case: {exc}",)}
    try:
        by_rounding = {r: call.reference(r) for r in call.roundings()}
    except ValueError as exc:  # parameters TFLite's Prepare refuses too (an activation range beyond int32)
        return _refused(case, dtype, call, str(exc), paths, env)
    # the float op's geometry, the output's shape from the reference computed above (features_of without them)
    feats = features(case.op, dtype, call.arrays, case.attrs, by_rounding["double"], env)
    verdicts: list[Verdict] = []
    comparisons: list[Comparison] = []
    outputs: dict[str, np.ndarray] = {"reference": by_rounding["double"]}
    applicable_all: list[Divergence] = []
    behaviours = []
    not_expressible = []
    for path in paths:
        runtime, resolver, _ = PATHS[path]
        expected, out_range = by_rounding, None
        if runtime == "tensorflow-raw":
            raw = _raw_expected(path, call)
            if isinstance(raw, str):
                not_expressible.append(f"{path}: {raw}")
                continue
            args, expected, out_range = raw
            result = call_tensorflow(resolver, args, {})
        else:
            result = run_model(runtime, call.model, call.input_q, resolver)
        applicable = matching(in_scope(divergences, "forward"), feats, env, backend=path)
        applicable_all += applicable
        failed = call_behaviour(result, LABELS[path])
        if failed is not None or not isinstance(result, Returned):
            behaviour, detail = failed or ("failed", "")
        else:
            out, extra = _raw_output(result.value, out_range)
            outputs[path] = out
            declared = [b for d in applicable for b in d.tensorflow_does]
            comparison, behaviour, detail = judge(path, out, expected, declared)
            if behaviour == AGREES and extra:
                comparison, behaviour, detail = (
                    dataclasses.replace(comparison, ok=False, detail=extra),
                    "wrong_values",
                    extra,
                )
            comparisons.append(comparison)
        behaviours.append(f"{path}: {behaviour}")
        verdicts.append(verdict(LABELS[path], behaviour, detail, applicable))
    v = combined(verdicts)
    source = "calibrated by TFLite's converter" if call.calibrated else "given"
    scheme = dtype if SCHEMES[dtype] == dtype else f"{dtype} ({SCHEMES[dtype]})"
    notes = (f"{scheme} {call.op}; parameters {source}: " + _describe(call.params), *v.notes)
    if not_expressible:
        notes += ("not run: " + "; ".join(not_expressible),)
    return v.status, {
        "comparisons": tuple(comparisons),
        "errors": v.errors,
        "notes": notes,
        "divergence": v.divergence,
        "diverged": tuple(d.id for d in v.diverged),
        "applicable": tuple(dict.fromkeys(d.id for d in applicable_all)),
        "attrs": dict(case.attrs),
        "shapes": {**{n: a.shape for n, a in call.arrays.items()}, "output": by_rounding["double"].shape},
        "tensorflow": "; ".join(behaviours),
        "features": feats,
        "outputs": outputs if keep_outputs or v.status == "failed" else {},
    }


def _refused(
    case: Case, dtype: str, call: QuantizedCall, why: str, paths: Sequence[str], env: Environment
) -> tuple[str, dict[str, Any]]:
    """A model whose parameters the reference refuses: every path must refuse it too (an interpreter error)."""
    errors, behaviours, notes = [], [], [f"the reference refuses these parameters: {why}"]
    for path in paths:
        runtime, resolver, _ = PATHS[path]
        if runtime == "tensorflow-raw":  # takes the clamp as two integers: no activation range to refuse
            continue
        result = run_model(runtime, call.model, call.input_q, resolver)
        if isinstance(result, Raised):
            behaviours.append(f"{path}: raises {result.error_class}")
            notes.append(f"{LABELS[path]} refuses it too: {result.error_class}: {result.message[:200]}")
        else:
            behaviours.append(f"{path}: returns a value")
            errors.append(f"{LABELS[path]} returned a value where the reference refuses the parameters ({why})")
    return ("failed" if errors else "passed"), {
        "errors": tuple(errors),
        "notes": tuple(notes),
        "attrs": dict(case.attrs),
        "tensorflow": "; ".join(behaviours),
        "features": features_of(case, dtype, env),
    }


def _raw_output(value: Any, out_range: tuple[float, float] | None) -> tuple[np.ndarray, str]:
    """(the output ``judge`` compares, what else disagrees): QuantizedConv2D also returns its output's float range,
    which must be the reference's (``out_range``) exactly."""
    if out_range is None:
        return np.asarray(value), ""
    acc, low, high = value
    got, want = (np.asarray(v, np.float32) for v in (low, high)), (np.asarray(v, np.float32) for v in out_range)
    if all(g.shape == w.shape and np.array_equal(g, w) for g, w in zip(got, want)):
        return np.asarray(acc), ""
    return np.asarray(acc), f"min/max_output ({low!r}, {high!r}), the reference's {tuple(out_range)!r}"


def _describe(params: Mapping[str, Any]) -> str:
    scales = params["filter_scale"]
    filt = f"{scales[0]:.4g}" if len(set(scales)) == 1 else f"{len(scales)} per-channel scales"  # 0: no channels
    return (
        f"input {params['input_scale']:.4g}/{params['input_zero_point']}, filter {filt}, "
        f"output {params['output_scale']:.4g}/{params['output_zero_point']}, {params['activation']}"
    )
