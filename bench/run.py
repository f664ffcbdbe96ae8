"""``python -m bench.run``: the NumPy reference timed against TensorFlow, JAX's lax_reference and a pixel loop.

    python -m bench.run [--repeat N] [--out DIR] [--only SUBSTRING ...] [--check] [--quick]

Every benchmark is one ``Bench`` line in ``BENCHES`` (ResNet-50, MobileNetV2 and decoder layers, float32, NHWC).
Per shape it measures, with the calls interleaved (reference, TensorFlow, lax_reference, reference, ...) so that the
noise of a shared VM hits all of them alike, the median of ``--repeat`` warm runs of:

* ``harness.conv.reference`` (float32 in, float64 accumulation, float32 out);
* TensorFlow through ``harness.wrappers`` (eager ``tf.nn``; NumPy in, NumPy out, so the host-to-tensor copies count);
* ``jax._src.lax_reference.conv_general_dilated`` (NumPy in float32, the input dtype; "n/a" where it has no
  formulation of the op, "not installed" without jax);

and, around one more reference call, its ``tracemalloc`` peak (NumPy reports its buffers to tracemalloc; the inputs
are allocated before tracing starts, the output during it). The float64 GEMM rate (``a @ b``, 2048 x 2048) is
measured before every shape and its median over the run is the yardstick of "share of GEMM rate".

Definitions (also in the JSON's ``notes``):

* FLOPs = 2 x multiply-adds of the direct convolution: conv2d ``2 N OH OW kh kw C_in C_out``; depthwise
  ``2 N OH OW kh kw C M``; conv2d_transpose ``2 N H_in W_in kh kw C_in C_out``.
* im2col bytes = ``K x M x 8`` (float64, the reference's accumulator): conv2d ``K = kh kw C_in``, ``M = N OH OW``;
  depthwise ``K = kh kw C``, ``M = N OH OW`` (the windows, shared by the M multipliers); conv2d_transpose the im2col
  of the forward conv2d it is the input-gradient of (input ``[N, OH, OW, C_out]``, output ``[N, H_in, W_in, C_in]``):
  ``K = kh kw C_out``, ``M = N H_in W_in``.

Outputs: a table on stdout, ``DIR/bench.json`` and ``DIR/bench.png``. The targets are reported, MET or MISSED; the
exit status is 0 unless ``--check`` is given and a target is MISSED.

This module imports TensorFlow only through ``harness.wrappers`` and jax / matplotlib only inside functions, so that
importing it (as the tests do) loads none of them.
"""

from __future__ import annotations

import argparse
import json
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

from bench.allocator import retain_freed_memory
from harness import atomic, ops
from harness.conv import reference
from harness.conv.padding import Window, window
from harness.reports import results
from harness.tf import wrappers
from harness.tf.environment import Environment

KINDS = ("conv", "depthwise", "transposed")  # the op kinds (harness.ops.KINDS) a Bench can time
ACC_BYTES = 8  # float64: the reference accumulates (and builds its im2col blocks) in float64
GIB = 1 << 30

# The targets (reported, never asserted by the tests).
GEMM_SHARE_MEDIAN = 0.75  # conv2d + conv2d_transpose: median share of the float64 GEMM rate
GEMM_SHARE_FLOOR = 0.40  # ... and no such shape below this
DEPTHWISE_VS_TF = 3.0  # depthwise reference time at most 3x TensorFlow's
VS_LAX = 1.0  # median reference / lax_reference time below 1
PEAK_OVER_IM2COL = 3.0  # tracemalloc peak at most 3x the im2col size
PEAK_LIMIT = GIB  # memory-only shapes (im2col > 1 GiB): peak below 1 GiB, the full im2col is never held


@dataclass(frozen=True)
class Bench:
    """One benchmark shape: float32 operands, NHWC input, dilation 1.

    x_nhwc: the input's shape. w_shape: the filter's, in the op's layout (its ``OpSpec``): conv2d HWIO
    ``[kh, kw, C_in, C_out]``, depthwise_conv2d HWIM ``[kh, kw, C, M]``, conv2d_transpose HWOI
    ``[kh, kw, C_out, C_in]``. out_nhwc: conv2d_transpose's ``output_shape`` (None for the other ops).
    memory_only: only the reference's tracemalloc peak is measured (no timing, no TensorFlow).
    """

    name: str
    op: str
    x_nhwc: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    stride: int = 1
    padding: str = "SAME"
    out_nhwc: tuple[int, int, int, int] | None = None
    memory_only: bool = False


BENCHES = (
    # ResNet-50: the 3x3 convolutions of conv2_x .. conv5_x, the stem and a 1x1 bottleneck reduction.
    Bench("resnet50 conv2_x", "conv2d", (1, 56, 56, 64), (3, 3, 64, 64)),
    Bench("resnet50 conv2_x b8", "conv2d", (8, 56, 56, 64), (3, 3, 64, 64)),
    Bench("resnet50 conv3_x", "conv2d", (1, 28, 28, 128), (3, 3, 128, 128)),
    Bench("resnet50 conv4_x", "conv2d", (1, 14, 14, 256), (3, 3, 256, 256)),
    Bench("resnet50 conv5_x", "conv2d", (1, 7, 7, 512), (3, 3, 512, 512)),
    Bench("resnet50 stem 7x7/2", "conv2d", (1, 224, 224, 3), (7, 7, 3, 64), stride=2),
    Bench("resnet50 1x1 256->64", "conv2d", (1, 56, 56, 256), (1, 1, 256, 64)),
    # MobileNetV2 depthwise layers (multiplier 1).
    Bench("mobilenetv2 dw 112", "depthwise_conv2d", (1, 112, 112, 32), (3, 3, 32, 1)),
    Bench("mobilenetv2 dw 56/2", "depthwise_conv2d", (1, 56, 56, 144), (3, 3, 144, 1), stride=2),
    # Decoder upsampling layers.
    Bench(
        "upsample 16->32 3x3",
        "conv2d_transpose",
        (1, 16, 16, 256),
        (3, 3, 128, 256),
        stride=2,
        out_nhwc=(1, 32, 32, 128),
    ),
    Bench(
        "upsample 32->64 4x4", "conv2d_transpose", (1, 32, 32, 128), (4, 4, 64, 128), stride=2, out_nhwc=(1, 64, 64, 64)
    ),
    # Memory only: its float64 im2col would be 576 x 401408 x 8 B = 1.85 GB.
    Bench("memory-only 8x224x224x64", "conv2d", (8, 224, 224, 64), (3, 3, 64, 64), memory_only=True),
)

# --quick: tiny stand-ins for every kind of row (the test runs these), one repeat.
QUICK_BENCHES = (
    Bench("quick conv2d 3x3", "conv2d", (1, 8, 8, 8), (3, 3, 8, 8)),
    Bench("quick stem 7x7/2", "conv2d", (1, 16, 16, 3), (7, 7, 3, 8), stride=2),
    Bench("quick dw x2 /2", "depthwise_conv2d", (1, 8, 8, 4), (3, 3, 4, 2), stride=2),
    Bench("quick upsample 3x3", "conv2d_transpose", (1, 4, 4, 8), (3, 3, 4, 8), stride=2, out_nhwc=(1, 8, 8, 4)),
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
    """What a Bench computes: output shape, the multiply-adds, and its im2col matrix (K rows x M columns)."""

    out_nhwc: tuple[int, int, int, int]
    macs: int
    im2col_rows: int  # K
    im2col_cols: int  # M


def kind(b: Bench) -> str:
    """The op's kind (``harness.ops.KINDS``), which decides the geometry; only ``KINDS`` are benchmarked."""
    k = ops.get(b.op).kind
    if k not in KINDS or ops.get(b.op).rank != 4:
        raise ValueError(f"{b.name}: op {b.op!r} (kind {k}) is not a 2-D op of kind {', '.join(KINDS)}")
    return k


def filter_layout(b: Bench) -> str:
    """The filter layout of ``b.w_shape``: the op's own (HWIO, HWIM; HWOI = [h, w, out, in])."""
    return ops.get(b.op).filter.layout


def _windows(b: Bench) -> tuple[Window, Window]:
    """The two spatial windows of the forward correlation: for conv2d_transpose, the conv2d it is the adjoint of."""
    kh, kw = b.w_shape[:2]
    if kind(b) == "transposed":
        assert b.out_nhwc is not None, f"{b.name}: conv2d_transpose needs out_nhwc"
        wins = (
            window(b.op, b.out_nhwc[1], kh, b.stride, 1, b.padding),
            window(b.op, b.out_nhwc[2], kw, b.stride, 1, b.padding),
        )
        # The forward conv2d of the output must give back the input's spatial size (as tf.nn checks).
        assert (wins[0].out, wins[1].out) == b.x_nhwc[1:3], f"{b.name}: unreachable output_shape {b.out_nhwc}"
        return wins
    return (
        window(b.op, b.x_nhwc[1], kh, b.stride, 1, b.padding),
        window(b.op, b.x_nhwc[2], kw, b.stride, 1, b.padding),
    )


def geometry(b: Bench) -> Geometry:
    """Output shape, multiply-adds and im2col dimensions of ``b`` (see the module docstring for the definitions)."""
    n, _, _, c_x = b.x_nhwc
    kh, kw, f2, f3 = b.w_shape
    wh, ww = _windows(b)
    k_ = kind(b)
    if k_ == "conv":  # w: [kh, kw, C_in, C_out]
        k, m = kh * kw * c_x, n * wh.out * ww.out
        return Geometry((n, wh.out, ww.out, f3), m * k * f3, k, m)
    if k_ == "depthwise":  # w: [kh, kw, C, M]
        k, m = kh * kw * c_x, n * wh.out * ww.out
        return Geometry((n, wh.out, ww.out, c_x * f3), m * k * f3, k, m)
    # transposed; w: [kh, kw, C_out, C_in]; x: [N, H_in, W_in, C_in]
    k, m = kh * kw * f2, n * b.x_nhwc[1] * b.x_nhwc[2]
    return Geometry(tuple(b.out_nhwc), m * k * c_x, k, m)


def flops(b: Bench) -> int:
    """2 x the direct convolution's multiply-adds."""
    return 2 * geometry(b).macs


def im2col_bytes(b: Bench) -> int:
    """Size of ``b``'s full float64 im2col matrix, K x M x 8 bytes."""
    g = geometry(b)
    return g.im2col_rows * g.im2col_cols * ACC_BYTES


def shape_label(b: Bench) -> str:
    """``1x56x56x64 * 3x3x64x64 /1`` (input * filter /stride; ``-> output`` for conv2d_transpose)."""
    dims = lambda s: "x".join(map(str, s))  # noqa: E731
    label = f"{dims(b.x_nhwc)} * {dims(b.w_shape)} /{b.stride}"
    if b.out_nhwc is not None:
        label += f" -> {dims(b.out_nhwc)}"
    return label if b.padding == "SAME" else f"{label} {b.padding}"


# --- the implementations ------------------------------------------------------------------


def operands(b: Bench, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 input (NHWC) and filter (``filter_layout(b)``), uniform in [-1, 1)."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, b.x_nhwc).astype(np.float32), rng.uniform(-1, 1, b.w_shape).astype(np.float32))


def tf_args(b: Bench, x_nhwc: np.ndarray, w: np.ndarray) -> tuple:
    """The positional arguments of ``tf.nn.<op>`` (and of ``harness.conv.reference.<op>``)."""
    strides = [1, b.stride, b.stride, 1]  # tf.nn.depthwise_conv2d takes only the 4-long form
    if kind(b) == "transposed":
        return (x_nhwc, w, list(b.out_nhwc), strides, b.padding)
    return (x_nhwc, w, strides, b.padding)


def lax_reference_module():
    """``jax._src.lax_reference``, or None when jax is not installed."""
    try:
        from jax._src import lax_reference
    except ImportError:
        return None
    return lax_reference


def lax_formulation(b: Bench, x_nhwc: np.ndarray, w: np.ndarray, lax) -> tuple[Callable | None, str]:
    """A thunk computing ``b`` with ``lax.conv_general_dilated`` (a correlation; NumPy in the input dtype), and a note.

    conv2d: direct, dimension numbers (NHWC, HWIO, NHWC), TensorFlow's SAME pads passed explicitly.
    depthwise_conv2d: only with ``feature_group_count`` (kernel [kh, kw, 1, C*M]), which lax_reference lacks.
    conv2d_transpose: the correlation of the stride-dilated input (``lhs_dilation``) with the spatially flipped
    kernel read as HWOI, padded ``k - 1 - pad_before`` before and whatever gives the output size after.
    The caller checks the result against the reference before timing it.
    """
    wh, ww = _windows(b)
    dims = ("NHWC", "HWIO", "NHWC")
    if kind(b) == "conv":
        pads = [(wh.pad_before, wh.pad_after), (ww.pad_before, ww.pad_after)]
        return (lambda: lax.conv_general_dilated(x_nhwc, w, (b.stride,) * 2, pads, (1, 1), (1, 1), dims)), "direct"
    if kind(b) == "depthwise":
        import inspect

        if "feature_group_count" not in inspect.signature(lax.conv_general_dilated).parameters:
            return None, "n/a: lax_reference.conv_general_dilated has no feature_group_count"
        w_grouped = w.reshape(*w.shape[:2], 1, -1)  # [kh, kw, C, M] -> [kh, kw, 1, C*M], channel-major like TF
        return (
            lambda: lax.conv_general_dilated(
                x_nhwc,
                w_grouped,
                (b.stride,) * 2,
                [(wh.pad_before, wh.pad_after), (ww.pad_before, ww.pad_after)],
                (1, 1),
                (1, 1),
                dims,
                feature_group_count=b.x_nhwc[3],
            )
        ), "grouped"
    pads = []
    for win, n_in in zip((wh, ww), b.x_nhwc[1:3]):
        before = win.kernel - 1 - win.pad_before
        dilated = (n_in - 1) * win.stride + 1
        pads.append((before, win.size + win.kernel - 1 - dilated - before))
    w_flipped = w[::-1, ::-1]
    return (
        lambda: lax.conv_general_dilated(
            x_nhwc, w_flipped, (1, 1), pads, (b.stride,) * 2, (1, 1), ("NHWC", "HWOI", "NHWC")
        )
    ), "lhs_dilation, flipped HWOI kernel"


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
    """Float32 results of the same sum: equal shapes and within 1e-4 of the output's scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-4, atol=1e-4 * scale))


def interleaved(calls: dict[str, Callable[[], object]], warmup: int, repeat: int) -> dict[str, list[float]]:
    """Seconds of ``repeat`` runs of every call, after ``warmup`` untimed rounds, the calls alternating each round."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def repeated(fn: Callable[[], object], warmup: int, repeat: int) -> list[float]:
    """Seconds of ``repeat`` runs of ``fn`` after ``warmup`` untimed ones."""
    return interleaved({"": fn}, warmup, repeat)[""]


def gemm_operands(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)


def gemm_gflops(a: np.ndarray, b: np.ndarray, runs: int) -> float:
    """GFLOP/s of ``a @ b`` (square n x n, 2 n^3 FLOPs), the median over ``runs`` products."""
    return 2 * a.shape[0] ** 3 / median(repeated(lambda: a @ b, 0, runs)) / 1e9


def layer_gemm_seconds(b: Bench, repeat: int) -> float | None:
    """Median seconds of the one float64 matrix product that holds all of ``b``'s multiply-adds, on random operands.

    conv2d: im2col [M, K] @ filter [K, C_out]; conv2d_transpose: input pixels [M_in, C_in] @ [C_in, kh kw C_out].
    It is what OpenBLAS does with this layer's matrix shapes, without building any im2col matrix: the ceiling of
    an im2col reference, as the square GEMM rate is the ceiling of any float64 one. None for depthwise (no GEMM).
    """
    g = geometry(b)
    if kind(b) == "conv":
        m, k, n = g.im2col_cols, g.im2col_rows, b.w_shape[3]
    elif kind(b) == "transposed":
        m, k, n = g.im2col_cols, b.x_nhwc[3], g.im2col_rows
    else:
        return None
    rng = np.random.default_rng(2)
    lhs, rhs = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    return median(repeated(lambda: lhs @ rhs, 1, repeat))


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
    x, w = operands(b)
    want = reference.conv2d(*tf_args(b, x, w))
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


def median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def bench_row(b: Bench, settings: Settings, gemm64_now: float, tf_available: bool, lax) -> dict:
    """Measure one Bench; returns its JSON row (``None`` where a column does not apply)."""
    g, n_flops = geometry(b), flops(b)
    x, w = operands(b)
    args = tf_args(b, x, w)
    op_ref = getattr(reference, b.op)
    row = {
        "name": b.name,
        "op": b.op,
        "shape": shape_label(b),
        "input_nhwc": b.x_nhwc,
        "filter": b.w_shape,
        "filter_layout": filter_layout(b),
        "output_nhwc": g.out_nhwc,
        "strides": b.stride,
        "padding": b.padding,
        "memory_only": b.memory_only,
        "flops": n_flops,
        "macs": g.macs,
        "im2col": {"rows_K": g.im2col_rows, "cols_M": g.im2col_cols, "bytes": im2col_bytes(b)},
        "gemm_f64_gflops_before": gemm64_now,
    }
    if not b.memory_only:
        want = op_ref(*args)
        calls: dict[str, Callable[[], object]] = {"reference": lambda: op_ref(*args)}
        if tf_available:
            tf_agrees = agrees(wrappers.call(b.op, args, {}), want)  # also TensorFlow's first (warm-up) call
            calls["tensorflow"] = lambda: wrappers.call(b.op, args, {})
        lax_fn, lax_note = (None, "not installed") if lax is None else lax_formulation(b, x, w, lax)
        if lax_fn is not None and not agrees(lax_fn(), want):
            lax_fn, lax_note = None, f"n/a: the formulation ({lax_note}) disagrees with the reference"
        if lax_fn is not None:
            calls["lax_reference"] = lax_fn
        times = interleaved(calls, settings.warmup, settings.repeat)
        ref_s = median(times["reference"])
        row["reference"] = {"median_s": ref_s, "times_s": times["reference"], "gflops": n_flops / ref_s / 1e9}
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
        row["lax_reference"] = (
            {
                "status": "ok",
                "formulation": lax_note,
                "median_s": median(times["lax_reference"]),
                "times_s": times["lax_reference"],
            }
            if lax_fn is not None
            else {"status": "not installed" if lax is None else "n/a", "reason": lax_note}
        )
        row["ratio_vs_tensorflow"] = _ratio(ref_s, row["tensorflow"].get("median_s"))
        row["ratio_vs_lax_reference"] = _ratio(ref_s, row["lax_reference"].get("median_s"))
        row["lax_reference_vs_tensorflow"] = _ratio(
            row["lax_reference"].get("median_s"), row["tensorflow"].get("median_s")
        )
        layer_s = layer_gemm_seconds(b, settings.repeat)
        row["layer_gemm"] = None if layer_s is None else {"median_s": layer_s, "gflops": n_flops / layer_s / 1e9}
        del want, calls
    start = time.perf_counter()
    peak = peak_bytes(lambda: op_ref(*args))
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
        if row["op"] == "conv2d" and not row["memory_only"]:
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
    gemm_rows = [r for r in timed if ops.get(r["op"]).kind in ("conv", "transposed")]
    shares = [r["reference"]["share_of_gemm_f64"] for r in gemm_rows]
    dw = [r for r in timed if ops.get(r["op"]).kind == "depthwise" and r["ratio_vs_tensorflow"] is not None]
    lax_ratios = [r["ratio_vs_lax_reference"] for r in timed if r["ratio_vs_lax_reference"] is not None]
    mem = [r for r in rows if "memory" in r]
    big = [r for r in rows if r["memory_only"]]
    out = []
    m = median(shares)
    out.append(
        _target(
            "gemm_share_median",
            "conv2d + conv2d_transpose: median share of the float64 GEMM rate >= 75%",
            m,
            GEMM_SHARE_MEDIAN,
            None if m is None else m >= GEMM_SHARE_MEDIAN,
            f"median over {len(shares)} shapes",
        )
    )
    worst = min(gemm_rows, key=lambda r: r["reference"]["share_of_gemm_f64"], default=None)
    lo = None if worst is None else worst["reference"]["share_of_gemm_f64"]
    out.append(
        _target(
            "gemm_share_floor",
            "conv2d + conv2d_transpose: no shape below 40% of the float64 GEMM rate",
            lo,
            GEMM_SHARE_FLOOR,
            None if lo is None else lo >= GEMM_SHARE_FLOOR,
            "" if worst is None else f"lowest: {worst['name']}",
        )
    )
    worst = max(dw, key=lambda r: r["ratio_vs_tensorflow"], default=None)
    hi = None if worst is None else worst["ratio_vs_tensorflow"]
    out.append(
        _target(
            "depthwise_vs_tensorflow",
            "depthwise_conv2d: reference time within 3x of TensorFlow's",
            hi,
            DEPTHWISE_VS_TF,
            None if hi is None else hi <= DEPTHWISE_VS_TF,
            "" if worst is None else f"largest ratio: {worst['name']}",
        )
    )
    m = median(lax_ratios)
    out.append(
        _target(
            "vs_lax_reference",
            "faster than JAX's lax_reference: median time ratio reference/lax < 1",
            m,
            VS_LAX,
            None if m is None else m < VS_LAX,
            f"median over {len(lax_ratios)} shapes with a lax_reference formulation",
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


# --- output -------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _x(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


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
        "layer GEMM",
        "lax ms",
        "ref/lax",
        "peak/im2col",
    )
    lines = []
    for r in rows:
        if r["memory_only"]:
            cells = (r["name"], r["op"], r["shape"], *["-"] * 8, _x(r["memory"]["peak_over_im2col"]))
        else:
            ref, tf, lax = r["reference"], r["tensorflow"], r["lax_reference"]
            cells = (
                r["name"],
                r["op"],
                r["shape"],
                _ms(ref["median_s"]),
                _ms(tf.get("median_s")) if tf["status"] == "ok" else tf["status"],
                _x(r["ratio_vs_tensorflow"]),
                f"{ref['gflops']:.1f}",
                f"{ref['share_of_gemm_f64'] * 100:.0f}%",
                f"{r['layer_gemm']['share_of_gemm_f64'] * 100:.0f}%" if r.get("layer_gemm") else "-",
                _ms(lax.get("median_s")) if lax["status"] == "ok" else lax["status"],
                _x(r["ratio_vs_lax_reference"]),
                _x(r["memory"]["peak_over_im2col"]),
            )
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    left = 3  # name, op, shape left-aligned; numbers right-aligned

    def fmt(cells):
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths)] + [fmt(c) for c in lines])


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
        elif t["key"].startswith("gemm_share"):
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
    ax1.axvline(GEMM_SHARE_MEDIAN * 100, color="k", ls="--", lw=1, label="75%: target median (conv2d, transpose)")
    ax1.axvline(GEMM_SHARE_FLOOR * 100, color="r", ls=":", lw=1.5, label="40%: floor for every conv2d / transpose")
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
    )  # room for the 75% line and the bar labels
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
    ax2.axvline(DEPTHWISE_VS_TF, color="tab:orange", ls=":", lw=1.5, label="3x: depthwise target")
    ax2.set_xscale("log")
    shown = [v for v in ref_tf + lax_tf if v is not None] + [1.0, DEPTHWISE_VS_TF]
    ax2.set_xlim(min(shown) / 1.5, max(shown) * 1.5)
    # 0.5, 1, 2 rather than 5 x 10^-1; of the minor ticks only 2, 3 and 5 x 10^k are labelled (the rest crowd)
    ax2.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax2.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
    ax2.tick_params(axis="x", which="minor", labelsize=7)
    ax2.set_xlabel("time / TensorFlow's time (log scale; < 1 is faster)")
    ax2.set_title("Time relative to TensorFlow (median of warm runs)")
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.suptitle(
        f"bench.run: float32 NHWC, {doc['environment']['cpu_count']} CPUs, TensorFlow "
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
    "The reference takes float32 and accumulates in float64 (its output is float32); lax_reference computes in the "
    "input dtype, float32; TensorFlow in float32.",
    "share_of_gemm_f64 = reference GFLOP/s / the median float64 GEMM rate of the run (a @ b, n x n, measured before "
    "every shape); GFLOP/s use the direct-convolution FLOP count 2 x multiply-adds.",
    "layer GEMM: the one float64 product holding all of a layer's multiply-adds (conv2d im2col [M, K] @ [K, C_out]; "
    "conv2d_transpose [M_in, C_in] @ [C_in, kh*kw*C_out]) on ready random operands, as a share of the square GEMM "
    "rate: what OpenBLAS reaches on the layer's matrix shapes, the ceiling of an im2col reference.",
    "FLOPs: conv2d 2*N*OH*OW*kh*kw*C_in*C_out; depthwise 2*N*OH*OW*kh*kw*C*M; conv2d_transpose "
    "2*N*H_in*W_in*kh*kw*C_in*C_out.",
    "im2col bytes = K x M x 8 (float64): conv2d K=kh*kw*C_in, M=N*OH*OW; depthwise K=kh*kw*C, M=N*OH*OW; "
    "conv2d_transpose: the im2col of the forward conv2d it is the input-gradient of, K=kh*kw*C_out, M=N*H_in*W_in.",
    "Peak memory: tracemalloc peak during one reference call; the operands exist before tracing starts and do not "
    "count, the output (float64 accumulator and float32 result) does.",
    "lax_reference: jax._src.lax_reference.conv_general_dilated, checked against the reference (np.allclose) before "
    "timing; n/a where no formulation exists or it disagrees.",
    "Pixel loop: a Python loop over output pixels and output channels with np.sum over each window, timed on a "
    "small shape; its per-multiply-add time is extrapolated (not measured) to the large shapes.",
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
        "targets": targets(rows),
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
