"""The op registry: what each op takes and how its implementations are paired.

An ``OpSpec`` names, for one ``tf.nn`` op: its operands (argument name, whether
it is data or a filter, and the layout the op takes it in), its attributes, the
NumPy reference, the TensorFlow wrapper (looked up lazily in ``harness.wrappers``),
and the textbook formulations that apply to it, each paired with the op only
through ``harness.conv.layouts`` (layout conversion, ``rotate_180``, ``dilate_kernel``)
the way the seed documents pair them.

Adding an op = a reference function, a wrapper in ``wrappers`` and an entry in
``OPS`` below; the case loader, runner and pytest plugin need no change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from harness.conv import layouts, reference, textbook
from harness.conv.padding import Window, normalize_padding, normalize_window_arg, transpose_output_sizes, windows

Arrays = Mapping[str, np.ndarray]


class NotApplicable(Exception):
    """A textbook formulation does not cover this configuration (message says why)."""


@dataclass(frozen=True)
class Operand:
    """One array argument of an op."""

    name: str  # the tf.nn argument name
    kind: str  # "data" or "filter"
    layout: str  # the filter layout the op takes; for data, replaced by data_format

    def op_layout(self, data_format: str) -> str:
        return data_format if self.kind == "data" else self.layout


@dataclass(frozen=True)
class Formulation:
    """A textbook formulation paired with an op: ``run(arrays, attrs) -> output`` or NotApplicable."""

    name: str
    run: Callable[[Arrays, dict], np.ndarray]
    doc: str


@dataclass(frozen=True)
class OpSpec:
    name: str
    operands: tuple[Operand, ...]
    attrs: tuple[str, ...]  # keyword attributes, in signature order
    required: tuple[str, ...]  # attributes without a default
    formats: tuple[str, ...]  # accepted data_format values, default first
    reference: Callable
    textbook: tuple[Formulation, ...] = ()
    resolve: Callable[[Arrays, dict], dict] | None = None  # fills symbolic attributes at run time
    expand: Callable[[Mapping[str, tuple], dict], list | None] | None = None  # one case -> variants, at load time
    doc: str = ""
    symbolic: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # attr -> allowed symbolic values
    # The TensorFlow kernels (``harness.kernel_probe.KERNELS``) that tf.nn runs for the op, and for its gradient; which
    # of them run oneDNN or Eigen here is measured (``harness.tf.environment``).
    tf_kernels: tuple[str, ...] = ("Conv2D",)
    tf_gradient_kernels: tuple[str, ...] = ("Conv2DBackpropInput", "Conv2DBackpropFilter")
    # Whether those kernels receive explicit padding for these attributes ("explicit") or a name ("named"): tf.nn
    # turns some explicit paddings into space_to_batch paddings plus VALID.
    kernel_padding: Callable[[Mapping], str] | None = None

    def tf_padding_kind(self, attrs: Mapping) -> str:
        """"explicit" or "named": the kind of padding ``tf_kernels`` are called with for these attributes."""
        if self.kernel_padding is not None:
            return self.kernel_padding(attrs)
        return "named" if isinstance(attrs.get("padding", "SAME"), str) else "explicit"

    def data_format(self, attrs: Mapping) -> str:
        fmt = attrs.get("data_format")
        return self.formats[0] if fmt is None else fmt

    def operand(self, name: str) -> Operand:
        return next(o for o in self.operands if o.name == name)

    def resolved(self, arrays: Arrays, attrs: Mapping) -> dict:
        """The attributes as passed to the op: symbolic values (``output_shape: smallest``) filled in."""
        return self.resolve(arrays, dict(attrs)) if self.resolve else dict(attrs)

    def call(self, impl: Callable, arrays: Arrays, attrs: Mapping) -> np.ndarray:
        """Call a tf.nn-style implementation with the operands positionally and attributes by keyword."""
        return impl(*(arrays[o.name] for o in self.operands), **attrs)


# --- geometry shared by the textbook pairings ---------------------------------------------

def window_attrs(op: str, attrs: Mapping, fmt: str, stride_arg="strides", dilation_arg="dilations"):
    """(strides, dilations, padding) normalized from attributes the reference has accepted (padding defaults to SAME).

    One int per spatial axis for strides and dilations; padding "SAME", "VALID" or (before, after) per axis.
    """
    lengths = (1, len(fmt) - 2, len(fmt))
    strides = normalize_window_arg(op, stride_arg, attrs.get(stride_arg, 1), fmt, allowed_lengths=lengths)
    dilations = normalize_window_arg(op, dilation_arg, attrs.get(dilation_arg), fmt, allowed_lengths=lengths, default=1)
    return strides, dilations, normalize_padding(op, attrs.get("padding", "SAME"), fmt)


def geometry(op: str, x_nhwc_shape, kernel_hw, attrs, fmt, stride_arg="strides", dilation_arg="dilations"):
    """Windows for the spatial axes, from attributes already accepted by the reference."""
    return windows(op, x_nhwc_shape[1:-1], kernel_hw, *window_attrs(op, attrs, fmt, stride_arg, dilation_arg))


def _pad_chw(x_nchw: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    return np.pad(x_nchw, [(0, 0), (0, 0)] + [(w.pad_before, w.pad_after) for w in wins])


def _subsample(y: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """Keep every stride-th output of a stride-1 correlation."""
    return y[..., :: wins[0].stride, :: wins[1].stride]


def _require(cond: bool, why: str) -> None:
    if not cond:
        raise NotApplicable(why)


# --- textbook pairings --------------------------------------------------------------------

def _correlate_nchw(x_nchw: np.ndarray, k_oihw: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """pad, dilate the kernel, correlate at stride 1 (corr2D_mutil_in), keep every stride-th pixel."""
    k_dilated = layouts.dilate_kernel(k_oihw, [w.dilation for w in wins], "OIHW")
    return _subsample(textbook.correlate_valid(_pad_chw(x_nchw, wins), k_dilated), wins)


def _tb_correlate(a: Arrays, attrs: dict) -> np.ndarray:
    """corr2D_mutil_in / mutil_in_out on the padded input with the zero-inserted kernel, then subsampled."""
    fmt = OPS["conv2d"].data_format(attrs)
    k_oihw = layouts.hwio_to_oihw(a["filters"])
    wins = geometry("conv2d", layouts.convert(a["input"], fmt, "NHWC").shape, k_oihw.shape[2:], attrs, fmt)
    return layouts.convert(_correlate_nchw(layouts.convert(a["input"], fmt, "NCHW"), k_oihw, wins), "NCHW", fmt)


def _tb_conv1d(a: Arrays, attrs: dict) -> np.ndarray:
    """The same correlation on a height-1 image: NWC -> NCHW and WIO -> OIHW insert H = 1."""
    fmt = OPS["conv1d"].data_format(attrs)
    (win,) = geometry("conv1d", layouts.convert(a["input"], fmt, "NWC").shape, a["filters"].shape[:1], attrs, fmt, "stride")
    height = Window(size=1, kernel=1, stride=1, dilation=1, pad_before=0, pad_after=0, out=1)
    y_nchw = _correlate_nchw(layouts.convert(a["input"], fmt, "NCHW"), layouts.convert(a["filters"], "WIO", "OIHW"), (height, win))
    return layouts.convert(y_nchw, "NCHW", fmt)


def _tb_centered(a: Arrays, attrs: dict) -> np.ndarray:
    """The documents' compute_conv: pad k//2 all round and correlate (SAME, stride 1, odd kernel)."""
    fmt = OPS["conv2d"].data_format(attrs)
    k_oihw = layouts.hwio_to_oihw(a["filters"])
    wins = geometry("conv2d", layouts.convert(a["input"], fmt, "NHWC").shape, k_oihw.shape[2:], attrs, fmt)
    _require(attrs["padding"] == "SAME", "compute_conv pads k//2 on each side: SAME only")
    _require(all(w.stride == 1 and w.dilation == 1 and w.kernel % 2 for w in wins), "needs stride 1, dilation 1, odd kernel")
    y_nchw = textbook.correlate_centered(layouts.convert(a["input"], fmt, "NCHW"), k_oihw)
    return layouts.convert(y_nchw, "NCHW", fmt)


def _tb_matmul_1x1(a: Arrays, attrs: dict) -> np.ndarray:
    """mutil_in_out_1x1: a 1x1 convolution is a matrix product over channels."""
    fmt = OPS["conv2d"].data_format(attrs)
    w_hwio = a["filters"]
    _require(w_hwio.shape[:2] == (1, 1), "needs a 1x1 kernel")
    wins = geometry("conv2d", layouts.convert(a["input"], fmt, "NHWC").shape, (1, 1), attrs, fmt)
    _require(all(w.stride == 1 and w.pad_before == w.pad_after == 0 for w in wins), "needs stride 1 and no padding")
    y_nchw = textbook.matmul_1x1(layouts.convert(a["input"], fmt, "NCHW"), layouts.hwio_to_oihw(w_hwio))
    return layouts.convert(y_nchw, "NCHW", fmt)


def _tb_depthwise_nchw(x_nchw, w_hwim, wins) -> np.ndarray:
    k_imhw = layouts.convert(w_hwim, "HWIM", "IMHW")
    kd = layouts.dilate_kernel(k_imhw, [w.dilation for w in wins], "IMHW")
    y = _subsample(textbook.depthwise_correlate_valid(_pad_chw(x_nchw, wins), kd), wins)  # [N, C, M, H', W']
    # Kept-apart results [C, M] become channel c * M + m: row-major flattening of (C, M).
    return y.reshape(y.shape[0], -1, *y.shape[-2:])


def _tb_depthwise(a: Arrays, attrs: dict) -> np.ndarray:
    """my_depthwise: per-channel correlation, results kept apart, then laid out channel-major."""
    fmt = OPS["depthwise_conv2d"].data_format(attrs)
    x_nchw = layouts.convert(a["input"], fmt, "NCHW")
    wins = geometry("depthwise_conv2d", layouts.convert(x_nchw, "NCHW", "NHWC").shape, a["filter"].shape[:2], attrs, fmt)
    return layouts.convert(_tb_depthwise_nchw(x_nchw, a["filter"], wins), "NCHW", fmt)


def _tb_separable(a: Arrays, attrs: dict) -> np.ndarray:
    """Depthwise (my_depthwise), then the 1x1 matrix product (mutil_in_out_1x1)."""
    fmt = OPS["separable_conv2d"].data_format(attrs)
    x_nchw = layouts.convert(a["input"], fmt, "NCHW")
    w_dw = a["depthwise_filter"]
    wins = geometry("separable_conv2d", layouts.convert(x_nchw, "NCHW", "NHWC").shape, w_dw.shape[:2], attrs, fmt)
    y_nchw = textbook.matmul_1x1(_tb_depthwise_nchw(x_nchw, w_dw, wins), layouts.hwio_to_oihw(a["pointwise_filter"]))
    return layouts.convert(y_nchw, "NCHW", fmt)


def _tb_transpose(a: Arrays, attrs: dict) -> np.ndarray:
    """my_deconv: insert zeros, pad, correlate with the 180-degree-rotated [out, in, h, w] kernel, crop."""
    fmt = OPS["conv2d_transpose"].data_format(attrs)
    y_nchw = layouts.convert(a["input"], fmt, "NCHW")
    # The documents hand TensorFlow rot180(K) laid out [h, w, out, in] and correlate with K itself.
    k_oihw = layouts.rotate_180(layouts.convert(a["filters"], "HWOI", "OIHW"), "OIHW")
    out_shape = dict(zip(fmt, attrs["output_shape"])) if len(attrs["output_shape"]) == 4 else None
    out_hw = (out_shape["H"], out_shape["W"]) if out_shape else tuple(attrs["output_shape"])
    n_out = out_shape["N"] if out_shape else y_nchw.shape[0]
    wins = geometry("conv2d_transpose", (n_out, *out_hw, k_oihw.shape[0]), k_oihw.shape[2:], attrs, fmt)
    out = textbook.transposed_by_zero_insertion(
        y_nchw, k_oihw, [w.stride for w in wins], [w.dilation for w in wins], [w.pad_before for w in wins], out_hw
    )
    return layouts.convert(out, "NCHW", fmt)


def _tb_atrous(a: Arrays, attrs: dict) -> np.ndarray:
    """my_dialateconv2d: a true convolution (scipy) with the zero-inserted, 180-degree-rotated kernel."""
    x_nhwc = a["value"]
    k_conv_oihw = layouts.rotate_180(layouts.hwio_to_oihw(a["filters"]), "OIHW")
    wins = geometry("atrous_conv2d", x_nhwc.shape, k_conv_oihw.shape[2:], {**attrs, "dilations": attrs["rate"]}, "NHWC")
    x_nchw = _pad_chw(layouts.nhwc_to_nchw(x_nhwc), wins)
    y = textbook.dilated_convolve_valid(x_nchw, k_conv_oihw, [w.dilation for w in wins])
    return layouts.nchw_to_nhwc(y)


# --- symbolic attributes ------------------------------------------------------------------

def _transpose_sizes(shapes: Mapping[str, tuple], attrs: Mapping) -> tuple[str, int, int, list[range]]:
    """(data_format, batch, out_channels, accepted sizes per spatial axis) of a conv2d_transpose case."""
    fmt = OPS["conv2d_transpose"].data_format(attrs)
    y_shape = dict(zip(fmt, shapes["input"]))
    w_hwoi = shapes["filters"]
    strides, dilations, pad = window_attrs("conv2d_transpose", attrs, fmt)
    pads = [pad] * 2 if isinstance(pad, str) else pad
    sizes = [transpose_output_sizes(n, k, s, d, p)
             for n, k, s, d, p in zip((y_shape["H"], y_shape["W"]), w_hwoi[:2], strides, dilations, pads)]
    for n, accepted in zip((y_shape["H"], y_shape["W"]), sizes):
        if not accepted:
            raise ValueError(f"conv2d_transpose: no output_shape is reachable for input size {n}")
    return fmt, y_shape["N"], w_hwoi[2], sizes


def _transpose_shape(fmt: str, batch: int, channels: int, h: int, w: int) -> list[int]:
    full = {"N": batch, "H": h, "W": w, "C": channels}
    return [full[c] for c in fmt]


def _resolve_transpose(a: Arrays, attrs: dict) -> dict:
    """``output_shape: smallest | largest``: the smallest / largest shape TensorFlow accepts."""
    choice = attrs.get("output_shape")
    if choice not in ("smallest", "largest"):
        return attrs
    fmt, batch, channels, (hs, ws) = _transpose_sizes({k: v.shape for k, v in a.items()}, attrs)
    pick = (lambda r: r[0]) if choice == "smallest" else (lambda r: r[-1])
    return {**attrs, "output_shape": _transpose_shape(fmt, batch, channels, pick(hs), pick(ws))}


def _expand_transpose(shapes: Mapping[str, tuple], attrs: dict):
    """``output_shape: all``: one variant per output shape TensorFlow accepts (up to stride_h * stride_w)."""
    if attrs.get("output_shape") != "all":
        return None
    fmt, batch, channels, (hs, ws) = _transpose_sizes(shapes, attrs)
    return [(f"out={h}x{w}", {**attrs, "output_shape": _transpose_shape(fmt, batch, channels, h, w)}) for h in hs for w in ws]


# --- the registry -------------------------------------------------------------------------

def _space_to_batch_padding(attrs: Mapping) -> str:
    """depthwise / separable: tf.nn dilates through space_to_batch, which pads itself and calls the kernel with VALID;
    only an undilated call passes explicit padding on."""
    if isinstance(attrs.get("padding", "SAME"), str):
        return "named"
    try:
        dilated = any(int(v) > 1 for v in np.asarray(attrs.get("dilations", 1)).reshape(-1))
    except (TypeError, ValueError):
        dilated = False
    return "named" if dilated else "explicit"


def _formulation(name: str, run: Callable) -> Formulation:
    return Formulation(name, run, (run.__doc__ or "").strip())


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec(
            "conv2d",
            (Operand("input", "data", "NHWC"), Operand("filters", "filter", "HWIO")),
            ("strides", "padding", "data_format", "dilations"),
            ("strides", "padding"),
            ("NHWC", "NCHW"),
            reference.conv2d,
            (
                _formulation("correlate", _tb_correlate),
                _formulation("correlate_centered", _tb_centered),
                _formulation("matmul_1x1", _tb_matmul_1x1),
            ),
        ),
        OpSpec(
            "depthwise_conv2d",
            (Operand("input", "data", "NHWC"), Operand("filter", "filter", "HWIM")),
            ("strides", "padding", "data_format", "dilations"),
            ("strides", "padding"),
            ("NHWC", "NCHW"),
            reference.depthwise_conv2d,
            (_formulation("depthwise_apart", _tb_depthwise),),
            tf_kernels=("DepthwiseConv2dNative",),
            tf_gradient_kernels=("DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"),
            kernel_padding=_space_to_batch_padding,
        ),
        OpSpec(
            "conv2d_transpose",
            (Operand("input", "data", "NHWC"), Operand("filters", "filter", "HWOI")),
            ("output_shape", "strides", "padding", "data_format", "dilations"),
            ("output_shape", "strides"),
            ("NHWC", "NCHW"),
            reference.conv2d_transpose,
            (_formulation("zero_insertion", _tb_transpose),),
            resolve=_resolve_transpose,
            expand=_expand_transpose,
            symbolic={"output_shape": ("smallest", "largest", "all")},
            tf_kernels=("Conv2DBackpropInput",),
            tf_gradient_kernels=("Conv2D", "Conv2DBackpropFilter"),
        ),
        OpSpec(
            "atrous_conv2d",
            (Operand("value", "data", "NHWC"), Operand("filters", "filter", "HWIO")),
            ("rate", "padding"),
            ("rate", "padding"),
            ("NHWC",),
            reference.atrous_conv2d,
            (_formulation("scipy_dilated_convolve", _tb_atrous),),
            kernel_padding=lambda attrs: "named",  # rate > 1: space_to_batch, then VALID; rate 1 takes names only
        ),
        OpSpec(
            "separable_conv2d",
            (
                Operand("input", "data", "NHWC"),
                Operand("depthwise_filter", "filter", "HWIM"),
                Operand("pointwise_filter", "filter", "HWIO"),
            ),
            ("strides", "padding", "data_format", "dilations"),
            ("strides", "padding"),
            ("NHWC", "NCHW"),
            reference.separable_conv2d,
            (_formulation("depthwise_then_matmul", _tb_separable),),
            tf_kernels=("DepthwiseConv2dNative", "Conv2D"),
            tf_gradient_kernels=("DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter",
                                 "Conv2DBackpropInput", "Conv2DBackpropFilter"),
            kernel_padding=_space_to_batch_padding,
        ),
        OpSpec(
            "conv1d",
            (Operand("input", "data", "NWC"), Operand("filters", "filter", "WIO")),
            ("stride", "padding", "data_format", "dilations"),
            ("stride", "padding"),
            ("NWC", "NCW"),
            reference.conv1d,
            (_formulation("correlate_height_1", _tb_conv1d),),
        ),
    )
}


def kernel_fits(spec: OpSpec, shapes: Mapping[str, tuple], attrs: Mapping) -> bool:
    """Whether every (dilated) kernel fits its padded input (``harness.conv.padding.window`` accepts it).

    Transposed convolutions always fit: their output_shape decides the geometry.
    """
    if spec.name == "conv2d_transpose":
        return True
    fmt = spec.data_format(attrs)
    data = next(o for o in spec.operands if o.kind == "data")
    filt = next(o for o in spec.operands if o.kind == "filter")
    x_shape, w_shape = shapes[data.name], shapes[filt.name]
    channels_last = [x_shape[fmt.index(c)] for c in layouts.channels_last(fmt)]
    kernel = [w_shape[filt.layout.index(c)] for c in fmt if c not in "NC"]
    stride_arg = "stride" if "stride" in spec.attrs else "strides"
    try:
        geometry(spec.name, channels_last, kernel, {**attrs, "dilations": attrs.get("dilations", attrs.get("rate"))},
                  fmt, stride_arg)
    except ValueError:
        return False
    return True


def get(name: str) -> OpSpec:
    try:
        return OPS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join(OPS)}") from None
