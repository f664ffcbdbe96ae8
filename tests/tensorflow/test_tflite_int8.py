"""TFLite's int8 convolutions against the integer reference (harness/conv/quantized.py), bit for bit, per resolver.

Models are built from given parameters (harness/tf/tflite.py) and run in TensorFlow's server process. What each
resolver computes, measured with TensorFlow's pip wheel on x86-64 (built with AVX, so TFLite's NEON code runs
through its SSE emulation):

* ref (``BUILTIN_REF``): gemmlowp's double rounding, on every op;
* auto (XNNPACK): XNNPACK's float32 requantization, rounding ties to even;
* builtin (the optimized kernels): conv2d goes through ruy, whose x86 kernels round both steps half up
  (double_half_up); depthwise_conv2d and transpose_conv requantize 8 channels at a time with NEON's vqrdmulh + vrshl
  (double_half_up) and the remaining C % 8 channels with the reference's double rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.conv import quantized as Q
from harness.tf import machine, tflite
from harness.tf.isolation import Returned, TFProcess

AVX = machine.read_cpu().has("avx")


@pytest.fixture(scope="module")
def tf_process():
    process = TFProcess()
    yield process
    process.close()


def call(process, name, *args):
    result = process.call(name, args, {})
    assert isinstance(result, Returned), result
    return result.value


def configuration(op: str, seed: int):
    """A model of ``op`` whose outputs spread over the int8 range (the output scale set from the accumulator's
    expected spread), with per-channel filter scales, a bias and an input."""
    rng = np.random.default_rng(seed)
    c, k, stride = int(rng.integers(3, 20)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    padding = ("SAME", "VALID")[seed % 2]
    h, w = int(rng.integers(k + 2, 12)), int(rng.integers(k + 2, 12))
    attrs = {"strides": stride, "padding": padding}
    if op == "conv2d":
        channels = int(rng.integers(3, 20))
        filter_q, input_shape, taps = rng.integers(-127, 128, (channels, k, k, c)), [1, h, w, c], k * k * c
    elif op == "depthwise_conv2d":
        channels = c * int(rng.integers(1, 3))
        filter_q, input_shape, taps = rng.integers(-127, 128, (1, k, k, channels)), [1, h, w, c], k * k
    else:
        channels = int(rng.integers(3, 20))
        filter_q, taps = rng.integers(-127, 128, (channels, k, k, c)), k * k * c // stride**2 + 1
        ins = [-(-n // stride) if padding == "SAME" else (n - k) // stride + 1 for n in (h, w)]
        input_shape, attrs["output_shape"] = [1, *ins, c], [1, h, w, channels]
    if op != "transpose_conv":
        attrs["dilations"] = int(rng.integers(1, 3)) if k > 1 and h > 2 * k and w > 2 * k else 1
    filter_scale = rng.uniform(0.002, 0.02, channels)
    input_scale = float(rng.uniform(0.01, 0.05))
    multiplier = 40 / (math.sqrt(taps) * 74 * 73)  # an output of about +-40 for an accumulator of typical spread
    params = {
        "input_scale": input_scale,
        "input_zero_point": int(rng.integers(-100, 100)),
        "filter_scale": filter_scale.tolist(),
        "output_scale": float(input_scale * np.median(filter_scale) / multiplier),
        "output_zero_point": int(rng.integers(-30, 30)),
        "activation": ("NONE", "RELU", "RELU6")[seed % 3],
    }
    bias_q = rng.integers(-3000, 3000, channels).astype(np.int32)
    input_q = rng.integers(-128, 128, input_shape).astype(np.int8)
    return filter_q.astype(np.int8), bias_q, params, attrs, input_q


def reference(op: str, model: dict, input_q: np.ndarray, rounding: str) -> np.ndarray:
    kwargs = {k: model["params"][k] for k in tflite.QUANTIZATION_KEYS}
    attrs = model["attrs"]
    common = dict(
        strides=attrs["strides"],
        padding=attrs["padding"],
        activation=model["params"]["activation"],
        rounding=rounding,
        **kwargs,
    )
    if op == "transpose_conv":
        return Q.transpose_conv(attrs["output_shape"], model["filter"], input_q, model["bias"], **common)
    fn = Q.conv2d if op == "conv2d" else Q.depthwise_conv2d
    return fn(input_q, model["filter"], model["bias"], dilations=attrs["dilations"], **common)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("op", tflite.OPS)
def test_each_resolver_is_one_rounding_of_the_integer_reference(tf_process, op, seed):
    filter_q, bias_q, params, attrs, input_q = configuration(op, seed)
    model = call(tf_process, "tflite_build", op, list(input_q.shape), filter_q, bias_q, params, attrs)
    read = call(tf_process, "tflite_read", model)
    assert np.array_equal(read["filter"], filter_q) and np.array_equal(read["bias"], bias_q)
    by_rounding = {r: reference(op, read, input_q, r) for r in Q.ROUNDINGS}
    outputs = {res: call(tf_process, "tflite_run", model, input_q, res) for res in tflite.RESOLVERS}
    # the configurations are not degenerate: the outputs spread, and the roundings are told apart somewhere
    assert len(np.unique(outputs["ref"])) > 10
    np.testing.assert_array_equal(outputs["ref"], by_rounding["double"])
    np.testing.assert_array_equal(outputs["auto"], by_rounding["float32"])
    if not AVX:  # the optimized kernels' rounding below is measured on x86-64 with AVX (ruy's AVX kernels, NEON_2_SSE)
        return
    if op == "conv2d":
        np.testing.assert_array_equal(outputs["builtin"], by_rounding["double_half_up"])
    else:
        vector = 8 * (read["filter"].shape[3 if op == "depthwise_conv2d" else 0] // 8)
        np.testing.assert_array_equal(outputs["builtin"][..., :vector], by_rounding["double_half_up"][..., :vector])
        np.testing.assert_array_equal(outputs["builtin"][..., vector:], by_rounding["double"][..., vector:])


# input_scale * filter_scale / output_scale = 1/2: a 1x1 filter of 1 halves the input.
HALF = {
    "input_scale": 1.0,
    "input_zero_point": 0,
    "filter_scale": [0.5],
    "output_scale": 1.0,
    "output_zero_point": 0,
    "activation": "NONE",
}


def test_xnnpack_rounds_a_tie_to_even_where_the_integer_rules_round_up(tf_process):
    """M = 1 * 0.5 / 1: accumulators 5 and -3 are the ties 2.5 and -1.5."""
    params = HALF
    filter_q = np.ones((1, 1, 1, 1), np.int8)
    input_q = np.array([5, -3, 7, 0], np.int8).reshape(1, 2, 2, 1)
    model = call(
        tf_process,
        "tflite_build",
        "conv2d",
        [1, 2, 2, 1],
        filter_q,
        np.zeros(1, np.int32),
        params,
        {"strides": 1, "padding": "VALID"},
    )
    got = {res: call(tf_process, "tflite_run", model, input_q, res).ravel().tolist() for res in tflite.RESOLVERS}
    assert got["ref"] == got["builtin"] == [3, -1, 4, 0]
    assert got["auto"] == [2, -2, 4, 0]


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
def test_a_quantized_conv_without_bias_is_refused_by_every_resolver_and_the_reference(tf_process, op):
    params = HALF
    filter_q, input_q = np.ones((1, 1, 1, 1), np.int8), np.zeros((1, 2, 2, 1), np.int8)
    model = call(
        tf_process, "tflite_build", op, [1, 2, 2, 1], filter_q, None, params, {"strides": 1, "padding": "VALID"}
    )
    for res in tflite.RESOLVERS:
        result = tf_process.call("tflite_run", (model, input_q, res), {})
        assert "was optional but was expected" in getattr(result, "message", ""), (res, result)
    fn = Q.conv2d if op == "conv2d" else Q.depthwise_conv2d
    kwargs = {k: params[k] for k in tflite.QUANTIZATION_KEYS}
    with pytest.raises(ValueError, match="'bias'=None is required"):
        fn(input_q, filter_q, None, **kwargs)
