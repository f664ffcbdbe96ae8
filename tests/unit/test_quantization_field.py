"""A case's ``quantization`` field (harness/registry/quantization.py): what it accepts, the parameters it gives, and
the error that names the file, the case and the field for everything it refuses."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from harness.registry.cases import CaseError, parse_case
from harness.registry.quantization import quantize
from harness.registry.serialize import case_to_dict

BASE = {
    "name": "q",
    "op": "conv2d",
    "dtypes": ["int8"],
    "attrs": {"strides": 1, "padding": "SAME"},
    "inputs": {
        "input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": [1, 5, 5, 2]}},
        "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": [3, 3, 2, 3]}},
    },
    "quantization": {
        "input": {"scale": 0.02, "zero_point": -3},
        "filter": {"scale": [0.01, 0.02, 0.03]},
        "output": {"scale": 0.05, "zero_point": 5},
        "bias": [1, -2, 3],
        "activation": "RELU6",
    },
}


def case_with(path: str | None = None, value=None, delete: bool = False, **top):
    raw = copy.deepcopy(BASE)
    raw.update(top)
    if path is not None:
        *parents, last = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        if delete:
            del node[last]
        else:
            node[last] = value
    return parse_case("cases/q.yaml", raw, 0)


def test_given_parameters_and_bias():
    q = case_with().quantization
    assert q.params(3) == {
        "input_scale": 0.02,
        "input_zero_point": -3,
        "filter_scale": [0.01, 0.02, 0.03],
        "output_scale": 0.05,
        "output_zero_point": 5,
        "activation": "RELU6",
    }
    assert q.bias_values(3, "int8").tolist() == [1, -2, 3] and q.bias_values(3, "int8").dtype == np.int32
    assert not q.calibrated


def test_one_filter_scale_is_broadcast_and_a_wrong_count_is_named():
    q = case_with("quantization.filter.scale", 0.5).quantization
    assert q.params(4)["filter_scale"] == [0.5] * 4
    q = case_with("quantization.filter.scale", [0.1, 0.2]).quantization
    with pytest.raises(ValueError, match=r"filter.scale: has 2 scales; the op has 3 output channels"):
        q.params(3)


def test_drawn_per_channel_filter_scales_fit_any_channel_count():
    """A sweep that varies the output channels needs scales of the right count: drawn, float32, in [low, high]."""
    spec = {"dist": "uniform", "low": 0.002, "high": 0.01, "seed": 3}
    q = case_with("quantization.filter.scale", spec).quantization
    for channels in (1, 3, 16):
        scales = q.params(channels)["filter_scale"]
        assert len(scales) == channels and all(0.002 <= s <= 0.01 for s in scales)
        assert all(float(np.float32(s)) == s for s in scales), "a model stores its scales as float32"
    assert q.params(5)["filter_scale"] == q.params(5)["filter_scale"]  # seeded
    assert len(set(q.params(16)["filter_scale"])) == 16
    assert case_to_dict(case_with("quantization.filter.scale", spec))["quantization"]["filter"] == {"scale": spec}


def test_a_generated_bias_is_seeded_and_in_range():
    q = case_with("quantization.bias", {"dist": "integers", "low": -5, "high": 5, "seed": 1}).quantization
    b = q.bias_values(100, "int16")
    assert b.dtype == np.int64 and b.min() >= -5 and b.max() <= 5 and np.array_equal(b, q.bias_values(100, "int16"))


def test_the_field_reads_back_as_written():
    for path, value in (
        (None, None),
        ("quantization.filter.scale", {"dist": "uniform", "low": 0.1, "high": 0.2, "seed": 0}),
        ("quantization.bias", {"dist": "integers", "low": -3, "high": 3, "seed": 2}),
    ):
        case = case_with(path, value)
        again = parse_case("cases/q.yaml", case_to_dict(case), 0)
        assert again.quantization == case.quantization


@pytest.mark.parametrize(
    "path, value, field, message",
    [
        ("quantization.input.scale", 0.0, "quantization.input.scale", "positive finite float32"),
        ("quantization.input.scale", 1e-50, "quantization.input.scale", "positive finite float32"),
        ("quantization.output.scale", -1.0, "quantization.output.scale", "positive finite float32"),
        ("quantization.input.zero_point", 128, "quantization.input.zero_point", "integer in [-128, 127]"),
        ("quantization.output.zero_point", 1.5, "quantization.output.zero_point", "integer in [-128, 127]"),
        ("quantization.filter.scale", [], "quantization.filter.scale", "non-empty list"),
        ("quantization.filter.scale", [0.1, "x"], "quantization.filter.scale[1]", "must be a number"),
        ("quantization.filter.scale", {"dist": "normal"}, "quantization.filter.scale.dist", "must be 'uniform'"),
        (
            "quantization.filter.scale",
            {"dist": "uniform", "low": 0.2, "high": 0.1},
            "quantization.filter.scale.high",
            "at least low",
        ),
        ("quantization.bias", [2**31], "quantization.bias[0]", "integer in"),
        ("quantization.bias", {"dist": "uniform"}, "quantization.bias.dist", "must be 'integers'"),
        ("quantization.activation", "TANH", "quantization.activation", "one of NONE"),
        ("quantization.scale", 1.0, "quantization.scale", "unknown field"),
        ("quantization.calibrate", {"samples": 4}, "quantization.input", "takes its parameters from the converter"),
    ],
)
def test_each_bad_field_is_named(path, value, field, message):
    with pytest.raises(CaseError) as err:
        case_with(path, value)
    assert err.value.field == field and message in str(err.value), str(err.value)
    assert str(err.value).startswith(f"cases/q.yaml: case 'q': field '{field}': ")


def test_a_missing_part_and_an_int16_zero_point_are_named():
    with pytest.raises(CaseError, match="output.*missing field"):
        case_with("quantization.output", delete=True)
    with pytest.raises(CaseError, match="must be 0 for int16"):
        case_with(dtypes=["int16"])


@pytest.mark.parametrize(
    "top, field",
    [
        ({"op": "conv3d"}, "op"),
        ({"dtypes": ["float32"]}, "dtypes"),
        ({"attrs": {"strides": 1, "padding": [[0, 0], [1, 1], [1, 1], [0, 0]]}}, "attrs.padding"),
        ({"expected": {"layout": "NHWC", "value": [[[[1]]]]}}, "expected"),
    ],
)
def test_what_a_quantized_case_cannot_be(top, field):
    with pytest.raises(CaseError) as err:
        case_with(**top)
    assert err.value.field == field


def test_quantize_rounds_half_away_from_zero_and_saturates():
    real = np.array([0.25, -0.25, 0.75, 100.0, -100.0])
    assert quantize(real, 0.5, 0, np.int8).tolist() == [1, -1, 2, 127, -128]
    assert quantize(real, 0.5, -3, np.int8).tolist() == [-2, -4, -1, 127, -128]
