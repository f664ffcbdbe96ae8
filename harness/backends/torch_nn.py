"""PyTorch (``torch.nn.functional``) as a backend, in the "explicit" convention (see ``harness.backends``).

The harness hands over NCHW / NCW data, OIHW / OIW filters (a depthwise filter as the grouped weight
``[in_c * multiplier, 1, kh, kw]``, a transposed convolution's as IOHW) and the resolved geometry: one stride,
dilation and ``(before, after)`` pad pair per spatial axis. This module only translates those numbers into
PyTorch's arguments:

* ``conv``: ``F.conv1d`` / ``F.conv2d`` / ``F.conv3d``, with ``groups``. PyTorch's ``padding=`` is symmetric; TensorFlow's SAME puts the odd
  pixel after, so asymmetric pads are applied with ``F.pad`` (zeros) and the convolution runs unpadded.
* ``conv_transpose``: ``F.conv_transpose1d`` / ``2d`` / ``3d``, with ``groups``. PyTorch's output is
  ``full[padding : full_size - padding + output_padding]`` of the full transposed convolution (``full_size =
  (n - 1) * s + (k - 1) * d + 1``, zeros past its end), TensorFlow's ``full[before : full_size - after]``; so
  ``padding = before`` and ``output_padding = before - after``, which PyTorch accepts when
  ``0 <= output_padding < max(stride, dilation)``. Otherwise (``after > before``, or a larger ``before - after``)
  it computes the full result with ``padding=0`` and crops / zero-extends it here (see ``transpose_args``).

dtypes: float16, bfloat16, float32, float64 (PyTorch's CPU convolutions have no int32 kernels:
``slow_conv_transpose2d_out_cpu`` is "not implemented for 'Int'"). bfloat16 arrays are ``ml_dtypes.bfloat16`` on
the NumPy side and pass through float32, which holds every bfloat16 value exactly.

Where PyTorch itself differs from TensorFlow's definition (listed, with repros, in tests/backends/test_backend_torch.py):
it raises for a filter with 0 output channels and for a kernel larger than the padded input even when the output
is empty (TensorFlow returns the empty array); and its oneDNN's AMX bfloat16 kernel gets a one-pixel-wide output
with a width stride > 1 wrong (the same family of bug as TensorFlow's onednn_strided_unit_width_wrong_values).
This module does not work around either: the harness reports them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harness.backends.base import Backend, explicit_backend
from harness.conv.dtypes import DTYPES

TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64")
FILTER_LAYOUTS = {
    "conv": "OIHW",  # and the grouped weight of a depthwise filter: [in_c * multiplier, 1, kh, kw]
    "transposed": "IOHW",
}  # [the transposed convolution's input channels, its output channels, kh, kw]


def _to_torch(a: np.ndarray) -> torch.Tensor:
    """A tensor in PyTorch's default (contiguous) memory format, whatever ``a``'s strides.

    A fresh C-order copy has the canonical strides on size-1 axes as well. ``np.ascontiguousarray`` would keep an
    NHWC array transposed to NCHW with one channel as it is, with strides (H*W, 1, W, 1): PyTorch reads those as
    channels-last memory, another oneDNN path, with a bug of its own: a one-pixel-wide output with a width stride
    > 1 and a batch > 1 gets wrong values, often uninitialized memory (tests/backends/test_backend_torch.py has the repro).
    """
    if a.dtype == DTYPES["bfloat16"]:
        return torch.from_numpy(np.array(a, np.float32, order="C")).to(torch.bfloat16)  # exact: float32 holds bfloat16
    return torch.from_numpy(np.array(a, order="C", copy=True))


def _to_numpy(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.to(torch.float32).numpy().astype(dtype)  # exact
    return t.numpy().astype(dtype, copy=False)


def _spatial_pad_arg(pads) -> tuple[int, ...]:
    """``F.pad``'s argument for (before, after) per spatial axis: it lists the last axis first."""
    return tuple(v for before, after in reversed(pads) for v in (before, after))


def conv(x: np.ndarray, w: np.ndarray, *, strides, dilations, pads, groups: int) -> np.ndarray:
    """Correlation of NC<spatial> ``x`` with OI<spatial> ``w``; ``pads`` (before, after) >= 0 per spatial axis."""
    rank = x.ndim - 2
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    xt, wt = _to_torch(x), _to_torch(w)
    if all(before == after for before, after in pads):
        padding = tuple(before for before, _ in pads)
    else:  # asymmetric (SAME with an odd total, or explicit): pad with zeros first
        xt = F.pad(xt, _spatial_pad_arg(pads))
        padding = (0,) * rank
    with torch.no_grad():
        y = fn(xt, wt, stride=tuple(strides), padding=padding, dilation=tuple(dilations), groups=groups)
    return _to_numpy(y, x.dtype)


def transpose_args(pads, strides, dilations) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """``(padding, output_padding)`` for ``F.conv_transpose*d`` giving ``full[before : full_size - after]`` on every
    axis, or None when PyTorch cannot express it (``after > before``, or ``before - after >= max(stride,
    dilation)``, its limit on ``output_padding``)."""
    padding, output_padding = [], []
    for (before, after), s, d in zip(pads, strides, dilations):
        extra = before - after
        if before < 0 or not 0 <= extra < max(s, d):
            return None
        padding.append(before)
        output_padding.append(extra)
    return tuple(padding), tuple(output_padding)


def conv_transpose(x: np.ndarray, w: np.ndarray, *, strides, dilations, pads, output_size, groups=1) -> np.ndarray:
    """Transposed convolution of NC<spatial> ``x`` with IO<spatial> ``w`` ([its input channels, its output channels
    / groups, *kernel]): ``full[before : before + output_size]`` per spatial axis, where ``full`` is the full
    transposed convolution, zero past its end."""
    rank = x.ndim - 2
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[rank]
    xt, wt = _to_torch(x), _to_torch(w)
    args = transpose_args(pads, strides, dilations)
    with torch.no_grad():
        if args is not None:
            padding, output_padding = args
            y = fn(
                xt,
                wt,
                stride=tuple(strides),
                padding=padding,
                output_padding=output_padding,
                dilation=tuple(dilations),
                groups=groups,
            )
            return _to_numpy(y, x.dtype)
        full_t = fn(xt, wt, stride=tuple(strides), padding=0, dilation=tuple(dilations), groups=groups)
    full = _to_numpy(full_t, x.dtype)
    out = np.zeros(full.shape[:2] + tuple(output_size), x.dtype)
    src, dst = [slice(None)] * 2, [slice(None)] * 2
    for axis, ((before, _), size) in enumerate(zip(pads, output_size)):
        n_full = full.shape[2 + axis]
        # out[i] = full[i + before] for 0 <= i + before < n_full; zeros elsewhere (no input reaches there)
        lo, hi = max(0, -before), min(size, n_full - before)
        hi = max(hi, lo)
        dst.append(slice(lo, hi))
        src.append(slice(lo + before, hi + before))
    out[tuple(dst)] = full[tuple(src)]
    return out


def backend() -> Backend:
    # pytest-xdist runs one worker per core and each worker would otherwise start a thread per core for PyTorch's
    # intra-op (and inter-op) pools: cores x cores threads contend and every case gets slower. One thread each also
    # matches the harness's TensorFlow (intra=1 inter=1) and makes the summation order independent of the machine.
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first inter-op parallel work in this process
        pass
    # Exact IEEE float32 arithmetic in oneDNN's convolutions (no TF32 / bfloat16 shortcuts; the CUDA settings are
    # for a CUDA build, where they would otherwise default to TF32 convolutions), and deterministic algorithms.
    torch.backends.mkldnn.conv.fp32_precision = "ieee"
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    torch.use_deterministic_algorithms(True)
    return explicit_backend(
        "torch",
        conv,
        conv_transpose,
        data_format="NCHW",
        filter_layouts=FILTER_LAYOUTS,
        dtypes=TORCH_DTYPES,
        description=f"torch.nn.functional {torch.__version__} (CPU, 1 thread)",
        extra="torch",
    )
