"""``python -m bench.run``: the NumPy reference timed against TensorFlow, JAX's lax_reference and a pixel loop.

    python -m bench.run [--repeat N] [--out DIR] [--only SUBSTRING ...] [--check] [--quick]

Every benchmark is one ``Bench`` line in ``BENCHES``: ResNet-50, ResNeXt (32 groups), MobileNetV2 and decoder
layers, a C3D-style 3-D convolution, a 3-D U-Net up-convolution and a WaveNet dilated causal 1-D layer, float32,
channels-last. Per layer it measures, with the calls interleaved (reference, TensorFlow, lax_reference, reference,
...) so that the noise of a shared VM hits all of them alike, the median of ``--repeat`` warm runs of:

* ``harness.conv.reference`` (float32 in, float64 accumulation, float32 out), and on float64 operands;
* TensorFlow through ``harness.wrappers`` (eager ``tf.nn``; NumPy in, NumPy out, so the host-to-tensor copies count);
* ``jax._src.lax_reference.conv_general_dilated`` on float64 and on float32 operands ("n/a" where it has no
  formulation of the op, "not installed" without jax);
* the layer's own GEMM: the float64 matrix products that hold all its multiply-adds, on ready operands (the
  yardstick of an im2col reference);

and, around one more reference call, its ``tracemalloc`` peak (NumPy reports its buffers to tracemalloc; the inputs
are allocated before tracing starts, the output during it). The square float64 GEMM rate (``a @ b``, 2048 x 2048)
is measured before every layer, for the %GEMM64 column.

Definitions (also in the JSON's ``notes``):

* FLOPs = 2 x multiply-adds of the direct convolution: conv ``2 N prod(out) prod(kernel) C_in/G C_out``; depthwise
  ``2 N prod(out) prod(kernel) C M``; a transpose ``2 N prod(in) prod(kernel) C_in C_out``.
* im2col bytes = ``K x M x 8`` (float64, the reference's accumulator): conv ``K = prod(kernel) C_in``, ``M = N
  prod(out)``; depthwise ``K = prod(kernel) C`` (the windows, shared by the M multipliers); a transpose the im2col
  of the forward convolution it is the input-gradient of: ``K = prod(kernel) C_out``, ``M = N prod(in)``.

Outputs: a table on stdout, ``DIR/bench.json`` and ``DIR/bench.png``. The targets are reported, MET or MISSED; the
exit status is 0 unless ``--check`` is given and a target is MISSED.

This module imports TensorFlow only through ``harness.wrappers`` and jax / matplotlib only inside functions, so that
importing it (as the tests do) loads none of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from bench import int8
from bench.allocator import retain_freed_memory
from bench.timing import aligned, interleaved, median, repeated
from harness import atomic, ops
from harness.conv.padding import Window, window
from harness.reports import results
from harness.tf import wrappers
from harness.tf.environment import Environment

KINDS = ("conv", "depthwise", "transposed")  # the op kinds (harness.ops.KINDS) a Bench can time
ACC_BYTES = 8  # float64: the reference accumulates (and builds its im2col blocks) in float64
GIB = 1 << 30

# The targets (reported, never asserted by the tests).
LAYER_GEMM_MEDIAN = 0.70  # conv + transposed layers: median share of their own layer GEMM's rate
LAYER_GEMM_FLOOR = 0.45  # ... and no such layer below this
VS_TF = 3.0  # every layer: reference time at most 3x TensorFlow's (depthwise and grouped layers included)
VS_LAX = 1.0  # median reference / lax_reference time below 1, both on float64 inputs
PEAK_OVER_IM2COL = 3.0  # tracemalloc peak at most 3x the im2col size
PEAK_LIMIT = GIB  # memory-only shapes (im2col > 1 GiB): peak below 1 GiB, the full im2col is never held
NOT_SLOWER = 1.10  # --baseline: no layer's reference more than 10% slower than in the baseline run (run-to-run noise)


@dataclass(frozen=True)
class Bench:
    """One layer: float32 operands, in the op's channels-last layout (its ``OpSpec``'s default data format).

    x: the data operand's shape ``[N, *spatial, C]``. w_shape: the filter's, in the op's layout: conv2d HWIO
    ``[kh, kw, C / groups, C_out]`` (a grouped layer has more input channels than the filter's I), conv3d DHWIO,
    conv1d WIO, depthwise_conv2d HWIM ``[kh, kw, C, M]``, the transposes ``[*kernel, C_out, C_in]``. out: a
    transposed op's ``output_shape`` (None for the others). stride, dilation: the same on every spatial axis.
    memory_only: only the reference's tracemalloc peak is measured (no timing, no TensorFlow). repeat: timed runs
    when not the run's (the largest layers take seconds a call).
    """

    name: str
    op: str
    x: tuple[int, ...]
    w_shape: tuple[int, ...]
    stride: int = 1
    padding: str = "SAME"
    dilation: int = 1
    out: tuple[int, ...] | None = None
    memory_only: bool = False
    repeat: int | None = None


BENCHES = (
    # ResNet-50: the 3x3 convolutions of conv2_x .. conv5_x, the stem and a 1x1 bottleneck reduction.
    Bench("resnet50 conv2_x", "conv2d", (1, 56, 56, 64), (3, 3, 64, 64)),
    Bench("resnet50 conv2_x b8", "conv2d", (8, 56, 56, 64), (3, 3, 64, 64)),
    Bench("resnet50 conv3_x", "conv2d", (1, 28, 28, 128), (3, 3, 128, 128)),
    Bench("resnet50 conv4_x", "conv2d", (1, 14, 14, 256), (3, 3, 256, 256)),
    Bench("resnet50 conv5_x", "conv2d", (1, 7, 7, 512), (3, 3, 512, 512)),
    Bench("resnet50 stem 7x7/2", "conv2d", (1, 224, 224, 3), (7, 7, 3, 64), stride=2),
    Bench("resnet50 1x1 256->64", "conv2d", (1, 56, 56, 256), (1, 1, 256, 64)),
    # ResNeXt-50 (32x4d) conv2 stage: the grouped 3x3, 32 groups of 4 channels.
    Bench("resnext50 conv2 32 groups", "conv2d", (1, 56, 56, 128), (3, 3, 4, 128)),
    # MobileNetV2 depthwise layers (multiplier 1).
    Bench("mobilenetv2 dw 112", "depthwise_conv2d", (1, 112, 112, 32), (3, 3, 32, 1)),
    Bench("mobilenetv2 dw 56/2", "depthwise_conv2d", (1, 56, 56, 144), (3, 3, 144, 1), stride=2),
    # Decoder upsampling layers.
    Bench("upsample 16->32 3x3", "conv2d_transpose", (1, 16, 16, 256), (3, 3, 128, 256), stride=2,
          out=(1, 32, 32, 128)),
    Bench("upsample 32->64 4x4", "conv2d_transpose", (1, 32, 32, 128), (4, 4, 64, 128), stride=2,
          out=(1, 64, 64, 64)),
    # Video and volumes: a C3D-style 3x3x3 layer, a 3-D U-Net decoder's 2x2x2 up-convolution.
    Bench("c3d conv3 16x56x56", "conv3d", (1, 16, 56, 56, 64), (3, 3, 3, 64, 64), repeat=3),
    Bench("3d unet up 16->32", "conv3d_transpose", (1, 16, 16, 16, 128), (2, 2, 2, 64, 128), stride=2,
          out=(1, 32, 32, 32, 64), repeat=3),
    # Audio: a WaveNet dilated causal layer (kernel 2, dilation 256; causal: the input left-padded by 256, VALID).
    Bench("wavenet causal d256", "conv1d", (1, 16256, 64), (2, 64, 64), padding="VALID", dilation=256),
    # Memory only: its float64 im2col would be 576 x 401408 x 8 B = 1.85 GB.
    Bench("memory-only 8x224x224x64", "conv2d", (8, 224, 224, 64), (3, 3, 64, 64), memory_only=True),
)  # fmt: skip

# --quick: tiny stand-ins for every kind of row (the test runs these), one repeat.
QUICK_BENCHES = (
    Bench("quick conv2d 3x3", "conv2d", (1, 8, 8, 8), (3, 3, 8, 8)),
    Bench("quick stem 7x7/2", "conv2d", (1, 16, 16, 3), (7, 7, 3, 8), stride=2),
    Bench("quick grouped 4", "conv2d", (1, 8, 8, 8), (3, 3, 2, 8)),
    Bench("quick dw x2 /2", "depthwise_conv2d", (1, 8, 8, 4), (3, 3, 4, 2), stride=2),
    Bench("quick upsample 3x3", "conv2d_transpose", (1, 4, 4, 8), (3, 3, 4, 8), stride=2, out=(1, 8, 8, 4)),
    Bench("quick conv3d", "conv3d", (1, 4, 6, 6, 4), (3, 3, 3, 4, 4)),
    Bench("quick up 3d", "conv3d_transpose", (1, 3, 3, 3, 4), (2, 2, 2, 2, 4), stride=2, out=(1, 6, 6, 6, 2)),
    Bench("quick causal 1d", "conv1d", (1, 40, 4), (2, 4, 4), padding="VALID", dilation=8),
    Bench("quick memory-only", "conv2d", (2, 16, 16, 8), (3, 3, 8, 8), memory_only=True),
)


@dataclass(frozen=True)
class Settings:
    """How much to measure: full run or ``--quick``."""

    repeat: int  # timed runs per implementation and shape (the median is reported)
    warmup: int  # untimed runs first (TensorFlow picks and caches its kernels on the first call)
    gemm_n: int  # the GEMM yardstick is an n x n @ n x n product
    gemm_runs: int  # GEMM products per measurement (their median is one sample)
    loop_bench: Bench  # the small conv2d the pixel loop is timed on


FULL = Settings(
    repeat=7,
    warmup=2,
    gemm_n=2048,
    gemm_runs=3,
    loop_bench=Bench("pixel loop", "conv2d", (1, 8, 8, 16), (3, 3, 16, 16)),
)
QUICK = Settings(
    repeat=1, warmup=1, gemm_n=256, gemm_runs=2, loop_bench=Bench("pixel loop", "conv2d", (1, 4, 4, 4), (3, 3, 4, 4))
)


# --- geometry: output shape, FLOPs, im2col size -------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """What a Bench computes: output shape, the multiply-adds, its im2col matrix (K rows x M columns) and groups."""

    out: tuple[int, ...]
    macs: int
    im2col_rows: int  # K
    im2col_cols: int  # M
    groups: int = 1


def spec_of(b: Bench) -> ops.OpSpec:
    """The op's spec; only tf.nn ops of ``KINDS`` are benchmarked."""
    spec = ops.get(b.op)
    if spec.kind not in KINDS or b.op not in ops.OPS:
        raise ValueError(f"{b.name}: op {b.op!r} (kind {spec.kind}) is not a tf.nn op of kind {', '.join(KINDS)}")
    return spec


def kind(b: Bench) -> str:
    return spec_of(b).kind


def filter_layout(b: Bench) -> str:
    """The filter layout of ``b.w_shape``: the op's own (HWIO, DHWIO, HWIM; the transposes' [*kernel, O, I])."""
    return spec_of(b).kernel_operand.layout


def _spelled(forms_lengths: tuple[int, ...], allow_int: bool, value: int, n: int) -> int | list[int]:
    """One value for every spatial axis, in a form the op takes: an int, one per spatial axis, or the full rank."""
    if allow_int:
        return value
    return [value] * n if n in forms_lengths else [1, *[value] * n, 1]


def attrs(b: Bench) -> dict:
    """The op's keyword attributes (tf.nn's names and forms, from its OpSpec)."""
    spec = spec_of(b)
    forms, n = spec.forms, len(b.x) - 2
    out: dict = {"padding": b.padding}
    if forms.stride_arg:
        out[forms.stride_arg] = _spelled(forms.stride_lengths, forms.allow_int, b.stride, n)
    if b.dilation != 1:
        out[forms.dilation_arg] = _spelled(forms.dilation_lengths, forms.allow_int, b.dilation, n)
    if kind(b) == "transposed":
        if b.out is None:
            raise ValueError(f"{b.name}: a transposed op needs its output shape (out)")
        out["output_shape"] = list(b.out)
    return out


def _windows(b: Bench) -> tuple[Window, ...]:
    """The spatial windows of the forward correlation: for a transpose, the convolution it is the adjoint of."""
    sizes = (b.out if kind(b) == "transposed" else b.x)[1:-1]
    wins = spec_of(b).windows(sizes, b.w_shape[:-2], attrs(b))
    if kind(b) == "transposed":  # the forward convolution of the output must give back the input's size
        assert tuple(w.out for w in wins) == tuple(b.x[1:-1]), f"{b.name}: unreachable output_shape {b.out}"
    return wins


def geometry(b: Bench) -> Geometry:
    """Output shape, multiply-adds and im2col dimensions of ``b`` (see the module docstring for the definitions)."""
    wins = _windows(b)
    n, c = b.x[0], b.x[-1]
    taps, outs = math.prod(b.w_shape[:-2]), math.prod(w.out for w in wins)
    f_in, f_out = b.w_shape[-2:]
    k_ = kind(b)
    if k_ == "conv":  # w: [*kernel, C / groups, C_out]
        return Geometry(
            (n, *(w.out for w in wins), f_out), n * outs * taps * f_in * f_out, taps * c, n * outs, c // f_in
        )
    if k_ == "depthwise":  # w: [*kernel, C, M]
        return Geometry((n, *(w.out for w in wins), c * f_out), n * outs * taps * c * f_out, taps * c, n * outs)
    # transposed; w: [*kernel, C_out, C_in]; x: [N, *in, C_in]
    pixels = n * math.prod(b.x[1:-1])
    return Geometry(tuple(b.out), pixels * taps * f_in * f_out, taps * f_in, pixels)


def flops(b: Bench) -> int:
    """2 x the direct convolution's multiply-adds."""
    return 2 * geometry(b).macs


def im2col_bytes(b: Bench) -> int:
    """Size of ``b``'s full float64 im2col matrix, K x M x 8 bytes."""
    g = geometry(b)
    return g.im2col_rows * g.im2col_cols * ACC_BYTES


def shape_label(b: Bench) -> str:
    """``1x56x56x64 * 3x3x64x64 /1`` (input * filter /stride, dilation d; ``-> output`` for a transpose)."""
    dims = lambda s: "x".join(map(str, s))  # noqa: E731
    label = f"{dims(b.x)} * {dims(b.w_shape)} /{b.stride}"
    if b.dilation != 1:
        label += f" d{b.dilation}"
    if b.out is not None:
        label += f" -> {dims(b.out)}"
    return label if b.padding == "SAME" else f"{label} {b.padding}"


# --- the implementations ------------------------------------------------------------------


def operands(b: Bench, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """The data (channels-last) and filter operands by the op's argument names, uniform in [-1, 1)."""
    rng = np.random.default_rng(seed)
    spec = spec_of(b)
    x = rng.uniform(-1, 1, b.x).astype(dtype)
    return {spec.data.name: x, spec.kernel_operand.name: rng.uniform(-1, 1, b.w_shape).astype(dtype)}


def reference_call(b: Bench, arrays: dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    spec, kw = spec_of(b), attrs(b)
    return lambda: spec.call(spec.reference, arrays, kw)


def tensorflow_call(b: Bench, arrays: dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    """``tf.nn.<op>`` eagerly through ``harness.tf.wrappers`` (NumPy in, NumPy out)."""
    args, kwargs = spec_of(b).arguments(arrays, attrs(b))
    return lambda: wrappers.call(b.op, args, kwargs)


def lax_reference_module():
    """``jax._src.lax_reference``, or None when jax is not installed."""
    try:
        from jax._src import lax_reference
    except ImportError:
        return None
    return lax_reference


def lax_formulation(b: Bench, arrays: dict[str, np.ndarray], lax) -> tuple[Callable | None, str]:
    """A thunk computing ``b`` with ``lax.conv_general_dilated`` (a correlation; NumPy in the operands' dtype), and a
    note. Dimension numbers are the op's layouts (NWC / NHWC / NDHWC, and the filter's).

    conv: direct, TensorFlow's SAME pads passed explicitly, ``rhs_dilation``, ``feature_group_count`` for a grouped
    layer. depthwise: ``feature_group_count`` (kernel [*kernel, 1, C*M]). transposes: the correlation of the
    stride-dilated input (``lhs_dilation``) with the spatially flipped kernel read as [*kernel, O, I], padded
    ``k_eff - 1 - pad_before`` before and whatever gives the output size after. lax_reference's own signature may
    lack ``feature_group_count``: then "n/a". The caller checks the result against the reference before timing it.
    """
    import inspect

    spec, g, wins = spec_of(b), geometry(b), _windows(b)
    x, w = arrays[spec.data.name], arrays[spec.kernel_operand.name]
    fmt = spec.formats[0]
    n = len(fmt) - 2
    strides, dilation = (b.stride,) * n, (b.dilation,) * n
    grouped = kind(b) == "depthwise" or g.groups > 1
    if grouped and "feature_group_count" not in inspect.signature(lax.conv_general_dilated).parameters:
        return None, "n/a: lax_reference.conv_general_dilated has no feature_group_count"
    if kind(b) == "conv":
        pads = [(win.pad_before, win.pad_after) for win in wins]
        extra = {"feature_group_count": g.groups} if g.groups > 1 else {}
        dims = (fmt, filter_layout(b), fmt)
        return (
            lambda: lax.conv_general_dilated(x, w, strides, pads, (1,) * n, dilation, dims, **extra)
        ), "grouped" if extra else "direct"
    if kind(b) == "depthwise":
        w_grouped = w.reshape(*w.shape[:-2], 1, -1)  # [*kernel, C, M] -> [*kernel, 1, C*M], channel-major like TF
        pads = [(win.pad_before, win.pad_after) for win in wins]
        return (
            lambda: lax.conv_general_dilated(
                x, w_grouped, strides, pads, (1,) * n, dilation, (fmt, filter_layout(b).replace("M", "O"), fmt),
                feature_group_count=b.x[-1],
            )
        ), "grouped"  # fmt: skip
    pads = []
    for win, n_in in zip(wins, b.x[1:-1]):
        before = win.effective_kernel - 1 - win.pad_before
        spread = (n_in - 1) * win.stride + 1
        pads.append((before, win.size + win.effective_kernel - 1 - spread - before))
    w_flipped = w[(slice(None, None, -1),) * n]
    return (
        lambda: lax.conv_general_dilated(x, w_flipped, (1,) * n, pads, strides, dilation, (fmt, filter_layout(b), fmt))
    ), "lhs_dilation, flipped kernel"


def pixel_loop_conv2d(x_nhwc: np.ndarray, w_hwio: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """The seed tutorials' formulation: for every output pixel and output channel, ``np.sum`` over its window.

    x: [N, H, W, C_in]; w: [kh, kw, C_in, C_out] -> [N, OH, OW, C_out], summed in float64 and cast to x's dtype.
    (``harness.conv.textbook`` holds the documents' formulations vectorized; this is their loop, kept for timing.)
    """
    n, h, w, _ = x_nhwc.shape
    kh, kw, _, c_out = w_hwio.shape
    wh, ww = window("conv2d", h, kh, stride, 1, padding), window("conv2d", w, kw, stride, 1, padding)
    x_pad = np.pad(
        x_nhwc.astype(np.float64), [(0, 0), (wh.pad_before, wh.pad_after), (ww.pad_before, ww.pad_after), (0, 0)]
    )
    w64 = w_hwio.astype(np.float64)
    out = np.zeros((n, wh.out, ww.out, c_out))
    for b in range(n):
        for i in range(wh.out):
            for j in range(ww.out):
                roi = x_pad[b, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
                for o in range(c_out):
                    out[b, i, j, o] = np.sum(roi * w64[:, :, :, o])
    return out.astype(x_nhwc.dtype)


# --- measuring ----------------------------------------------------------------------------


def agrees(got: np.ndarray, want: np.ndarray) -> bool:
    """Results of the same sum: equal shapes and within 1e-4 of the output's scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-4, atol=1e-4 * scale))


def gemm_operands(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)


def gemm_gflops(a: np.ndarray, b: np.ndarray, runs: int) -> float:
    """GFLOP/s of ``a @ b`` (square n x n, 2 n^3 FLOPs), the median over ``runs`` products."""
    return 2 * a.shape[0] ** 3 / median(repeated(lambda: a @ b, 0, runs)) / 1e9


def layer_gemm_seconds(b: Bench, repeat: int) -> float | None:
    """Median seconds of the float64 matrix products that hold all of ``b``'s multiply-adds, on random operands.

    conv: im2col [M, K / G] @ filter [K / G, C_out / G], once per group G; a transpose: input pixels [M_in, C_in] @
    [C_in, taps * C_out]. It is what OpenBLAS does with this layer's matrix shapes, without building any im2col
    matrix: the ceiling of an im2col reference. None for depthwise (no GEMM).
    """
    g = geometry(b)
    rng = np.random.default_rng(2)
    if kind(b) == "conv":
        m, k, n, groups = g.im2col_cols, g.im2col_rows // g.groups, b.w_shape[-1] // g.groups, g.groups
    elif kind(b) == "transposed":
        m, k, n, groups = g.im2col_cols, b.x[-1], g.im2col_rows, 1
    else:
        return None
    lhs, rhs = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    return median(repeated(lambda: [lhs @ rhs for _ in range(groups)], 1, repeat))


def peak_bytes(fn: Callable[[], object]) -> int:
    """tracemalloc's peak during ``fn()``: everything it allocates, its result included, what existed before not.

    (Only allocations made after ``start()`` are traced, so earlier garbage needs no collection first.)
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak


def loop_seconds_per_mac(b: Bench, repeat: int) -> dict:
    """Time the pixel loop on the small conv2d ``b``: seconds per multiply-add (median of ``repeat`` runs)."""
    arrays = operands(b)
    x, w = arrays["input"], arrays["filters"]
    want = reference_call(b, arrays)()
    got = pixel_loop_conv2d(x, w, b.stride, b.padding)
    times = repeated(lambda: pixel_loop_conv2d(x, w, b.stride, b.padding), 0, repeat)
    seconds = median(times)
    macs = geometry(b).macs
    return {
        "shape": shape_label(b),
        "macs": macs,
        "seconds": seconds,
        "times_s": times,
        "seconds_per_mac": seconds / macs,
        "agrees_with_reference": agrees(got, want),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _lax_entry(fn: Callable | None, note: str, times: list[float] | None) -> dict:
    if fn is None:
        return {"status": "n/a" if note != "not installed" else "not installed", "reason": note}
    return {"status": "ok", "formulation": note, "median_s": median(times or []), "times_s": times}


def bench_row(b: Bench, settings: Settings, gemm64_now: float, tf_available: bool, lax) -> dict:
    """Measure one Bench; returns its JSON row (``None`` where a column does not apply)."""
    g, n_flops = geometry(b), flops(b)
    arrays = operands(b)
    reference_32 = reference_call(b, arrays)
    row = {
        "name": b.name,
        "op": b.op,
        "kind": kind(b),
        "shape": shape_label(b),
        "input": b.x,
        "filter": b.w_shape,
        "filter_layout": filter_layout(b),
        "output": g.out,
        "strides": b.stride,
        "dilation": b.dilation,
        "padding": b.padding,
        "groups": g.groups,
        "memory_only": b.memory_only,
        "flops": n_flops,
        "macs": g.macs,
        "im2col": {"rows_K": g.im2col_rows, "cols_M": g.im2col_cols, "bytes": im2col_bytes(b)},
        "gemm_f64_gflops_before": gemm64_now,
    }
    if not b.memory_only:
        arrays_64 = operands(b, dtype=np.float64)
        reference_64 = reference_call(b, arrays_64)
        want = reference_32()
        calls: dict[str, Callable[[], object]] = {"reference": reference_32, "reference_f64": reference_64}
        if tf_available:
            tf_agrees = agrees(tensorflow_call(b, arrays)(), want)  # also TensorFlow's first (warm-up) call
            calls["tensorflow"] = tensorflow_call(b, arrays)
        lax_notes = {}
        for key, operands_ in (("lax_reference", arrays), ("lax_reference_f64", arrays_64)):
            fn, note = (None, "not installed") if lax is None else lax_formulation(b, operands_, lax)
            if fn is not None and not agrees(fn(), want):
                fn, note = None, f"n/a: the formulation ({note}) disagrees with the reference"
            if fn is not None:
                calls[key] = fn
            lax_notes[key] = (fn, note)
        times = interleaved(calls, settings.warmup, b.repeat or settings.repeat)
        ref_s = median(times["reference"])
        row["reference"] = {"median_s": ref_s, "times_s": times["reference"], "gflops": n_flops / ref_s / 1e9}
        row["reference_f64"] = {"median_s": median(times["reference_f64"]), "times_s": times["reference_f64"]}
        row["tensorflow"] = (
            {
                "status": "ok",
                "median_s": median(times["tensorflow"]),
                "times_s": times["tensorflow"],
                "agrees_with_reference": tf_agrees,
            }
            if tf_available
            else {"status": "not installed"}
        )
        for key, (fn, note) in lax_notes.items():
            row[key] = _lax_entry(fn, note, times.get(key))
        row["ratio_vs_tensorflow"] = _ratio(ref_s, row["tensorflow"].get("median_s"))
        row["ratio_vs_lax_reference"] = _ratio(ref_s, row["lax_reference"].get("median_s"))
        row["ratio_vs_lax_reference_f64"] = _ratio(
            row["reference_f64"]["median_s"], row["lax_reference_f64"].get("median_s")
        )
        row["lax_reference_vs_tensorflow"] = _ratio(
            row["lax_reference"].get("median_s"), row["tensorflow"].get("median_s")
        )
        layer_s = layer_gemm_seconds(b, b.repeat or settings.repeat)
        row["layer_gemm"] = (
            None
            if layer_s is None
            else {"median_s": layer_s, "gflops": n_flops / layer_s / 1e9, "share_of_layer_gemm": layer_s / ref_s}
        )
        del want, calls, arrays_64
    start = time.perf_counter()
    peak = peak_bytes(reference_32)
    row["memory"] = {
        "peak_bytes": peak,
        "im2col_bytes": im2col_bytes(b),
        "peak_over_im2col": peak / im2col_bytes(b),
        "seconds_under_tracemalloc": time.perf_counter() - start,
    }
    return row


def finish_rows(rows: list[dict], gemm64_median: float, loop: dict) -> None:
    """Add what needs the whole run: share of the median float64 GEMM rate, the loop's extrapolated time."""
    for row in rows:
        if "reference" in row:
            row["reference"]["share_of_gemm_f64"] = row["reference"]["gflops"] / gemm64_median
        if row.get("layer_gemm"):
            row["layer_gemm"]["share_of_gemm_f64"] = row["layer_gemm"]["gflops"] / gemm64_median
        if row["op"] == "conv2d" and not row["memory_only"] and row["groups"] == 1:
            row["pixel_loop_extrapolated_s"] = row["macs"] * loop["seconds_per_mac"]


# --- targets ------------------------------------------------------------------------------


def _target(key: str, text: str, measured: float | None, threshold: float, met: bool | None, detail: str) -> dict:
    status = "n/a" if measured is None or met is None else ("MET" if met else "MISSED")
    return {
        "key": key,
        "target": text,
        "measured": measured,
        "threshold": threshold,
        "status": status,
        "detail": detail,
    }


def targets(rows: list[dict]) -> list[dict]:
    """Each target with its measured value and MET / MISSED ("n/a" when no row measures it)."""
    timed = [r for r in rows if not r["memory_only"]]
    gemm_rows = [r for r in timed if r["kind"] in ("conv", "transposed") and r.get("layer_gemm")]
    shares = [r["layer_gemm"]["share_of_layer_gemm"] for r in gemm_rows]
    vs_tf = [r for r in timed if r["ratio_vs_tensorflow"] is not None]
    dw = [r for r in vs_tf if r["kind"] == "depthwise" or r["groups"] > 1]
    lax64 = [r["ratio_vs_lax_reference_f64"] for r in timed if r["ratio_vs_lax_reference_f64"] is not None]
    mem = [r for r in rows if "memory" in r]
    big = [r for r in rows if r["memory_only"]]
    out = []
    m = median(shares)
    out.append(
        _target(
            "layer_gemm_median",
            "conv and transposed layers: median share of their own layer GEMM's rate >= 70%",
            m,
            LAYER_GEMM_MEDIAN,
            None if m is None else m >= LAYER_GEMM_MEDIAN,
            f"median over {len(shares)} layers",
        )
    )
    worst = min(gemm_rows, key=lambda r: r["layer_gemm"]["share_of_layer_gemm"], default=None)
    lo = None if worst is None else worst["layer_gemm"]["share_of_layer_gemm"]
    out.append(
        _target(
            "layer_gemm_floor",
            "conv and transposed layers: none below 45% of its own layer GEMM's rate",
            lo,
            LAYER_GEMM_FLOOR,
            None if lo is None else lo >= LAYER_GEMM_FLOOR,
            "" if worst is None else f"lowest: {worst['name']}",
        )
    )
    for key, text, chosen in (
        ("vs_tensorflow", "every layer: reference time within 3x of TensorFlow's", vs_tf),
        ("depthwise_grouped_vs_tensorflow", "depthwise and grouped layers: within 3x of TensorFlow's", dw),
    ):
        worst = max(chosen, key=lambda r: r["ratio_vs_tensorflow"], default=None)
        hi = None if worst is None else worst["ratio_vs_tensorflow"]
        out.append(
            _target(
                key,
                text,
                hi,
                VS_TF,
                None if hi is None else hi <= VS_TF,
                "" if worst is None else f"largest ratio: {worst['name']}",
            )
        )
    m = median(lax64)
    out.append(
        _target(
            "vs_lax_reference",
            "faster than JAX's lax_reference at equal precision: median time ratio reference/lax on float64 < 1",
            m,
            VS_LAX,
            None if m is None else m < VS_LAX,
            f"median over {len(lax64)} layers with a lax_reference formulation (float32: the ref/lax column)",
        )
    )
    worst = max(mem, key=lambda r: r["memory"]["peak_over_im2col"], default=None)
    hi = None if worst is None else worst["memory"]["peak_over_im2col"]
    out.append(
        _target(
            "peak_over_im2col",
            "tracemalloc peak of a reference call <= 3x its float64 im2col size",
            hi,
            PEAK_OVER_IM2COL,
            None if hi is None else hi <= PEAK_OVER_IM2COL,
            "" if worst is None else f"largest: {worst['name']}",
        )
    )
    worst = max(big, key=lambda r: r["memory"]["peak_bytes"], default=None)
    hi = None if worst is None else worst["memory"]["peak_bytes"]
    out.append(
        _target(
            "memory_only_peak",
            "memory-only shape (im2col > 1 GiB): peak < 1 GiB, no full im2col held",
            hi,
            PEAK_LIMIT,
            None if hi is None else hi < PEAK_LIMIT,
            "" if worst is None else f"{worst['name']}: im2col {worst['im2col']['bytes'] / 1e9:.2f} GB",
        )
    )
    return out


def against_baseline(rows: list[dict], baseline: dict) -> dict:
    """Each layer's reference time over its time in ``baseline`` (an earlier run's bench.json, on the same machine:
    times from another machine do not compare), as ``ratio_vs_baseline`` in the rows, and the target that none is
    more than ``NOT_SLOWER`` times slower (layers the baseline does not have are left out)."""
    before = {r["name"]: r["reference"]["median_s"] for r in baseline.get("rows", []) if "reference" in r}
    compared = []
    for row in rows:
        if "reference" in row and before.get(row["name"]):
            row["ratio_vs_baseline"] = row["reference"]["median_s"] / before[row["name"]]
            compared.append(row)
    worst = max(compared, key=lambda r: r["ratio_vs_baseline"], default=None)
    hi = None if worst is None else worst["ratio_vs_baseline"]
    return _target(
        "not_slower_than_baseline",
        f"no layer's reference slower than {NOT_SLOWER:g}x its time in the --baseline run",
        hi,
        NOT_SLOWER,
        None if hi is None else hi <= NOT_SLOWER,
        f"{len(compared)} layers compared" + ("" if worst is None else f"; largest ratio: {worst['name']}"),
    )


# --- output -------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _x(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def _lax(row: dict, key: str, ratio: str) -> str:
    """A ref/lax cell ("-" in a bench.json written before that column existed)."""
    if key not in row:
        return "-"
    return _x(row[ratio]) if row[key]["status"] == "ok" else "n/a"


def table(rows: list[dict]) -> str:
    """One line per shape (the columns of the JSON rows)."""
    head = (
        "name",
        "op",
        "shape",
        "ref ms",
        "TF ms",
        "ref/TF",
        "GFLOP/s",
        "%GEMM64",
        "%layer GEMM",
        "ref/lax f64",
        "ref/lax f32",
        "peak/im2col",
    )
    lines = []
    for r in rows:
        if r["memory_only"]:
            cells = (r["name"], r["op"], r["shape"], *["-"] * 8, _x(r["memory"]["peak_over_im2col"]))
        else:
            ref, tf = r["reference"], r["tensorflow"]
            layer = r.get("layer_gemm")
            cells = (
                r["name"],
                r["op"],
                r["shape"],
                _ms(ref["median_s"]),
                _ms(tf.get("median_s")) if tf["status"] == "ok" else tf["status"],
                _x(r["ratio_vs_tensorflow"]),
                f"{ref['gflops']:.1f}",
                f"{ref['share_of_gemm_f64'] * 100:.0f}%",
                f"{layer['share_of_layer_gemm'] * 100:.0f}%" if layer and "share_of_layer_gemm" in layer else "-",
                _lax(r, "lax_reference_f64", "ratio_vs_lax_reference_f64"),
                _lax(r, "lax_reference", "ratio_vs_lax_reference"),
                _x(r["memory"]["peak_over_im2col"]),
            )
        lines.append(cells)
    return aligned(head, lines, left=3)  # name, op, shape left-aligned; numbers right-aligned


def report_text(doc: dict) -> str:
    """The whole printed report: settings, table, GEMM rates, loop extrapolation, targets."""
    env, gemm = doc["environment"], doc["gemm"]
    g64, g32 = gemm["float64"], gemm["float32"]
    out = [
        f"TensorFlow {env['tensorflow']} (oneDNN {env['onednn']}, intra-op threads {env['intra_op_threads']}, "
        f"inter-op {env['inter_op_threads']}), NumPy {env['numpy']} ({env['blas']}), jax {env['jax']}, "
        f"{env['cpu_count']} CPUs; allocator: {env.get('allocator', 'glibc default')}",
        "",
        table(doc["rows"]),
        "",
        *([int8.table(doc["int8_rows"]), ""] if doc.get("int8_rows") else []),
        f"GEMM {g64['n']}x{g64['n']} float64: median {g64['median_gflops']:.1f} GFLOP/s over "
        f"{len(g64['samples_gflops'])} samples (range {min(g64['samples_gflops']):.1f}-"
        f"{max(g64['samples_gflops']):.1f}); float32: median {g32['median_gflops']:.1f} GFLOP/s",
        "",
    ]
    loop = doc["pixel_loop"]
    out.append(
        f"Pixel loop (the documents' per-pixel, per-channel np.sum) on {loop['shape']}: "
        f"{loop['seconds'] * 1e3:.1f} ms = {loop['seconds_per_mac'] * 1e9:.1f} ns per multiply-add; "
        f"extrapolated by multiply-adds:"
    )
    for r in doc["rows"]:
        if "pixel_loop_extrapolated_s" in r:
            out.append(
                f"  {r['name']:<24} ~{r['pixel_loop_extrapolated_s']:.1e} s (extrapolated)  "
                f"vs reference {_ms(r['reference']['median_s'])} ms"
            )
    out += ["", "Targets:"]
    for t in doc["targets"]:
        if t["measured"] is None:
            value = "-"
        elif t["key"] == "memory_only_peak":
            value = f"{t['measured'] / 2**20:.1f} MiB"
        elif t["key"].startswith("layer_gemm"):
            value = f"{t['measured'] * 100:.0f}%"
        else:
            value = f"{t['measured']:.2f}"
        out.append(f"  [{t['status']:>6}] {t['target']}: {value}" + (f" ({t['detail']})" if t["detail"] else ""))
    return "\n".join(out)


def chart(doc: dict, path: Path) -> None:
    """bench.png: share of the float64 GEMM rate per shape, and time ratios vs TensorFlow (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    rows = [r for r in doc["rows"] if not r["memory_only"]]
    labels = [f"{r['name']}\n{r['shape']}" for r in rows]
    y = np.arange(len(rows))
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    colors = {op: palette[i % len(palette)] for i, op in enumerate(dict.fromkeys(r["op"] for r in rows))}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 2.5 + 0.55 * max(len(rows), 1)), sharey=True)
    shares = [r["reference"]["share_of_gemm_f64"] * 100 for r in rows]
    bars = ax1.barh(y, shares, color=[colors[r["op"]] for r in rows])
    ax1.bar_label(bars, fmt="%.0f%%", padding=2, fontsize=8)
    ceiling = [(i, r["layer_gemm"]["share_of_gemm_f64"] * 100) for i, r in enumerate(rows) if r.get("layer_gemm")]
    if ceiling:
        ax1.scatter(
            [v for _, v in ceiling],
            [i for i, _ in ceiling],
            marker="|",
            s=250,
            color="k",
            zorder=3,
            label="the layer's own GEMM, operands ready (ceiling of an im2col reference)",
        )
    handles = ax1.get_legend_handles_labels()[0] + [Patch(color=c, label=op) for op, c in colors.items()]
    ax1.set_xlim(
        0, max([100.0] + [v * 1.12 for v in shares] + [v * 1.12 for _, v in ceiling])
    )  # room for the bar labels
    ax1.set_yticks(y, labels, fontsize=8)
    ax1.invert_yaxis()
    ax1.set_xlabel(
        f"reference GFLOP/s as % of the float64 GEMM rate ({doc['gemm']['float64']['median_gflops']:.1f} "
        "GFLOP/s, run median)"
    )
    ax1.set_title("NumPy reference: share of the float64 GEMM rate")
    ax1.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    ref_tf = [r["ratio_vs_tensorflow"] for r in rows]
    lax_tf = [r["lax_reference_vs_tensorflow"] for r in rows]
    for offset, values, label, color in (
        (-0.2, ref_tf, "reference / TensorFlow", "tab:blue"),
        (0.2, lax_tf, "lax_reference / TensorFlow", "tab:purple"),
    ):
        keep = [i for i, v in enumerate(values) if v is not None]
        if keep:
            bars = ax2.barh(y[keep] + offset, [values[i] for i in keep], height=0.4, color=color, label=label)
            ax2.bar_label(bars, fmt="%.2g", padding=2, fontsize=7)
    ax2.axvline(1.0, color="k", lw=1, label="as fast as TensorFlow")
    ax2.axvline(VS_TF, color="tab:orange", ls=":", lw=1.5, label="3x: target for every layer")
    ax2.set_xscale("log")
    shown = [v for v in ref_tf + lax_tf if v is not None] + [1.0, VS_TF]
    ax2.set_xlim(min(shown) / 1.5, max(shown) * 1.5)
    # 0.5, 1, 2 rather than 5 x 10^-1; of the minor ticks only 2, 3 and 5 x 10^k are labelled (the rest crowd)
    ax2.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax2.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
    ax2.tick_params(axis="x", which="minor", labelsize=7)
    ax2.set_xlabel("time / TensorFlow's time (log scale; < 1 is faster)")
    ax2.set_title("Time relative to TensorFlow (median of warm runs)")
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.suptitle(
        f"bench.run: float32 channels-last, {doc['environment']['cpu_count']} CPUs, TensorFlow "
        f"{doc['environment']['tensorflow']} (oneDNN {doc['environment']['onednn']})",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


# --- environment and main -----------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict:
    """The run's environment record (``harness.tf.environment``) plus jax, matplotlib and NumPy's BLAS."""
    env = Environment.current().record()
    try:  # numpy >= 1.25; "Build Dependencies" names the BLAS it was built with
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        env["blas"] = f"{blas.get('name')} {blas.get('version')}"
        env["blas_config"] = blas.get("openblas configuration", "")
    except Exception:  # noqa: BLE001 - information only
        env["blas"] = "unknown"
    env["jax"] = _version("jax")
    env["matplotlib"] = _version("matplotlib")
    env["python_implementation"] = platform.python_implementation()
    env["thread_env"] = {
        k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
    }
    return env


NOTES = [
    "Times are medians of warm runs, the implementations interleaved (reference, TensorFlow, lax_reference, ...).",
    "TensorFlow is called eagerly through harness.wrappers: NumPy in, NumPy out, so its times include copying the "
    "operands into tensors and the result back.",
    "The reference takes float32 and accumulates in float64 (its output is float32); reference_f64 and "
    "lax_reference_f64 take float64 operands (equal precision: the vs_lax_reference target); lax_reference "
    "computes in the input dtype, float32; TensorFlow in float32.",
    "layer GEMM: the float64 products holding all of a layer's multiply-adds (conv: im2col [M, K/G] @ [K/G, C_out/G] "
    "once per group G; a transpose: [M_in, C_in] @ [C_in, taps*C_out]) on ready random operands; share_of_layer_gemm "
    "= its time / the reference's (the reference's rate as a share of what OpenBLAS reaches on the layer's own "
    "matrix shapes, the ceiling of an im2col reference). No GEMM for depthwise.",
    "share_of_gemm_f64 = reference GFLOP/s / the median float64 GEMM rate of the run (a @ b, n x n, measured before "
    "every shape); GFLOP/s use the direct-convolution FLOP count 2 x multiply-adds.",
    "FLOPs: 2 x multiply-adds: conv N*prod(out)*prod(kernel)*C_in/G*C_out; depthwise N*prod(out)*prod(kernel)*C*M; "
    "a transpose N*prod(in)*prod(kernel)*C_in*C_out.",
    "im2col bytes = K x M x 8 (float64): conv K=prod(kernel)*C_in (all groups), M=N*prod(out); depthwise "
    "K=prod(kernel)*C; a transpose: the im2col of the forward convolution it is the input-gradient of, "
    "K=prod(kernel)*C_out, M=N*prod(in).",
    "Peak memory: tracemalloc peak during one reference call (float32 operands); the operands exist before tracing "
    "starts and do not count, the output (float64 accumulator and float32 result) does.",
    "lax_reference: jax._src.lax_reference.conv_general_dilated, checked against the reference (np.allclose) before "
    "timing; n/a where no formulation exists (its conv_general_dilated has no feature_group_count) or it disagrees.",
    "int8 rows: a one-op int8 TFLite model of each conv2d and depthwise layer (per-channel weights, int32 bias) run "
    "by tf.lite's default op resolver (XNNPACK, every core), against harness.conv.quantized on the same integers "
    "under XNNPACK's float32 requantization; bit_exact compares their outputs. Set/invoke/get of the interpreter "
    "count, the model's build and allocation do not.",
    "Pixel loop: a Python loop over output pixels and output channels with np.sum over each window, timed on a "
    "small shape; its per-multiply-add time is extrapolated (not measured) to the large ungrouped conv2d shapes.",
]


def run(benches: Sequence[Bench], settings: Settings, log=sys.stderr) -> dict:
    """Measure every Bench; returns the bench.json document."""
    env = environment()
    tf_available = env["tensorflow"] != "not installed"
    lax = lax_reference_module()
    a64, b64 = gemm_operands(settings.gemm_n, np.float64)
    a32, b32 = gemm_operands(settings.gemm_n, np.float32)
    gemm_gflops(a64, b64, 1)  # warm-up: BLAS starts its threads
    g32 = [gemm_gflops(a32, b32, settings.gemm_runs)]
    g64: list[float] = []
    rows = []
    for i, b in enumerate(benches, 1):
        g64.append(gemm_gflops(a64, b64, settings.gemm_runs))
        print(f"[{i}/{len(benches)}] {b.op} {b.name} ({shape_label(b)})", file=log, flush=True)
        rows.append(bench_row(b, settings, g64[-1], tf_available, lax))
    g64.append(gemm_gflops(a64, b64, settings.gemm_runs))
    g32.append(gemm_gflops(a32, b32, settings.gemm_runs))
    del a64, b64, a32, b32
    int8_rows = []
    for b in (b for b in benches if tf_available and int8.covers(b)):
        print(f"[int8] {b.op} {b.name}", file=log, flush=True)
        int8_rows.append(int8.row(b, settings.warmup, b.repeat or settings.repeat))
    loop = loop_seconds_per_mac(settings.loop_bench, max(1, min(settings.repeat, 3)))
    gemm = {
        "float64": {"n": settings.gemm_n, "samples_gflops": g64, "median_gflops": median(g64)},
        "float32": {"n": settings.gemm_n, "samples_gflops": g32, "median_gflops": median(g32)},
    }
    finish_rows(rows, gemm["float64"]["median_gflops"], loop)
    return {
        "schema": 1,
        "environment": env,
        "run": {"started": None, "argv": results.argv(), "repeat": settings.repeat, "warmup": settings.warmup},
        "notes": NOTES,
        "gemm": gemm,
        "pixel_loop": loop,
        "rows": rows,
        "int8_rows": int8_rows,
        "targets": targets(rows) + [int8.target(int8_rows)],
    }


def select(benches: Sequence[Bench], only: Sequence[str] | None) -> list[Bench]:
    """The benches whose ``"<op> <name>"`` contains any of the substrings (all when ``only`` is empty)."""
    if not only:
        return list(benches)
    return [b for b in benches if any(s.lower() in f"{b.op} {b.name}".lower() for s in only)]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=_positive, default=None, help="timed runs per shape (default 7; 1 with --quick)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="directory for bench.json and bench.png")
    p.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="SUBSTRING",
        help="only the shapes whose '<op> <name>' contains one of these",
    )
    p.add_argument("--check", action="store_true", help="exit 1 when a target is MISSED")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="BENCH_JSON",
        help="an earlier run's bench.json on this machine: each layer's time against it (target: none over 1.1x)",
    )
    p.add_argument("--quick", action="store_true", help="tiny shapes, 1 repeat (a smoke test of the benchmark)")
    p.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc thresholds alone (by default freed memory is kept: bench.allocator)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    benches = select(QUICK_BENCHES if args.quick else BENCHES, args.only)
    if not benches:
        p.error(f"--only {' '.join(args.only)}: no benchmark matches")
    baseline = None
    if args.baseline is not None:
        try:
            baseline = json.loads(args.baseline.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            p.error(f"--baseline {args.baseline}: cannot read a bench.json ({exc})")
    # TensorFlow must use every core here (wrappers defaults to 1 thread for pytest workers); set before wrappers
    # imports TensorFlow, and here rather than at import so that importing this module changes nothing.
    os.environ.setdefault(wrappers.INTRA_ENV, str(os.cpu_count() or 1))
    # Freed NumPy temporaries stay in the process, as TensorFlow's own allocator keeps its memory (bench.allocator).
    allocator = "glibc default" if args.default_allocator else (retain_freed_memory() or "default (no mallopt)")
    settings = QUICK if args.quick else FULL
    if args.repeat is not None:
        settings = Settings(args.repeat, settings.warmup, settings.gemm_n, settings.gemm_runs, settings.loop_bench)
    started = results.now()
    doc = run(benches, settings)
    if baseline is not None:
        doc["targets"].append(against_baseline(doc["rows"], baseline))
        doc["baseline"] = {"file": str(args.baseline), "started": baseline.get("run", {}).get("started")}
    doc["run"].update(started=started, finished=results.now(), quick=args.quick)
    doc["environment"]["allocator"] = allocator
    print(report_text(doc))
    out = Path(args.out)
    atomic.write_atomic(out / "bench.json", json.dumps(results.jsonable(doc), indent=1, allow_nan=False) + "\n")
    chart(doc, out / "bench.png")
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.png'}")
    missed = [t["key"] for t in doc["targets"] if t["status"] == "MISSED"]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
