"""Unit tests for harness/conv/padding.py: argument normalization and TensorFlow's window arithmetic.

Expected values are computed by hand from TensorFlow's rules
(tensorflow/core/framework/kernel_shape_util.cc):
SAME: out = ceil(n / s), total pad = max(0, (out - 1) * s + (k - 1) * d + 1 - n),
before = total // 2, the odd pixel after; VALID: out = ceil((n - k_eff + 1) / s).
"""

import itertools

import numpy as np
import pytest
from support import assert_value_error

from harness.conv.padding import (
    Window,
    normalize_padding,
    normalize_window_arg,
    spatial_axes,
    transpose_output_sizes,
    window,
    windows,
)

LENGTHS_2D = (1, 2, 4)
LENGTHS_1D = (1, 3)


def strides_2d(value, data_format="NHWC", **kw):
    kw.setdefault("allowed_lengths", LENGTHS_2D)
    return normalize_window_arg("conv2d", "strides", value, data_format, **kw)


# --- spatial_axes ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, axes", [("NHWC", (1, 2)), ("NCHW", (2, 3)), ("NWC", (1,)), ("NCW", (2,))])
def test_spatial_axes(fmt, axes):
    assert spatial_axes(fmt) == axes


# --- normalize_window_arg -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, fmt, expected",
    [
        (2, "NHWC", (2, 2)),
        (np.int64(3), "NHWC", (3, 3)),
        ([3], "NHWC", (3, 3)),
        ((3,), "NCHW", (3, 3)),
        ([2, 3], "NHWC", (2, 3)),
        ([2, 3], "NCHW", (2, 3)),
        ([1, 2, 3, 1], "NHWC", (2, 3)),
        ((1, 2, 3, 1), "NHWC", (2, 3)),
        ([1, 1, 2, 3], "NCHW", (2, 3)),
    ],
)
def test_normalize_window_arg_2d_forms(value, fmt, expected):
    assert strides_2d(value, fmt) == expected


@pytest.mark.parametrize(
    "value, fmt, expected",
    [(2, "NWC", (2,)), ([2], "NWC", (2,)), ([1, 2, 1], "NWC", (2,)), ([1, 1, 2], "NCW", (2,))],
)
def test_normalize_window_arg_1d_forms(value, fmt, expected):
    assert normalize_window_arg("conv1d", "stride", value, fmt, allowed_lengths=LENGTHS_1D) == expected


@pytest.mark.parametrize(
    "value, fmt, letter",
    [
        ([2, 1, 1, 1], "NHWC", "N"),
        ([1, 1, 1, 2], "NHWC", "C"),
        ([1, 1, 2, 3], "NHWC", "C"),  # valid NCHW spelling, wrong for NHWC
        ([1, 2, 1, 1], "NCHW", "C"),  # valid NHWC spelling, wrong for NCHW
        ([2, 1, 1, 1], "NCHW", "N"),
    ],
)
def test_normalize_window_arg_batch_and_channel_entries_must_be_1(value, fmt, letter):
    assert_value_error(lambda: strides_2d(value, fmt), "'strides'", repr(value), f"the {letter} entry must be 1")


@pytest.mark.parametrize("value", [0, -1, [0], [-2], [1, 0], [2, -1], [1, 0, 1, 1], [1, 1, -3, 1]], ids=repr)
def test_normalize_window_arg_non_positive_raises_with_name_and_value(value):
    assert_value_error(lambda: strides_2d(value), "conv2d", "'strides'", repr(value), "positive")


def test_normalize_window_arg_dilations_name_in_message():
    assert_value_error(
        lambda: normalize_window_arg("conv2d", "dilations", [1, 0], "NHWC", allowed_lengths=LENGTHS_2D, default=1),
        "'dilations'",
        "[1, 0]",
    )


@pytest.mark.parametrize("value", [[1, 2, 3], [], [1, 1, 1, 1, 1]], ids=repr)
def test_normalize_window_arg_wrong_length(value):
    assert_value_error(lambda: strides_2d(value), "'strides'", repr(value), "length", f"got {len(value)}")


@pytest.mark.parametrize(
    "value",
    [True, False, [True, True], [1, True, True, 1], "2", "22", 2.0, [2.0, 2], [2, "2"], object()],
    ids=["True", "False", "[True,True]", "bool-entries", "'2'", "'22'", "2.0", "[2.0,2]", "[2,'2']", "object"],
)
def test_normalize_window_arg_rejects_bool_str_float(value):
    assert_value_error(lambda: strides_2d(value), "'strides'", repr(value))


def test_normalize_window_arg_allow_int_false():
    assert_value_error(
        lambda: strides_2d(2, allowed_lengths=(4,), allow_int=False), "'strides'", "=2", "length 4", "not an int"
    )
    assert strides_2d([1, 2, 3, 1], allowed_lengths=(4,), allow_int=False) == (2, 3)
    assert_value_error(lambda: strides_2d([2, 3], allowed_lengths=(4,), allow_int=False), "length 4", "got 2")


def test_normalize_window_arg_none_uses_default_or_raises():
    assert strides_2d(None, default=1) == (1, 1)
    assert_value_error(lambda: strides_2d(None), "'strides'", "None", "required")


@pytest.mark.parametrize("value", [np.array([1, 2, 3, 1]), np.array([2, 3])], ids=["len4", "len2"])
def test_normalize_window_arg_accepts_numpy_array(value):
    assert strides_2d(value) == (2, 3)


# --- normalize_padding ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SAME", "VALID"])
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW", "NWC"])
def test_normalize_padding_names(name, fmt):
    assert normalize_padding("conv2d", name, fmt) == name


@pytest.mark.parametrize("name", ["same", "valid", "Same", "Valid"])
def test_normalize_padding_is_case_sensitive(name):
    assert_value_error(lambda: normalize_padding("conv2d", name, "NHWC"), "'padding'", repr(name), "case-sensitive")


@pytest.mark.parametrize("name", ["FULL", "", "CAUSAL"])
def test_normalize_padding_unknown_name(name):
    message = assert_value_error(lambda: normalize_padding("conv2d", name, "NHWC"), "'padding'", repr(name))
    assert "case" not in message


@pytest.mark.parametrize(
    "padding, fmt, expected",
    [
        ([[0, 0], [1, 2], [3, 4], [0, 0]], "NHWC", ((1, 2), (3, 4))),
        ([[0, 0], [0, 0], [1, 2], [3, 4]], "NCHW", ((1, 2), (3, 4))),
        (((0, 0), (1, 2), (3, 4), (0, 0)), "NHWC", ((1, 2), (3, 4))),
        (np.array([[0, 0], [1, 2], [3, 4], [0, 0]]), "NHWC", ((1, 2), (3, 4))),
        ([[0, 0], [5, 0], [0, 0]], "NWC", ((5, 0),)),
        ([[0, 0], [0, 0], [0, 6]], "NCW", ((0, 6),)),
    ],
)
def test_normalize_padding_explicit(padding, fmt, expected):
    result = normalize_padding("conv2d", padding, fmt)
    assert result == expected
    assert all(type(v) is int for pair in result for v in pair)


@pytest.mark.parametrize(
    "padding, fragment",
    [
        ([[1, 2], [3, 4]], "needs 4"),
        ([[0, 0], [1, 1], [1, 1]], "got 3"),
        ([[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]], "got 5"),
        ([[0, 0], [1], [1, 1], [0, 0]], "pair"),
        ([[0, 0], [1, 1, 1], [1, 1], [0, 0]], "pair"),
        ([[0, 0], [-1, 0], [0, 0], [0, 0]], "non-negative"),
        ([[0, 0], [0, 0], [0, -2], [0, 0]], "non-negative"),
        ([[1, 0], [0, 0], [0, 0], [0, 0]], "the N pair"),
        ([[0, 0], [0, 0], [0, 0], [0, 1]], "the C pair"),
        ([[0, 0], [0, 0], [1, 1], [1, 1]], "the C pair"),  # fine for NCHW, not for NHWC
        ([[0, 0], [1.5, 1], [1, 1], [0, 0]], "integers"),
        ([[0, 0], [True, 1], [1, 1], [0, 0]], "integers"),
        ([1, 1, 1, 1], "pairs"),
        (None, "pairs"),
        (3, "pairs"),
    ],
)
def test_normalize_padding_bad_explicit_nhwc(padding, fragment):
    assert_value_error(lambda: normalize_padding("conv2d", padding, "NHWC"), "'padding'", repr(padding), fragment)


def test_normalize_padding_nchw_channel_pair_is_axis_1():
    assert_value_error(
        lambda: normalize_padding("conv2d", [[0, 0], [1, 0], [0, 0], [0, 0]], "NCHW"), "'padding'", "the C pair"
    )
    assert normalize_padding("conv2d", [[0, 0], [0, 0], [1, 1], [1, 1]], "NCHW") == ((1, 1), (1, 1))


def test_normalize_padding_allow_explicit_false():
    assert normalize_padding("conv1d", "SAME", "NWC", allow_explicit=False) == "SAME"
    assert_value_error(
        lambda: normalize_padding("conv1d", [[0, 0], [1, 1], [0, 0]], "NWC", allow_explicit=False),
        "conv1d",
        "'padding'",
        "explicit",
    )


# --- window ---------------------------------------------------------------------------------

# (n, k, s, d) -> (out, pad_before, pad_after), computed by hand
SAME_TABLE = [
    ((5, 3, 2, 1), (3, 1, 1)),
    ((6, 3, 2, 1), (3, 0, 1)),
    ((4, 4, 1, 1), (4, 1, 2)),
    ((5, 3, 1, 1), (5, 1, 1)),
    ((7, 1, 3, 1), (3, 0, 0)),
    ((10, 3, 4, 1), (3, 0, 1)),
    ((3, 2, 2, 1), (2, 0, 1)),
    ((5, 3, 1, 2), (5, 2, 2)),  # k_eff 5
    ((6, 3, 2, 2), (3, 1, 2)),  # k_eff 5
    ((2, 5, 1, 1), (2, 2, 2)),  # SAME accepts a kernel larger than the input
    ((1, 1, 1, 1), (1, 0, 0)),
    ((9, 2, 3, 1), (3, 0, 0)),  # (3-1)*3 + 2 = 8 < 9: no padding needed
]


@pytest.mark.parametrize("args, expected", SAME_TABLE, ids=[str(a) for a, _ in SAME_TABLE])
def test_window_same_table(args, expected):
    n, k, s, d = args
    win = window("conv2d", n, k, s, d, "SAME")
    assert (win.out, win.pad_before, win.pad_after) == expected
    assert (win.size, win.kernel, win.stride, win.dilation) == (n, k, s, d)


def test_window_same_matches_formula_sweep():
    for n, k, s, d in itertools.product(range(1, 12), range(1, 6), range(1, 5), range(1, 4)):
        win = window("op", n, k, s, d, "SAME")
        out = -(-n // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
        assert win.out == out
        assert win.pad_before + win.pad_after == total
        assert win.pad_after - win.pad_before in (0, 1)  # the odd pixel goes after


# (n, k, s, d) -> out, by hand: ceil((n - k_eff + 1) / s)
VALID_TABLE = [
    ((5, 3, 1, 1), 3),
    ((5, 3, 2, 1), 2),
    ((6, 3, 2, 1), 2),
    ((7, 3, 2, 2), 2),
    ((4, 4, 1, 1), 1),
    ((10, 1, 3, 1), 4),
    ((5, 3, 1, 2), 1),  # k_eff 5 == n
    ((8, 2, 3, 1), 3),
]


@pytest.mark.parametrize("args, out", VALID_TABLE, ids=[str(a) for a, _ in VALID_TABLE])
def test_window_valid_table(args, out):
    win = window("conv2d", *args, "VALID")
    assert win.out == out
    assert (win.pad_before, win.pad_after) == (0, 0)


# (n, k, s, d, (before, after)) -> out, by hand: (n + before + after - k_eff) // s + 1
EXPLICIT_TABLE = [
    ((5, 3, 2, 1, (1, 1)), 3),
    ((4, 3, 1, 1, (2, 0)), 4),
    ((3, 5, 1, 1, (1, 1)), 1),
    ((6, 2, 2, 2, (0, 3)), 4),
    ((5, 3, 1, 1, (0, 0)), 3),
]


@pytest.mark.parametrize("args, out", EXPLICIT_TABLE, ids=[str(a) for a, _ in EXPLICIT_TABLE])
def test_window_explicit_table(args, out):
    n, k, s, d, pads = args
    win = window("conv2d", n, k, s, d, pads)
    assert win.out == out
    assert (win.pad_before, win.pad_after) == pads


@pytest.mark.parametrize(
    "n, k, s, d, padding",
    [(3, 4, 1, 1, "VALID"), (4, 3, 1, 2, "VALID"), (2, 5, 1, 1, (1, 1)), (1, 2, 3, 1, "VALID"), (3, 2, 1, 4, (0, 1))],
)
def test_window_kernel_larger_than_padded_input_raises(n, k, s, d, padding):
    k_eff = (k - 1) * d + 1
    assert_value_error(lambda: window("conv2d", n, k, s, d, padding), "conv2d", f"effective kernel size {k_eff}")


def test_window_effective_kernel_property():
    assert window("op", 9, 3, 1, 3, "VALID").effective_kernel == 7
    assert Window(5, 3, 1, 1, 0, 0, 3).effective_kernel == 3


def test_windows_applies_name_to_every_axis_and_pairs_per_axis():
    same = windows("conv2d", (5, 6), (3, 3), (2, 2), (1, 1), "SAME")
    assert [(w.out, w.pad_before, w.pad_after) for w in same] == [(3, 1, 1), (3, 0, 1)]
    explicit = windows("conv2d", (5, 4), (3, 3), (2, 1), (1, 1), ((1, 1), (2, 0)))
    assert [(w.out, w.pad_before, w.pad_after) for w in explicit] == [(3, 1, 1), (4, 2, 0)]


# --- transpose_output_sizes -----------------------------------------------------------------


def accepted_by_forward_conv(n, k, s, d, padding, limit=60):
    accepted = set()
    for m in range(0, limit + 1):
        try:
            if window("op", m, k, s, d, padding).out == n:
                accepted.add(m)
        except ValueError:
            pass
    return accepted


@pytest.mark.parametrize("padding", ["SAME", "VALID", (0, 0), (1, 0), (0, 2), (2, 3), (6, 6)], ids=repr)
def test_transpose_output_sizes_brute_force(padding):
    for n, k, s, d in itertools.product(range(0, 7), range(1, 5), range(1, 5), range(1, 4)):
        got = transpose_output_sizes(n, k, s, d, padding)
        assert isinstance(got, range)
        assert got.step == 1
        assert len(got) <= s
        assert all(m <= 60 for m in got)  # so the brute force below sees all of them
        assert set(got) == accepted_by_forward_conv(n, k, s, d, padding), (n, k, s, d, padding)


def test_transpose_output_sizes_hand_values():
    assert transpose_output_sizes(3, 3, 2, 1, "SAME") == range(5, 7)
    assert transpose_output_sizes(3, 3, 2, 1, "VALID") == range(7, 9)
    assert transpose_output_sizes(3, 3, 1, 1, "VALID") == range(5, 6)
    assert transpose_output_sizes(3, 3, 2, 1, (1, 1)) == range(5, 7)
    assert len(transpose_output_sizes(1, 1, 1, 1, (5, 5))) == 0  # padding alone gives 11 outputs
    # An empty input: SAME maps an empty output (and only that) onto it, as TensorFlow's Eigen kernel accepts;
    # VALID maps nothing onto it (a window needs k_eff pixels).
    assert transpose_output_sizes(0, 3, 2, 1, "SAME") == range(0, 1)
    assert len(transpose_output_sizes(0, 3, 2, 1, "VALID")) == 0
