"""Name the convention behind a disagreement: re-run the reference under each usual suspect.

When an implementation's output differs from the reference's, the usual causes
are a handful of conventions (kernel rotated, H and W swapped, SAME's odd pixel
or explicit pads on the wrong side, depthwise channel order, the transpose
filter's in/out axes, the transpose crop). Each is a ``suspect`` mutant in
``harness.check.mutants``; this module recomputes the reference with each suspect's
mistake and reports those that reproduce the other output within the case's
tolerance bound. Only failing comparisons are diagnosed, so passing runs pay
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from harness import ops
from harness.check import mutants
from harness.conv.tolerance import Bound, compare


@dataclass(frozen=True)
class Finding:
    subject: str  # the implementation whose output was explained, e.g. "tensorflow"
    suspect: mutants.Mutant

    def line(self) -> str:
        return (
            f"{self.subject} equals the reference computed with this mistake: {self.suspect.description} "
            f"[{self.suspect.name}]; the convention at fault: {self.suspect.convention}"
        )


def usual_suspects(
    op: str, arrays: Mapping[str, np.ndarray], attrs: Mapping, other: np.ndarray, bound: Bound, subject: str
) -> list[Finding]:
    """The suspects under which the reference reproduces ``other`` (an output of the op's dtype)."""
    other = np.asarray(other)
    found = []
    for suspect in mutants.suspects():
        with suspect.apply():
            spec = ops.get(op)  # inside the patch: a suspect may replace the registry's reference
            try:
                out = np.asarray(spec.call(spec.reference, arrays, attrs))
            except Exception:  # the mistake does not even run on this configuration (e.g. shapes clash)
                continue
        if (
            out.shape == other.shape == bound.per_element.shape
            and compare(subject, other, "suspect", out.astype(other.dtype), bound).ok
        ):
            found.append(Finding(subject, suspect))
    return found


def explain(
    op: str, arrays: Mapping[str, np.ndarray], attrs: Mapping, other: np.ndarray, bound: Bound, subject: str
) -> str:
    """One line for a failure message: which convention explains ``subject``'s output, or that none does."""
    found = usual_suspects(op, arrays, attrs, other, bound, subject)
    if found:
        return "; ".join(f.line() for f in found)
    names = ", ".join(s.name for s in mutants.suspects())
    return f"{subject}: none of the usual suspects ({names}) reproduces its output"
