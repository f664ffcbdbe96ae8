"""Unit tests for harness/conv/layouts.py.

Two kinds of checks:
* round trips with pairwise-distinct axis sizes (2, 3, 5, 7), so any axis mix-up
  changes a shape or a value;
* exact values written by hand from the definition of each layout
  (element [c, h, w] of a CHW array is element [h, w, c] of its HWC version, ...).
"""

import numpy as np
import pytest

from harness.conv.layouts import (
    chw_to_hwc,
    convert,
    dilate_kernel,
    hwc_to_chw,
    hwio_to_oihw,
    ihw_to_hwio,
    interleave_zeros,
    nchw_to_nhwc,
    nhwc_to_nchw,
    oihw_to_hwio,
    oihw_to_hwoi,
    rotate_180,
)


def distinct(*shape):
    """An int array whose every element is different (its flat index)."""
    return np.arange(int(np.prod(shape))).reshape(shape)


# --- convert: transposes --------------------------------------------------------------------


def test_convert_chw_to_hwc_element_by_element():
    x_chw = distinct(2, 3, 5)
    x_hwc = convert(x_chw, "CHW", "HWC")
    assert x_hwc.shape == (3, 5, 2)
    for c, h, w in np.ndindex(*x_chw.shape):
        assert x_hwc[h, w, c] == x_chw[c, h, w]


@pytest.mark.parametrize(
    "src, dst, perm",
    [
        ("NCHW", "NHWC", (0, 2, 3, 1)),
        ("NHWC", "NCHW", (0, 3, 1, 2)),
        ("OIHW", "HWIO", (2, 3, 1, 0)),
        ("HWIO", "OIHW", (3, 2, 0, 1)),
        ("OIHW", "HWOI", (2, 3, 0, 1)),
        ("HWIM", "MIHW", (3, 2, 0, 1)),
        ("NWC", "NCW", (0, 2, 1)),
    ],
)
def test_convert_is_the_expected_transpose(src, dst, perm):
    a = distinct(*(2, 3, 5, 7)[: len(src)])
    out = convert(a, src, dst)
    np.testing.assert_array_equal(out, np.transpose(a, perm))


@pytest.mark.parametrize("src, dst", [("NCHW", "NHWC"), ("HWIO", "OIHW"), ("OIHW", "HWOI"), ("CHW", "WHC")])
def test_convert_round_trip(src, dst):
    a = distinct(*(2, 3, 5, 7)[: len(src)])
    back = convert(convert(a, src, dst), dst, src)
    np.testing.assert_array_equal(back, a)
    assert back.shape == a.shape


def test_convert_same_layout_is_identity():
    a = distinct(2, 3, 5, 7)
    np.testing.assert_array_equal(convert(a, "NHWC", "NHWC"), a)


def test_convert_accepts_nested_lists():
    np.testing.assert_array_equal(convert([[1, 2], [3, 4]], "HW", "WH"), [[1, 3], [2, 4]])


def test_convert_does_not_modify_its_input():
    x_nchw = distinct(2, 3, 5, 7)
    before = x_nchw.copy()
    convert(x_nchw, "NCHW", "NHWC")
    np.testing.assert_array_equal(x_nchw, before)


# --- convert: inserting and dropping size-1 axes --------------------------------------------


def test_convert_inserts_size1_batch_axis():
    x_chw = distinct(2, 3, 5)
    x_nhwc = convert(x_chw, "CHW", "NHWC")
    assert x_nhwc.shape == (1, 3, 5, 2)
    for c, h, w in np.ndindex(*x_chw.shape):
        assert x_nhwc[0, h, w, c] == x_chw[c, h, w]


def test_convert_inserts_several_size1_axes_in_the_middle():
    x_nc = distinct(2, 3)
    x_nhwc = convert(x_nc, "NC", "NHWC")
    assert x_nhwc.shape == (2, 1, 1, 3)
    for n, c in np.ndindex(2, 3):
        assert x_nhwc[n, 0, 0, c] == x_nc[n, c]


def test_convert_ihw_inserts_output_axis():
    w_ihw = distinct(2, 3, 5)
    w_hwio = convert(w_ihw, "IHW", "HWIO")
    assert w_hwio.shape == (3, 5, 2, 1)


def test_convert_drops_size1_axis():
    x_nhwc = distinct(1, 3, 5, 2)
    x_chw = convert(x_nhwc, "NHWC", "CHW")
    assert x_chw.shape == (2, 3, 5)
    for c, h, w in np.ndindex(*x_chw.shape):
        assert x_chw[c, h, w] == x_nhwc[0, h, w, c]


def test_convert_insert_then_drop_round_trip():
    x_chw = distinct(2, 3, 5)
    np.testing.assert_array_equal(convert(convert(x_chw, "CHW", "NHWC"), "NHWC", "CHW"), x_chw)


def test_convert_refuses_to_drop_an_axis_larger_than_1():
    x_nhwc = distinct(2, 3, 5, 7)
    with pytest.raises(ValueError) as info:
        convert(x_nhwc, "NHWC", "HWC")
    assert "'N'" in str(info.value)
    assert "size 2" in str(info.value)


@pytest.mark.parametrize(
    "bad",
    ["", "NHWW", "nhwc", "NHWX", "NHWI", "HWIC", None, 4],
    ids=["empty", "duplicate", "lowercase", "unknown-letter", "mixed-families", "mixed-families-2", "None", "int"],
)
def test_convert_rejects_bad_source_layout(bad):
    with pytest.raises(ValueError) as info:
        convert(distinct(2, 3, 5, 7), bad, "NHWC")
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", ["", "NHWW", "nhwc", "NHWX", "NHWI", None], ids=repr)
def test_convert_rejects_bad_target_layout(bad):
    with pytest.raises(ValueError) as info:
        convert(distinct(2, 3, 5, 7), "NHWC", bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 5, 7, 1)])
def test_convert_rejects_rank_mismatch(shape):
    with pytest.raises(ValueError) as info:
        convert(np.zeros(shape), "NHWC", "NCHW")
    assert "4 axes" in str(info.value)
    assert str(len(shape)) in str(info.value)


# --- named data conversions -----------------------------------------------------------------


def test_chw_to_hwc_exact_and_round_trip():
    x_chw = distinct(2, 3, 5)
    x_hwc = chw_to_hwc(x_chw)
    assert x_hwc.shape == (3, 5, 2)
    for c, h, w in np.ndindex(*x_chw.shape):
        assert x_hwc[h, w, c] == x_chw[c, h, w]
    np.testing.assert_array_equal(hwc_to_chw(x_hwc), x_chw)


def test_hwc_to_chw_exact_and_round_trip():
    x_hwc = distinct(2, 3, 5)
    x_chw = hwc_to_chw(x_hwc)
    assert x_chw.shape == (5, 2, 3)
    for h, w, c in np.ndindex(*x_hwc.shape):
        assert x_chw[c, h, w] == x_hwc[h, w, c]
    np.testing.assert_array_equal(chw_to_hwc(x_chw), x_hwc)


def test_nchw_to_nhwc_exact_and_round_trip():
    x_nchw = distinct(2, 3, 5, 7)
    x_nhwc = nchw_to_nhwc(x_nchw)
    assert x_nhwc.shape == (2, 5, 7, 3)
    for n, c, h, w in np.ndindex(*x_nchw.shape):
        assert x_nhwc[n, h, w, c] == x_nchw[n, c, h, w]
    np.testing.assert_array_equal(nhwc_to_nchw(x_nhwc), x_nchw)


def test_nhwc_to_nchw_exact_and_round_trip():
    x_nhwc = distinct(2, 3, 5, 7)
    x_nchw = nhwc_to_nchw(x_nhwc)
    assert x_nchw.shape == (2, 7, 3, 5)
    for n, h, w, c in np.ndindex(*x_nhwc.shape):
        assert x_nchw[n, c, h, w] == x_nhwc[n, h, w, c]
    np.testing.assert_array_equal(nchw_to_nhwc(x_nchw), x_nhwc)


# --- named filter conversions ---------------------------------------------------------------


def test_ihw_to_hwio_exact():
    w_ihw = distinct(2, 3, 5)
    w_hwio = ihw_to_hwio(w_ihw)
    assert w_hwio.shape == (3, 5, 2, 1)
    for i, h, w in np.ndindex(*w_ihw.shape):
        assert w_hwio[h, w, i, 0] == w_ihw[i, h, w]


def test_oihw_to_hwio_exact_and_round_trip():
    w_oihw = distinct(2, 3, 5, 7)
    w_hwio = oihw_to_hwio(w_oihw)
    assert w_hwio.shape == (5, 7, 3, 2)
    for o, i, h, w in np.ndindex(*w_oihw.shape):
        assert w_hwio[h, w, i, o] == w_oihw[o, i, h, w]
    np.testing.assert_array_equal(hwio_to_oihw(w_hwio), w_oihw)


def test_hwio_to_oihw_exact_and_round_trip():
    w_hwio = distinct(2, 3, 5, 7)
    w_oihw = hwio_to_oihw(w_hwio)
    assert w_oihw.shape == (7, 5, 2, 3)
    for h, w, i, o in np.ndindex(*w_hwio.shape):
        assert w_oihw[o, i, h, w] == w_hwio[h, w, i, o]
    np.testing.assert_array_equal(oihw_to_hwio(w_oihw), w_hwio)


def test_oihw_to_hwoi_exact_and_matches_documents_perm():
    w_oihw = distinct(2, 3, 5, 7)
    w_hwoi = oihw_to_hwoi(w_oihw)
    assert w_hwoi.shape == (5, 7, 2, 3)
    for o, i, h, w in np.ndindex(*w_oihw.shape):
        assert w_hwoi[h, w, o, i] == w_oihw[o, i, h, w]
    # the documents' tf.transpose(weights, perm=(2, 3, 0, 1))
    np.testing.assert_array_equal(w_hwoi, np.transpose(w_oihw, (2, 3, 0, 1)))
    # HWOI is HWIO with the two channel axes swapped
    np.testing.assert_array_equal(w_hwoi, np.swapaxes(oihw_to_hwio(w_oihw), 2, 3))


# --- rotate_180 -----------------------------------------------------------------------------


def test_rotate_180_hand_written_3x3():
    w_hw = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    expected = np.array([[9, 8, 7], [6, 5, 4], [3, 2, 1]])
    np.testing.assert_array_equal(rotate_180(w_hw, layout="HW"), expected)


def test_rotate_180_hwio_equals_rot90_twice():
    w_hwio = distinct(2, 3, 5, 7)
    np.testing.assert_array_equal(rotate_180(w_hwio), np.rot90(w_hwio, 2, axes=(0, 1)))
    np.testing.assert_array_equal(rotate_180(w_hwio, "HWIO"), np.rot90(w_hwio, 2, axes=(0, 1)))


def test_rotate_180_element_definition_non_square():
    w_hwio = distinct(2, 3, 5, 7)
    kh, kw = 2, 3
    rotated = rotate_180(w_hwio)
    for h, w, i, o in np.ndindex(*w_hwio.shape):
        assert rotated[h, w, i, o] == w_hwio[kh - 1 - h, kw - 1 - w, i, o]


def test_rotate_180_oihw_flips_last_two_axes():
    w_oihw = distinct(2, 3, 5, 7)
    np.testing.assert_array_equal(rotate_180(w_oihw, layout="OIHW"), np.rot90(w_oihw, 2, axes=(2, 3)))


def test_rotate_180_twice_is_identity_and_input_untouched():
    w_hwio = distinct(2, 3, 5, 7)
    before = w_hwio.copy()
    np.testing.assert_array_equal(rotate_180(rotate_180(w_hwio)), w_hwio)
    np.testing.assert_array_equal(w_hwio, before)


def test_rotate_180_rejects_layout_rank_mismatch():
    with pytest.raises(ValueError):
        rotate_180(distinct(2, 3, 5), layout="HWIO")


# --- dilate_kernel --------------------------------------------------------------------------


def test_dilate_kernel_hand_written_rate_2():
    w_hw = np.array([[1, 2], [3, 4]])
    expected = np.array([[1, 0, 2], [0, 0, 0], [3, 0, 4]])
    np.testing.assert_array_equal(dilate_kernel(w_hw, 2, layout="HW"), expected)
    # the same kernel as HWIO [2, 2, 1, 1]
    out_hwio = dilate_kernel(w_hw[:, :, None, None], 2)
    assert out_hwio.shape == (3, 3, 1, 1)
    np.testing.assert_array_equal(out_hwio[:, :, 0, 0], expected)


def test_dilate_kernel_unequal_rates_hand_written():
    w_hw = np.array([[1, 2], [3, 4]])
    expected = np.array(
        [
            [1, 0, 0, 2],
            [0, 0, 0, 0],
            [3, 0, 0, 4],
        ]
    )
    np.testing.assert_array_equal(dilate_kernel(w_hw, (2, 3), layout="HW"), expected)


@pytest.mark.parametrize("rate", [2, 3, (2, 3), (3, 1)])
def test_dilate_kernel_hwio_definition(rate):
    w_hwio = distinct(2, 3, 5, 7) + 1  # no zero taps
    rh, rw = (rate, rate) if np.ndim(rate) == 0 else rate
    out = dilate_kernel(w_hwio, rate)
    assert out.shape == ((2 - 1) * rh + 1, (3 - 1) * rw + 1, 5, 7)
    assert out.dtype == w_hwio.dtype
    expected = np.zeros(out.shape, w_hwio.dtype)
    for h, w, i, o in np.ndindex(*w_hwio.shape):
        expected[h * rh, w * rw, i, o] = w_hwio[h, w, i, o]
    np.testing.assert_array_equal(out, expected)


def test_dilate_kernel_oihw_dilates_the_last_two_axes():
    w_oihw = distinct(2, 3, 2, 2) + 1
    out = dilate_kernel(w_oihw, 2, layout="OIHW")
    assert out.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(out[:, :, ::2, ::2], w_oihw)
    assert not out[:, :, 1, :].any() and not out[:, :, :, 1].any()


def test_dilate_kernel_rate_1_is_identity():
    w_hwio = distinct(2, 3, 5, 7)
    np.testing.assert_array_equal(dilate_kernel(w_hwio, 1), w_hwio)


@pytest.mark.parametrize("rate", [0, -1, 1.5, (2, 3, 4), (2,), (0, 2)], ids=repr)
def test_dilate_kernel_rejects_bad_rate(rate):
    with pytest.raises(ValueError) as info:
        dilate_kernel(distinct(2, 2, 1, 1), rate)
    assert "rate" in str(info.value)


# --- interleave_zeros -----------------------------------------------------------------------


def test_interleave_zeros_3x3_stride_2():
    x_hw = np.arange(1, 10).reshape(3, 3)
    out = interleave_zeros(x_hw, 2, layout="HW")
    expected = np.array(
        [
            [1, 0, 2, 0, 3],
            [0, 0, 0, 0, 0],
            [4, 0, 5, 0, 6],
            [0, 0, 0, 0, 0],
            [7, 0, 8, 0, 9],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_interleave_zeros_nhwc_default_layout():
    x_nhwc = distinct(2, 3, 5, 7) + 1
    out = interleave_zeros(x_nhwc, 2)
    assert out.shape == (2, 5, 9, 7)
    np.testing.assert_array_equal(out[:, ::2, ::2, :], x_nhwc)
    assert not out[:, 1::2].any() and not out[:, :, 1::2].any()


def test_interleave_zeros_unequal_strides():
    x_hw = np.arange(1, 7).reshape(2, 3)
    out = interleave_zeros(x_hw, (2, 3), layout="HW")
    expected = np.array(
        [
            [1, 0, 0, 2, 0, 0, 3],
            [0, 0, 0, 0, 0, 0, 0],
            [4, 0, 0, 5, 0, 0, 6],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_interleave_zeros_stride_1_is_identity():
    x_nhwc = distinct(2, 3, 5, 7)
    np.testing.assert_array_equal(interleave_zeros(x_nhwc, 1), x_nhwc)


def fill_zeros_from_documents(x_chw):
    """The documents' ``fill_zeros`` (stride 2): each pixel at (2i+1, 2j+1) of a (2h+1) x (2w+1) grid."""
    c, h, w = x_chw.shape
    out = np.zeros((c, 2 * h + 1, 2 * w + 1), x_chw.dtype)
    for k in range(c):
        for i in range(h):
            for j in range(w):
                out[k, 2 * i + 1, 2 * j + 1] = x_chw[k, i, j]
    return out


def test_interleave_zeros_plus_padding_is_documents_fill_zeros():
    x_chw = distinct(2, 3, 3) + 1
    ours = np.pad(interleave_zeros(x_chw, 2, layout="CHW"), ((0, 0), (1, 1), (1, 1)))
    assert ours.shape == (2, 7, 7)
    np.testing.assert_array_equal(ours, fill_zeros_from_documents(x_chw))
    # values at odd indices, zeros at every even row and column
    np.testing.assert_array_equal(ours[:, 1::2, 1::2], x_chw)
    assert not ours[:, ::2, :].any() and not ours[:, :, ::2].any()


@pytest.mark.parametrize("stride", [0, -2, 2.5, (2, 2, 2)], ids=repr)
def test_interleave_zeros_rejects_bad_stride(stride):
    with pytest.raises(ValueError) as info:
        interleave_zeros(distinct(1, 3, 3, 1), stride)
    assert "stride" in str(info.value)


@pytest.mark.parametrize(
    "layout,last,first,other",
    [
        ("NHWC", "NHWC", "NCHW", "NCHW"),
        ("NCHW", "NHWC", "NCHW", "NHWC"),
        ("NWC", "NWC", "NCW", "NCW"),
        ("NCW", "NWC", "NCW", "NWC"),
    ],
)
def test_data_format_spellings(layout, last, first, other):
    from harness.conv import layouts

    assert (layouts.channels_last(layout), layouts.channels_first(layout), layouts.other_data_format(layout)) == (
        last,
        first,
        other,
    )
