"""Reference gradients of every op in ``harness.ops.OPS``, from the reference backprop ops.

For ``y = op(*operands, **attrs)`` and an output gradient ``dy`` (``y``'s shape and
layout), ``gradients(op, arrays, attrs, dy)`` returns ``d<sum(y * dy)>/d operand``
for every operand, in the operand's own layout and dtype: what TensorFlow's
``tf.GradientTape.gradient(y, operands, output_gradients=dy)`` computes.

Each op's rule is one entry of ``GRADIENTS`` built from the four raw-op
references in ``harness.conv.reference`` and ``harness.conv.layouts``:

* conv2d: ``conv2d_backprop_input`` and ``conv2d_backprop_filter``;
* depthwise_conv2d: the depthwise pair;
* conv2d_transpose (itself the input gradient of conv2d): d_input is ``conv2d(dy, filters)``,
  d_filters is ``conv2d_backprop_filter`` with the roles of input and output swapped;
* atrous_conv2d: conv2d's rule with dilations = rate, stride 1;
* conv1d: conv2d's rule on a height-1 image (NWC -> NHWC, WIO -> HWIO);
* separable_conv2d: the chain rule through its depthwise output.

Operands and ``dy`` are converted to float64 (int64 for ints) first and each
gradient is cast to its operand's dtype once, so chained rules round once.
Adding an op = one function and one ``GRADIENTS`` entry. No TensorFlow here.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from harness.conv import layouts, reference
from harness import ops
from harness.conv.dtypes import accumulator
from harness.conv.padding import raw_op_window_args

Arrays = Mapping[str, np.ndarray]


def raw_attrs(op: str, fmt: str, attrs: Mapping, stride_arg="strides", dilation_arg="dilations") -> dict:
    """tf.nn window attributes (already accepted by the forward reference) -> the keyword arguments of the raw
    backprop ops (4-long lists, EXPLICIT + flat list)."""
    s4, d4, name, flat = raw_op_window_args(*ops.window_attrs(op, attrs, fmt, stride_arg, dilation_arg), fmt)
    return {"strides": s4, "padding": name, "explicit_paddings": flat, "data_format": fmt, "dilations": d4}


def _fmt(op: str, attrs: Mapping) -> str:
    return ops.get(op).data_format(attrs)


def _conv2d_rule(x, w_hwio, dy, raw: dict) -> tuple[np.ndarray, np.ndarray]:
    """(d_input, d_filter) of conv2d in raw-op form; x and dy in raw["data_format"]."""
    return (reference.conv2d_backprop_input(list(x.shape), w_hwio, dy, **raw),
            reference.conv2d_backprop_filter(x, list(w_hwio.shape), dy, **raw))


def _depthwise_rule(x, w_hwim, dy, raw: dict) -> tuple[np.ndarray, np.ndarray]:
    return (reference.depthwise_conv2d_native_backprop_input(list(x.shape), w_hwim, dy, **raw),
            reference.depthwise_conv2d_native_backprop_filter(x, list(w_hwim.shape), dy, **raw))


def _conv2d(a: Arrays, attrs: Mapping, dy) -> dict:
    fmt = _fmt("conv2d", attrs)
    dx, dw = _conv2d_rule(a["input"], a["filters"], dy, raw_attrs("conv2d", fmt, attrs))
    return {"input": dx, "filters": dw}


def _depthwise_conv2d(a: Arrays, attrs: Mapping, dy) -> dict:
    fmt = _fmt("depthwise_conv2d", attrs)
    dx, dw = _depthwise_rule(a["input"], a["filter"], dy, raw_attrs("depthwise_conv2d", fmt, attrs))
    return {"input": dx, "filter": dw}


def _conv2d_transpose(a: Arrays, attrs: Mapping, dy) -> dict:
    """conv2d_transpose(y, w) = conv2d_backprop_input(output_shape, w, y): its adjoint in y is conv2d(., w),
    and its gradient in w is conv2d_backprop_filter with dy as the convolution's input and y as out_backprop."""
    fmt = _fmt("conv2d_transpose", attrs)
    y, w_hwoi = a["input"], a["filters"]
    d_input = reference.conv2d(dy, w_hwoi, attrs["strides"], attrs.get("padding", "SAME"), data_format=fmt,
                               dilations=attrs.get("dilations"))
    raw = raw_attrs("conv2d_transpose", fmt, attrs)
    return {"input": d_input, "filters": reference.conv2d_backprop_filter(dy, list(w_hwoi.shape), y, **raw)}


def _atrous_conv2d(a: Arrays, attrs: Mapping, dy) -> dict:
    raw = raw_attrs("atrous_conv2d", "NHWC", attrs, dilation_arg="rate")  # stride 1, dilations = rate
    dx, dw = _conv2d_rule(a["value"], a["filters"], dy, raw)
    return {"value": dx, "filters": dw}


def _conv1d(a: Arrays, attrs: Mapping, dy) -> dict:
    """conv2d's rule on a height-1 image: NWC / NCW -> NHWC and WIO -> HWIO insert H = 1."""
    fmt = _fmt("conv1d", attrs)
    (stride,), (dilation,), pad = ops.window_attrs("conv1d", attrs, fmt, stride_arg="stride")
    raw = raw_attrs("conv1d", "NHWC", {"strides": [1, stride], "dilations": [1, dilation], "padding": pad})
    x_nhwc, dy_nhwc = layouts.convert(a["input"], fmt, "NHWC"), layouts.convert(dy, fmt, "NHWC")
    dx_nhwc, dw_hwio = _conv2d_rule(x_nhwc, layouts.convert(a["filters"], "WIO", "HWIO"), dy_nhwc, raw)
    return {"input": layouts.convert(dx_nhwc, "NHWC", fmt), "filters": layouts.convert(dw_hwio, "HWIO", "WIO")}


def _separable_conv2d(a: Arrays, attrs: Mapping, dy) -> dict:
    """y = pointwise(z), z = depthwise(x): dz = the 1x1 conv2d's input gradient, then the depthwise pair."""
    fmt = _fmt("separable_conv2d", attrs)
    x, w_dw, w_pw = a["input"], a["depthwise_filter"], a["pointwise_filter"]
    z = reference.depthwise_conv2d(x, w_dw, attrs["strides"], attrs["padding"], data_format=fmt,
                                   dilations=attrs.get("dilations"))
    dz, d_pw = _conv2d_rule(z, w_pw, dy, raw_attrs("separable_conv2d", fmt, {"strides": 1, "padding": "VALID"}))
    dx, d_dw = _depthwise_rule(x, w_dw, dz, raw_attrs("separable_conv2d", fmt, attrs))
    return {"input": dx, "depthwise_filter": d_dw, "pointwise_filter": d_pw}


GRADIENTS: dict[str, Callable[[Arrays, Mapping, np.ndarray], dict]] = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "conv2d_transpose": _conv2d_transpose,
    "atrous_conv2d": _atrous_conv2d,
    "separable_conv2d": _separable_conv2d,
    "conv1d": _conv1d,
}


def gradients(op: str, arrays: Arrays, attrs: Mapping, out_backprop) -> dict[str, np.ndarray]:
    """The gradient of ``sum(op(*arrays, **attrs) * out_backprop)`` w.r.t. every operand.

    arrays: operand name -> array, in the layouts the op takes (as ``harness.ops``);
    attrs: the op's keyword attributes (symbolic ones are resolved here);
    out_backprop: the op's output shape and dtype. Returns operand name -> gradient,
    each of its operand's shape and dtype.
    """
    spec = ops.get(op)
    if op not in GRADIENTS:
        raise ValueError(f"gradients: argument 'op'={op!r} has no gradient rule; known: {', '.join(GRADIENTS)}")
    names = [o.name for o in spec.operands]
    if sorted(arrays) != sorted(names):
        raise ValueError(f"gradients: argument 'arrays' has operands {sorted(arrays)}; {op} takes {names}")
    attrs = spec.resolved(arrays, attrs)
    y = spec.call(spec.reference, arrays, attrs)  # validates every forward argument, with the op's own messages
    dy = np.asarray(out_backprop)
    if dy.shape != y.shape or dy.dtype != y.dtype:
        raise ValueError(f"gradients: argument 'out_backprop' has shape {list(dy.shape)} and dtype {dy.dtype}; "
                         f"{op}'s output has shape {list(y.shape)} and dtype {y.dtype}")
    acc = accumulator(y.dtype)
    grads = GRADIENTS[op]({n: np.asarray(arrays[n]).astype(acc) for n in names}, attrs, dy.astype(acc))
    return {n: grads[n].astype(np.asarray(arrays[n]).dtype) for n in names}


def gradient_function(op: str, wrt: str) -> Callable[..., np.ndarray]:
    """A tf.nn-style callable ``f(*operands, out_backprop, **attrs) -> d/d wrt``, for ``harness.conv.tolerance.bound_for``.

    The gradient is linear in out_backprop and in every operand other than ``wrt``
    (it reads only ``wrt``'s shape), so bound_for's runs on absolute values and on
    ones give the sum of |terms| and the number of terms of each gradient element.
    """
    names = [o.name for o in ops.get(op).operands]
    if wrt not in names:
        raise ValueError(f"gradient_function: argument 'wrt'={wrt!r} must be an operand of {op}: {', '.join(names)}")

    def gradient(*args, **attrs):
        *operands, out_backprop = args
        return gradients(op, dict(zip(names, operands)), attrs, out_backprop)[wrt]

    gradient.__name__ = f"d_{op}_d_{wrt}"
    return gradient
