"""Each op's gradient rule, built from the four raw-op references of ``harness.conv.reference``.

A rule is ``rule(spec, arrays, attrs, dy) -> {operand: gradient}``: for ``y = op(*arrays, **attrs)`` and an output
gradient ``dy``, the gradient of ``sum(y * dy)`` with respect to every operand, in the operand's own layout. The
arrays and ``dy`` arrive in the accumulator dtype (``harness.ops.gradients`` converts them and rounds once):

* conv2d (and grouped conv2d): ``conv2d_backprop_input`` and ``conv2d_backprop_filter``;
* conv3d: ``conv3d_backprop_input_v2`` and ``conv3d_backprop_filter_v2``;
* depthwise_conv2d: the depthwise pair;
* transposed ops (themselves the input gradient of a convolution): d_input is ``conv2d(dy, filters)`` (``conv3d``
  in 3-D), d_filters is ``conv2d_backprop_filter`` (``conv3d_backprop_filter_v2``) with the roles of input and
  output swapped (1-D on a height-1 image);
* atrous_conv2d: conv2d's rule with dilations = rate, stride 1;
* conv1d: conv2d's rule on a height-1 image (NWC -> NHWC, WIO -> HWIO);
* separable_conv2d: the chain rule through its depthwise output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.conv import layouts, reference
from harness.conv.padding import raw_op_window_args
from harness.ops.spec import Arrays, OpSpec


def raw_attrs(spec: OpSpec, attrs: Mapping[str, Any], fmt: str | None = None) -> dict[str, Any]:
    """An op's window attributes (already accepted by its reference) as the keyword arguments of the raw backprop
    ops (4-long lists, EXPLICIT + a flat list), for data in ``fmt`` (default: the op's data_format)."""
    fmt = fmt or spec.data_format(attrs)
    s4, d4, name, flat = raw_op_window_args(*spec.forms.window_attrs(spec.name, attrs, fmt), fmt)
    if len(fmt) == 5:  # the 3-D raw ops take "SAME" / "VALID" only, so no explicit_paddings attribute
        return {"strides": s4, "padding": name, "data_format": fmt, "dilations": d4}
    return {"strides": s4, "padding": name, "explicit_paddings": flat, "data_format": fmt, "dilations": d4}


def _conv2d_pair(
    x: np.ndarray, w_hwio: np.ndarray, dy: np.ndarray, raw: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(d_input, d_filter) of conv2d in raw-op form; x and dy in raw["data_format"]."""
    return (
        reference.conv2d_backprop_input(list(x.shape), w_hwio, dy, **raw),
        reference.conv2d_backprop_filter(x, list(w_hwio.shape), dy, **raw),
    )


def _depthwise_pair(
    x: np.ndarray, w_hwim: np.ndarray, dy: np.ndarray, raw: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    return (
        reference.depthwise_conv2d_native_backprop_input(list(x.shape), w_hwim, dy, **raw),
        reference.depthwise_conv2d_native_backprop_filter(x, list(w_hwim.shape), dy, **raw),
    )


def conv2d(spec: OpSpec, a: Arrays, attrs: Mapping[str, Any], dy: np.ndarray) -> dict[str, np.ndarray]:
    data, filt = spec.data.name, spec.kernel_operand.name
    dx, dw = _conv2d_pair(a[data], a[filt], dy, raw_attrs(spec, attrs))  # atrous_conv2d: rate as dilations
    return {data: dx, filt: dw}


def conv3d(spec: OpSpec, a: Arrays, attrs: Mapping[str, Any], dy: np.ndarray) -> dict[str, np.ndarray]:
    data, filt = spec.data.name, spec.kernel_operand.name
    x, w_dhwio, raw = a[data], a[filt], raw_attrs(spec, attrs)
    return {
        data: reference.conv3d_backprop_input_v2(list(x.shape), w_dhwio, dy, **raw),
        filt: reference.conv3d_backprop_filter_v2(x, list(w_dhwio.shape), dy, **raw),
    }


def depthwise_conv2d(spec: OpSpec, a: Arrays, attrs: Mapping[str, Any], dy: np.ndarray) -> dict[str, np.ndarray]:
    dx, dw = _depthwise_pair(a["input"], a["filter"], dy, raw_attrs(spec, attrs))
    return {"input": dx, "filter": dw}


def _on_height_1(layout: str) -> str:
    """A 1-D layout as the 2-D one of a height-1 image (NWC -> NHWC, WOI -> HWOI); 2-D layouts unchanged."""
    return layout if "H" in layout else layout.replace("W", "HW")


def transposed(spec: OpSpec, a: Arrays, attrs: Mapping[str, Any], dy: np.ndarray) -> dict[str, np.ndarray]:
    """A transposed convolution y = T(x, w) is the input gradient of the forward convolution: its adjoint in x is
    that forward correlation, conv2d(dy, w) with w's [*kernel, O, I] read as [*kernel, in, out], and its gradient in
    w is conv2d_backprop_filter with dy as the convolution's input and x as out_backprop. 1-D ops (conv1d_transpose)
    run on a height-1 image."""
    fmt, w_layout = spec.data_format(attrs), spec.kernel_operand.layout
    fmt2, w_layout2 = _on_height_1(fmt), _on_height_1(w_layout)
    x = layouts.convert(a[spec.data.name], fmt, fmt2)
    w = layouts.convert(a[spec.kernel_operand.name], w_layout, w_layout2)
    dy2 = layouts.convert(dy, fmt, fmt2)
    strides, dilations, pad = spec.window_attrs(attrs)
    if fmt2 != fmt:  # the height axis: stride 1, dilation 1, no padding
        strides, dilations = (1, *strides), (1, *dilations)
        pad = pad if isinstance(pad, str) else ((0, 0), *pad)
    s4, d4, name, flat = raw_op_window_args(strides, dilations, pad, fmt2)
    if len(fmt2) == 5:  # 3-D: padding is a name
        d_input = reference.conv3d(dy2, w, s4, name, data_format=fmt2, dilations=d4)
        d_filters = reference.conv3d_backprop_filter_v2(dy2, list(w.shape), x, s4, name, data_format=fmt2, dilations=d4)
    else:
        pairs = iter(pad if not isinstance(pad, str) else ())
        padding = pad if isinstance(pad, str) else [[0, 0] if c in "NC" else list(next(pairs)) for c in fmt2]
        d_input = reference.conv2d(dy2, w, list(strides), padding, data_format=fmt2, dilations=list(dilations))
        d_filters = reference.conv2d_backprop_filter(
            dy2, list(w.shape), x, strides=s4, padding=name, explicit_paddings=flat, data_format=fmt2, dilations=d4
        )
    return {
        spec.data.name: layouts.convert(d_input, fmt2, fmt),
        spec.kernel_operand.name: layouts.convert(d_filters, w_layout2, w_layout),
    }


def conv1d(spec: OpSpec, a: Arrays, attrs: Mapping[str, Any], dy: np.ndarray) -> dict[str, np.ndarray]:
    """conv2d's rule on a height-1 image: NWC / NCW -> NHWC and WIO -> HWIO insert H = 1."""
    fmt = spec.data_format(attrs)
    (stride,), (dilation,), pad = spec.window_attrs(attrs)
    s4, d4, name, flat = raw_op_window_args((1, stride), (1, dilation), pad, "NHWC")
    raw = {"strides": s4, "padding": name, "explicit_paddings": flat, "data_format": "NHWC", "dilations": d4}
    x_nhwc, dy_nhwc = layouts.convert(a["input"], fmt, "NHWC"), layouts.convert(dy, fmt, "NHWC")
    dx_nhwc, dw_hwio = _conv2d_pair(x_nhwc, layouts.convert(a["filters"], "WIO", "HWIO"), dy_nhwc, raw)
    return {"input": layouts.convert(dx_nhwc, "NHWC", fmt), "filters": layouts.convert(dw_hwio, "HWIO", "WIO")}


def separable_conv2d(spec: OpSpec, a: Arrays, attrs: Mapping[str, Any], dy: np.ndarray) -> dict[str, np.ndarray]:
    """y = pointwise(z), z = depthwise(x): dz = the 1x1 conv2d's input gradient, then the depthwise pair."""
    fmt = spec.data_format(attrs)
    x, w_dw, w_pw = a["input"], a["depthwise_filter"], a["pointwise_filter"]
    z = reference.depthwise_conv2d(
        x, w_dw, attrs["strides"], attrs["padding"], data_format=fmt, dilations=attrs.get("dilations")
    )
    dz, d_pw = _conv2d_pair(z, w_pw, dy, raw_attrs(spec, {"strides": 1, "padding": "VALID"}, fmt))
    dx, d_dw = _depthwise_pair(x, w_dw, dz, raw_attrs(spec, attrs))
    return {"input": dx, "depthwise_filter": d_dw, "pointwise_filter": d_pw}
