"""NumPy reference kernels with the signatures of ``tf.nn``.

Each public function takes and returns NumPy arrays in exactly the layouts,
argument names, defaults and output dtype of its ``tf.nn`` namesake (TensorFlow
2.x). They are written from the definition of the operation, never by calling
TensorFlow (this module does not import it):

    out[n, o_1, ..., o_k, c] = sum over taps t and input channels i of
        x_padded[n, o_1 * s_1 + t_1 * d_1, ..., i] * w[t_1, ..., i, c]

that is a *correlation* (no kernel flip), with TensorFlow's padding rules from
``harness.conv.padding``. Sums are accumulated in float64 (int64 for int32) and the
result is cast to the input dtype once, so the reference is as exact as the
input dtype allows.

Vectorized: a correlation and its adjoints are matrix products with the im2col matrix
(channels-last, built and consumed a block of at most 2 MiB at a time); depthwise and its
filter gradient are one ``einsum`` over a strided view of the windows. The only Python loops
are over blocks and, for col2im scatters, kernel taps.

Invalid arguments raise ``ValueError`` naming the op, the argument and its value.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from harness.conv import layouts
from harness.conv.dtypes import DTYPES, accumulator
from harness.conv.padding import (
    ArgForms,
    Padding,
    Window,
    normalize_padding,
    normalize_raw_padding,
    normalize_window_arg,
    raw_op_window_args,
    require_taps,
    transpose_output_sizes,
    window,
    windows,
)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "convolution",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
    "conv_transpose",
    "atrous_conv2d",
    "atrous_conv2d_transpose",
    "depthwise_conv2d",
    "separable_conv2d",
    "depthwise_conv2d_backprop_input",
    "depthwise_conv2d_backprop_filter",
    "conv2d_backprop_input",
    "conv2d_backprop_filter",
    "depthwise_conv2d_native_backprop_input",
    "depthwise_conv2d_native_backprop_filter",
    "conv3d_backprop_input_v2",
    "conv3d_backprop_filter_v2",
    "conv2d_backprop_input_v2",
    "conv2d_backprop_filter_v2",
    "conv3d_backprop_input",
    "conv3d_backprop_filter",
    "fused_resize_and_pad_conv2d",
    "fused_pad_conv2d",
]


# --- argument checks ----------------------------------------------------------------------

def _array(op: str, arg: str, value, rank: int, like: np.ndarray | None = None, like_arg: str = "input") -> np.ndarray:
    """``value`` as an array of a supported dtype and this rank (and ``like``'s dtype, ``like`` being argument ``like_arg``)."""
    try:
        a = np.asarray(value)
    except Exception as exc:  # ragged nested lists, objects ...
        raise ValueError(f"{op}: argument '{arg}' is not an array: {exc}") from None
    if a.dtype not in DTYPES.values():
        raise ValueError(f"{op}: argument '{arg}' has dtype {a.dtype}; supported: {', '.join(DTYPES)}")
    if a.ndim != rank:
        raise ValueError(f"{op}: argument '{arg}' must have rank {rank}, got rank {a.ndim} with shape {list(a.shape)}")
    if like is not None and a.dtype != like.dtype:
        raise ValueError(f"{op}: argument '{arg}' has dtype {a.dtype} but '{like_arg}' has dtype {like.dtype}")
    return a


def _data_format(op: str, value: str | None, allowed: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise ValueError(f"{op}: argument 'data_format'={value!r} must be one of {', '.join(allowed)}")
    return value


def _match(op: str, arg: str, what: str, got: int, want: int, shapes: str) -> None:
    if got != want:
        raise ValueError(f"{op}: argument '{arg}' has {what}={got} but it must be {want} ({shapes})")


def _data_and_filter(op: str, data_arg: str, data: ArrayLike, fmt: str, filter_arg: str, filt: ArrayLike,
                     filter_layout: str, grouped: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Check the data and filter arrays and that the filter's I axis matches the data's channels, or, when
    ``grouped``, divides them into groups (``_groups``).

    Returns (data as given, data channels-last, filter, groups). Grouping is the semantics of TensorFlow's Conv2D
    and Conv3D ops (their shape functions, XLA's feature_group_count; Keras's ``groups``): output channel ``o``
    belongs to group ``o // (O / groups)`` and reads that group's block of input channels."""
    x = _array(op, data_arg, data, len(fmt))
    w = _array(op, filter_arg, filt, len(filter_layout), like=x, like_arg=data_arg)
    x_last = layouts.convert(x, fmt, layouts.channels_last(fmt))
    shapes = f"{filter_arg} {list(w.shape)} {filter_layout}, {data_arg} {list(x.shape)} {fmt}"
    if grouped:
        return x, x_last, w, _groups(op, filter_arg, filter_layout, w.shape, x_last.shape[-1], shapes)
    axis = filter_layout.index("I")
    _match(op, filter_arg, f"in_channels (axis {axis})", w.shape[axis], x_last.shape[-1], shapes)
    return x, x_last, w, 1


def _groups(op: str, filter_arg: str, filter_layout: str, filter_shape: tuple[int, ...], channels: int,
            shapes: str, unit: str = "axis") -> int:
    """The group count of a convolution whose data has ``channels`` channels and whose filter (in ``filter_layout``,
    with ``I`` and ``O`` axes) has ``filter_shape``: ValueError naming the filter argument unless the in_channels
    divide the channels into groups that also divide the out_channels (TensorFlow checks in this order)."""
    i_axis, o_axis = filter_layout.index("I"), filter_layout.index("O")
    per_group, out_channels = filter_shape[i_axis], filter_shape[o_axis]
    if per_group == channels:
        return 1
    if per_group == 0 or channels == 0 or channels % per_group:
        raise ValueError(f"{op}: argument '{filter_arg}' has in_channels ({unit} {i_axis})={per_group} but it must be "
                         f"{channels} or divide it into groups ({shapes})")
    groups = channels // per_group
    if out_channels % groups:
        raise ValueError(f"{op}: argument '{filter_arg}' has out_channels ({unit} {o_axis})={out_channels}, which the "
                         f"{groups} groups ({channels} channels / in_channels {per_group}) do not divide ({shapes})")
    return groups


# The forms each op's window arguments take in tf.nn (the op specs in harness.ops name them too).
CONV2D_FORMS = ArgForms()  # strides, dilations: an int or a list of 1, 2 or 4; explicit padding
CONV1D_FORMS = ArgForms("stride", (1, 3), "dilations", (1, 3), explicit_padding=False)
ATROUS_FORMS = ArgForms(None, (), "rate", (1, 2), dilation_default=None)  # stride 1; rate (required): an int or one per axis
DEPTHWISE_FORMS = ArgForms("strides", (4,), "dilations", (2,), allow_int=False)  # a 4-list of strides, 2 dilations
TRANSPOSE_FORMS = ArgForms()
RAW_FORMS = ArgForms("strides", (4,), "dilations", (4,), allow_int=False)  # tf.raw_ops: 4-lists (and EXPLICIT padding)
CONV1D_TRANSPOSE_FORMS = ArgForms("strides", (1, 3), "dilations", (1, 3), explicit_padding=False,
                                  output_shape_spatial=False)  # output_shape: the 3 values only
# tf.nn.conv3d is the raw op: 5-lists, names only (the 3-D backprop ops take the same forms).
CONV3D_FORMS = ArgForms("strides", (5,), "dilations", (5,), allow_int=False, explicit_padding=False)
CONV3D_TRANSPOSE_FORMS = ArgForms("strides", (1, 3, 5), "dilations", (1, 3, 5), explicit_padding=False,
                                  output_shape_spatial=False)
ATROUS_TRANSPOSE_FORMS = ArgForms(None, (), "rate", (), dilation_default=None, explicit_padding=False,
                                  output_shape_spatial=False)  # rate: a positive int
# tf.nn.convolution / conv_transpose by number of spatial axes: the data formats (default first), the filter layouts
# ([*kernel, I, O] and the transposed [*kernel, O, I]) and the argument forms.
RANKS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
CONVOLUTION_FORMS = {n: ArgForms("strides", tuple(sorted({1, n, n + 2})), "dilations", tuple(sorted({1, n, n + 2})),
                                 explicit_padding=False, stride_default=1, stride_with_dilation=False)
                     for n in RANKS}
CONV_TRANSPOSE_FORMS = {1: CONV1D_TRANSPOSE_FORMS, 2: dataclasses.replace(TRANSPOSE_FORMS, output_shape_spatial=False),
                        3: CONV3D_TRANSPOSE_FORMS}
DEPTHWISE_BACKPROP_FORMS = ArgForms("strides", (4,), "dilations", (4,), allow_int=False)  # tf.nn's: explicit pairs


def filter_layout(rank: int, transposed: bool = False) -> str:
    """The filter layout of a convolution over ``rank`` spatial axes: ``[*kernel, I, O]`` (``DHWIO``...), or a
    transposed convolution's ``[*kernel, O, I]``."""
    return RANKS[rank][0][1:-1] + ("OI" if transposed else "IO")


def _ieee(fn: F) -> F:
    """Run ``fn`` with NumPy's floating-point warnings off: NaN, infinities and overflow beyond the dtype's range are
    IEEE results the reference defines (docs/cases.md, "Special values"), not errors to report."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _cast(acc: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # float64 -> float16/bfloat16/float32 rounds to nearest once (beyond the dtype's range: +-inf); int64 -> int32
    # wraps like TF. A zero sum is +0.0 whatever path computed it: the sum starts from +0.0 (-0.0 + 0.0 is +0.0), so
    # the reference's signed zeros do not depend on BLAS or einsum (harness.conv.tolerance: zeros compare equal).
    if acc.dtype.kind == "f":
        acc = acc + 0.0
    return acc.astype(dtype)


# --- the three cores: correlation, depthwise correlation, transposed correlation ----------
#
# A correlation and its two adjoints are matrix products with the im2col matrix: one row per
# (batch, output pixel), one column per (kernel tap, input channel), channels-last like the
# data. Memory out of cache is slower than the float64 GEMM consumes it, so the matrix is
# built and consumed one block of output rows at a time, each block the size of a core's L2
# cache (the block sizes tried and their timings are in docs/speed.md): a call holds one
# block, whatever the layer's full im2col matrix would take. The GEMM runs in the orientation
# [M, K] @ [K, O].

_BLOCK_BYTES = contextvars.ContextVar("block_bytes", default=2 << 20)


@contextlib.contextmanager
def block_bytes(size: int) -> Iterator[None]:
    """Blocks of at most ``size`` bytes (instead of 2 MiB) for the reference calls made inside the ``with`` block.

    The result is the same at any block size; a small size makes a small case cross the blocked paths' boundaries
    (a case's ``block_bytes`` field: ``harness.check.prepare``). ``size`` must be a positive int.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"block_bytes: argument 'size'={size!r} must be a positive int")
    token = _BLOCK_BYTES.set(size)
    try:
        yield
    finally:
        _BLOCK_BYTES.reset(token)


def _blocks(batch: int, rows: int, row_bytes: int) -> Iterator[tuple[slice, slice]]:
    """(batch slice, row slice) pairs covering [0, batch) x [0, rows), each block at most the block size.

    Whole batch items are grouped while they fit; an item too large is split by rows (at
    least one row per block). Each block is contiguous in a [N, rows, ...] array.
    """
    limit = _BLOCK_BYTES.get()
    item_bytes = rows * row_bytes
    if item_bytes <= limit:
        step = max(1, limit // max(item_bytes, 1))
        for n in range(0, batch, step):
            yield slice(n, min(batch, n + step)), slice(0, rows)
        return
    step = max(1, limit // max(row_bytes, 1))
    for n in range(batch):
        for r in range(0, rows, step):
            yield slice(n, n + 1), slice(r, min(rows, r + step))


def _block_buffer(batch: int, rows: int, row_bytes: int, acc: np.dtype) -> np.ndarray:
    """One flat buffer that holds the largest block ``_blocks`` yields."""
    largest = max((b.stop - b.start) * (r.stop - r.start) for b, r in _blocks(batch, rows, row_bytes))
    return np.empty(largest * row_bytes // acc.itemsize, acc)


def _tap_slices(taps: tuple[int, ...], wins: tuple[Window, ...], rows: slice | None = None) -> tuple[slice, ...]:
    """The strided slice of the padded input that tap ``taps`` reads for every output pixel.

    ``rows`` restricts the first spatial axis to those output indices (all of them by default).
    """
    slices = []
    for axis, (t, w) in enumerate(zip(taps, wins)):
        first, count = (rows.start, rows.stop - rows.start) if axis == 0 and rows is not None else (0, w.out)
        start = t * w.dilation + first * w.stride
        slices.append(slice(start, start + (count - 1) * w.stride + 1, w.stride))
    return tuple(slices)


def _pad(x_nsc: np.ndarray, wins: tuple[Window, ...], dtype: np.dtype) -> np.ndarray:
    """x: [N, *spatial, C] -> [N, *padded, C] in ``dtype``, zeros in the padding."""
    x_pad = np.zeros((x_nsc.shape[0], *(w.size + w.pad_before + w.pad_after for w in wins), x_nsc.shape[-1]), dtype)
    x_pad[(slice(None), *(slice(w.pad_before, w.pad_before + w.size) for w in wins))] = x_nsc  # cast and copy in one pass
    return x_pad


def _is_pointwise(wins: tuple[Window, ...]) -> bool:
    """1x1, unit stride, unpadded: the im2col matrix is the input itself (no copy, so no need for blocks)."""
    return all(w.kernel == 1 and w.stride == 1 and w.pad_before == w.pad_after == 0 for w in wins)


def _window_view(x_pad: np.ndarray, kernel: tuple[int, ...], wins: tuple[Window, ...], out: tuple[int, ...]) -> np.ndarray:
    """Every window of x_pad ([N, *padded, C]) as a read-only strided view [N, *out, *kernel, C], no copy.

    Element (n, o, t, c) is x_pad[n, o * s + t * d, c]; ``out`` may be fewer output pixels than the
    windows allow (a block of output rows, starting at x_pad's first row).
    """
    step = x_pad.strides
    out_steps = tuple(step[1 + a] * w.stride for a, w in enumerate(wins))
    tap_steps = tuple(step[1 + a] * w.dilation for a, w in enumerate(wins))
    return np.lib.stride_tricks.as_strided(x_pad, (x_pad.shape[0], *out, *kernel, x_pad.shape[-1]),
                                           (step[0], *out_steps, *tap_steps, step[-1]), writeable=False)


def _im2col(x_pad: np.ndarray, kernel: tuple[int, ...], wins: tuple[Window, ...], batch: slice, rows: slice,
            buffer: np.ndarray | None) -> np.ndarray:
    """The im2col block of x_pad ([N, *padded, C], the input's dtype) for those batch items and output rows.

    Returns [(n, *out), (*kernel, C)]: row (n, o), column (taps, c) holds
    x_pad[n, o * s + taps * d, c], converted to ``buffer``'s dtype (the accumulator) as it is
    copied into the start of ``buffer``: the padded input stays in the narrower input dtype, and
    one buffer reused for every block of a call avoids a fresh allocation's page faults.
    A pointwise convolution's block is the input itself (not converted).
    """
    out = (rows.stop - rows.start, *(w.out for w in wins[1:]))
    shape = ((batch.stop - batch.start) * int(np.prod(out)), int(np.prod(kernel, dtype=np.int64)) * x_pad.shape[-1])
    if _is_pointwise(wins):
        return x_pad[batch, rows].reshape(shape)
    x_block = x_pad[batch, rows.start * wins[0].stride:]
    view = _window_view(x_block, kernel, wins, out)
    if wins[-1].dilation == 1:
        # Along the last axis a window's taps and channels are one contiguous run of kw * C values, at any stride
        # (the stride moves the window, not its taps): one axis, so the copy runs over kw times longer stretches
        # (the ResNet stem, 7x7 stride 2 over 3 channels: runs of 21 values instead of 3).
        view = np.lib.stride_tricks.as_strided(view, (*view.shape[:-2], kernel[-1] * x_pad.shape[-1]),
                                               view.strides[:-2] + view.strides[-1:], writeable=False)
    col = buffer[:shape[0] * shape[1]].reshape(view.shape)  # type: ignore[index]  # None only when pointwise (returned above)
    np.copyto(col, view, casting="unsafe")  # the accumulator is wider, except under harness.check.mutants' float16
    return col.reshape(shape)


def _grouped(groups: int, depthwise: Callable[[], np.ndarray] | None, each: Callable[[int], np.ndarray]) -> np.ndarray:
    """A grouped core's result: ``each(g)`` for every group, concatenated along the channels (the last axis), or
    ``depthwise()`` when given (one channel per group: the depthwise einsum computes every group at once)."""
    if groups == 1:
        return each(0)
    if depthwise is not None:
        return depthwise()
    return np.concatenate([each(g) for g in range(groups)], axis=-1)


def _correlate(x_nsc: np.ndarray, w_sio: np.ndarray, wins: tuple[Window, ...], groups: int = 1) -> np.ndarray:
    """Grouped channels-last correlation. x: [N, *spatial, G * I], w: [*kernel, I, O] -> [N, *out, O] in the
    accumulator dtype; output channels ``[g * O / G, (g + 1) * O / G)`` read input channels ``[g * I, (g + 1) * I)``.
    One input channel per group is a depthwise correlation (multiplier O / G, channel-major as TensorFlow's)."""
    per_in, per_out = w_sio.shape[-2], w_sio.shape[-1] // groups
    kernel = w_sio.shape[:-2]
    return _grouped(
        groups,
        (lambda: _depthwise(x_nsc, w_sio.reshape(*kernel, groups, per_out), wins)) if per_in == 1 else None,
        lambda g: _correlate_group(x_nsc[..., g * per_in:(g + 1) * per_in],
                                   w_sio[..., g * per_out:(g + 1) * per_out], wins),
    )


def _exact_gemm(x: np.ndarray, w: np.ndarray, terms: int, shortest: int | None = None) -> tuple[np.dtype, int]:
    """(dtype, run): the dtype in which sums of ``terms`` products of integer arrays ``x`` and ``w`` are exact when
    summed ``run`` terms at a time (float32, float64, or int64 for values too large), ``run`` at least ``shortest``
    (default: ``_MIN_RUN``, or all the terms when fewer).

    A float sum of integers is exact while every partial sum stays below 2**p (p significand bits): no addition
    rounds, in whatever order BLAS adds. float32 GEMMs run twice float64's lanes per instruction and move half the
    bytes, and NumPy has no BLAS for int64, so small integers (the integer reference's int8 operands) take float32
    in runs of K short enough, and the runs are summed in the int64 accumulator."""
    def largest(a: np.ndarray) -> int:
        return max(-int(a.min()), int(a.max())) if a.size else 0
    product = max(1, largest(x) * largest(w))
    for dtype, bits in ((np.float32, 24), (np.float64, 53)):
        run = 2**bits // product
        if run >= min(terms, _MIN_RUN if shortest is None else shortest):
            return np.dtype(dtype), max(1, min(run, terms))
    return np.dtype(np.int64), max(1, terms)


# Shorter float32 runs of K cost more in partial-sum additions than float64's wider sums (a 3x3x512 layer's
# 4,608 terms in runs of 1,000 of int8 products; float64 takes over when a run would hold fewer than this).
_MIN_RUN = 256


def _matmul_runs(col: np.ndarray, w_ko: np.ndarray, out_mo: np.ndarray, run: int, accumulate: bool = False) -> None:
    """out_mo = col @ w_ko (``accumulate``: out_mo += col @ w_ko), the K axis summed ``run`` terms at a time, each
    run's product in col's dtype added into out_mo's (exact: ``_exact_gemm``)."""
    terms = w_ko.shape[0]
    if out_mo.dtype == col.dtype and run >= terms:
        if accumulate:
            out_mo += col @ w_ko
        else:
            np.matmul(col, w_ko, out=out_mo)
        return
    if not accumulate:
        out_mo[...] = 0
    for k in range(0, terms, run):
        np.add(out_mo, col[:, k:k + run] @ w_ko[k:k + run], out=out_mo, casting="unsafe")


def _correlate_group(x_nsc: np.ndarray, w_sio: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """Channels-last correlation. x: [N, *spatial, I], w: [*kernel, I, O] -> [N, *out, O] in the accumulator dtype."""
    acc = accumulator(x_nsc.dtype)
    kernel, channels_out = w_sio.shape[:-2], w_sio.shape[-1]
    out = np.zeros((x_nsc.shape[0], *(w.out for w in wins), channels_out), acc)
    if out.size == 0:
        return out
    w_ko = w_sio.reshape(-1, channels_out)  # [(*kernel, I), O]
    gemm, run = _exact_gemm(x_nsc, w_ko, w_ko.shape[0]) if acc.kind == "i" else (acc, w_ko.shape[0])
    # integers are converted once, as they are padded: the im2col copies then move floats of one dtype (a
    # converting copy of int32 into float32 is several times slower)
    pad_dtype = gemm if acc.kind == "i" else x_nsc.dtype
    x_pad = x_nsc.astype(pad_dtype, copy=False) if _is_pointwise(wins) else _pad(x_nsc, wins, pad_dtype)
    out_mo = out.reshape(-1, channels_out)
    everything = (slice(0, out.shape[0]), slice(0, out.shape[1]))
    if channels_out > out_mo.shape[0]:
        # A deep layer with few output pixels: the filter is the larger matrix (3x3x512x512 is 19 MB in float64,
        # its im2col for a 7x7 output 1.8 MB). One im2col matrix, and the filter converted and applied a 2 MiB
        # block of its (tap, input channel) rows at a time, the partial products summed in float64: no float64
        # copy of a large filter, and wide products (faster than blocks of output rows: docs/speed.md).
        col = _im2col(x_pad, kernel, wins, *everything, np.empty(out_mo.shape[0] * w_ko.shape[0], gemm))
        col = col.astype(gemm, copy=False)
        step = min(run, max(1, _BLOCK_BYTES.get() // (channels_out * gemm.itemsize)))
        for k in range(0, w_ko.shape[0], step):
            _matmul_runs(col[:, k:k + step], w_ko[k:k + step].astype(gemm), out_mo, step, accumulate=True)
        return out
    w_ko = w_ko.astype(gemm)
    row_bytes = w_ko.shape[0] * int(np.prod(out.shape[2:-1])) * gemm.itemsize
    if _is_pointwise(wins):
        buffer, blocks = None, [everything]
    else:
        buffer = _block_buffer(out.shape[0], out.shape[1], row_bytes, gemm)
        blocks = _blocks(out.shape[0], out.shape[1], row_bytes)  # type: ignore[assignment]  # a list or an iterator: iterated once
    for batch, rows in blocks:
        col = _im2col(x_pad, kernel, wins, batch, rows, buffer).astype(gemm, copy=False)
        _matmul_runs(col, w_ko, out[batch, rows].reshape(-1, channels_out), run)
    return out


def _einsum_axes(rank: int) -> tuple[str, str]:
    """The depthwise einsums' letters for ``rank`` spatial axes: output pixels, kernel taps.

    (n, c and m are the batch, the channel and the multiplier.)
    """
    return "hwxy"[:rank], "ijkl"[:rank]


def _depthwise(x_nsc: np.ndarray, w_sim: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """Channels-last depthwise correlation. x: [N, *spatial, C], w: [*kernel, C, M] -> [N, *out, C*M].

    Output channel ``c * M + m`` is input channel c correlated with w[..., c, m]
    (channel-major), as TensorFlow orders it. One ``einsum`` over a strided view of the
    padded input with every tap as an axis; when the last spatial axis has stride 1 its
    output pixels and channels are one contiguous axis of the view (the filter repeated
    along it), which keeps einsum's inner loop long.
    """
    acc = accumulator(x_nsc.dtype)
    kernel, (channels, multiplier) = w_sim.shape[:-2], w_sim.shape[-2:]
    out_sizes = tuple(w.out for w in wins)
    if not (x_nsc.shape[0] and all(out_sizes) and channels and multiplier):
        return np.zeros((x_nsc.shape[0], *out_sizes, channels * multiplier), acc)
    # integers: in the float dtype their sums are exact in (``_exact_gemm``; one run: a window's taps are few)
    taps = int(np.prod(kernel))
    gemm = _exact_gemm(x_nsc, w_sim, taps, shortest=taps)[0] if acc.kind == "i" else acc
    x_pad = _pad(x_nsc, wins, gemm)
    w_acc = w_sim.astype(gemm)
    k = len(wins)
    out_axes, tap_axes = _einsum_axes(k)
    view = _window_view(x_pad, kernel, wins, out_sizes)  # [n, *out, *taps, c]
    view_axes = "n" + out_axes + tap_axes + "c"
    if wins[-1].stride == 1:
        # Axis "c" runs over (last output pixel, channel): x_pad[n, ..., o + t * d, c] is at (o * C + c) items
        # from x_pad[n, ..., t * d, 0].
        merged = (*view.shape[:k], *kernel, out_sizes[-1] * channels)
        view = np.lib.stride_tricks.as_strided(view, merged, view.strides[:k] + view.strides[k + 1:], writeable=False)
        w_acc = np.tile(w_acc, (1,) * k + (out_sizes[-1], 1))
        view_axes = "n" + out_axes[:-1] + tap_axes + "c"
    out = np.einsum(f"{view_axes},{tap_axes}cm->{view_axes.replace(tap_axes, '')}m", view, w_acc)
    return out.reshape(x_nsc.shape[0], *out_sizes, channels * multiplier).astype(acc, copy=False)


def _correlate_transpose(y_nsc: np.ndarray, w_soi: np.ndarray, wins: tuple[Window, ...], groups: int = 1) -> np.ndarray:
    """The adjoint of the grouped ``_correlate``. y: [N, *in, I], w: [*kernel, O, I] -> [N, *out, G * O]: input channels
    ``[g * I / G, (g + 1) * I / G)`` scatter into output channels ``[g * O, (g + 1) * O)``."""
    per_out, per_in = w_soi.shape[-2], w_soi.shape[-1] // groups
    kernel = w_soi.shape[:-2]
    return _grouped(
        groups,
        (lambda: _depthwise_transpose(y_nsc, w_soi.reshape(*kernel, groups, per_in), wins)) if per_out == 1 else None,
        lambda g: _correlate_transpose_group(y_nsc[..., g * per_in:(g + 1) * per_in],
                                             w_soi[..., g * per_in:(g + 1) * per_in], wins),
    )


def _correlate_transpose_group(y_nsc: np.ndarray, w_soi: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """The adjoint of ``_correlate_group``: scatter each input pixel through the kernel.

    y: [N, *in, I] (the forward convolution's output), w: [*kernel, O, I]
    (TensorFlow's transpose filter) -> [N, *out, O] where ``out`` are the window
    sizes (the forward convolution's input sizes). One matrix product gives every
    input pixel's contribution through every (tap, output channel); each tap's
    share is then added at its strided place (col2im).
    """
    acc = accumulator(y_nsc.dtype)
    kernel, (channels_out, channels_in) = w_soi.shape[:-2], w_soi.shape[-2:]
    padded = [w.size + w.pad_before + w.pad_after for w in wins]
    # The taps tile the output when each kernel is its stride long, undilated, and the padded output is exactly the
    # input's pixels times the stride (a 2x2 stride-2 up-convolution): every output pixel is one tap's share, so the
    # product is rearranged into place (no zeros first) instead of added tap by tap.
    tiled = all(w.kernel == w.stride and w.dilation == 1 and w.pad_before == 0 and p == w.out * w.stride
                for w, p in zip(wins, padded)) and y_nsc.size and w_soi.size
    out_pad = (np.empty if tiled else np.zeros)((y_nsc.shape[0], *padded, channels_out), acc)
    d = len(wins)
    interleaved = [0, *(a for axis in range(1, d + 1) for a in (axis, d + axis)), 2 * d + 1]
    if y_nsc.size and w_soi.size:
        w_iko = w_soi.reshape(-1, channels_in).T.astype(acc)  # [I, (*kernel, O)]
        row_bytes = w_iko.shape[1] * int(np.prod(y_nsc.shape[2:-1])) * acc.itemsize
        for batch, rows in _blocks(y_nsc.shape[0], y_nsc.shape[1], row_bytes):
            y_block = y_nsc[batch, rows].astype(acc)
            z = (y_block.reshape(-1, channels_in) @ w_iko).reshape(*y_block.shape[:-1], *kernel, channels_out)
            if tiled:  # z [n, *in, *kernel, O] -> [n, in_0 * k_0, ..., O]: each input pixel's block of outputs
                step = wins[0].stride
                out_pad[batch, rows.start * step:rows.stop * step] = z.transpose(interleaved).reshape(
                    z.shape[0], *(n * k for n, k in zip(z.shape[1:d + 1], kernel)), channels_out)
                continue
            for taps in np.ndindex(*kernel):
                out_pad[(batch, *_tap_slices(taps, wins, rows))] += z[(Ellipsis, *taps, slice(None))]
    crop = tuple(slice(w.pad_before, w.pad_before + w.size) for w in wins)
    return out_pad[(slice(None), *crop)]


# --- public ops ---------------------------------------------------------------------------

def _batch_axes(input: ArrayLike, rank: int, compute: Any) -> np.ndarray:
    """``compute(input)`` for an input of rank ``rank``; for a higher rank, as tf.nn.conv1d / conv2d document it:
    every axis before the last ``rank - 1`` is a batch axis. They are folded into one batch and unfolded after."""
    try:
        rank_given = np.ndim(input)
    except ValueError:  # ragged: the op's own checks say so, naming the argument
        rank_given = rank
    if rank_given <= rank:
        return compute(input)
    x = np.asarray(input)
    lead = x.shape[: x.ndim - rank + 1]
    y = compute(x.reshape((-1, *x.shape[x.ndim - rank + 1:])))
    return y.reshape((*lead, *y.shape[1:]))


def _forward(op: str, forms: ArgForms, formats: tuple[str, ...], filter_layout: str, data_arg: str, input: ArrayLike,
             filters: ArrayLike, strides: Any, padding: Any, data_format: str | None, dilations: Any) -> np.ndarray:
    """A (grouped) correlation of any rank with tf.nn's checks: the one body of conv1d, conv2d, conv3d, convolution
    and atrous_conv2d. ``formats``: the data_formats the op takes (default first); ``filter_layout``: ``[*kernel, I,
    O]``; ``forms``: its argument forms."""
    fmt = _data_format(op, data_format, formats, formats[0])
    x, x_last, w, groups = _data_and_filter(op, data_arg, input, fmt, "filters", filters, filter_layout, True)
    strides, dilations, pad = forms.window_args(op, fmt, strides, dilations, padding)
    wins = windows(op, x_last.shape[1:-1], w.shape[:-2], strides, dilations, pad)
    y_last = _cast(_correlate(x_last, w, wins, groups), x.dtype)
    return layouts.convert(y_last, layouts.channels_last(fmt), fmt)


@_ieee
def conv2d(input: ArrayLike, filters: ArrayLike, strides: Any, padding: Any, data_format: str | None = "NHWC",
           dilations: Any = None) -> np.ndarray:
    """``tf.nn.conv2d``: 2-D cross-correlation, grouped when the input has a multiple of the filter's in_channels.

    input: [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW), or with more leading batch axes ([..., H, W, C]); filters:
    HWIO [kh, kw, C / groups, O]. strides, dilations: int or list of length 1, 2 or 4. padding: "SAME", "VALID" or
    4 [before, after] pairs in data_format order. Returns [N, H', W', O] (or NCHW; the same leading axes).
    """
    return _batch_axes(input, 4, lambda x: _forward("conv2d", CONV2D_FORMS, RANKS[2], "HWIO", "input", x, filters,
                                                    strides, padding, data_format, dilations))


@_ieee
def conv1d(input: ArrayLike, filters: ArrayLike, stride: Any, padding: Any, data_format: str | None = "NWC",
           dilations: Any = None) -> np.ndarray:
    """``tf.nn.conv1d``: 1-D cross-correlation (grouped as conv2d).

    input: [N, W, C] (NWC) or [N, C, W] (NCW), or with more leading batch axes; filters: [kw, C / groups, O].
    stride, dilations: int or list of length 1 or 3. padding: "SAME" or "VALID"
    (tf.nn.conv1d takes no explicit padding). Returns [N, W', O] (or NCW; the same leading axes).
    """
    return _batch_axes(input, 3, lambda x: _forward("conv1d", CONV1D_FORMS, RANKS[1], "WIO", "input", x, filters,
                                                    stride, padding, data_format, dilations))


@_ieee
def conv3d(input: ArrayLike, filters: ArrayLike, strides: Any, padding: Any, data_format: str | None = "NDHWC",
           dilations: Any = None) -> np.ndarray:
    """``tf.nn.conv3d``: 3-D cross-correlation (grouped as conv2d: the semantics of the Conv3D op's shape function).

    input: [N, D, H, W, C] (NDHWC) or [N, C, D, H, W] (NCDHW); filters: DHWIO [kd, kh, kw, C / groups, O].
    strides: a list of 5 in data_format order (batch and channel entries 1); dilations: a list of 5 (default all 1);
    padding: "SAME" or "VALID". Returns [N, D', H', W', O] (or NCDHW).
    """
    return _forward("conv3d", CONV3D_FORMS, RANKS[3], "DHWIO", "input", input, filters, strides, padding, data_format,
                    dilations)


# tf.raw_ops.Conv's data_format values: the channels-last and channels-first layouts of each rank (RANKS).
CONV_FORMATS = ("CHANNELS_LAST", "CHANNELS_FIRST")
RAW_CONV_FORMS = {n: ArgForms("strides", (n + 2,), "dilations", (0, n + 2), allow_int=False, explicit_padding=n == 2)
                  for n in (2, 3)}  # dilations: [] (the default, all 1) or one per axis


def _int_attr(op: str, arg: str, value: Any, low: int, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{op}: argument '{arg}'={value!r} must be {what}")
    return int(value)


@_ieee
def conv(input: ArrayLike, filter: ArrayLike, strides: Any, padding: Any, explicit_paddings: Any = (),
         data_format: str = "CHANNELS_LAST", dilations: Any = (), batch_dims: Any = 1, groups: Any = 1) -> np.ndarray:
    """``tf.raw_ops.Conv``: the generic correlation over 2 or 3 spatial axes in ``groups`` groups, as its op
    definition and shape function define it (TensorFlow's CPU kernel computes only part of it).

    input: [*batch, *spatial, C] (CHANNELS_LAST) or [*batch, C, *spatial] (CHANNELS_FIRST) with ``batch_dims``
    leading batch axes (0: one example without a batch axis); filter: [*kernel, C / groups, O] whatever the
    data_format. strides: 2 + N values in the layout's order (batch and channel entries 1); dilations: [] (all 1) or
    2 + N values; padding "SAME", "VALID" or (2-D only) "EXPLICIT" with explicit_paddings 2 * (2 + N) ints. Returns
    [*batch, *spatial', O] (or channels-first) in the input's dtype.
    """
    op = "conv"
    if data_format not in CONV_FORMATS:
        raise ValueError(f"{op}: argument 'data_format'={data_format!r} must be one of {', '.join(CONV_FORMATS)}")
    batch_dims = _int_attr(op, "batch_dims", batch_dims, 0, "a non-negative int")
    groups = _int_attr(op, "groups", groups, 1, "a positive int")
    try:
        rank = np.ndim(input)
    except ValueError:  # ragged
        raise ValueError(f"{op}: argument 'input' is not an array") from None
    n = rank - batch_dims - 1  # spatial axes
    if n not in (2, 3):
        raise ValueError(f"{op}: argument 'input' has rank {rank}: with batch_dims={batch_dims} that is {n} spatial "
                         f"axes, and Conv takes 2 or 3")
    fmt = RANKS[n][CONV_FORMATS.index(data_format)]
    x_given = np.asarray(input)
    lead = x_given.shape[:batch_dims]
    x_one = x_given.reshape((int(np.prod(lead)), *x_given.shape[batch_dims:]))  # one batch axis
    x, x_last, w, found = _data_and_filter(op, "input", x_one, fmt, "filter", filter, filter_layout(n), True)
    if found != groups:
        raise ValueError(f"{op}: argument 'groups'={groups} but the input's {x_last.shape[-1]} channels over the "
                         f"filter's in_channels={w.shape[-2]} make {found} groups")
    if isinstance(dilations, (list, tuple)) and len(dilations) == 0:
        dilations = None  # the op's default: all 1
    if n == 3 and padding == "EXPLICIT":
        raise ValueError(f"{op}: argument 'padding'='EXPLICIT': a 3-D Conv takes no explicit padding "
                         f"(padding 'SAME' or 'VALID')")
    strides, dilations, pad = _raw_window_args(op, fmt, strides, dilations, padding, explicit_paddings)
    wins = windows(op, x_last.shape[1:-1], w.shape[:-2], strides, dilations, pad)
    y_last = _cast(_correlate(x_last, w, wins, groups), x.dtype)
    y = layouts.convert(y_last, layouts.channels_last(fmt), fmt)
    return y.reshape((*lead, *y.shape[1:]))


# --- tf.raw_ops.FusedResizeAndPadConv2D and FusedPadConv2D ---------------------------------------------------
# conv2d (NHWC, no dilation) of the input resized bilinearly (legacy: half_pixel_centers=False), then mirror-padded.

MIRROR_MODES = ("REFLECT", "SYMMETRIC")  # REFLECT repeats no edge pixel (pads < size); SYMMETRIC repeats it (<= size)
FUSED_FORMS = ArgForms("strides", (4,), "dilations", (4,), allow_int=False, explicit_padding=False)  # no dilations


@dataclasses.dataclass(frozen=True)
class _Resampling:
    """Where each output row (or column) of a legacy bilinear resize reads: rows ``low`` and ``high`` of the input,
    weighted ``1 - lerp`` and ``lerp``."""

    low: np.ndarray
    high: np.ndarray
    lerp: np.ndarray  # float64 values of the float32 fractions


def _legacy_resampling(in_size: int, out_size: int, align_corners: bool) -> _Resampling:
    """The legacy (half_pixel_centers=False) bilinear sample positions along one axis, as TensorFlow's ResizeBilinear
    defines them: scale = (in - 1) / (out - 1) with align_corners (and out > 1), else in / out, a float32 quotient;
    output index ``i`` reads position ``float32(i) * scale``, a float32 product (the positions are the op's, even
    for float64 data). ``low`` = floor, ``high`` = min(ceil, in - 1)."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    position = np.arange(out_size, dtype=np.float32) * scale
    low = np.floor(position)
    high = np.minimum(np.ceil(position), in_size - 1)
    return _Resampling(low.astype(np.int64), high.astype(np.int64), (position - low).astype(np.float64))


def _resize_bilinear_legacy(x_nhwc: np.ndarray, rows: _Resampling, cols: _Resampling) -> np.ndarray:
    """[N, H, W, C] -> [N, len(rows), len(cols), C]: the interpolation as the op writes it, ``a + (b - a) * lerp``
    along the columns and then the rows (in the accumulator dtype)."""
    top, bottom = x_nhwc[:, rows.low], x_nhwc[:, rows.high]
    xl = cols.lerp[:, None]

    def along_cols(a: np.ndarray) -> np.ndarray:
        left, right = a[:, :, cols.low], a[:, :, cols.high]
        return left + (right - left) * xl

    t, b = along_cols(top), along_cols(bottom)
    return t + (b - t) * rows.lerp[:, None, None]


def _resize_rounding(x_nhwc: np.ndarray, rows: _Resampling, cols: _Resampling) -> np.ndarray:
    """The rounding error of ``_resize_bilinear_legacy`` done in the data's dtype, in units of its unit roundoff u,
    for non-negative ``x`` (the operands' magnitudes): each lerp ``a + (b - a) * l`` with a nonzero ``l`` (the
    fraction rounded to the dtype, the difference, the product and the sum: 4 roundings) errs by at most
    4 u (|a| + |b|), and the row lerp carries the column lerps' errors: at most 4 u (x_lerps + y_lerp) times the
    sum of the four corners' magnitudes. A lerp of 0 is exact."""
    corners = x_nhwc[:, rows.low] + x_nhwc[:, rows.high]
    corners = corners[:, :, cols.low] + corners[:, :, cols.high]
    lerps = (rows.lerp != 0)[:, None, None].astype(np.float64) + (cols.lerp != 0)[:, None]
    return 4.0 * lerps * corners


def _mirror_paddings(op: str, paddings: Any) -> list[list[int]]:
    """A fused op's paddings: 4 non-negative [before, after] pairs of ints in NHWC order, zero on N and C (how far
    each may reach depends on the mode and the size it pads: ``_fused_conv`` checks that)."""
    try:
        pads = np.asarray(paddings)
    except Exception:
        pads = None
    if pads is None or pads.shape != (4, 2) or pads.dtype.kind not in "iu":
        raise ValueError(f"{op}: argument 'paddings'={_as_list(paddings)} must be 4 [before, after] pairs of ints, "
                         f"one per axis of NHWC")
    pairs = pads.tolist()
    for axis, (before, after) in enumerate(pairs):
        if before < 0 or after < 0:
            raise ValueError(f"{op}: argument 'paddings'={pairs} has a negative pad on axis {axis}")
        if "NHWC"[axis] in "NC" and (before or after):
            raise ValueError(f"{op}: argument 'paddings'={pairs} pads axis {'NHWC'[axis]}: only the spatial "
                             f"axes H and W may be padded")
    return pairs


def _fused_conv(op: str, input: ArrayLike, size: Any, paddings: Any, filter: ArrayLike, mode: Any, strides: Any,
                padding: Any, resize_align_corners: Any, *, dtypes: tuple[str, ...], rounding: bool = False
                ) -> np.ndarray:
    """conv2d(mirror_pad(resize(input, size), paddings, mode), filter, strides, padding), NHWC and HWIO, in float64;
    ``size`` None: no resize. ``rounding`` (with a size): instead, the resize's rounding carried through the
    convolution (the magnitudes of the operands given; ``_resize_rounding``)."""
    x = _array(op, "input", input, 4)
    if x.dtype.name not in dtypes:
        raise ValueError(f"{op}: argument 'input' has dtype {x.dtype}; supported: {', '.join(dtypes)}")
    w = _array(op, "filter", filter, 4, like=x)
    _match(op, "filter", "in_channels (axis 2)", w.shape[2], x.shape[3],
           f"filter {list(w.shape)} HWIO, input {list(x.shape)} NHWC")
    if mode not in MIRROR_MODES:
        raise ValueError(f"{op}: argument 'mode'={mode!r} must be one of {', '.join(MIRROR_MODES)}")
    strides, _, pad = FUSED_FORMS.window_args(op, "NHWC", strides, None, padding)
    pads = _mirror_paddings(op, paddings)
    acc = np.dtype(np.float64)
    x_acc = x.astype(acc)
    if size is not None:
        if not isinstance(resize_align_corners, (bool, np.bool_)):
            raise ValueError(f"{op}: argument 'resize_align_corners'={resize_align_corners!r} must be a bool")
        new_h, new_w = _sizes(op, "size", size, (2,))
        if new_h == 0 or new_w == 0:
            raise ValueError(f"{op}: argument 'size'={[new_h, new_w]} must be positive")
        if 0 in x.shape[1:3]:
            raise ValueError(f"{op}: argument 'input' of shape {list(x.shape)} has no pixel to resize from")
        resized = (x.shape[0], new_h, new_w, x.shape[3])
    else:
        resized = x.shape
    for axis in (1, 2):  # REFLECT repeats no edge pixel, SYMMETRIC repeats it
        reach, room = max(pads[axis]), resized[axis] - (mode == "REFLECT")
        if reach > room:
            raise ValueError(f"{op}: argument 'paddings'={pads} pads axis {'NHWC'[axis]} by {reach}: {mode} pads must "
                             f"be {'less than' if mode == 'REFLECT' else 'at most'} its size {resized[axis]}")
    wins = windows(op, [resized[a] + sum(pads[a]) for a in (1, 2)], w.shape[:2], strides, (1, 1), pad)
    if size is not None:
        rows = _legacy_resampling(x.shape[1], resized[1], bool(resize_align_corners))
        cols = _legacy_resampling(x.shape[2], resized[2], bool(resize_align_corners))
        x_acc = (_resize_rounding if rounding else _resize_bilinear_legacy)(x_acc, rows, cols)
    x_pad = np.pad(x_acc, pads, mode="reflect" if mode == "REFLECT" else "symmetric")
    y = _correlate(x_pad, w, wins)
    return y if rounding else _cast(y, x.dtype)


@_ieee
def fused_resize_and_pad_conv2d(input: ArrayLike, size: Any, paddings: Any, filter: ArrayLike, mode: Any,
                                strides: Any, padding: Any, resize_align_corners: Any = False) -> np.ndarray:
    """``tf.raw_ops.FusedResizeAndPadConv2D``: conv2d of the input resized to ``size`` (bilinear, the legacy
    half_pixel_centers=False convention, corners aligned when ``resize_align_corners``) and mirror-padded.

    input: [N, H, W, C] NHWC (float16, float32 or float64); size: [new_H, new_W], positive; paddings: 4 [before,
    after] pairs in NHWC order, zero on N and C, each less than the resized size (REFLECT) or at most it (SYMMETRIC);
    filter: HWIO [kh, kw, C, O]; strides: 4 values (batch and channel 1); padding "SAME" or "VALID" (no dilations).
    Returns [N, H', W', O] in the input's dtype.
    """
    return _fused_conv("fused_resize_and_pad_conv2d", input, size, paddings, filter, mode, strides, padding,
                       resize_align_corners, dtypes=("float16", "float32", "float64"))


def fused_resize_and_pad_conv2d_rounding(input: ArrayLike, size: Any, paddings: Any, filter: ArrayLike, mode: Any,
                                         strides: Any, padding: Any, resize_align_corners: Any = False) -> np.ndarray:
    """The rounding of ``fused_resize_and_pad_conv2d``'s resize in the data's dtype, carried through the
    convolution: sum over taps of |filter| times ``_resize_rounding``, in units of u, for the operands' magnitudes
    (``harness.conv.tolerance.bound_for``'s ``rounding``)."""
    return _fused_conv("fused_resize_and_pad_conv2d", input, size, paddings, filter, mode, strides, padding,
                       resize_align_corners, dtypes=("float64",), rounding=True)


@_ieee
def fused_pad_conv2d(input: ArrayLike, paddings: Any, filter: ArrayLike, mode: Any, strides: Any,
                     padding: Any) -> np.ndarray:
    """``tf.raw_ops.FusedPadConv2D``: conv2d of the mirror-padded input (``fused_resize_and_pad_conv2d`` without the
    resize; bfloat16 too). Returns [N, H', W', O] in the input's dtype.
    """
    return _fused_conv("fused_pad_conv2d", input, None, paddings, filter, mode, strides, padding, False,
                       dtypes=("bfloat16", "float16", "float32", "float64"))


def _convolution_rank(op: str, arg: str, value: Any) -> int:
    """The number of spatial axes of tf.nn.convolution / conv_transpose from ``value``'s rank (filters: rank - 2)."""
    try:
        rank = np.ndim(value)
    except ValueError:  # ragged
        raise ValueError(f"{op}: argument '{arg}' is not an array") from None
    if not 3 <= rank <= 5:
        raise ValueError(f"{op}: argument '{arg}' must have rank 3, 4 or 5 (1 to 3 spatial axes), got rank {rank} "
                         f"with shape {list(np.shape(value))}")
    return rank - 2


@_ieee
def convolution(input: ArrayLike, filters: ArrayLike, strides: Any = None, padding: Any = "VALID",
                data_format: str | None = None, dilations: Any = None) -> np.ndarray:
    """``tf.nn.convolution``: the N-D correlation, N = 1, 2 or 3 spatial axes, read from the filters' rank.

    input: [N, *spatial, C] (channels-last, the default) or [N, C, *spatial] (data_format NCW, NCHW or NCDHW), or
    with more leading batch axes; filters: [*kernel, C / groups, O]. strides, dilations: None (1), an int, or a list
    of 1, N or N + 2; a stride > 1 and a dilation > 1 are not accepted together. padding: "SAME" or "VALID".
    """
    op = "convolution"
    n = _convolution_rank(op, "filters", filters)
    return _batch_axes(input, n + 2, lambda x: _forward(op, CONVOLUTION_FORMS[n], RANKS[n], filter_layout(n), "input",
                                                        x, filters, strides, padding, data_format, dilations))


@_ieee
def atrous_conv2d(value: ArrayLike, filters: ArrayLike, rate: Any, padding: Any) -> np.ndarray:
    """``tf.nn.atrous_conv2d``: conv2d with dilation ``rate`` and stride 1, NHWC only.

    value: [N, H, W, C]; filters: HWIO; rate: positive int (or one per spatial axis);
    padding: "SAME", "VALID" or 4 [before, after] pairs.
    """
    return _forward("atrous_conv2d", ATROUS_FORMS, ("NHWC",), "HWIO", "value", value, filters, None, padding, "NHWC",
                    rate)


def _depthwise_args(op: str, filter_arg: str, input: ArrayLike, filter: ArrayLike, strides: Any, padding: Any,
                    data_format: str | None, dilations: Any
                    ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, tuple[Window, ...]]:
    fmt = _data_format(op, data_format, ("NHWC", "NCHW"), "NHWC")
    x, x_nhwc, w_hwim, _ = _data_and_filter(op, "input", input, fmt, filter_arg, filter, "HWIM")
    strides, dilations, pad = DEPTHWISE_FORMS.window_args(op, fmt, strides, dilations, padding)
    wins = windows(op, x_nhwc.shape[1:3], w_hwim.shape[:2], strides, dilations, pad)
    return fmt, x, x_nhwc, w_hwim, wins


@_ieee
def depthwise_conv2d(input: ArrayLike, filter: ArrayLike, strides: Any, padding: Any, data_format: str | None = None,
                     dilations: Any = None) -> np.ndarray:
    """``tf.nn.depthwise_conv2d``: each input channel correlated with its own filters.

    input: NHWC or NCHW; filter: [kh, kw, C, M] (HWIM, M = channel multiplier);
    strides: list of 4; dilations: list of 2. Output channel ``c * M + m``
    (channel-major): [N, H', W', C*M] (or NCHW).
    """
    op = "depthwise_conv2d"
    fmt, x, x_nhwc, w_hwim, wins = _depthwise_args(op, "filter", input, filter, strides, padding, data_format, dilations)
    y_nhwc = _cast(_depthwise(x_nhwc, w_hwim, wins), x.dtype)
    return layouts.convert(y_nhwc, "NHWC", fmt)


@_ieee
def separable_conv2d(input: ArrayLike, depthwise_filter: ArrayLike, pointwise_filter: ArrayLike, strides: Any,
                     padding: Any, data_format: str | None = None, dilations: Any = None) -> np.ndarray:
    """``tf.nn.separable_conv2d``: depthwise_conv2d, then a 1x1 conv2d mixing channels.

    depthwise_filter: [kh, kw, C, M]; pointwise_filter: [1, 1, C*M, O].
    strides and padding apply to the depthwise step; the pointwise step is 1x1,
    stride 1. Returns [N, H', W', O] (or NCHW). Both steps accumulate in float64
    with no intermediate rounding.
    """
    op = "separable_conv2d"
    fmt, x, x_nhwc, w_hwim, wins = _depthwise_args(op, "depthwise_filter", input, depthwise_filter, strides, padding, data_format, dilations)
    w_pw = _array(op, "pointwise_filter", pointwise_filter, 4, like=x)
    channels = w_hwim.shape[2] * w_hwim.shape[3]
    if w_pw.shape[:3] != (1, 1, channels):
        raise ValueError(
            f"{op}: argument 'pointwise_filter' has shape {list(w_pw.shape)}; it must be [1, 1, {channels}, out_channels] "
            f"(in_channels * channel_multiplier = {w_hwim.shape[2]} * {w_hwim.shape[3]})"
        )
    y_nhwc = _cast(_depthwise(x_nhwc, w_hwim, wins) @ w_pw[0, 0].astype(accumulator(x.dtype)), x.dtype)
    return layouts.convert(y_nhwc, "NHWC", fmt)


def _transpose(op: str, forms: ArgForms, formats: tuple[str, ...], filter_layout: str, input: ArrayLike,
               filters: ArrayLike, output_shape: Any, strides: Any, padding: Any, data_format: str | None,
               dilations: Any, data_arg: str = "input", grouped: bool = True) -> np.ndarray:
    """A transposed convolution of any rank: the adjoint of the (grouped) forward correlation whose input has
    ``output_shape``.

    ``forms``: its argument forms; ``formats``: the data_formats it takes (default first); ``filter_layout``: its
    filters' layout, ``[*kernel, O, I]``; grouped when the output has a multiple of the filters' O channels (as the
    Conv2DBackpropInput op's shape function; ``grouped=False``: not accepted).
    """
    fmt = _data_format(op, data_format, formats, formats[0])
    channels_last = formats[0]
    x, y_nsc, w_soi, _ = _data_and_filter(op, data_arg, input, fmt, "filters", filters, filter_layout)
    strides, dilations, pad = forms.window_args(op, fmt, strides, dilations, padding)
    spatial = layouts.spatial(channels_last)
    out_sizes, channels = _transpose_output_sizes(op, output_shape, fmt, y_nsc.shape, w_soi.shape[-2],
                                                  forms.output_shape_spatial)
    groups = _transpose_groups(op, output_shape, channels, w_soi.shape, filter_layout, grouped)
    pads = [pad] * len(spatial) if isinstance(pad, str) else list(pad)
    wins = []
    for axis, m, n, k, s, d, p in zip(spatial, out_sizes, y_nsc.shape[1:-1], w_soi.shape[:-2], strides, dilations, pads):
        require_taps(op, k)
        accepted = transpose_output_sizes(n, k, s, d, p)
        if m not in accepted:
            raise ValueError(
                f"{op}: argument 'output_shape'={_as_list(output_shape)} is unreachable: a forward convolution of an "
                f"input of {layouts.AXIS_NAMES[axis]} {m} with kernel {k}, stride {s}, dilation {d}, padding {p!r} "
                f"does not give {n}; accepted: {_describe(accepted)}"
            )
        wins.append(window(op, m, k, s, d, p))
    out_nsc = _cast(_correlate_transpose(y_nsc, w_soi, tuple(wins), groups), x.dtype)
    return layouts.convert(out_nsc, channels_last, fmt)


def _transpose_groups(op: str, output_shape: Any, channels: int, filter_shape: tuple[int, ...], filter_layout: str,
                      grouped: bool) -> int:
    """The group count of a transposed convolution: its output's ``channels`` over the filters' out_channels (the
    ``O`` axis), which must divide the filters' in_channels (``I``, the input's channels) too. ``grouped``: whether
    the op is grouped at all (atrous_conv2d_transpose checks its channels against the filters' exactly)."""
    o_axis, i_axis = filter_layout.index("O"), filter_layout.index("I")
    per_group, in_channels = filter_shape[o_axis], filter_shape[i_axis]
    if channels == per_group:
        return 1
    shape = _as_list(output_shape)
    if not grouped or per_group == 0 or channels == 0 or channels % per_group:
        also = " or a multiple of it (a grouped transposed convolution)" if grouped else ""
        raise ValueError(f"{op}: argument 'output_shape'={shape} has {channels} channels but filters have "
                         f"out_channels={per_group} (axis {o_axis}): it must be {per_group}{also}")
    groups = channels // per_group
    if in_channels % groups:
        raise ValueError(f"{op}: argument 'output_shape'={shape} has {channels} channels: {groups} groups of the "
                         f"filters' out_channels={per_group}, which do not divide the filters' in_channels="
                         f"{in_channels} (axis {i_axis})")
    return groups


@_ieee
def conv2d_transpose(input: ArrayLike, filters: ArrayLike, output_shape: Any, strides: Any, padding: Any = "SAME",
                     data_format: str | None = "NHWC", dilations: Any = None) -> np.ndarray:
    """``tf.nn.conv2d_transpose``: the gradient of conv2d with respect to its input.

    input: [N, H, W, I] (NHWC) or NCHW; filters: [kh, kw, O, I] (``[h, w, out, in]``);
    output_shape: 4 values in data_format order, or the 2 spatial sizes. It must be
    a shape that conv2d (same filters, strides, padding, dilations) maps back onto
    ``input``'s spatial shape; ``harness.conv.padding.transpose_output_sizes`` lists them.
    Returns an array of ``output_shape``.
    """
    return _transpose("conv2d_transpose", TRANSPOSE_FORMS, ("NHWC", "NCHW"), "HWOI", input, filters, output_shape,
                      strides, padding, data_format, dilations)


@_ieee
def conv3d_transpose(input: ArrayLike, filters: ArrayLike, output_shape: Any, strides: Any, padding: Any = "SAME",
                     data_format: str | None = "NDHWC", dilations: Any = None) -> np.ndarray:
    """``tf.nn.conv3d_transpose``: the gradient of conv3d with respect to its input.

    input: [N, D, H, W, I] (NDHWC) or NCDHW; filters: [kd, kh, kw, O, I]; output_shape: 5 values in data_format order,
    one that conv3d maps back onto ``input``'s spatial shape. strides, dilations: an int or a list of 1, 3 or 5;
    padding "SAME" or "VALID". Returns an array of ``output_shape``.
    """
    return _transpose("conv3d_transpose", CONV3D_TRANSPOSE_FORMS, RANKS[3], "DHWOI", input, filters, output_shape,
                      strides, padding, data_format, dilations)


@_ieee
def conv_transpose(input: ArrayLike, filters: ArrayLike, output_shape: Any, strides: Any, padding: Any = "SAME",
                   data_format: str | None = None, dilations: Any = None) -> np.ndarray:
    """``tf.nn.conv_transpose``: conv1d_transpose, conv2d_transpose or conv3d_transpose by the length of
    ``output_shape`` (3, 4 or 5 values, the full shape in data_format order; channels-last by default), with that
    op's argument forms."""
    op = "conv_transpose"
    try:
        length = len(output_shape)
    except TypeError:
        raise ValueError(f"{op}: argument 'output_shape'={output_shape!r} must be a list of 3, 4 or 5 ints") from None
    n = length - 2
    if n not in RANKS:
        raise ValueError(f"{op}: argument 'output_shape'={_as_list(output_shape)} must have 3, 4 or 5 values (the "
                         f"full output shape), got {length}")
    return _transpose(op, CONV_TRANSPOSE_FORMS[n], RANKS[n], filter_layout(n, transposed=True), input, filters,
                      output_shape, strides, padding, data_format, dilations)


@_ieee
def atrous_conv2d_transpose(value: ArrayLike, filters: ArrayLike, output_shape: Any, rate: Any,
                            padding: Any) -> np.ndarray:
    """``tf.nn.atrous_conv2d_transpose``: the gradient of atrous_conv2d with respect to its input, NHWC only.

    value: [N, H, W, I]; filters: [kh, kw, O, I]; output_shape: 4 values [N, H, W, O]; rate: a positive int;
    padding "SAME" or "VALID". Not grouped: the output's channels are the filters' O.
    """
    return _transpose("atrous_conv2d_transpose", ATROUS_TRANSPOSE_FORMS, ("NHWC",), "HWOI", value, filters,
                      output_shape, None, padding, "NHWC", rate, data_arg="value", grouped=False)


@_ieee
def conv1d_transpose(input: ArrayLike, filters: ArrayLike, output_shape: Any, strides: Any, padding: Any = "SAME",
                     data_format: str | None = "NWC", dilations: Any = None) -> np.ndarray:
    """``tf.nn.conv1d_transpose``: the gradient of conv1d with respect to its input.

    input: [N, W, I] (NWC) or [N, I, W] (NCW); filters: [kw, O, I] (``[w, out, in]``); output_shape: 3 values in
    data_format order, one that conv1d maps back onto ``input``'s width. strides, dilations: an int or a list of 1
    or 3; padding "SAME" or "VALID" (no explicit padding). Returns an array of ``output_shape``.
    """
    return _transpose("conv1d_transpose", CONV1D_TRANSPOSE_FORMS, ("NWC", "NCW"), "WOI", input, filters, output_shape,
                      strides, padding, data_format, dilations)


def _as_list(value: Any) -> Any:
    """``value`` as plain nested lists for an error message (its repr when NumPy cannot read it)."""
    try:
        return np.asarray(value).tolist()
    except Exception:  # ragged nested lists ...
        return repr(value)


def _describe(sizes: range) -> str:
    return "none" if not sizes else f"{sizes.start}..{sizes.stop - 1}" if len(sizes) > 1 else str(sizes.start)


def _transpose_output_sizes(op: str, output_shape: Any, fmt: str, in_shape: tuple[int, ...], out_channels: int,
                            spatial_only: bool) -> tuple[list[int], int]:
    """(the spatial sizes, the channels) of a transposed convolution's ``output_shape`` (full rank in ``fmt`` order,
    or, when ``spatial_only``, the spatial sizes alone, whose channels are the filters' ``out_channels``); ``in_shape``
    is the input's channels-last shape."""
    try:
        values = [int(v) for v in np.asarray(output_shape).reshape(-1)]
        if any(float(v) != float(o) for v, o in zip(values, np.asarray(output_shape).reshape(-1))):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{op}: argument 'output_shape'={output_shape!r} must be a list of ints") from None
    spatial = layouts.spatial(fmt)
    lengths = (len(fmt), len(spatial)) if spatial_only else (len(fmt),)
    if np.ndim(output_shape) != 1 or len(values) not in lengths:
        names = ", ".join(layouts.AXIS_NAMES[c] for c in spatial)
        also = f" or {len(spatial)} ({names})" if spatial_only else ""
        raise ValueError(f"{op}: argument 'output_shape'={_as_list(output_shape)} must have {len(fmt)} values "
                         f"({fmt}){also}")
    if len(values) == len(spatial) and spatial_only:
        return values, out_channels
    shape = dict(zip(fmt, values))
    if shape["N"] != in_shape[0]:
        raise ValueError(f"{op}: argument 'output_shape'={values} has batch {shape['N']} but the input has batch {in_shape[0]}")
    return [shape[c] for c in spatial], shape["C"]


# --- gradients: the tf.raw_ops backprop ops ------------------------------------------------
#
# For y = conv(x, w) and an output gradient dy (same shape as y):
#   d_input  = the adjoint of x -> conv(x, w)  applied to dy (scatter dy through the kernel);
#   d_filter = the adjoint of w -> conv(x, w)  applied to dy: dw[t, i, o] = sum over n, pixels p of
#              x_padded[n, p * s + t * d, i] * dy[n, p, o].
# The raw ops take strides and dilations as 4-long lists in data_format order, padding
# "SAME" / "VALID" / "EXPLICIT" with explicit_paddings a flat list of 8 ints, and the
# shape of the operand being differentiated (input_sizes / filter_sizes).

def _correlate_filter(x_nsc: np.ndarray, dy_nso: np.ndarray, wins: tuple[Window, ...], groups: int = 1) -> np.ndarray:
    """The filter gradient of the grouped ``_correlate``. x: [N, *spatial, G * I], dy: [N, *out, O] -> [*kernel, I, O]."""
    per_in, per_out = x_nsc.shape[-1] // groups, dy_nso.shape[-1] // groups
    return _grouped(
        groups,
        (lambda: _depthwise_filter(x_nsc, dy_nso, wins, per_out).reshape(*(w.kernel for w in wins), 1, groups * per_out))
        if per_in == 1 else None,
        lambda g: _correlate_filter_group(x_nsc[..., g * per_in:(g + 1) * per_in],
                                          dy_nso[..., g * per_out:(g + 1) * per_out], wins),
    )


def _correlate_filter_group(x_nsc: np.ndarray, dy_nso: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """The filter gradient of ``_correlate_group``. x: [N, *spatial, I], dy: [N, *out, O] -> [*kernel, I, O] (accumulator dtype).

    dw = im2col(x)^T @ dy, with dy as one row per (batch, output pixel).
    """
    acc = accumulator(x_nsc.dtype)
    kernel = tuple(w.kernel for w in wins)
    channels_in, channels_out = x_nsc.shape[-1], dy_nso.shape[-1]
    dw = np.zeros((int(np.prod(kernel, dtype=np.int64)) * channels_in, channels_out), acc)
    if dy_nso.size and dw.size:
        x_pad = _pad(x_nsc, wins, x_nsc.dtype)
        row_bytes = dw.shape[0] * int(np.prod(dy_nso.shape[2:-1])) * acc.itemsize
        buffer = _block_buffer(dy_nso.shape[0], dy_nso.shape[1], row_bytes, acc)
        for batch, rows in _blocks(dy_nso.shape[0], dy_nso.shape[1], row_bytes):
            dy_block = dy_nso[batch, rows].astype(acc).reshape(-1, channels_out)
            dw += _im2col(x_pad, kernel, wins, batch, rows, buffer).astype(acc, copy=False).T @ dy_block
    return dw.reshape(*kernel, channels_in, channels_out)


def _depthwise_transpose(dy_nsc: np.ndarray, w_sim: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """The input gradient of ``_depthwise``. dy: [N, *out, C*M] (channel-major), w: [*kernel, C, M] -> [N, *in, C].

    At unit strides it is a correlation of dy, padded by (k - 1) * d on both sides, with the
    180-degree rotated filter (a gather: ``_depthwise``'s einsum, then the sum over m). Otherwise
    each tap's share, sum over m of dy[..., c, m] * w[t, c, m], is added at its strided place
    (col2im, one tap at a time into one reused buffer).
    """
    acc = accumulator(dy_nsc.dtype)
    kernel, (channels, multiplier) = w_sim.shape[:-2], w_sim.shape[-2:]
    if dy_nsc.size and w_sim.size and all(w.stride == 1 for w in wins):
        # dx_pad[p] = sum over t of dy[p - t * d] w[t] = sum over t' of dy_padded[p + t' * d] w[k - 1 - t'].
        # At unit stride the forward output has padded - k_eff + 1 pixels per axis, so this correlation's
        # out + k_eff - 1 pixels are the whole padded input: its result is dx_pad itself.
        full = tuple(Window(w.out, w.kernel, 1, w.dilation, w.effective_kernel - 1, w.effective_kernel - 1,
                            w.out + w.effective_kernel - 1) for w in wins)
        w_rotated = w_sim[(slice(None, None, -1),) * len(kernel)].reshape(*kernel, channels * multiplier, 1)
        dx_pad = _depthwise(dy_nsc, w_rotated, full)  # [N, *padded, C*M]
        if multiplier > 1:
            dx_pad = dx_pad.reshape(*dx_pad.shape[:-1], channels, multiplier).sum(axis=-1)
    else:
        padded = [w.size + w.pad_before + w.pad_after for w in wins]
        dx_pad = np.zeros((dy_nsc.shape[0], *padded, channels), acc)
        if dy_nsc.size and w_sim.size:
            dy_cm = dy_nsc.astype(acc).reshape(dy_nsc.shape[:-1] + (channels, multiplier))
            w_acc = w_sim.astype(acc)
            share = np.empty(dy_cm.shape[:-1], acc)
            for taps in np.ndindex(*kernel):
                if multiplier == 1:  # a plain product: einsum's reduction over a length-1 axis is ~1.5x slower
                    np.multiply(dy_cm[..., 0], w_acc[taps][:, 0], out=share)
                else:
                    np.einsum("...cm,cm->...c", dy_cm, w_acc[taps], out=share)
                dx_pad[(slice(None), *_tap_slices(taps, wins))] += share
    crop = tuple(slice(w.pad_before, w.pad_before + w.size) for w in wins)
    return dx_pad[(slice(None), *crop)]


def _depthwise_filter(x_nsc: np.ndarray, dy_nsc: np.ndarray, wins: tuple[Window, ...], multiplier: int) -> np.ndarray:
    """The filter gradient of ``_depthwise``. x: [N, *spatial, C], dy: [N, *out, C*M] -> [*kernel, C, M].

    dw[t, c, m] = sum over n and output pixels o of x_pad[n, o * s + t * d, c] * dy[n, o, c, m]: one
    ``einsum`` over the windows' strided view.
    """
    acc = accumulator(x_nsc.dtype)
    kernel = tuple(w.kernel for w in wins)
    channels = x_nsc.shape[-1]
    if dy_nsc.size == 0:  # (its channels are C*M, so this covers C = 0 and M = 0 too)
        return np.zeros((*kernel, channels, multiplier), acc)
    view = _window_view(_pad(x_nsc, wins, acc), kernel, wins, dy_nsc.shape[1:-1])  # [n, *out, *taps, c]
    dy_ocm = dy_nsc.astype(acc).reshape(dy_nsc.shape[:-1] + (channels, multiplier))
    out_axes, tap_axes = _einsum_axes(len(wins))
    return np.einsum(f"n{out_axes}{tap_axes}c,n{out_axes}cm->{tap_axes}cm", view, dy_ocm)


def _sizes(op: str, arg: str, value: Any, lengths: tuple[int, ...]) -> list[int]:
    """A shape argument (input_sizes / filter_sizes): a 1-D list of non-negative ints."""
    try:
        a = np.asarray(value)
    except Exception:
        a = None
    if a is None or a.ndim != 1 or a.dtype.kind not in "iu" or len(a) not in lengths:
        raise ValueError(f"{op}: argument '{arg}'={_as_list(value)} must be a list of "
                         f"{' or '.join(map(str, lengths))} ints")
    if (a < 0).any():
        raise ValueError(f"{op}: argument '{arg}'={a.tolist()} must not be negative")
    return [int(v) for v in a]


def _raw_window_args(op: str, fmt: str, strides: Any, dilations: Any, padding: Any, explicit_paddings: Any,
                     use_cudnn_on_gpu: Any = True) -> tuple[tuple[int, ...], tuple[int, ...], Padding]:
    """Normalized (strides, dilations, padding) from the tf.raw_ops forms: full-rank lists in data_format order;
    padding "SAME" / "VALID", or "EXPLICIT" with a flat ``explicit_paddings`` (None: an op without that attribute,
    which takes the two names only)."""
    if not isinstance(use_cudnn_on_gpu, (bool, np.bool_)):
        raise ValueError(f"{op}: argument 'use_cudnn_on_gpu'={use_cudnn_on_gpu!r} must be a bool")
    rank = len(fmt)
    strides = normalize_window_arg(op, "strides", strides, fmt, allowed_lengths=(rank,), allow_int=False)
    dilations = normalize_window_arg(op, "dilations", dilations, fmt, allowed_lengths=(rank,), allow_int=False,
                                     default=1)
    if explicit_paddings is None:
        return strides, dilations, normalize_padding(op, padding, fmt, allow_explicit=False)
    return strides, dilations, normalize_raw_padding(op, padding, explicit_paddings, fmt)


def _named_shape(arg: str, sizes: Any) -> str:
    """How an error names a shape argument: ``'input_sizes'=[...]``, or ``'input' of shape [...]`` where an operand
    stands for its shape (the V2 ops' ``input`` / ``filter``, whose values are not read)."""
    return f"'{arg}'={sizes}" if arg.endswith("_sizes") else f"'{arg}' of shape {sizes}"


def _check_out_backprop(op: str, sizes_arg: str, sizes: Any, wins: tuple[Window, ...], dy_last_shape: tuple[int, ...],
                        fmt: str) -> None:
    """The forward convolution of the sizes given must produce out_backprop's spatial size."""
    want = tuple(w.out for w in wins)
    got = tuple(dy_last_shape[1:-1])
    if want != got:
        raise ValueError(
            f"{op}: argument {_named_shape(sizes_arg, sizes)} does not match 'out_backprop': the forward convolution of that "
            f"geometry gives spatial size {list(want)}, out_backprop ({fmt}) has {list(got)}"
        )


def _input_sizes(op: str, input_sizes: Any, fmt: str, batch: int, per_group: int, lengths: tuple[int, ...],
                 grouped: bool, sizes_arg: str = "input_sizes") -> tuple[list[int], int]:
    """(spatial sizes, channels) of input_sizes (the full shape in data_format order, or, where ``lengths`` allows,
    the spatial sizes alone), checked against out_backprop's ``batch`` and the filter's in_channels ``per_group``:
    the channels must be ``per_group`` or, when ``grouped``, a multiple of it."""
    sizes = _sizes(op, sizes_arg, input_sizes, lengths)
    named = _named_shape(sizes_arg, sizes)
    n_spatial = len(fmt) - 2
    if len(sizes) == n_spatial:  # Conv2DBackpropInput takes batch from out_backprop and channels from the filter
        return sizes, per_group
    shape = dict(zip(fmt, sizes))
    if shape["N"] != batch:
        raise ValueError(f"{op}: argument {named} has batch {shape['N']} but out_backprop has batch {batch}")
    channels = shape["C"]
    if channels != per_group and not (grouped and per_group and channels and channels % per_group == 0):
        also = ": it must be that or a multiple of it (grouped)" if grouped else ""
        raise ValueError(f"{op}: argument {named} has {channels} channels but the filter has "
                         f"in_channels={per_group} (axis {n_spatial}){also}")
    return [shape[c] for c in layouts.spatial(fmt)], channels


def _backprop_input(op: str, input_sizes: Any, filter: ArrayLike, out_backprop: ArrayLike, strides: Any, padding: Any,
                    explicit_paddings: Any, data_format: str | None, dilations: Any, *, formats: tuple[str, ...],
                    filter_layout: str, size_lengths: tuple[int, ...], depthwise: bool = False,
                    use_cudnn_on_gpu: Any = True, sizes_arg: str = "input_sizes") -> np.ndarray:
    """The input gradient of a (grouped) convolution or of a depthwise one, as the raw backprop-input ops compute it:
    filter ``[*kernel, I, O]`` (or ``[*kernel, C, M]``), out_backprop in ``data_format``; returns the input's gradient
    in ``data_format``, in the filter's dtype. ``sizes_arg``: the argument that gave ``input_sizes``."""
    fmt = _data_format(op, data_format, formats, formats[0])
    last = layouts.channels_last(fmt)
    w = _array(op, "filter", filter, len(filter_layout))
    dy = _array(op, "out_backprop", out_backprop, len(fmt), like=w, like_arg="filter")
    dy_last = layouts.convert(dy, fmt, last)
    shapes = f"out_backprop {list(dy.shape)} {fmt}, filter {list(w.shape)} {filter_layout}"
    if depthwise:
        _match(op, "out_backprop", "channels", dy_last.shape[-1], w.shape[-2] * w.shape[-1],
               f"in_channels * channel_multiplier of filter {list(w.shape)} {filter_layout}; out_backprop "
               f"{list(dy.shape)} {fmt}")
    else:
        _match(op, "out_backprop", "out_channels", dy_last.shape[-1], w.shape[-1], shapes)
    strides, dilations, pad = _raw_window_args(op, fmt, strides, dilations, padding, explicit_paddings, use_cudnn_on_gpu)
    sizes, channels = _input_sizes(op, input_sizes, fmt, dy_last.shape[0], w.shape[-2], size_lengths, not depthwise,
                                   sizes_arg)
    groups = 1 if depthwise else _groups(op, "filter", filter_layout, w.shape, channels, shapes)
    wins = windows(op, sizes, w.shape[:-2], strides, dilations, pad)
    _check_out_backprop(op, sizes_arg, _as_list(input_sizes), wins, dy_last.shape, fmt)
    # The forward filter [*kernel, I, O] is [*kernel, O, I] for the adjoint, with the roles swapped.
    dx = _depthwise_transpose(dy_last, w, wins) if depthwise else _correlate_transpose(dy_last, w, wins, groups)
    return layouts.convert(_cast(dx, dy.dtype), last, fmt)


def _backprop_filter(op: str, input: ArrayLike, filter_sizes: Any, out_backprop: ArrayLike, strides: Any,
                     padding: Any, explicit_paddings: Any, data_format: str | None, dilations: Any, *,
                     formats: tuple[str, ...], filter_layout: str, depthwise: bool = False,
                     use_cudnn_on_gpu: Any = True, sizes_arg: str = "filter_sizes") -> np.ndarray:
    """The filter gradient of a (grouped) convolution or of a depthwise one, as the raw backprop-filter ops compute
    it: input and out_backprop in ``data_format``; returns the ``filter_layout`` gradient in the input's dtype.
    ``sizes_arg``: the argument that gave ``filter_sizes``."""
    fmt = _data_format(op, data_format, formats, formats[0])
    last = layouts.channels_last(fmt)
    x = _array(op, "input", input, len(fmt))
    dy = _array(op, "out_backprop", out_backprop, len(fmt), like=x)
    x_last, dy_last = layouts.convert(x, fmt, last), layouts.convert(dy, fmt, last)
    sizes = _sizes(op, sizes_arg, filter_sizes, (len(filter_layout),))
    *kernel, cin, cout = sizes
    shapes = (f"{sizes_arg} {sizes} {filter_layout}, input {list(x.shape)} {fmt}, out_backprop {list(dy.shape)} "
              f"{fmt}")
    i_entry = len(kernel)
    if depthwise:
        groups = 1
        _match(op, sizes_arg, f"in_channels (entry {i_entry})", cin, x_last.shape[-1], shapes)
        _match(op, "out_backprop", "channels", dy_last.shape[-1], cin * cout, shapes)
    else:
        groups = _groups(op, sizes_arg, filter_layout, tuple(sizes), x_last.shape[-1], shapes, unit="entry")
        _match(op, sizes_arg, f"out_channels (entry {i_entry + 1})", cout, dy_last.shape[-1], shapes)
    _match(op, "out_backprop", "batch", dy_last.shape[0], x_last.shape[0], shapes)
    strides, dilations, pad = _raw_window_args(op, fmt, strides, dilations, padding, explicit_paddings, use_cudnn_on_gpu)
    wins = windows(op, x_last.shape[1:-1], kernel, strides, dilations, pad)
    _check_out_backprop(op, sizes_arg, sizes, wins, dy_last.shape, fmt)
    dw = _depthwise_filter(x_last, dy_last, wins, cout) if depthwise else _correlate_filter(x_last, dy_last, wins, groups)
    return _cast(dw, x.dtype)


@_ieee
def conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding, use_cudnn_on_gpu=True,
                          explicit_paddings=(), data_format="NHWC", dilations=(1, 1, 1, 1)):
    """``tf.raw_ops.Conv2DBackpropInput``: the gradient of conv2d (grouped as conv2d) with respect to its input.

    input_sizes: the input's shape, 4 values in data_format order or the 2 spatial
    sizes (H, W); filter: HWIO [kh, kw, C / groups, O]; out_backprop: [N, H', W', O] (NHWC) or
    NCHW, the gradient of conv2d's output. strides, dilations: 4 values in
    data_format order; padding: "SAME", "VALID" or "EXPLICIT" with explicit_paddings
    8 ints in data_format order. Returns [N, H, W, C] (or NCHW) in the filter's dtype.
    """
    return _backprop_input("conv2d_backprop_input", input_sizes, filter, out_backprop, strides, padding,
                           explicit_paddings, data_format, dilations, formats=RANKS[2], filter_layout="HWIO",
                           size_lengths=(4, 2), use_cudnn_on_gpu=use_cudnn_on_gpu)


@_ieee
def conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding, use_cudnn_on_gpu=True,
                           explicit_paddings=(), data_format="NHWC", dilations=(1, 1, 1, 1)):
    """``tf.raw_ops.Conv2DBackpropFilter``: the gradient of conv2d (grouped as conv2d) with respect to its filter.

    input: [N, H, W, C] (NHWC) or NCHW; filter_sizes: the HWIO filter shape, 4 values
    [kh, kw, C / groups, O]; out_backprop: [N, H', W', O] (or NCHW). Attributes as for
    ``conv2d_backprop_input``. Returns the HWIO gradient in the input's dtype.
    """
    return _backprop_filter("conv2d_backprop_filter", input, filter_sizes, out_backprop, strides, padding,
                            explicit_paddings, data_format, dilations, formats=RANKS[2], filter_layout="HWIO",
                            use_cudnn_on_gpu=use_cudnn_on_gpu)


@_ieee
def conv3d_backprop_input_v2(input_sizes: Any, filter: ArrayLike, out_backprop: ArrayLike, strides: Any, padding: Any,
                             data_format: str | None = "NDHWC", dilations: Any = (1, 1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.Conv3DBackpropInputV2``: the gradient of conv3d with respect to its input.

    input_sizes: the input's shape, 5 values in data_format order; filter: DHWIO; out_backprop: [N, D', H', W', O]
    (NDHWC) or NCDHW. strides, dilations: 5 values in data_format order; padding "SAME" or "VALID" (no explicit
    padding). Returns [N, D, H, W, C] (or NCDHW) in the filter's dtype.
    """
    return _backprop_input("conv3d_backprop_input_v2", input_sizes, filter, out_backprop, strides, padding, None,
                           data_format, dilations, formats=RANKS[3], filter_layout="DHWIO", size_lengths=(5,))


@_ieee
def conv3d_backprop_filter_v2(input: ArrayLike, filter_sizes: Any, out_backprop: ArrayLike, strides: Any,
                              padding: Any, data_format: str | None = "NDHWC",
                              dilations: Any = (1, 1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.Conv3DBackpropFilterV2``: the gradient of conv3d with respect to its filter.

    input: [N, D, H, W, C] (NDHWC) or NCDHW; filter_sizes: the DHWIO filter shape, 5 values; out_backprop: [N, D',
    H', W', O]. Attributes as for ``conv3d_backprop_input_v2``. Returns the DHWIO gradient in the input's dtype.
    """
    return _backprop_filter("conv3d_backprop_filter_v2", input, filter_sizes, out_backprop, strides, padding, None,
                            data_format, dilations, formats=RANKS[3], filter_layout="DHWIO")


# The ops that take the operand itself in place of its sizes (only its shape is read): tf.raw_ops'
# Conv2DBackpropInputV2 / FilterV2, and the 3-D V1 ops that Conv3DBackpropInputV2 / FilterV2 replaced (NDHWC only).
def _shape_operand(op: str, arg: str, value: ArrayLike, rank: int, like_arg: str, like: ArrayLike) -> list[int]:
    """The shape of an operand whose values the op does not read, checked as an operand: its rank, and the dtype of
    argument ``like_arg`` (an operand of the same rank, checked first)."""
    other = _array(op, like_arg, like, rank)
    return list(_array(op, arg, value, rank, like=other, like_arg=like_arg).shape)


@_ieee
def conv2d_backprop_input_v2(input: ArrayLike, filter: ArrayLike, out_backprop: ArrayLike, strides: Any, padding: Any,
                             use_cudnn_on_gpu: Any = True, explicit_paddings: Any = (), data_format: str | None = "NHWC",
                             dilations: Any = (1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.Conv2DBackpropInputV2``: ``conv2d_backprop_input`` with ``input`` in place of input_sizes.

    input: [N, H, W, C] (NHWC) or NCHW, of the filter's dtype; only its shape is read. filter: HWIO [kh, kw,
    C / groups, O]; out_backprop: [N, H', W', O] (or NCHW). Attributes as for ``conv2d_backprop_input``. Returns
    input's shape, in the filter's dtype.
    """
    op = "conv2d_backprop_input_v2"
    shape = _shape_operand(op, "input", input, 4, "filter", filter)
    return _backprop_input(op, shape, filter, out_backprop, strides, padding, explicit_paddings, data_format,
                           dilations, formats=RANKS[2], filter_layout="HWIO", size_lengths=(4,),
                           use_cudnn_on_gpu=use_cudnn_on_gpu, sizes_arg="input")


@_ieee
def conv2d_backprop_filter_v2(input: ArrayLike, filter: ArrayLike, out_backprop: ArrayLike, strides: Any,
                              padding: Any, use_cudnn_on_gpu: Any = True, explicit_paddings: Any = (),
                              data_format: str | None = "NHWC", dilations: Any = (1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.Conv2DBackpropFilterV2``: ``conv2d_backprop_filter`` with ``filter`` in place of filter_sizes.

    input: [N, H, W, C] (NHWC) or NCHW; filter: HWIO [kh, kw, C / groups, O], of the input's dtype; only its shape
    is read. out_backprop: [N, H', W', O] (or NCHW). Returns the HWIO gradient in the input's dtype.
    """
    op = "conv2d_backprop_filter_v2"
    shape = _shape_operand(op, "filter", filter, 4, "input", input)
    return _backprop_filter(op, input, shape, out_backprop, strides, padding, explicit_paddings, data_format,
                            dilations, formats=RANKS[2], filter_layout="HWIO", use_cudnn_on_gpu=use_cudnn_on_gpu,
                            sizes_arg="filter")


@_ieee
def conv3d_backprop_input(input: ArrayLike, filter: ArrayLike, out_backprop: ArrayLike, strides: Any, padding: Any,
                          dilations: Any = (1, 1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.Conv3DBackpropInput`` (V1): ``conv3d_backprop_input_v2`` with ``input`` in place of input_sizes,
    NDHWC only (no data_format).

    input: [N, D, H, W, C], of the filter's dtype; only its shape is read. filter: DHWIO; out_backprop: [N, D', H',
    W', O]. strides, dilations: 5 values; padding "SAME" or "VALID". Returns input's shape in the filter's dtype.
    """
    op = "conv3d_backprop_input"
    shape = _shape_operand(op, "input", input, 5, "filter", filter)
    return _backprop_input(op, shape, filter, out_backprop, strides, padding, None, "NDHWC", dilations,
                           formats=RANKS[3][:1], filter_layout="DHWIO", size_lengths=(5,), sizes_arg="input")


@_ieee
def conv3d_backprop_filter(input: ArrayLike, filter: ArrayLike, out_backprop: ArrayLike, strides: Any, padding: Any,
                           dilations: Any = (1, 1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.Conv3DBackpropFilter`` (V1): ``conv3d_backprop_filter_v2`` with ``filter`` in place of
    filter_sizes, NDHWC only (no data_format).

    input: [N, D, H, W, C]; filter: DHWIO, of the input's dtype; only its shape is read. out_backprop: [N, D', H',
    W', O]. Returns the DHWIO gradient in the input's dtype.
    """
    op = "conv3d_backprop_filter"
    shape = _shape_operand(op, "filter", filter, 5, "input", input)
    return _backprop_filter(op, input, shape, out_backprop, strides, padding, None, "NDHWC", dilations,
                            formats=RANKS[3][:1], filter_layout="DHWIO", sizes_arg="filter")


@_ieee
def depthwise_conv2d_native_backprop_input(input_sizes: Any, filter: ArrayLike, out_backprop: ArrayLike, strides: Any,
                                           padding: Any, explicit_paddings: Any = (), data_format: str | None = "NHWC",
                                           dilations: Any = (1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.DepthwiseConv2dNativeBackpropInput``: the gradient of depthwise_conv2d w.r.t. its input.

    input_sizes: the input's shape, 4 values in data_format order (TensorFlow's Eigen
    kernel takes no 2-value form); filter: HWIM [kh, kw, C, M]; out_backprop:
    [N, H', W', C*M] (channel-major, or NCHW). Attributes as for
    ``conv2d_backprop_input``. Returns [N, H, W, C] (or NCHW) in the filter's dtype.
    """
    return _backprop_input("depthwise_conv2d_native_backprop_input", input_sizes, filter, out_backprop, strides,
                           padding, explicit_paddings, data_format, dilations, formats=RANKS[2], filter_layout="HWIM",
                           size_lengths=(4,), depthwise=True)


@_ieee
def depthwise_conv2d_native_backprop_filter(input: ArrayLike, filter_sizes: Any, out_backprop: ArrayLike, strides: Any,
                                            padding: Any, explicit_paddings: Any = (), data_format: str | None = "NHWC",
                                            dilations: Any = (1, 1, 1, 1)) -> np.ndarray:
    """``tf.raw_ops.DepthwiseConv2dNativeBackpropFilter``: the gradient of depthwise_conv2d w.r.t. its filter.

    input: [N, H, W, C] (NHWC) or NCHW; filter_sizes: the HWIM filter shape, 4 values
    [kh, kw, C, M]; out_backprop: [N, H', W', C*M] (channel-major, or NCHW).
    Returns the HWIM [kh, kw, C, M] gradient in the input's dtype.
    """
    return _backprop_filter("depthwise_conv2d_native_backprop_filter", input, filter_sizes, out_backprop, strides,
                            padding, explicit_paddings, data_format, dilations, formats=RANKS[2],
                            filter_layout="HWIM", depthwise=True)


def _explicit_pairs(op: str, padding: Any, fmt: str) -> tuple[str, list[int]]:
    """tf.nn's padding argument (a name, or one [before, after] pair per axis) as the raw ops' (padding,
    explicit_paddings), validated."""
    pad = normalize_padding(op, padding, fmt)
    if isinstance(pad, str):
        return pad, []
    return "EXPLICIT", raw_op_window_args((1,) * len(pad), (1,) * len(pad), pad, fmt)[3]


@_ieee
def depthwise_conv2d_backprop_input(input_sizes: Any, filter: ArrayLike, out_backprop: ArrayLike, strides: Any,
                                    padding: Any, data_format: str | None = "NHWC", dilations: Any = None) -> np.ndarray:
    """``tf.nn.depthwise_conv2d_backprop_input``: DepthwiseConv2dNativeBackpropInput with tf.nn's padding argument
    ("SAME", "VALID" or 4 [before, after] pairs in data_format order); strides and dilations 4-lists."""
    op = "depthwise_conv2d_backprop_input"
    fmt = _data_format(op, data_format, RANKS[2], "NHWC")
    name, flat = _explicit_pairs(op, padding, fmt)
    return _backprop_input(op, input_sizes, filter, out_backprop, strides, name, flat, fmt, dilations,
                           formats=RANKS[2], filter_layout="HWIM", size_lengths=(4,), depthwise=True)


@_ieee
def depthwise_conv2d_backprop_filter(input: ArrayLike, filter_sizes: Any, out_backprop: ArrayLike, strides: Any,
                                     padding: Any, data_format: str | None = "NHWC", dilations: Any = None) -> np.ndarray:
    """``tf.nn.depthwise_conv2d_backprop_filter``: DepthwiseConv2dNativeBackpropFilter with tf.nn's padding
    argument ("SAME", "VALID" or 4 [before, after] pairs in data_format order); strides and dilations 4-lists."""
    op = "depthwise_conv2d_backprop_filter"
    fmt = _data_format(op, data_format, RANKS[2], "NHWC")
    name, flat = _explicit_pairs(op, padding, fmt)
    return _backprop_filter(op, input, filter_sizes, out_backprop, strides, name, flat, fmt, dilations,
                            formats=RANKS[2], filter_layout="HWIM", depthwise=True)
