"""Known divergences: the schema, the features conditions use, and how the runner applies them."""

import dataclasses

import numpy as np
import pytest
import yaml
from support import ROOT

from harness.check import runner
from harness.check.prepare import prepare
from harness.ops import get
from harness.registry import divergences as D
from harness.registry.cases import Case, CaseError
from harness.registry.loader import load_file
from harness.tf.environment import Environment, load_recorded
from harness.tf.isolation import Died, Raised, Returned

ENV_ON = load_recorded(ROOT / "tests" / "machines" / "amd-epyc-zen4.json")  # recorded, so no TensorFlow runs here
ENV_OFF = load_recorded(ROOT / "tests" / "machines" / "amd-epyc-zen4-onednn-off.json")

ENTRY = {
    "id": "grouped",
    "kind": "accepts_invalid",
    "summary": "s",
    "when": {"op": "conv2d", "grouped": True},
    "tensorflow_versions": ">=2.21,<2.22",
    "onednn": "any",
    "tensorflow_does": ["returns"],
    "evidence": "e",
    "repro": "r",
}


def entry(**changes):
    return D.parse_divergence("f.yaml", {**ENTRY, **changes}, 0)


def test_the_real_file_loads_without_errors_and_ids_are_unique():
    known, errors = D.load(ROOT / "cases" / "known_divergences.yaml", ROOT)
    assert errors == []
    assert len({d.id for d in known}) == len(known) >= 10
    assert all(d.evidence and d.repro for d in known)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"kind": "oops"}, "kind"),
        ({"when": {"colour": "red"}}, "when.colour"),
        ({"when": {"op": "conv4d"}}, "when.op"),
        ({"tensorflow_versions": "two point twenty"}, "tensorflow_versions"),
        ({"onednn": "maybe"}, "onednn"),
        ({"tensorflow_does": ["melts"]}, "tensorflow_does"),
        ({"repro": ""}, "repro"),
        ({"strict": "sometimes"}, "strict"),
        ({"colour": 1}, "colour"),
        ({"observed_on": [3]}, "observed_on"),
    ],
)
def test_malformed_entries_name_the_field(changes, field):
    with pytest.raises(CaseError) as err:
        entry(**changes)
    assert err.value.field == field and err.value.case == "grouped"


def test_yaml_on_and_off_are_read_as_modes():
    d = D.parse_divergence(
        "f.yaml",
        yaml.safe_load(
            "{id: x, kind: crash, summary: s, when: {op: conv2d}, "
            "tensorflow_versions: '>=2', onednn: on, tensorflow_does: aborts, "
            "evidence: e, repro: r}"
        ),
        0,
    )
    assert d.onednn == "on" and d.tensorflow_does == ("aborts",)


def test_applies_checks_mode_version_and_every_condition():
    d = entry(onednn="on")
    feats = {"op": "conv2d", "grouped": True}
    assert d.applies(feats, ENV_ON)
    assert not d.applies(feats, ENV_OFF)
    assert not d.applies(feats, Environment("2.22.0", True))
    assert not d.applies(feats, Environment("not installed", True))
    assert not d.applies({**feats, "grouped": False}, ENV_ON)
    assert entry(when={"op": "conv2d", "dtype": ["float16", "float32"]}).applies(
        {"op": "conv2d", "dtype": "float32"}, ENV_ON
    )


def _case(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    (case,) = load_file(path, tmp_path)
    assert isinstance(case, Case), case
    return case


def _features(case, dtype="float32", env=ENV_ON):
    return prepare(case, dtype).features(env)


def _conv(tmp_path, x_shape, w_shape, attrs, **extra):
    return _case(
        tmp_path,
        yaml.safe_dump(
            {
                "cases": [
                    {
                        "name": "c",
                        "op": "conv2d",
                        "attrs": attrs,
                        **extra,
                        "inputs": {
                            "input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": x_shape}},
                            "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": w_shape}},
                        },
                    }
                ]
            }
        ),
    )


def test_features_grouped_and_eigen_kernel(tmp_path):
    grouped = _conv(
        tmp_path,
        [1, 5, 5, 4],
        [3, 3, 2, 6],
        {"strides": 1, "padding": "SAME"},
        expect_error={"reference": "ValueError", "tensorflow": "InvalidArgumentError"},
    )
    feats = _features(grouped)
    assert feats["grouped"] and feats["expect_error"] and not feats["eigen_kernel"]
    assert _features(grouped, "float64")["eigen_kernel"] and _features(grouped, env=ENV_OFF)["eigen_kernel"]


def test_eigen_kernel_is_the_measured_path_never_a_dtype_list(tmp_path):
    case = _conv(tmp_path, [1, 5, 5, 2], [3, 3, 2, 3], {"strides": 1, "padding": "SAME"})
    assert _features(case, "float16")["eigen_kernel"] is True  # no AVX512-FP16 on this recorded EPYC: Eigen
    assert _features(case, "bfloat16")["eigen_kernel"] is False
    assert _features(case, "float32", Environment("2.21.0", True))["eigen_kernel"] is None  # nothing measured


def test_kernel_refuses_is_the_probes_valid_call_failing(tmp_path):
    case = _conv(tmp_path, [1, 5, 5, 2], [3, 3, 2, 3], {"strides": 1, "padding": "SAME"})
    avx2 = load_recorded(ROOT / "tests" / "machines" / "amd-epyc-zen4-avx2.json")
    assert _features(case, "bfloat16", avx2)["kernel_refuses"] is True  # oneDNN has no bfloat16 under AVX2
    assert _features(case, "float32", avx2)["kernel_refuses"] is False
    assert _features(case, "bfloat16")["kernel_refuses"] is False
    assert _features(case, "bfloat16", Environment("2.21.0", True))["kernel_refuses"] is None


def test_the_kernel_padding_is_what_tf_nn_passes_to_the_kernel(tmp_path):
    explicit = [[0, 0], [1, 1], [1, 1], [0, 0]]
    transpose = _case(
        tmp_path,
        yaml.safe_dump(
            {
                "cases": [
                    {
                        "name": "t",
                        "op": "conv2d_transpose",
                        "dtypes": ["float32"],
                        "attrs": {"output_shape": [1, 5, 5, 2], "strides": 1, "padding": explicit},
                        "inputs": {
                            "input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": [1, 5, 5, 3]}},
                            "filters": {"layout": "HWOI", "generate": {"dist": "normal", "shape": [3, 3, 2, 3]}},
                        },
                    }
                ]
            }
        ),
    )
    assert _features(transpose)["eigen_kernel"] is True  # an explicitly padded Conv2DBackpropInput stays on Eigen
    assert _features(transpose)["eigen_gradient_kernel"] is True
    conv = _conv(tmp_path, [1, 5, 5, 2], [3, 3, 2, 3], {"strides": 1, "padding": explicit})
    assert _features(conv)["eigen_kernel"] is False and _features(conv)["eigen_gradient_kernel"] is True
    depthwise = get("depthwise_conv2d")
    assert depthwise.tf_padding_kind({"padding": explicit}) == "explicit"
    assert depthwise.tf_padding_kind({"padding": explicit, "dilations": [2, 1]}) == "named"  # space_to_batch: VALID


def test_an_entry_can_depend_on_tensorflows_thread_count():
    one_thread = entry(when={"op": "conv2d", "tf_intra_op_threads": 1})
    assert ENV_ON.intra_op_threads is None  # a machine record says nothing of a run's threads
    assert one_thread.not_here(ENV_ON) == "needs tf_intra_op_threads 1, here unknown"
    assert one_thread.applies({"op": "conv2d"}, dataclasses.replace(ENV_ON, intra_op_threads=1))
    assert one_thread.not_here(dataclasses.replace(ENV_ON, intra_op_threads=0)) == "needs tf_intra_op_threads 1, here 0"
    run = Environment.from_record({**dataclasses.replace(ENV_ON, intra_op_threads=2).record(), "intra_op_threads": "2"})
    assert run.intra_op_threads == 2  # a run's record (the variable's text) reads back


def test_environment_conditions_say_why_an_entry_is_not_applicable_here():
    amx = entry(when={"op": "conv2d", "onednn_isa": ["avx512_core_amx"], "cpu.amx_bf16": True})
    assert amx.not_here(ENV_ON) == "needs onednn_isa one of avx512_core_amx, here avx512_core_bf16"
    assert not amx.applies({"op": "conv2d"}, ENV_ON)
    bf16 = entry(when={"op": "conv2d", "cpu.avx512_bf16": True})
    assert bf16.not_here(ENV_ON) is None and bf16.applies({"op": "conv2d"}, ENV_ON)
    fp16 = entry(when={"op": "conv2d", "cpu.avx512_fp16": True})
    assert fp16.not_here(ENV_ON) == "needs cpu.avx512_fp16 True, here False"
    assert entry(onednn="on").not_here(ENV_OFF) == "needs oneDNN on"
    assert "here unknown" in entry(when={"op": "conv2d", "onednn_isa": "avx2"}).not_here(Environment("2.21.0", True))


@pytest.mark.parametrize(
    "when, field", [({"cpu.avx9000": True}, "when.cpu.avx9000"), ({"onednn_isa": "avx1024"}, "when.onednn_isa")]
)
def test_unknown_cpu_features_and_isas_name_the_field(when, field):
    with pytest.raises(CaseError) as err:
        entry(when=when)
    assert err.value.field == field


@pytest.mark.parametrize("n, dilation, zero", [(4, 2, True), (3, 2, False), (5, 2, False)])
def test_tf_zero_output_follows_tensorflows_truncating_formula(tmp_path, n, dilation, zero):
    # k_eff = 5: TensorFlow's (n - 5 + 1) / 1 is 0 for n = 4 (empty output) and -1 for n = 3 (an error)
    case = _conv(tmp_path, [1, n, n, 1], [3, 3, 1, 1], {"strides": 1, "padding": "VALID", "dilations": dilation})
    feats = _features(case)
    assert feats["tf_zero_output"] is zero
    assert feats["kernel_exceeds_input"] is (n < 5)


def test_features_of_strides_dilations_and_padding(tmp_path):
    case = _conv(
        tmp_path,
        [1, 9, 9, 2],
        [3, 3, 2, 2],
        {"strides": [1, 2, 1, 1], "dilations": [1, 1, 2, 1], "padding": [[0, 0], [1, 1], [1, 1], [1, 0]]},
    )
    feats = _features(case)
    assert feats["stride_gt_1"] and feats["dilation_gt_1"] and feats["unequal_strides"]
    assert not feats["strided_dilated_axis"]  # the stride is on H, the dilation on W
    assert feats["padding"] == "explicit" and feats["padding_in_batch_or_channels"]


# --- the runner's statuses, with TensorFlow replaced by canned results ------------------------


@pytest.fixture
def plain_case(tmp_path):
    return _conv(tmp_path, [1, 5, 5, 2], [3, 3, 2, 3], {"strides": 1, "padding": "SAME"})


def _run(monkeypatch, case, tf_result, divergences, env=ENV_ON):
    monkeypatch.setattr(runner, "call_tensorflow", lambda op, args, kwargs: tf_result(args))
    return runner.run_case(case, "float32", divergences, env)


def _reference_result(args):
    return Returned(get("conv2d").reference(*args, 1, "SAME"))


def test_agreement_without_divergence_passes(monkeypatch, plain_case):
    assert _run(monkeypatch, plain_case, _reference_result, []).status == "passed"


def test_disagreement_without_divergence_fails_and_says_how(monkeypatch, plain_case):
    outcome = _run(monkeypatch, plain_case, lambda a: Returned(_reference_result(a).value + 1), [])
    assert outcome.status == "failed" and outcome.tensorflow.startswith("wrong_values")


def test_a_matching_divergence_turns_the_declared_behaviour_into_xfail(monkeypatch, plain_case):
    d = entry(when={"op": "conv2d"}, tensorflow_does=["raises InvalidArgumentError"])
    outcome = _run(monkeypatch, plain_case, lambda a: Raised("InvalidArgumentError", "no"), [d])
    assert outcome.status == "xfailed" and outcome.divergence is d


def test_a_divergence_that_no_longer_occurs_fails(monkeypatch, plain_case):
    d = entry(when={"op": "conv2d"}, tensorflow_does=["aborts"])
    outcome = _run(monkeypatch, plain_case, _reference_result, [d])
    assert outcome.status == "failed" and any("did not occur" in e for e in outcome.errors)


def test_a_per_entry_divergence_lets_a_coincidental_agreement_pass(monkeypatch, plain_case):
    d = entry(when={"op": "conv2d"}, tensorflow_does=["wrong_values"], strict="per_entry")
    outcome = _run(monkeypatch, plain_case, _reference_result, [d])
    assert outcome.status == "passed" and outcome.applicable == ("grouped",)


def test_a_different_behaviour_than_declared_fails(monkeypatch, plain_case):
    d = entry(when={"op": "conv2d"}, tensorflow_does=["wrong_shape"])
    outcome = _run(monkeypatch, plain_case, lambda a: Died("SIGABRT", "Check failed"), [d])
    assert outcome.status == "failed" and "but it aborts" in " ".join(outcome.errors)


def test_an_error_contract_passes_only_with_the_declared_class(monkeypatch, tmp_path):
    case = _conv(
        tmp_path,
        [1, 5, 5, 3],
        [3, 3, 2, 4],
        {"strides": 1, "padding": "SAME"},
        expect_error={"reference": "ValueError", "tensorflow": "InvalidArgumentError", "match": "in_channels"},
    )
    assert _run(monkeypatch, case, lambda a: Raised("InvalidArgumentError", "depth"), []).status == "passed"
    assert _run(monkeypatch, case, lambda a: Raised("ValueError", "depth"), []).status == "failed"
    returned = _run(monkeypatch, case, lambda a: Returned(np.zeros((1, 5, 5, 4), np.float32)), [])
    assert returned.status == "failed" and returned.tensorflow.startswith("returns")


@pytest.mark.parametrize(
    "x_shape,w_shape,attrs,want",
    [
        (
            (1, 1, 5, 1),
            (2, 1, 1, 1),
            {"strides": 1, "padding": "SAME", "dilations": [3, 1]},
            True,
        ),  # taps at rows -1, 2
        (
            (1, 1, 5, 1),
            (3, 1, 1, 1),
            {"strides": 1, "padding": [[0, 0], [1, 3], [0, 0], [0, 0]], "dilations": [2, 1]},
            True,
        ),
        ((1, 5, 5, 1), (3, 3, 1, 1), {"strides": 1, "padding": "SAME"}, False),  # every row reads input rows
        ((1, 5, 1, 1), (1, 2, 1, 1), {"strides": 1, "padding": "SAME", "dilations": [1, 3]}, False),  # W only: not rows
        ((1, 1, 5, 1), (2, 1, 1, 1), {"strides": 0, "padding": "SAME"}, False),  # invalid: no window, no crash
    ],
)
def test_padding_only_row_feature(x_shape, w_shape, attrs, want):
    padding = attrs.get("padding", "SAME")
    assert D._padding_only_line(get("conv2d"), x_shape, w_shape, "HWIO", "NHWC", attrs, padding, "H") is want


@pytest.mark.parametrize(
    "x_shape,w_shape,attrs,want",
    [
        # cases/found/conv2d_f7c2e32c.yaml: padded width 3, columns 0 and 2 read padding only
        ((1, 1, 1, 1), (1, 1, 1, 1), {"strides": [1, 2], "padding": [[0, 0], [0, 0], [1, 1], [0, 0]]}, True),
        ((1, 1, 3, 1), (1, 1, 1, 1), {"strides": [1, 2], "padding": [[0, 0], [0, 0], [1, 1], [0, 0]]}, True),  # 0, 4
        ((1, 1, 2, 1), (1, 1, 1, 1), {"strides": [1, 1], "padding": "VALID"}, False),
        ((1, 5, 1, 1), (1, 2, 1, 1), {"strides": 1, "padding": "SAME", "dilations": [1, 3]}, True),  # taps -1, 2
        ((1, 1, 5, 1), (2, 1, 1, 1), {"strides": 1, "padding": "SAME", "dilations": [3, 1]}, False),  # H only
    ],
)
def test_padding_only_column_feature(x_shape, w_shape, attrs, want):
    padding = attrs.get("padding", "SAME")
    assert D._padding_only_line(get("conv2d"), x_shape, w_shape, "HWIO", "NHWC", attrs, padding, "W") is want


@pytest.mark.parametrize(
    "x_shape,w_shape,attrs,want",
    [
        ((1, 5, 5, 1), (3, 3, 1, 1), {"strides": 1, "padding": "SAME"}, False),
        ((1, 2, 5, 1), (3, 3, 1, 1), {"strides": 1, "padding": "SAME"}, True),  # 3 rows over 2, padding aside
        ((1, 5, 3, 1), (1, 2, 1, 1), {"strides": 1, "padding": "SAME", "dilations": 3}, True),  # 4 wide over 3
        ((1, 5, 3, 1), (1, 2, 1, 1), {"strides": 1, "padding": "SAME", "dilations": [3, 1]}, False),  # rows only
    ],
)
def test_kernel_larger_than_input_feature(tmp_path, x_shape, w_shape, attrs, want):
    # one dilation for every axis counts on each (the effective kernel of a 2-wide tap pair at dilation 3 is 4)
    assert _features(_conv(tmp_path, list(x_shape), list(w_shape), attrs))["kernel_larger_than_input"] is want
