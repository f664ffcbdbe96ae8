"""The memory a case needs, estimated from its shapes before anything is allocated, and refusing a case over budget.

A case names its operands' shapes (a literal's, or a ``generate`` shape), so everything a check allocates follows
from the shapes, the dtype and the attributes: the operands, the reference's intermediates and output, the tolerance
bound's float64 runs, the gradients, and what crosses to TensorFlow's server and back. ``estimate`` walks the same
steps as the code it models, allocating nothing: a ``Tally`` is told each array as that code makes it and frees
it, and keeps the largest total of arrays alive at once (the peak) and which arrays made it. ``check`` refuses a
case whose peak is over the memory budget (``harness.tf.machine.memory_budget``) with ``OverBudget``: one line
naming the case, the array and its size. ``harness.check.prepare`` calls it before it generates any operand, so a
``generate`` shape of ``[1, 100000, 100000, 64]`` is never allocated, and the runner reports the case as failed
while the other cases run on.

What the reference allocates (``harness.conv.reference``; the models below follow its functions one by one):

* a correlation (conv1d to conv3d, convolution, atrous_conv2d, tf.raw_ops.Conv): the padded input (input dtype),
  the filter in float64, one block of the im2col matrix (float64, at most the block size, 2 MiB by default, or one
  output row's worth), the float64 output; a pointwise convolution's im2col matrix is the whole input, converted to float64; a deep layer with few
  output pixels holds the whole im2col matrix and the (pixels x out channels) product;
* depthwise: the padded input in float64, the filter in float64 (tiled along the last output axis at unit stride),
  the float64 output; separable adds the pointwise product;
* a transposed correlation (conv*_transpose, the input gradients): the padded float64 output, the filter in
  float64, a block of the input in float64 and its product with the filter;
* the filter gradients: the padded input, an im2col block, a block of dy in float64, the float64 product;
* a fused resize-and-pad convolution: the input in float64, the resize's gathered rows and lerps, the mirror-padded
  input in float64, then a correlation;
* then the float64 (or int64) result cast to the input dtype.

The models follow the op's kind (``OpSpec.kind``) at any rank: tf.nn's and tf.raw_ops' forms of an op reach the
same core.

A forward item then runs the textbook formulations (``harness.conv.textbook``): each correlates at stride 1 over
the whole padded input with the zero-inserted kernel, and ``einsum`` copies every window of it in float64 (twice,
at most): often the item's peak, far above the reference's.

The estimate is an upper bound of the arrays NumPy allocates (``tests/unit/test_budget.py`` measures that with
``tracemalloc`` on cases of every kind); it does not count the interpreter, TensorFlow's runtime or allocator slack:
the budget leaves room for those (``harness.tf.machine.MEMORY_SHARE``). It costs tens of microseconds a case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import numpy as np

from harness import ops
from harness.conv import layouts
from harness.conv import reference as reference_kernels
from harness.conv.dtypes import accumulator, dtype_of
from harness.conv.padding import (
    Window,
    raw_op_window_args,
)
from harness.ops.gradient_rules import raw_attrs
from harness.ops.spec import OpSpec
from harness.registry.cases import Case, TensorSpec
from harness.tf.machine import MemoryBudget, format_size, memory_budget

F64 = np.dtype(np.float64)
U8 = np.dtype(np.uint8)
# A TensorFlow server holds what it received three times while it decodes a message (harness.tf.wire: the socket's
# buffer, the joined message, the arrays), then the operands, TensorFlow's tensors of them and oneDNN's reordered
# copies; its output as TensorFlow's tensor, oneDNN's reorder and the NumPy array, then twice more as it sends it.
SERVER_COPIES_IN = 3
SERVER_COPIES_OUT = 3
NOT_RUN = "not run: the case is over the memory budget"  # what TensorFlow did, for a refused case (the runner)
COMPARE_TEMPORARIES = 8
# tolerance._quantum's temporaries, in operand-sized float64 arrays: the nonzero values, frexp's two outputs, the
# digits, their negation and lowest bit, the exponents' sum
QUANTUM_TEMPORARIES = 7
# What the arrays above leave out, counted once for a whole check: NumPy's ufunc buffers (up to 3 x 8192 elements per
# call on strided operands, e.g. the col2im scatters), scalars, views and the Python objects of a call.
SLACK = 1 << 20  # float64 arrays of the output's size alive at once in harness.conv.tolerance.compare


class Array:
    """One array a check allocates: its name (what it holds), shape and dtype."""

    __slots__ = ("name", "shape", "dtype", "nbytes", "stand_in")

    def __init__(self, name: str, shape: tuple[int, ...], dtype: np.dtype, stand_in: bool = False):
        self.name, self.shape, self.dtype, self.stand_in = name, shape, dtype, stand_in  # stand_in: see Tally.new
        self.nbytes = math.prod(shape) * dtype.itemsize

    def describe(self) -> str:
        return f"array {self.name!r} of shape {list(self.shape)} {self.dtype.name}"

    def __repr__(self) -> str:
        return f"Array({self.name!r}, {self.shape}, {self.dtype.name})"


class Tally:
    """The arrays alive at once while modelled code runs: ``new`` as it allocates one, ``free`` as it lets go.
    Keeps the peak: the largest total, what was running (``phase``) and (``record``) the arrays alive then."""

    def __init__(self, record: bool = False) -> None:
        self.record = record
        self.live: list[Array] = []
        self.total = 0
        self.peak = 0
        self.at: tuple[Array, ...] = ()
        self.phase = ""
        self.peak_phase = ""
        self.phases: dict[str, int] = {"": 0}  # phase -> the largest total while it ran
        self.largest: Array | None = None
        self.high = 0  # the largest total since ``replay`` last marked it
        self.memo: dict[tuple, tuple[int, list[tuple[str, tuple[int, ...], np.dtype]]]] = {}

    def new(self, name: str, shape: Sequence[int], dtype: np.dtype, stand_in: bool = False) -> Array:
        """An array allocated now. ``stand_in``: it stands for several arrays or many small ones (the server's copies,
        the comparison's temporaries, a replayed call): counted, never named as the largest array."""
        a = Array(name, shape if type(shape) is tuple else tuple(shape), dtype, stand_in)
        self.live.append(a)
        self.total += a.nbytes
        if self.total > self.high:
            self.high = self.total
        if not stand_in and (self.largest is None or a.nbytes > self.largest.nbytes):
            self.largest = a
        if self.total > self.phases[self.phase]:
            self.phases[self.phase] = self.total
            if self.total > self.peak:
                self.peak, self.peak_phase = self.total, self.phase
                if self.record:
                    self.at = tuple(self.live)
        return a

    def start(self, phase: str) -> None:
        """What runs from now on (named in a refusal when the peak happens there)."""
        self.phase = phase
        self.phases[phase] = max(self.phases.get(phase, 0), self.total)

    def free(self, *arrays: Array | None) -> None:
        live = self.live
        for a in arrays:
            if a is None:
                continue
            for k in range(len(live) - 1, -1, -1):
                if live[k] is a:
                    del live[k]
                    self.total -= a.nbytes
                    break

    def keep(self, *arrays: Array) -> None:
        """Free everything but ``arrays`` (what a function returns once its temporaries are gone)."""
        kept = {id(a) for a in arrays}
        self.live = [a for a in self.live if id(a) in kept]
        self.total = sum(a.nbytes for a in self.live)


@dataclass(frozen=True)
class Estimate:
    """A check's peak: bytes, the step it happens in, the arrays alive then, and the largest array of all."""

    peak: int
    phase: str
    arrays: tuple[Array, ...]
    largest: Array | None
    phases: Mapping[str, int]  # each step's own peak (``Tally.phases``)

    @classmethod
    def of(cls, tally: Tally) -> Estimate:
        return cls(tally.peak, tally.peak_phase, tally.at, tally.largest, dict(tally.phases))


class OverBudget(Exception):
    """A case whose estimated peak is over the memory budget: refused before anything is allocated."""

    def __init__(self, case: Case, dtype: str, estimate: Estimate, budget: MemoryBudget):
        self.case, self.dtype, self.estimate, self.budget = case, dtype, estimate, budget
        over = f"over the memory budget of {format_size(budget.bytes)} ({budget.source})"
        largest = estimate.largest
        if largest is not None and largest.nbytes > budget.bytes:
            what = f"{largest.describe()} needs {format_size(largest.nbytes)}"
        else:
            top = sorted(estimate.arrays, key=lambda a: -a.nbytes)[:3]
            arrays = ", ".join(f"{a.name!r} {list(a.shape)} {a.dtype.name} {format_size(a.nbytes)}" for a in top)
            what = f"needs {format_size(estimate.peak)} at its peak ({estimate.phase}: {arrays}, ...)"
        super().__init__(f"{case.file}: case {case.name!r}: {what}, {over}")


# --- shapes without arrays ---------------------------------------------------------------------


def _convert(shape: Sequence[int], src: str, dst: str) -> tuple[int, ...]:
    """``layouts.convert``'s shape, without an array: ValueError where it would raise."""
    if len(shape) != len(src):
        raise ValueError(f"source layout {src!r} has {len(src)} axes but the array has {len(shape)}")
    sizes = dict(zip(src, shape))
    for letter, n in sizes.items():
        if letter not in dst and n != 1:
            raise ValueError(f"cannot convert {src} to {dst}: axis {letter!r} has size {n}")
    return tuple(sizes.get(letter, 1) for letter in dst)


class _Shaped:
    """What an attribute resolver reads of an operand (its shape), without the operand."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


def _prod(shape: Sequence[int]) -> int:
    return math.prod(shape)


# --- the reference's cores (harness.conv.reference) ---------------------------------------------


def _largest_block(batch: int, rows: int, row_bytes: int, limit: int) -> int:
    """The bytes of the largest block ``reference._blocks`` yields (``reference._block_buffer``)."""
    if batch == 0 or rows == 0:
        return 0
    item = rows * row_bytes
    if item <= limit:
        return min(batch, max(1, limit // max(item, 1))) * item
    return min(rows, max(1, limit // max(row_bytes, 1))) * row_bytes


def _pointwise(wins: Sequence[Window]) -> bool:
    return all(w.kernel == 1 and w.stride == 1 and w.pad_before == w.pad_after == 0 for w in wins)


def _padded(wins: Sequence[Window]) -> tuple[int, ...]:
    return tuple(w.size + w.pad_before + w.pad_after for w in wins)


def _core(t: Tally, fn, *args) -> Array:
    """Run the model of one reference function: what it allocates stays alive until it returns, then only its
    result is left besides what was alive before."""
    before = list(t.live)
    result = fn(t, *args)
    t.keep(*before, result)
    return result


def _correlate(
    t: Tally,
    x: Sequence[int],
    w: Sequence[int],
    wins: Sequence[Window],
    dt: np.dtype,
    limit: int,
    channels_last: bool = True,
) -> Array:
    """``reference._correlate``: x [N, *spatial, I], w [*kernel, I, O] -> the accumulator output [N, *out, O]."""
    acc = accumulator(dt)
    n, channels_out = x[0], w[-1]
    out_sizes = tuple(win.out for win in wins)
    out = t.new("output (accumulator)", (n, *out_sizes, channels_out), acc)
    if out.nbytes == 0:
        return out
    pointwise = _pointwise(wins)
    if not pointwise:
        t.new("padded input", (n, *_padded(wins), x[-1]), dt)
    rows, k = n * _prod(out_sizes), _prod(w[:-1])
    if pointwise and not channels_last:  # the input's transposed view, reshaped: a copy
        t.new("im2col (input dtype)", (rows, k), dt)
    if channels_out > rows:  # one whole im2col matrix, the filter converted a block at a time
        t.new("im2col", (rows, k), acc)
        if pointwise and dt != acc:
            t.new("im2col (accumulator)", (rows, k), acc)
        step = max(1, limit // (channels_out * acc.itemsize))
        t.new("filter block", (min(step, k), channels_out), acc)
        t.new("product", (rows, channels_out), acc)
        return out
    t.new("filter (accumulator)", (k, channels_out), acc)
    if pointwise:
        if dt != acc:
            t.new("im2col (accumulator)", (rows, k), acc)
        return out
    row_bytes = k * _prod(out_sizes[1:]) * acc.itemsize
    block = _largest_block(n, out_sizes[0], row_bytes, limit)
    t.new("im2col block", (block // max(k * acc.itemsize, 1), k), acc)
    return out


def _depthwise(t: Tally, x: Sequence[int], w: Sequence[int], wins: Sequence[Window], dt: np.dtype) -> Array:
    """``reference._depthwise``: x [N, *spatial, C], w [*kernel, C, M] -> the accumulator output [N, *out, C*M]."""
    acc = accumulator(dt)
    kernel, channels, multiplier = tuple(w[:-2]), w[-2], w[-1]
    out_sizes = tuple(win.out for win in wins)
    if not (x[0] and all(out_sizes) and channels and multiplier):
        return t.new("output (accumulator)", (x[0], *out_sizes, channels * multiplier), acc)
    t.new("padded input (accumulator)", (x[0], *_padded(wins), channels), acc)
    t.new("filter (accumulator)", w, acc)
    if wins[-1].stride == 1:
        t.new("tiled filter", (*kernel, out_sizes[-1] * channels, multiplier), acc)
    return t.new("output (accumulator)", (x[0], *out_sizes, channels * multiplier), acc)


def _correlate_transpose(
    t: Tally, y: Sequence[int], w: Sequence[int], wins: Sequence[Window], dt: np.dtype, limit: int
) -> Array:
    """``reference._correlate_transpose``: y [N, *in, I], w [*kernel, O, I] -> the padded accumulator output."""
    acc = accumulator(dt)
    kernel, channels_out, channels_in = tuple(w[:-2]), w[-2], w[-1]
    out_pad = t.new("padded output (accumulator)", (y[0], *_padded(wins), channels_out), acc)
    if _prod(y) and _prod(w):
        ko = _prod(kernel) * channels_out
        t.new("filter (accumulator)", (channels_in, ko), acc)
        row_bytes = ko * _prod(y[2:-1]) * acc.itemsize
        pixels = _largest_block(y[0], y[1], row_bytes, limit) // max(ko * acc.itemsize, 1)
        # the next block's arrays are made while the previous block's are still bound (up to two of each)
        for _ in range(2 if pixels < y[0] * _prod(y[1:-1]) else 1):
            t.new("input block (accumulator)", (pixels, channels_in), acc)
            t.new("product block", (pixels, ko), acc)
    return out_pad


def _correlate_filter(
    t: Tally, x: Sequence[int], dy: Sequence[int], wins: Sequence[Window], dt: np.dtype, limit: int
) -> Array:
    """``reference._correlate_filter``: x [N, *spatial, I], dy [N, *out, O] -> the accumulator [*kernel * I, O]."""
    acc = accumulator(dt)
    k = _prod([win.kernel for win in wins]) * x[-1]
    dw = t.new("filter gradient (accumulator)", (k, dy[-1]), acc)
    if _prod(dy) and dw.nbytes:
        t.new("padded input", (x[0], *_padded(wins), x[-1]), dt)
        row_bytes = k * _prod(dy[2:-1]) * acc.itemsize
        pixels = _largest_block(dy[0], dy[1], row_bytes, limit) // max(k * acc.itemsize, 1)
        t.new("im2col block", (pixels, k), acc)
        for _ in range(2 if pixels < dy[0] * _prod(dy[1:-1]) else 1):  # the next block's, the previous still bound
            t.new("out_backprop block (accumulator)", (pixels, dy[-1]), acc)
        t.new("product", (k, dy[-1]), acc)
    return dw


def _depthwise_transpose(t: Tally, dy: Sequence[int], w: Sequence[int], wins: Sequence[Window], dt: np.dtype) -> Array:
    """``reference._depthwise_transpose``: dy [N, *out, C*M], w [*kernel, C, M] -> the padded accumulator
    [N, *padded, C]."""
    acc = accumulator(dt)
    kernel, channels, multiplier = tuple(w[:-2]), w[-2], w[-1]
    padded = _padded(wins)
    if _prod(dy) and _prod(w) and all(win.stride == 1 for win in wins):
        full = tuple(
            Window(
                win.out,
                win.kernel,
                1,
                win.dilation,
                win.effective_kernel - 1,
                win.effective_kernel - 1,
                win.out + win.effective_kernel - 1,
            )
            for win in wins
        )
        t.new("rotated filter", (*kernel, channels * multiplier, 1), dt)
        out = _core(t, _depthwise, dy, (*kernel, channels * multiplier, 1), full, dt)
        if multiplier > 1:
            return t.new("summed output (accumulator)", (dy[0], *padded, channels), acc)
        return out
    dx_pad = t.new("padded output (accumulator)", (dy[0], *padded, channels), acc)
    if _prod(dy) and _prod(w):
        t.new("out_backprop (accumulator)", dy, acc)
        t.new("filter (accumulator)", w, acc)
        t.new("tap share", (*dy[:-1], channels), acc)
    return dx_pad


def _depthwise_filter(
    t: Tally, x: Sequence[int], dy: Sequence[int], wins: Sequence[Window], dt: np.dtype, multiplier: int
) -> Array:
    """``reference._depthwise_filter``: -> the accumulator [*kernel, C, M]."""
    acc = accumulator(dt)
    kernel = tuple(win.kernel for win in wins)
    if _prod(dy):
        t.new("padded input (accumulator)", (x[0], *_padded(wins), x[-1]), acc)
        t.new("out_backprop (accumulator)", dy, acc)
    return t.new("filter gradient (accumulator)", (*kernel, x[-1], multiplier), acc)


def _cast(t: Tally, acc_out: Array, dt: np.dtype, name: str, shape: Sequence[int] | None = None) -> Array:
    """``reference._cast``: the accumulator result plus +0.0 (one more accumulator array, so that a zero sum is
    +0.0), then as the input dtype; the accumulator arrays then go."""
    unsigned_zero = (
        t.new("output + 0.0 (accumulator)", acc_out.shape, acc_out.dtype) if acc_out.dtype.kind == "f" else None
    )
    out = t.new(name, acc_out.shape if shape is None else shape, dt)
    t.free(acc_out, unsigned_zero)
    return out


# --- the reference's public ops ------------------------------------------------------------------


def _data_shape(spec: OpSpec, shape: Sequence[int], attrs: Mapping[str, Any]) -> tuple[str, tuple[int, ...]]:
    fmt = spec.data_format(attrs)
    return fmt, _convert(shape, fmt, layouts.channels_last(fmt))


def _replay(t: Tally, key: tuple, fn, *args) -> list[Array]:
    """``fn(t, *args)`` (a model that returns the arrays it leaves alive), or, when the same call was modelled
    before in this tally, its effect again without walking it: one stand-in array as large as the most it held at
    once above what was alive before, freed, then its results. The bound's float64 runs repeat the same calls
    (on absolute values, then on ones; once per gradient), so this keeps a case's estimate to tens of microseconds.
    Not when ``record``ing the arrays at the peak (the stand-in would hide them)."""
    if t.record:
        return fn(t, *args)
    if key in t.memo:
        delta, results = t.memo[key]
        t.free(t.new("temporaries (as before)", (delta,), U8, stand_in=True))
        return [t.new(name, shape, dtype) for name, shape, dtype in results]
    base, outer = t.total, t.high
    t.high = base
    found = fn(t, *args)
    t.memo[key] = (t.high - base, [(a.name, a.shape, a.dtype) for a in found])
    t.high = max(outer, t.high)
    return found


def reference_call(
    t: Tally, spec: OpSpec, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any], dt: np.dtype, limit: int
) -> Array:
    """What ``spec.reference`` allocates for operands of ``shapes`` (in the op's layouts) and resolved ``attrs``,
    at dtype ``dt``: returns its output, left alive in ``t``. ValueError where the reference would reject the
    arguments before allocating."""
    key = ("reference", spec.name, tuple(sorted(shapes.items())), repr(sorted(attrs.items())), dt, limit)
    return _replay(t, key, lambda t_: [_reference_call(t_, spec, shapes, attrs, dt, limit)])[0]


def _reference_call(
    t: Tally, spec: OpSpec, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any], dt: np.dtype, limit: int
) -> Array:
    """By the kind of op (``OpSpec.kind``), at any rank: each kind is one core of the reference."""
    if spec.kind == "conv":
        fmt, x = _data_shape(spec, shapes[spec.data.name], attrs)
        w = shapes[spec.kernel_operand.name]
        wins = _windows(spec, attrs, fmt, x[1:-1], w[:-2])
        out = _core(t, _correlate, x, w, wins, dt, limit, fmt == layouts.channels_last(fmt))
        return _cast(t, out, dt, "output", _convert(out.shape, layouts.channels_last(fmt), fmt))
    if spec.kind in ("depthwise", "separable"):
        fmt, x = _data_shape(spec, shapes[spec.data.name], attrs)
        w = shapes[spec.kernel_operand.name]
        wins = spec.windows(x[1:-1], w[:-2], attrs)
        out = _core(t, _depthwise, x, w, wins, dt)
        if spec.kind == "separable":
            acc = accumulator(dt)
            pw = shapes["pointwise_filter"]
            pw_acc = t.new("pointwise filter (accumulator)", pw[2:], acc)
            mixed = t.new("pointwise output (accumulator)", (*out.shape[:-1], pw[-1]), acc)
            cast = t.new("output", _convert(mixed.shape, layouts.channels_last(fmt), fmt), dt)
            t.free(pw_acc, mixed, out)
            return cast
        return _cast(t, out, dt, "output", _convert(out.shape, layouts.channels_last(fmt), fmt))
    if spec.kind == "transposed":
        fmt, y = _data_shape(spec, shapes[spec.data.name], attrs)
        w = shapes[spec.kernel_operand.name]
        spatial = layouts.spatial(fmt)
        values = [int(v) for v in np.asarray(attrs["output_shape"]).reshape(-1)]
        sizes = values if len(values) == len(spatial) else [dict(zip(fmt, values))[c] for c in spatial]
        wins = spec.windows(sizes, w[:-2], attrs)
        if any(win.out != n for win, n in zip(wins, y[1:-1])):  # an unreachable output_shape (2**31, say)
            raise ValueError("output_shape: the reference rejects it before allocating the output")
        out = _core(t, _correlate_transpose, y, w, wins, dt, limit)
        return _cast(t, out, dt, "output", _convert((y[0], *sizes, w[-2]), layouts.channels_last(fmt), fmt))
    if spec.kind == "backprop":
        return _backprop_call(t, spec, shapes, attrs, dt, limit)
    if spec.kind == "fused":
        return _fused_call(t, spec, shapes, attrs, dt, limit)
    raise ValueError(f"no memory model for op {spec.name!r} of kind {spec.kind!r} (harness.check.budget)")


def _windows(
    spec: OpSpec, attrs: Mapping[str, Any], fmt: str, sizes: Sequence[int], kernel: Sequence[int]
) -> tuple[Window, ...]:
    """The windows of a call, from attributes in the op's own forms (tf.raw_ops' EXPLICIT with a flat
    explicit_paddings read as its pairs)."""
    if attrs.get("padding") == "EXPLICIT":
        flat = list(attrs.get("explicit_paddings", ()))
        attrs = {**attrs, "padding": [flat[i : i + 2] for i in range(0, len(flat), 2)]}
    return spec.windows(sizes, kernel, attrs)


def _input_sizes(fmt: str, sizes: Sequence[int], batch: int, channels: int) -> tuple[int, ...]:
    """A raw op's input_sizes (the full shape in fmt order, or the spatial sizes alone) as channels-last."""
    values = [int(v) for v in sizes]
    last = layouts.channels_last(fmt)
    if len(values) == len(fmt) - 2:
        return (batch, *values, channels)
    return _convert(values, fmt, last)


def _require_output(wins: Sequence[Window], batch: int, dy: Sequence[int], arg: str) -> None:
    """ValueError unless the forward convolution these windows describe gives out_backprop's (channels-last ``dy``)
    batch and spatial sizes: the reference checks that before it allocates the gradient ``arg`` asks for."""
    if batch != dy[0] or tuple(w.out for w in wins) != tuple(dy[1:-1]):
        raise ValueError(f"{arg}: the reference rejects it before allocating the output")


def _backprop_call(
    t: Tally, spec: OpSpec, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any], dt: np.dtype, limit: int
) -> Array:
    """A raw backprop op: an input gradient (a transposed correlation, or its depthwise form) or a filter gradient,
    of a size given by its sizes attribute or by the operand it reads the shape of (``OpSpec.shape_operand``)."""
    fmt = spec.data_format(attrs)
    last = layouts.channels_last(fmt)
    depthwise = "M" in spec.filter_layout
    dy = _convert(shapes["out_backprop"], fmt, last)
    shape_operand = spec.shape_operand
    if not spec.output_layout:  # d/d input
        w = shapes["filter"]
        given = shapes[shape_operand] if shape_operand else attrs["input_sizes"]
        size = _input_sizes(fmt, given, dy[0], w[-2])
        wins = _windows(spec, attrs, fmt, size[1:-1], w[:-2])
        _require_output(wins, size[0], dy, "input_sizes")
        if depthwise:
            out = _core(t, _depthwise_transpose, dy, w, wins, dt)
        else:
            out = _core(t, _correlate_transpose, dy, w, wins, dt, limit)
        return _cast(t, out, dt, "output", _convert(size, last, fmt))
    x = _convert(shapes["input"], fmt, last)
    sizes = list(shapes[shape_operand]) if shape_operand else [int(v) for v in attrs["filter_sizes"]]
    wins = _windows(spec, attrs, fmt, x[1:-1], sizes[:-2])
    _require_output(wins, x[0], dy, "filter_sizes")
    if depthwise:
        out = _core(t, _depthwise_filter, x, dy, wins, dt, sizes[-1])
    else:
        out = _core(t, _correlate_filter, x, dy, wins, dt, limit)
    return _cast(t, out, dt, "output", sizes)


def _fused_call(
    t: Tally, spec: OpSpec, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any], dt: np.dtype, limit: int
) -> Array:
    """``reference._fused_conv``: the input in float64, resized (its rows gathered, then each lerp's operands and
    result), mirror-padded, correlated; everything it checks before allocating is checked first."""
    x, w = shapes["input"], shapes["filter"]
    if len(x) != 4 or len(w) != 4 or w[2] != x[3]:
        raise ValueError("input / filter: the reference rejects them before allocating")
    pads = [[int(v) for v in pair] for pair in attrs["paddings"]]
    if len(pads) != 4 or any(len(pair) != 2 or min(pair) < 0 for pair in pads):
        raise ValueError("paddings: the reference rejects them before allocating")
    size = attrs.get("size")
    resized = (x[0], *(int(v) for v in size), x[3]) if size is not None else tuple(x)
    if len(resized) != 4 or min(resized[1:3]) <= 0:
        raise ValueError("size: the reference rejects it before allocating")
    room = -1 if attrs.get("mode") == "REFLECT" else 0
    if any(max(pads[a]) > resized[a] + room for a in (1, 2)):
        raise ValueError("paddings: the reference rejects them before allocating")
    padded = (x[0], *(resized[a] + sum(pads[a]) for a in (1, 2)), x[3])
    wins = spec.windows(padded[1:3], w[:2], {k: v for k, v in attrs.items() if k in ("strides", "padding")})
    before = list(t.live)
    t.new("input (float64)", x, F64)
    if size is not None:
        rows = (x[0], resized[1], x[2], x[3])
        t.new("top rows", rows, F64)
        t.new("bottom rows", rows, F64)
        for name in ("left", "right", "top lerp", "left", "right", "bottom lerp", "difference", "product", "resized"):
            t.new(f"resize: {name}", resized, F64)
    x_pad = t.new("padded input (float64)", padded, F64)
    t.keep(*before, x_pad)
    out = _core(t, _correlate, padded, w, wins, F64, limit)
    t.free(x_pad)
    return _cast(t, out, dt, "output")


# --- the reference gradients (harness.ops.gradients, harness.ops.gradient_rules) -------------------


def _raw(
    t: Tally, name: str, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any], dt: np.dtype, limit: int
) -> Array:
    return reference_call(t, ops.get(name), shapes, attrs, dt, limit)


def _pair(
    t: Tally, kind: str, x: Array, w: Array, dy: Array, raw: Mapping[str, Any], dt: np.dtype, limit: int
) -> tuple[Array, Array]:
    """``gradient_rules._conv2d_pair`` / ``_depthwise_pair``: (d_input, d_filter), the first alive while the second
    is computed."""
    prefix = {"conv": "conv2d", "depthwise": "depthwise_conv2d_native", "conv3d": "conv3d"}[kind]
    suffix = "_v2" if kind == "conv3d" else ""
    dx = _raw(
        t,
        f"{prefix}_backprop_input{suffix}",
        {"filter": w.shape, "out_backprop": dy.shape},
        {"input_sizes": list(x.shape), **raw},
        dt,
        limit,
    )
    dw = _raw(
        t,
        f"{prefix}_backprop_filter{suffix}",
        {"input": x.shape, "out_backprop": dy.shape},
        {"filter_sizes": list(w.shape), **raw},
        dt,
        limit,
    )
    return dx, dw


def _on_height_1(layout: str) -> str:
    return layout if "H" in layout else layout.replace("W", "HW")


def _rule(
    t: Tally, spec: OpSpec, a: Mapping[str, Array], attrs: Mapping[str, Any], dy: Array, dt: np.dtype, limit: int
) -> list[Array]:
    """What ``spec.gradient`` allocates (the arrays arrive in the accumulator dtype ``dt``): the gradients."""
    rule = spec.gradient.__name__ if spec.gradient else ""
    if rule == "conv2d":
        return list(
            _pair(t, "conv", a[spec.data.name], a[spec.kernel_operand.name], dy, raw_attrs(spec, attrs), dt, limit)
        )
    if rule == "conv3d":
        return list(
            _pair(t, "conv3d", a[spec.data.name], a[spec.kernel_operand.name], dy, raw_attrs(spec, attrs), dt, limit)
        )
    if rule == "depthwise_conv2d":
        return list(_pair(t, "depthwise", a["input"], a["filter"], dy, raw_attrs(spec, attrs), dt, limit))
    if rule == "conv1d":
        fmt = spec.data_format(attrs)
        (stride,), (dilation,), pad = spec.window_attrs(attrs)
        s4, d4, name, flat = raw_op_window_args((1, stride), (1, dilation), pad, "NHWC")
        raw = {"strides": s4, "padding": name, "explicit_paddings": flat, "data_format": "NHWC", "dilations": d4}
        x = Array("input", _convert(a["input"].shape, fmt, "NHWC"), dt)
        w = Array("filters", _convert(a["filters"].shape, "WIO", "HWIO"), dt)
        return list(_pair(t, "conv", x, w, Array("dy", _convert(dy.shape, fmt, "NHWC"), dt), raw, dt, limit))
    if rule == "transposed":
        fmt, w_layout = spec.data_format(attrs), spec.kernel_operand.layout
        fmt2, w_layout2 = _on_height_1(fmt), _on_height_1(w_layout)
        x2 = _convert(a[spec.data.name].shape, fmt, fmt2)
        w2 = _convert(a[spec.kernel_operand.name].shape, w_layout, w_layout2)
        dy2 = _convert(dy.shape, fmt, fmt2)
        strides, dilations, pad = spec.window_attrs(attrs)
        if fmt2 != fmt:
            strides, dilations = (1, *strides), (1, *dilations)
            pad = pad if isinstance(pad, str) else ((0, 0), *pad)
        s4, d4, name, flat = raw_op_window_args(strides, dilations, pad, fmt2)
        pairs = iter(pad if not isinstance(pad, str) else ())
        padding = pad if isinstance(pad, str) else [[0, 0] if c in "NC" else list(next(pairs)) for c in fmt2]
        raw = {"strides": s4, "padding": name, "data_format": fmt2, "dilations": d4}
        if len(fmt2) == 5:  # 3-D: the names only (gradient_rules.transposed)
            forward, raw_filter, conv = "conv3d", "conv3d_backprop_filter_v2", raw
        else:
            forward, raw_filter = "conv2d", "conv2d_backprop_filter"
            conv = {"strides": list(strides), "padding": padding, "data_format": fmt2, "dilations": list(dilations)}
            raw = {**raw, "explicit_paddings": flat}
        d_input = reference_call(t, ops.get(forward), {"input": dy2, "filters": w2}, conv, dt, limit)
        d_filters = _raw(
            t, raw_filter, {"input": dy2, "out_backprop": x2}, {"filter_sizes": list(w2), **raw}, dt, limit
        )
        return [d_input, d_filters]
    if rule == "separable_conv2d":
        fmt = spec.data_format(attrs)
        x, w_dw, w_pw = a["input"], a["depthwise_filter"], a["pointwise_filter"]
        z = reference_call(
            t,
            ops.get("depthwise_conv2d"),
            {"input": x.shape, "filter": w_dw.shape},
            {
                "strides": attrs["strides"],
                "padding": attrs["padding"],
                "data_format": fmt,
                "dilations": attrs.get("dilations"),
            },
            dt,
            limit,
        )
        dz, d_pw = _pair(t, "conv", z, w_pw, dy, raw_attrs(spec, {"strides": 1, "padding": "VALID"}, fmt), dt, limit)
        dx, d_dw = _pair(t, "depthwise", x, w_dw, dz, raw_attrs(spec, attrs), dt, limit)
        return [dx, d_dw, d_pw]
    raise ValueError(f"no memory model for the gradient rule of {spec.name!r} (harness.check.budget)")


def gradients_call(
    t: Tally, spec: OpSpec, operands: Mapping[str, Array], attrs: Mapping[str, Any], dy: Array, limit: int
) -> list[Array]:
    """What ``harness.ops.gradients.gradients`` allocates: the forward output, the operands and dy in the
    accumulator dtype, the rule's arrays, the gradients cast back. Returns the gradients, left alive."""
    key = ("gradients", spec.name, tuple((n, a.shape, a.dtype) for n, a in operands.items()), dy.dtype,
           repr(sorted(attrs.items())), limit)  # fmt: skip
    return _replay(t, key, _gradients_call, spec, operands, attrs, dy, limit)


def _gradients_call(
    t: Tally, spec: OpSpec, operands: Mapping[str, Array], attrs: Mapping[str, Any], dy: Array, limit: int
) -> list[Array]:
    before = list(t.live)
    dt = dy.dtype
    acc = accumulator(dt)
    reference_call(t, spec, {n: a.shape for n, a in operands.items()}, attrs, dt, limit)
    converted = {n: t.new(f"{n} (accumulator)", a.shape, acc) for n, a in operands.items()}
    dy_acc = t.new("out_backprop (accumulator)", dy.shape, acc)
    rule_before = list(t.live)
    grads = _rule(t, spec, converted, attrs, dy_acc, acc, limit)
    t.keep(*rule_before, *grads)
    cast = [t.new(f"d/d{n}", a.shape, a.dtype) for n, a in operands.items()]
    t.keep(*before, *cast)
    return cast


# --- the textbook formulations (harness.conv.textbook through harness.ops.pairings) --------------------


def _windows_product(t: Tally, n: int, c: int, out: Sequence[int], k_eff: Sequence[int], o: int, dt: np.dtype) -> None:
    """``textbook.correlate_valid`` (or its depthwise twin) of a padded [n, c, *(out + k_eff - 1)] input: the input
    and the zero-inserted kernel in float64, the windows as einsum's tensordot copies them, the float64 result."""
    padded = tuple(m + k - 1 for m, k in zip(out, k_eff))
    t.new("textbook: padded input", (n, c, *padded), dt)
    t.new("textbook: padded input (float64)", (n, c, *padded), F64)
    t.new("textbook: zero-inserted kernel", (o, c, *k_eff), F64)
    t.new("textbook: zero-inserted kernel (float64)", (o, c, *k_eff), F64)
    t.new("textbook: windows (float64)", (n, c, *out, *k_eff), F64)  # einsum(optimize=True): tensordot's copies
    t.new("textbook: windows, reordered (float64)", (n, c, *out, *k_eff), F64)
    t.new("textbook: output (float64)", (n, o, *out), F64)
    t.new("textbook: output, transposed (float64)", (n, o, *out), F64)


def textbook_calls(
    t: Tally, spec: OpSpec, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any], out: Array, dt: np.dtype
) -> list[Array]:
    """What the op's textbook formulations allocate (``runner._textbook``; every one counted, also those that turn
    out not to apply): each correlates at stride 1 over the whole padded input with the zero-inserted kernel, as
    the documents do. Returns their outputs (the case's dtype), left alive."""
    if not spec.textbook or out.nbytes == 0:
        return []
    fmt = spec.data_format(attrs)
    kept = []
    for formulation in spec.textbook:
        before = list(t.live)
        if formulation.name == "scipy_dilated_convolve":  # scipy.signal.convolve image by image: no windows
            x = _convert(shapes[spec.data.name], fmt, layouts.channels_last(fmt))
            wins = spec.windows(x[1:-1], shapes[spec.kernel_operand.name][:-2], attrs)
            t.new("textbook: padded input", (x[0], x[-1], *_padded(wins)), dt)
            t.new("textbook: padded input (float64)", (x[0], x[-1], *_padded(wins)), F64)
            for name in ("convolved (float64)", "stacked (float64)", "stacked again (float64)"):
                t.new(f"textbook: {name}", out.shape, F64)
        elif spec.kind == "transposed":
            y = _convert(shapes[spec.data.name], fmt, layouts.channels_last(fmt))
            w = shapes[spec.kernel_operand.name]
            strides, dilations, _ = spec.window_attrs(attrs)
            k_eff = [(k - 1) * d + 1 for k, d in zip(w[:-2], dilations)]
            spread = [(m - 1) * s + 1 for m, s in zip(y[1:-1], strides)]
            t.new("textbook: zero-interleaved input", (y[0], y[-1], *spread), dt)
            out_sizes = _convert(out.shape, fmt, layouts.channels_last(fmt))[1:-1]
            _windows_product(t, y[0], y[-1], out_sizes, k_eff, w[-2], dt)
        else:
            x = _convert(shapes[spec.data.name], fmt, layouts.channels_last(fmt))
            w = shapes[spec.kernel_operand.name]
            wins = spec.windows(x[1:-1], w[:-2], attrs)
            k_eff = [win.effective_kernel for win in wins]
            full = [win.size + win.pad_before + win.pad_after - win.effective_kernel + 1 for win in wins]
            o = w[-2] * w[-1] if spec.kind in ("depthwise", "separable") else w[-1]
            _windows_product(t, x[0], x[-1], full, k_eff, o, dt)
            if spec.kind == "separable":
                t.new("textbook: pointwise output (float64)", out.shape, F64)
        result = t.new(f"textbook:{formulation.name} output", out.shape, dt)
        t.keep(*before, result)
        kept.append(result)
    return kept


# --- a check, step by step ------------------------------------------------------------------------


def _operand(
    t: Tally, name: str, spec_t: TensorSpec, target: tuple[int, ...] | None, dt: np.dtype, copy: bool
) -> Array:
    """``harness.registry.cases.operand_array``: the values in float64, cast, converted, made contiguous."""
    temps = []
    if spec_t.generator is not None:
        temps.append(t.new(f"{name} (generated, float64)", spec_t.shape, F64))
        if spec_t.generator.dist in ("integers", "arange"):  # int64 values then float64; arange's products
            temps.append(t.new(f"{name} (generated, temporary)", spec_t.shape, F64))
    cast = t.new(f"{name} ({dt.name})", spec_t.shape, dt)
    t.free(*temps)
    if target is None or not copy:
        return cast
    out = t.new(name, target, dt)
    t.free(cast)
    return out


def _tensorflow(
    t: Tally, sent: Sequence[Array], returned: Sequence[tuple[str, tuple[int, ...], np.dtype]]
) -> list[Array]:
    """A call to TensorFlow's server (``harness.tf.isolation``, ``harness.tf.wire``): the message the worker
    encodes, what the server decodes, converts and computes, and the answer on its way back. Returns the arrays
    the worker receives, left alive."""
    before = list(t.live)
    pieces = [t.new(f"{a.name} (bytes sent to TensorFlow)", a.shape, a.dtype) for a in sent]
    message = t.new("message to TensorFlow", (sum(a.nbytes for a in sent),), U8)
    # (stand-ins: several copies of one array, never named as the largest array in a refusal)
    server = [t.new(f"{a.name} (TensorFlow's server: {SERVER_COPIES_IN} copies)", (SERVER_COPIES_IN, *a.shape), a.dtype,
                    stand_in=True) for a in sent]  # fmt: skip
    t.free(*pieces, message)
    outputs = [t.new(f"{name} (TensorFlow's server: {SERVER_COPIES_OUT} copies)", (SERVER_COPIES_OUT, *shape), dtype,
                     stand_in=True) for name, shape, dtype in returned]  # fmt: skip
    answer = t.new("message from TensorFlow", (sum(math.prod(s) * d.itemsize for _, s, d in returned),), U8)
    received = [t.new(f"{name} (bytes received)", shape, dtype) for name, shape, dtype in returned]
    got = [t.new(f"{name} (TensorFlow)", shape, dtype) for name, shape, dtype in returned]
    t.free(*server, *outputs, answer, *received)
    t.keep(*before, *got)
    return got


def _bound(t: Tally, run, operands: Sequence[Array], out_shape: tuple[int, ...], rounding: bool = False) -> Array:
    """``harness.conv.tolerance.bound_for``: the operands' absolute values in float64, ``run`` (a model at float64)
    on them and on ones, and the per-element bound (integer-valued operands may skip the second run: counted
    anyway). Returns the bound, left alive."""
    before = list(t.live)
    absolute = []
    for a in operands:
        t.new(f"{a.name} (float64, finite part)", a.shape, F64)  # kept: the overflow check reads it
        t.free(t.new(f"isfinite({a.name})", a.shape, np.dtype(bool)))
        absolute.append(t.new(f"|{a.name}| (float64)", a.shape, F64))
    magnitude = run(absolute)  # kept: Bound.magnitude
    inner = run(absolute) if rounding else None  # OpSpec.rounding: a run of the same shapes, kept to the sum
    rounded = max(absolute, key=lambda a: a.nbytes, default=None)
    if rounded is not None:
        t.free(t.new("rounded (integer check)", rounded.shape, F64))
    ones = [t.new(f"ones like {a.name}", a.shape, F64) for a in operands]
    run(ones)
    t.free(*ones)
    if len(operands) == 2:  # the quantum of a bilinear op's operands (Bound.quantum)
        for a in absolute:
            t.free(t.new(f"quantum temporaries of {a.name}", (QUANTUM_TEMPORARIES, *a.shape), F64, stand_in=True))
    for _ in range(4):  # the relative term, then the gradual-underflow term (harness.conv.tolerance.bound_for)
        t.new("bound temporary", out_shape, F64)
    bound = t.new("bound", out_shape, F64)
    t.free(*([inner] if isinstance(inner, Array) else []))
    t.keep(*before, *([magnitude] if isinstance(magnitude, Array) else []), bound)
    return bound


def _compare(t: Tally, shape: tuple[int, ...]) -> None:
    t.free(t.new("comparison temporaries", (COMPARE_TEMPORARIES, *shape), F64, stand_in=True))


def estimate(case: Case, dtype: str, check: str = "forward", record: bool = False) -> Estimate:
    """The peak memory of checking ``case`` at ``dtype`` (``check``: "forward" or "gradients"), from its shapes.

    Steps the model cannot follow (attributes the reference rejects, a layout that does not convert) end it there:
    the reference raises before it allocates more, and the case fails as malformed or as a contract. ``record``:
    keep the arrays alive at the peak (``Estimate.arrays``; slower, for saying why a case is refused)."""
    t = Tally(record)
    try:
        _walk(t, case, dtype, check)
    except (ValueError, KeyError, TypeError, IndexError):
        pass
    return Estimate.of(t)


def _walk(t: Tally, case: Case, dtype: str, check: str) -> None:
    spec = ops.get(case.op)
    dt = dtype_of(dtype)
    limit = case.block_bytes or reference_kernels._BLOCK_BYTES.get()  # as prepare.blocks sets it for the case
    fmt = spec.data_format(case.attrs)
    t.start("generating the operands")
    t.new("small arrays, NumPy's buffers, Python objects", (SLACK,), U8, stand_in=True)
    for tensor in [*case.inputs.values(), *([case.expected] if case.expected is not None else [])]:
        if tensor.literal is not None:
            t.new("literal (float64)", tensor.literal.shape, F64)
    operands: dict[str, Array] = {}
    for o in spec.operands:
        tensor = case.inputs[o.name]
        layout = o.op_layout(fmt)
        target = None if tensor.raw else _convert(tensor.shape, tensor.layout, layout)
        copy = not tensor.raw and (tensor.layout != layout or tensor.kernel == "convolution")
        operands[o.name] = _operand(t, o.name, tensor, target, dt, copy)
    if case.expected is not None:
        _operand(t, "expected", case.expected, None, dt, False)
    shapes = {n: a.shape for n, a in operands.items()}
    attrs = spec.resolved({n: cast(np.ndarray, _Shaped(s)) for n, s in shapes.items()}, case.attrs)
    t.start("the reference")
    ref = reference_call(t, spec, shapes, attrs, dt, limit)
    if case.expect_error is not None:
        t.start("TensorFlow's call")
        _tensorflow(t, list(operands.values()), [])
        return
    sent = list(operands.values())

    def forward64(arrays: Sequence[Array]) -> Array:
        return reference_call(t, spec, dict(zip(operands, (a.shape for a in arrays))), attrs, F64, limit)

    if check == "forward":
        t.start("TensorFlow's call")
        _tensorflow(t, sent, [("output", ref.shape, dt)])
        t.start("the tolerance bound")
        _bound(t, forward64, sent, ref.shape, rounding=spec.rounding is not None)
        t.start("the textbook formulations")
        textbook_calls(t, spec, shapes, attrs, ref, dt)
        t.start("comparing the outputs")
        _compare(t, ref.shape)
        return
    t.start("the output gradient")
    noise = t.new("out_backprop (float64)", ref.shape, F64)
    dy = t.new("out_backprop", ref.shape, dt)
    t.free(noise)
    t.start("the reference gradients")
    want = gradients_call(t, spec, operands, attrs, dy, limit)
    t.start("TensorFlow's gradients")
    _tensorflow(t, [*sent, dy], [(f"d/d{n}", a.shape, dt) for n, a in operands.items()])
    t.start("the gradients' bound")
    for name in case.gradients:
        before = list(t.live)
        _bound(t, partial(_gradient64, t, spec, list(operands), attrs, name, limit), [*sent, dy], operands[name].shape)
        _compare(t, operands[name].shape)
        t.keep(*before)
    t.start("the raw backprop ops")
    for name in case.gradients:
        raw = spec.raw_backprop.get(name)
        if raw is None:
            continue
        before = list(t.live)
        other = spec.kernel_operand.name if name == spec.data.name else spec.data.name
        pair = [operands[other], dy]
        _tensorflow(t, pair, [(raw, operands[name].shape, dt)])
        raw_args = {
            "input_sizes" if name == spec.data.name else "filter_sizes": list(operands[name].shape),
            **raw_attrs(spec, attrs),
        }
        keys = ["filter" if other != spec.data.name else "input", "out_backprop"]
        _raw(t, raw, dict(zip(keys, (a.shape for a in pair))), raw_args, dt, limit)
        _bound(t, partial(_raw64, t, raw, keys, raw_args, limit), pair, operands[name].shape)
        _compare(t, operands[name].shape)
        t.keep(*before)
    del want


def _gradient64(
    t: Tally, spec: OpSpec, names: list[str], attrs: Mapping[str, Any], wrt: str, limit: int, arrays: Sequence[Array]
) -> Array:
    """``harness.ops.gradients.gradient_function``'s call at float64 (in ``bound_for``): every gradient, one kept."""
    named = dict(zip([*names, "out_backprop"], arrays))
    grads = gradients_call(t, spec, {n: named[n] for n in names}, attrs, named["out_backprop"], limit)
    keep = grads[names.index(wrt)]
    t.free(*[g for g in grads if g is not keep])
    return keep


def _raw64(t: Tally, raw: str, keys: list[str], args: Mapping[str, Any], limit: int, arrays: Sequence[Array]) -> Array:
    """A raw backprop op's reference at float64 (in ``bound_for``)."""
    return _raw(t, raw, dict(zip(keys, (a.shape for a in arrays))), args, F64, limit)


def check(case: Case, dtype: str, budget: MemoryBudget | None = None, kind: str = "forward") -> Estimate:
    """Refuse ``case`` at ``dtype`` (``OverBudget``) when checking it (``kind``: "forward" or "gradients") would
    need more than ``budget`` (default: ``harness.tf.machine.memory_budget()``) at its peak; else its estimate."""
    budget = budget or memory_budget()
    found = estimate(case, dtype, kind)
    if found.peak > budget.bytes:
        raise OverBudget(case, dtype, estimate(case, dtype, kind, record=True), budget)
    return found
