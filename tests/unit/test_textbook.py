"""harness.conv.textbook against the seed documents' own loop code, transcribed as written.

The loops below are the documents' functions (compute_conv, my_conv2d, my_depthwise,
fill_zeros, my_deconv, corr2D, mutil_in_out_1x1, my_dialateconv2d), kept slow and
literal. The vectorized textbook functions must reproduce them exactly, and the
document's deconvolution recipe must reproduce its printed fixture. No TensorFlow.
"""

import numpy as np
import pytest
from scipy.signal import convolve2d

from harness.conv import layouts, textbook

RNG = np.random.default_rng(7)


# --- the documents' code, transcribed -----------------------------------------------------


def doc_compute_conv(feature_map, kernel):
    h, w = feature_map.shape
    k, _ = kernel.shape
    r = int(k / 2)
    padding_fm = np.zeros([h + 2 * r, w + 2 * r])
    rst = np.zeros([h, w])
    padding_fm[r : h + r, r : w + r] = feature_map
    for i in range(r, h + r):
        for j in range(r, w + r):
            roi = padding_fm[i - r : i + r + 1, j - r : j + r + 1]
            rst[i - r][j - r] = np.sum(roi * kernel)
    return rst


def doc_corr2d(x, k):
    h, w = k.shape
    out = np.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i : i + h, j : j + w] * k)
    return out


def doc_fill_zeros(inputs):
    c, h, w = inputs.shape
    rst = np.zeros([c, 2 * h + 1, 2 * w + 1])
    for i in range(c):
        for j in range(h):
            for k in range(w):
                rst[i, 2 * j + 1, 2 * k + 1] = inputs[i, j, k]
    return rst


def doc_my_deconv(inputs, weights):
    out_c, in_c, h, w = weights.shape
    out_h, out_w = 2 * h, 2 * w  # the document crops to twice the *kernel* size (3x3 kernel, 3x3 input)
    outputs = []
    for i in range(out_c):
        output_ = np.zeros([out_h, out_w])
        for j in range(in_c):
            output_ = output_ + doc_compute_conv(inputs[j], weights[i][j])[0:out_h, 0:out_w]
        outputs.append(output_)
    return np.asarray(outputs)


def doc_dilated(inputs, weights):
    outputs = []
    out_c, in_c, k, _ = weights.shape
    for i in range(out_c):
        output_ = None
        for j in range(in_c):
            kernel = weights[i][j]
            for t in range(k * 2 - 1):
                if t % 2 != 0:
                    kernel = np.insert(kernel, t, values=0.0, axis=0)
                    kernel = np.insert(kernel, t, values=0.0, axis=1)
            conved = convolve2d(inputs[j], kernel, mode="valid")
            output_ = conved if output_ is None else conved + output_
        outputs.append(output_)
    return np.asarray(outputs)


# --- the tests ----------------------------------------------------------------------------


def test_correlate_valid_is_corr2d_mutil_in_out():
    x_chw = RNG.normal(size=(3, 8, 7))
    k_oihw = RNG.normal(size=(5, 3, 3, 2))
    want = np.stack([sum(doc_corr2d(x_chw[c], k_oihw[o, c]) for c in range(3)) for o in range(5)])
    np.testing.assert_allclose(textbook.correlate_valid(x_chw, k_oihw), want, rtol=1e-12, atol=1e-12)


def test_correlate_valid_keeps_a_batch_axis():
    x_nchw = RNG.normal(size=(2, 3, 6, 5))
    k_oihw = RNG.normal(size=(4, 3, 2, 3))
    batched = textbook.correlate_valid(x_nchw, k_oihw)
    assert batched.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(batched[1], textbook.correlate_valid(x_nchw[1], k_oihw))


def test_correlate_centered_is_my_conv2d():
    x_chw = RNG.normal(size=(2, 5, 6))
    k_ihw = RNG.normal(size=(2, 3, 3))
    want = doc_compute_conv(x_chw[0], k_ihw[0]) + doc_compute_conv(x_chw[1], k_ihw[1])
    got = textbook.correlate_centered(x_chw, k_ihw[None])
    np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-12)


def test_depthwise_keeps_channels_apart():
    x_chw = RNG.normal(size=(3, 6, 5))
    k_cmhw = RNG.normal(size=(3, 2, 3, 3))
    got = textbook.depthwise_correlate_valid(x_chw, k_cmhw)
    assert got.shape == (3, 2, 4, 3)
    for c in range(3):
        for m in range(2):
            np.testing.assert_allclose(got[c, m], doc_corr2d(x_chw[c], k_cmhw[c, m]), rtol=1e-12, atol=1e-12)


def test_matmul_1x1_equals_the_correlation():
    x_chw = RNG.normal(size=(3, 8, 8))
    k_oihw = RNG.normal(size=(5, 3, 1, 1))
    np.testing.assert_allclose(
        textbook.matmul_1x1(x_chw, k_oihw), textbook.correlate_valid(x_chw, k_oihw), rtol=1e-12, atol=1e-12
    )


def test_fill_zeros_is_the_documents_loop():
    x_chw = RNG.normal(size=(4, 3, 3))
    np.testing.assert_array_equal(textbook.fill_zeros(x_chw), doc_fill_zeros(x_chw))


def test_the_documents_deconv_recipe_reproduces_the_printed_fixture():
    # shared/seeds/000 In[69], In[85]-[87] and 001: the fixture printed in NCHW
    x_chw = np.array(
        [
            [[1, 0, 1], [0, 2, 1], [1, 1, 0]],
            [[2, 0, 2], [0, 1, 0], [1, 0, 0]],
            [[1, 1, 1], [2, 2, 0], [1, 1, 1]],
            [[1, 1, 2], [1, 0, 1], [0, 2, 2]],
        ],
        float,
    )
    w_oihw = np.array(
        [
            [
                [[1, 0, 1], [-1, 1, 0], [0, -1, 0]],
                [[-1, 0, 1], [0, 0, 1], [1, 1, 1]],
                [[0, 1, 1], [2, 0, 1], [1, 2, 1]],
                [[1, 1, 1], [0, 2, 1], [1, 0, 1]],
            ],
            [
                [[1, 0, 2], [-2, 1, 1], [1, -1, 0]],
                [[-1, 0, 1], [-1, 2, 1], [1, 1, 1]],
                [[0, 0, 0], [2, 2, 1], [1, -1, 1]],
                [[2, 1, 1], [0, -1, 1], [1, 1, 1]],
            ],
        ],
        float,
    )
    printed = np.array(
        [
            [
                [4, 3, 6, 2, 7, 3],
                [4, 3, 3, 2, 7, 5],
                [8, 6, 8, 5, 11, 2],
                [3, 2, 7, 2, 3, 3],
                [5, 5, 11, 3, 9, 3],
                [2, 1, 4, 5, 4, 4],
            ],
            [
                [4, 1, 7, 0, 7, 2],
                [5, 6, 0, 1, 8, 5],
                [8, 0, 8, -2, 14, 2],
                [3, 3, 9, 8, 1, 0],
                [3, 0, 13, 0, 11, 2],
                [3, 5, 3, 1, 3, 0],
            ],
        ],
        float,
    )
    np.testing.assert_array_equal(doc_my_deconv(doc_fill_zeros(x_chw), w_oihw), printed)
    # the same recipe, vectorized: fill zeros, pad k//2, correlate, crop
    recipe = textbook.correlate_centered(textbook.fill_zeros(x_chw), w_oihw)[:, :6, :6]
    np.testing.assert_array_equal(recipe, printed)
    # and the general zero-insertion form with TensorFlow's SAME geometry (out 6, stride 2, k 3: pad before 0)
    general = textbook.transposed_by_zero_insertion(x_chw, w_oihw, (2, 2), (1, 1), (0, 0), (6, 6))
    np.testing.assert_array_equal(general, printed)


@pytest.mark.parametrize("rate", [1, 2, 3])
def test_dilated_convolve_is_my_dialateconv2d(rate):
    x_chw = RNG.normal(size=(2, 12, 11))
    k_oihw = RNG.normal(size=(3, 2, 3, 3))
    want = doc_dilated(x_chw, k_oihw) if rate == 2 else None
    got = textbook.dilated_convolve_valid(x_chw, k_oihw, rate)
    if want is not None:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # a true convolution is a correlation with the 180-degree-rotated kernel
    k_dilated = layouts.dilate_kernel(k_oihw, rate, "OIHW")
    np.testing.assert_allclose(
        got, textbook.correlate_valid(x_chw, layouts.rotate_180(k_dilated, "OIHW")), rtol=1e-12, atol=1e-12
    )


def test_the_atrous_fixture_by_the_documents_method():
    # shared/seeds/000 In[141]-[145]
    x = np.zeros((10, 10))
    x[3:6, 4:7] = 1
    w = np.arange(1, 10, dtype=float).reshape(1, 1, 3, 3)
    printed = [
        [1, 1, 3, 2, 5, 3],
        [5, 5, 12, 7, 16, 9],
        [4, 4, 9, 5, 11, 6],
        [11, 11, 24, 13, 28, 15],
        [7, 7, 15, 8, 17, 9],
        [7, 7, 15, 8, 17, 9],
    ]
    np.testing.assert_array_equal(doc_dilated(x[None], w)[0], printed)
    np.testing.assert_array_equal(textbook.dilated_convolve_valid(x[None], w, 2)[0], printed)


def test_integer_inputs_accumulate_in_int64():
    x_chw = np.full((2, 3, 3), 2**20, dtype=np.int32)
    k_oihw = np.full((1, 2, 3, 3), 2**10, dtype=np.int32)
    got = textbook.correlate_valid(x_chw, k_oihw)
    assert got.dtype == np.int64 and got[0, 0, 0] == 18 * 2**30
