"""The reference's integer convolutions are exact on every path it sums them by.

``harness.conv.reference`` sums integer operands in float32 runs of K short enough that no partial sum reaches
2**24, in float64 below 2**53, or in int64 (``_exact_gemm``); the integer reference of quantized ops relies on it.
Each call here is checked against a direct loop over output pixels in int64 (TensorFlow's int32 wrap applied to
both), at magnitudes chosen to take each path, and at block sizes that split the work.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.conv import reference

# (x's bound, w's bound) -> the path that K = 3 * 3 * 40 terms of their products take (asserted below)
MAGNITUDES = {
    "float32_one_run": (256, 128, np.float32, 360),
    "float32_runs": (400, 128, np.float32, 2**24 // (400 * 128)),  # 327 terms a run
    "float64": (2**12, 128, np.float64, 360),
    "int64": (2**31, 2**20, np.int64, 360),
}


def _direct_conv2d(x_nhwc: np.ndarray, w_hwio: np.ndarray, stride: int, groups: int) -> np.ndarray:
    """VALID correlation by a loop over output pixels, int64, wrapped to int32."""
    x, w = x_nhwc.astype(np.int64), w_hwio.astype(np.int64)
    kh, kw, per_in, channels_out = w.shape
    per_out = channels_out // groups
    n, h, wd, _ = x.shape
    out = np.zeros((n, (h - kh) // stride + 1, (wd - kw) // stride + 1, channels_out), np.int64)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
            for g in range(groups):
                group = patch[..., g * per_in : (g + 1) * per_in]
                out[:, i, j, g * per_out : (g + 1) * per_out] = np.einsum(
                    "nhwi,hwio->no", group, w[..., g * per_out : (g + 1) * per_out]
                )
    return (((out + 2**31) % 2**32) - 2**31).astype(np.int32)


def _operands(rng: np.random.Generator, x_shape, w_shape, x_hi: int, w_hi: int):
    x = rng.integers(-x_hi, x_hi, x_shape, dtype=np.int64).astype(np.int32)
    w = rng.integers(-w_hi, w_hi, w_shape, dtype=np.int64).astype(np.int32)
    return x, w


SHAPES = {  # (input NHWC, filter HWIO, stride, groups)
    "conv": ((2, 7, 6, 40), (3, 3, 40, 5), 1, 1),
    "deep_layer": ((1, 3, 3, 40), (3, 3, 40, 12), 1, 1),  # more output channels than pixels: the filter in blocks
    "strided": ((1, 9, 8, 40), (3, 3, 40, 4), 2, 1),
    "grouped": ((1, 6, 6, 80), (3, 3, 40, 6), 1, 2),
    "depthwise": ((2, 6, 7, 5), (3, 3, 1, 10), 1, 5),
}


@pytest.mark.parametrize("block_bytes", [2 << 20, 300])
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("magnitude", sorted(MAGNITUDES))
def test_integer_conv2d_is_exact_on_every_path(magnitude, shape, block_bytes):
    x_hi, w_hi, _, _ = MAGNITUDES[magnitude]
    x_shape, w_shape, stride, groups = SHAPES[shape]
    x, w = _operands(np.random.default_rng(3), x_shape, w_shape, x_hi, w_hi)
    with reference.block_bytes(block_bytes):
        got = reference.conv2d(x, w, stride, "VALID")
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, _direct_conv2d(x, w, stride, groups))


@pytest.mark.parametrize("magnitude", sorted(MAGNITUDES))
def test_the_magnitudes_take_the_path_named(magnitude):
    # Guards the test above: each magnitude reaches the path it is named after, with runs of the length given.
    x_hi, w_hi, dtype, run = MAGNITUDES[magnitude]
    x, w = _operands(np.random.default_rng(3), (1, 3, 3, 40), (3, 3, 40, 5), x_hi, w_hi)
    x[0, 0, 0, 0], w[0, 0, 0, 0] = -x_hi, -w_hi  # the bounds themselves, so the run length is exact
    assert reference._exact_gemm(x, w, 360) == (np.dtype(dtype), run)


def test_a_depthwise_window_is_one_run_even_past_the_shortest():
    # 17 x 17 = 289 taps over 256: float32 only if all 289 sums fit, since the depthwise einsum has no runs
    x = np.full((1, 2, 2, 1), 500, np.int32)  # runs of 2**24 // (500 * 128) = 262 terms
    w = np.full((1, 1, 1, 1), 128, np.int32)
    assert reference._exact_gemm(x, w, 289, shortest=289)[0] == np.float64
    assert reference._exact_gemm(x, w, 289)[0] == np.float32
