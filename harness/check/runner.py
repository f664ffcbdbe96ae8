"""Run one case at one dtype through every implementation.

The reference is the pivot. TensorFlow (called in an isolated child process, see
``harness.tf.isolation``) and every applicable textbook formulation are compared
with it, and everything is compared with the case's expected output when it has
one, all under the single bound from ``harness.conv.tolerance``. A case is prepared
by ``harness.check.prepare`` and its status decided by ``harness.check.verdict``,
as on every other path (backends, the .npz exchange).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness import backends, ops
from harness.check import diagnose as diagnosis
from harness.check.budget import NOT_RUN, OverBudget
from harness.check.prepare import Prepared, blocks, prepare
from harness.check.quantized import PATHS as QUANTIZED_PATHS
from harness.check.quantized import run_quantized
from harness.check.verdict import (
    AGREES,
    REFERENCE,
    TENSORFLOW,
    Verdict,
    against_oracle,
    call_behaviour,
    checks_behaviour,
    combined,
    tensorflow_behaviour,
    tensorflow_error_behaviour,
    verdict,
)
from harness.conv.dtypes import dtype_of
from harness.conv.tolerance import Bound, Comparison, bound_for, compare
from harness.ops import gradients as reference_gradients
from harness.registry.cases import Case, CaseError
from harness.registry.divergences import Divergence, features, in_scope, matching
from harness.tf.environment import Environment
from harness.tf.isolation import Raised, Result, Returned, call_tensorflow, retire_server


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
    diverged: tuple[str, ...] = ()  # ids of every known divergence that excused a part of it (``divergence`` first)
    diagnosis: tuple[str, ...] = ()  # for each disagreeing output, the usual suspect that explains it (or none)
    seconds: float = 0.0
    # Outputs by implementation ("reference", "tensorflow", "textbook:..."), in the op's layout: kept only for a
    # failure (for the report's heatmaps) or when asked (``harness show``), so a run does not hold every output.
    outputs: dict = field(default_factory=dict, repr=False, compare=False)
    backend: str | None = None  # the backend checked against TensorFlow (``run_backend``); None: the default item
    skip_reason: str = ""  # status "skipped": why the backend does not cover this case
    check: str = "forward"  # what was checked: the op's output ("forward") or its "gradients" (``run_gradients``)
    features: dict = field(default_factory=dict)  # the case's divergence features (``divergences.features``)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def worst_margin(self) -> float:
        return max((c.margin for c in self.comparisons), default=0.0)

    def report(self) -> str:
        """A human-readable account, as shown for a failing pytest item."""
        item = (
            f"{self.dtype}@{self.backend}"
            if self.backend
            else f"{self.dtype}:{self.check}"
            if self.check != "forward"
            else self.dtype
        )
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


def _returned(result: Result) -> Returned:
    """A TensorFlow call's result, for a call ``call_behaviour`` found neither raised nor died."""
    if not isinstance(result, Returned):
        raise RuntimeError(f"expected TensorFlow's call to have returned, got {result!r}")
    return result


def _diagnose(op: str, arrays, attrs, outputs: dict, comparisons, bound) -> tuple[str, ...]:
    """Explain every output that disagrees with the reference (same shape) by a usual suspect."""
    lines = []
    for c in comparisons:
        if c.ok or c.against != REFERENCE or c.subject not in outputs:
            continue
        lines.append(diagnosis.explain(op, arrays, attrs, outputs[c.subject], bound, c.subject))
    return tuple(lines)


def _textbook(p: Prepared) -> tuple[dict, dict, list[str]]:
    """(outputs by "textbook:<name>", not applicable formulations and why, errors) of the case's textbook
    formulations."""
    outputs: dict[str, np.ndarray] = {}
    not_applicable: dict[str, str] = {}
    errors: list[str] = []
    for formulation in p.spec.textbook:
        # sliding windows over an empty axis: nothing for the documents' methods to compute
        if p.reference_output().size == 0:
            not_applicable[formulation.name] = "empty output"
            continue
        if p.arrays[p.spec.data.name].ndim != len(p.spec.data_format(p.attrs)):
            not_applicable[formulation.name] = "batch axes beyond the layout's (the documents' methods take one)"
            continue
        try:
            with np.errstate(all="ignore"):  # IEEE arithmetic, as the reference's
                out = formulation.run(p.arrays, p.attrs)
        except ops.NotApplicable as why:
            not_applicable[formulation.name] = str(why)
            continue
        except Exception as exc:  # a bug in a formulation or its pairing is this case's failure, not a crash
            errors.append(f"textbook:{formulation.name} raised {type(exc).__name__}: {exc}")
            continue
        with np.errstate(over="ignore"):  # beyond the dtype's range: +-inf, as the reference's cast
            outputs[f"textbook:{formulation.name}"] = np.asarray(out).astype(dtype_of(p.dtype))
    return outputs, not_applicable, errors


def run_case(
    case: Case,
    dtype: str,
    divergences: Sequence[Divergence] = (),
    env: Environment | None = None,
    diagnose: bool = True,
    keep_outputs: bool = False,
) -> Outcome:
    """Run ``case`` at ``dtype``; never raises for a bad case or a failing implementation.

    With ``diagnose``, an output that disagrees with the reference is explained by re-running the reference under
    the usual suspects (``harness.check.diagnose``); the mutation self-test turns that off. ``keep_outputs`` keeps
    every implementation's output in ``Outcome.outputs`` (a failing outcome always keeps them).
    """
    start = time.perf_counter()
    env = env or Environment.current()

    def done(status: str, **kw) -> Outcome:
        return Outcome(case, dtype, status, seconds=time.perf_counter() - start, **kw)

    if case.quantization is not None:  # TFLite's quantized op: integers compared exactly (harness.check.quantized)
        status, fields = run_quantized(case, dtype, divergences, env, keep_outputs=keep_outputs)
        return done(status, **fields)
    try:
        p = prepare(case, dtype, env.memory)
    except OverBudget as exc:
        return done("failed", errors=(str(exc),), tensorflow=NOT_RUN)
    except (CaseError, ValueError) as exc:
        return done("failed", errors=(f"malformed case: {exc}",))
    shapes = {name: a.shape for name, a in p.arrays.items()}
    feats = p.features(env)
    applicable = matching(in_scope(divergences, "forward"), feats, env)
    tf_result = call_tensorflow(case.op, *p.arguments)
    _retire_if_aborting(applicable)

    errors: list[str] = []
    notes: list[str] = []
    comparisons: list[Comparison] = []
    not_applicable: dict[str, str] = {}
    outputs: dict[str, np.ndarray] = {}
    if case.reference_decides and p.reference_error is not None:  # rejected: TensorFlow must reject it too
        notes.append(f"reference raised ValueError: {p.reference_error}")
        behaviour, detail = tensorflow_error_behaviour(tf_result, None)
    elif case.expect_error:
        want = case.expect_error.tensorflow_error(feats["eigen_kernel"])
        if want is None:
            errors.append(
                "TensorFlow's kernel for this case was not measured (see the environment's probe), and "
                "the error contract names a different class for oneDNN's and Eigen's kernels"
            )
            want = "?"
        if p.reference_error is None:
            errors.append("the reference accepted this configuration, but the case expects ValueError")
        elif case.expect_error.missing(str(p.reference_error)):
            errors.append(
                f"the reference's ValueError does not mention "
                f"{', '.join(map(repr, case.expect_error.missing(str(p.reference_error))))}: {p.reference_error}"
            )
        else:
            notes.append(f"reference raised ValueError: {p.reference_error}")
        behaviour, detail = tensorflow_error_behaviour(tf_result, want)
    else:
        if p.reference_error is not None:
            return done("failed", errors=(f"the reference rejects this case: {p.reference_error}",), shapes=shapes)
        ref = p.reference_output()
        shapes["output"] = ref.shape
        if p.expected is not None and case.expected is not None and p.expected.shape != ref.shape:
            msg = (
                f"{case.file}: case {case.name!r}: field 'expected': shape {list(p.expected.shape)} (after "
                f"converting from layout {case.expected.layout!r}) does not match the output shape "
                f"{list(ref.shape)}"
            )
            return done("failed", errors=(msg,), attrs=p.attrs, shapes=shapes)
        bound = p.reference_bound()
        if isinstance(tf_result, Returned):
            outputs[TENSORFLOW] = tf_result.value
        textbook, not_applicable, errors = _textbook(p)
        outputs.update(textbook)
        # The textbook formulations sum in float64 and round once, as the reference: bit equality wherever their
        # float64 sums are exact (Bound.exact_in), which is where a rounding bug of either shows.
        tf_bound = p.tensorflow_bound(env)
        own = {TENSORFLOW: tf_bound, **{name: bound.exact_in(np.float64) for name in textbook}}
        comparisons = [compare(name, out, REFERENCE, ref, own.get(name, bound)) for name, out in outputs.items()]
        if p.expected is not None:
            comparisons.append(compare(REFERENCE, ref, "expected", p.expected, bound))
            comparisons += [compare(name, out, "expected", p.expected, bound) for name, out in outputs.items()]
        behaviour, detail, _, _ = tensorflow_behaviour(tf_result, ref, tf_bound)
        errors += [
            f"{c.subject} disagrees with {c.against}" for c in comparisons if not c.ok and c.subject != TENSORFLOW
        ]

    decided = verdict("TensorFlow", behaviour, detail, applicable, errors, error_contract=p.expects_error)
    found: tuple[str, ...] = ()
    if decided.status == "failed" and diagnose and p.bound is not None:
        found = _diagnose(case.op, p.arrays, p.attrs, outputs, comparisons, p.bound)
    if p.reference is not None and (keep_outputs or decided.status == "failed"):
        outputs = {REFERENCE: p.reference, **outputs, **({"expected": p.expected} if p.expected is not None else {})}
    else:
        outputs = {}
    return done(
        decided.status,
        comparisons=tuple(comparisons),
        errors=decided.errors,
        notes=tuple(notes) + decided.notes,
        not_applicable=not_applicable,
        bound=p.bound,
        attrs=p.attrs,
        shapes=shapes,
        tensorflow=behaviour + (f" ({detail})" if detail and behaviour != AGREES else ""),
        divergence=decided.divergence,
        diverged=tuple(d.id for d in decided.diverged),
        applicable=tuple(d.id for d in applicable),
        diagnosis=found,
        outputs=outputs,
        features=feats,
    )


def run_gradients(
    case: Case,
    dtype: str,
    divergences: Sequence[Divergence] = (),
    env: Environment | None = None,
    keep_outputs: bool = False,
) -> Outcome:
    """Check TensorFlow's gradients of ``case`` at ``dtype`` (the operands ``case.gradients`` names) against the
    reference's; never raises.

    For a fixed random output gradient ``dy`` (seeded by the case and dtype): ``tf.GradientTape``'s gradient with
    respect to each operand against ``harness.ops.gradients``, and the op's raw backprop op for that operand
    (``OpSpec.raw_backprop``) against the reference's, each under the bound ``harness.conv.tolerance`` derives for
    that gradient function (with the case's tolerance override). Known divergences: ``scope: gradient`` entries of
    the op for the tape; for each raw op, the forward entries of that raw op, matched by the features of its own
    call (as a registry case of it would be). A configuration where a forward
    divergence applies is skipped: TensorFlow's forward op is already known to differ there.
    """
    start = time.perf_counter()
    env = env or Environment.current()

    def done(status: str, **kw) -> Outcome:
        return Outcome(case, dtype, status, seconds=time.perf_counter() - start, check="gradients", **kw)

    try:
        p = prepare(case, dtype, env.memory, "gradients")
    except OverBudget as exc:
        return done("failed", errors=(str(exc),), tensorflow=NOT_RUN)
    except (CaseError, ValueError) as exc:
        return done("failed", errors=(f"malformed case: {exc}",))
    if p.reference_error is not None:
        return done("failed", errors=(f"the reference rejects this case: {p.reference_error}",), shapes=p.shapes)
    feats = p.features(env)
    forward = matching(in_scope(divergences, "forward"), feats, env)
    if forward:
        return done(
            "skipped",
            attrs=p.attrs,
            shapes=p.shapes,
            applicable=tuple(d.id for d in forward),
            features=feats,
            skip_reason=f"known divergence of the forward op: {', '.join(d.id for d in forward)}",
        )
    tape_known = matching(in_scope(divergences, "gradient"), feats, env)
    raw_known: list[Divergence] = []  # the raw ops' own forward entries, by the features of each raw call
    ref = p.reference_output()
    dy = reference_gradients.output_gradient(f"{case.id}/{dtype}/dy", ref.shape, ref.dtype)
    operands = [o.name for o in p.spec.operands]
    with blocks(case):
        want = reference_gradients.gradients(case.op, p.arrays, p.attrs, dy)
    comparisons: list[Comparison] = []
    verdicts: list[Verdict] = []
    outputs: dict[str, np.ndarray] = {}
    shapes = {**p.shapes, "out_backprop": dy.shape}

    tape = call_tensorflow("gradients", (case.op, p.args, p.attrs, dy), {})
    _retire_if_aborting(tape_known)
    failed = call_behaviour(tape)
    checks = []
    for name in case.gradients:
        subject = f"tensorflow d/d{name}"
        if failed is None:
            got = np.asarray(_returned(tape).value[operands.index(name)])
            bound = bound_for(
                reference_gradients.gradient_function(case.op, name),
                {**p.arrays, "out_backprop": dy},
                p.attrs,
                dtype_of(dtype),
                case.tolerance,
            )
            checks.append(compare(subject, got, f"reference d/d{name}", want[name], bound))
            outputs[subject] = got
        outputs[f"reference d/d{name}"] = want[name]
    behaviour, detail = failed or checks_behaviour("tf.GradientTape", checks)
    verdicts.append(verdict("TensorFlow's tf.GradientTape gradient", behaviour, detail, tape_known))
    comparisons += checks
    tensorflow = [f"tape {behaviour}"]

    for name in case.gradients:
        raw = reference_gradients.raw_backprop(case.op, name, p.arrays, p.attrs, dy)
        if raw is None:
            continue
        with blocks(case):
            want_raw = raw.reference()
        raw_feats = features(raw.name, dtype, raw.operands, raw.attrs, want_raw, env)
        known_here = matching(in_scope(divergences, "forward"), raw_feats, env)
        raw_known += known_here
        result = call_tensorflow(raw.name, raw.args, raw.kwargs)
        _retire_if_aborting(known_here)
        failed = call_behaviour(result)
        if failed is None:
            got = np.asarray(_returned(result).value)
            check = compare(
                f"tensorflow {raw.name}",
                got,
                f"reference {raw.name}",
                want_raw,
                bound_for(raw.run, raw.operands, raw.kwargs, dtype_of(dtype), case.tolerance),
            )
            comparisons.append(check)
            outputs[check.subject], outputs[check.against] = got, want_raw
            behaviour, detail = checks_behaviour(raw.name, [check])
        else:
            behaviour, detail = failed
        verdicts.append(verdict(f"TensorFlow's {raw.name}", behaviour, detail, known_here))
        tensorflow.append(f"{raw.name} {behaviour}")

    decided = combined(verdicts)
    return done(
        decided.status,
        comparisons=tuple(comparisons),
        errors=decided.errors,
        notes=decided.notes,
        attrs=p.attrs,
        shapes=shapes,
        tensorflow="; ".join(tensorflow),
        divergence=decided.divergence,
        diverged=tuple(d.id for d in decided.diverged),
        applicable=tuple(dict.fromkeys(d.id for d in tape_known + raw_known)),
        features=feats,
        outputs=outputs if keep_outputs or decided.status == "failed" else {},
    )


def _retire_if_aborting(known: Sequence[Divergence]) -> None:
    """After a call that a known divergence says aborts: a fresh TensorFlow server for the next call, since such a
    call may corrupt the server's memory without dying and kill a later, unrelated call."""
    if any(does.startswith("aborts") for d in known for does in d.tensorflow_does):
        retire_server()


def against_reference(case: Case, dtype: str, backend) -> Comparison:
    """``backend``'s output on ``case`` at ``dtype``, compared with the reference's under the case's bound.

    No TensorFlow: for checking a backend's translations on its own. The reference's and the backend's
    exceptions (``harness.backends.NotCovered`` included) propagate.
    """
    p = prepare(case, dtype)
    if p.reference_error is not None:
        raise p.reference_error
    out = backends.run(backend, case.op, p.arrays, p.attrs, dtype)
    return compare(backend.name, out, REFERENCE, p.reference_output(), p.reference_bound())


def run_backend(
    case: Case,
    dtype: str,
    backend,
    divergences: Sequence[Divergence] = (),
    env: Environment | None = None,
    keep_outputs: bool = False,
) -> Outcome:
    """Check ``backend`` (``harness.backends.Backend``) on ``case`` at ``dtype`` against TensorFlow, the oracle.

    Where TensorFlow agrees with the reference, the backend must agree with TensorFlow. Where it does not (a known
    divergence, an error, an abort), the backend is checked against the reference instead, and agreeing with
    either is noted. A disagreement is ``xfailed`` when a known divergence declared for this backend
    (``backend:`` in cases/known_divergences.yaml) applies and says what it does; ``skipped`` when the backend
    does not cover the case (op, dtype, layout) or the case is an error contract. Never raises.
    """
    start = time.perf_counter()
    env = env or Environment.current()

    def done(status: str, **kw) -> Outcome:
        return Outcome(case, dtype, status, seconds=time.perf_counter() - start, backend=backend.name, **kw)

    if case.expect_error:
        return done("skipped", skip_reason="an error contract: only TensorFlow and the reference are checked")
    why = backend.covers(case.op, dtype)
    if why:
        return done("skipped", skip_reason=why)
    if case.quantization is not None:  # a quantized case: the backend is an interpreter path (LiteRT's)
        if backend.name not in QUANTIZED_PATHS:
            return done("skipped", skip_reason=f"{backend.name} runs no quantized model")
        status, fields = run_quantized(case, dtype, divergences, env, (backend.name,), keep_outputs)
        return done(status, **fields)
    try:
        p = prepare(case, dtype, env.memory)
    except OverBudget as exc:
        return done("failed", errors=(str(exc),), tensorflow=NOT_RUN)
    except (CaseError, ValueError) as exc:
        return done("failed", errors=(f"malformed case: {exc}",))
    if p.expects_error:
        return done(
            "skipped", skip_reason="the reference rejects this input: only TensorFlow and the reference are checked"
        )
    if p.reference_error is not None:
        return done(
            "failed",
            errors=(f"the reference rejects this case: {p.reference_error}",),
            shapes={name: a.shape for name, a in p.arrays.items()},
        )
    ref, bound = p.reference_output(), p.reference_bound()
    tf_result = call_tensorflow(case.op, *p.arguments)
    _, _, tf_value, tf_check = tensorflow_behaviour(tf_result, ref, bound)
    tf_right = tf_check is not None and tf_check.ok
    applicable = p.applicable(in_scope(divergences, "forward"), env, backend=backend.name)

    try:
        out = backends.run(backend, case.op, p.arrays, p.attrs, dtype)
    except backends.NotCovered as exc:
        return done("skipped", skip_reason=str(exc), attrs=p.attrs, shapes=p.shapes)
    except backends.TensorFlowError as exc:
        out, behaviour, detail = None, exc.behaviour, exc.detail
    except Exception as exc:  # the backend's own error is this case's outcome
        first = str(exc).strip().splitlines()
        out, behaviour, detail = None, f"raises {type(exc).__name__}", first[0][:300] if first else ""
    comparisons: list[Comparison] = []
    notes: list[str] = []
    if out is not None:
        out = np.asarray(out)
        if out.dtype != ref.dtype:
            notes.append(f"{backend.name} returned {out.dtype}; compared after casting to {ref.dtype}")
            out = out.astype(ref.dtype) if out.shape == ref.shape else out
        comparisons, behaviour, detail, oracle_notes = against_oracle(backend.name, out, ref, tf_value, tf_right, bound)
        notes += oracle_notes
    if tf_check is not None:
        comparisons.append(tf_check)
    tf_behaviour = (
        f"raises {tf_result.error_class}" if isinstance(tf_result, Raised) else "aborts" if tf_value is None else None
    )
    if behaviour != AGREES and behaviour == tf_behaviour:  # refusing (or dying) exactly as eager TensorFlow does
        notes.append(f"{backend.name} {behaviour}, as TensorFlow does here: {detail}")
        behaviour = AGREES
    decided = verdict(backend.name, behaviour, detail, applicable)
    outputs: dict[str, np.ndarray] = {}
    if keep_outputs or decided.status == "failed":
        outputs = {
            REFERENCE: ref,
            **({TENSORFLOW: tf_value} if tf_value is not None else {}),
            **({backend.name: out} if out is not None else {}),
        }
    return done(
        decided.status,
        comparisons=tuple(comparisons),
        errors=decided.errors,
        notes=tuple(notes) + decided.notes,
        bound=bound,
        attrs=p.attrs,
        shapes=p.shapes,
        tensorflow=(
            AGREES
            if tf_right
            else "disagrees with the reference"
            if tf_value is not None
            else type(tf_result).__name__.lower()
        ),
        divergence=decided.divergence,
        diverged=tuple(d.id for d in decided.diverged),
        applicable=tuple(d.id for d in applicable),
        outputs=outputs,
    )
