"""Metamorphic relations: identities every convolution must satisfy, declared as data.

A ``Relation`` rewrites one configuration of an op (a ``Call``: op name, operand
arrays in the op's layouts, attributes) into an equivalent computation built
from other calls, layout conversions and NumPy (``Sides``). The relation holds
when both sides agree within the tolerance bound of ``harness.conv.tolerance``.

Each relation is checked on every registry case of its ops (``check``), except cases with special values
(NaN, infinities, overflow: the identities are those of real arithmetic):

* on the reference: the left side and the right side both computed by the reference;
* on TensorFlow: both computed by TensorFlow (called through ``harness.tf.isolation``);
* between them: the reference's left side against TensorFlow's right side, and the reverse.

A TensorFlow call whose configuration meets the condition of a known divergence
(``cases/known_divergences.yaml``, matched with ``harness.registry.divergences``) is not
used; the checks that need it are reported as skipped, with the divergence id.

Adding a relation = one function from a ``Call`` to ``Sides`` (or None when it
does not apply), one ``Relation`` entry in ``RELATIONS``, and its name in the
``relations`` of each op spec it holds for (``harness.ops``).
"""

from __future__ import annotations

import argparse
import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import ops
from harness.check.prepare import prepare
from harness.conv import layouts, textbook
from harness.conv.dtypes import accumulator, dtype_of
from harness.conv.padding import Window, windows
from harness.conv.tolerance import Comparison, bound_for, compare
from harness.registry import divergences
from harness.registry.cases import Case
from harness.registry.divergences import Divergence, features, matching
from harness.registry.loader import computing_cases
from harness.tf.environment import Environment
from harness.tf.isolation import Died, Raised, call_tensorflow

REFERENCE, TENSORFLOW = "reference", "tensorflow"


@dataclass(frozen=True)
class Call:
    """One op applied to operands (by tf.nn argument name, in the op's layouts) with keyword attributes."""

    op: str
    arrays: Mapping[str, np.ndarray]
    attrs: Mapping

    @property
    def fmt(self) -> str:
        return ops.get(self.op).data_format(self.attrs)

    def window(self):
        """(strides, dilations, padding), one value per spatial axis (``OpSpec.window_attrs``)."""
        return ops.get(self.op).window_attrs(self.attrs)

    def replace(self, **changes) -> Call:
        arrays = {**self.arrays, **{k: v for k, v in changes.items() if k in self.arrays}}
        attrs = {**self.attrs, **{k: v for k, v in changes.items() if k not in self.arrays}}
        return Call(self.op, arrays, attrs)


Run = Callable[[Call], np.ndarray]  # computes a call with one implementation, output in the call's dtype


@dataclass(frozen=True)
class Sides:
    """``left`` (a call) must equal ``right(run)`` (built from calls computed by ``run``, plus NumPy)."""

    left: Call
    right: Callable[[Run], np.ndarray]


@dataclass(frozen=True)
class Relation:
    name: str
    statement: str  # the identity, in words
    rewrite: Callable[[Call], Sides | None]  # None: the relation does not apply to this configuration

    @property
    def ops(self) -> tuple[str, ...]:
        """The ops whose registry cases it is checked on: those whose spec lists it (``OpSpec.relations``)."""
        return tuple(spec.name for spec in ops.OPS.values() if self.name in spec.relations)


class Excused(Exception):
    """A TensorFlow call meets the condition of a known divergence."""


class Failed(Exception):
    """An implementation raised on a call the relation needs (the message says which)."""


# --- small helpers --------------------------------------------------------------------------


def _data(call: Call) -> str:
    return next(o.name for o in ops.get(call.op).operands if o.kind == "data")


def _windows(call: Call, kernel_hw: Sequence[int]) -> tuple[Window, ...]:
    x = layouts.convert(call.arrays[_data(call)], call.fmt, layouts.channels_last(call.fmt))
    return ops.get(call.op).windows(x.shape[1:-1], kernel_hw, call.attrs)


def _explicit(wins: Sequence[Window], fmt: str) -> list[list[int]]:
    """Explicit padding pairs, in ``fmt`` order, equal to the windows' pads."""
    spatial = iter(wins)
    return [[0, 0] if c in "NC" else [(w := next(spatial)).pad_before, w.pad_after] for c in fmt]


def _pad(x: np.ndarray, fmt: str, wins: Sequence[Window]) -> np.ndarray:
    return np.pad(x, [(0, 0) if c in "NC" else pair for c, pair in zip(fmt, _explicit(wins, fmt))])


def _take(x: np.ndarray, fmt: str, letter: str, index) -> np.ndarray:
    where = [slice(None)] * x.ndim
    where[fmt.index(letter)] = index
    return x[tuple(where)]


def _cast(acc: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.asarray(acc).astype(like.dtype)


# --- the relations --------------------------------------------------------------------------


def _layout_invariance(call: Call) -> Sides | None:
    spec = ops.get(call.op)
    if len(spec.formats) < 2:
        return None
    src = call.fmt
    dst = layouts.other_data_format(src)
    moved, attrs = spec.in_format(call.arrays, call.attrs, dst)
    other = Call(call.op, moved, attrs)
    return Sides(call, lambda run: layouts.convert(run(other), dst, src))


def _rotated_convolution(call: Call) -> Sides | None:
    """conv2d (dilation 1) = a true convolution (scipy, kernel flipped) with the 180-degree-rotated kernel."""
    x, w_hwio = call.arrays["input"], call.arrays["filters"]
    if any(d != 1 for d in call.window()[1]) or x.size == 0 or w_hwio.size == 0 or _groups(call) != 1:
        return None
    wins = _windows(call, w_hwio.shape[:2])

    def right(run):
        x_nchw = layouts.convert(_pad(x, call.fmt, wins), call.fmt, "NCHW")
        k_conv_oihw = layouts.hwio_to_oihw(layouts.rotate_180(w_hwio, "HWIO"))
        full = textbook.convolve_valid(x_nchw, k_conv_oihw)
        strided = full[:, :, :: wins[0].stride, :: wins[1].stride][:, :, : wins[0].out, : wins[1].out]
        return _cast(layouts.convert(strided, "NCHW", call.fmt), x)

    return Sides(call, right)


def _one_by_one_matmul(call: Call) -> Sides | None:
    """conv2d with the kernel's first tap as a 1x1 kernel = a matrix product over channels (strided, padded)."""
    x, w_hwio = call.arrays["input"], call.arrays["filters"]
    if w_hwio.size == 0 or _groups(call) != 1:
        return None
    w_11 = w_hwio[:1, :1]
    left = call.replace(filters=w_11, dilations=None)
    wins = _windows(left, (1, 1))

    def right(run):
        x_nhwc = layouts.convert(_pad(x, call.fmt, wins), call.fmt, "NHWC").astype(accumulator(x.dtype))
        picked = x_nhwc[:, :: wins[0].stride, :: wins[1].stride][:, : wins[0].out, : wins[1].out]
        return _cast(layouts.convert(picked @ w_11[0, 0].astype(picked.dtype), "NHWC", call.fmt), x)

    return Sides(left, right)


def _input_channel_sum(call: Call) -> Sides | None:
    """Multi-input-channel correlation = the sum over input channels of single-channel correlations."""
    x, w = call.arrays["input"], call.arrays["filters"]
    layout = ops.get(call.op).operand("filters").layout
    channels = w.shape[layout.index("I")]
    if not 1 < channels <= 8 or x.shape[call.fmt.index("C")] != channels:
        return None

    def right(run):
        parts = [
            run(
                call.replace(
                    input=_take(x, call.fmt, "C", slice(i, i + 1)), filters=_take(w, layout, "I", slice(i, i + 1))
                )
            )
            for i in range(channels)
        ]
        return _cast(np.sum([p.astype(np.float64) for p in parts], axis=0), x)

    return Sides(call, right)


def _groups(call: Call) -> int:
    """A forward call's group count (``OpSpec.group_count``; 1 for a call with no channels)."""
    spec = ops.get(call.op)
    return spec.group_count(call.arrays["input"].shape, call.arrays["filters"].shape, call.attrs) or 1


def _output_channel_stack(call: Call) -> Sides | None:
    """Multi-output correlation = the single-output results stacked along the channel axis."""
    w = call.arrays["filters"]
    layout = ops.get(call.op).operand("filters").layout
    outputs = w.shape[layout.index("O")]
    if not 1 < outputs <= 8 or _groups(call) != 1:
        return None

    def right(run):
        parts = [run(call.replace(filters=_take(w, layout, "O", slice(o, o + 1)))) for o in range(outputs)]
        return np.concatenate(parts, axis=call.fmt.index("C"))

    return Sides(call, right)


def _groups_concatenated(call: Call) -> Sides | None:
    """A grouped correlation = the ungrouped correlations of each group's input channels with its block of output
    channels, concatenated along the channels."""
    groups = _groups(call)
    if groups == 1:
        return None
    x, w = call.arrays["input"], call.arrays["filters"]
    layout = ops.get(call.op).operand("filters").layout
    per_in, per_out = w.shape[layout.index("I")], w.shape[layout.index("O")] // groups

    def right(run):
        parts = [
            run(
                call.replace(
                    input=_take(x, call.fmt, "C", slice(g * per_in, (g + 1) * per_in)),
                    filters=_take(w, layout, "O", slice(g * per_out, (g + 1) * per_out)),
                )
            )
            for g in range(groups)
        ]
        return np.concatenate(parts, axis=call.fmt.index("C"))

    return Sides(call, right)


def _depthwise_per_channel(call: Call) -> Sides | None:
    """depthwise_conv2d = per input channel c, conv2d of channel c with w[:, :, c, :]; outputs channel-major."""
    x, w_hwim = call.arrays["input"], call.arrays["filter"]
    channels = w_hwim.shape[2]
    if not 0 < channels <= 8 or x.shape[call.fmt.index("C")] != channels:
        return None

    def right(run):
        parts = [
            run(
                Call(
                    "conv2d",
                    {"input": _take(x, call.fmt, "C", slice(c, c + 1)), "filters": w_hwim[:, :, c : c + 1, :]},
                    dict(call.attrs),
                )
            )
            for c in range(channels)
        ]
        return np.concatenate(parts, axis=call.fmt.index("C"))  # block c holds channels c * M .. c * M + M - 1

    return Sides(call, right)


def _separable_two_steps(call: Call) -> Sides | None:
    """separable_conv2d = depthwise_conv2d, then a 1x1 conv2d with the pointwise filter."""
    fmt = call.fmt

    def right(run):
        depthwise = run(
            Call(
                "depthwise_conv2d",
                {"input": call.arrays["input"], "filter": call.arrays["depthwise_filter"]},
                dict(call.attrs),
            )
        )
        return run(
            Call(
                "conv2d",
                {"input": depthwise, "filters": call.arrays["pointwise_filter"]},
                {"strides": 1, "padding": "VALID", "data_format": fmt},
            )
        )

    return Sides(call, right)


def _atrous_as_dilated_conv2d(call: Call) -> Sides | None:
    """atrous_conv2d(rate) = conv2d with dilations=rate, stride 1."""
    other = Call(
        "conv2d",
        {"input": call.arrays["value"], "filters": call.arrays["filters"]},
        {"strides": 1, "padding": call.attrs["padding"], "dilations": list(call.window()[1])},
    )
    return Sides(call, lambda run: run(other))


def _atrous_as_zero_inserted(call: Call) -> Sides | None:
    """atrous_conv2d(rate) = conv2d (stride 1, no dilation) with the zero-inserted kernel."""
    kernel = layouts.dilate_kernel(call.arrays["filters"], call.window()[1], "HWIO")
    other = Call(
        "conv2d", {"input": call.arrays["value"], "filters": kernel}, {"strides": 1, "padding": call.attrs["padding"]}
    )
    return Sides(call, lambda run: run(other))


def _zero_inserted_kernel(call: Call) -> Sides | None:
    """conv2d with dilations d = conv2d with the kernel's taps spread by d - 1 zeros (any stride and padding)."""
    rate = call.window()[1]
    if all(d == 1 for d in rate):
        return None
    layout = ops.get(call.op).operand("filters").layout
    other = call.replace(filters=layouts.dilate_kernel(call.arrays["filters"], rate, layout), dilations=None)
    return Sides(call, lambda run: run(other))


def _conv1d_height_1(call: Call) -> Sides | None:
    """conv1d = conv2d on data with a height-1 axis and a height-1 kernel."""
    fmt = call.fmt
    fmt2 = "NHWC" if fmt == "NWC" else "NCHW"
    (stride,), (dilation,), _ = call.window()
    other = Call(
        "conv2d",
        {
            "input": layouts.convert(call.arrays["input"], fmt, fmt2),
            "filters": layouts.convert(call.arrays["filters"], "WIO", "HWIO"),
        },
        {"strides": [1, stride], "padding": call.attrs["padding"], "data_format": fmt2, "dilations": [1, dilation]},
    )
    return Sides(call, lambda run: layouts.convert(run(other), fmt2, fmt))


def _transpose_by_zero_insertion(call: Call) -> Sides | None:
    """conv2d_transpose = interleave zeros, pad (or crop), correlate with the rotated, in/out-swapped kernel."""
    fmt = call.fmt
    y_nhwc = layouts.convert(call.arrays["input"], fmt, "NHWC")
    w_hwoi = call.arrays["filters"]
    shape = call.attrs["output_shape"]
    if len(shape) == len(fmt) and shape[fmt.index("C")] != w_hwoi.shape[2]:
        return None  # grouped: the documents' recipe is not
    out_hw = [dict(zip(fmt, shape))[c] for c in layouts.spatial(fmt)] if len(shape) == len(fmt) else list(shape)
    strides, dilations, pad = call.window()
    forward = windows(call.op, out_hw, w_hwoi.shape[:2], strides, dilations, pad)

    def right(run):
        z = layouts.interleave_zeros(y_nhwc, strides, "NHWC")
        for axis, (win, m) in enumerate(zip(forward, out_hw), start=1):
            before = win.effective_kernel - 1 - win.pad_before
            after = m + win.effective_kernel - 1 - z.shape[axis] - before
            z = textbook._pad_or_crop(z, axis, before, after)
        w_hwio = layouts.rotate_180(np.swapaxes(w_hwoi, 2, 3), "HWIO")  # [h, w, out, in] -> rotated [h, w, in, out]
        out = run(
            Call(
                "conv2d",
                {"input": z, "filters": w_hwio},
                {"strides": 1, "padding": "VALID", "dilations": list(dilations)},
            )
        )
        return layouts.convert(out, "NHWC", fmt)

    return Sides(call, right)


def _explicit_is_np_pad(call: Call) -> Sides | None:
    """Explicit padding = np.pad with those pairs, then VALID."""
    padding = call.attrs.get("padding")
    if isinstance(padding, str) or padding is None:
        return None
    data = _data(call)
    pairs = [tuple(p) for p in padding]
    other = call.replace(**{data: np.pad(call.arrays[data], pairs)}, padding="VALID")
    return Sides(call, lambda run: run(other))


def _same_is_explicit(call: Call) -> Sides | None:
    """SAME = explicit padding with harness.conv.padding's pads (the odd pixel at the bottom / right)."""
    if call.attrs.get("padding") != "SAME":
        return None
    filt = next(o for o in ops.get(call.op).operands if o.kind == "filter")
    w = call.arrays[filt.name]
    kernel = [w.shape[filt.layout.index(c)] for c in call.fmt if c not in "NC"]
    wins = _windows(call, kernel)
    return Sides(call, lambda run: run(call.replace(padding=_explicit(wins, call.fmt))))


RELATIONS: tuple[Relation, ...] = (
    Relation(
        "layout_invariance",
        "the same case in channels-last and channels-first layouts gives the same result after conversion",
        _layout_invariance,
    ),
    Relation(
        "convolution_is_rotated_correlation",
        "correlation with w equals true convolution with the 180-degree-rotated w",
        _rotated_convolution,
    ),
    Relation(
        "one_by_one_is_matmul",
        "a 1x1 convolution is a matrix product over channels (mutil_in_out_1x1)",
        _one_by_one_matmul,
    ),
    Relation(
        "input_channel_sum",
        "multi-input-channel correlation is the sum over channels of single-channel correlations (corr2D_mutil_in)",
        _input_channel_sum,
    ),
    Relation(
        "output_channel_stack",
        "multi-output correlation is the stack of single-output results (mutil_in_out)",
        _output_channel_stack,
    ),
    Relation(
        "groups_are_concatenated",
        "a grouped correlation is the concatenation of each group's ungrouped correlation",
        _groups_concatenated,
    ),
    Relation(
        "depthwise_is_per_channel_conv2d", "depthwise equals per-channel conv2d, channel-major", _depthwise_per_channel
    ),
    Relation(
        "separable_is_depthwise_then_pointwise", "separable equals depthwise then a 1x1 conv2d", _separable_two_steps
    ),
    Relation("atrous_is_dilated_conv2d", "atrous_conv2d equals conv2d with dilations=rate", _atrous_as_dilated_conv2d),
    Relation(
        "atrous_is_zero_inserted_kernel",
        "atrous_conv2d equals conv2d with the zero-inserted kernel",
        _atrous_as_zero_inserted,
    ),
    Relation(
        "dilation_is_zero_inserted_kernel",
        "a dilated conv2d equals conv2d with the zero-inserted kernel",
        _zero_inserted_kernel,
    ),
    Relation("conv1d_is_conv2d_height_1", "conv1d equals conv2d with height 1", _conv1d_height_1),
    Relation(
        "transpose_is_zero_insertion",
        "conv2d_transpose equals interleave zeros, pad, then correlate with the "
        "rotated, in/out-swapped kernel (the documents' recipe)",
        _transpose_by_zero_insertion,
    ),
    Relation("explicit_padding_is_np_pad", "explicit padding equals np.pad then VALID", _explicit_is_np_pad),
    Relation(
        "same_is_explicit", "SAME equals explicit padding with the odd pixel at the bottom / right", _same_is_explicit
    ),
)


def get(name: str) -> Relation:
    for relation in RELATIONS:
        if relation.name == name:
            return relation
    raise ValueError(f"unknown relation {name!r}; known: {', '.join(r.name for r in RELATIONS)}")


# --- checking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One side of one relation on one configuration."""

    relation: str
    case: str  # case id[dtype]
    side: str  # reference | tensorflow | reference vs tensorflow | tensorflow vs reference
    status: str  # passed | failed | skipped
    detail: str = ""
    comparison: Comparison | None = None

    def line(self) -> str:
        what = self.comparison.line() if self.comparison else ""
        return f"{self.status:<7} {self.relation} on {self.case} ({self.side}): {self.detail or what}"


def _reference_run(known: tuple[Call, np.ndarray]) -> Run:
    """The reference, remembering each call's output for one check (``known``: a call whose output is already
    computed): the TensorFlow side needs it for the features."""
    memo: dict[int, tuple[Call, np.ndarray]] = {id(known[0]): known}  # id(call) -> (call, output); the call is kept

    def run(call: Call) -> np.ndarray:
        if id(call) not in memo:
            spec = ops.get(call.op)
            try:
                memo[id(call)] = (call, np.asarray(spec.call(spec.reference, call.arrays, call.attrs)))
            except ValueError as exc:
                raise Failed(f"the reference rejects {call.op}({_describe(call)}): {exc}") from None
        return memo[id(call)][1]

    return run


def _describe(call: Call) -> str:
    shapes = ", ".join(f"{k}={list(np.shape(v))}" for k, v in call.arrays.items())
    return shapes + ", " + ", ".join(f"{k}={v!r}" for k, v in call.attrs.items())


def _tensorflow_run(case: Case, dtype: str, known: Sequence[Divergence], env: Environment, reference: Run) -> Run:
    def run(call: Call) -> np.ndarray:
        spec = ops.get(call.op)
        try:
            ref = reference(call)
        except Failed:
            ref = None
        applicable = matching(known, features(call.op, dtype, call.arrays, call.attrs, ref, env), env)
        if applicable:
            raise Excused(f"{call.op} meets known divergence {', '.join(d.id for d in applicable)}")
        result = call_tensorflow(call.op, tuple(call.arrays[o.name] for o in spec.operands), dict(call.attrs))
        if isinstance(result, Raised):
            raise Failed(f"tensorflow {call.op}({_describe(call)}) raised {result.error_class}: {result.message[:200]}")
        if isinstance(result, Died):
            raise Failed(f"tensorflow {call.op}({_describe(call)}) died ({result.how}): {result.stderr_tail}")
        return result.value

    return run


def _evaluate(what: Callable[[], np.ndarray]) -> tuple[np.ndarray | None, str, str]:
    """(value, status if no value, why)."""
    try:
        return np.asarray(what()), "", ""
    except Excused as why:
        return None, "skipped", str(why)
    except Failed as why:
        return None, "failed", str(why)
    except Exception as exc:  # the rewrite's NumPy glue on an output it did not expect: this check fails, no crash
        return None, "failed", f"{type(exc).__name__}: {exc}"


def check(
    relation: Relation,
    case: Case,
    dtype: str = "float32",
    known: Sequence[Divergence] = (),
    env: Environment | None = None,
) -> list[Check]:
    """Every side of ``relation`` on ``case`` at ``dtype``; [] when the relation does not apply to it."""
    env = env or Environment.current()
    name = f"{case.id}[{dtype}]"
    if any(t.special is not None for t in case.inputs.values()):
        # The relations are identities of real arithmetic: NaN, infinities and overflow (inf - inf, 0 * inf in a
        # rewritten side's inserted zeros) break them. Special values are checked against the reference's IEEE
        # semantics directly (docs/cases.md, "Special values").
        return []
    try:
        p = prepare(case, dtype)
        if p.reference_error is not None:
            return []  # only configurations the reference accepts
        base = Call(case.op, p.arrays, p.attrs)
        reference = _reference_run((base, p.reference_output()))  # most left sides are this very call
        sides = relation.rewrite(base)
    except (ValueError, Failed):
        return []
    if sides is None:
        return []
    left = sides.left
    try:
        bound = bound_for(ops.get(left.op).reference, left.arrays, left.attrs, dtype_of(dtype))
    except ValueError as exc:
        return [Check(relation.name, name, REFERENCE, "failed", f"the reference rejects the left side: {exc}")]
    runs = {REFERENCE: reference, TENSORFLOW: _tensorflow_run(case, dtype, known, env, reference)}
    lefts = {k: _evaluate(functools.partial(run, left)) for k, run in runs.items()}
    rights = {k: _evaluate(functools.partial(sides.right, run)) for k, run in runs.items()}
    checks = []
    for left_impl, right_impl in (
        (REFERENCE, REFERENCE),
        (TENSORFLOW, TENSORFLOW),
        (REFERENCE, TENSORFLOW),
        (TENSORFLOW, REFERENCE),
    ):
        side = left_impl if left_impl == right_impl else f"{left_impl} vs {right_impl}"
        (lv, ls, lwhy), (rv, rs, rwhy) = lefts[left_impl], rights[right_impl]
        if lv is None or rv is None:
            status = "failed" if "failed" in (ls, rs) else "skipped"
            checks.append(Check(relation.name, name, side, status, "; ".join(w for w in (lwhy, rwhy) if w)))
            continue
        comparison = compare(f"right side ({right_impl})", rv, f"left side ({left_impl})", lv, bound)
        checks.append(Check(relation.name, name, side, "passed" if comparison.ok else "failed", "", comparison))
    return checks


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.selftest.relations [case files] [--relation NAME]``: check relations, print a table and failures."""

    parser = argparse.ArgumentParser(prog="python -m harness.selftest.relations", description=main.__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="case files (default: every cases/**/*.yaml)")
    parser.add_argument("--relation", action="append", default=[], help="check only this relation (repeatable)")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)
    try:
        chosen = [get(name) for name in args.relation] or list(RELATIONS)
        dtype_of(args.dtype)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        cases = computing_cases(args.files)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    known = divergences.registry()
    env, failures = Environment.current(), []
    print("| relation | configurations | passed | skipped (known divergence) | failed |\n|---|---|---|---|---|")
    for relation in chosen:
        checks = [ch for c in cases if c.op in relation.ops for ch in check(relation, c, args.dtype, known, env)]
        counts = Counter(ch.status for ch in checks)
        configs = len({ch.case for ch in checks})
        print(f"| {relation.name} | {configs} | {counts['passed']} | {counts['skipped']} | {counts['failed']} |")
        failures += [ch for ch in checks if ch.status == "failed"]
    for ch in failures:
        print(ch.line())
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
