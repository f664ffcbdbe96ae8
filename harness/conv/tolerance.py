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

A case may replace ``c`` (or add an absolute floor) only with a written reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from harness.conv.dtypes import exact_integer_limit, is_integer, unit_roundoff

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
) -> Bound:
    """The bound for comparing outputs of ``op(*arrays, **attrs)``.

    ``op`` is the reference (a tf.nn-style callable); it is run twice more in float64:
    on absolute values and on ones.
    """
    names = list(arrays)
    abs64 = [np.abs(np.asarray(arrays[n]).astype(np.float64)) for n in names]
    magnitude = op(*abs64, **attrs)
    integer_valued = all(np.array_equal(a, np.round(a)) for a in abs64)
    if is_integer(dtype) or (integer_valued and (magnitude.size == 0 or magnitude.max() <= exact_integer_limit(dtype))):
        if override is None or override.c is None and not override.atol:
            return Bound(np.zeros_like(magnitude), True, 0.0, 0.0, override)
    terms = op(*[np.ones_like(a) for a in abs64], **attrs)
    c = override.c if override and override.c is not None else C_DEFAULT
    u = unit_roundoff(dtype)
    per_element = c * u * np.maximum(terms, 1.0) * magnitude + (override.atol if override else 0.0)
    return Bound(per_element, False, c, u, override)


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


def compare(subject: str, got: np.ndarray, against: str, want: np.ndarray, bound: Bound) -> Comparison:
    """Compare ``got`` with ``want`` element-wise under ``bound`` (shapes and dtypes must match)."""
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
    same = (g == w) | (np.isnan(g) & np.isnan(w))  # equal infinities and NaN in both places agree
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(g - w))
    diff = np.where(np.isnan(diff), np.inf, diff)
    limit = bound.per_element
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, np.where(limit > 0, diff / limit, np.inf))
        rel = np.where(diff == 0, 0.0, diff / np.abs(w))
    worst = np.unravel_index(np.argmax(ratio), ratio.shape)
    margin = float(ratio[worst])
    detail = (
        ""
        if margin <= 1
        else f"worst at index {list(map(int, worst))}: {g[worst]!r} vs {w[worst]!r}, bound {limit[worst]:.3g}"
    )
    return Comparison(
        subject, against, margin <= 1, float(diff.max()), float(np.nanmax(rel)), float(limit.max()), margin, detail
    )
