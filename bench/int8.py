"""The int8 rows of ``python -m bench.run``: the integer reference against TFLite's default path, per layer.

For every conv2d and depthwise_conv2d layer of the run (grouped ones included), a one-op int8 TFLite model of the
layer (``harness.tf.tflite.build``: per-channel weights, int32 bias) is run by tf.lite's interpreter with its default
op resolver (XNNPACK; every core), interleaved with ``harness.conv.quantized`` on the same integers under the
rounding that path uses (float32). Both compute the same integers (``bit_exact``, checked on the timed outputs); the
target is the reference within ``VS_TFLITE`` times TFLite's time on every layer.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from bench.timing import aligned, interleaved, median
from harness.conv import quantized as integer
from harness.tf import tflite

OPS = ("conv2d", "depthwise_conv2d")
VS_TFLITE = 3.0
ROUNDING = "float32"  # what the default path (XNNPACK) computes: harness.check.quantized.PATHS
INT8_STD = 73.9  # the standard deviation of integers drawn uniformly from [-128, 127]


def covers(b: Any) -> bool:
    """Whether a ``bench.run.Bench`` has an int8 row: a timed conv2d or depthwise_conv2d layer."""
    return b.op in OPS and not b.memory_only


def operands(b: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(input NHWC int8, filter in TFLite's layout (OHWI; depthwise [1, kh, kw, C*M]) int8, bias int32, the
    quantization parameters) of a layer: random integers, per-channel filter scales, and an output scale that puts
    about three standard deviations of the accumulator in int8's range (few outputs saturate)."""
    rng = np.random.default_rng(seed)
    x_nhwc = rng.integers(-128, 128, b.x, dtype=np.int8)
    kh, kw, c_in, c_out = b.w_shape
    if b.op == "depthwise_conv2d":
        shape, channels, taps = (1, kh, kw, c_in * c_out), c_in * c_out, kh * kw
    else:
        shape, channels, taps = (c_out, kh, kw, c_in), c_out, kh * kw * c_in
    w_tfl = rng.integers(-127, 128, shape, dtype=np.int8)
    bias = rng.integers(-1000, 1000, channels).astype(np.int32)
    filter_scale = rng.uniform(0.002, 0.01, channels)
    input_scale = 0.02
    spread = input_scale * float(np.median(filter_scale)) * math.sqrt(taps) * INT8_STD**2
    params = {
        "input_scale": input_scale,
        "input_zero_point": -3,
        "filter_scale": filter_scale.tolist(),
        "output_scale": 3 * spread / 127,
        "output_zero_point": 2,
        "activation": "NONE",
    }
    return x_nhwc, w_tfl, bias, params


def attrs(b: Any) -> dict[str, Any]:
    return {"strides": b.stride, "padding": b.padding, "dilations": b.dilation}


def row(b: Any, warmup: int, repeat: int) -> dict:
    """One layer's int8 row: both times, their ratio, and whether the outputs are equal."""
    x_nhwc, w_tfl, bias, params = operands(b)
    a = attrs(b)
    model = tflite.build(b.op, list(x_nhwc.shape), w_tfl, bias, params, a)
    ip = tflite.interpreter(model, "auto", num_threads=os.cpu_count() or 1)
    input_index = ip.get_input_details()[0]["index"]
    output_index = ip.get_output_details()[0]["index"]
    outputs: dict[str, np.ndarray] = {}

    def run_tflite() -> None:
        ip.set_tensor(input_index, x_nhwc)
        ip.invoke()
        outputs["tflite"] = np.array(ip.get_tensor(output_index))

    fn = integer.conv2d if b.op == "conv2d" else integer.depthwise_conv2d

    def run_reference() -> None:
        outputs["reference"] = fn(x_nhwc, w_tfl, bias, **params, **a, rounding=ROUNDING)

    times = interleaved({"reference": run_reference, "tflite": run_tflite}, warmup, repeat)
    ref_s, tfl_s = median(times["reference"]), median(times["tflite"])
    ref, got = outputs["reference"], outputs["tflite"]
    differ = int((ref != got).sum()) if ref.shape == got.shape else -1
    saturated = float(np.mean((ref == -128) | (ref == 127)))
    return {
        "name": b.name,
        "op": b.op,
        "input": b.x,
        "filter": list(w_tfl.shape),
        "output": list(ref.shape),
        "reference": {"median_s": ref_s, "times_s": times["reference"], "rounding": ROUNDING},
        "tflite": {"median_s": tfl_s, "times_s": times["tflite"], "path": "default op resolver (XNNPACK)"},
        "ratio_vs_tflite": ref_s / tfl_s if ref_s and tfl_s else None,
        "bit_exact": differ == 0,
        "differing_outputs": differ,
        "saturated_share": saturated,
    }


def target(rows: list[dict]) -> dict:
    """The int8 target (``bench.run._target``'s fields)."""
    ratios = [r for r in rows if r["ratio_vs_tflite"] is not None]
    worst = max(ratios, key=lambda r: r["ratio_vs_tflite"], default=None)
    hi = None if worst is None else worst["ratio_vs_tflite"]
    return {
        "key": "int8_vs_tflite",
        "target": f"int8 conv and depthwise layers: integer reference within {VS_TFLITE:g}x of TFLite's default path",
        "measured": hi,
        "threshold": VS_TFLITE,
        "status": "n/a" if hi is None else ("MET" if hi <= VS_TFLITE else "MISSED"),
        "detail": "" if worst is None else f"largest ratio: {worst['name']}",
    }


def table(rows: list[dict]) -> str:
    """One line per int8 layer."""
    head = ("int8 layer", "op", "ref ms", "TFLite ms", "ref/TFLite", "bit-exact", "saturated")
    lines = [
        (
            r["name"],
            r["op"],
            f"{r['reference']['median_s'] * 1e3:.2f}",
            f"{r['tflite']['median_s'] * 1e3:.2f}",
            "-" if r["ratio_vs_tflite"] is None else f"{r['ratio_vs_tflite']:.2f}",
            "yes" if r["bit_exact"] else f"NO ({r['differing_outputs']})",
            f"{r['saturated_share'] * 100:.1f}%",
        )
        for r in rows
    ]
    return aligned(head, lines, left=2)
