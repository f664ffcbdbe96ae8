"""The tolerance rule (harness/conv/tolerance.py): ``bound_for`` and ``compare``.

The op passed to ``bound_for`` is always a NumPy reference kernel from
harness.conv.reference, so nothing here needs TensorFlow.

    bound = c * u(dtype) * K * (|x| (*) |w|)      per output element
"""

import numpy as np
import pytest

from harness.conv import reference
from harness.conv.dtypes import unit_roundoff
from harness.conv.tolerance import C_DEFAULT, Bound, Override, bound_for, compare

SAME = {"strides": 1, "padding": "SAME"}
VALID = {"strides": 1, "padding": "VALID"}


def conv2d_bound(x_nhwc, w_hwio, attrs=SAME, override=None):
    return bound_for(reference.conv2d, {"input": x_nhwc, "filters": w_hwio}, attrs, x_nhwc.dtype, override)


def magnitudes(x_nhwc, w_hwio, attrs=SAME):
    """|x| (*) |w| in float64, the sum of the magnitudes of the terms of each output element."""
    return reference.conv2d(np.abs(x_nhwc.astype(np.float64)), np.abs(w_hwio.astype(np.float64)), **attrs)


def fixed_bound(per_element) -> Bound:
    """A bound with chosen per-element values, to test ``compare`` on its own."""
    return Bound(np.asarray(per_element, np.float64), False, C_DEFAULT, 2.0**-24, None)


# --- exact equality for integer-valued inputs --------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_small_integer_inputs_are_compared_exactly(dtype):
    x_nhwc = np.array([1, -2, 3, 0, 2, 1, -1, 3, 2], dtype).reshape(1, 3, 3, 1)
    w_hwio = np.array([1, 0, -1, 2], dtype).reshape(2, 2, 1, 1)
    bound = conv2d_bound(x_nhwc, w_hwio)

    assert bound.exact
    assert bound.per_element.shape == (1, 3, 3, 1)
    assert not bound.per_element.any()
    assert "exact" in bound.describe()

    ref = reference.conv2d(x_nhwc, w_hwio, **SAME)
    assert compare("same", ref.copy(), "reference", ref, bound).ok
    off_by_one_ulp = ref.copy()
    off_by_one_ulp[0, 1, 1, 0] = np.nextafter(ref[0, 1, 1, 0], dtype(np.inf))
    result = compare("impl", off_by_one_ulp, "reference", ref, bound)
    assert not result.ok and result.margin == np.inf


def test_float16_integer_sums_above_2_to_the_11_are_not_exact():
    # 16 channels of 100 * 2: every output sums 16 terms of 200, |x|*|w| = 3200 > 2**11 = 2048
    x_nhwc = np.full((1, 2, 2, 16), 100, np.float16)
    w_hwio = np.full((1, 1, 16, 1), 2, np.float16)
    bound = conv2d_bound(x_nhwc, w_hwio, VALID)

    assert not bound.exact
    assert bound.u == 2.0**-11
    np.testing.assert_allclose(bound.per_element, C_DEFAULT * 2.0**-11 * 16 * 3200.0)
    # the same integers in float32 are far below 2**24: exact
    assert conv2d_bound(x_nhwc.astype(np.float32), w_hwio.astype(np.float32), VALID).exact


@pytest.mark.parametrize("channels, exact", [([1024, 1024], True), ([1024, 1025], False)])
def test_float16_exactness_limit_is_2048_inclusive(channels, exact):
    x_nhwc = np.array(channels, np.float16).reshape(1, 1, 1, 2)
    w_hwio = np.ones((1, 1, 2, 1), np.float16)
    assert conv2d_bound(x_nhwc, w_hwio, VALID).exact is exact


def test_bfloat16_exactness_limit_is_256():
    import ml_dtypes

    w_hwio = np.ones((1, 1, 2, 1), ml_dtypes.bfloat16)
    assert conv2d_bound(np.array([128, 128], ml_dtypes.bfloat16).reshape(1, 1, 1, 2), w_hwio, VALID).exact
    assert not conv2d_bound(np.array([128, 130], ml_dtypes.bfloat16).reshape(1, 1, 1, 2), w_hwio, VALID).exact


def test_int32_is_always_exact():
    x_nhwc = np.full((1, 3, 3, 8), 100_000, np.int32)
    w_hwio = np.full((3, 3, 8, 2), -1_000, np.int32)  # sums of magnitude 7.2e9, beyond any float mantissa
    bound = conv2d_bound(x_nhwc, w_hwio)
    assert bound.exact
    assert not bound.per_element.any()


def test_fractional_inputs_are_not_exact():
    x_nhwc = np.full((1, 3, 3, 1), 0.5, np.float32)
    w_hwio = np.ones((1, 1, 1, 1), np.float32)
    assert not conv2d_bound(x_nhwc, w_hwio).exact


# --- the per-element bound ---------------------------------------------------------------


def test_bound_is_zero_where_every_term_is_zero():
    # left two columns 0.1, right two columns 0: with a 1x2 kernel, output column 2 reads only zeros
    x_nhwc = np.zeros((1, 3, 4, 1), np.float32)
    x_nhwc[:, :, :2, :] = 0.1
    w_hwio = np.full((1, 2, 1, 1), 0.3, np.float32)
    bound = conv2d_bound(x_nhwc, w_hwio, VALID)

    assert bound.per_element.shape == (1, 3, 3, 1)
    assert (bound.per_element[..., :2, :] > 0).all()
    np.testing.assert_array_equal(bound.per_element[..., 2, :], 0.0)

    ref = reference.conv2d(x_nhwc, w_hwio, **VALID)
    tiny_elsewhere = ref.copy()
    tiny_elsewhere[0, 1, 2, 0] = 1e-30
    result = compare("impl", tiny_elsewhere, "reference", ref, bound)
    assert not result.ok
    assert result.margin == np.inf
    assert "index [0, 1, 2, 0]" in result.detail

    within = ref.copy()
    within[0, 1, 0, 0] = np.nextafter(ref[0, 1, 0, 0], np.float32(1))  # 1 ulp where the bound is positive
    assert compare("impl", within, "reference", ref, bound).ok


def k_map(x_nhwc, w_hwio, attrs=SAME):
    """K recovered from the bound: per_element / (c * u * |x|(*)|w|) with c = 1 by override."""
    bound = conv2d_bound(x_nhwc, w_hwio, attrs, Override("measure K", c=1))
    return bound.per_element / (unit_roundoff(x_nhwc.dtype) * magnitudes(x_nhwc, w_hwio, attrs))


def test_k_counts_only_the_taps_inside_the_image_for_same_padding():
    x_nhwc = np.full((1, 5, 5, 1), 0.5, np.float32)
    w_hwio = np.full((3, 3, 1, 1), 0.25, np.float32)
    k = k_map(x_nhwc, w_hwio)[0, :, :, 0]

    np.testing.assert_allclose(
        k,
        [
            [4, 6, 6, 6, 4],
            [6, 9, 9, 9, 6],
            [6, 9, 9, 9, 6],
            [6, 9, 9, 9, 6],
            [4, 6, 6, 6, 4],
        ],
        rtol=1e-12,
    )


def test_k_counts_every_input_channel():
    x_nhwc = np.full((1, 5, 5, 3), 0.5, np.float32)
    w_hwio = np.full((3, 3, 3, 2), 0.25, np.float32)
    k = k_map(x_nhwc, w_hwio)
    assert k[0, 0, 0, 0] == pytest.approx(4 * 3)  # corner: 2x2 taps in the image, 3 channels each
    assert k[0, 0, 2, 1] == pytest.approx(6 * 3)  # edge
    assert k[0, 2, 2, 1] == pytest.approx(9 * 3)  # centre


def test_k_for_valid_padding_is_the_full_kernel():
    x_nhwc = np.full((1, 5, 5, 1), 0.5, np.float32)
    w_hwio = np.full((3, 3, 1, 1), 0.25, np.float32)
    np.testing.assert_allclose(k_map(x_nhwc, w_hwio, VALID), 9.0, rtol=1e-12)


def test_default_bound_is_c_u_k_times_magnitudes():
    rng = np.random.default_rng(0)
    x_nhwc = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)
    w_hwio = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    bound = conv2d_bound(x_nhwc, w_hwio, VALID)

    assert (bound.c, bound.u) == (C_DEFAULT, 2.0**-24)
    np.testing.assert_allclose(bound.per_element, 2.0 * 2.0**-24 * 18 * magnitudes(x_nhwc, w_hwio, VALID), rtol=1e-12)


# --- overrides ---------------------------------------------------------------------------


def random_operands(dtype=np.float32):
    rng = np.random.default_rng(1)
    return rng.normal(size=(1, 5, 5, 2)).astype(dtype), rng.normal(size=(3, 3, 2, 2)).astype(dtype)


def test_override_c_replaces_the_default_c():
    x_nhwc, w_hwio = random_operands()
    default = conv2d_bound(x_nhwc, w_hwio)
    wider = conv2d_bound(x_nhwc, w_hwio, override=Override("Winograd on this shape", c=8))

    assert wider.c == 8
    np.testing.assert_allclose(wider.per_element, default.per_element * 8 / C_DEFAULT, rtol=1e-12)
    assert "c=8" in wider.describe() and "Winograd on this shape" in wider.describe()


def test_override_atol_adds_to_the_bound():
    x_nhwc, w_hwio = random_operands()
    default = conv2d_bound(x_nhwc, w_hwio)
    floored = conv2d_bound(x_nhwc, w_hwio, override=Override("denormals flushed", atol=1e-3))

    assert floored.c == C_DEFAULT
    np.testing.assert_allclose(floored.per_element, default.per_element + 1e-3, rtol=1e-12)
    assert "atol=0.001" in floored.describe()


def test_override_on_an_integer_case_replaces_exact_equality():
    x_nhwc = np.full((1, 3, 3, 1), 2, np.float32)
    w_hwio = np.ones((1, 1, 1, 1), np.float32)
    bound = conv2d_bound(x_nhwc, w_hwio, override=Override("reason", c=4, atol=0.5))

    assert not bound.exact
    np.testing.assert_allclose(bound.per_element, 4 * 2.0**-24 * 1 * 2 + 0.5)


# --- compare -----------------------------------------------------------------------------


def test_shape_mismatch_is_a_failure_with_detail():
    want = np.zeros((1, 3, 3, 1), np.float32)
    result = compare("impl", np.zeros((1, 2, 2, 1), np.float32), "reference", want, fixed_bound(np.ones_like(want)))
    assert not result.ok
    assert result.detail == "shape [1, 2, 2, 1] != [1, 3, 3, 1]"
    assert result.line().startswith("FAIL impl vs reference")


def test_dtype_mismatch_is_a_failure_with_detail():
    want = np.zeros((1, 2, 2, 1), np.float32)
    result = compare("impl", np.zeros((1, 2, 2, 1), np.float64), "reference", want, fixed_bound(np.ones_like(want)))
    assert not result.ok
    assert result.detail == "dtype float64 != float32"


def test_margin_is_the_largest_diff_over_bound():
    want = np.array([1.0, 2.0, 3.0, 4.0])
    got = want + np.array([0.0, 0.25, -0.125, 0.5])
    bound = fixed_bound([1.0, 1.0, 0.5, 2.0])  # ratios 0, 0.25, 0.25, 0.25
    result = compare("impl", got, "reference", want, bound)

    assert result.ok
    assert result.margin == 0.25
    assert result.max_abs_error == 0.5
    assert result.max_bound == 2.0
    assert result.max_rel_error == pytest.approx(0.125)


def test_diff_equal_to_the_bound_passes_and_above_fails():
    want = np.array([1.0, 1.0])
    bound = fixed_bound([0.5, 0.25])
    at_bound = compare("impl", np.array([1.5, 1.0]), "reference", want, bound)
    above = compare("impl", np.array([1.0, 1.5]), "reference", want, bound)

    assert at_bound.ok and at_bound.margin == 1.0
    assert not above.ok and above.margin == 2.0
    assert "worst at index [1]" in above.detail


def test_identical_outputs_have_margin_zero_even_with_zero_bound():
    want = np.arange(6.0).reshape(2, 3)
    result = compare("impl", want.copy(), "expected", want, fixed_bound(np.zeros_like(want)))
    assert result.ok and result.margin == 0.0 and result.detail == ""


def test_nan_in_both_at_the_same_place_passes():
    want = np.array([1.0, np.nan, 3.0])
    result = compare("impl", np.array([1.0, np.nan, 3.0]), "reference", want, fixed_bound([0.1, 0.1, 0.1]))
    assert result.ok and result.margin == 0.0


@pytest.mark.parametrize(
    "got, want",
    [
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]),
        ([1.0, 2.0, 3.0], [1.0, np.nan, 3.0]),
        ([np.nan, 2.0, 3.0], [1.0, np.nan, 3.0]),
    ],
    ids=["nan_in_got", "nan_in_want", "nan_in_different_places"],
)
def test_nan_in_only_one_fails(got, want):
    result = compare("impl", np.array(got), "reference", np.array(want), fixed_bound([0.1, 0.1, 0.1]))
    assert not result.ok
    assert result.margin == np.inf


def test_empty_outputs_match():
    empty = np.zeros((1, 0, 3, 2), np.float32)
    result = compare("impl", empty, "reference", empty.copy(), fixed_bound(np.zeros(empty.shape)))
    assert result.ok and result.detail == "empty output"


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning")
def test_equal_infinities_at_the_same_place_pass():
    # 60000 + 60000 overflows float16 (max 65504) to +inf in the reference; an implementation that agrees also gives +inf
    x_nhwc = np.full((1, 1, 1, 2), 60000, np.float16)
    w_hwio = np.ones((1, 1, 2, 1), np.float16)
    with np.errstate(over="ignore"):
        ref = reference.conv2d(x_nhwc, w_hwio, **VALID)
    assert np.isposinf(ref).all()
    bound = conv2d_bound(x_nhwc, w_hwio, VALID)
    with np.errstate(invalid="ignore"):
        result = compare("impl", ref.copy(), "reference", ref, bound)
    assert result.ok


# --- bit equality where the sums are exact (Bound.exact_in) -------------------------------------------------------


def test_the_quantum_is_the_largest_power_of_two_dividing_every_value():
    from harness.conv.tolerance import _quantum

    assert _quantum(np.array([1.5, 0.25, 3.0])) == 0.25
    assert _quantum(np.array([3.0, 6.0, 0.0])) == 1.0
    assert _quantum(np.array([12.0])) == 4.0
    assert _quantum(np.array([0.0])) == np.inf
    assert _quantum(np.array([2.0**-1074, 1.0])) == 2.0**-1074


def test_exact_in_zeroes_the_bound_where_every_partial_sum_fits_the_accumulator():
    import ml_dtypes

    rng = np.random.default_rng(3)
    bf16 = np.dtype(ml_dtypes.bfloat16)
    # multiples of 1/4 and 1/8 up to 20: 36-term sums up to 36 * 20 * 20 = 14400 quanta of 1/32, exact in float32
    # (2**24 quanta) but not in bfloat16 (2**8)
    x = (rng.integers(-80, 81, (1, 6, 6, 4)) / 4).astype(bf16)
    w = (rng.integers(-160, 161, (3, 3, 4, 2)) / 8).astype(bf16)
    bound = conv2d_bound(x, w)
    assert bound.quantum == 2.0**-5 and not bound.exact and (bound.per_element > 0).all()
    tight = bound.exact_in(np.float32)
    assert (tight.per_element == 0).all()
    # float32's exact sums rounded once are the reference's bits; bfloat16 summation is not
    exact = reference.conv2d(x.astype(np.float64), w.astype(np.float64), **SAME)
    once = exact.astype(np.float32).astype(bf16)
    assert compare("float32 sum", once, "reference", reference.conv2d(x, w, **SAME), tight).ok
    truncated = (exact.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32).astype(bf16)
    assert not compare("truncated", truncated, "reference", reference.conv2d(x, w, **SAME), tight).ok
    assert compare("truncated", truncated, "reference", reference.conv2d(x, w, **SAME), bound).ok  # the blind spot
    # a narrower accumulator holds none of these sums exactly: nothing changes
    assert bound.exact_in(bf16) is bound


def test_exact_in_leaves_a_case_override_and_three_operands_alone():
    x = np.arange(1 * 4 * 4 * 2, dtype=np.float32).reshape(1, 4, 4, 2) / 4
    w = np.ones((2, 2, 2, 3), np.float32) / 2
    overridden = conv2d_bound(x, w, override=Override("a reason", c=4.0))
    assert overridden.exact_in(np.float64) is overridden
    triple = bound_for(
        lambda a, b, c, **k: reference.conv2d(a, b, **k) * c.sum(), {"a": x, "b": w, "c": np.ones(2)}, SAME, np.float32
    )
    assert triple.quantum == 0 and triple.exact_in(np.float64) is triple
