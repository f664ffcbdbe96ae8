"""Special values: names resolved per dtype, placements, the reference's IEEE semantics against naive loops, the
exact comparison of non-finite values, and the subnormal-flushing facts and features."""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest

from harness import ops
from harness.conv import reference
from harness.conv.dtypes import dtype_of
from harness.conv.padding import window
from harness.conv.tolerance import Bound, bound_for, compare
from harness.registry import special, special_features
from harness.registry.cases import CaseError, operand_arrays, parse_case
from harness.tf.environment import Environment, Probe, describe

FLOATS = ("float16", "bfloat16", "float32", "float64")


def conv2d_case(special_field=None, case_special=None, attrs=None, dtypes=("float32",), x=(1, 6, 6, 2), w=(3, 3, 2, 2)):
    raw = {
        "name": "c",
        "op": "conv2d",
        "attrs": attrs or {"strides": 2, "padding": "VALID"},
        "inputs": {
            "input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": list(x)}},
            "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": list(w)}},
        },
        "dtypes": list(dtypes),
    }
    if special_field is not None:
        raw["inputs"]["input"]["special"] = special_field
    if case_special is not None:
        raw["special"] = case_special
    return parse_case("cases/mine.yaml", raw, 0)


# --- value names, per dtype -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
def test_every_value_name_is_exact_in_its_dtype(dtype):
    dt = dtype_of(dtype)
    info = ml_dtypes.finfo(dt)
    for name in special.VALUES:
        v = special.resolve(name, dt)
        back = float(np.array([v]).astype(dt).astype(np.float64)[0])
        assert back == v or (np.isnan(v) and np.isnan(back)), (name, v, back)
    assert special.resolve("max", dt) == float(info.max) == special.resolve("overflow", dt)
    assert special.resolve("-max", dt) == -float(info.max)
    assert special.resolve("min_normal", dt) == float(info.smallest_normal)
    sub = special.resolve("subnormal", dt)
    assert 0 < sub < float(info.smallest_normal) and sub == float(info.smallest_normal) / 2
    assert special.resolve("smallest_subnormal", dt) == float(info.smallest_subnormal)
    assert np.signbit(special.resolve("-0.0", dt)) and special.resolve("-0.0", dt) == 0


def test_value_names_per_dtype_are_the_ieee_figures():
    assert special.resolve("max", np.float16) == 65504.0
    assert special.resolve("min_normal", np.float16) == 2.0**-14
    assert special.resolve("smallest_subnormal", np.float16) == 2.0**-24
    assert special.resolve("max", ml_dtypes.bfloat16) == (2 - 2.0**-7) * 2.0**127
    assert special.resolve("smallest_subnormal", ml_dtypes.bfloat16) == 2.0**-133
    assert special.resolve("subnormal", np.float32) == 2.0**-127
    assert special.resolve("smallest_subnormal", np.float64) == 5e-324
    with pytest.raises(ValueError, match="not a floating-point type"):
        special.resolve("nan", np.int32)


# --- the YAML fields and their errors ------------------------------------------------------------


@pytest.mark.parametrize(
    "field, case_field, message",
    [
        ({"value": "nope", "at": "window"}, "inputs.input.special.value", "unknown special value 'nope'"),
        ({"value": "nan", "at": "inside"}, "inputs.input.special.at", "unknown placement 'inside'"),
        ({"value": "zeros", "at": "window"}, "inputs.input.special.at", "give at: all"),
        ({"value": "nan", "at": "padding"}, "inputs.input.special.at", "only a filter tap reads the padding"),
        ({"value": "nan", "at": {"index": [0, 1]}}, "inputs.input.special.at.index", "must be 4 non-negative ints"),
        ({"value": "nan"}, "inputs.input.special.at", "missing field"),
        ({"value": "nan", "at": "all", "where": 1}, "inputs.input.special.where", "unknown field"),
        ("nan", "inputs.input.special", "must be a mapping"),
    ],
)
def test_a_malformed_special_field_names_file_case_and_field(field, case_field, message):
    with pytest.raises(CaseError) as err:
        conv2d_case(field)
    assert (err.value.file, err.value.case, err.value.field) == ("cases/mine.yaml", "c", case_field)
    assert message in err.value.message


def test_a_special_value_needs_a_floating_dtype():
    with pytest.raises(CaseError, match="special values need floating-point dtypes") as err:
        conv2d_case({"value": "nan", "at": "all"}, dtypes=("int32",))
    assert err.value.field == "inputs.input.special"


def test_yaml_numbers_name_their_values():
    for number, name in ((float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf"), (-0.0, "-0.0")):
        assert conv2d_case({"value": number, "at": "all"}).inputs["input"].special.value == name
    with pytest.raises(CaseError, match="unknown special value 1.5"):
        conv2d_case({"value": 1.5, "at": "all"})


def test_a_placement_the_geometry_lacks_is_an_error_of_the_field():
    case = conv2d_case({"value": "nan", "at": "unread"}, attrs={"strides": 1, "padding": "SAME"})
    with pytest.raises(CaseError) as err:
        operand_arrays(case, "float32")
    assert err.value.field == "inputs.input.special.at" and "no element that no output reads" in err.value.message


def test_the_case_level_field_names_an_operand_by_role_or_name():
    by_role = conv2d_case(case_special={"operand": "filter", "value": "inf", "at": "window"})
    by_name = conv2d_case(case_special={"operand": "filters", "value": "inf", "at": "window"})
    assert by_role == by_name and by_role.inputs["filters"].special == special.Special("inf", "window")
    with pytest.raises(CaseError, match="has no operand 'weights'") as err:
        conv2d_case(case_special={"operand": "weights", "value": "inf", "at": "window"})
    assert err.value.field == "special.operand"
    with pytest.raises(CaseError) as err:
        conv2d_case(case_special={"operand": "data", "value": "inf", "at": "nowhere"})
    assert err.value.field == "special.at"
    with pytest.raises(CaseError, match="its own special field already"):
        conv2d_case({"value": "nan", "at": "all"}, case_special={"operand": "data", "value": "inf", "at": "window"})


# --- placements -------------------------------------------------------------------------------


def _arrays_and_reference(case, dtype="float32"):
    arrays = operand_arrays(case, dtype)
    with np.errstate(all="ignore"):
        out = reference.conv2d(arrays["input"], arrays["filters"], **case.attrs)
    return arrays, out.astype(np.float64)


def test_unread_nan_does_not_leak():
    arrays, out = _arrays_and_reference(conv2d_case({"value": "nan", "at": "unread"}))
    (where,) = np.argwhere(np.isnan(arrays["input"])).tolist()
    assert where[1] == 5 or where[2] == 5  # stride 2 VALID over 6 pixels: row and column 5 are skipped
    assert np.isfinite(out).all()


def test_window_nan_reaches_the_outputs_that_read_it():
    arrays, out = _arrays_and_reference(conv2d_case({"value": "nan", "at": "window"}))
    _, h, w, _ = np.argwhere(np.isnan(arrays["input"]))[0]
    readers = {(i, j) for i in range(2) for j in range(2) if 2 * i <= h <= 2 * i + 2 and 2 * j <= w <= 2 * j + 2}
    assert readers and {tuple(ij) for ij in np.argwhere(np.isnan(out[0, :, :, 0]))} == readers


def test_zero_weight_zeroes_every_tap_that_reads_the_pixel_and_nan_times_zero_is_nan():
    arrays, out = _arrays_and_reference(conv2d_case({"value": "inf", "at": "zero_weight"}))
    _, h, w, c = np.argwhere(np.isinf(arrays["input"]))[0]
    for i, j in itertools.product(range(2), range(2)):
        t = (h - 2 * i, w - 2 * j)
        if 0 <= t[0] < 3 and 0 <= t[1] < 3:
            assert (arrays["filters"][t[0], t[1], c, :] == 0).all()
            assert np.isnan(out[0, i, j, :]).all()  # inf * 0
    assert not np.isinf(out).any()


def test_padding_places_a_filter_tap_that_reads_padding_and_zero_padding_times_inf_is_nan():
    case = parse_case(
        "cases/mine.yaml",
        {
            "name": "p",
            "op": "conv2d",
            "attrs": {"strides": 1, "padding": "SAME"},
            "inputs": {
                "input": {"layout": "NHWC", "value": np.ones((1, 4, 4, 1)).tolist()},
                "filters": {"layout": "HWIO", "value": np.ones((3, 3, 1, 1)).tolist()},
            },
            "special": {"operand": "filter", "value": "inf", "at": "padding"},
        },
        0,
    )
    arrays = operand_arrays(case, "float32")
    (tap,) = np.argwhere(np.isinf(arrays["filters"])).tolist()
    assert tap[:2] != [1, 1]  # the centre tap never reads padding
    with np.errstate(all="ignore"):
        out = reference.conv2d(arrays["input"], arrays["filters"], 1, "SAME")[0, :, :, 0]
    for i, j in itertools.product(range(4), range(4)):
        reads_padding = not (0 <= i + tap[0] - 1 < 4 and 0 <= j + tap[1] - 1 < 4)
        assert np.isnan(out[i, j]) if reads_padding else out[i, j] == np.inf, (i, j, out)


def test_overflow_makes_every_product_it_enters_overflow():
    arrays, out = _arrays_and_reference(conv2d_case({"value": "overflow", "at": "window"}), "float16")
    _, h, w, c = np.argwhere(arrays["input"] == np.float16(65504))[0]
    met = arrays["filters"][:, :, c, :]
    assert set(np.abs(met[met != 0].astype(np.float64)).tolist()) >= {2.0}
    assert np.isinf(out).any() and not np.isnan(out).any()


def test_an_explicit_index_is_in_the_declared_layout():
    raw = {
        "name": "i",
        "op": "conv2d",
        "attrs": {"strides": 1, "padding": "VALID"},
        "inputs": {
            "input": {
                "layout": "CHW",
                "generate": {"dist": "normal", "shape": [2, 4, 5]},
                "special": {"value": "-inf", "at": {"index": [1, 2, 3]}},
            },
            "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": [3, 3, 2, 2]}},
        },
    }
    arrays = operand_arrays(parse_case("cases/mine.yaml", raw, 0), "float32")
    assert np.argwhere(np.isinf(arrays["input"])).tolist() == [[0, 2, 3, 1]]  # CHW [1, 2, 3] -> NHWC
    raw["inputs"]["input"]["special"]["at"]["index"] = [2, 0, 0]
    with pytest.raises(CaseError, match="outside the operand's shape"):
        operand_arrays(parse_case("cases/mine.yaml", raw, 0), "float32")


def test_zeros_and_all():
    arrays, out = _arrays_and_reference(conv2d_case({"value": "zeros", "at": "all"}))
    assert not arrays["input"].any() and not out.any() and not np.signbit(out).any()
    arrays, out = _arrays_and_reference(conv2d_case({"value": "-0.0", "at": "all"}))
    assert np.signbit(arrays["input"]).all()
    assert not out.any() and not np.signbit(out).any()  # a zero sum is +0.0 (docs/cases.md)


# --- the reference's IEEE semantics, against naive loops --------------------------------------


def naive_conv2d(x, w, stride, pads, dilation=1):
    """The padded definition term by term in float64: padding pixels are zero terms."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    xp = np.zeros((n, h + pads[0][0] + pads[0][1], wd + pads[1][0] + pads[1][1], c))
    xp[:, pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + wd] = x
    oh = (xp.shape[1] - (kh - 1) * dilation - 1) // stride + 1
    ow = (xp.shape[2] - (kw - 1) * dilation - 1) // stride + 1
    out = np.zeros((n, oh, ow, o))
    with np.errstate(all="ignore"):
        for b, i, j, q in itertools.product(range(n), range(oh), range(ow), range(o)):
            terms = [
                xp[b, i * stride + a * dilation, j * stride + e * dilation, k] * w[a, e, k, q]
                for a in range(kh)
                for e in range(kw)
                for k in range(c)
            ]
            out[b, i, j, q] = sum(terms, 0.0)
    return out


def naive_conv2d_transpose(y, w, stride, pad_before, out_hw):
    """The adjoint term by term: y[o] * w[t] lands on output o * s + t - pad (no padding terms)."""
    n, ih, iw, ci = y.shape
    kh, kw, co, _ = w.shape
    out = np.zeros((n, *out_hw, co))
    with np.errstate(all="ignore"):
        terms: dict = {}
        for b, i, j, k, a, e, q in itertools.product(
            range(n), range(ih), range(iw), range(ci), range(kh), range(kw), range(co)
        ):
            r, s = i * stride + a - pad_before[0], j * stride + e - pad_before[1]
            if 0 <= r < out_hw[0] and 0 <= s < out_hw[1]:
                terms.setdefault((b, r, s, q), []).append(y[b, i, j, k] * w[a, e, q, k])
        for key, ts in terms.items():
            out[key] = sum(ts, 0.0)
    return out


def same_ieee(got, want):
    """The same NaN positions and infinities; finite values close."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (got, want)
    assert np.array_equal(got[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-300)
    assert np.isfinite(got[finite]).all()


def _sprinkle(a, rng, values=(np.nan, np.inf, -np.inf, 0.0, -0.0)):
    a = a.copy()
    for v in values:
        a.reshape(-1)[rng.integers(a.size)] = v
    return a


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding",
    [
        ((1, 5, 5, 2), (3, 3, 2, 3), 1, "SAME"),  # the blocked im2col path
        ((2, 4, 4, 3), (1, 1, 3, 1), 1, "VALID"),  # pointwise: one matrix product, one output channel
        ((1, 2, 2, 3), (2, 2, 3, 9), 1, "SAME"),  # more output channels than output pixels: the filter-blocked path
        ((1, 7, 6, 1), (3, 2, 1, 1), 2, "SAME"),  # one input and one output channel: matrix-vector shapes
        ((3, 1, 1, 1), (1, 1, 1, 1), 1, "VALID"),  # one term per output
    ],
)
def test_the_reference_conv2d_has_the_ieee_semantics_of_the_padded_sum(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(sum(x_shape) * 31 + sum(w_shape))
    for trial in range(6):
        x = rng.normal(size=x_shape)
        w = rng.normal(size=w_shape)
        x, w = (_sprinkle(x, rng), w) if trial % 2 else (x, _sprinkle(w, rng))
        if trial == 4:
            w[..., 0, :] = 0.0  # inf * 0 through whole taps
            x = _sprinkle(x, rng, (np.inf,))
        wins = [window("conv2d", x_shape[1 + a], w_shape[a], stride, 1, padding) for a in range(2)]
        pads = [(win.pad_before, win.pad_after) for win in wins]
        with np.errstate(all="ignore"):
            got = reference.conv2d(x, w, stride, padding)
        same_ieee(got, naive_conv2d(x, w, stride, pads))


def test_the_reference_depthwise_and_conv1d_and_transpose_have_the_ieee_semantics():
    rng = np.random.default_rng(5)
    for trial in range(8):
        x, w = rng.normal(size=(1, 5, 6, 2)), rng.normal(size=(3, 3, 2, 1))
        x, w = (_sprinkle(x, rng), w) if trial % 2 else (x, _sprinkle(w, rng))
        with np.errstate(all="ignore"):
            got = reference.depthwise_conv2d(x, w, [1, 2, 2, 1], "SAME")
        want = np.concatenate(
            [naive_conv2d(x[..., c : c + 1], w[:, :, c : c + 1, :], 2, [(1, 1), (0, 1)]) for c in range(2)], -1
        )
        same_ieee(got, want)
        x1, w1 = rng.normal(size=(2, 9, 2)), rng.normal(size=(3, 2, 2))
        x1, w1 = (_sprinkle(x1, rng), w1) if trial % 2 else (x1, _sprinkle(w1, rng))
        with np.errstate(all="ignore"):
            got = reference.conv1d(x1, w1, 2, "SAME")
        same_ieee(got, naive_conv2d(x1[:, None], w1[None], 2, [(0, 0), (1, 1)])[:, 0])
        y, wt = rng.normal(size=(1, 3, 3, 2)), rng.normal(size=(3, 3, 2, 2))
        y, wt = (_sprinkle(y, rng), wt) if trial % 2 else (y, _sprinkle(wt, rng))
        with np.errstate(all="ignore"):
            got = reference.conv2d_transpose(y, wt, [1, 7, 7, 2], 3, "SAME")
        win = window("conv2d", 7, 3, 3, 1, "SAME")
        same_ieee(got, naive_conv2d_transpose(y, wt, 3, (win.pad_before, win.pad_before), (7, 7)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_sum_beyond_the_dtype_is_an_infinity_after_the_final_cast(dtype):
    dt = dtype_of(dtype)
    big = float(ml_dtypes.finfo(dt).max)
    x = np.full((1, 1, 2, 1), big).astype(dt)
    w = np.ones((1, 2, 1, 1)).astype(dt)
    assert reference.conv2d(x, w, 1, "VALID").astype(np.float64).ravel().tolist() == [np.inf]
    w[0, 1] = -1
    assert reference.conv2d(x, w, 1, "VALID").astype(np.float64).ravel().tolist() == [0.0]  # exact: max - max


# --- comparing non-finite values ------------------------------------------------------------------


def _bound(shape, value=1e-3) -> Bound:
    return Bound(np.full(shape, value), False, 2.0, 2.0**-24, None)


@pytest.mark.parametrize(
    "want, got, ok",
    [
        (np.nan, np.nan, True),
        (np.inf, np.inf, True),
        (-np.inf, -np.inf, True),
        (0.0, -0.0, True),
        (-0.0, 0.0, True),
        (np.nan, 0.0, False),  # a compare that treats NaN as equal to anything passes this
        (np.nan, 5.0, False),
        (5.0, np.nan, False),
        (np.nan, np.inf, False),
        (np.inf, np.nan, False),
        (np.inf, -np.inf, False),  # a compare that ignores the sign of infinity passes this
        (-np.inf, np.inf, False),
        (np.inf, 3.4e38, False),
        (1.0, np.inf, False),
        (1.0, -np.inf, False),
    ],
)
def test_non_finite_values_compare_exactly(want, got, ok):
    w = np.array([[1.0, want]], np.float32)
    g = np.array([[1.0, got]], np.float32)
    assert compare("tf", g, "reference", w, _bound(w.shape)).ok is ok


def test_the_detail_says_which_elements_disagreed_and_how():
    w = np.zeros((1, 2, 2, 1), np.float32)
    w[0, 1, 1, 0] = np.nan
    w[0, 0, 1, 0] = np.inf
    g = np.zeros_like(w)
    g[0, 0, 1, 0] = -np.inf
    c = compare("tensorflow", g, "reference", w, _bound(w.shape))
    assert not c.ok and c.margin == np.inf
    assert "NaN expected, got 0.0 at [0, 1, 1, 0]" in c.detail
    assert "inf expected, got -inf at [0, 0, 1, 0]" in c.detail
    assert "2 non-finite disagreement(s)" in c.detail


def test_finite_elements_keep_their_finite_bound_beside_non_finite_ones():
    w = np.array([np.nan, 1.0, np.inf], np.float64)
    assert compare("t", np.array([np.nan, 1.0005, np.inf]), "r", w, _bound(3)).ok
    assert not compare("t", np.array([np.nan, 1.01, np.inf]), "r", w, _bound(3)).ok


def test_the_bound_is_finite_and_from_the_finite_parts():
    x = np.ones((1, 3, 3, 1), np.float32)
    x[0, 1, 1, 0] = np.nan
    w = np.ones((3, 3, 1, 1), np.float32)
    w[0, 0, 0, 0] = np.inf
    b = bound_for(reference.conv2d, {"input": x, "filters": w}, {"strides": 1, "padding": "SAME"}, np.float32)
    assert np.isfinite(b.per_element).all() and b.overflow is None
    clean = bound_for(
        reference.conv2d,
        {"input": np.where(np.isfinite(x), x, 0), "filters": np.where(np.isfinite(w), w, 0)},
        {"strides": 1, "padding": "SAME"},
        np.float32,
    )
    np.testing.assert_array_equal(b.per_element, clean.per_element)


def test_gradual_underflow_adds_k_plus_one_smallest_subnormals():
    x = np.full((1, 1, 3, 1), 2.0**-130, np.float32)  # subnormal
    w = np.full((1, 3, 1, 1), 0.5, np.float32)
    b = bound_for(reference.conv2d, {"input": x, "filters": w}, {"strides": 1, "padding": "VALID"}, np.float32)
    s = 2.0**-149
    relative = 2 * 2.0**-24 * 3 * (3 * 2.0**-131)
    assert b.per_element.ravel()[0] == pytest.approx(relative + 2 * 4 * s / 2, rel=1e-12)
    # elements without nonzero terms get nothing
    zero = bound_for(
        reference.conv2d, {"input": np.zeros_like(x), "filters": w}, {"strides": 1, "padding": "VALID"}, np.float32
    )
    assert not zero.per_element.any()


def test_a_partial_sum_that_can_overflow_the_dtype_allows_its_infinities_only():
    big = float(np.finfo(np.float16).max)
    x = np.array([[[[big], [big], [-big], [1.0]]]], np.float16)  # exact sum 65505: 65504 in float16
    w = np.ones((1, 4, 1, 1), np.float16)
    attrs = {"strides": 1, "padding": "VALID"}
    b = bound_for(reference.conv2d, {"input": x, "filters": w}, attrs, np.float16)
    ref = reference.conv2d(x, w, **attrs)
    assert np.isfinite(ref.astype(np.float64)).all() and b.overflow is not None
    assert b.overflow.ravel().tolist() == [3]  # both signs' partial sums reach the range
    for got in (np.inf, -np.inf, np.nan):  # a float16 accumulator in some order
        assert compare("t", np.full_like(ref, got), "r", ref, b).ok
    # the negative terms alone cannot overflow: -inf and NaN are not allowed
    x2 = np.array([[[[big], [big], [-1.0], [1.0]]]], np.float16)
    b2 = bound_for(reference.conv2d, {"input": x2, "filters": w}, attrs, np.float16)
    ref2 = reference.conv2d(x2, w, **attrs)  # exact 2 * 65504: +inf
    assert b2.overflow.ravel().tolist() == [1]
    assert compare("t", np.full_like(ref2, np.inf), "r", ref2, b2).ok
    assert not compare("t", np.full_like(ref2, np.nan), "r", ref2, b2).ok
    assert not compare("t", np.full_like(ref2, -np.inf), "r", ref2, b2).ok
    assert not compare("t", np.full_like(ref2, 1.0), "r", ref2, b2).ok  # finite, far from the threshold


def test_a_finite_result_near_the_threshold_is_right_where_the_reference_overflowed():
    big = float(np.finfo(np.float16).max)
    x = np.array([[[[big], [32.0]]]], np.float16)  # exact 65536: rounds to inf in float16
    w = np.ones((1, 2, 1, 1), np.float16)
    attrs = {"strides": 1, "padding": "VALID"}
    b = bound_for(reference.conv2d, {"input": x, "filters": w}, attrs, np.float16)
    ref = reference.conv2d(x, w, **attrs)
    assert ref.astype(np.float64).ravel().tolist() == [np.inf]
    assert compare("t", np.full_like(ref, big), "r", ref, b).ok  # 65520 - 65504 = 16 <= bound (2 * 2**-11 * 2 * 65536)
    assert not compare("t", np.full_like(ref, -big), "r", ref, b).ok
    assert not compare("t", np.full_like(ref, 60000.0), "r", ref, b).ok


# --- subnormal flushing: the measured fact and the features -----------------------------------


def _env(flushes, onednn=True) -> Environment:
    paths = {f"{k}/{d}/{p}": "onednn" for k in ("Conv2D",) for d in FLOATS for p in ("named", "explicit")}
    return Environment("2.21.0", onednn, None, None, Probe(paths=paths, flushes=flushes))


def test_the_environment_knows_which_kernels_flush():
    env = _env(
        {
            "Conv2D/float32/named": {"inputs": True, "results": False},
            "Conv2D/float16/named": {"inputs": False, "results": False},
        }
    )
    assert env.flushes_subnormals(["Conv2D"], "float32", "named") is True
    assert env.flushes_subnormals(["Conv2D"], "float16", "named") is False
    assert env.flushes_subnormals(["Conv2D"], "float64", "named") is None  # not measured: unknown
    assert Environment("2.21.0", True).flushes_subnormals(["Conv2D"], "float32", "named") is None
    partly = _env({"Conv2D/float32/named": {"inputs": False, "results": "partly: 3 of 9 outputs zero"}})
    assert partly.flushes_subnormals(["Conv2D"], "float32", "named") is None


def test_the_flushing_facts_are_recorded_and_described():
    env = _env({"Conv2D/float32/named": {"inputs": True, "results": True}})
    again = Environment.from_record(env.record())
    assert again.probe.flushes == env.probe.flushes
    assert any("subnormals" in line for line in describe(env))
    assert any(
        line.strip().startswith("float32") and "inputs flushed, results flushed" in line for line in describe(env)
    )
    old = dict(env.record()["probe"])
    del old["flushes"]
    assert Probe.from_record(old).flushes == {}


def _features(case, dtype, env):
    from harness.check.prepare import prepare

    return prepare(case, dtype).features(env)


def test_flushing_changes_result_where_subnormals_matter_and_only_there():
    flushing = _env(
        {f"Conv2D/{d}/{p}": {"inputs": True, "results": True} for d in FLOATS for p in ("named", "explicit")}
    )
    subnormal = conv2d_case({"value": "subnormal", "at": "all"})
    assert _features(subnormal, "float32", flushing)["flushing_changes_result"] is True
    one_pixel = conv2d_case({"value": "subnormal", "at": "window"})  # invisible under the bound of the other terms
    assert _features(one_pixel, "float32", flushing)["flushing_changes_result"] is False
    plain = conv2d_case()
    feats = _features(plain, "float32", flushing)
    assert feats["tf_flushes_subnormals"] is True and feats["flushing_changes_result"] is False
    assert _features(subnormal, "float32", Environment("2.21.0", True))["flushing_changes_result"] is None
    # products below the smallest normal value are flushed too: min_normal times weights below 1
    assert _features(conv2d_case({"value": "min_normal", "at": "all"}), "float32", flushing)["flushing_changes_result"]


def test_padding_makes_nan_only_where_the_padding_alone_makes_it():
    spec = ops.get("conv2d")
    x = np.ones((1, 4, 4, 1))
    w = np.ones((3, 3, 1, 1))
    w[0, 0, 0, 0] = np.inf
    attrs = {"strides": 1, "padding": "SAME"}
    with np.errstate(all="ignore"):
        ref = reference.conv2d(x, w, **attrs)
    assert special_features.padding_makes_nan(spec, {"input": x, "filters": w}, attrs, ref)
    without = special_features.nan_without_padding(spec, x, w, attrs)
    assert not without.any()  # inf * 1 everywhere a real pixel is read
    w[0, 0, 0, 0] = np.nan
    with np.errstate(all="ignore"):
        ref = reference.conv2d(x, w, **attrs)
    # NaN * real pixel is NaN wherever the tap reads a pixel; at padding-only reads the padding alone makes it
    assert special_features.padding_makes_nan(spec, {"input": x, "filters": w}, attrs, ref)
    w[:] = np.nan
    with np.errstate(all="ignore"):
        ref = reference.conv2d(x, w, **attrs)
    assert not special_features.padding_makes_nan(spec, {"input": x, "filters": w}, attrs, ref)
    assert not special_features.padding_makes_nan(spec, {"input": x, "filters": np.ones_like(w)}, attrs, ref)


def test_the_report_shows_the_subnormal_facts():
    from harness.reports.report import render_machine_environment

    env = _env({"Conv2D/float32/named": {"inputs": True, "results": True}}).record()
    html = render_machine_environment(env)
    assert "Subnormals, measured per dtype and kernel path" in html and "inputs flushed, results flushed" in html


def test_overflow_everywhere_makes_the_other_operand_plus_or_minus_two():
    arrays, _ = _arrays_and_reference(conv2d_case({"value": "overflow", "at": "all"}))
    assert set(np.abs(arrays["filters"].astype(np.float64)).ravel().tolist()) == {2.0}
    assert (arrays["input"] == np.float32(np.finfo(np.float32).max)).all()


def test_the_reference_uses_no_blas_call_that_drops_nan():
    """np.dot and np.tensordot of an (m, 1) by a (1, 1) matrix return 0 for inf * 0 (measured, OpenBLAS 0.3.31: the
    BLAS skips the zero factor); np.matmul and non-optimized einsum keep NaN. The reference must use only the latter
    (its IEEE semantics are tested against naive loops above)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(reference))
    called = {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not called & {"dot", "tensordot", "vdot", "inner"}
    optimized = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "einsum"
        and any(k.arg == "optimize" for k in node.keywords)
    ]
    assert not optimized
    with np.errstate(all="ignore"):
        a, b = np.array([[np.inf], [1.0]]), np.array([[0.0]])
        assert np.isnan((a @ b)[0, 0]) and np.isnan(np.einsum("mk,kn->mn", a, b)[0, 0])
