"""Scaffolding for ``harness new OP``: a new case, valid under ``parse_case``, from a few options.

``new_case(op, ...)`` returns a raw case dict in the YAML schema (docs/cases.md, "Adding a case") with every operand a
seeded generator (``generate: {dist: normal, shape, seed}``) and every required attribute filled in. What is not
given has a default that fits what is given:

* data: batch 1, 8 pixels per spatial axis, 3 channels (conv2d ``input`` NHWC ``[1, 8, 8, 3]``; conv1d NWC);
* filters: a 3-tap kernel per spatial axis, the data's channels as input channels, 4 output channels, depthwise
  multiplier 2; separable_conv2d's pointwise filter is ``[1, 1, in * multiplier, 4]``;
* attributes: stride 1, ``padding: SAME``; atrous ``rate: 2``; conv2d_transpose stride 2 and the output_shape a
  forward convolution maps back onto the input (``n * stride`` for SAME, ``(n - 1) * stride + k_eff`` otherwise);
* a letter missing from an operand's declared layout has size 1 (``layouts={"input": "CHW"}`` means batch 1).

The configuration is then checked by running the reference on the generated operands; anything wrong raises
``ScaffoldError`` naming the option (``--shape``, ``--attr``, ``--layout``, ``--dtype``, ``--tag``, ``--name``) and
its value. ``describe(case_dict)`` is the YAML text preceded by comments giving the output's layout and shape as
the reference computes it (no ``expected:`` value is written: the harness's implementations decide it).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import yaml

from harness import ops
from harness.conv import layouts
from harness.conv.dtypes import DTYPES, is_integer
from harness.registry.cases import CaseError, expand_symbolic, operand_arrays, parse_case
from harness.registry.serialize import yaml_text

NEW_FILE = "cases/new.yaml"  # the file name new cases are validated under (it appears in nothing written)

DEFAULT_SPATIAL, DEFAULT_BATCH, DEFAULT_CHANNELS = 8, 1, 3  # data; a transposed op's output_shape is computed
DEFAULT_KERNEL, DEFAULT_OUT_CHANNELS, DEFAULT_MULTIPLIER = 3, 4, 2
# The attributes a new case starts from are the op's own (``OpSpec.defaults``).


class ScaffoldError(ValueError):
    """A bad ``harness new`` argument: the message names the option and its value."""


# --- command-line values -------------------------------------------------------------------------


def parse_shape(text: str) -> list[int]:
    """``"1,8,8,3"`` or ``"1x8x8x3"`` (brackets and spaces allowed) -> ``[1, 8, 8, 3]``."""
    body = text.strip()
    if body[:1] in "[(" and body[-1:] in "])":
        body = body[1:-1]
    parts = [p.strip() for p in re.split(r"[,xX]", body)]
    if not body or not all(p.isdigit() for p in parts):
        raise ScaffoldError(
            f"shape {text!r}: expected non-negative integers separated by ',' or 'x' (e.g. 1,8,8,3 or 1x8x8x3)"
        )
    return [int(p) for p in parts]


def parse_attr(text: str) -> tuple[str, Any]:
    """``"strides=2"`` -> ``("strides", 2)``; the value is read with ``yaml.safe_load``.

    ``padding=SAME``, ``strides=[1,2,2,1]``, ``padding=[[0,0],[1,1],[2,2],[0,0]]``; a bare comma-separated list
    of integers (``strides=1,2,2,1``) is a list too.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key.isidentifier() or not raw:
        raise ScaffoldError(f"attribute {text!r}: expected KEY=VALUE (e.g. strides=2, padding=SAME, strides=[1,2,2,1])")
    if re.fullmatch(r"-?\d+(\s*,\s*-?\d+)+", raw):
        return key, [int(v) for v in raw.split(",")]
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ScaffoldError(f"attribute {text!r}: the value is not valid YAML ({first})") from None


# --- building the case ---------------------------------------------------------------------------


def _shape_text(shape) -> str:
    return ",".join(str(n) for n in shape)


def _value_text(value: Any) -> str:
    """An attribute value as typed on the command line: ``SAME``, ``2``, ``[1, 2, 2, 1]``."""
    return value if isinstance(value, str) else json.dumps(_plain(value))


def _plain(value: Any) -> Any:
    """Tuples as lists, NumPy scalars as Python numbers: what YAML writes."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.item() if isinstance(value, np.generic) else value


def _check_names(spec: ops.OpSpec, shapes: Mapping, attrs: Mapping, layouts_: Mapping) -> None:
    operands = [o.name for o in spec.operands]
    for option, given in (("--shape", shapes), ("--layout", layouts_)):
        for name, value in given.items():
            if name not in operands:
                shown = _shape_text(value) if option == "--shape" and isinstance(value, (list, tuple)) else value
                raise ScaffoldError(
                    f"{option} {name}={shown}: {spec.name} has no operand {name!r}; it takes {', '.join(operands)}"
                )
    for key, value in attrs.items():
        if key not in spec.attrs:
            raise ScaffoldError(
                f"--attr {key}={_value_text(value)}: {spec.name} has no attribute {key!r}; "
                f"it takes {', '.join(spec.attrs)}"
            )
    fmt = spec.data_format(attrs)
    if fmt not in spec.formats:
        names = " or ".join(spec.format_value(f) for f in spec.formats)
        raise ScaffoldError(f"--attr data_format={_value_text(fmt)}: {spec.name} takes data_format {names}")


def _declared_layout(spec: ops.OpSpec, operand: ops.Operand, fmt: str, layouts_: Mapping) -> str:
    """The layout an operand is written in: as given (validated like parse_case does), else the op's own."""
    op_layout = operand.op_layout(fmt)
    layout = layouts_.get(operand.name, op_layout)
    allowed = operand.op_layout(spec.formats[0])
    if not isinstance(layout, str) or not layout or len(set(layout)) != len(layout) or not set(layout) <= set(allowed):
        raise ScaffoldError(
            f"--layout {operand.name}={layout}: unknown layout for {spec.name}'s {operand.name}: "
            f"use distinct letters from {allowed}"
        )
    return layout


def _given_shape(spec: ops.OpSpec, operand: ops.Operand, layout: str, shape) -> list[int]:
    """A shape given with --shape, checked against the operand's declared layout."""
    text = _shape_text(shape) if isinstance(shape, (list, tuple)) else repr(shape)
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise ScaffoldError(f"--shape {operand.name}={text}: sizes must be non-negative integers")
    if len(shape) != len(layout):
        raise ScaffoldError(
            f"--shape {operand.name}={text}: {spec.name}'s {operand.name} is {layout} "
            f"({len(layout)} axes), got {len(shape)}"
        )
    return [int(n) for n in shape]


def _default_sizes(operand: ops.Operand, data_sizes: Mapping[str, int] | None, multiplier: int) -> dict[str, int]:
    """Letter -> size of a default operand, fitted to the data (and the depthwise multiplier for a pointwise filter)."""
    if operand.kind == "data":
        return {"N": DEFAULT_BATCH, "C": DEFAULT_CHANNELS, **{c: DEFAULT_SPATIAL for c in layouts.SPATIAL_LETTERS}}
    if data_sizes is None:  # spec.operands lists the data first
        raise ValueError(f"default sizes of {operand.name}: the data operand's sizes are not known yet")
    channels = data_sizes["C"]
    if operand.name == "pointwise_filter":
        return {**{c: 1 for c in layouts.SPATIAL_LETTERS}, "I": channels * multiplier, "O": DEFAULT_OUT_CHANNELS}
    return {
        **{c: DEFAULT_KERNEL for c in layouts.SPATIAL_LETTERS},
        "I": channels,
        "O": DEFAULT_OUT_CHANNELS,
        "M": DEFAULT_MULTIPLIER,
    }


def _op_sizes(spec: ops.OpSpec, operand: ops.Operand, fmt: str, layout: str, shape: list[int]) -> dict[str, int]:
    """Letter -> size of the operand as the op takes it (letters missing from ``layout`` are 1)."""
    op_layout = operand.op_layout(fmt)
    try:
        op_shape = layouts.convert(np.empty(shape, np.int8), layout, op_layout).shape
    except ValueError as exc:
        raise ScaffoldError(f"--layout {operand.name}={layout} with shape {_shape_text(shape)}: {exc}") from None
    return dict(zip(op_layout, op_shape))


def _seed(name: str, operand: str) -> int:
    """A seed that depends only on the case and operand names."""
    return zlib.crc32(f"{name}/{operand}".encode())


def _default_name(op: str, sizes: Mapping[str, dict[str, int]], spec: ops.OpSpec, fmt: str, padding) -> str:
    data = next(o for o in spec.operands if o.kind == "data")
    filt = next(o for o in spec.operands if o.kind == "filter")
    x = "x".join(str(sizes[data.name][c]) for c in data.op_layout(fmt))
    k = "x".join(str(sizes[filt.name][c]) for c in layouts.spatial(filt.layout))
    pad = padding.lower() if isinstance(padding, str) else "explicit"
    return f"{op}_{x}_k{k}_{pad}"


def _check_list(option: str, values, allowed: Mapping | None = None) -> list[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ScaffoldError(f"{option} {values!r}: expected a list of names")
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise ScaffoldError(f"{option} {v!r}: expected a non-empty name")
        if allowed is not None and v not in allowed:
            raise ScaffoldError(f"{option} {v}: unknown dtype; expected some of {', '.join(allowed)}")
    if not values:
        raise ScaffoldError(f"{option}: give at least one")
    if len(set(values)) != len(values):
        raise ScaffoldError(f"{option} {','.join(values)}: each may be given only once")
    return list(values)


def _transpose_output_shape(spec: ops.OpSpec, arrays_shapes: Mapping[str, tuple], attrs: Mapping) -> list[int]:
    """The output_shape a forward convolution maps back onto the input: n * stride for SAME (the largest accepted),
    (n - 1) * stride + k_eff otherwise (the smallest)."""
    choice = "largest" if attrs.get("padding", "SAME") == "SAME" else "smallest"
    arrays = {name: np.zeros(shape) for name, shape in arrays_shapes.items()}
    try:
        return _plain(spec.resolved(arrays, {**attrs, "output_shape": choice})["output_shape"])
    except ValueError as exc:
        raise ScaffoldError(f"--attr output_shape: cannot compute one for these shapes and attributes: {exc}") from None


def new_case(
    op: str,
    *,
    name: str | None = None,
    shapes: dict[str, list[int]] | None = None,
    attrs: dict | None = None,
    dtypes: list[str] | None = None,
    layouts: dict[str, str] | None = None,
    tags: list[str] | None = None,
) -> dict:
    """A raw case dict for ``op`` in the YAML schema, valid under ``parse_case`` and accepted by the reference.

    ``shapes``: operand -> shape in its declared layout; ``layouts``: operand -> the layout its shape is written
    in (default: the layout the op takes, e.g. NHWC / HWIO); ``attrs``: tf.nn keyword attributes (required ones
    default, see ``OpSpec.defaults``); ``dtypes`` default float32 and float64. Operands are seeded generators (normal;
    integers when an integer dtype is asked for). Raises ScaffoldError naming the bad option.
    """
    try:
        spec = ops.get(op)
    except ValueError as exc:
        raise ScaffoldError(str(exc)) from None
    shapes, attrs, layouts_ = dict(shapes or {}), _plain(dict(attrs or {})), dict(layouts or {})
    _check_names(spec, shapes, attrs, layouts_)
    dtypes = _check_list("--dtype", list(dtypes) if dtypes is not None else ["float32", "float64"], DTYPES)
    tags = _check_list("--tag", list(tags)) if tags else []
    full_attrs = {**{k: v for k, v in spec.defaults.items() if k not in attrs}, **attrs}
    fmt = spec.data_format(full_attrs)

    declared, op_sizes = {}, {}  # operand -> (layout, shape) as written; operand -> letter sizes as the op takes it
    data_sizes, multiplier = None, DEFAULT_MULTIPLIER
    for operand in spec.operands:  # data first, then filters: defaults fit what came before
        layout = _declared_layout(spec, operand, fmt, layouts_)
        if operand.name in shapes:
            shape = _given_shape(spec, operand, layout, shapes[operand.name])
        else:
            defaults = _default_sizes(operand, data_sizes, multiplier)
            shape = [defaults[c] for c in layout]
        declared[operand.name] = (layout, shape)
        op_sizes[operand.name] = _op_sizes(spec, operand, fmt, layout, shape)
        if operand.kind == "data":
            data_sizes = op_sizes[operand.name]
        elif "M" in op_sizes[operand.name]:
            multiplier = op_sizes[operand.name]["M"]

    if spec.kind == "transposed" and "output_shape" not in full_attrs:
        shapes_op = {o.name: tuple(op_sizes[o.name][c] for c in o.op_layout(fmt)) for o in spec.operands}
        full_attrs = {"output_shape": _transpose_output_shape(spec, shapes_op, full_attrs), **full_attrs}
    full_attrs = {k: full_attrs[k] for k in spec.attrs if k in full_attrs}  # tf.nn's argument order

    if name is None:
        name = _default_name(op, op_sizes, spec, fmt, full_attrs.get("padding"))
    if not isinstance(name, str) or not name.strip() or "\n" in name:
        raise ScaffoldError(f"--name {name!r}: expected a non-empty one-line name")
    dist = "integers" if any(is_integer(DTYPES[d]) for d in dtypes) else "normal"
    case = {
        "name": name,
        "op": op,
        "attrs": full_attrs,
        "inputs": {
            o: {"layout": layout, "generate": {"dist": dist, "shape": shape, "seed": _seed(name, o)}}
            for o, (layout, shape) in declared.items()
        },
        "dtypes": dtypes,
    }
    if tags:
        case["tags"] = tags
    _outputs(case, given_attrs=attrs, given_shapes=shapes)  # the reference must accept it
    return case


# --- checking and describing ---------------------------------------------------------------------


def _blame(message: str, case: Mapping, given_attrs: Mapping, given_shapes: Mapping) -> str:
    """The options a reference error is about, as the user gave them (or marked as defaults).

    Those are the arguments the message names; for a kernel that does not fit its input, also the data and filter
    shapes and the dilation, which decide the fit as much as the padding the message names.
    """

    def option(arg: str) -> str | None:
        if arg in case["attrs"]:
            origin = "" if arg in given_attrs else " (default)"
            return f"--attr {arg}={_value_text(case['attrs'][arg])}{origin}"
        if arg in case["inputs"]:
            origin = "" if arg in given_shapes else " (default)"
            return f"--shape {arg}={_shape_text(case['inputs'][arg]['generate']['shape'])}{origin}"
        return None

    args = re.findall(r"argument '(\w+)'", message)
    if "effective kernel size" in message:
        args += [*case["inputs"], "dilations", "rate"]
    found = [o for o in map(option, dict.fromkeys(args)) if o]
    return ", ".join(found) or "--shape / --attr"


def _outputs(
    case: Mapping, given_attrs: Mapping | None = None, given_shapes: Mapping | None = None
) -> list[tuple[str, str, tuple, dict]]:
    """(variant label, output layout, output shape, attrs as run) for each case ``case`` expands into."""
    try:
        parsed = expand_symbolic(parse_case(NEW_FILE, dict(case), 0))
    except CaseError as exc:
        raise ScaffoldError(str(exc)) from None
    spec = ops.get(case["op"])
    out = []
    for variant in parsed:
        try:
            arrays = operand_arrays(variant, "float64")
            attrs = spec.resolved(arrays, variant.attrs)
            y = spec.call(spec.reference, arrays, attrs)
        except ValueError as exc:
            option = _blame(
                str(exc),
                case,
                given_attrs if given_attrs is not None else case["attrs"],
                given_shapes if given_shapes is not None else case["inputs"],
            )
            raise ScaffoldError(f"{option}: the reference rejects this configuration: {exc}") from None
        label = variant.name[len(case["name"]) + 1 :] if variant.name != case["name"] else ""
        out.append((label, spec.data_format(attrs), y.shape, attrs))
    return out


def describe(case_dict: Mapping) -> str:
    """The case as a ``cases:`` YAML document, preceded by comments with the output layout and shape.

    The output shape is what the reference computes on the generated operands (e.g. ``# output: NHWC [1, 8, 8, 4]``),
    one line per variant for ``output_shape: all``. Raises ScaffoldError when the case is not valid.
    """
    spec = ops.get(case_dict["op"]) if case_dict.get("op") in ops.OPS else None
    outputs = _outputs(case_dict)
    lines = []
    for label, fmt, shape, attrs in outputs:
        where = f" ({label})" if label else ""
        resolved = ""
        if spec is not None and any(isinstance(case_dict["attrs"].get(k), str) for k in spec.symbolic):
            resolved = "  " + ", ".join(f"{k}={_plain(attrs[k])}" for k in spec.symbolic)
        lines.append(f"# output{where}: {fmt} {list(shape)}{resolved}")
    lines.append("# (computed by the reference on the generated operands; the harness checks the values)")
    return "\n".join(lines) + "\n" + yaml_text({"cases": [dict(case_dict)]})
