"""case_to_dict / case_yaml: every case in cases/ written back in the YAML schema parses to the same case."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from support import registry  # every well-formed case of cases/, read once per process

from harness.registry.cases import Case, Generator, TensorSpec, parse_case
from harness.registry.serialize import case_to_dict, case_yaml


def same_value(a, b) -> bool:
    """Equality that looks inside arrays (exactly: dtype, shape and every bit of every value) and containers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a.view(np.uint8), b.view(np.uint8))
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            same_value(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)


def test_the_registry_is_not_empty():
    cases = registry()
    assert len(cases) > 500
    assert any(c.expect_error for c in cases) and any(c.sweep for c in cases) and any(c.expected for c in cases)
    assert any("/out=" in c.name for c in cases)  # output_shape: all, expanded


def test_every_case_round_trips_through_the_dict():
    mismatched = []
    for case in registry():
        again = parse_case(case.file, case_to_dict(case), 0)
        if not same_value(again, dataclasses.replace(case, sweep=None)):
            mismatched.append(case.id)
    assert mismatched == []


@pytest.mark.slow
def test_every_case_round_trips_through_yaml_text():
    mismatched = []
    for case in registry():
        doc = yaml.safe_load(case_yaml(case))
        if doc != {"cases": [case_to_dict(case)]}:
            mismatched.append(case.id)
    assert mismatched == []


def test_the_dict_is_made_of_plain_yaml_types():
    def plain(v) -> bool:
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        if isinstance(v, list):
            return all(plain(x) for x in v)
        return v is None or type(v) in (str, int, float, bool)

    assert all(plain(case_to_dict(c)) for c in registry())


def test_defaults_are_left_out_but_dtypes_and_seeds_are_written():
    case = next(c for c in registry() if c.id == "cases/errors.yaml::conv2d_channel_mismatch")
    d = case_to_dict(case)
    assert list(d) == ["name", "op", "attrs", "inputs", "dtypes", "tags", "expect_error"]
    assert d["inputs"]["input"] == {
        "layout": "NHWC",
        "generate": {"dist": "normal", "shape": [1, 5, 5, 3], "seed": case.inputs["input"].generator.seed},
    }
    assert d["expect_error"] == {
        "reference": "ValueError",
        "tensorflow": "InvalidArgumentError",
        "match": [
            "conv2d: argument 'filters'",
            "in_channels (axis 2)=2",
            "must be 3",
            "filters [3, 3, 2, 4] HWIO",
            "input [1, 5, 5, 3] NHWC",
        ],
    }


def test_literals_are_ints_where_integer_valued_and_exact_floats_elsewhere():
    values = np.array([[1.0, -2.0, 0.1], [1e-300, -0.0, 2.0**60]])
    t = TensorSpec("HW", literal=values)
    w = TensorSpec("HW", generator=Generator("uniform", (1, 1), 5, {"low": -1.0, "high": 2}))
    case = Case("c", "f.yaml", "conv2d", {"strides": (1, 1), "padding": "SAME"}, {"input": t, "filters": w})
    d = case_to_dict(case)
    assert d["attrs"]["strides"] == [1, 1]
    row0, row1 = d["inputs"]["input"]["value"]
    assert [type(v) for v in row0] == [int, int, float] and row0[2] == 0.1
    assert type(row1[1]) is float and np.signbit(row1[1]) and row1[2] == 2.0**60
    assert d["inputs"]["filters"]["generate"] == {"dist": "uniform", "shape": [1, 1], "seed": 5, "high": 2}
    again = parse_case("f.yaml", yaml.safe_load(case_yaml(case))["cases"][0], 0)
    assert same_value(again.inputs["input"].literal, values)


def test_per_mode_error_classes_stay_a_mapping():
    case = next(c for c in registry() if c.expect_error and len(set(c.expect_error.tensorflow.values())) == 2)
    assert case_to_dict(case)["expect_error"]["tensorflow"] == dict(case.expect_error.tensorflow)


@pytest.mark.parametrize("name", ["conv2d_same_2x5x5", "transpose_stride2_same"])
def test_yaml_is_readable(name):
    case = next(c for c in registry() if c.id == f"cases/seeds.yaml::{name}")
    text = case_yaml(case)
    assert text.startswith("cases:\n- name: ")
    assert "attrs: {" in text and "dtypes: [" in text
    data = text.split("  op: ", 1)[1]  # the description is prose: PyYAML folds it at spaces only
    assert max(len(line) for line in data.splitlines()) <= 116
