"""Error inputs generated from each op's spec, as PyTorch's OpInfo has ``error_inputs``.

For every op (``harness.ops``: the tf.nn ops and the raw backprop ops), every operand and every argument, the
generator writes one case per malformed input of each class that applies:

* ``wrong_rank``: every operand at every rank from 0 to one more than its own;
* ``list_length``: every list argument (strides, dilations, output_shape, input_sizes / filter_sizes) at every
  length from 0 to one more than the full rank, but the lengths the op documents;
* ``int_value``: every integer argument (or one spatial entry of it) at 0, -1, 2**31 and 2**63;
* ``not_int``: the same places given 1.0, 1.5, None, "1" or True;
* ``empty_axis``: every axis of every operand at size 0 (for a transposed op, every entry of output_shape too);
* ``kernel_exceeds_input``: an effective kernel one or two pixels larger than the padded input, on each spatial
  axis, by its size and by its dilation, under VALID and explicit padding, in every data format;
* ``channel_mismatch``: the data's channels one more than the filter's, or twice as many (grouped), and every
  filter's input channels one more than they should be;
* ``output_shape``: every entry of a transposed op's output_shape (a raw op's sizes, or the operand it reads the
  shape of) one more and one less;
* ``explicit_padding``: a negative pad on each side of each spatial axis, a list of the wrong length, a pad on the
  batch or the channel axis.

Each is a case in the registry's own schema (``parse_case`` validates it) with ``reference_decides: true``: the
reference decides what the case expects. Where it raises ValueError (naming the argument), TensorFlow must reject
the input too, with any error; where it returns (some malformed-looking inputs are valid), TensorFlow must return
the same output. Every item runs in the TensorFlow server like any other, so an abort is that item's failure.

A case file asks for them with a top-level ``error_inputs`` list (``cases/sweeps/errors_generated.yaml``)::

    error_inputs:
      - name: generated
        ops: all              # or a list of op names
        classes: all          # or a list of CLASSES
        dtypes: [float32]
        cover: pairwise       # default: each (op, class) keeps the items that cover every facet; HARNESS_SWEEP=full: all

Items are named ``<name>/<op>/<class>/<label>``. No TensorFlow here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import ops
from harness.conv import layouts
from harness.registry import scaffold
from harness.registry.cases import Case, CaseError, parse_case
from harness.registry.sweeps import sweep_mode

CLASSES = (
    "wrong_rank",
    "list_length",
    "int_value",
    "not_int",
    "empty_axis",
    "kernel_exceeds_input",
    "channel_mismatch",
    "output_shape",
    "explicit_padding",
)
INT_VALUES = {"0": 0, "neg1": -1, "2pow31": 2**31, "2pow63": 2**63}
NOT_INT_VALUES = {"1.0": 1.0, "1.5": 1.5, "None": None, "str1": "1", "True": True}
FIELDS = {"name", "ops", "classes", "dtypes", "cover", "tags"}
SHAPE_ARGS = ("output_shape", "input_sizes", "filter_sizes")  # the arguments that give an output's shape
SPARE_LETTERS = "DMXYZ"  # layout letters for the extra axis of a too-high rank (raw operands: the letters only count)


@dataclass(frozen=True)
class ErrorInput:
    """One generated input: its op, class, a label unique within them, the raw case and the facets it covers."""

    op: str
    cls: str
    label: str
    case: dict
    facets: tuple[str, ...]


# --- the valid configuration each op's inputs are malformed from ------------------------------------


def base_case(op: str, dtypes: list[str]) -> dict:
    """A small valid raw case of ``op`` (``harness new``'s defaults); a raw backprop op's from the forward op whose
    gradient it computes, with the sizes and out_backprop that op's output gives."""
    spec = ops.get(op)
    if spec.kind != "backprop":
        return scaffold.new_case(op, name="base", dtypes=dtypes, shapes=_small_shapes(spec))
    from harness.ops import gradients  # the gradient rules: only raw ops need them

    assert spec.gradient_of is not None, op
    forward, wrt = spec.gradient_of
    fwd = ops.get(forward)
    base = scaffold.new_case(forward, name="base", dtypes=dtypes, shapes=_small_shapes(fwd))
    arrays = {o.name: np.zeros(base["inputs"][o.name]["generate"]["shape"]) for o in fwd.operands}
    y = fwd.call(fwd.reference, arrays, fwd.resolved(arrays, base["attrs"]))
    call = gradients.raw_backprop(forward, wrt, arrays, fwd.resolved(arrays, base["attrs"]), np.zeros(y.shape))
    assert call is not None
    shapes = {name: list(a.shape) for name, a in call.operands.items()}
    attrs = {k: v for k, v in call.attrs.items() if not (k == "explicit_paddings" and v == [])}
    for sizes in ("input_sizes", "filter_sizes"):  # an op that takes that operand itself (its shape is what it reads)
        if sizes in attrs and sizes not in spec.attrs:
            shapes[sizes.removesuffix("_sizes")] = attrs.pop(sizes)
    if "explicit_paddings" in attrs and "explicit_paddings" not in spec.attrs:  # tf.nn's form: the pairs in padding
        flat = attrs.pop("explicit_paddings")
        attrs["padding"] = [flat[i : i + 2] for i in range(0, len(flat), 2)]
    inputs = {
        o.name: {"layout": o.op_layout(spec.formats[0]), "generate": {"dist": "normal", "shape": shapes[o.name]}}
        for o in spec.operands
    }
    attrs = {k: v for k, v in attrs.items() if k in spec.attrs}  # a V1 3-D op has no data_format
    return {"name": "base", "op": op, "attrs": _plain(attrs), "inputs": inputs, "dtypes": dtypes}


def _small_shapes(spec: ops.OpSpec) -> dict[str, list[int]]:
    """A 5-pixel data operand (the default 8 makes every generated item slower for nothing)."""
    rank = len(spec.formats[0])
    return {spec.data.name: [1] + [5] * (rank - 2) + [2]}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


# --- the classes ----------------------------------------------------------------------------------


def _shape(case: dict, operand: str) -> list[int]:
    return list(case["inputs"][operand]["generate"]["shape"])


def _with_shape(case: dict, operand: str, shape: list[int], raw: bool = False, layout: str | None = None) -> dict:
    out = copy.deepcopy(case)
    spec = out["inputs"][operand]
    spec["generate"]["shape"] = list(shape)
    if layout is not None:
        spec["layout"] = layout
    if raw:
        spec["raw"] = True
    return out


def _with_attrs(case: dict, **attrs: Any) -> dict:
    out = copy.deepcopy(case)
    out["attrs"].update(attrs)
    return out


def _letter_index(case: dict, operand: str, letter: str) -> int | None:
    layout = case["inputs"][operand]["layout"]
    return layout.index(letter) if letter in layout else None


def wrong_rank(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    for operand in spec.operands:
        shape, layout = _shape(base, operand.name), base["inputs"][operand.name]["layout"]
        for rank in range(len(shape) + 2):
            if rank == len(shape):
                continue
            extra = [c for c in SPARE_LETTERS if c not in layout]
            new_layout = layout[:rank] if rank < len(layout) else layout + "".join(extra[: rank - len(layout)])
            new_shape = shape[:rank] if rank < len(shape) else shape + [1] * (rank - len(shape))
            yield ErrorInput(
                spec.name,
                "wrong_rank",
                f"{operand.name}=rank{rank}",
                _with_shape(base, operand.name, new_shape, raw=True, layout=new_layout),
                (f"operand={operand.name}", f"rank={rank}"),
            )


def _window_args(spec: ops.OpSpec) -> list[str]:
    return [a for a in (spec.forms.stride_arg, spec.forms.dilation_arg) if a and a in spec.attrs]


def _list_args(spec: ops.OpSpec) -> list[str]:
    """The op's integer list arguments: strides, dilations and its output_shape or sizes argument."""
    return _window_args(spec) + [a for a in SHAPE_ARGS if a in spec.attrs]


def _valid_lengths(spec: ops.OpSpec, arg: str, rank: int) -> tuple[int, ...]:
    if arg == spec.forms.stride_arg:
        return spec.forms.stride_lengths
    if arg == spec.forms.dilation_arg:
        return spec.forms.dilation_lengths
    return (rank, rank - 2) if arg == "output_shape" and spec.forms.output_shape_spatial else (rank,)


def list_length(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    rank = len(spec.formats[0])
    fmt = spec.data_format(base["attrs"])
    for arg in _list_args(spec):
        given = base["attrs"].get(arg)
        for length in range(rank + 2):
            if length in _valid_lengths(spec, arg, rank):
                continue
            if isinstance(given, list) and length == len(fmt) - 2 and len(given) == len(fmt):
                value = [given[fmt.index(c)] for c in layouts.spatial(fmt)]  # the spatial entries: a form of its own
            elif isinstance(given, list):
                value = given[:length] if length <= len(given) else given + [1] * (length - len(given))
            else:
                value = [1] * length
            yield ErrorInput(
                spec.name,
                "list_length",
                f"{arg}=len{length}",
                _with_attrs(base, **{arg: value}),
                (f"arg={arg}", f"length={length}"),
            )


def _spatial_entry(spec: ops.OpSpec, base: dict, arg: str, value: Any) -> Any:
    """``arg`` with its first spatial entry (or, for a plain int, itself) replaced by ``value``."""
    given = base["attrs"].get(arg)
    fmt = spec.data_format(base["attrs"])
    if isinstance(given, list):
        out = list(given)
        out[fmt.index(layouts.spatial(fmt)[0]) if len(given) == len(fmt) else 0] = value
        return out
    return value


def int_value(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    for arg in _list_args(spec):
        for label, value in INT_VALUES.items():
            case = _with_attrs(base, **{arg: _spatial_entry(spec, base, arg, value)})
            if value > 1 and arg in (spec.forms.dilation_arg, "filter_sizes"):
                # A huge kernel: VALID, so that it exceeds the input (SAME would pad the input to 2**31 pixels,
                # which the reference, like any direct implementation, would allocate).
                case["attrs"]["padding"] = "VALID"
            yield ErrorInput(spec.name, "int_value", f"{arg}={label}", case, (f"arg={arg}", f"value={label}"))


def not_int(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    for arg in _list_args(spec):
        for label, value in NOT_INT_VALUES.items():
            yield ErrorInput(
                spec.name,
                "not_int",
                f"{arg}={label}",
                _with_attrs(base, **{arg: _spatial_entry(spec, base, arg, value)}),
                (f"arg={arg}", f"value={label}"),
            )


def empty_axis(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    for operand in spec.operands:
        shape, layout = _shape(base, operand.name), base["inputs"][operand.name]["layout"]
        for i, letter in enumerate(layout):
            case = _with_shape(base, operand.name, [0 if j == i else n for j, n in enumerate(shape)])
            yield ErrorInput(
                spec.name,
                "empty_axis",
                f"{operand.name}.{letter}=0",
                case,
                (f"operand={operand.name}", f"axis={letter}"),
            )
    for arg in SHAPE_ARGS:
        given = base["attrs"].get(arg)
        if isinstance(given, list):
            for i in range(len(given)):
                value = [0 if j == i else n for j, n in enumerate(given)]
                yield ErrorInput(
                    spec.name,
                    "empty_axis",
                    f"{arg}[{i}]=0",
                    _with_attrs(base, **{arg: value}),
                    (f"arg={arg}", f"index={i}"),
                )


def kernel_exceeds_input(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    """Shrink the convolution's input on one spatial axis below the (dilated) kernel."""
    if spec.kind in ("transposed", "backprop"):
        yield from _sizes_below_kernel(spec, base)
        return
    if spec.kind == "fused":
        yield from _resized_below_kernel(spec, base)
        return
    filt = spec.kernel_operand
    for fmt in spec.formats:
        spatial = layouts.spatial(fmt)
        for letter in spatial:
            x_axis = _letter_index(base, spec.data.name, letter)
            k_axis = _letter_index(base, filt.name, letter)
            if x_axis is None or k_axis is None:
                continue
            for how in ("size", "dilation") if spec.forms.dilation_arg in spec.attrs else ("size",):
                for padding in ("VALID", "explicit"):
                    if padding == "explicit" and not spec.forms.explicit_padding:
                        continue
                    case = copy.deepcopy(base)
                    if "data_format" in spec.attrs:
                        case["attrs"]["data_format"] = spec.format_value(fmt)
                    if fmt != spec.formats[0]:
                        case["attrs"] = _reformat_window_args(spec, case["attrs"], spec.formats[0], fmt)
                    x_shape, w_shape = _shape(case, spec.data.name), _shape(case, filt.name)
                    if how == "size":
                        w_shape[k_axis], x_shape[x_axis] = 3, 2
                    else:
                        w_shape[k_axis], x_shape[x_axis] = 2, 2
                        case["attrs"][spec.forms.dilation_arg] = _dilation_value(spec, fmt, letter, 2)
                    case["attrs"]["padding"] = [[0, 0]] * len(fmt) if padding == "explicit" else "VALID"
                    case = _with_shape(_with_shape(case, spec.data.name, x_shape), filt.name, w_shape)
                    yield ErrorInput(
                        spec.name,
                        "kernel_exceeds_input",
                        f"{fmt}/{letter}/{how}/{padding}",
                        case,
                        (f"format={fmt}", f"axis={letter}", f"by={how}", f"padding={padding}"),
                    )


def _dilation_value(spec: ops.OpSpec, fmt: str, letter: str, d: int) -> Any:
    spatial = layouts.spatial(fmt)
    if spec.forms.dilation_arg == "rate":
        return d
    values = [d if c == letter else 1 for c in spatial]
    return values if len(spatial) in spec.forms.dilation_lengths else [d if c == letter else 1 for c in fmt]


def _reformat_window_args(spec: ops.OpSpec, attrs: dict, old: str, new: str) -> dict:
    """Full-rank window lists reordered from data format ``old`` to ``new``."""
    out = dict(attrs)
    for arg in [*_window_args(spec), "output_shape", "input_sizes"]:  # filter_sizes is in a filter layout
        value = out.get(arg)
        if isinstance(value, list) and len(value) == len(old):
            out[arg] = [value[old.index(c)] for c in new]
    return out


def _sizes_below_kernel(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    """A transposed op's output_shape, or a raw op's input_sizes (or its input), below the kernel on one axis."""
    fmt = spec.data_format(base["attrs"])
    arg = "output_shape" if "output_shape" in spec.attrs else "input_sizes" if "input_sizes" in spec.attrs else None
    for letter in layouts.spatial(fmt):
        for padding in ("VALID", "explicit"):
            if padding == "explicit" and not spec.forms.explicit_padding:
                continue
            case = copy.deepcopy(base)
            if arg is not None:
                sizes = list(case["attrs"][arg])
                sizes[fmt.index(letter) if len(sizes) == len(fmt) else layouts.spatial(fmt).index(letter)] = 1
                case["attrs"][arg] = sizes
            else:  # a filter gradient: its input
                shape = _shape(case, "input")
                shape[fmt.index(letter)] = 1
                case = _with_shape(case, "input", shape)
            if padding == "VALID":
                case["attrs"]["padding"] = "VALID"
            elif "explicit_paddings" in spec.attrs:
                case["attrs"]["padding"] = "EXPLICIT"
                case["attrs"]["explicit_paddings"] = [0] * (2 * len(fmt))
            else:
                case["attrs"]["padding"] = [[0, 0]] * len(fmt)
            yield ErrorInput(
                spec.name,
                "kernel_exceeds_input",
                f"{fmt}/{letter}/size/{padding}",
                case,
                (f"axis={letter}", f"padding={padding}"),
            )


def _resized_below_kernel(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    """A fused op's convolution input (its input resized to ``size``, then padded) below a 3-tap kernel on one axis:
    resized (or left) to 2, unpadded, VALID."""
    for letter in "HW":
        axis = "NHWC".index(letter)
        case = copy.deepcopy(base)
        shape = _shape(case, "filter")
        shape["HWIO".index(letter)] = 3
        case = _with_shape(case, "filter", shape)
        if "size" in spec.attrs:
            case["attrs"]["size"][axis - 1] = 2
        else:
            shape = _shape(case, "input")
            shape[axis] = 2
            case = _with_shape(case, "input", shape)
        case["attrs"]["paddings"][axis] = [0, 0]
        case["attrs"]["padding"] = "VALID"
        yield ErrorInput(
            spec.name, "kernel_exceeds_input", f"NHWC/{letter}/size/VALID", case, (f"axis={letter}", "padding=VALID")
        )


def channel_mismatch(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    data = spec.data.name
    c_axis = _letter_index(base, data, "C")
    if c_axis is not None:
        shape = _shape(base, data)
        for label, channels in (("plus1", shape[c_axis] + 1), ("double", shape[c_axis] * 2)):
            new = list(shape)
            new[c_axis] = channels
            yield ErrorInput(
                spec.name,
                "channel_mismatch",
                f"{data}.C={label}",
                _with_shape(base, data, new),
                (f"operand={data}", f"how={label}"),
            )
    for operand in spec.operands:
        if operand.kind != "filter":
            continue
        for letter in ("I", "O", "M"):
            axis = _letter_index(base, operand.name, letter)
            if axis is None:
                continue
            shape = _shape(base, operand.name)
            shape[axis] += 1
            yield ErrorInput(
                spec.name,
                "channel_mismatch",
                f"{operand.name}.{letter}=plus1",
                _with_shape(base, operand.name, shape),
                (f"operand={operand.name}", f"axis={letter}"),
            )


def output_shape(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    operand = spec.shape_operand  # its shape is the op's sizes argument
    if operand is not None:
        for i, size in enumerate(_shape(base, operand)):
            for delta in (1, -1):
                shape = _shape(base, operand)
                shape[i] = size + delta
                yield ErrorInput(
                    spec.name,
                    "output_shape",
                    f"{operand}[{i}]{delta:+d}",
                    _with_shape(base, operand, shape),
                    (f"index={i}", f"delta={delta:+d}"),
                )
    for arg in SHAPE_ARGS:
        given = base["attrs"].get(arg)
        if not isinstance(given, list):
            continue
        for i in range(len(given)):
            for delta in (1, -1):
                value = list(given)
                value[i] += delta
                yield ErrorInput(
                    spec.name,
                    "output_shape",
                    f"{arg}[{i}]{delta:+d}",
                    _with_attrs(base, **{arg: value}),
                    (f"index={i}", f"delta={delta:+d}"),
                )


def explicit_padding(spec: ops.OpSpec, base: dict) -> Iterator[ErrorInput]:
    fmt = spec.data_format(base["attrs"])
    n = len(fmt)
    raw = "explicit_paddings" in spec.attrs  # tf.raw_ops' form: EXPLICIT and a flat list
    if not spec.forms.explicit_padding:  # (a 3-D tf.raw_ops.Conv has the attribute and refuses EXPLICIT)
        return

    def padded(pairs: list[list[int]]) -> dict:
        if raw:
            return _with_attrs(base, padding="EXPLICIT", explicit_paddings=[v for pair in pairs for v in pair])
        return _with_attrs(base, padding=pairs)

    zero = [[0, 0] for _ in range(n)]
    for letter in layouts.spatial(fmt):
        for side in (0, 1):
            pairs = copy.deepcopy(zero)
            pairs[fmt.index(letter)][side] = -1
            yield ErrorInput(
                spec.name,
                "explicit_padding",
                f"negative/{letter}/{'before' if side == 0 else 'after'}",
                padded(pairs),
                ("how=negative", f"axis={letter}"),
            )
    for length in (n - 1, n + 1, n - 2):
        pairs = [[1, 1] for _ in range(length)]
        case = _with_attrs(base, padding="EXPLICIT", explicit_paddings=[1] * (2 * length)) if raw else padded(pairs)
        yield ErrorInput(spec.name, "explicit_padding", f"length={length}", case, ("how=length", f"length={length}"))
    for letter in "NC":
        pairs = copy.deepcopy(zero)
        pairs[fmt.index(letter)] = [1, 1]
        yield ErrorInput(
            spec.name, "explicit_padding", f"on/{letter}", padded(pairs), ("how=batch_or_channel", f"axis={letter}")
        )


GENERATORS: dict[str, Callable[[ops.OpSpec, dict], Iterator[ErrorInput]]] = {
    "wrong_rank": wrong_rank,
    "list_length": list_length,
    "int_value": int_value,
    "not_int": not_int,
    "empty_axis": empty_axis,
    "kernel_exceeds_input": kernel_exceeds_input,
    "channel_mismatch": channel_mismatch,
    "output_shape": output_shape,
    "explicit_padding": explicit_padding,
}
assert tuple(GENERATORS) == CLASSES


def error_inputs(
    op: str, classes: tuple[str, ...] = CLASSES, dtypes: tuple[str, ...] = ("float32",)
) -> list[ErrorInput]:
    """Every generated error input of ``op`` in ``classes``, in a fixed order."""
    spec = ops.get(op)
    base = base_case(op, list(dtypes))
    out: list[ErrorInput] = []
    for cls in classes:
        out += list(GENERATORS[cls](spec, base))
    return out


def covering(items: list[ErrorInput]) -> list[ErrorInput]:
    """A subset in which every op meets every class it has, and every facet of a class (each operand, argument,
    value, axis, padding) occurs for some op: the items in order, each kept when it covers something new."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for item in items:
        new = {(item.op, item.cls)} | {(item.cls, facet) for facet in item.facets}
        if new - seen:
            kept.append(item)
            seen |= new
    return kept


# --- the case-file section ----------------------------------------------------------------------------


def expand(file: str, raw: Any, index: int) -> list[Case | CaseError]:
    """The cases of one ``error_inputs`` entry (malformed entries and cases as CaseError); never raises."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        return [CaseError(file, f"error_inputs #{index}", "name", "each entry is a mapping with a name")]
    name = raw["name"]
    unknown = set(raw) - FIELDS
    if unknown:
        return [CaseError(file, name, sorted(unknown)[0], f"unknown field; allowed: {', '.join(sorted(FIELDS))}")]
    known_ops = [*ops.OPS, *ops.RAW_OPS]
    chosen_ops = known_ops if raw.get("ops", "all") == "all" else raw.get("ops")
    if not isinstance(chosen_ops, list) or not all(op in known_ops for op in chosen_ops):
        return [CaseError(file, name, "ops", f"must be 'all' or a list of ops; known: {', '.join(known_ops)}")]
    classes = list(CLASSES) if raw.get("classes", "all") == "all" else raw.get("classes")
    if not isinstance(classes, list) or not all(c in CLASSES for c in classes):
        return [CaseError(file, name, "classes", f"must be 'all' or a list of: {', '.join(CLASSES)}")]
    dtypes = raw.get("dtypes", ["float32"])
    if not isinstance(dtypes, list) or not dtypes:
        return [CaseError(file, name, "dtypes", "must be a non-empty list of dtypes")]
    cover = raw.get("cover", "pairwise")
    if cover not in ("pairwise", "all"):
        return [CaseError(file, name, "cover", f"must be pairwise or all, got {cover!r}")]
    tags = raw.get("tags", [])
    out: list[Case | CaseError] = []
    items: list[ErrorInput] = []
    for op in chosen_ops:
        try:
            items += error_inputs(op, tuple(classes), tuple(dtypes))
        except (CaseError, ValueError, scaffold.ScaffoldError) as exc:
            out.append(CaseError(file, f"{name}/{op}", None, f"cannot generate its error inputs: {exc}"))
    if cover == "pairwise" and sweep_mode() == "pairwise":
        items = covering(items)
    for item in items:
        case = {
            **item.case,
            "name": f"{name}/{item.op}/{item.cls}/{item.label}",
            "reference_decides": True,
            "tags": ["error", "generated", item.cls, *tags],
        }
        try:
            out.append(parse_case(file, case, index, sweep=name))
        except CaseError as err:
            out.append(err)
    return out
