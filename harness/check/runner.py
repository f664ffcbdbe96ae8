"""Run one case at one dtype through every implementation and decide its status.

The reference is the pivot. TensorFlow (called in an isolated child process, see
``harness.tf.isolation``) and every applicable textbook formulation are compared
with it, and everything is compared with the case's expected output when it has
one, all under the single bound from ``harness.conv.tolerance``.

What TensorFlow did is summed up as one *behaviour*: ``agrees``, ``wrong_shape``,
``wrong_values``, ``raises <ErrorClass>``, ``aborts`` or ``returns`` (a value where
an error was expected). The status follows:

* ``passed``: the reference, the textbook formulations and the expected output agree,
  and TensorFlow ``agrees`` (for an error contract: raised the declared class);
* ``xfailed``: a known divergence applies and TensorFlow did what it declares;
* ``failed``: anything else, including a known divergence that no longer occurs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from harness.check import diagnose as diagnosis
from harness import ops
from harness.registry.cases import Case, CaseError, expected_array, operand_arrays
from harness.registry.divergences import Divergence, features, matching
from harness.conv.dtypes import dtype_of
from harness.tf.environment import Environment
from harness.tf.isolation import Died, Raised, Returned, call_tensorflow
from harness.conv.tolerance import Bound, Comparison, bound_for, compare

REFERENCE = "reference"
TENSORFLOW = "tensorflow"
AGREES = "agrees"


@dataclass(frozen=True)
class Outcome:
    """Everything one (case, dtype) run found."""

    case: Case
    dtype: str
    status: str  # passed | failed | xfailed
    comparisons: tuple[Comparison, ...] = ()
    errors: tuple[str, ...] = ()  # why the case failed, beyond the comparisons
    notes: tuple[str, ...] = ()  # what happened that is not a failure (expected errors, divergences)
    not_applicable: dict = field(default_factory=dict)  # textbook formulation -> why it does not cover this case
    bound: Bound | None = None
    attrs: dict = field(default_factory=dict)  # as passed to the op (symbolic values resolved)
    shapes: dict = field(default_factory=dict)  # operand and output shapes, in the op's layouts
    tensorflow: str = ""  # TensorFlow's behaviour
    divergence: Divergence | None = None  # the known divergence TensorFlow's behaviour was excused by
    applicable: tuple[str, ...] = ()  # ids of every known divergence whose condition this case meets
    diagnosis: tuple[str, ...] = ()  # for each disagreeing output, the usual suspect that explains it (or none)
    seconds: float = 0.0
    # Outputs by implementation ("reference", "tensorflow", "textbook:..."), in the op's layout: kept only for a
    # failure (for the report's heatmaps) or when asked (``harness show``), so a run does not hold every output.
    outputs: dict = field(default_factory=dict, repr=False, compare=False)
    backend: str | None = None  # the backend checked against TensorFlow (``run_backend``); None: the default item
    skip_reason: str = ""  # status "skipped": why the backend does not cover this case

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def worst_margin(self) -> float:
        return max((c.margin for c in self.comparisons), default=0.0)

    def report(self) -> str:
        """A human-readable account, as shown for a failing pytest item."""
        item = f"{self.dtype}@{self.backend}" if self.backend else self.dtype
        lines = [f"{self.case.id}[{item}]  op={self.case.op}  attrs={self.attrs or self.case.attrs}"]
        if self.shapes:
            lines.append("shapes: " + ", ".join(f"{k}={list(v)}" for k, v in self.shapes.items()))
        if self.tensorflow:
            lines.append(f"tensorflow: {self.tensorflow}")
        lines += [f"ERROR {e}" for e in self.errors]
        lines += [f"note  {n}" for n in self.notes]
        if self.bound is not None:
            lines.append(f"tolerance: {self.bound.describe()}")
        lines += [c.line() for c in self.comparisons]
        lines += [f"suspect {d}" for d in self.diagnosis]
        lines += [f"n/a  textbook:{name}: {why}" for name, why in self.not_applicable.items()]
        return "\n".join(lines)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else ""


def _tf_behaviour(result, ref: np.ndarray | None, comparisons: list[Comparison]) -> tuple[str, str]:
    """(behaviour, detail) of a TensorFlow call for a case that expects a value."""
    if isinstance(result, Died):
        return "aborts", f"the TensorFlow process died ({result.how}): {result.stderr_tail}"
    if isinstance(result, Raised):
        return f"raises {result.error_class}", _first_line(result.message)
    tf_checks = [c for c in comparisons if c.subject == TENSORFLOW]
    if any(not c.ok and c.detail.startswith("shape") for c in tf_checks):
        return "wrong_shape", f"TensorFlow returned shape {list(result.value.shape)}, the reference {list(ref.shape)}"
    if any(not c.ok for c in tf_checks):
        return "wrong_values", "TensorFlow's values are outside the bound"
    return AGREES, ""


def _tf_error_behaviour(result, want: str) -> tuple[str, str]:
    """(behaviour, detail) of a TensorFlow call for an error contract expecting class ``want``."""
    if isinstance(result, Died):
        return "aborts", f"the TensorFlow process died ({result.how}): {result.stderr_tail}"
    if isinstance(result, Raised):
        behaviour = AGREES if result.error_class == want else f"raises {result.error_class}"
        return behaviour, f"{result.error_class}: {_first_line(result.message)}"
    value = result.value
    zeros = " (all zeros)" if value.size and not np.any(value) else ""
    return "returns", f"TensorFlow returned an array of shape {list(value.shape)}{zeros} instead of raising {want}"


def _diagnose(op: str, arrays, attrs, outputs: dict, comparisons, bound) -> tuple[str, ...]:
    """Explain every output that disagrees with the reference (same shape) by a usual suspect."""
    lines = []
    for c in comparisons:
        if c.ok or c.against != REFERENCE or c.subject not in outputs:
            continue
        lines.append(diagnosis.explain(op, arrays, attrs, outputs[c.subject], bound, c.subject))
    return tuple(lines)


def run_case(case: Case, dtype: str, divergences: Sequence[Divergence] = (), env: Environment | None = None,
             diagnose: bool = True, keep_outputs: bool = False) -> Outcome:
    """Run ``case`` at ``dtype``; never raises for a bad case or a failing implementation.

    With ``diagnose``, an output that disagrees with the reference is explained by re-running the reference under
    the usual suspects (``harness.check.diagnose``); the mutation self-test turns that off. ``keep_outputs`` keeps every
    implementation's output in ``Outcome.outputs`` (a failing outcome always keeps them).
    """
    start = time.perf_counter()
    env = env or Environment.current()
    spec = ops.get(case.op)

    def done(status: str, **kw) -> Outcome:
        return Outcome(case, dtype, status, seconds=time.perf_counter() - start, **kw)

    try:
        arrays = operand_arrays(case, dtype)
        expected = expected_array(case, dtype)
    except (CaseError, ValueError) as exc:
        return done("failed", errors=(f"malformed case: {exc}",))
    shapes = {name: a.shape for name, a in arrays.items()}
    args = tuple(arrays[o.name] for o in spec.operands)

    try:
        attrs = spec.resolved(arrays, case.attrs)
        ref, ref_error = spec.call(spec.reference, arrays, attrs), None
    except ValueError as exc:
        attrs, ref, ref_error = dict(case.attrs), None, exc
    feats = features(case, dtype, arrays, attrs, ref, env)
    applicable = matching(divergences, feats, env)
    tf_result = call_tensorflow(case.op, args, attrs)

    errors, notes, comparisons, not_applicable, bound, outputs = [], [], [], {}, None, {}
    if case.expect_error:
        want = case.expect_error.tensorflow_error(feats["eigen_kernel"])
        if want is None:
            errors.append("TensorFlow's kernel for this case was not measured (see the environment's probe), and "
                          "the error contract names a different class for oneDNN's and Eigen's kernels")
            want = "?"
        if ref_error is None:
            errors.append("the reference accepted this configuration, but the case expects ValueError")
        elif case.expect_error.match and case.expect_error.match not in str(ref_error):
            errors.append(f"the reference's ValueError does not mention {case.expect_error.match!r}: {ref_error}")
        else:
            notes.append(f"reference raised ValueError: {ref_error}")
        behaviour, detail = _tf_error_behaviour(tf_result, want)
    else:
        if ref_error is not None:
            return done("failed", errors=(f"the reference rejects this case: {ref_error}",), shapes=shapes)
        shapes["output"] = ref.shape
        if expected is not None and expected.shape != ref.shape:
            msg = (f"{case.file}: case {case.name!r}: field 'expected': shape {list(expected.shape)} (after converting "
                   f"from layout {case.expected.layout!r}) does not match the output shape {list(ref.shape)}")
            return done("failed", errors=(msg,), attrs=attrs, shapes=shapes)
        bound = bound_for(spec.reference, arrays, attrs, dtype_of(dtype), case.tolerance)
        if isinstance(tf_result, Returned):
            outputs[TENSORFLOW] = tf_result.value
        for formulation in spec.textbook:
            if ref.size == 0:  # sliding windows over an empty axis: nothing for the documents' methods to compute
                not_applicable[formulation.name] = "empty output"
                continue
            try:
                out = formulation.run(arrays, attrs)
            except ops.NotApplicable as why:
                not_applicable[formulation.name] = str(why)
                continue
            except Exception as exc:  # a bug in a formulation or its pairing is this case's failure, not a crash
                errors.append(f"textbook:{formulation.name} raised {type(exc).__name__}: {exc}")
                continue
            outputs[f"textbook:{formulation.name}"] = np.asarray(out).astype(dtype_of(dtype))
        comparisons = [compare(name, out, REFERENCE, ref, bound) for name, out in outputs.items()]
        if expected is not None:
            comparisons.append(compare(REFERENCE, ref, "expected", expected, bound))
            comparisons += [compare(name, out, "expected", expected, bound) for name, out in outputs.items()]
        behaviour, detail = _tf_behaviour(tf_result, ref, comparisons)
        errors += [f"{c.subject} disagrees with {c.against}" for c in comparisons if not c.ok and c.subject != TENSORFLOW]

    status = "failed" if errors else "passed"
    divergence = next((d for d in applicable if d.expects(behaviour)), None)
    if applicable:
        ids = ", ".join(repr(d.id) for d in applicable)
        if behaviour == AGREES and all(d.strict == "per_entry" for d in applicable):
            notes.append(f"known divergence {ids} did not occur for this configuration (checked per entry)")
        elif behaviour == AGREES:
            errors.append(f"known divergence {ids} did not occur: TensorFlow now agrees with the reference "
                          f"(update {applicable[0].file})")
        elif divergence is not None:
            notes.append(f"known divergence {divergence.id!r}: {divergence.summary} ({detail})")
            status = "failed" if errors else "xfailed"
        else:
            declared = " or ".join(sorted({b for d in applicable for b in d.tensorflow_does}))
            errors.append(f"known divergence {ids} says TensorFlow {declared}, but it {behaviour}: {detail}")
    elif behaviour != AGREES:
        errors.append(f"TensorFlow {behaviour}: {detail}" if detail else f"TensorFlow {behaviour}")
    elif case.expect_error:
        notes.append(f"TensorFlow raised {detail}")
    found = ()
    if errors:
        status = "failed"
        if diagnose and bound is not None:
            found = _diagnose(case.op, arrays, attrs, outputs, comparisons, bound)
    if ref is not None and (keep_outputs or status == "failed"):
        outputs = {REFERENCE: ref, **outputs, **({"expected": expected} if expected is not None else {})}
    else:
        outputs = {}
    return done(status, comparisons=tuple(comparisons), errors=tuple(errors), notes=tuple(notes),
                not_applicable=not_applicable, bound=bound, attrs=attrs, shapes=shapes,
                tensorflow=behaviour + (f" ({detail})" if detail and behaviour != AGREES else ""),
                divergence=divergence, applicable=tuple(d.id for d in applicable), diagnosis=found, outputs=outputs)


def against_reference(case: Case, dtype: str, backend) -> Comparison:
    """``backend``'s output on ``case`` at ``dtype``, compared with the reference's under the case's bound.

    No TensorFlow: for checking a backend's translations on its own. The reference's and the backend's
    exceptions (``harness.backends.NotCovered`` included) propagate.
    """
    from harness import backends

    spec = ops.get(case.op)
    arrays = operand_arrays(case, dtype)
    attrs = spec.resolved(arrays, case.attrs)
    ref = spec.call(spec.reference, arrays, attrs)
    out = backends.run(backend, case.op, arrays, attrs, dtype)
    return compare(backend.name, out, REFERENCE, ref, bound_for(spec.reference, arrays, attrs, dtype_of(dtype), case.tolerance))


def run_backend(case: Case, dtype: str, backend, divergences: Sequence[Divergence] = (), env: Environment | None = None,
                keep_outputs: bool = False) -> Outcome:
    """Check ``backend`` (``harness.backends.Backend``) on ``case`` at ``dtype`` against TensorFlow, the oracle.

    Where TensorFlow agrees with the reference, the backend must agree with TensorFlow. Where it does not (a known
    divergence, an error, an abort), the backend is checked against the reference instead, and agreeing with
    either is noted. A disagreement is ``xfailed`` when a known divergence declared for this backend
    (``backend:`` in cases/known_divergences.yaml) applies and says what it does; ``skipped`` when the backend
    does not cover the case (op, dtype, layout) or the case is an error contract. Never raises.
    """
    from harness import backends

    start = time.perf_counter()
    env = env or Environment.current()
    spec = ops.get(case.op)

    def done(status: str, **kw) -> Outcome:
        return Outcome(case, dtype, status, seconds=time.perf_counter() - start, backend=backend.name, **kw)

    if case.expect_error:
        return done("skipped", skip_reason="an error contract: only TensorFlow and the reference are checked")
    why = backend.covers(case.op, dtype)
    if why:
        return done("skipped", skip_reason=why)
    try:
        arrays = operand_arrays(case, dtype)
    except (CaseError, ValueError) as exc:
        return done("failed", errors=(f"malformed case: {exc}",))
    shapes = {name: a.shape for name, a in arrays.items()}
    try:
        attrs = spec.resolved(arrays, case.attrs)
        ref = spec.call(spec.reference, arrays, attrs)
    except ValueError as exc:
        return done("failed", errors=(f"the reference rejects this case: {exc}",), shapes=shapes)
    shapes["output"] = ref.shape
    bound = bound_for(spec.reference, arrays, attrs, dtype_of(dtype), case.tolerance)
    tf_result = call_tensorflow(case.op, tuple(arrays[o.name] for o in spec.operands), attrs)
    tf_value = tf_result.value if isinstance(tf_result, Returned) else None
    tf_check = compare(TENSORFLOW, tf_value, REFERENCE, ref, bound) if tf_value is not None else None
    tf_right = tf_check is not None and tf_check.ok
    feats = features(case, dtype, arrays, attrs, ref, env)
    applicable = matching(divergences, feats, env, backend=backend.name)

    try:
        out = backends.run(backend, case.op, arrays, attrs, dtype)
    except backends.NotCovered as exc:
        return done("skipped", skip_reason=str(exc), attrs=attrs, shapes=shapes)
    except backends.TensorFlowError as exc:
        out, behaviour, detail = None, exc.behaviour, exc.detail
    except Exception as exc:  # the backend's own error is this case's outcome
        out, behaviour, detail = None, f"raises {type(exc).__name__}", _first_line(str(exc))
    comparisons, notes, errors = [], [], []
    if out is not None:
        out = np.asarray(out)
        if out.dtype != ref.dtype:
            notes.append(f"{backend.name} returned {out.dtype}; compared after casting to {ref.dtype}")
            out = out.astype(ref.dtype) if out.shape == ref.shape else out
        against_ref = compare(backend.name, out, REFERENCE, ref, bound)
        comparisons.append(against_ref)
        if tf_value is not None:
            # TensorFlow's output can have another shape than the reference's (a known divergence): then each of its
            # elements gets the largest per-element bound.
            tf_bound = bound if tf_value.shape == ref.shape else dataclasses.replace(
                bound, per_element=np.full(tf_value.shape, bound.per_element.max(initial=0.0)))
            comparisons.append(compare(backend.name, out, TENSORFLOW, tf_value, tf_bound))
        if tf_right:
            ok = comparisons[-1].ok
        else:
            tf_does = "raised or died" if tf_value is None else "disagrees with the reference"
            shares = tf_value is not None and comparisons[-1].ok
            ok = against_ref.ok or shares
            notes.append(f"TensorFlow {tf_does} here; {backend.name} "
                         + ("agrees with the reference" if against_ref.ok else
                            "agrees with TensorFlow" if shares else "agrees with neither"))
        if ok:
            behaviour, detail = AGREES, ""
        elif any(c.detail.startswith("shape") for c in comparisons):
            behaviour, detail = "wrong_shape", f"{backend.name} returned shape {list(out.shape)}, the reference {list(ref.shape)}"
        else:
            behaviour, detail = "wrong_values", f"{backend.name}'s values are outside the bound"
    if tf_check is not None:
        comparisons.append(tf_check)
    tf_behaviour = (f"raises {tf_result.error_class}" if isinstance(tf_result, Raised)
                    else "aborts" if isinstance(tf_result, Died) else None)
    if behaviour != AGREES and behaviour == tf_behaviour:  # refusing (or dying) exactly as eager TensorFlow does
        notes.append(f"{backend.name} {behaviour}, as TensorFlow does here: {detail}")
        behaviour = AGREES
    divergence = next((d for d in applicable if d.expects(behaviour)), None)
    if behaviour == AGREES:
        status = "passed"
        if applicable and not all(d.strict == "per_entry" for d in applicable):
            status = "failed"
            errors.append(f"known divergence {', '.join(d.id for d in applicable)} did not occur: {backend.name} now "
                          f"agrees (update {applicable[0].file})")
    elif divergence is not None:
        status = "xfailed"
        notes.append(f"known divergence {divergence.id!r}: {divergence.summary} ({detail})")
    else:
        status = "failed"
        errors.append(f"{backend.name} {behaviour}: {detail}" if detail else f"{backend.name} {behaviour}")
    outputs = {}
    if keep_outputs or status == "failed":
        outputs = {REFERENCE: ref, **({TENSORFLOW: tf_value} if tf_value is not None else {}),
                   **({backend.name: out} if out is not None else {})}
    return done(status, comparisons=tuple(comparisons), errors=tuple(errors), notes=tuple(notes), bound=bound,
                attrs=attrs, shapes=shapes, tensorflow=(AGREES if tf_right else "disagrees with the reference"
                                                        if tf_value is not None else type(tf_result).__name__.lower()),
                divergence=divergence, applicable=tuple(d.id for d in applicable), outputs=outputs)
