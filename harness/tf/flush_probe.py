"""Ask TensorFlow whether its kernels flush subnormal numbers to zero (runs inside the probe's TensorFlow server).

x86 CPUs can treat subnormal inputs as zero (DAZ) and flush subnormal results to zero (FTZ); TensorFlow turns both
on for its own threads, and oneDNN and Eigen may do so in their kernels. Whether it happens depends on the kernel
(oneDNN's or Eigen's), the dtype (float16 goes through conversions that keep its subnormals) and the build, so it
is measured per ``harness.tf.kernel_probe.KERNELS`` kernel, dtype and padding kind, on the probe's operands:

* **inputs** (DAZ): the data operand (input / out_backprop) holds a subnormal value ``s = min_normal / 2`` of the
  dtype and the other operand 4, so that every term ``4 s = 2 min_normal`` and every sum of them is normal: the
  exact output has no subnormal anywhere, and an output of zeros means the subnormal inputs were read as zero.
* **results** (FTZ): the data operand holds ``min_normal`` and the other ``2**-6``: every term and every output
  (at most 18 terms) is a subnormal the dtype represents exactly; an output of zeros means subnormal results (or
  intermediate products) were flushed.

Each fact is True (every output zero), False (every output exact), or the text of what came out otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes
import numpy as np

from harness.tf import wrappers

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
TESTS = ("inputs", "results")


def items(kernels: Sequence[str], paddings: Sequence[str]) -> list[str]:
    """The probe items: ``flush/<Kernel>/<dtype>/<padding>``."""
    return [f"flush/{k}/{d}/{p}" for k in kernels for d in FLOAT_DTYPES for p in paddings]


def _values(dtype: str, test: str) -> tuple[float, float, float]:
    """(data operand's value, other operand's value, each term's exact value) of one test."""
    tiny = float(ml_dtypes.finfo(np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)).smallest_normal)
    return (tiny / 2, 4.0, 2 * tiny) if test == "inputs" else (tiny, 2.0**-6, tiny / 64)


def _run(probe, kernel: str, dtype: str, padding: str, test: str) -> bool | str:
    data_value, other_value, term = _values(dtype, test)
    filled = {}
    arrays, _ = probe._operands(kernel, dtype, True)
    for name, a in arrays.items():
        data = name == "out_backprop" or (name == "input" and "out_backprop" not in arrays)
        filled[name] = np.full(a.shape, data_value if data else other_value, a.dtype)
    tf = wrappers.tf()
    out = probe._call(kernel, dtype, padding, True, lambda name, a: tf.constant(filled[name]))
    got = np.asarray(out.numpy()).astype(np.float64)
    if not np.any(got):
        return True
    # Every output element is a sum of whole terms: a nonzero multiple of the term, exact in the dtype.
    multiples = got / term
    if np.all(multiples == np.round(multiples)) and np.all(multiples >= 1):
        return False
    nonzero = got[got != 0]
    return f"partly: {int((got == 0).sum())} of {got.size} outputs zero, others e.g. {float(nonzero.flat[0])!r}"


def flush(probe, kernel: str, dtype: str, padding: str) -> dict:
    """{inputs, results}: whether this kernel flushes subnormal inputs / results to zero (see the module docstring);
    an exception's text for a call that failed. ``probe``: ``harness.tf.kernel_probe`` (its operands and call)."""
    found: dict = {}
    for test in TESTS:
        try:
            found[test] = _run(probe, kernel, dtype, padding, test)
        except Exception as exc:  # no kernel for the dtype, a refusing oneDNN: no fact
            text = str(exc).strip().splitlines()
            found[test] = f"error: {type(exc).__name__}: {text[0][:160] if text else ''}"
    return found
