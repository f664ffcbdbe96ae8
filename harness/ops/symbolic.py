"""Attribute values that stand for others: a transposed convolution's ``output_shape: smallest | largest | all``
(and ``smallest_spatial | largest_spatial``: the same sizes in the spatial-only form, e.g. ``[H, W]``, for an op that
takes it).

TensorFlow accepts several output shapes for one transposed convolution (up to ``stride`` per spatial axis: those
the forward convolution maps back onto the input, ``harness.conv.padding.transpose_output_sizes``). A case may name
the smallest or the largest (resolved when the case runs) or all of them (one case each, named ``.../out=HxW``,
when the file is loaded). Rank-generic: the spatial axes are the data_format's letters other than N and C.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.conv.padding import transpose_output_sizes
from harness.ops.spec import Arrays, OpSpec, Variant

SYMBOLIC_OUTPUT_SHAPES = ("smallest", "largest", "all")
SPATIAL_OUTPUT_SHAPES = ("smallest_spatial", "largest_spatial")  # for ops whose output_shape may be spatial sizes only


def _accepted(
    spec: OpSpec, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any]
) -> tuple[str, int, int, list[range]]:
    """(data_format, batch, out_channels, accepted output sizes per spatial axis) of a transposed case."""
    fmt = spec.data_format(attrs)
    spatial = [c for c in fmt if c not in "NC"]
    x_shape = dict(zip(fmt, shapes[spec.data.name]))
    w_shape = dict(zip(spec.kernel_operand.layout, shapes[spec.kernel_operand.name]))
    strides, dilations, pad = spec.window_attrs(attrs)
    pads = [pad] * len(spatial) if isinstance(pad, str) else pad
    sizes = [
        transpose_output_sizes(x_shape[c], w_shape[c], s, d, p) for c, s, d, p in zip(spatial, strides, dilations, pads)
    ]
    for c, accepted in zip(spatial, sizes):
        if not accepted:
            raise ValueError(f"{spec.name}: no output_shape is reachable for input size {x_shape[c]}")
    return fmt, x_shape["N"], w_shape["O"], sizes


def _shape(fmt: str, batch: int, channels: int, sizes: Sequence[int]) -> list[int]:
    full = {"N": batch, "C": channels, **dict(zip([c for c in fmt if c not in "NC"], sizes))}
    return [full[c] for c in fmt]


def resolve_output_shape(spec: OpSpec, arrays: Arrays, attrs: dict[str, Any]) -> dict[str, Any]:
    """``output_shape: smallest | largest``: the smallest / largest shape TensorFlow accepts, in data_format order;
    ``smallest_spatial | largest_spatial``: its spatial sizes alone."""
    choice = attrs.get("output_shape")
    if choice not in ("smallest", "largest", *SPATIAL_OUTPUT_SHAPES):
        return attrs
    fmt, batch, channels, sizes = _accepted(spec, {k: v.shape for k, v in arrays.items()}, attrs)
    picked = [r[0 if choice.startswith("smallest") else -1] for r in sizes]
    if choice in SPATIAL_OUTPUT_SHAPES:
        return {**attrs, "output_shape": picked}
    return {**attrs, "output_shape": _shape(fmt, batch, channels, picked)}


def expand_output_shape(
    spec: OpSpec, shapes: Mapping[str, tuple[int, ...]], attrs: dict[str, Any]
) -> list[Variant] | None:
    """``output_shape: all``: one (suffix, attributes) variant per output shape TensorFlow accepts; None otherwise."""
    if attrs.get("output_shape") != "all":
        return None
    fmt, batch, channels, sizes = _accepted(spec, shapes, attrs)
    variants: list[list[int]] = [[]]
    for accepted in sizes:
        variants = [v + [n] for v in variants for n in accepted]
    return [
        (f"out={'x'.join(map(str, v))}", {**attrs, "output_shape": _shape(fmt, batch, channels, v)}) for v in variants
    ]
