"""The seed documents' own formulations, vectorized: a second, independent NumPy implementation.

The tutorials in ``shared/seeds`` do not use TensorFlow's layouts. They hold
feature maps as ``[C, H, W]`` (CHW), weights as ``[out_c, in_c, kh, kw]`` (OIHW) or
``[in_c, k, k]``, and they build each operation from simpler ones:

* correlation = sum over channels of ``np.sum(roi * kernel)`` over every window
  (``corr2D``, ``corr2D_mutil_in``, ``mutil_in_out``);
* "SAME" for an odd kernel = zero-pad ``k // 2`` on every side, then correlate
  (``compute_conv`` / ``my_conv2d``);
* depthwise = per-channel correlation, results kept apart (``my_depthwise``);
* 1x1 convolution = a matrix product (``mutil_in_out_1x1``);
* transposed convolution = insert zeros between pixels, pad, correlate, crop
  (``fill_zeros`` / ``my_deconv``);
* dilated convolution = a *true* convolution (``scipy.signal.convolve``) with a
  zero-inserted kernel (``my_dialateconv2d``).

Every function here accepts optional leading batch axes (``[..., C, H, W]``) and
returns float64 (int64 for integer input): rounding to the case dtype is the
caller's business. How these pair with the TensorFlow ops (layout conversion,
180-degree rotation, in/out swap) is in ``harness.ops``, through
``harness.conv.layouts`` only. Nothing here imports TensorFlow or ``harness.conv.reference``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from harness.conv import layouts
from harness.conv.dtypes import accumulator


def _acc(a: ArrayLike) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(accumulator(a.dtype))


def correlate_valid(x_chw: ArrayLike, k_oihw: ArrayLike) -> np.ndarray:
    """Multi-channel valid cross-correlation: ``out[o] = sum_c corr2D(x[c], k[o, c])``.

    x: [..., C, H, W]; k: [O, C, kh, kw] -> [..., O, H - kh + 1, W - kw + 1].
    Every window (``roi``) is taken at once with ``sliding_window_view``.
    """
    x, k = _acc(x_chw), _acc(k_oihw)
    kh, kw = k.shape[-2:]
    rois = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(-2, -1))  # [..., C, H', W', kh, kw]
    out: np.ndarray = np.einsum("...chwij,ocij->...ohw", rois, k, optimize=True)
    return out


def correlate_centered(x_chw: ArrayLike, k_oihw: ArrayLike) -> np.ndarray:
    """The documents' ``compute_conv``: zero-pad ``k // 2`` on each side, then correlate.

    Output has the input's H and W for odd kernels (TensorFlow's SAME at stride 1).
    x: [..., C, H, W]; k: [O, C, kh, kw] -> [..., O, H, W].
    """
    kh, kw = np.shape(k_oihw)[-2:]
    x = np.asarray(x_chw)
    pads = [(0, 0)] * (x.ndim - 2) + [(kh // 2, kh // 2), (kw // 2, kw // 2)]
    return correlate_valid(np.pad(x, pads), k_oihw)


def depthwise_correlate_valid(x_chw: ArrayLike, k_cmhw: ArrayLike) -> np.ndarray:
    """The documents' ``my_depthwise``: each channel correlated with its own kernels, kept apart.

    x: [..., C, H, W]; k: [C, M, kh, kw] -> [..., C, M, H', W'] (M kernels per channel).
    """
    x, k = _acc(x_chw), _acc(k_cmhw)
    kh, kw = k.shape[-2:]
    rois = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(-2, -1))
    out: np.ndarray = np.einsum("...chwij,cmij->...cmhw", rois, k, optimize=True)
    return out


def matmul_1x1(x_chw: ArrayLike, k_oi: ArrayLike) -> np.ndarray:
    """The documents' ``mutil_in_out_1x1``: a 1x1 convolution as one matrix product.

    x: [..., C, H, W]; k: [O, C] (or [O, C, 1, 1]) -> [..., O, H, W].
    """
    x = _acc(x_chw)
    k = _acc(k_oi)
    k = k.reshape(k.shape[0], -1)
    rows = x.reshape(x.shape[:-3] + (x.shape[-3], -1))  # [..., C, H*W]
    out: np.ndarray = k @ rows
    return out.reshape(x.shape[:-3] + (k.shape[0],) + x.shape[-2:])


def fill_zeros(x_chw: ArrayLike, stride: int = 2) -> np.ndarray:
    """The documents' ``fill_zeros``: values at ``stride*j + 1`` of a ``stride*n + 1`` grid.

    That is ``interleave_zeros`` with one zero of padding on every side;
    x: [..., C, H, W] -> [..., C, s*(H-1)+3, s*(W-1)+3] (7x7 for a 3x3 map at stride 2).
    """
    z = layouts.interleave_zeros(x_chw, stride, layout="NCHW"[-np.ndim(x_chw) :])
    return np.pad(z, [(0, 0)] * (z.ndim - 2) + [(1, 1), (1, 1)])


def _pad_or_crop(a: np.ndarray, axis: int, before: int, after: int) -> np.ndarray:
    """Zero-pad (positive) or crop (negative) one axis at both ends."""
    n = a.shape[axis]
    start, stop = max(0, -before), n - max(0, -after)
    a = np.take(a, np.arange(start, max(start, stop)), axis=axis)
    widths = [(0, 0)] * a.ndim
    widths[axis] = (max(0, before), max(0, after))
    return np.pad(a, widths)


def transposed_by_zero_insertion(
    y_chw: ArrayLike,
    k_oihw: ArrayLike,
    stride: int | Sequence[int],
    dilation: int | Sequence[int],
    pad_before: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Transposed convolution the documents' way: insert zeros, pad, correlate, crop.

    y: [..., I, n_h, n_w], the transposed convolution's input; k: [O, I, kh, kw],
    the kernel this formulation *correlates* with (TensorFlow's transpose filter
    rotated by 180 degrees and laid out OIHW; the documents write it directly).
    stride, dilation, pad_before: per spatial axis, pad_before being the padding
    the corresponding forward convolution adds at the top / left.
    Returns [..., O, out_h, out_w].
    """
    z = layouts.interleave_zeros(y_chw, stride, layout="NCHW"[-np.ndim(y_chw) :])
    kd = layouts.dilate_kernel(k_oihw, dilation, layout="OIHW")
    for axis, (k_eff, pb, m) in enumerate(zip(kd.shape[-2:], pad_before, out_hw)):
        ax = z.ndim - 2 + axis
        before = k_eff - 1 - pb  # so that output pixel 0 sees the right taps
        after = m + k_eff - 1 - before - z.shape[ax]  # so that exactly m outputs remain
        z = _pad_or_crop(z, ax, before, after)
    return correlate_valid(z, kd)


def convolve_valid(x_chw: ArrayLike, k_oihw: ArrayLike) -> np.ndarray:
    """Multi-channel valid *convolution* (kernel flipped), with ``scipy.signal.convolve``.

    The documents' ``my_dialateconv2d`` relies on scipy's convolution rather than
    a hand-written loop. scipy convolves over every axis, so the channel axis of
    the kernel is reversed to turn that axis into a plain channel sum.
    x: [..., C, H, W]; k: [O, C, kh, kw] -> [..., O, H - kh + 1, W - kw + 1].
    """
    import scipy.signal  # here, not at the top: importing it is slow, and every process that imports ops would pay

    x, k = _acc(x_chw), _acc(k_oihw)
    lead = x.shape[:-3]
    flat = x.reshape((-1,) + x.shape[-3:])
    out = np.stack(
        [
            np.stack([scipy.signal.convolve(image, k_o[::-1], mode="valid", method="direct")[0] for k_o in k])
            for image in flat
        ]
    )
    return out.reshape(lead + out.shape[1:])


def dilated_convolve_valid(x_chw: ArrayLike, k_oihw: ArrayLike, rate: int | Sequence[int]) -> np.ndarray:
    """The documents' ``my_dialateconv2d``: insert ``rate - 1`` zeros in the kernel, then convolve.

    x: [..., C, H, W]; k: [O, C, kh, kw], a *convolution* kernel; rate: int or (rh, rw).
    """
    return convolve_valid(x_chw, layouts.dilate_kernel(k_oihw, rate, layout="OIHW"))
