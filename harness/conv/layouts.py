"""Layout and rotation conversions: the steps people otherwise do by hand.

A layout is a string of axis letters, one per array axis:

* data: ``N`` batch, ``D`` depth, ``H`` height, ``W`` width, ``C`` channels (``NHWC``, ``NCHW``, ``CHW``, ``NWC``,
  ``NDHWC`` ...);
* filters: ``D``, ``H``, ``W``, ``I`` input channels, ``O`` output channels, ``M`` depthwise
  channel multiplier (``HWIO`` for conv2d, ``HWIM`` for depthwise, ``HWOI`` for the
  conv2d_transpose filter ``[h, w, out_channels, in_channels]``, ``OIHW`` for PyTorch / ONNX,
  ``IHW`` for the documents' single-output ``[in_c, k, k]`` filter).

``convert`` moves between any two layouts: it transposes, inserts size-1 axes for
letters only the target has, and drops size-1 axes only the source has. The named
functions below are the conversions the seed documents perform, each a one-liner
over ``convert`` so that there is one implementation of the permutation logic.

All functions are pure and return new arrays (or read-only views NumPy makes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

SPATIAL_LETTERS = "DHW"  # depth, height, width: the spatial axes, outermost first
AXIS_NAMES = {"N": "batch", "C": "channels", "D": "depth", "H": "height", "W": "width", "I": "input channels",
              "O": "output channels", "M": "depthwise multiplier"}  # what each layout letter stands for
DATA_LETTERS = frozenset("N" + SPATIAL_LETTERS + "C")
FILTER_LETTERS = frozenset(SPATIAL_LETTERS + "IOM")


def spatial(layout: str) -> str:
    """The spatial letters of a data or filter layout, in its order: ``NHWC`` -> ``"HW"``, ``WIO`` -> ``"W"``,
    ``NCDHW`` -> ``"DHW"``. The one definition of which axes are spatial."""
    return "".join(c for c in layout if c in SPATIAL_LETTERS)


def _check_layout(layout: str, ndim: int | None = None, what: str = "layout") -> None:
    if not isinstance(layout, str) or not layout or len(set(layout)) != len(layout):
        raise ValueError(f"{what} {layout!r} must be a string of distinct axis letters")
    if not (set(layout) <= DATA_LETTERS or set(layout) <= FILTER_LETTERS):
        raise ValueError(
            f"{what} {layout!r} mixes or uses unknown axis letters; data layouts use N,D,H,W,C and "
            f"filter layouts use D,H,W,I,O,M"
        )
    if ndim is not None and ndim != len(layout):
        raise ValueError(f"{what} {layout!r} has {len(layout)} axes but the array has {ndim}")


def convert(array: ArrayLike, src: str, dst: str) -> np.ndarray:
    """Re-lay ``array`` from layout ``src`` to layout ``dst``.

    Letters in ``dst`` missing from ``src`` become new size-1 axes; letters in
    ``src`` missing from ``dst`` must have size 1 and are dropped.
    Example: ``convert(x_chw, "CHW", "NHWC")`` has shape ``[1, H, W, C]``.
    """
    array = np.asarray(array)
    _check_layout(src, array.ndim, "source layout")
    _check_layout(dst, None, "target layout")
    for i, letter in enumerate(src):
        if letter not in dst and array.shape[i] != 1:
            raise ValueError(
                f"cannot convert {src} to {dst}: axis {letter!r} has size {array.shape[i]}, "
                f"and only a size-1 axis can be dropped"
            )
    kept = [letter for letter in src if letter in dst]
    squeezed = array.reshape([n for letter, n in zip(src, array.shape) if letter in dst])
    expanded = squeezed.reshape(squeezed.shape + (1,) * (len(dst) - len(kept)))
    order = kept + [letter for letter in dst if letter not in kept]
    return np.transpose(expanded, [order.index(letter) for letter in dst])


# --- data ---------------------------------------------------------------------------------

def channels_last(layout: str) -> str:
    """The channels-last spelling of a data layout: NCHW -> NHWC, NCW -> NWC (NHWC stays)."""
    return layout.replace("C", "") + "C"


def channels_first(layout: str) -> str:
    """The channels-first spelling of a data layout: NHWC -> NCHW, NWC -> NCW (NCHW stays)."""
    return layout[0] + "C" + layout[1:].replace("C", "")


def other_data_format(layout: str) -> str:
    """NHWC <-> NCHW, NWC <-> NCW: the other of TensorFlow's two data formats."""
    return channels_last(layout) if layout.index("C") == 1 else channels_first(layout)


def chw_to_hwc(x_chw: ArrayLike) -> np.ndarray:
    """[C, H, W] -> [H, W, C] (the documents' ``chw2hwc``)."""
    return convert(x_chw, "CHW", "HWC")


def hwc_to_chw(x_hwc: ArrayLike) -> np.ndarray:
    """[H, W, C] -> [C, H, W] (the documents' ``hwc2chw``)."""
    return convert(x_hwc, "HWC", "CHW")


def nchw_to_nhwc(x_nchw: ArrayLike) -> np.ndarray:
    """[N, C, H, W] -> [N, H, W, C]."""
    return convert(x_nchw, "NCHW", "NHWC")


def nhwc_to_nchw(x_nhwc: ArrayLike) -> np.ndarray:
    """[N, H, W, C] -> [N, C, H, W]."""
    return convert(x_nhwc, "NHWC", "NCHW")


# --- filters ------------------------------------------------------------------------------

def ihw_to_hwio(w_ihw: ArrayLike) -> np.ndarray:
    """The documents' single-output filter [in_c, kh, kw] -> HWIO [kh, kw, in_c, 1]."""
    return convert(w_ihw, "IHW", "HWIO")


def oihw_to_hwio(w_oihw: ArrayLike) -> np.ndarray:
    """[out_c, in_c, kh, kw] (PyTorch, ONNX, the documents) -> [kh, kw, in_c, out_c] (TensorFlow)."""
    return convert(w_oihw, "OIHW", "HWIO")


def hwio_to_oihw(w_hwio: ArrayLike) -> np.ndarray:
    """[kh, kw, in_c, out_c] (TensorFlow) -> [out_c, in_c, kh, kw]."""
    return convert(w_hwio, "HWIO", "OIHW")


def oihw_to_hwoi(w_oihw: ArrayLike) -> np.ndarray:
    """[out_c, in_c, kh, kw] -> conv2d_transpose's filter [kh, kw, out_c, in_c].

    This is the documents' ``tf.transpose(weights, perm=(2, 3, 0, 1))``; "out" and
    "in" are the transposed convolution's own output and input channels.
    """
    return convert(w_oihw, "OIHW", "HWOI")


def depthwise_as_grouped(w_hwim: ArrayLike, layout: str = "OIHW") -> np.ndarray:
    """A depthwise filter [kh, kw, in_c, multiplier] as a grouped convolution's weight, in ``layout``.

    A depthwise convolution is a convolution with ``groups = in_c``: output channel
    ``c * multiplier + m`` reads input channel ``c`` only. As a grouped weight that is
    O = in_c * multiplier output channels (in that order) of I = 1 input channel each,
    e.g. PyTorch's ``[in_c * multiplier, 1, kh, kw]`` for ``layout="OIHW"``.
    """
    w_hwim = np.asarray(w_hwim)
    kh, kw, in_c, mult = w_hwim.shape
    w_hwo = w_hwim.reshape(kh, kw, in_c * mult)  # c-major, m-minor: channel c * mult + m
    return convert(w_hwo[:, :, None, :], "HWIO", layout)


def convert_axis_list(values: Iterable[Any], src: str, dst: str) -> list[Any]:
    """A per-axis attribute list (full-rank ``strides``, ``dilations``, explicit padding pairs, ``output_shape``)
    written in layout ``src`` order, rewritten in ``dst`` order (same letters)."""
    _check_layout(src)
    _check_layout(dst)
    values = list(values)
    if sorted(src) != sorted(dst) or len(values) != len(src):
        raise ValueError(f"cannot reorder {values!r} from {src!r} to {dst!r}")
    by_letter = dict(zip(src, values))
    return [by_letter[letter] for letter in dst]


# --- rotation, dilation, zero insertion ---------------------------------------------------

def _spatial(layout: str, ndim: int) -> list[int]:
    _check_layout(layout, ndim)
    return [i for i, letter in enumerate(layout) if letter in SPATIAL_LETTERS]


def rotate_180(w, layout: str = "HWIO") -> np.ndarray:
    """Rotate a kernel by 180 degrees over its spatial axes (flip H and W).

    Convolution in the mathematical sense is correlation with the rotated kernel.
    Same as the documents' ``np.rot90(w, 2, axes=(h_axis, w_axis))``.
    """
    w = np.asarray(w)
    return np.flip(w, axis=tuple(_spatial(layout, w.ndim)))


def _per_spatial(value: Any, n: int, what: str) -> tuple[int, ...]:
    vals = (value,) * n if np.ndim(value) == 0 else tuple(value)
    if len(vals) != n or any(int(v) != v or v < 1 for v in vals):
        raise ValueError(f"{what}={value!r} must be a positive int or {n} positive ints")
    return tuple(int(v) for v in vals)


def _insert_zeros(a: np.ndarray, axes: list[int], steps: tuple[int, ...]) -> np.ndarray:
    shape = list(a.shape)
    index = [slice(None)] * a.ndim
    for ax, step in zip(axes, steps):
        shape[ax] = (a.shape[ax] - 1) * step + 1 if a.shape[ax] else 0
        index[ax] = slice(None, None, step)
    out = np.zeros(shape, a.dtype)
    out[tuple(index)] = a
    return out


def dilate_kernel(w, rate, layout: str = "HWIO") -> np.ndarray:
    """Insert ``rate - 1`` zeros between neighbouring taps along H and W.

    A k-tap kernel becomes ``(k - 1) * rate + 1`` taps: convolving with it is the
    dilated (atrous) convolution. ``rate`` is an int or one int per spatial axis.
    """
    w = np.asarray(w)
    axes = _spatial(layout, w.ndim)
    return _insert_zeros(w, axes, _per_spatial(rate, len(axes), "rate"))


def interleave_zeros(x, stride, layout: str = "NHWC") -> np.ndarray:
    """Insert ``stride - 1`` zeros between neighbouring pixels along H and W.

    An n-pixel axis becomes ``(n - 1) * stride + 1`` pixels: the first step of a
    transposed convolution. The documents' ``fill_zeros`` for stride 2 is this
    followed by one zero of padding on every side.
    """
    x = np.asarray(x)
    axes = _spatial(layout, x.ndim)
    return _insert_zeros(x, axes, _per_spatial(stride, len(axes), "stride"))
