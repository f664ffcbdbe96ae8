"""JAX as a backend: ``jax.lax.conv_general_dilated`` on the CPU, in the "explicit" convention.

Every op is one call of ``lax.conv_general_dilated``; the harness resolves the geometry (strides, dilations, the
(before, after) pads of every spatial axis) and hands over channels-last data (``NHWC``, ``NWC`` for conv1d) and
``HWIO`` filters (``WIO``), which ``dimension_numbers`` names as they are: no transposes here.

* conv2d, atrous_conv2d, conv1d: ``window_strides`` = strides, ``rhs_dilation`` = dilations, ``padding`` = pads.
* depthwise_conv2d (and the depthwise half of separable_conv2d): the grouped weight in HWIO is
  ``[kh, kw, 1, in_c * multiplier]`` (``layouts.depthwise_as_grouped``) with ``feature_group_count = in_c``;
  output channel ``o`` reads input channel ``o // multiplier``, TensorFlow's channel-major order.
* conv2d_transpose: the transposed convolution written as a forward one, ``lax.conv_general_dilated`` with
  ``lhs_dilation = strides`` (stride - 1 zeros between input pixels), the kernel flipped over H and W, and padding
  ``(k_eff - 1 - before, k_eff - 1 - after)`` per axis, where (before, after) are the forward convolution's pads
  (``after`` < 0 when the output extends past the last input's footprint: the high padding grows, and zeros come
  out there; ``before`` > k_eff - 1 gives a negative low padding, which lax takes as a crop). The output size is
  ``(n - 1) * s + 1 + (k_eff - 1 - before) + (k_eff - 1 - after) - k_eff + 1 = (n - 1) * s + k_eff - before - after``,
  the requested one. ``lax.conv_transpose`` was not used: its ``padding`` pairs are of the dilated input, a third
  spelling of the same numbers, and its ``transpose_kernel`` flag swaps I and O as well as flipping.

Numbers: ``jax_enable_x64`` is switched on when this module is imported, because without it JAX silently
computes float64 (and int64) arrays in float32 (int32), and a float64 case would then be compared against a
float32 result. It is a process-wide JAX setting; the harness has no other JAX user. Every call uses
``precision=lax.Precision.HIGHEST`` (no reduced-precision passes on backends that have them) and returns a NumPy
array of the input's dtype. JAX is pinned to its CPU platform.
"""

from __future__ import annotations

import jax
import numpy as np
from jax import lax

# Without x64, JAX truncates float64 inputs to float32 and int64 to int32 (with a warning at most).
jax.config.update("jax_enable_x64", True)
# The harness compares CPU results; a GPU or TPU that happens to be present is not what is being checked.
jax.config.update("jax_platforms", "cpu")

from harness.backends.base import Backend, explicit_backend  # noqa: E402  (after the config updates)

DTYPES = ("float16", "bfloat16", "float32", "float64", "int32")  # every one runs on XLA CPU (checked in tests)

_HIGHEST = lax.Precision.HIGHEST


def _dimension_numbers(rank: int) -> tuple[str, str, str]:
    data = {3: "NWC", 4: "NHWC", 5: "NDHWC"}[rank]
    return data, data[1:-1] + "IO", data


def conv(x, w, *, strides, dilations, pads, groups):
    """Grouped, strided, dilated, explicitly padded correlation; x channels-last, w [*kernel, I / groups, O]."""
    x, w = np.asarray(x), np.asarray(w)
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(strides),
        padding=[tuple(p) for p in pads],
        rhs_dilation=tuple(dilations),
        dimension_numbers=_dimension_numbers(x.ndim),
        feature_group_count=groups,
        precision=_HIGHEST,
    )
    return np.asarray(y).astype(x.dtype, copy=False)


def transpose_padding(kernel: int, dilation: int, before: int, after: int) -> tuple[int, int]:
    """lax padding (low, high) of the stride-dilated input that makes a forward correlation with the flipped
    kernel compute the transposed convolution whose forward convolution pads (before, after)."""
    k_eff = (kernel - 1) * dilation + 1
    return k_eff - 1 - before, k_eff - 1 - after


def conv_transpose(x, w, *, strides, dilations, pads, output_size, groups=1):
    """Transposed convolution; x NHWC [N, H, W, I], w HWIO [kh, kw, I, O / groups] (I: this op's input channels).

    Grouped: input channels [g * I / G, (g + 1) * I / G) feed output channels [g * O / G, (g + 1) * O / G), which
    as a forward correlation is the kernel [*k, I / G, G * O / G] with ``feature_group_count = G``."""
    x, w = np.asarray(x), np.asarray(w)
    spatial = tuple(range(w.ndim - 2))
    if groups > 1:
        *kernel, channels_in, per_out = w.shape
        w = w.reshape(*kernel, groups, channels_in // groups, per_out)
        w = np.moveaxis(w, -3, -2).reshape(*kernel, channels_in // groups, groups * per_out)
    padding = [transpose_padding(w.shape[i], d, b, a) for i, d, (b, a) in zip(spatial, dilations, pads)]
    y = lax.conv_general_dilated(
        x,
        np.flip(w, axis=spatial),
        window_strides=(1,) * len(spatial),
        padding=padding,
        lhs_dilation=tuple(strides),
        rhs_dilation=tuple(dilations),
        dimension_numbers=_dimension_numbers(x.ndim),
        feature_group_count=groups,
        precision=_HIGHEST,
    )
    out = np.asarray(y).astype(x.dtype, copy=False)
    if tuple(out.shape[1:-1]) != tuple(output_size):
        raise ValueError(
            f"jax conv_transpose: computed spatial shape {list(out.shape[1:-1])}, expected {list(output_size)}"
        )
    return out


def backend() -> Backend:
    layouts = {
        "conv": "HWIO",  # and a depthwise filter as the grouped weight [kh, kw, 1, in_c * multiplier]
        "transposed": "HWIO",
    }  # [kh, kw, its input channels, its output channels]
    return explicit_backend(
        "jax",
        conv,
        conv_transpose,
        data_format="NHWC",
        filter_layouts=layouts,
        dtypes=DTYPES,
        description=f"jax.lax.conv_general_dilated on CPU (jax {jax.__version__}, x64, Precision.HIGHEST)",
        extra="jax",
    )
