"""The textbook formulations paired with each op, the way the seed documents pair them.

Each ``_tb_<op>`` runs the documents' own way of computing an op (``harness.conv.textbook``: CHW feature maps,
``[out_c, in_c, k, k]`` weights, zero insertion, ``scipy.signal.convolve``, matrix products) on the op's operands,
connected to TensorFlow's conventions only through the named conversions of ``harness.conv.layouts``. A
formulation that does not cover a configuration raises ``NotApplicable`` saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.conv import layouts, textbook
from harness.conv.padding import ArgForms, Window, windows
from harness.conv.reference import ATROUS_FORMS, CONV1D_FORMS, CONV2D_FORMS, DEPTHWISE_FORMS, TRANSPOSE_FORMS
from harness.ops.spec import Arrays, Formulation, NotApplicable


def formulation(name: str, run: Callable[[Arrays, dict[str, Any]], np.ndarray]) -> Formulation:
    return Formulation(name, run, (run.__doc__ or "").strip())


def _windows(
    op: str, forms: ArgForms, x_nsc_shape: tuple[int, ...], kernel: Sequence[int], attrs: Mapping[str, Any], fmt: str
) -> tuple[Window, ...]:
    """Windows for the spatial axes of a channels-last shape, from attributes the reference accepted."""
    return windows(op, x_nsc_shape[1:-1], kernel, *forms.window_attrs(op, attrs, fmt))


def _fmt(attrs: dict[str, Any], default: str) -> str:
    return attrs.get("data_format") or default


def _pad_chw(x_nchw: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    return np.pad(x_nchw, [(0, 0), (0, 0)] + [(w.pad_before, w.pad_after) for w in wins])


def _subsample(y: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """Keep every stride-th output of a stride-1 correlation."""
    return y[..., :: wins[0].stride, :: wins[1].stride]


def _require(cond: bool, why: str) -> None:
    if not cond:
        raise NotApplicable(why)


def _ungrouped(data: np.ndarray, fmt: str, per_group: int) -> None:
    """NotApplicable for a grouped convolution (the data's channels a multiple of the filter's): the documents'
    formulations sum over every input channel."""
    _require(data.shape[fmt.index("C")] == per_group, "the documents' formulations are not grouped")


def _correlate_nchw(x_nchw: np.ndarray, k_oihw: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """pad, dilate the kernel, correlate at stride 1 (corr2D_mutil_in), keep every stride-th pixel."""
    k_dilated = layouts.dilate_kernel(k_oihw, [w.dilation for w in wins], "OIHW")
    return _subsample(textbook.correlate_valid(_pad_chw(x_nchw, wins), k_dilated), wins)


def correlate(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """corr2D_mutil_in / mutil_in_out on the padded input with the zero-inserted kernel, then subsampled."""
    fmt = _fmt(attrs, "NHWC")
    _ungrouped(a["input"], fmt, a["filters"].shape[2])
    k_oihw = layouts.hwio_to_oihw(a["filters"])
    wins = _windows(
        "conv2d", CONV2D_FORMS, layouts.convert(a["input"], fmt, "NHWC").shape, k_oihw.shape[2:], attrs, fmt
    )
    return layouts.convert(_correlate_nchw(layouts.convert(a["input"], fmt, "NCHW"), k_oihw, wins), "NCHW", fmt)


def correlate_height_1(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """The same correlation on a height-1 image: NWC -> NCHW and WIO -> OIHW insert H = 1."""
    fmt = _fmt(attrs, "NWC")
    _ungrouped(a["input"], fmt, a["filters"].shape[1])
    (win,) = _windows(
        "conv1d", CONV1D_FORMS, layouts.convert(a["input"], fmt, "NWC").shape, a["filters"].shape[:1], attrs, fmt
    )
    height = Window(size=1, kernel=1, stride=1, dilation=1, pad_before=0, pad_after=0, out=1)
    y_nchw = _correlate_nchw(
        layouts.convert(a["input"], fmt, "NCHW"), layouts.convert(a["filters"], "WIO", "OIHW"), (height, win)
    )
    return layouts.convert(y_nchw, "NCHW", fmt)


def correlate_centered(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """The documents' compute_conv: pad k//2 all round and correlate (SAME, stride 1, odd kernel)."""
    fmt = _fmt(attrs, "NHWC")
    _ungrouped(a["input"], fmt, a["filters"].shape[2])
    k_oihw = layouts.hwio_to_oihw(a["filters"])
    wins = _windows(
        "conv2d", CONV2D_FORMS, layouts.convert(a["input"], fmt, "NHWC").shape, k_oihw.shape[2:], attrs, fmt
    )
    _require(attrs["padding"] == "SAME", "compute_conv pads k//2 on each side: SAME only")
    _require(
        all(w.stride == 1 and w.dilation == 1 and w.kernel % 2 for w in wins), "needs stride 1, dilation 1, odd kernel"
    )
    y_nchw = textbook.correlate_centered(layouts.convert(a["input"], fmt, "NCHW"), k_oihw)
    return layouts.convert(y_nchw, "NCHW", fmt)


def matmul_1x1(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """mutil_in_out_1x1: a 1x1 convolution is a matrix product over channels."""
    fmt = _fmt(attrs, "NHWC")
    w_hwio = a["filters"]
    _ungrouped(a["input"], fmt, w_hwio.shape[2])
    _require(w_hwio.shape[:2] == (1, 1), "needs a 1x1 kernel")
    wins = _windows("conv2d", CONV2D_FORMS, layouts.convert(a["input"], fmt, "NHWC").shape, (1, 1), attrs, fmt)
    _require(all(w.stride == 1 and w.pad_before == w.pad_after == 0 for w in wins), "needs stride 1 and no padding")
    y_nchw = textbook.matmul_1x1(layouts.convert(a["input"], fmt, "NCHW"), layouts.hwio_to_oihw(w_hwio))
    return layouts.convert(y_nchw, "NCHW", fmt)


def _depthwise_nchw(x_nchw: np.ndarray, w_hwim: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    k_imhw = layouts.convert(w_hwim, "HWIM", "IMHW")
    kd = layouts.dilate_kernel(k_imhw, [w.dilation for w in wins], "IMHW")
    y = _subsample(textbook.depthwise_correlate_valid(_pad_chw(x_nchw, wins), kd), wins)  # [N, C, M, H', W']
    # Kept-apart results [C, M] become channel c * M + m: row-major flattening of (C, M).
    return y.reshape(y.shape[0], -1, *y.shape[-2:])


def depthwise_apart(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """my_depthwise: per-channel correlation, results kept apart, then laid out channel-major."""
    fmt = _fmt(attrs, "NHWC")
    x_nchw = layouts.convert(a["input"], fmt, "NCHW")
    wins = _windows(
        "depthwise_conv2d",
        DEPTHWISE_FORMS,
        layouts.convert(x_nchw, "NCHW", "NHWC").shape,
        a["filter"].shape[:2],
        attrs,
        fmt,
    )
    return layouts.convert(_depthwise_nchw(x_nchw, a["filter"], wins), "NCHW", fmt)


def depthwise_then_matmul(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """Depthwise (my_depthwise), then the 1x1 matrix product (mutil_in_out_1x1)."""
    fmt = _fmt(attrs, "NHWC")
    x_nchw = layouts.convert(a["input"], fmt, "NCHW")
    w_dw = a["depthwise_filter"]
    wins = _windows(
        "separable_conv2d", DEPTHWISE_FORMS, layouts.convert(x_nchw, "NCHW", "NHWC").shape, w_dw.shape[:2], attrs, fmt
    )
    y_nchw = textbook.matmul_1x1(_depthwise_nchw(x_nchw, w_dw, wins), layouts.hwio_to_oihw(a["pointwise_filter"]))
    return layouts.convert(y_nchw, "NCHW", fmt)


def _finite_only(values: np.ndarray, name: str, zeros: str) -> None:
    """NotApplicable when ``values`` hold NaN or an infinity: ``zeros`` (no terms of the op's definition) meet them,
    and 0 * inf is NaN, so the formulation equals the op for finite values only."""
    if not np.isfinite(np.asarray(values, np.float64)).all():
        raise NotApplicable(f"{name} holds NaN or an infinity, and {zeros} (not terms of the op) would make NaN of it")


def zero_insertion(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """my_deconv: insert zeros, pad, correlate with the 180-degree-rotated [out, in, h, w] kernel, crop."""
    _finite_only(a["filters"], "filters", "the zeros it inserts and pads with")
    fmt = _fmt(attrs, "NHWC")
    y_nchw = layouts.convert(a["input"], fmt, "NCHW")
    # The documents hand TensorFlow rot180(K) laid out [h, w, out, in] and correlate with K itself.
    k_oihw = layouts.rotate_180(layouts.convert(a["filters"], "HWOI", "OIHW"), "OIHW")
    out_shape = dict(zip(fmt, attrs["output_shape"])) if len(attrs["output_shape"]) == 4 else None
    _require(
        out_shape is None or out_shape["C"] == a["filters"].shape[2], "the documents' formulations are not grouped"
    )
    out_hw = (out_shape["H"], out_shape["W"]) if out_shape else tuple(attrs["output_shape"])
    n_out = out_shape["N"] if out_shape else y_nchw.shape[0]
    wins = _windows(
        "conv2d_transpose", TRANSPOSE_FORMS, (n_out, *out_hw, k_oihw.shape[0]), k_oihw.shape[2:], attrs, fmt
    )
    out = textbook.transposed_by_zero_insertion(
        y_nchw, k_oihw, [w.stride for w in wins], [w.dilation for w in wins], [w.pad_before for w in wins], out_hw
    )
    return layouts.convert(out, "NCHW", fmt)


def scipy_dilated_convolve(a: Arrays, attrs: dict[str, Any]) -> np.ndarray:
    """my_dialateconv2d: a true convolution (scipy) with the zero-inserted, 180-degree-rotated kernel."""
    _finite_only(a["value"], "value", "the zeros it inserts into the kernel")
    x_nhwc = a["value"]
    _ungrouped(x_nhwc, "NHWC", a["filters"].shape[2])
    k_conv_oihw = layouts.rotate_180(layouts.hwio_to_oihw(a["filters"]), "OIHW")
    wins = _windows("atrous_conv2d", ATROUS_FORMS, x_nhwc.shape, k_conv_oihw.shape[2:], attrs, "NHWC")
    x_nchw = _pad_chw(layouts.nhwc_to_nchw(x_nhwc), wins)
    y = textbook.dilated_convolve_valid(x_nchw, k_conv_oihw, [w.dilation for w in wins])
    return layouts.nchw_to_nhwc(y)
