"""A case's ``quantization`` field: the case runs as TFLite's quantized op (``harness.conv.quantized``).

A quantized case is an ordinary case of ``conv2d``, ``depthwise_conv2d`` or ``conv2d_transpose`` (real-valued
operands, NHWC, SAME or VALID padding) whose ``dtypes`` are quantized schemes: ``int8`` (int8 activations and
weights, int32 bias) and ``int16`` (16x8: int16 activations, int8 weights, int64 bias). Its parameters are given,
or chosen by TFLite's converter::

    quantization:                       # given: the operands are quantized with these
      input:  {scale: 0.02, zero_point: -3}
      filter: {scale: [0.01, 0.02]}     # one scale, or one per output channel (zero point 0), or one per
                                        # channel drawn: {dist: uniform, low: 0.002, high: 0.01, seed: 3}
      output: {scale: 0.1, zero_point: 5}
      bias: [100, -20]                  # int32 (int64 for int16) per output channel; default zeros. Or
                                        # {dist: integers, low: -1000, high: 1000, seed: 3}
      activation: RELU6                 # NONE (default), RELU, RELU6, RELU_N1_TO_1

    quantization:                       # calibrated: the converter quantizes the float op
      calibrate: {samples: 8, seed: 0}  # the case's input, then samples - 1 normal inputs of its spread
      activation: NONE

The comparison is exact: every TFLite path must give the integers the reference gives under the rounding the path
declares (``harness.check.quantized``). Every problem is a ``CaseError`` naming the file, the case and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.conv.quantized import ACTIVATIONS

# The tf.nn op a quantized case is written as -> TFLite's op (harness.conv.quantized's name for it).
TFLITE_OPS = {"conv2d": "conv2d", "depthwise_conv2d": "depthwise_conv2d", "conv2d_transpose": "transpose_conv"}
# A quantized case's dtypes: the activations' type names the scheme.
SCHEMES = {"int8": "int8", "int16": "16x8"}
FIELDS = ("input", "filter", "output", "bias", "activation", "calibrate")
BIAS_DTYPES = {"int8": np.int32, "int16": np.int64}


class QuantizationError(ValueError):
    """A malformed ``quantization`` field: ``field`` is the path below it (``input.scale``), ``message`` says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class Calibration:
    samples: int
    seed: int


@dataclass(frozen=True)
class Quantization:
    """Given parameters (``input``, ``filter_scale`` or its ``uniform`` generator's (low, high, seed), ``output``:
    (scale, zero_point) pairs and scales) or a ``calibration``; a bias (literal ints, or an ``integers`` generator's
    (low, high, seed)) and the fused activation."""

    activation: str = "NONE"
    calibration: Calibration | None = None
    input: tuple[float, int] | None = None
    filter_scale: tuple[float, ...] | None = None
    output: tuple[float, int] | None = None
    bias: tuple[int, ...] | None = None
    bias_generator: tuple[int, int, int] | None = None
    filter_scale_generator: tuple[float, float, int] | None = None

    def filter_scales(self, channels: int) -> list[float]:
        """The filter's scales for ``channels`` output channels: given (one, broadcast) or drawn (float32 values, as a
        model stores them)."""
        if self.filter_scale_generator is not None:
            low, high, seed = self.filter_scale_generator
            drawn = np.random.default_rng(seed).uniform(low, high, channels).astype(np.float32)
            return [float(v) for v in drawn]
        scales = list(self.filter_scale or ())
        if len(scales) not in (1, channels):
            raise QuantizationError(
                "filter.scale",
                f"has {len(scales)} scales; the op has {channels} output channels (give 1 or {channels})",
            )
        return scales * channels if len(scales) == 1 else scales

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def bias_values(self, channels: int, dtype: str) -> np.ndarray:
        """The bias for ``channels`` output channels at ``dtype`` (a scheme): given, generated, or zeros."""
        bias_dtype = BIAS_DTYPES[dtype]
        if self.bias is not None:
            if len(self.bias) != channels:
                raise QuantizationError("bias", f"has {len(self.bias)} values; the op has {channels} output channels")
            return np.array(self.bias, bias_dtype)
        if self.bias_generator is not None:
            low, high, seed = self.bias_generator
            return np.random.default_rng(seed).integers(low, high, channels, endpoint=True).astype(bias_dtype)
        return np.zeros(channels, bias_dtype)

    def record(self) -> dict[str, Any]:
        """The field back in the YAML schema (``parse`` gives the same value back)."""
        out: dict[str, Any] = {}
        if self.calibration is not None:
            out["calibrate"] = {"samples": self.calibration.samples, "seed": self.calibration.seed}
        if self.input is not None and self.output is not None:
            out["input"] = {"scale": self.input[0], "zero_point": self.input[1]}
            if self.filter_scale_generator is not None:
                low, high, seed = self.filter_scale_generator
                out["filter"] = {"scale": {"dist": "uniform", "low": low, "high": high, "seed": seed}}
            else:
                scales = list(self.filter_scale or ())
                out["filter"] = {"scale": scales if len(scales) > 1 else scales[0]}
            out["output"] = {"scale": self.output[0], "zero_point": self.output[1]}
        if self.bias is not None:
            out["bias"] = list(self.bias)
        if self.bias_generator is not None:
            low, high, seed = self.bias_generator
            out["bias"] = {"dist": "integers", "low": low, "high": high, "seed": seed}
        if self.activation != "NONE":
            out["activation"] = self.activation
        return out

    def params(self, channels: int) -> dict[str, Any]:
        """Given parameters as ``harness.conv.quantized`` takes them (and ``activation``)."""
        if self.input is None or self.output is None:
            raise QuantizationError("calibrate", "a calibrated case's parameters come from its converted model")
        return {
            "input_scale": self.input[0],
            "input_zero_point": self.input[1],
            "filter_scale": self.filter_scales(channels),
            "output_scale": self.output[0],
            "output_zero_point": self.output[1],
            "activation": self.activation,
        }


def _mapping(field: str, value: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise QuantizationError(field, f"must be a mapping with {', '.join(allowed)}, got {value!r}")
    for key in value:
        if key not in allowed:
            raise QuantizationError(f"{field}.{key}" if field else key, f"unknown field; allowed: {', '.join(allowed)}")
    return value


def _scale(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QuantizationError(field, f"must be a number, got {value!r}")
    stored = float(np.float32(value))  # a model stores scales as float32
    if not math.isfinite(stored) or stored <= 0:
        raise QuantizationError(field, f"must be a positive finite float32, got {value!r}")
    return float(value)


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QuantizationError(field, f"must be an integer in [{low}, {high}], got {value!r}")
    return value


def _pair(field: str, value: Any) -> tuple[float, int]:
    v = _mapping(field, value, ("scale", "zero_point"))
    if "scale" not in v:
        raise QuantizationError(f"{field}.scale", "missing field")
    return _scale(f"{field}.scale", v["scale"]), _int(f"{field}.zero_point", v.get("zero_point", 0), -128, 127)


def parse(value: Any, dtypes: tuple[str, ...]) -> Quantization:
    """The ``quantization`` field of a case at ``dtypes`` (each one of ``SCHEMES``); QuantizationError naming the
    field below it."""
    v = _mapping("", value, FIELDS)
    activation = v.get("activation", "NONE")
    if activation not in ACTIVATIONS:
        raise QuantizationError("activation", f"must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    bias, generator = None, None
    if "bias" in v:
        b = v["bias"]
        if isinstance(b, list):
            bias = tuple(_int(f"bias[{i}]", x, -(2**63), 2**63 - 1) for i, x in enumerate(b))
            if "int8" in dtypes:
                for i, x in enumerate(bias):
                    _int(f"bias[{i}]", x, -(2**31), 2**31 - 1)
        else:
            g = _mapping("bias", b, ("dist", "low", "high", "seed"))
            if g.get("dist") != "integers":
                raise QuantizationError("bias.dist", f"must be 'integers', got {g.get('dist')!r}")
            low, high = (_int(f"bias.{k}", g.get(k), -(2**31), 2**31 - 1) for k in ("low", "high"))
            if low > high:
                raise QuantizationError("bias.high", f"must be at least low ({low}), got {high}")
            generator = (low, high, _int("bias.seed", g.get("seed", 0), 0, 2**32 - 1))
    given = [k for k in ("input", "filter", "output") if k in v]
    if "calibrate" in v:
        if given or "bias" in v:
            key = (given or ["bias"])[0]
            raise QuantizationError(key, "a calibrated case takes its parameters from the converter: remove it")
        c = _mapping("calibrate", v["calibrate"], ("samples", "seed"))
        calibration = Calibration(
            _int("calibrate.samples", c.get("samples", 8), 1, 1000),
            _int("calibrate.seed", c.get("seed", 0), 0, 2**32 - 1),
        )
        return Quantization(activation, calibration)
    missing = [k for k in ("input", "filter", "output") if k not in v]
    if missing:
        raise QuantizationError(missing[0], "missing field (or give calibrate: {samples, seed})")
    input_pair, output_pair = _pair("input", v["input"]), _pair("output", v["output"])
    f = _mapping("filter", v["filter"], ("scale",))
    scales_raw = f.get("scale")
    scales, drawn = None, None
    if isinstance(scales_raw, dict):
        g = _mapping("filter.scale", scales_raw, ("dist", "low", "high", "seed"))
        if g.get("dist") != "uniform":
            raise QuantizationError("filter.scale.dist", f"must be 'uniform', got {g.get('dist')!r}")
        s_low, s_high = (_scale(f"filter.scale.{k}", g.get(k)) for k in ("low", "high"))
        if s_low > s_high:
            raise QuantizationError("filter.scale.high", f"must be at least low ({s_low}), got {s_high}")
        drawn = (s_low, s_high, _int("filter.scale.seed", g.get("seed", 0), 0, 2**32 - 1))
    else:
        scales_list = scales_raw if isinstance(scales_raw, list) else [scales_raw]
        if not scales_list:
            raise QuantizationError("filter.scale", "must be a number or a non-empty list of numbers")
        scales = tuple(
            _scale(f"filter.scale[{i}]" if isinstance(scales_raw, list) else "filter.scale", s)
            for i, s in enumerate(scales_list)
        )
    if "int16" in dtypes:
        for key, pair in (("input", input_pair), ("output", output_pair)):
            if pair[1] != 0:
                raise QuantizationError(f"{key}.zero_point", f"must be 0 for int16 (16x8 is symmetric), got {pair[1]}")
    return Quantization(activation, None, input_pair, scales, output_pair, bias, generator, drawn)


def quantize(real: np.ndarray, scale: np.ndarray | float, zero_point: int, dtype: Any) -> np.ndarray:
    """``zero_point + round(real / scale)``, half away from zero, clamped to ``dtype``'s range: how a case's real
    operands become the integers both sides receive (``scale`` broadcasts: per channel along the last axis)."""
    q = real / np.asarray(scale, np.float64)
    rounded = np.sign(q) * np.floor(np.abs(q) + 0.5) + zero_point
    info = np.iinfo(np.dtype(dtype))
    return np.clip(rounded, info.min, info.max).astype(dtype)
