"""Preparing a case at a dtype: every path that runs a case starts here.

The default run, every backend, the ``.npz`` export, ``harness repro`` and the relations all need the same four
things, computed the same way: the operands as the op takes them, the attributes as passed to the op (symbolic
values resolved), the reference's output (or its ValueError) and the tolerance bound around it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from harness import ops
from harness.check import budget as memory
from harness.conv import reference as reference_kernels
from harness.conv.dtypes import dtype_of
from harness.conv.tolerance import Bound
from harness.registry.cases import Case, expected_array, operand_arrays
from harness.registry.divergences import Divergence, features, matching
from harness.tf.environment import Environment
from harness.tf.machine import MemoryBudget


@dataclass(frozen=True)
class Prepared:
    """A case at one dtype, ready to run.

    ``arrays``: every operand by argument name, in the layout the op takes; ``attrs``: as passed to the op (the
    case's own when resolving them failed); ``reference``: the reference output in the op's data_format, or None
    with ``reference_error`` when the reference rejects the configuration; ``expected``: the case's expected output,
    if any; ``bound``: the tolerance around the reference output (None without one, and for an error contract;
    computed on first use, as it costs two more runs of the reference).
    """

    case: Case
    dtype: str
    arrays: Mapping[str, np.ndarray]
    attrs: dict
    reference: np.ndarray | None
    reference_error: ValueError | None
    expected: np.ndarray | None
    spec: ops.OpSpec = field(repr=False, compare=False)

    @cached_property
    def bound(self) -> Bound | None:
        if self.reference is None or self.expects_error:
            return None
        return self.spec.bound(self.arrays, self.attrs, dtype_of(self.dtype), self.case.tolerance)

    def reference_output(self) -> np.ndarray:
        """``reference``, for a caller that has handled ``reference_error``: RuntimeError where there is none."""
        if self.reference is None:
            raise RuntimeError(f"{self.case.id}[{self.dtype}]: no reference output ({self.reference_error})")
        return self.reference

    def reference_bound(self) -> Bound:
        """``bound``, for a caller that has handled ``reference_error`` and error contracts: RuntimeError where there
        is none."""
        bound = self.bound
        if bound is None:
            raise RuntimeError(f"{self.case.id}[{self.dtype}]: no bound (no reference output, or an error contract)")
        return bound

    def tensorflow_bound(self, env: Environment) -> Bound:
        """``reference_bound`` for TensorFlow's output: bit equality at the elements whose partial sums are exact in
        float32 where every TensorFlow kernel of the op was measured to round once at this dtype and padding kind
        (``Environment.rounds_once``, ``Bound.exact_in``)."""
        bound = self.reference_bound()
        if env.rounds_once(self.spec.tf_kernels, self.dtype, self.spec.tf_padding_kind(self.attrs)):
            return bound.exact_in(np.float32)
        return bound

    def features(self, env: Environment) -> dict:
        """The facts about this case that known divergences' conditions name (``harness.registry.divergences``)."""
        return features(
            self.case.op,
            self.dtype,
            self.arrays,
            self.attrs,
            self.reference,
            env,
            expect_error=self.expects_error,
            tolerance=self.case.tolerance,
        )

    @property
    def expects_error(self) -> bool:
        """Whether the case is an error contract: it says so (``expect_error``), or the reference decides and
        rejects it."""
        return self.case.expect_error is not None or (self.case.reference_decides and self.reference_error is not None)

    def applicable(self, known: Sequence[Divergence], env: Environment, backend: str | None = None) -> list[Divergence]:
        """The known divergences of TensorFlow (or of ``backend``) that apply to this case in ``env``."""
        return matching(known, self.features(env), env, backend=backend)

    @property
    def args(self) -> tuple[np.ndarray, ...]:
        """The operands in the op's operand order."""
        return tuple(self.arrays[o.name] for o in self.spec.operands)

    @property
    def arguments(self) -> tuple[tuple, dict]:
        """(positional, keyword) arguments as TensorFlow's function takes them (``OpSpec.arguments``)."""
        return self.spec.arguments(self.arrays, self.attrs)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Operand shapes, and the output's when the reference computed one."""
        shapes = {name: a.shape for name, a in self.arrays.items()}
        if self.reference is not None:
            shapes["output"] = self.reference.shape
        return shapes


def prepare(case: Case, dtype: str, budget: MemoryBudget | None = None, check: str | None = "forward") -> Prepared:
    """``case`` at ``dtype`` (see ``Prepared``). Raises ``CaseError`` or ValueError when the case's own operands or
    expected output cannot be built (a malformed case); a configuration the reference rejects is not an error here.

    First, before any operand is generated, ``harness.check.budget`` estimates the memory of the ``check``
    ("forward", or "gradients") from the case's shapes and raises ``OverBudget`` when it needs more than
    ``budget`` (default: ``harness.tf.machine.memory_budget()``); ``check=None`` skips the estimate (a caller
    that only reads the case's features)."""
    if check is not None:
        memory.check(case, dtype, budget, check)
    spec = ops.get(case.op)
    arrays = operand_arrays(case, dtype)
    expected = expected_array(case, dtype)
    try:
        attrs = spec.resolved(arrays, case.attrs)
        with blocks(case):
            reference, error = np.asarray(spec.call(spec.reference, arrays, attrs)), None
    except ValueError as exc:
        attrs, reference, error = dict(case.attrs), None, exc
    return Prepared(case, dtype, arrays, attrs, reference, error, expected, spec)


def blocks(case: Case):
    """The reference's block size for ``case`` (its ``block_bytes``), as a context for its reference calls."""
    return reference_kernels.block_bytes(case.block_bytes) if case.block_bytes else contextlib.nullcontext()
