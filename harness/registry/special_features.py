"""The divergence features of special values: subnormal flushing (whether TensorFlow flushes here, and whether it
shows in a case), and NaN that only the zero padding makes.

``tf_flushes_subnormals`` is a measured fact of the environment (``harness.tf.flush_probe`` through
``Environment.flushes_subnormals``): one of the op's TensorFlow kernels, at the case's dtype and padding kind, reads
subnormal inputs as zero (DAZ) or flushes subnormal results to zero (FTZ). None where it was not measured (a
recorded machine's probe from before it was): no entry conditioned on it applies there.

``flushing_changes_result`` says whether that flushing moves the case's result outside its bound, simulated on the
reference (never on TensorFlow): subnormal operand values read as zero, every term whose exact product is below the
dtype's smallest normal value dropped (a flushed product), the float64 sum cast to the dtype, and a subnormal result
flushed to zero; then compared with the exact reference under the case's bound. It is computed only where
TensorFlow flushes (it costs a few reference runs) and only for values that reach the subnormal range; False
elsewhere, None where the flushing is not known.

``padding_makes_nan``: some output element of a convolution is NaN only because a NaN or an infinite filter value
meets the zero padding (``0 * inf`` and ``NaN * 0`` are NaN, and the padded definition makes the padding terms of
the sum): without its padding terms the element would not be NaN. Computed from the IEEE classes of the terms
(``nan_without_padding``), only for cases whose filter holds a non-finite value.
"""

from __future__ import annotations

from collections.abc import Mapping

import ml_dtypes
import numpy as np

from harness import ops
from harness.conv.dtypes import DTYPES, is_integer
from harness.conv.tolerance import compare
from harness.tf.environment import Environment

FEATURES = {
    "tf_flushes_subnormals": "TensorFlow's kernel for the op flushes subnormal inputs (DAZ) or results (FTZ) to zero "
    "at this dtype and padding kind (measured here: harness.tf.flush_probe)",
    "flushing_changes_result": "flushing the case's subnormal operands, products and results to zero, simulated on "
    "the reference, moves some element outside the bound (computed where TensorFlow flushes)",
    "padding_makes_nan": "some output element is NaN only because a NaN or infinite filter value meets the zero "
    "padding (0 * inf): without its padding terms it would not be NaN",
}
MAX_DISTINCT = 64  # distinct values of an operand for the term-wise simulation of flushed products


def features(
    op: str,
    dtype: str,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping,
    reference,
    env: Environment,
    expect_error: bool = False,
    tolerance=None,
) -> dict:
    """``tf_flushes_subnormals`` and ``flushing_changes_result`` for one call of ``op`` (see the module docstring);
    ``tolerance``: the case's override of the bound."""
    spec = ops.get(op)
    np_dtype = DTYPES.get(dtype)
    if np_dtype is None or is_integer(np_dtype):  # integers (and a quantized scheme's int8 / int16) have no subnormals
        return {"tf_flushes_subnormals": False, "flushing_changes_result": False}
    flushes = env.flushes_subnormals(spec.tf_kernels, dtype, spec.tf_padding_kind(attrs))
    changes: bool | None = None if flushes is None else False
    if flushes and reference is not None and not expect_error:
        try:
            changes = changes_result(spec, arrays, attrs, np.asarray(reference), np_dtype, tolerance)
        except ValueError:
            changes = None
    return {
        "tf_flushes_subnormals": flushes,
        "flushing_changes_result": changes,
        "padding_makes_nan": padding_makes_nan(spec, arrays, attrs, reference),
    }


def padding_makes_nan(spec: ops.OpSpec, arrays: Mapping[str, np.ndarray], attrs: Mapping, reference) -> bool:
    """See the module docstring (False for ops without padding terms: transposed and backprop ops)."""
    if spec.kind not in ("conv", "depthwise") or spec.filter is None or reference is None or len(spec.operands) != 2:
        return False
    w = np.asarray(arrays[spec.filter.name])
    if np.isfinite(w.astype(np.float64)).all():
        return False
    x = np.asarray(arrays[spec.data.name])
    try:
        without = nan_without_padding(spec, x, w, attrs)
    except ValueError:
        return False
    return bool((np.isnan(np.asarray(reference, np.float64)) & ~without).any())


def nan_without_padding(spec: ops.OpSpec, x: np.ndarray, w: np.ndarray, attrs: Mapping) -> np.ndarray:
    """Where the output would be NaN if only the terms of real pixels (not the zero padding) were summed, in exact
    IEEE arithmetic: a NaN term (NaN operand, inf * 0) or infinite terms of both signs. From counts of the terms of
    each IEEE class, each count one run of the reference on 0/1 arrays (which it pads with zeros: no padding terms)."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    data, filt = spec.data.name, spec.kernel_operand.name

    def count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return spec.call(spec.reference, {data: a.astype(np.float64), filt: b.astype(np.float64)}, attrs)

    def classes(v: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "nan": np.isnan(v),
            "+inf": v == np.inf,
            "-inf": v == -np.inf,
            "inf": np.isinf(v),
            "zero": v == 0,
            "pos": v > 0,
            "neg": v < 0,
            "any": np.ones(v.shape, bool),
        }

    cx, cw = classes(x64), classes(w64)
    nan = count(cx["nan"], cw["any"]) + count(cx["any"], cw["nan"])
    nan = nan + count(cx["inf"], cw["zero"]) + count(cx["zero"], cw["inf"])
    positive = count(cx["+inf"], cw["pos"]) + count(cx["-inf"], cw["neg"])
    positive = positive + count(cx["pos"], cw["+inf"]) + count(cx["neg"], cw["-inf"])
    negative = count(cx["+inf"], cw["neg"]) + count(cx["-inf"], cw["pos"])
    negative = negative + count(cx["pos"], cw["-inf"]) + count(cx["neg"], cw["+inf"])
    return (nan > 0) | ((positive > 0) & (negative > 0))


def _flush(a: np.ndarray, tiny: float) -> np.ndarray:
    return np.where(np.abs(a) < tiny, 0.0, a)


def flushed_reference(
    spec: ops.OpSpec, arrays: Mapping[str, np.ndarray], attrs: Mapping, dtype, reference: np.ndarray
) -> np.ndarray | None:
    """The reference's output with flushing simulated (see the module docstring), in ``dtype``; None when nothing
    reaches the subnormal range (flushing changes nothing). Runs the reference again only when an operand holds a
    subnormal value or two operands' values can multiply below the smallest normal value."""
    tiny = float(ml_dtypes.finfo(dtype).smallest_normal)
    names = [o.name for o in spec.operands]
    values = {n: np.asarray(arrays[n]).astype(np.float64) for n in names}
    flushed = {n: _flush(v, tiny) for n, v in values.items()}
    smallest = [float(np.abs(v[np.isfinite(v) & (v != 0)]).min(initial=np.inf)) for v in flushed.values()]
    subnormal_operand = any(not np.array_equal(flushed[n], values[n], equal_nan=True) for n in names)
    products_underflow = len(names) == 2 and smallest[0] * smallest[1] < tiny
    with np.errstate(all="ignore"):
        if subnormal_operand or products_underflow:
            op = spec.by_operands(spec.reference)
            out = np.asarray(op(*[flushed[n] for n in names], **attrs)).astype(np.float64)
            if products_underflow:
                out = _without_small_products(op, flushed[names[0]], flushed[names[1]], attrs, tiny, out)
        else:
            out = np.asarray(reference).astype(np.float64)
            if not (np.abs(out[out != 0]) < tiny).any():
                return None
        return _flush(out.astype(dtype).astype(np.float64), tiny).astype(dtype)


def _without_small_products(
    op, x: np.ndarray, w: np.ndarray, attrs: Mapping, tiny: float, out: np.ndarray
) -> np.ndarray:
    """``op(x, w)`` without the terms whose exact product is below ``tiny`` in magnitude (term-wise, one op run per
    distinct value of the operand with fewer of them); ``out`` when both have too many distinct values."""
    distinct_x = np.unique(np.abs(x[np.isfinite(x) & (x != 0)]))
    distinct_w = np.unique(np.abs(w[np.isfinite(w) & (w != 0)]))
    if min(distinct_x.size, distinct_w.size) > MAX_DISTINCT:
        return out
    total = np.zeros_like(out)
    if distinct_x.size <= distinct_w.size:
        for v in distinct_x:
            total += op(np.where(np.abs(x) == v, x, 0.0), np.where(np.abs(w) * v < tiny, 0.0, w), **attrs)
    else:
        for v in distinct_w:
            total += op(np.where(np.abs(x) * v < tiny, 0.0, x), np.where(np.abs(w) == v, w, 0.0), **attrs)
    # non-finite operand values (read as 0 by neither mask above) keep the plain result's non-finite elements
    return np.where(np.isfinite(out), total, out)


def changes_result(spec: ops.OpSpec, arrays, attrs: Mapping, reference: np.ndarray, dtype, tolerance=None) -> bool:
    """Whether the simulated flushing moves some element of ``reference`` outside its bound."""
    flushed = flushed_reference(spec, arrays, attrs, dtype, reference)
    if flushed is None or flushed.shape != reference.shape:
        return False
    bound = spec.bound(arrays, attrs, dtype, tolerance)
    return not compare("flushed", flushed, "reference", reference, bound).ok
