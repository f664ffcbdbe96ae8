"""Deciding a verdict: the one place that turns what an implementation did into passed, xfailed or failed.

What an implementation did is one *behaviour*: ``agrees``, ``wrong_shape``, ``wrong_values``, ``raises <ErrorClass>``,
``aborts`` or ``returns`` (a value where an error was expected). ``verdict`` decides the status from it, from the
known divergences that apply to the case, and from any failure the case has besides (the reference disagreeing
with a textbook formulation or the expected output):

* ``passed``: no other failure, and the implementation ``agrees``;
* ``xfailed``: a known divergence applies and the implementation did what it declares;
* ``failed``: anything else, including a known divergence that no longer occurs (it is stale: update the entry),
  unless every applicable entry is ``strict: per_entry`` (the implementation may be right by coincidence; the
  plugin fails the run when no case of such an entry diverges any more).

The other functions sum up an implementation's output as a behaviour: TensorFlow's call (``tensorflow_behaviour``,
``tensorflow_error_behaviour``) and another implementation against TensorFlow, the oracle (``against_oracle``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.conv.tolerance import Bound, Comparison, compare
from harness.tf.isolation import Died, Raised

if TYPE_CHECKING:
    from harness.registry.divergences import Divergence

REFERENCE = "reference"
TENSORFLOW = "tensorflow"
AGREES = "agrees"


@dataclass(frozen=True)
class Verdict:
    status: str  # passed | xfailed | failed
    divergence: Divergence | None = None  # the known divergence that excused it
    errors: tuple[str, ...] = ()  # why it failed
    notes: tuple[str, ...] = ()  # what happened that is not a failure
    # every known divergence that excused a part of it (a gradient item's tape and raw ops, a quantized item's paths);
    # ``divergence`` is the first of them
    diverged: tuple[Divergence, ...] = ()


def verdict(
    subject: str,
    behaviour: str,
    detail: str,
    applicable: Sequence,
    errors: Sequence[str] = (),
    *,
    error_contract: bool = False,
) -> Verdict:
    """The status of a case for ``subject`` ("TensorFlow", or a backend's name) that did ``behaviour`` (``detail``
    says how), given the known divergences ``applicable`` to the case (in file order) and the case's other
    ``errors``. ``error_contract``: the case expects an error, and ``agrees`` means the implementation raised it."""
    errors, notes = list(errors), []
    divergence = next((d for d in applicable if d.expects(behaviour)), None)
    status = "failed" if errors else "passed"
    if applicable:
        ids = ", ".join(repr(d.id) for d in applicable)
        if behaviour == AGREES and all(d.strict in ("per_entry", "nondeterministic") for d in applicable):
            notes.append(f"known divergence {ids} did not occur for this configuration (checked per entry)")
        elif behaviour == AGREES:
            errors.append(
                f"known divergence {ids} did not occur: {subject} now agrees with the reference "
                f"(update {applicable[0].file})"
            )
        elif divergence is not None:
            notes.append(
                f"known divergence {divergence.id!r}: {divergence.summary}" + (f" ({detail})" if detail else "")
            )
            status = "failed" if errors else "xfailed"
        else:
            declared = " or ".join(sorted({b for d in applicable for b in d.tensorflow_does}))
            errors.append(f"known divergence {ids} says {subject} {declared}, but it {behaviour}: {detail}")
    elif behaviour != AGREES:
        errors.append(f"{subject} {behaviour}: {detail}" if detail else f"{subject} {behaviour}")
    elif error_contract and detail:
        notes.append(f"{subject} raised {detail}")
    if errors:
        status = "failed"
    excused = divergence if status == "xfailed" else None
    return Verdict(status, excused, tuple(errors), tuple(notes), (excused,) if excused else ())


def combined(verdicts: Sequence[Verdict]) -> Verdict:
    """One status for several subjects checked on one item (a gradient item: tf.GradientTape, then each raw backprop
    op): failed if any failed, else xfailed if any was excused by a known divergence, else passed."""
    status = (
        "failed"
        if any(v.status == "failed" for v in verdicts)
        else "xfailed"
        if any(v.status == "xfailed" for v in verdicts)
        else "passed"
    )
    # every entry that excused a part, each once, in order: the first is the one that excused the item
    excused = {d.id: d for v in verdicts if v.status == "xfailed" for d in v.diverged} if status == "xfailed" else {}
    diverged = tuple(excused.values())
    return Verdict(
        status,
        diverged[0] if diverged else None,
        tuple(e for v in verdicts for e in v.errors),
        tuple(n for v in verdicts for n in v.notes),
        diverged,
    )


# --- behaviours -----------------------------------------------------------------------------


def _first_line(text: str) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:300] if lines else ""


def output_behaviour(
    subject: str, comparisons: Sequence[Comparison], out: np.ndarray, ref: np.ndarray, label: str | None = None
) -> tuple[str, str]:
    """(behaviour, detail) of ``subject``'s output from its comparisons: ``wrong_shape``, ``wrong_values`` or
    ``agrees``; ``label`` names the subject in the detail (default: its name)."""
    label = label or subject
    checks = [c for c in comparisons if c.subject == subject]
    if any(not c.ok and c.detail.startswith("shape") for c in checks):
        return "wrong_shape", f"{label} returned shape {list(np.shape(out))}, the reference {list(ref.shape)}"
    if any(not c.ok for c in checks):
        return "wrong_values", f"{label}'s values are outside the bound"
    return AGREES, ""


def checks_behaviour(label: str, checks: Sequence[Comparison]) -> tuple[str, str]:
    """(behaviour, detail) of ``label``'s outputs from their comparisons with the reference's: ``wrong_shape`` if
    any has another shape, else ``wrong_values`` if any is outside its bound, else ``agrees``."""
    bad = [c for c in checks if not c.ok]
    if not bad:
        return AGREES, ""
    kind = "wrong_shape" if any(c.detail.startswith("shape") for c in bad) else "wrong_values"
    return kind, f"{label}: " + "; ".join(c.line() for c in bad)


def call_behaviour(result, label: str = "TensorFlow") -> tuple[str, str] | None:
    """(behaviour, detail) of a TensorFlow call that raised or died; None when it returned."""
    if isinstance(result, Died):
        return "aborts", f"the {label} process died ({result.how}): {result.stderr_tail}"
    if isinstance(result, Raised):
        return f"raises {result.error_class}", _first_line(result.message)
    return None


def tensorflow_behaviour(
    result, ref: np.ndarray, bound: Bound
) -> tuple[str, str, np.ndarray | None, Comparison | None]:
    """(behaviour, detail, TensorFlow's output or None, its comparison with the reference) of a TensorFlow call
    (``harness.tf.isolation``'s Returned, Raised or Died) for a case that computes a value."""
    failed = call_behaviour(result)
    if failed is not None:
        return (*failed, None, None)
    value = np.asarray(result.value)
    check = compare(TENSORFLOW, value, REFERENCE, ref, bound)
    behaviour, detail = output_behaviour(TENSORFLOW, [check], value, ref, label="TensorFlow")
    return behaviour, detail, value, check


def tensorflow_error_behaviour(result, want: str | None) -> tuple[str, str]:
    """(behaviour, detail) of a TensorFlow call for an error contract expecting error class ``want`` (None: any
    error, where the reference decides that the input is invalid but not which class TensorFlow raises)."""
    if isinstance(result, Died):
        return "aborts", f"the TensorFlow process died ({result.how}): {result.stderr_tail}"
    if isinstance(result, Raised):
        behaviour = AGREES if want is None or result.error_class == want else f"raises {result.error_class}"
        return behaviour, f"{result.error_class}: {_first_line(result.message)}"
    value = np.asarray(result.value)
    zeros = " (all zeros)" if value.size and not np.any(value) else ""
    instead = f"raising {want}" if want else "raising an error"
    return "returns", f"TensorFlow returned an array of shape {list(value.shape)}{zeros} instead of {instead}"


def against_oracle(
    subject: str,
    out: np.ndarray,
    ref: np.ndarray,
    tf_value: np.ndarray | None,
    tf_right: bool,
    bound: Bound,
    tf_note: str = "",
) -> tuple[list[Comparison], str, str, list[str]]:
    """An implementation's output judged with TensorFlow as the oracle: (comparisons, behaviour, detail, notes).

    Where TensorFlow agrees with the reference (``tf_right``), ``out`` must agree with TensorFlow; where it does
    not (it diverges, raised or died), ``out`` is checked against the reference, and agreeing with either passes.
    ``tf_note`` qualifies what TensorFlow did in that note (e.g. the known divergence behind it).
    """
    against_ref = compare(subject, out, REFERENCE, ref, bound)
    comparisons, notes = [against_ref], []
    if tf_value is not None:
        # TensorFlow's output can have another shape than the reference's (a known divergence): then each of its
        # elements gets the largest per-element bound.
        tf_bound = (
            bound
            if tf_value.shape == ref.shape
            else dataclasses.replace(bound, per_element=np.full(tf_value.shape, bound.per_element.max(initial=0.0)))
        )
        comparisons.append(compare(subject, out, TENSORFLOW, tf_value, tf_bound))
    if tf_right:
        # Where a partial sum may overflow, TensorFlow's infinity or NaN is one of several right outcomes
        # (``Bound.overflow``): agreeing with the reference under the same bound is right too.
        ok = comparisons[-1].ok or (bound.overflow is not None and against_ref.ok)
    else:
        tf_does = ("raised or died" if tf_value is None else "disagrees with the reference") + " here" + tf_note
        shares = tf_value is not None and comparisons[-1].ok
        ok = against_ref.ok or shares
        notes.append(
            f"TensorFlow {tf_does}; {subject} "
            + (
                "agrees with the reference"
                if against_ref.ok
                else "agrees with TensorFlow"
                if shares
                else "agrees with neither"
            )
        )
    if ok:
        return comparisons, AGREES, "", notes
    behaviour, detail = output_behaviour(subject, [c for c in comparisons if not c.ok], out, ref)
    return comparisons, behaviour, detail, notes
