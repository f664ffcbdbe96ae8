"""Run one case at one dtype through every implementation and compare them.

The reference is the pivot: every other implementation (TensorFlow, each
applicable textbook formulation) is compared with it, and every implementation,
the reference included, is compared with the case's expected output when it has
one. All comparisons use the single bound from ``harness.tolerance``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from harness import ops
from harness.cases import Case, CaseError, expected_array, operand_array
from harness.dtypes import dtype_of
from harness.tolerance import Bound, Comparison, bound_for, compare

REFERENCE = "reference"
TENSORFLOW = "tensorflow"


@dataclass(frozen=True)
class Outcome:
    """Everything one (case, dtype) run found."""

    case: Case
    dtype: str
    passed: bool
    comparisons: tuple[Comparison, ...] = ()
    errors: tuple[str, ...] = ()  # why the run could not compare (or an implementation raised)
    not_applicable: dict = field(default_factory=dict)  # textbook formulation -> why it does not cover this case
    bound: Bound | None = None
    attrs: dict = field(default_factory=dict)  # as passed to the op (symbolic values resolved)
    shapes: dict = field(default_factory=dict)  # operand and output shapes, in the op's layouts
    seconds: float = 0.0

    @property
    def worst_margin(self) -> float:
        return max((c.margin for c in self.comparisons), default=0.0)

    def report(self) -> str:
        """A human-readable account, as shown for a failing pytest item."""
        lines = [f"{self.case.id}[{self.dtype}]  op={self.case.op}  attrs={self.attrs or self.case.attrs}"]
        if self.shapes:
            lines.append("shapes: " + ", ".join(f"{k}={list(v)}" for k, v in self.shapes.items()))
        lines += [f"ERROR {e}" for e in self.errors]
        if self.bound is not None:
            lines.append(f"tolerance: {self.bound.describe()}")
        lines += [c.line() for c in self.comparisons]
        lines += [f"n/a  textbook:{name}: {why}" for name, why in self.not_applicable.items()]
        return "\n".join(lines)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def run_case(case: Case, dtype: str) -> Outcome:
    """Run ``case`` at ``dtype``; never raises for a bad case or a failing implementation."""
    start = time.perf_counter()
    spec = ops.get(case.op)

    def done(passed: bool, **kw) -> Outcome:
        return Outcome(case, dtype, passed, seconds=time.perf_counter() - start, **kw)

    try:
        arrays = {o.name: operand_array(case, o.name, dtype) for o in spec.operands}
        expected = expected_array(case, dtype)
    except (CaseError, ValueError) as exc:
        return done(False, errors=(f"malformed case: {exc}",))
    shapes = {name: a.shape for name, a in arrays.items()}
    try:
        attrs = spec.resolve(arrays, case.attrs) if spec.resolve else dict(case.attrs)
        ref = spec.call(spec.reference, arrays, attrs)
    except ValueError as exc:
        return done(False, errors=(f"the reference rejects this case: {exc}",), shapes=shapes)
    shapes["output"] = ref.shape
    if expected is not None and expected.shape != ref.shape:
        msg = f"{case.file}: case {case.name!r}: field 'expected': shape {list(expected.shape)} (after converting from layout {case.expected.layout!r}) does not match the output shape {list(ref.shape)}"
        return done(False, errors=(msg,), attrs=attrs, shapes=shapes)

    bound = bound_for(spec.reference, arrays, attrs, dtype_of(dtype), case.tolerance)
    outputs = {REFERENCE: ref}
    errors, not_applicable = [], {}
    try:
        outputs[TENSORFLOW] = spec.call(spec.tensorflow(), arrays, attrs)
    except Exception as exc:  # TensorFlow raises many error classes; each is a finding, reported as such
        errors.append(f"tensorflow raised {_first_line(exc)}")
    for formulation in spec.textbook:
        try:
            out = formulation.run(arrays, attrs)
        except ops.NotApplicable as why:
            not_applicable[formulation.name] = str(why)
            continue
        outputs[f"textbook:{formulation.name}"] = np.asarray(out).astype(dtype_of(dtype))

    comparisons = [compare(name, out, REFERENCE, ref, bound) for name, out in outputs.items() if name != REFERENCE]
    if expected is not None:
        comparisons += [compare(name, out, "expected", expected, bound) for name, out in outputs.items()]
    passed = not errors and all(c.ok for c in comparisons)
    return done(passed, comparisons=tuple(comparisons), errors=tuple(errors), not_applicable=not_applicable,
                bound=bound, attrs=attrs, shapes=shapes)
