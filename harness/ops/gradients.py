"""Reference gradients of every op of ``harness.ops.table``, from each spec's gradient rule
(``harness.ops.gradient_rules``).

For ``y = op(*operands, **attrs)`` and an output gradient ``dy`` (``y``'s shape and layout), ``gradients(op,
arrays, attrs, dy)`` returns ``d<sum(y * dy)>/d operand`` for every operand, in the operand's own layout and dtype:
what TensorFlow's ``tf.GradientTape.gradient(y, operands, output_gradients=dy)`` computes. Operands and ``dy`` are
converted to float64 (int64 for ints) first and each gradient is cast to its operand's dtype once, so chained
rules round once. No TensorFlow here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from harness.conv import reference
from harness.conv.dtypes import accumulator
from harness.ops.gradient_rules import raw_attrs
from harness.ops.spec import Arrays
from harness.ops.table import OPS, get

__all__ = [
    "RawBackprop",
    "gradients",
    "gradient_function",
    "output_gradient",
    "raw_attrs",
    "raw_backprop",
    "with_gradient",
]


def with_gradient() -> tuple[str, ...]:
    """The ops that have a gradient rule."""
    return tuple(name for name, spec in OPS.items() if spec.gradient is not None)


def gradients(op: str, arrays: Arrays, attrs: Mapping[str, Any], out_backprop: ArrayLike) -> dict[str, np.ndarray]:
    """The gradient of ``sum(op(*arrays, **attrs) * out_backprop)`` w.r.t. every operand.

    arrays: operand name -> array, in the layouts the op takes (as ``harness.ops``);
    attrs: the op's keyword attributes (symbolic ones are resolved here);
    out_backprop: the op's output shape and dtype. Returns operand name -> gradient,
    each of its operand's shape and dtype.
    """
    spec = get(op)
    if spec.gradient is None:
        raise ValueError(f"gradients: argument 'op'={op!r} has no gradient rule; known: {', '.join(with_gradient())}")
    names = [o.name for o in spec.operands]
    if sorted(arrays) != sorted(names):
        raise ValueError(f"gradients: argument 'arrays' has operands {sorted(arrays)}; {op} takes {names}")
    attrs = spec.resolved(arrays, attrs)
    y = spec.call(spec.reference, arrays, attrs)  # validates every forward argument, with the op's own messages
    dy = np.asarray(out_backprop)
    if dy.shape != y.shape or dy.dtype != y.dtype:
        raise ValueError(
            f"gradients: argument 'out_backprop' has shape {list(dy.shape)} and dtype {dy.dtype}; "
            f"{op}'s output has shape {list(y.shape)} and dtype {y.dtype}"
        )
    acc = accumulator(y.dtype)
    grads = spec.gradient(spec, {n: np.asarray(arrays[n]).astype(acc) for n in names}, attrs, dy.astype(acc))
    return {n: grads[n].astype(np.asarray(arrays[n]).dtype) for n in names}


def gradient_function(op: str, wrt: str) -> Callable[..., np.ndarray]:
    """A tf.nn-style callable ``f(*operands, out_backprop, **attrs) -> d/d wrt``, for ``harness.conv.tolerance.bound_for``.

    The gradient is linear in out_backprop and in every operand other than ``wrt``
    (it reads only ``wrt``'s shape), so bound_for's runs on absolute values and on
    ones give the sum of |terms| and the number of terms of each gradient element.
    """
    names = [o.name for o in get(op).operands]
    if wrt not in names:
        raise ValueError(f"gradient_function: argument 'wrt'={wrt!r} must be an operand of {op}: {', '.join(names)}")

    def gradient(*args: Any, **attrs: Any) -> np.ndarray:
        *operands, out_backprop = args
        return gradients(op, dict(zip(names, operands)), attrs, out_backprop)[wrt]

    gradient.__name__ = f"d_{op}_d_{wrt}"
    return gradient


def output_gradient(seed: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A fixed random output gradient (standard normal values in ``dtype``) for a gradient check named ``seed``."""
    return np.random.default_rng(zlib.crc32(seed.encode())).normal(size=shape).astype(dtype)


@dataclass(frozen=True)
class RawBackprop:
    """One call of a raw backprop op (``OpSpec.raw_backprop``) that gives an operand's gradient.

    ``args`` / ``kwargs``: as ``tf.raw_ops`` (and ``harness.tf.wrappers.<name>``) take them; ``operands``: the two
    array arguments it is linear in (filter and out_backprop for an input gradient; input and out_backprop for a
    filter gradient), with ``run(*operands.values(), **kwargs)`` the reference, so that
    ``harness.conv.tolerance.bound_for(run, operands, kwargs, dtype)`` bounds it.
    """

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    operands: dict[str, np.ndarray]
    run: Callable[..., np.ndarray]

    def reference(self) -> np.ndarray:
        return self.run(*self.operands.values(), **self.kwargs)

    @property
    def attrs(self) -> dict[str, Any]:
        """The raw op's attributes by its ``OpSpec``'s names: its sizes argument, then ``kwargs``."""
        if "filter" in self.operands:  # backprop_input(input_sizes, filter, out_backprop)
            return {"input_sizes": self.args[0], **self.kwargs}
        return {"filter_sizes": self.args[1], **self.kwargs}


def raw_backprop(
    op: str, wrt: str, arrays: Arrays, attrs: Mapping[str, Any], out_backprop: np.ndarray
) -> RawBackprop | None:
    """The raw backprop op call that gives ``d op / d wrt`` for these operands, attributes (resolved) and output
    gradient, or None when the op has none for that operand."""
    spec = get(op)
    name = spec.raw_backprop.get(wrt)
    if name is None:
        return None
    data, filt = arrays[spec.data.name], arrays[spec.kernel_operand.name]
    kwargs = raw_attrs(spec, attrs)
    impl = getattr(reference, name)  # looked up at call time (a test may patch it)
    if wrt == spec.data.name:  # backprop_input(input_sizes, filter, out_backprop)
        sizes = list(data.shape)
        return RawBackprop(
            name,
            (sizes, filt, out_backprop),
            kwargs,
            {"filter": filt, "out_backprop": out_backprop},
            lambda w, dy, **kw: impl(sizes, w, dy, **kw),
        )
    sizes = list(filt.shape)  # backprop_filter(input, filter_sizes, out_backprop)
    return RawBackprop(
        name,
        (data, sizes, out_backprop),
        kwargs,
        {"input": data, "out_backprop": out_backprop},
        lambda x, dy, **kw: impl(x, sizes, dy, **kw),
    )
