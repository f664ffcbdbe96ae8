"""The reference checked against itself, on every computing case, whatever TensorFlow does.

A registry case compares the reference with TensorFlow. Where TensorFlow cannot be the other side (its kernel is
missing on this CPU, the configuration is a known divergence, the forward op diverges so its gradient item is
skipped), the reference's code for that configuration would be checked by nothing. So every case that computes
(``Case.computes``; not the layer-sized ``realistic`` ones) has one more item, ``name[float64:reference]``, that
runs the case's operands in float64 through identities the reference must satisfy, with no TensorFlow:

* ``layout``: for an op with two data formats, the same call in the other format (``OpSpec.in_format``), its
  output converted back, equals the output; for an op with a gradient rule, so does every gradient
  (``harness.ops.gradients``) for a fixed random output gradient ``dy``;
* ``adjoint``: for an op with a gradient rule, ``<op(operands), dy> == <operand, d/d operand>`` for every operand.
  Every op is linear in each operand, so this is Euler's identity for the gradient; it is also the float64
  finite-difference check, which has no truncation error for a linear function (central differences along
  an operand are exactly ``<op(operand), dy>``).

Each comparison is under ``harness.conv.tolerance``'s float64 bound for the function compared (for an inner product,
the bound of the triple sum ``x * w * dy``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from harness import ops
from harness.check.budget import OverBudget
from harness.check.prepare import Prepared, blocks, prepare
from harness.check.runner import Outcome
from harness.conv import layouts
from harness.conv.tolerance import Bound, Comparison, bound_for, compare
from harness.ops import gradients as reference_gradients
from harness.registry.cases import Case, CaseError
from harness.tf.machine import MemoryBudget

DTYPE = "float64"
CHECK = "reference"


# Cases with these tags have no self-check item: the layer-sized shapes of cases/realistic.yaml (their geometry is
# that of small cases; their float64 gradients in two layouts cost more than every other case's self-checks together).
LEFT_OUT_TAGS = frozenset({"realistic"})


def applies(case: Case) -> bool:
    """Whether ``case`` has a reference self-check item: it computes, is not left out by a tag (``LEFT_OUT_TAGS``),
    and its op has a check that applies."""
    spec = ops.get(case.op)
    return case.computes and not LEFT_OUT_TAGS & set(case.tags) and (len(spec.formats) > 1 or spec.gradient is not None)


def run_self_checks(case: Case, budget: MemoryBudget | None = None) -> Outcome:
    """Every self-check of ``case``'s op on its operands in float64; never raises."""
    start = time.perf_counter()

    def done(status: str, **kw: Any) -> Outcome:
        return Outcome(case, DTYPE, status, seconds=time.perf_counter() - start, check=CHECK, **kw)

    try:
        p = prepare(case, DTYPE, budget, "gradients" if ops.get(case.op).gradient else "forward")
    except OverBudget as exc:
        return done("failed", errors=(str(exc),))
    except (CaseError, ValueError) as exc:
        return done("failed", errors=(f"malformed case: {exc}",))
    if p.reference_error is not None:
        return done("failed", errors=(f"the reference rejects this case: {p.reference_error}",), shapes=p.shapes)
    comparisons: list[Comparison] = []
    errors: list[str] = []
    subject = _Subject(p)
    for name, check in SELF_CHECKS.items():
        try:
            with blocks(case):
                comparisons += check(subject)
        except Exception as exc:  # the reference raising on a call its own case implies is a reference bug
            errors.append(f"self-check {name}: the reference raised {type(exc).__name__}: {exc}")
    errors += [f"{c.subject} disagrees with {c.against}" for c in comparisons if not c.ok]
    status = "failed" if errors else "passed"
    return done(status, comparisons=tuple(comparisons), errors=tuple(errors), attrs=p.attrs, shapes=p.shapes)


@dataclass
class _Subject:
    """A prepared case with what more than one check needs, computed once: a fixed random output gradient ``dy``
    and the reference's gradients for it."""

    p: Prepared

    @cached_property
    def dy(self) -> np.ndarray:
        ref = self.p.reference_output()
        return reference_gradients.output_gradient(f"{self.p.case.id}/{CHECK}/dy", ref.shape, ref.dtype)

    @cached_property
    def gradients(self) -> dict[str, np.ndarray]:
        return reference_gradients.gradients(self.p.case.op, self.p.arrays, self.p.attrs, self.dy)


def _layout(subject: _Subject) -> list[Comparison]:
    """The call in the other data format, converted back, against the call (output and gradients)."""
    p = subject.p
    spec = p.spec
    if len(spec.formats) < 2:
        return []
    src = spec.data_format(p.attrs)
    dst = layouts.other_data_format(src)
    arrays, attrs = spec.in_format(p.arrays, p.attrs, dst)
    back = (lambda a: a) if spec.output_layout else (lambda a: layouts.convert(a, dst, src))
    name = f"reference in {dst}, converted to {src}"
    checks = [
        compare(
            name,
            back(np.asarray(spec.call(spec.reference, arrays, attrs))),
            "reference",
            p.reference_output(),
            p.reference_bound(),
        )
    ]
    if spec.gradient is None:
        return checks
    dy, want = subject.dy, subject.gradients
    got = reference_gradients.gradients(p.case.op, arrays, attrs, layouts.convert(dy, src, dst))
    bounds = _gradient_bounds(p, dy)
    for operand in spec.operands:
        g = got[operand.name]
        g = layouts.convert(g, dst, src) if operand.kind == "data" else g
        checks.append(
            compare(
                f"{name}: d/d{operand.name}",
                g,
                f"reference d/d{operand.name}",
                want[operand.name],
                bounds[operand.name],
            )
        )
    return checks


def _gradient_bounds(p: Prepared, dy: np.ndarray) -> dict[str, Bound]:
    """Each gradient's float64 bound, from one ``bound_for`` over all of them at once (every gradient is linear in
    ``dy`` and in the operands it reads, so the runs on absolute values and on ones bound each of them)."""
    names = [o.name for o in p.spec.operands]

    def every_gradient(*args: np.ndarray, **attrs: Any) -> np.ndarray:
        *operands, out_backprop = args
        grads = reference_gradients.gradients(p.case.op, dict(zip(names, operands)), attrs, out_backprop)
        return np.concatenate([grads[n].ravel() for n in names])

    whole = bound_for(every_gradient, {**p.arrays, "out_backprop": dy}, p.attrs, np.float64)
    bounds, at = {}, 0
    for n in names:
        size, shape = p.arrays[n].size, p.arrays[n].shape
        bounds[n] = dataclasses.replace(
            whole,
            per_element=whole.per_element[at : at + size].reshape(shape),
            overflow=None if whole.overflow is None else whole.overflow[at : at + size].reshape(shape),
        )
        at += size
    return bounds


def _adjoint(subject: _Subject) -> list[Comparison]:
    """``<op(operands), dy>`` against ``<operand, d/d operand>`` for every operand, in float64."""
    p = subject.p
    spec = p.spec
    if spec.gradient is None:
        return []
    dy, grads = subject.dy, subject.gradients
    forward = spec.by_operands(spec.reference)

    def inner(*args: np.ndarray, **attrs: Any) -> np.ndarray:  # <op(operands), dy>: linear in every argument
        *operands, out_backprop = args
        return np.asarray(np.vdot(forward(*operands, **attrs), out_backprop))

    arrays: Mapping[str, np.ndarray] = {**p.arrays, "out_backprop": dy}
    bound = bound_for(inner, arrays, p.attrs, np.float64)
    want = inner(*arrays.values(), **p.attrs)
    return [
        compare(
            f"<{o.name}, d/d{o.name}>",
            np.asarray(np.vdot(p.arrays[o.name], grads[o.name])),
            "<output, dy>",
            want,
            bound,
        )
        for o in spec.operands
    ]


# name -> check: each returns its comparisons, none when it does not apply to the case's op
SELF_CHECKS: Mapping[str, Callable[[_Subject], list[Comparison]]] = {"layout": _layout, "adjoint": _adjoint}
