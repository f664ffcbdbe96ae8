"""The reference's cache blocking never changes a result.

``harness.conv.reference`` builds and consumes its im2col matrix in blocks of at most ``_BLOCK_BYTES`` (2 MiB), so the
registry's small cases all run as one block. Here the same calls run with blocks of 1 byte (one output row per
block), 300 and 4,000 bytes (one or a few rows of one batch item, depending on the call) and 30 kB (whole batch
items, two per block for the first call), and must agree with the one-block result to float64 rounding (then
rounded once to float32).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.conv import reference

BLOCK_SIZES = (1, 300, 4_000, 30_000)


def _operands(rng, x_shape, w_shape):
    return rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)


CALLS = {
    "conv2d_same_stride1": lambda rng: (reference.conv2d, (*_operands(rng, (3, 7, 6, 4), (3, 3, 4, 5)), 1, "SAME"), {}),
    "conv2d_valid_stride2_dilated": lambda rng: (
        reference.conv2d,
        (*_operands(rng, (2, 11, 9, 3), (3, 2, 3, 4)), [2, 1], "VALID"),
        {"dilations": [1, 2]},
    ),
    "conv2d_explicit_nchw": lambda rng: (
        reference.conv2d,
        (*_operands(rng, (2, 3, 8, 7), (2, 3, 3, 6)), 2, [[0, 0], [0, 0], [1, 2], [2, 0]]),
        {"data_format": "NCHW"},
    ),
    "conv2d_deep_layer": lambda rng: (  # more output channels than output pixels: one im2col, filter in row blocks
        reference.conv2d,
        (*_operands(rng, (1, 3, 3, 8), (3, 3, 8, 40)), 1, "SAME"),
        {},
    ),
    "conv2d_pointwise": lambda rng: (reference.conv2d, (*_operands(rng, (2, 5, 5, 6), (1, 1, 6, 3)), 1, "VALID"), {}),
    "conv1d": lambda rng: (reference.conv1d, (*_operands(rng, (3, 17, 4), (5, 4, 3)), 2, "SAME"), {}),
    "conv2d_transpose": lambda rng: (
        reference.conv2d_transpose,
        (*_operands(rng, (2, 4, 5, 6), (3, 4, 3, 6)), [2, 8, 10, 3], 2, "SAME"),
        {},
    ),
    "conv2d_backprop_filter": lambda rng: (
        reference.conv2d_backprop_filter,
        (
            rng.standard_normal((2, 7, 6, 3)).astype(np.float32),
            [3, 2, 3, 4],
            rng.standard_normal((2, 4, 3, 4)).astype(np.float32),
            [1, 2, 2, 1],
            "SAME",
        ),
        {},
    ),
}


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_blocking_does_not_change_the_result(name, block_bytes):
    fn, args, kwargs = CALLS[name](np.random.default_rng(7))
    one_block = fn(*args, **kwargs)
    with reference.block_bytes(block_bytes):
        blocked = fn(*args, **kwargs)
    assert blocked.shape == one_block.shape and blocked.dtype == one_block.dtype
    np.testing.assert_allclose(blocked, one_block, rtol=1e-6, atol=1e-6)


def test_the_small_block_sizes_really_split_the_work():
    # Guards the test above: at these sizes a call is several blocks, at the default one.
    assert len(list(reference._blocks(3, 7, row_bytes=6 * 36 * 8))) == 1
    with reference.block_bytes(1):
        assert len(list(reference._blocks(3, 7, row_bytes=6 * 36 * 8))) == 21
    with reference.block_bytes(30_000):
        assert len(list(reference._blocks(3, 7, row_bytes=6 * 36 * 8))) == 2
    assert len(list(reference._blocks(3, 7, row_bytes=6 * 36 * 8))) == 1  # the default again after the block


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_a_block_size_must_be_a_positive_int(size):
    with pytest.raises(ValueError, match="block_bytes: argument 'size'"):
        with reference.block_bytes(size):
            pass
