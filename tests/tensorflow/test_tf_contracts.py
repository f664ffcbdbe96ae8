"""The reference accepts what tf.nn accepts and rejects what it rejects (argument forms, output_shape).

These checks call TensorFlow. Inputs that abort the process under oneDNN (for example a rank-3 input
to conv2d) are not used here.
"""

import itertools

import numpy as np
import pytest

from harness.conv import reference
from harness.conv.padding import transpose_output_sizes
from harness.tf import wrappers
from harness.tf.environment import Environment

RNG = np.random.default_rng(3)


def _accepts(fn, *args, **kwargs) -> bool:
    try:
        fn(*args, **kwargs)
    except Exception:
        return False
    return True


CONFIGS = [  # (n, k, stride, dilation, padding as pair or name)
    (n, k, s, 1, p) for n, k, s, p in itertools.product([3, 4], [1, 2, 3], [1, 2, 3], ["SAME", "VALID", (1, 0), (0, 2)])
]


@pytest.mark.parametrize("n,k,s,d,pad", CONFIGS, ids=str)
def test_conv2d_transpose_accepts_exactly_the_output_sizes_tensorflow_accepts(n, k, s, d, pad):
    y_nhwc = RNG.normal(size=(1, n, 2, 2)).astype(np.float32)
    w_hwoi = RNG.normal(size=(k, 1, 3, 2)).astype(np.float32)
    padding = pad if isinstance(pad, str) else [[0, 0], list(pad), [0, 0], [0, 0]]
    width = 2 * s  # an accepted width for every config above (SAME: ceil(2s/s) = 2; VALID/explicit with kw = 1)
    if not isinstance(pad, str) or pad == "VALID":
        width = transpose_output_sizes(2, 1, s, 1, "VALID")[0]
    accepted_tf, accepted_ref = set(), set()
    for m in range(1, n * s + k + 4):
        shape = [1, m, width, 3]
        if _accepts(wrappers.conv2d_transpose, y_nhwc, w_hwoi, shape, s, padding):
            accepted_tf.add(m)
        if _accepts(reference.conv2d_transpose, y_nhwc, w_hwoi, shape, s, padding):
            accepted_ref.add(m)
    assert accepted_ref == accepted_tf
    assert accepted_ref == set(transpose_output_sizes(n, k, s, d, pad))


STRIDE_FORMS = [1, 2, [2], [1, 2], [1, 2, 2, 1], [1, 1, 2, 1], [2, 2, 2], [2, 1, 1, 1], [1, 2, 2, 2], 0, [1, 0]]


@pytest.mark.parametrize("strides", STRIDE_FORMS, ids=str)
def test_conv2d_strides_forms(strides):
    x_nhwc = RNG.normal(size=(1, 6, 5, 2)).astype(np.float32)
    w_hwio = RNG.normal(size=(3, 3, 2, 2)).astype(np.float32)
    tf_ok = _accepts(wrappers.conv2d, x_nhwc, w_hwio, strides, "SAME")
    assert _accepts(reference.conv2d, x_nhwc, w_hwio, strides, "SAME") == tf_ok


@pytest.mark.parametrize("strides", STRIDE_FORMS, ids=str)
def test_depthwise_strides_forms(strides):
    x_nhwc = RNG.normal(size=(1, 6, 5, 2)).astype(np.float32)
    w_hwim = RNG.normal(size=(3, 3, 2, 1)).astype(np.float32)
    tf_ok = _accepts(wrappers.depthwise_conv2d, x_nhwc, w_hwim, strides, "SAME")
    ref_ok = _accepts(reference.depthwise_conv2d, x_nhwc, w_hwim, strides, "SAME")
    if strides == [1, 1, 2, 1] and Environment.current().eigen(("DepthwiseConv2dNative",), "float32", "named"):
        # known divergence eigen_depthwise_unequal_strides: only oneDNN's kernel computes unequal depthwise strides
        assert ref_ok and not tf_ok
    else:
        assert ref_ok == tf_ok


CONV1D_BATCH_STRIDE = pytest.param(
    [2, 1, 1],
    marks=pytest.mark.xfail(
        strict=True,
        reason="TF 2.21 quirk: tf.nn.conv1d(x_nwc, w, stride=[2, 1, 1], 'VALID') is accepted and equals stride 1 "
        "(conv1d prepends 1 and runs conv2d on a height-1 image, so the batch entry strides the dummy height axis); "
        "conv2d rejects batch strides with UnimplementedError, and so does the reference",
    ),
    id="[2, 1, 1]",
)


@pytest.mark.parametrize("stride", [1, 2, [2], [1, 2, 1], [2, 2], CONV1D_BATCH_STRIDE, 0], ids=str)
def test_conv1d_stride_forms(stride):
    x_nwc = RNG.normal(size=(1, 9, 2)).astype(np.float32)
    w_wio = RNG.normal(size=(3, 2, 2)).astype(np.float32)
    tf_ok = _accepts(wrappers.conv1d, x_nwc, w_wio, stride, "VALID")
    assert _accepts(reference.conv1d, x_nwc, w_wio, stride, "VALID") == tf_ok


@pytest.mark.parametrize(
    "padding",
    [
        "SAME",
        "VALID",
        "same",
        "FULL",
        [[0, 0], [1, 1], [1, 1], [0, 0]],
        [[1, 1], [1, 1]],
        [[0, 0], [-1, 1], [1, 1], [0, 0]],
    ],
    ids=str,
)
def test_conv2d_padding_forms(padding):
    x_nhwc = RNG.normal(size=(1, 6, 5, 2)).astype(np.float32)
    w_hwio = RNG.normal(size=(3, 3, 2, 2)).astype(np.float32)
    tf_ok = _accepts(wrappers.conv2d, x_nhwc, w_hwio, 1, padding)
    assert _accepts(reference.conv2d, x_nhwc, w_hwio, 1, padding) == tf_ok


@pytest.mark.parametrize("batch_shape", [(), (2, 3), (2, 1, 2)])
def test_raw_conv_batch_dims_are_the_reference_folding_them(batch_shape):
    """tf.raw_ops.Conv with batch_dims 0, 2 and 3 (the registry's raw_conv ops have 1): small integers, so float32
    sums are exact and TensorFlow must equal the reference bit for bit."""
    x = RNG.integers(-3, 4, size=(*batch_shape, 5, 4, 2)).astype(np.float32)
    w = RNG.integers(-3, 4, size=(3, 2, 2, 3)).astype(np.float32)
    args = ([1, 2, 1, 1], "SAME")
    got = wrappers.raw_conv_2d(x, w, *args, batch_dims=len(batch_shape))
    np.testing.assert_array_equal(got, reference.conv(x, w, *args, batch_dims=len(batch_shape)))
