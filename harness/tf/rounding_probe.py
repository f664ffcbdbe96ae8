"""Ask TensorFlow whether its kernels round once (runs inside the probe's TensorFlow server).

A kernel that sums float16 or bfloat16 products in float32 (as oneDNN does, and as TensorFlow's Eigen kernels do
when they convert to float32 first) computes an exact sum wherever every partial sum is exact in float32, and its
result is that sum rounded to the dtype once: the reference's result, bit for bit. A kernel that sums in the dtype
itself rounds every partial sum, and differs by more. Which one TensorFlow runs depends on the kernel, the dtype,
the kernel path and the build, so it is measured per ``harness.tf.kernel_probe.KERNELS`` kernel, dtype and padding
kind, on the probe's operands filled with seeded integers in [-40, 40]: every partial sum (at most 18 terms of at
most 1600) is an integer below 2**24, exact in float32, while the outputs need up to 15 significant bits, more than
float16's 11 and bfloat16's 8.

Each fact is True (every output equals the exact sum rounded to nearest once, as ``harness.conv.reference`` computes
it), or the text of what came out otherwise. ``harness.conv.tolerance.Bound.exact_in`` turns True into bit equality
for the elements whose partial sums are exact in float32 (``Environment.rounds_once``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.conv import reference
from harness.conv.dtypes import dtype_of
from harness.tf import wrappers

DTYPES = ("float16", "bfloat16", "float32")
LIMIT = 40  # operands are integers in [-LIMIT, LIMIT]


def items(kernels: Sequence[str], paddings: Sequence[str]) -> list[str]:
    """The probe items: ``rounding/<Kernel>/<dtype>/<padding>``."""
    return [f"rounding/{k}/{d}/{p}" for k in kernels for d in DTYPES for p in paddings]


def _reference(kernel: str, padding: str) -> Callable[..., np.ndarray]:
    """The reference of ``tf.raw_ops.<kernel>`` as ``kernel_probe._call`` calls it (unit strides, SAME or the
    explicit padding [0, 0, 1, 1, 1, 1, 0, 0]), taking its arrays and size arguments by name."""
    raw: dict[str, Any] = (
        {"padding": "SAME"}
        if padding == "named"
        else {"padding": "EXPLICIT", "explicit_paddings": [0, 0, 1, 1, 1, 1, 0, 0]}
    )
    pairs = "SAME" if padding == "named" else [[0, 0], [1, 1], [1, 1], [0, 0]]
    forward: dict[str, Callable[..., np.ndarray]] = {
        "Conv2D": lambda input, filter: reference.conv2d(input, filter, [1, 1, 1, 1], pairs),
        "DepthwiseConv2dNative": lambda input, filter: reference.depthwise_conv2d(input, filter, [1, 1, 1, 1], pairs),
        "Conv3D": lambda input, filter: reference.conv3d(input, filter, [1] * 5, "SAME"),
    }
    if kernel in forward:
        return forward[kernel]
    backprop: Any = {
        "Conv2DBackpropInput": reference.conv2d_backprop_input,
        "Conv2DBackpropFilter": reference.conv2d_backprop_filter,
        "DepthwiseConv2dNativeBackpropInput": reference.depthwise_conv2d_native_backprop_input,
        "DepthwiseConv2dNativeBackpropFilter": reference.depthwise_conv2d_native_backprop_filter,
        "Conv3DBackpropInputV2": reference.conv3d_backprop_input_v2,
        "Conv3DBackpropFilterV2": reference.conv3d_backprop_filter_v2,
    }[kernel]
    strides = [1] * (5 if kernel.startswith("Conv3D") else 4)
    if "Input" in kernel:
        return lambda filter, out_backprop, input_sizes: backprop(input_sizes, filter, out_backprop, strides, **raw)
    return lambda input, out_backprop, filter_sizes: backprop(input, filter_sizes, out_backprop, strides, **raw)


def rounds_once(probe, kernel: str, dtype: str, padding: str) -> dict:
    """{"once": True, or what came out instead} for one kernel, dtype and padding kind (see the module docstring);
    an exception's text for a call that failed. ``probe``: ``harness.tf.kernel_probe`` (its operands and call)."""
    try:
        arrays, sizes = probe._operands(kernel, dtype, True)
        rng = np.random.default_rng(sum(map(ord, f"{kernel}/{dtype}/{padding}")))
        filled = {n: rng.integers(-LIMIT, LIMIT + 1, a.shape).astype(a.dtype) for n, a in arrays.items()}
        tf = wrappers.tf()
        out = probe._call(kernel, dtype, padding, True, lambda name, a: tf.constant(filled[name]))
        got = np.asarray(out.numpy()).astype(np.float64)
        exact = {n: a.astype(np.float64).astype(dtype_of(dtype)) for n, a in filled.items()}
        want = np.asarray(_reference(kernel, padding)(**exact, **sizes)).astype(np.float64)
    except Exception as exc:  # no kernel for the dtype, a refusing oneDNN: no fact
        text = str(exc).strip().splitlines()
        return {"once": f"error: {type(exc).__name__}: {text[0][:160] if text else ''}"}
    if got.shape == want.shape and np.array_equal(got, want):
        return {"once": True}
    if got.shape != want.shape:
        return {"once": f"shape {list(got.shape)}, not {list(want.shape)}"}
    off = np.argwhere(got != want)
    i = tuple(off[0])
    return {
        "once": f"{len(off)} of {got.size} outputs are not the exact sum rounded once, e.g. {got[i]!r} for {want[i]!r}"
    }
