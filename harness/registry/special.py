"""Special values in a case operand: NaN, infinities, -0.0, subnormals, the dtype's extremes, overflow, zeros.

An operand of a case may carry one special value at a chosen place, beside its ``value`` or ``generate``::

    inputs:
      input:
        layout: NHWC
        generate: {dist: normal, shape: [1, 5, 5, 2]}
        special: {value: nan, at: zero_weight}

``value`` names a value that is resolved per dtype (``resolve``): ``nan``, ``inf``, ``-inf``, ``-0.0``, ``max``
and ``-max`` (the dtype's largest finite values), ``min_normal`` (its smallest normal value), ``subnormal`` (half of
it: a subnormal with one significant bit, 2**(minexp - 1)), ``smallest_subnormal``, ``overflow`` (the dtype's
largest value, and every value of the other operand it meets is made +-2, so that each of its products overflows
the dtype) and ``zeros`` (the whole operand is zero: ``at: all`` only). bfloat16's come from ``ml_dtypes``.

``at`` says where, in terms of the op's geometry (worked out by the reference's own adjoint, so that it holds for
any op, layout, stride, dilation and padding):

* ``window``: an element some output reads through a nonzero element of the other operand;
* ``zero_weight``: an element some output reads, with every element of the other operand it meets set to zero (for
  an input pixel: the filter taps that read it; for a filter tap: the input pixels it reads), so that NaN * 0 and
  inf * 0 are NaN there;
* ``unread``: an element no output reads (skipped by a stride, cut off by VALID padding, or a filter tap that only
  ever reads padding); the case is malformed when there is none;
* ``padding``: a filter tap that reads the zero padding for some output (0 * inf is NaN there, as the padded
  definition says); filters only;
* ``all``: every element;
* ``{index: [...]}``: that element, in the operand's declared layout.

Of the candidates, the one in the middle of the flattened list is chosen (deterministic). Errors name the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from harness import ops
from harness.conv import layouts
from harness.conv.dtypes import is_integer
from harness.ops import gradients as reference_gradients

VALUES = (
    "nan",
    "inf",
    "-inf",
    "-0.0",
    "max",
    "-max",
    "min_normal",
    "subnormal",
    "smallest_subnormal",
    "overflow",
    "zeros",
)
PLACEMENTS = ("window", "zero_weight", "unread", "padding", "all")
FIELDS = ("value", "at")
# YAML spellings that are read as numbers (.nan, .inf, -.inf, -0.0): the name they stand for.
_NUMBERS = {"-0.0": "-0.0"}


class SpecialError(ValueError):
    """A malformed ``special`` field: ``field`` is the part of it that is wrong (dotted, below ``special``)."""

    def __init__(self, field: str | None, message: str, operand: str | None = None):
        self.field, self.message, self.operand = field, message, operand
        super().__init__(message)


@dataclass(frozen=True)
class Special:
    """One special value at one place of an operand (see the module docstring)."""

    value: str  # one of VALUES
    at: str  # one of PLACEMENTS, or "index"
    index: tuple[int, ...] | None = None  # for at == "index": in the operand's declared layout

    def record(self) -> dict:
        """The YAML form."""
        return {"value": self.value, "at": {"index": list(self.index)} if self.index is not None else self.at}


def _value_name(raw) -> str:
    if isinstance(raw, bool):
        raise SpecialError("value", f"unknown special value {raw!r}; expected one of {', '.join(VALUES)}")
    if isinstance(raw, float):
        if np.isnan(raw):
            return "nan"
        if np.isinf(raw):
            return "inf" if raw > 0 else "-inf"
        if raw == 0 and np.signbit(raw):
            return "-0.0"
    if isinstance(raw, str) and raw.strip().lower() in VALUES:
        return raw.strip().lower()
    raise SpecialError("value", f"unknown special value {raw!r}; expected one of {', '.join(VALUES)}")


def parse(raw, layout: str, kind: str) -> Special:
    """Validate a ``special`` mapping of an operand written in ``layout`` (``kind``: "data" or "filter")."""
    if not isinstance(raw, dict):
        raise SpecialError(None, f"must be a mapping {{value: <name>, at: <placement>}}, got {raw!r}")
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise SpecialError(sorted(unknown)[0], f"unknown field; allowed: {', '.join(FIELDS)}")
    for key in FIELDS:
        if key not in raw:
            raise SpecialError(key, "missing field")
    value = _value_name(raw["value"])
    at = raw["at"]
    if isinstance(at, dict):
        if set(at) != {"index"}:
            raise SpecialError("at", f"an explicit place is {{index: [...]}}, got {at!r}")
        index = at["index"]
        if (
            not isinstance(index, list)
            or len(index) != len(layout)
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in index)
        ):
            raise SpecialError(
                "at.index", f"must be {len(layout)} non-negative ints (one per axis of {layout!r}), got {index!r}"
            )
        special = Special(value, "index", tuple(index))
    elif isinstance(at, str) and at in PLACEMENTS:
        special = Special(value, at)
    else:
        raise SpecialError(
            "at", f"unknown placement {at!r}; expected one of {', '.join(PLACEMENTS)} or {{index: [...]}}"
        )
    if value == "zeros" and special.at != "all":
        raise SpecialError("at", "value zeros makes the whole operand zero: give at: all")
    if special.at == "padding" and kind != "filter":
        raise SpecialError(
            "at", "padding: only a filter tap reads the padding (for an input pixel use window, zero_weight or unread)"
        )
    return special


def resolve(value: str, dtype) -> float:
    """The number ``value`` (a name of VALUES) stands for in ``dtype``, as a float64 exactly representable in it."""
    dtype = np.dtype(dtype)
    if is_integer(dtype):
        raise ValueError(f"special value {value!r}: dtype {dtype} is not a floating-point type")
    info = ml_dtypes.finfo(dtype)
    table = {
        "nan": np.nan,
        "inf": np.inf,
        "-inf": -np.inf,
        "-0.0": -0.0,
        "max": float(info.max),
        "-max": -float(info.max),
        "overflow": float(info.max),
        "min_normal": float(info.smallest_normal),
        "subnormal": float(info.smallest_normal) / 2,
        "smallest_subnormal": float(info.smallest_subnormal),
        "zeros": 0.0,
    }
    return table[value]


# --- placing ------------------------------------------------------------------------------


def _reads(op: str, arrays: Mapping[str, np.ndarray], attrs: Mapping, name: str, partner: np.ndarray) -> np.ndarray:
    """For every element of operand ``name``: through how many (output, partner element) pairs it is read when the
    other operand is ``partner`` (float64; ones count every read, a 0/1 mask only the reads through its ones).

    The adjoint of a bilinear op, with all-ones output gradient: d/d name of sum(op(...)) is the sum over the
    outputs of the partner elements each element is multiplied by.
    """
    spec = ops.get(op)
    other = next(o.name for o in spec.operands if o.name != name)
    work = {name: np.ones(arrays[name].shape), other: np.asarray(partner, np.float64)}
    out = spec.call(spec.reference, work, spec.resolved(work, attrs))
    grads = reference_gradients.gradients(op, work, attrs, np.ones_like(out))
    return np.asarray(grads[name], np.float64)


def _partner_mask(op: str, arrays: Mapping[str, np.ndarray], attrs: Mapping, name: str, one_hot) -> np.ndarray:
    """A mask of the other operand's elements that the element ``one_hot`` marks in operand ``name`` is multiplied
    by (for some output)."""
    spec = ops.get(op)
    other = next(o.name for o in spec.operands if o.name != name)
    work = {name: one_hot, other: np.ones(arrays[other].shape)}
    out = spec.call(spec.reference, work, spec.resolved(work, attrs))
    grads = reference_gradients.gradients(op, work, attrs, np.ones_like(out))
    return np.asarray(grads[other], np.float64) > 0


def _middle(candidates: np.ndarray, what: str) -> int:
    flat = np.flatnonzero(candidates)
    if flat.size == 0:
        raise SpecialError("at", f"this case has no {what}")
    return int(flat[flat.size // 2])


def _index_in_op_layout(spec: ops.OpSpec, name: str, attrs: Mapping, declared: str, index, shape) -> int:
    """The flat index, in the op's layout of operand ``name``, of ``index`` given in layout ``declared``."""
    positions = np.zeros(shape, np.int64)
    if any(i >= n for i, n in zip(index, shape)):
        raise SpecialError("at.index", f"index {list(index)} is outside the operand's shape {list(shape)}")
    positions[tuple(index)] = 1
    target = spec.operand(name).op_layout(spec.data_format(attrs))
    return int(np.flatnonzero(layouts.convert(positions, declared, target))[0])


def apply(
    op: str,
    arrays: dict[str, np.ndarray],
    attrs: Mapping,
    specials: Mapping[str, tuple[Special, str, tuple[int, ...]]],
    dtype,
) -> dict[str, np.ndarray]:
    """``arrays`` (in the op's layouts, at ``dtype``) with each operand's special value placed.

    ``specials``: operand name -> (Special, declared layout, declared shape). Raises SpecialError (field below
    ``special``) when a placement does not exist for this case, and ValueError for an op with other than two
    operands."""
    spec = ops.get(op)
    if len(spec.operands) != 2:
        raise SpecialError(None, f"special values are placed in ops of two operands; {op} has {len(spec.operands)}")
    out = {k: np.array(v) for k, v in arrays.items()}
    for name, (special, declared, shape) in specials.items():
        try:
            _place(spec, out, attrs, name, special, declared, shape, dtype)
        except SpecialError as exc:
            raise SpecialError(exc.field, exc.message, name) from None
    return out


def _place(spec, out: dict[str, np.ndarray], attrs: Mapping, name: str, special: Special, declared: str, shape, dtype):
    """Place one operand's special value in ``out`` (see ``apply``)."""
    op = spec.name
    other = next(o.name for o in spec.operands if o.name != name)
    value = resolve(special.value, dtype)
    target = out[name]
    if special.at == "all":
        target[...] = value
        if special.value == "overflow":  # every product overflows: the other operand's values made +-2
            partner = out[other]
            partner[...] = np.where(np.signbit(partner.astype(np.float64)), -2.0, 2.0).astype(partner.dtype)
        return
    if special.at == "index":
        flat = _index_in_op_layout(spec, name, attrs, declared, special.index, shape)
    elif special.at == "window":
        nonzero = (out[other] != 0).astype(np.float64)
        flat = _middle(_reads(op, out, attrs, name, nonzero) > 0, "element read through a nonzero partner")
    elif special.at == "zero_weight":
        flat = _middle(_reads(op, out, attrs, name, np.ones(out[other].shape)) > 0, "element that is read")
    elif special.at == "unread":
        flat = _middle(_reads(op, out, attrs, name, np.ones(out[other].shape)) == 0, "element that no output reads")
    else:  # padding: a filter tap that reads the padding for some output
        real = _reads(op, out, attrs, name, np.ones(out[other].shape))
        flat = _middle(_padding_taps(op, out, attrs, name, real), "filter tap that reads padding")
    target.reshape(-1)[flat] = value
    one_hot = np.zeros(target.shape)
    one_hot.reshape(-1)[flat] = 1.0
    if special.at == "zero_weight":
        out[other][_partner_mask(op, out, attrs, name, one_hot)] = 0
    elif special.value == "overflow":
        met = _partner_mask(op, out, attrs, name, one_hot)
        partner = out[other]
        partner[met] = np.where(np.signbit(partner[met].astype(np.float64)), -2.0, 2.0).astype(partner.dtype)


def _padding_taps(op: str, arrays: Mapping[str, np.ndarray], attrs: Mapping, name: str, real: np.ndarray) -> np.ndarray:
    """Filter taps that read the zero padding for some output: those read fewer times than there are (output
    pixel, channel) pairs for them, i.e. ``real`` (the reads of in-image pixels) short of the output's pixel count
    times the data's channels per tap column."""
    spec = ops.get(op)
    if spec.kind not in ("conv", "depthwise"):
        raise SpecialError("at", f"padding: {op} reads no padding through its filter (it scatters its input)")
    data = spec.data.name
    fmt = spec.data_format(attrs)
    work = {data: np.ones(arrays[data].shape), name: np.ones(arrays[name].shape)}
    out = spec.call(spec.reference, work, spec.resolved(work, attrs))
    pixels = int(np.prod([out.shape[fmt.index(c)] for c in "N" + layouts.spatial(fmt)]))
    return real < pixels
