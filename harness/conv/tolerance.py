"""The one place that decides how close two results must be.

For floating-point inputs the bound is per output element::

    |ref - impl| <= c * u(dtype) * K * (|x| (*) |w|)

* ``(|x| (*) |w|)`` is the same op applied to the absolute values of every operand,
  in float64: the sum of the magnitudes of the terms summed into that element;
* ``K`` is the number of terms summed into that element (the same op applied to
  all-ones operands, so padding taps that contribute nothing are not counted);
* ``u(dtype)`` is the unit roundoff of the dtype (2**-24 for float32);
* ``c`` = ``C_DEFAULT`` = 2: one ``u`` for rounding each side's result to the dtype,
  and ``K * u`` for any summation order (the classical bound on recursive summation
  is ``(K - 1) u / (1 - (K - 1) u)`` times the sum of magnitudes), doubled because
  both sides may carry error.

Integer-valued inputs whose partial sums are all exactly representable in the
dtype (every ``|x| (*) |w|`` at most 2**(mantissa bits + 1)) are compared for exact
equality: any summation order gives the exact answer there. int32 is always exact.

Where every partial sum of an element is exact in an implementation's accumulator, that implementation returns
the exact sum rounded once, as the reference does: ``Bound.exact_in(accumulator)`` makes the bound zero there (bit
equality). Every term of a two-operand op is a multiple of the product of the largest powers of two dividing each
operand (``Bound.quantum``), so the partial sums are exact when the element's ``|x| (*) |w|`` is at most
``exact_integer_limit(accumulator)`` quanta. The runner applies it to the textbook formulations (float64) and to
TensorFlow where its kernels were measured to round once (``harness.tf.rounding_probe``).

A case may replace ``c`` (or add an absolute floor) only with a written reason.

An op that rounds before its sums adds that rounding, carried through the sums: ``c * u * R`` where ``R`` is its
``OpSpec.rounding`` on the operands' magnitudes, in units of u (FusedResizeAndPadConv2D interpolates its input in the
data's dtype: each lerp errs by at most 4 u times its two values' magnitudes, ``reference._resize_rounding``).

Two refinements come from IEEE arithmetic itself, and matter only near the ends of the dtype's range:

* **gradual underflow**: a product (or the final rounding) whose result is subnormal has an absolute error of up to
  half the smallest subnormal ``s`` instead of a relative one (sums of subnormals are exact). So each element with
  nonzero terms gets ``c * (K + 1) * s / 2`` more: ``K + 1`` smallest subnormals with ``c = 2``, 1.4e-45 each in
  float32, invisible above a few ulps of the smallest normal value.
* **overflow of a partial sum**: the bound above allows any summation order in the dtype's own precision, and a
  partial sum in the dtype overflows when the terms of one sign it holds exceed the dtype's range, even when the
  exact sum (the reference's, in float64) does not. Where the sum of the positive terms of an element,
  ``P``, can exceed the largest finite value (``P * (1 + c u K)`` beyond it), +inf is an outcome of such a
  summation; where the negative terms' ``N`` can, -inf; where both can, NaN. Those outcomes, and only those, are
  accepted there besides the finite bound (``Bound.overflow``); elsewhere non-finite values must match exactly.

Non-finite values are compared exactly (``compare``): where the reference is NaN the implementation must give NaN,
where it is +inf or -inf the same infinity, and where it is finite a finite value within the bound. The bound is
computed on the finite parts of the operands (non-finite values read as 0: every term they enter is non-finite, so
the elements they reach are compared exactly). -0.0 and +0.0 are equal (IEEE ``==``): the sign of a zero sum
depends on the accumulator's starting value (an exact sum of -0.0 terms is -0.0 in IEEE, but a sum started at
+0.0, as BLAS, Eigen, oneDNN and the reference start it, is +0.0), which is not the op's definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import ml_dtypes
import numpy as np
from numpy.typing import DTypeLike

from harness.conv.dtypes import exact_integer_limit, is_integer, smallest_subnormal, unit_roundoff

C_DEFAULT = 2.0


@dataclass(frozen=True)
class Override:
    """A case's own tolerance, only with a reason: replaces ``c`` and/or adds ``atol``."""

    reason: str
    c: float | None = None
    atol: float = 0.0


@dataclass(frozen=True)
class Bound:
    """The per-element bound for one case and dtype."""

    per_element: np.ndarray  # float64, the output's shape; all zero when exact
    exact: bool
    c: float
    u: float
    override: Override | None
    # Where a partial sum in the dtype may overflow (see the module docstring): an int8 array of the output's shape,
    # bit 1: +inf is a possible outcome, bit 2: -inf is (both: NaN too); None where no element can overflow.
    overflow: np.ndarray | None = None
    # The smallest magnitude that rounds to infinity in the dtype (its largest value plus half an ulp), for
    # ``overflow``: a finite result where the reference overflowed is right when within the bound of it.
    overflow_at: float = np.inf
    # For ``exact_in``: each element's sum of |terms| (float64, the output's shape), and the largest power of two
    # that divides every term (0: unknown, as for ops of more than two operands, whose intermediate is rounded).
    magnitude: np.ndarray | None = field(default=None, repr=False, compare=False)
    quantum: float = 0.0

    def exact_in(self, accumulator: DTypeLike) -> Bound:
        """This bound for an implementation that sums in ``accumulator`` and rounds once to the dtype: zero (bit
        equality) at every element whose partial sums are all exact in ``accumulator``, in any order.

        Every term is a multiple of ``quantum``, so every partial sum is too, and is at most the element's
        ``magnitude``: when that is at most ``exact_integer_limit(accumulator)`` quanta (and a quantum is a normal
        number of ``accumulator``, so no flush to zero can touch it), every partial sum is exact, and the result
        is the exact sum rounded to nearest once, as the reference's. Elsewhere, and for a case with its own
        tolerance (``override``), the bound is unchanged.
        """
        if self.exact or self.override is not None or self.magnitude is None or not self.quantum:
            return self
        exact_sums = self.magnitude <= exact_integer_limit(accumulator) * self.quantum
        if self.quantum < float(ml_dtypes.finfo(np.dtype(accumulator)).smallest_normal) or not exact_sums.any():
            return self
        return replace(self, per_element=np.where(exact_sums, 0.0, self.per_element))

    def describe(self) -> str:
        if self.exact:
            return "exact equality (integer-valued inputs, partial sums exactly representable)"
        text = f"c*u*K*(|x|*|w|) with c={self.c:g}, u={self.u:.3g}"
        if self.override:
            text += f" (override: {self.override.reason})"
            if self.override.atol:
                text += f", atol={self.override.atol:g}"
        return text


def bound_for(
    op: Callable[..., np.ndarray],
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
    dtype: DTypeLike,
    override: Override | None = None,
    rounding: Callable[..., np.ndarray] | None = None,
) -> Bound:
    """The bound for comparing outputs of ``op(*arrays, **attrs)``.

    ``op`` is the reference (a tf.nn-style callable); it is run twice more in float64:
    on absolute values and on ones. ``rounding``: for an op that rounds before its sums (an interpolated input),
    the error that rounding can carry into each element, in units of u, from the operands' absolute values; it is
    added to the bound (and no element is exact where it is nonzero).
    """
    names = list(arrays)
    finite64 = [_finite_part(np.asarray(arrays[n]).astype(np.float64)) for n in names]
    abs64 = [np.abs(a) for a in finite64]
    magnitude = op(*abs64, **attrs)
    inner = rounding(*abs64, **attrs) if rounding is not None else np.zeros_like(magnitude)
    integer_valued = all(np.array_equal(a, np.round(a)) for a in abs64) and not inner.any()
    if is_integer(dtype) or (integer_valued and (magnitude.size == 0 or magnitude.max() <= exact_integer_limit(dtype))):
        if override is None or override.c is None and not override.atol:
            return Bound(np.zeros_like(magnitude), True, 0.0, 0.0, override)
    terms = op(*[np.ones_like(a) for a in abs64], **attrs)
    # Every term is a multiple of the operands' quanta only when nothing is rounded before the sums.
    quantum = float(np.prod([_quantum(a) for a in abs64])) if len(abs64) == 2 and not inner.any() else 0.0
    c = override.c if override and override.c is not None else C_DEFAULT
    u = unit_roundoff(dtype)
    per_element = c * u * (np.maximum(terms, 1.0) * magnitude + inner) + (override.atol if override else 0.0)
    per_element = per_element + np.where(magnitude > 0, c * (terms + 1) * smallest_subnormal(dtype) / 2, 0.0)
    overflow = _overflow(op, finite64, attrs, dtype, magnitude, c * u * np.maximum(terms, 1.0))
    info = ml_dtypes.finfo(np.dtype(dtype))
    with np.errstate(over="ignore"):
        threshold = float(info.max) + float(info.eps) * 2.0 ** (int(info.maxexp) - 2)  # max + ulp(max) / 2
    return Bound(
        per_element, False, c, u, override, overflow, threshold, magnitude, quantum if np.isfinite(quantum) else 0.0
    )


def _quantum(a: np.ndarray) -> float:
    """The largest power of two that divides every value of ``a`` (float64, finite; inf when every value is 0)."""
    values = a[a != 0]
    if values.size == 0:
        return np.inf
    mantissa, exponent = np.frexp(values)  # values = mantissa * 2**exponent, 0.5 <= |mantissa| < 1
    digits = np.abs(mantissa * 2.0**53).astype(np.int64)  # exact: a float64 has 53 significant bits
    lowest = np.log2(digits & -digits).astype(np.int64)  # the lowest set bit (a power of two: log2 is exact)
    return float(np.ldexp(1.0, int((exponent - 53 + lowest).min())))


def _finite_part(a: np.ndarray) -> np.ndarray:
    """``a`` with NaN and infinities read as 0 (the elements they reach are compared exactly)."""
    return a if np.isfinite(a).all() else np.where(np.isfinite(a), a, 0.0)


def _overflow(
    op: Callable[..., np.ndarray],
    finite64: list[np.ndarray],
    attrs: Mapping[str, Any],
    dtype: DTypeLike,
    magnitude: np.ndarray,
    slack: np.ndarray,
) -> np.ndarray | None:
    """``Bound.overflow``: where a partial sum in ``dtype`` of the positive (bit 1) or negative (bit 2) terms can
    exceed its largest finite value; None when no element's terms can (the usual case, decided from the sum of all
    magnitudes without computing anything more)."""
    largest = float(ml_dtypes.finfo(np.dtype(dtype)).max)
    with np.errstate(over="ignore", invalid="ignore"):
        if magnitude.size == 0 or not (magnitude * (1 + slack) >= largest).any():
            return None
        if len(finite64) != 2:  # a product of three operands: any element past the range may overflow either way
            exposed = magnitude * (1 + slack) >= largest
            return np.where(exposed, 3, 0).astype(np.int8)
        (x, w) = finite64
        xp, xn, wp, wn = np.maximum(x, 0), np.maximum(-x, 0), np.maximum(w, 0), np.maximum(-w, 0)
        positive = op(xp, wp, **attrs) + op(xn, wn, **attrs)
        negative = op(xp, wn, **attrs) + op(xn, wp, **attrs)
        bits = np.where(positive * (1 + slack) >= largest, 1, 0) | np.where(negative * (1 + slack) >= largest, 2, 0)
    return bits.astype(np.int8) if bits.any() else None


@dataclass(frozen=True)
class Comparison:
    """One implementation's output checked against another's (or the expected values)."""

    subject: str  # e.g. "tensorflow"
    against: str  # e.g. "reference" or "expected"
    ok: bool
    max_abs_error: float
    max_rel_error: float
    max_bound: float
    margin: float  # max |diff| / bound over elements: <= 1 passes; 0 is a perfect match
    detail: str = ""

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        text = (
            f"{status} {self.subject} vs {self.against}: max|diff|={self.max_abs_error:.3g} "
            f"max rel={self.max_rel_error:.3g} bound<={self.max_bound:.3g} margin={self.margin:.3g}"
        )
        return text + (f"  ({self.detail})" if self.detail else "")


def _show(v: float) -> str:
    return "NaN" if np.isnan(v) else repr(float(v))


def compare(subject: str, got: np.ndarray, against: str, want: np.ndarray, bound: Bound) -> Comparison:
    """Compare ``got`` with ``want`` element-wise under ``bound`` (shapes and dtypes must match).

    Non-finite values exactly: NaN in ``want`` needs NaN, an infinity the same infinity, a finite value a finite one
    within the bound (or, where ``bound.overflow`` says a partial sum may overflow, the infinity or NaN it allows).
    The detail names the disagreeing non-finite elements, e.g. "NaN expected, got 0.0 at [0, 1, 1, 0]".
    """
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return Comparison(
            subject, against, False, np.inf, np.inf, 0.0, np.inf, f"shape {list(got.shape)} != {list(want.shape)}"
        )
    if got.dtype != want.dtype:
        return Comparison(subject, against, False, np.inf, np.inf, 0.0, np.inf, f"dtype {got.dtype} != {want.dtype}")
    if got.size == 0:
        return Comparison(subject, against, True, 0.0, 0.0, 0.0, 0.0, "empty output")
    g, w = got.astype(np.float64), want.astype(np.float64)
    limit = bound.per_element
    both_finite = np.isfinite(g) & np.isfinite(w)
    # Non-finite on either side: agreement is exact (the same infinity, or NaN in both), or an overflow the bound
    # allows. -0.0 == +0.0.
    special = ~both_finite
    agree = (g == w) | (np.isnan(g) & np.isnan(w))
    if bound.overflow is not None and bound.overflow.shape == g.shape:
        bits = bound.overflow
        allowed = ((g == np.inf) & (bits & 1 > 0)) | ((g == -np.inf) & (bits & 2 > 0)) | (np.isnan(g) & (bits == 3))
        # The reference overflowed (its exact sum reached the threshold), a summation in the dtype stayed finite:
        # right when the threshold is within the bound of it.
        with np.errstate(invalid="ignore", over="ignore"):
            short = bound.overflow_at - np.abs(g)
            near = np.isfinite(g) & (short <= limit)
            allowed |= near & (((w == np.inf) & (g > 0) & (bits & 1 > 0)) | ((w == -np.inf) & (g < 0) & (bits & 2 > 0)))
        agree = agree | allowed
    mismatched = special & ~agree
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(both_finite & (g != w), np.abs(g - w), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, np.where(limit > 0, diff / limit, np.inf))
        rel = np.where(diff == 0, 0.0, diff / np.abs(w))
    ratio = np.where(mismatched, np.inf, ratio)
    worst = np.unravel_index(np.argmax(ratio), ratio.shape)
    margin = float(ratio[worst])
    details = []
    if mismatched.any():
        where = np.argwhere(mismatched)
        shown = [f"{_show(w[tuple(i)])} expected, got {_show(g[tuple(i)])} at {list(map(int, i))}" for i in where[:4]]
        more = f" (and {len(where) - 4} more)" if len(where) > 4 else ""
        details.append(f"{len(where)} non-finite disagreement(s): " + "; ".join(shown) + more)
    finite_worst = np.where(mismatched, 0.0, ratio)
    if float(finite_worst.max()) > 1:
        i = np.unravel_index(np.argmax(finite_worst), ratio.shape)
        details.append(f"worst at index {list(map(int, i))}: {g[i]!r} vs {w[i]!r}, bound {limit[i]:.3g}")
    finite_limit = limit[np.isfinite(w)] if np.isfinite(w).any() else np.zeros(1)
    return Comparison(
        subject,
        against,
        margin <= 1,
        float(np.inf if mismatched.any() else diff.max()),
        float(np.inf if mismatched.any() else np.nanmax(rel)),
        float(np.nanmax(finite_limit)) if finite_limit.size else 0.0,
        margin,
        "; ".join(details),
    )
