"""The reference of tf.raw_ops.Conv (``reference.conv``) against the tf.nn references, and its batch_dims.

The registry's raw_conv_2d / raw_conv_3d ops have one batch axis (an OpSpec has one rank); batch_dims 0, 2 and 3 are
checked here: folding the leading axes into one batch and unfolding the result is what batch_dims means (the op's
documentation), and the folded call is the batch_dims=1 call the registry checks against TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.conv import layouts, reference

RNG = np.random.default_rng(0)


def normal(*shape):
    return RNG.standard_normal(shape)


@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 3), (2, 1, 3)])
def test_batch_dims_fold_into_one_batch(batch_shape):
    x = normal(*batch_shape, 5, 4, 2)
    w = normal(3, 2, 2, 3)
    y = reference.conv(x, w, [1, 2, 1, 1], "SAME", batch_dims=len(batch_shape))
    folded = reference.conv(x.reshape(-1, 5, 4, 2), w, [1, 2, 1, 1], "SAME")
    assert y.shape == (*batch_shape, 3, 4, 3)
    np.testing.assert_array_equal(y.reshape(folded.shape), folded)


def test_batch_dims_zero_on_a_rank_4_input_is_a_3d_convolution():
    x, w = normal(4, 5, 3, 2), normal(2, 2, 2, 2, 3)
    y = reference.conv(x, w, [1] * 5, "VALID", batch_dims=0)
    np.testing.assert_array_equal(y, reference.conv3d(x[None], w, [1] * 5, "VALID")[0])


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_is_conv2d_and_conv3d(padding):
    x2, w2 = normal(2, 6, 5, 4), normal(3, 2, 2, 6)  # 2 groups
    y2 = reference.conv(x2, w2, [1, 2, 1, 1], padding, dilations=[1, 1, 2, 1], groups=2)
    np.testing.assert_array_equal(y2, reference.conv2d(x2, w2, [1, 2, 1, 1], padding, dilations=[1, 1, 2, 1]))
    x3, w3 = normal(1, 4, 5, 3, 2), normal(2, 3, 2, 2, 3)
    y3 = reference.conv(x3, w3, [1, 1, 2, 1, 1], padding)
    np.testing.assert_array_equal(y3, reference.conv3d(x3, w3, [1, 1, 2, 1, 1], padding))


def test_channels_first_is_the_channels_last_result_transposed():
    x, w = normal(2, 5, 4, 3), normal(2, 3, 3, 2)
    last = reference.conv(x, w, [1, 1, 2, 1], "SAME", explicit_paddings=[], data_format="CHANNELS_LAST")
    first = reference.conv(layouts.convert(x, "NHWC", "NCHW"), w, [1, 1, 1, 2], "SAME", data_format="CHANNELS_FIRST")
    np.testing.assert_array_equal(layouts.convert(first, "NCHW", "NHWC"), last)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_dims": True}, "argument 'batch_dims'=True must be a non-negative int"),
        ({"groups": 1.0}, "argument 'groups'=1.0 must be a positive int"),
        ({"data_format": "NHWC"}, "argument 'data_format'='NHWC' must be one of CHANNELS_LAST, CHANNELS_FIRST"),
        ({"batch_dims": 3}, "argument 'input' has rank 4: with batch_dims=3 that is 0 spatial axes"),
        ({"groups": 3}, "argument 'groups'=3 but the input's 2 channels over the filter's in_channels=2 make 1"),
    ],
)
def test_bad_arguments_name_the_argument_and_its_value(kwargs, message):
    with pytest.raises(ValueError, match="^conv: " + message.replace("(", r"\(").replace(")", r"\)")):
        reference.conv(normal(1, 3, 3, 2), normal(1, 1, 2, 2), [1, 1, 1, 1], "VALID", **kwargs)
