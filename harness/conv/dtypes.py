"""The dtypes the harness knows, by the names TensorFlow uses, and how the reference accumulates.

bfloat16 comes from ``ml_dtypes`` (the package TensorFlow itself uses for it), so
NumPy code can hold bfloat16 arrays without importing TensorFlow.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from numpy.typing import DTypeLike

DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "int32": np.dtype(np.int32),
}


def dtype_of(name: str) -> np.dtype:
    """The NumPy dtype for a TensorFlow dtype name; ValueError naming it if unknown."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPES)}") from None


def name_of(dtype: DTypeLike) -> str:
    """The TensorFlow name of a NumPy dtype (inverse of ``dtype_of``)."""
    dtype = np.dtype(dtype)
    for name, dt in DTYPES.items():
        if dt == dtype:
            return name
    raise ValueError(f"unsupported dtype {dtype}")


def is_integer(dtype: DTypeLike) -> bool:
    return np.issubdtype(np.dtype(dtype), np.integer)


def accumulator(dtype: DTypeLike) -> np.dtype:
    """The dtype the reference sums in: float64 for every float, int64 for ints."""
    return np.dtype(np.int64) if is_integer(dtype) else np.dtype(np.float64)


def unit_roundoff(dtype: DTypeLike) -> float:
    """u = 2**-p for a float dtype with p significand bits (eps / 2); 0 for integers."""
    if is_integer(dtype):
        return 0.0
    return float(ml_dtypes.finfo(np.dtype(dtype)).eps) / 2.0


def exact_integer_limit(dtype: DTypeLike) -> int:
    """Largest N such that every integer in [-N, N] is exactly representable."""
    dtype = np.dtype(dtype)
    if is_integer(dtype):
        return int(np.iinfo(dtype).max)
    return 2 ** (ml_dtypes.finfo(dtype).nmant + 1)


def smallest_subnormal(dtype: DTypeLike) -> float:
    """The smallest positive subnormal value of a float dtype (the spacing of its subnormals); 0 for integers."""
    if is_integer(dtype):
        return 0.0
    return float(ml_dtypes.finfo(np.dtype(dtype)).smallest_subnormal)
