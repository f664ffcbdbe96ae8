"""TensorFlow's own quantized convolution ops (``tf.raw_ops``), called with a quantized case's integers.

These run in TensorFlow's server process (``SERVER_CALLS``, registered in ``harness.tf.isolation``); operands and
results cross as NumPy arrays and plain values. Layouts in and out are TFLite's, as ``harness.check.quantized``
holds a case: data NHWC, conv filters OHWI, depthwise filters ``[1, kh, kw, C * M]``; each function transposes to
what its op takes.

* ``uniform_conv``: ``UniformQuantizedConvolution`` (qint8 x qint8 -> qint32, requantized to the output scale and
  clamped), the default dimension numbers (NCHW data, OIHW filter), per-channel filter scales, depthwise as
  ``feature_group_count = C``. It has no bias operand.
* ``uniform_conv_hybrid``: ``UniformQuantizedConvolutionHybrid`` (float32 data x qint8 filter -> float32).
* ``quantized_conv2d``: ``QuantizedConv2D`` with quint8 data and a quint8 filter (the one instantiation with a CPU
  kernel of its own);
* ``quantized_conv_qint8``: ``QuantizedConv2D`` and ``QuantizedDepthwiseConv2D`` with a qint8 filter, whose plain CPU
  kernels are placeholders for oneDNN's graph rewrite: called in a graph with a constant filter.
* ``quantized_conv_fused``: the fused ``QuantizedConv2D*`` / ``QuantizedDepthwiseConv2D*`` ops (``FUSED_OPS``), the
  same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.tf.tflite import spatial_pair


def _filter_oihw(op: str, w_tfl: np.ndarray) -> np.ndarray:
    """TFLite's filter (OHWI; depthwise [1, kh, kw, C*M]) as OIHW (depthwise: [C*M, 1, kh, kw])."""
    if op == "depthwise_conv2d":
        return np.ascontiguousarray(np.transpose(w_tfl, (3, 0, 1, 2)))
    return np.ascontiguousarray(np.transpose(w_tfl, (0, 3, 1, 2)))


def _uniform_common(op: str, x_nhwc: np.ndarray, w_tfl: np.ndarray, scales: Any, attrs: Mapping[str, Any]) -> dict:
    """The arguments both Uniform ops take alike: the filter (qint8 OIHW, per-channel ``scales``, zero point 0) and
    the window (the default dimension numbers: NCHW data, OIHW filter)."""
    import tensorflow as tf

    scales = np.asarray(scales, np.float32)
    per_group = w_tfl.shape[3]  # a filter of 0 input channels reaches the op as is (its own check, or its crash)
    groups = x_nhwc.shape[3] if op == "depthwise_conv2d" else x_nhwc.shape[3] // per_group if per_group else 1
    return {
        "rhs": tf.bitcast(tf.constant(_filter_oihw(op, w_tfl)), tf.qint8),
        "rhs_scales": tf.constant(scales),
        "rhs_zero_points": tf.zeros(scales.shape, tf.int32),
        "padding": attrs["padding"],
        "window_strides": list(spatial_pair(attrs["strides"])),
        "rhs_dilation": list(spatial_pair(attrs.get("dilations", 1))),
        "feature_group_count": groups,
        "rhs_quantization_axis": 0,
        "rhs_quantization_min_val": -128,
        "rhs_quantization_max_val": 127,
    }


def _nchw(x_nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x_nhwc, (0, 3, 1, 2)))


def uniform_conv(
    op: str,
    x_nhwc: np.ndarray,
    w_tfl: np.ndarray,
    params: Mapping[str, Any],
    attrs: Mapping[str, Any],
    output_range: Sequence[int],
) -> np.ndarray:
    """``UniformQuantizedConvolution`` of int8 ``x_nhwc`` and ``w_tfl`` (per-channel scales, zero point 0), requantized
    to ``params``' output scale and zero point and clamped to ``output_range``; int32 NHWC."""
    import tensorflow as tf

    y = tf.raw_ops.UniformQuantizedConvolution(
        lhs=tf.bitcast(tf.constant(_nchw(x_nhwc)), tf.qint8),
        lhs_scales=tf.constant(params["input_scale"], tf.float32),
        lhs_zero_points=tf.constant(int(params["input_zero_point"]), tf.int32),
        output_scales=tf.constant(params["output_scale"], tf.float32),
        output_zero_points=tf.constant(int(params["output_zero_point"]), tf.int32),
        Tout=tf.qint32,
        lhs_quantization_min_val=-128,
        lhs_quantization_max_val=127,
        output_quantization_min_val=int(output_range[0]),
        output_quantization_max_val=int(output_range[1]),
        **_uniform_common(op, x_nhwc, w_tfl, params["filter_scale"], attrs),
    )
    return np.transpose(tf.bitcast(y, tf.int32).numpy(), (0, 2, 3, 1))


def uniform_conv_hybrid(
    op: str, x_nhwc: np.ndarray, w_tfl: np.ndarray, filter_scale: Sequence[float], attrs: Mapping[str, Any]
) -> np.ndarray:
    """``UniformQuantizedConvolutionHybrid`` of float32 ``x_nhwc`` and int8 ``w_tfl`` (per-channel scales, zero point
    0); float32 NHWC."""
    import tensorflow as tf

    y = tf.raw_ops.UniformQuantizedConvolutionHybrid(
        lhs=tf.constant(_nchw(x_nhwc), tf.float32),
        Tout=tf.float32,
        **_uniform_common(op, x_nhwc, w_tfl, filter_scale, attrs),
    )
    return np.transpose(y.numpy(), (0, 2, 3, 1))


def quantized_conv2d(
    x_nhwc: np.ndarray, w_hwio: np.ndarray, ranges: Sequence[float], attrs: Mapping[str, Any]
) -> tuple[np.ndarray, float, float]:
    """``QuantizedConv2D`` of uint8 ``x_nhwc`` and uint8 ``w_hwio`` (as quint8) with ``ranges`` (min_input,
    max_input, min_filter, max_filter): (the int32 output NHWC, min_output, max_output)."""
    import tensorflow as tf

    y, lo, hi = tf.raw_ops.QuantizedConv2D(
        input=tf.bitcast(tf.constant(x_nhwc), tf.quint8),
        filter=tf.bitcast(tf.constant(w_hwio), tf.quint8),
        **_ranges_and_window(ranges, attrs, dilations=False),
    )
    return tf.bitcast(y, tf.int32).numpy(), float(lo.numpy()), float(hi.numpy())


def _ranges_and_window(ranges: Sequence[float], attrs: Mapping[str, Any], dilations: bool = True) -> dict:
    """The min/max arguments and the NHWC window attributes of the QuantizedConv2D family."""
    import tensorflow as tf

    s, d = spatial_pair(attrs["strides"]), spatial_pair(attrs.get("dilations", 1))
    names = ("min_input", "max_input", "min_filter", "max_filter")
    out = {name: tf.constant(v, tf.float32) for name, v in zip(names, ranges)}
    out.update(strides=[1, s[0], s[1], 1], padding=attrs["padding"])
    return {**out, "dilations": [1, d[0], d[1], 1]} if dilations else out


def quantized_conv_qint8(
    op: str, x_nhwc: np.ndarray, w_tf: np.ndarray, ranges: Sequence[float], attrs: Mapping[str, Any]
) -> np.ndarray:
    """``QuantizedConv2D`` (``op`` "conv2d", filter HWIO), ``QuantizedConv2DPerChannel`` ("per_channel", filter HWIO,
    min_filter and max_filter one per output channel) or ``QuantizedDepthwiseConv2D`` ("depthwise_conv2d", filter
    HWIM) of uint8 ``x_nhwc`` (quint8) and an int8 filter (qint8) with ``ranges`` (min_input, max_input, min_filter,
    max_filter): the int32 output NHWC. In a ``tf.function`` with the filter a constant, as oneDNN's graph rewrite
    (``_MklQuantizedConv2D``, ``_MklQuantizedDepthwiseConv2D``) requires: these ops' own CPU kernels are placeholders."""
    import tensorflow as tf

    fn = {
        "conv2d": tf.raw_ops.QuantizedConv2D,
        "per_channel": tf.raw_ops.QuantizedConv2DPerChannel,
        "depthwise_conv2d": tf.raw_ops.QuantizedDepthwiseConv2D,
    }[op]
    kwargs = _ranges_and_window(ranges, attrs)

    @tf.function
    def call(x: Any) -> Any:
        y, _, _ = fn(input=tf.bitcast(x, tf.quint8), filter=tf.bitcast(tf.constant(w_tf), tf.qint8), **kwargs)
        return tf.bitcast(y, tf.int32)

    return call(tf.constant(x_nhwc)).numpy()


# op -> its output type: the fused ops' instantiations that have oneDNN kernels (a quint8 input, a qint8 filter)
FUSED_OPS = {
    "QuantizedConv2DAndRelu": "qint32",
    "QuantizedConv2DAndRequantize": "qint8",
    "QuantizedConv2DAndReluAndRequantize": "quint8",
    "QuantizedConv2DWithBias": "qint32",
    "QuantizedConv2DWithBiasAndRelu": "qint32",
    "QuantizedConv2DWithBiasAndRequantize": "qint8",
    "QuantizedConv2DWithBiasAndReluAndRequantize": "quint8",
    "QuantizedConv2DWithBiasSumAndRelu": "qint32",
    "QuantizedConv2DWithBiasSumAndReluAndRequantize": "quint8",
    "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize": "quint8",
    "QuantizedDepthwiseConv2DWithBias": "qint32",
    "QuantizedDepthwiseConv2DWithBiasAndRelu": "qint32",
    "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize": "quint8",
}


def quantized_conv_fused(
    op: str,
    x_nhwc: np.ndarray,
    w_tf: np.ndarray,
    bias: np.ndarray | None,
    ranges: Sequence[Any],
    output_range: Sequence[float] | None,
    attrs: Mapping[str, Any],
    summand: np.ndarray | None = None,
    summand_range: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One of ``FUSED_OPS`` (``QuantizedConv2D*``, filter HWIO; ``QuantizedDepthwiseConv2D*``, filter HWIM) of uint8
    ``x_nhwc`` (quint8) and an int8 filter (qint8) with ``ranges`` (min_input, max_input, min_filter, max_filter; the
    filter's per channel or scalars) and ``bias`` (float32, or int32 as qint32; None for the ops without), requantized to
    ``output_range`` (min/max_freezed_output) where the op requantizes; the ``...Sum...`` ops add ``summand`` (float32,
    uint8 as quint8 or int8 as qint8, with ``summand_range``), built inside the function as the sum of two arguments
    (the summand and zeros): the kernel writes its output into the summand's buffer, and a summand it cannot take
    over (a constant, an argument) crashes the process. In a ``tf.function`` with the filter and bias
    constants, as oneDNN's rewrite requires. Returns (the output as int32 NHWC, min_output, max_output)."""
    import tensorflow as tf

    out_type = FUSED_OPS[op]
    kwargs = _ranges_and_window(ranges, attrs)
    kwargs["out_type"] = {"qint32": tf.qint32, "qint8": tf.qint8, "quint8": tf.quint8}[out_type]
    if output_range is not None:
        kwargs.update(
            min_freezed_output=tf.constant(output_range[0], tf.float32),
            max_freezed_output=tf.constant(output_range[1], tf.float32),
        )
    if summand_range is not None:
        kwargs.update(
            min_summand=tf.constant(summand_range[0], tf.float32), max_summand=tf.constant(summand_range[1], tf.float32)
        )
    if bias is not None:
        kwargs["bias"] = (
            tf.bitcast(tf.constant(bias), tf.qint32) if bias.dtype == np.int32 else tf.constant(bias, tf.float32)
        )
    fn = getattr(tf.raw_ops, op)

    summand_type = {np.dtype(np.uint8): tf.quint8, np.dtype(np.int8): tf.qint8}

    @tf.function
    def call(x: Any, s: Any, zeros: Any) -> Any:
        w = tf.bitcast(tf.constant(w_tf), tf.qint8)
        added = {}
        if summand is not None:
            fresh = s + zeros
            added["summand"] = tf.bitcast(fresh, summand_type[summand.dtype]) if summand.dtype != np.float32 else fresh
        y, lo, hi = fn(input=tf.bitcast(x, tf.quint8), filter=w, **kwargs, **added)
        if out_type == "qint32":
            return tf.bitcast(y, tf.int32), lo, hi
        return tf.cast(tf.bitcast(y, tf.int8 if out_type == "qint8" else tf.uint8), tf.int32), lo, hi

    s = tf.constant(summand if summand is not None else np.zeros(0, np.float32))
    y, lo, hi = call(tf.constant(x_nhwc), s, tf.zeros_like(s))
    return y.numpy(), lo.numpy(), hi.numpy()


# The calls TensorFlow's server process answers (harness.tf.isolation.SERVER_CALLS).
SERVER_CALLS: dict[str, Callable[..., Any]] = {
    "tf_uniform_conv": uniform_conv,
    "tf_uniform_conv_hybrid": uniform_conv_hybrid,
    "tf_quantized_conv2d": quantized_conv2d,
    "tf_quantized_conv_qint8": quantized_conv_qint8,
    "tf_quantized_conv_fused": quantized_conv_fused,
}
