"""The property-based search (harness/selftest/search.py): a fixed derandomized budget per op, and self-tests of the machinery.

The per-op property tests run a fixed set of drawn configurations (derandomized, no example database),
so CI always checks the same examples; `make fuzz` runs the open-ended search.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from functools import cache
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from support import ROOT

from harness import ops
from harness.check import mutants
from harness.check.runner import run_case
from harness.conv.padding import normalize_window_arg, transpose_output_sizes, windows
from harness.registry import divergences, error_inputs
from harness.registry.cases import DIVERGENCES_FILE, Case, operand_arrays, parse_case
from harness.registry.loader import load_file
from harness.selftest import search
from harness.tf.environment import Environment

OPS = list(ops.OPS)
# The search's own machinery (shrinking, reporting) once per reference function: tf.nn.convolution and conv_transpose
# at ranks 1 to 3 are one reference each, drawn like the other ops (their forms are checked per rank below).
MACHINERY_OPS = [op for op in OPS if not op.startswith(("convolution_", "conv_transpose_")) or op.endswith("_2d")]
CI_EXAMPLES = (
    40  # per op (make fuzz searches for minutes), examples that reach a verdict; rejected known divergences come on top
)
ORIGIN = f"tests/tensorflow/test_properties.py, derandomized, {datetime.date.today().isoformat()}"
DRAW_ONLY = settings(database=None, derandomize=True, deadline=None, max_examples=40)  # strategy tests: no TensorFlow


@cache
def known() -> tuple[divergences.Divergence, ...]:
    entries, errors = divergences.load(ROOT / "cases" / DIVERGENCES_FILE, ROOT)
    assert errors == []
    return tuple(entries)


@cache
def _minimal(op: str) -> dict:
    """The simplest configuration the op's strategy draws (a derandomized search: the same every time, about a
    second each, and three tests ask for it)."""
    return copy.deepcopy(find(search.configs(op), lambda c: True, settings=DRAW_ONLY))


def minimal(op: str) -> dict:
    return copy.deepcopy(_minimal(op))  # a copy: a test may change it


def ci(max_examples: int = CI_EXAMPLES) -> settings:
    return search.search_settings(max_examples, derandomize=True)


def data_and_filter(op: str, config: dict) -> tuple[list[int], list[int]]:
    spec = ops.get(op)
    data = next(o for o in spec.operands if o.kind == "data")
    filt = next(o for o in spec.operands if o.kind == "filter")
    return config["inputs"][data.name]["generate"]["shape"], config["inputs"][filt.name]["generate"]["shape"]


def reproduces(text: str, tmp_path: Path) -> Case:
    """The single case of a ready-to-paste YAML document, saved under cases/found and read by the registry loader."""
    path = tmp_path / "cases" / "found" / "pasted.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    entries = load_file(path, tmp_path)
    assert len(entries) == 1 and isinstance(entries[0], Case), entries
    return entries[0]


def yaml_of(failure: search.CaseFailure) -> str:
    """The YAML part of a failure's message: everything after the paste hint."""
    message = str(failure)
    hint = search.PASTE_HINT.format(file=search.found_file(failure.config))
    assert hint in message
    return message.split(hint, 1)[1].strip() + "\n"


# --- the property itself, on a fixed budget ------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_tensorflow_agrees_with_the_reference_on_drawn_configurations(op):
    ci()(search.property_test(op, known(), Environment.current(), origin=ORIGIN))()


# --- the strategies ------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
@DRAW_ONLY
@given(data=st.data())
def test_a_drawn_configuration_round_trips_through_yaml_and_the_loader(op, data):
    config = data.draw(search.configs(op))
    assert yaml.safe_load(yaml.safe_dump(config)) == config
    assert set(config) == {"name", "op", "attrs", "inputs", "dtypes", "tags"} and config["tags"] == ["found"]
    assert len(config["dtypes"]) == 1 and config["op"] == op
    document = search.found_document(config, ORIGIN, Environment("2.21.0", True))
    assert yaml.safe_load(search.to_yaml(document)) == document
    printed = document["cases"][0]
    file = search.found_file(config)
    assert parse_case(file, printed, 0) == dataclasses.replace(
        parse_case(file, config, 0), description=printed["description"]
    )
    assert config["name"] == search.case_name(op, {k: v for k, v in config.items() if k != "name"})


@pytest.mark.parametrize("op", OPS)
@DRAW_ONLY
@given(data=st.data())
def test_drawn_configurations_are_legal(op, data):
    config = data.draw(search.configs(op))
    spec = ops.get(op)
    case = parse_case(search.found_file(config), config, 0)
    arrays = operand_arrays(case, case.dtypes[0])
    assert ops.kernel_fits(spec, {k: a.shape for k, a in arrays.items()}, case.attrs)
    out = spec.call(spec.reference, arrays, case.attrs)  # raises ValueError if the reference rejects it
    assert out.size > 0 and out.dtype == arrays[spec.operands[0].name].dtype
    if op == "conv2d_transpose":
        fmt = spec.data_format(case.attrs)
        want = case.attrs["output_shape"]
        assert [out.shape[fmt.index(c)] for c in "HW"] == want[-2:] if len(want) == 2 else list(out.shape) == want


@pytest.mark.parametrize("op", MACHINERY_OPS)
def test_shrinking_target_is_the_simplest_configuration(op):
    drawn = minimal(op)
    spec = ops.get(op)
    x_shape, w_shape = data_and_filter(op, drawn)
    assert x_shape == [1] * len(spec.formats[0]) and all(v == 1 for v in w_shape)
    assert drawn["dtypes"] == ["float32"] and drawn["attrs"]["padding"] == "VALID"
    assert "data_format" not in drawn["attrs"] and "dilations" not in drawn["attrs"]
    assert all(t["generate"]["seed"] == 0 for t in drawn["inputs"].values())
    forms = search.choices(op, Environment.current())
    if forms.stride_arg:
        simplest = search.spell([1] * (len(x_shape) - 2), spec.formats[0], forms.stride_spellings[0])
        assert drawn["attrs"].get(forms.stride_arg, search._OMIT) == simplest
    if op == "atrous_conv2d":
        assert drawn["attrs"]["rate"] == 1
    if op == "conv2d_transpose":
        assert drawn["attrs"]["output_shape"] == [1, 1, 1, 1]


def _spelling(value, fmt: str) -> str:
    n_spatial = len(fmt) - 2
    if value is None:
        return "omitted"
    if isinstance(value, int):
        return "int"
    return {n_spatial: "spatial", len(fmt): "full", 1: "one"}[len(value)]  # 1-D: a 1-list is "one"


def _features(op: str) -> dict:
    """Predicates on drawn configurations that the strategy must be able to satisfy."""
    spec, forms = ops.get(op), search.choices(op, Environment.current())
    fmt_of = lambda c: spec.data_format(c["attrs"])  # noqa: E731
    x = lambda c: dict(zip(fmt_of(c), data_and_filter(op, c)[0]))  # noqa: E731

    def spatial(c, arg):
        lengths = (1, len(fmt_of(c)) - 2, len(fmt_of(c)))
        return normalize_window_arg(op, arg, c["attrs"].get(arg), fmt_of(c), allowed_lengths=lengths, default=1)

    feats = {
        f"dtype {d}": (lambda d: lambda c: c["dtypes"] == [d])(d)  # noqa: B023
        for d in forms.dtypes
    }
    feats.update(
        {
            "SAME": lambda c: c["attrs"]["padding"] == "SAME",
            "batch 2": lambda c: x(c)["N"] == search.BATCH_MAX,
            f"{search.CHANNELS_MAX} channels": lambda c: x(c)["C"] == search.CHANNELS_MAX,
            f"size {search.SPATIAL_MAX}": lambda c: (
                max(v for k, v in x(c).items() if k not in "NC") == search.SPATIAL_MAX
            ),
            f"kernel {search.KERNEL_MAX}": lambda c: (
                search.KERNEL_MAX in data_and_filter(op, c)[1][: len(fmt_of(c)) - 2]
            ),
            "dilation > 1": lambda c: max(spatial(c, forms.dilation_arg)) > 1,
            "unequal dilations": lambda c: len(set(spatial(c, forms.dilation_arg))) > 1,
        }
    )
    if len(spec.formats[0]) - 2 == 1 or not {"spatial", "full"} & set(forms.dilation_spellings):
        del feats["unequal dilations"]  # one spatial axis, or one value for all of them (a rate)
    if len(spec.formats) > 1:
        feats[spec.formats[1]] = lambda c: fmt_of(c) == spec.formats[1]
    if forms.explicit_padding:
        feats["explicit padding"] = lambda c: isinstance(c["attrs"]["padding"], list)
    if forms.stride_arg:
        feats["stride > 1"] = lambda c: max(spatial(c, forms.stride_arg)) > 1
        for s in forms.stride_spellings:
            feats[f"strides spelled {s}"] = (
                lambda s: lambda c: _spelling(c["attrs"].get(forms.stride_arg), fmt_of(c)) == s  # noqa: B023
            )(s)
    for s in forms.dilation_spellings:
        feats[f"dilations spelled {s}"] = (
            lambda s: lambda c: _spelling(c["attrs"].get(forms.dilation_arg), fmt_of(c)) == s  # noqa: B023
        )(s)

    def size(operand, letter):
        axis = operand.layout.index(letter)
        return lambda c: c["inputs"][operand.name]["generate"]["shape"][axis] > 1

    if spec.kind in ("depthwise", "separable"):
        feats["multiplier > 1"] = size(spec.filter, "M")
    if spec.kind == "separable":
        feats["pointwise width > 1"] = size(
            next(o for o in spec.operands if o.kind == "filter" and o != spec.filter), "O"
        )
    if spec.kind == "transposed":
        if forms.output_shape_spatial:
            n = len(spec.formats[0]) - 2
            feats[f"{n}-value output_shape"] = lambda c: len(c["attrs"]["output_shape"]) == n
        if forms.stride_arg:  # stride 1 (atrous_conv2d_transpose) accepts one output size per axis
            feats["not the smallest output size"] = lambda c: _transpose_not_smallest(op, c)
    return feats


def _transpose_not_smallest(op: str, config: dict) -> bool:
    spec = ops.get(op)
    attrs = config["attrs"]
    fmt = spec.data_format(attrs)
    x_shape, w_shape = data_and_filter(op, config)
    strides, dilations, pad = spec.window_attrs(attrs)
    spatial = [c for c in fmt if c not in "NC"]
    pads = [pad] * len(spatial) if isinstance(pad, str) else pad
    shape = attrs["output_shape"]
    out = shape if len(shape) == len(spatial) else [shape[fmt.index(c)] for c in spatial]
    kernels = [w_shape[spec.filter.layout.index(c)] for c in spatial]
    return any(
        m != transpose_output_sizes(x_shape[fmt.index(c)], k, s, d, p)[0]
        for m, c, k, s, d, p in zip(out, spatial, kernels, strides, dilations, pads)
    )


@pytest.mark.parametrize("op, feature", [(op, f) for op in OPS for f in _features(op)])
def test_the_strategy_reaches_every_option(op, feature):
    find(
        search.configs(op, Environment.current()),
        _features(op)[feature],
        settings=settings(database=None, derandomize=True, max_examples=2000, phases=[Phase.generate]),
    )


@pytest.mark.parametrize("op", OPS)
def test_declared_argument_forms_are_exactly_what_the_reference_accepts(op):
    spec, forms = ops.get(op), search.choices(op, Environment.current())
    config = minimal(op)
    case = parse_case("x.yaml", config, 0)
    arrays = operand_arrays(case, "float32")
    fmt = spec.formats[0]
    values = [1] * (len(fmt) - 2)

    def accepts(attrs: dict) -> bool:
        try:
            spec.call(spec.reference, arrays, attrs)
        except ValueError:
            return False
        return True

    for arg, declared in ((forms.stride_arg, forms.stride_spellings), (forms.dilation_arg, forms.dilation_spellings)):
        if arg is None:
            continue
        spelled_declared = [search.spell(values, fmt, s) for s in declared]
        for s in search.SPELLINGS:
            value = search.spell(values, fmt, s)
            attrs = {k: v for k, v in config["attrs"].items() if k != arg}
            if value is not search._OMIT:
                attrs[arg] = value
            if s == "omitted" and arg in spec.required:
                continue  # a missing required argument: the loader reports it (attrs.<arg>: missing field)
            if s not in declared and any(value == d or (value is d) for d in spelled_declared):
                continue  # the same spelling as a declared one (1-D: "spatial" is "one")
            assert accepts(attrs) == (s in declared), (arg, s, value)
    explicit = {**config["attrs"], "padding": [[0, 0]] * len(fmt)}
    assert accepts(explicit) == forms.explicit_padding
    assert accepts({**config["attrs"], "padding": "SAME"})


def test_int32_is_drawn_for_exactly_the_ops_the_registry_runs_at_int32():
    registry = {
        c.op
        for f in sorted((ROOT / "cases").rglob("*.yaml"))
        for c in load_file(f, ROOT)
        if isinstance(c, Case) and "int32" in c.dtypes and c.op in ops.OPS  # the search draws the tf.nn ops
    }
    # int32 is drawn where TensorFlow was measured to have an int32 kernel: the registry runs exactly those ops
    assert registry == {op for op in ops.OPS if "int32" in search.choices(op, Environment.current()).dtypes}
    assert all("int32" not in search.choices(op).dtypes for op in ops.OPS)  # nothing measured: floats only


# --- the property fails, and prints a case that reproduces ----------------------------------


def _off_by_one(real):
    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        return (out + np.ones((), out.dtype)).astype(out.dtype)

    return broken


@pytest.mark.parametrize("op", MACHINERY_OPS)
def test_a_broken_reference_fails_with_the_simplest_case_as_yaml_that_reproduces(op, tmp_path):
    spec = ops.OPS[op]
    env = Environment.current()
    broken = dataclasses.replace(spec, reference=_off_by_one(spec.reference))
    with mock.patch.dict(ops.OPS, {op: broken}):
        with pytest.raises(search.CaseFailure) as failure:
            settings(ci(10), report_multiple_bugs=False)(search.property_test(op, known(), env, origin=ORIGIN))()
        assert failure.value.config == minimal(op)  # shrunk all the way: every configuration fails
        assert str(failure.value).startswith(failure.value.outcome.report())
        case = reproduces(yaml_of(failure.value), tmp_path)
        assert case == dataclasses.replace(
            parse_case(search.found_file(failure.value.config), failure.value.config, 0),
            file="cases/found/pasted.yaml",
            description=case.description,
        )
        assert "found by the property search" in case.description.lower() and ORIGIN in case.description
        assert run_case(case, case.dtypes[0], known(), env).status == "failed"
    assert run_case(case, case.dtypes[0], known(), env).status == "passed"  # the real reference: it was the break


MUTANT_EXAMPLES = (
    200  # the same budget finds the SAME-padding break, and finds nothing once it is a declared divergence
)
SAME_MUTANT = next(m for m in mutants.MUTANTS if m.name == "same_odd_pad_top_left")


def _with_same_mutant(real):
    def broken(*args, **kwargs):
        with SAME_MUTANT.apply():
            return real(*args, **kwargs)

    return broken


def _odd_same_padding(config: dict) -> bool:
    attrs = config["attrs"]
    fmt = attrs.get("data_format", "NHWC")
    x_shape, w_shape = data_and_filter("conv2d", config)
    sizes = [x_shape[fmt.index(c)] for c in "HW"]
    wins = windows(
        "conv2d",
        sizes,
        w_shape[:2],
        normalize_window_arg("conv2d", "strides", attrs["strides"], fmt, allowed_lengths=(1, 2, 4)),
        normalize_window_arg("conv2d", "dilations", attrs.get("dilations"), fmt, allowed_lengths=(1, 2, 4), default=1),
        attrs["padding"],
    )
    return any((w.pad_before + w.pad_after) % 2 for w in wins)


def test_a_subtle_convention_break_shrinks_to_a_case_that_needs_it(tmp_path):
    spec = ops.OPS["conv2d"]
    env = Environment.current()
    with mock.patch.dict(ops.OPS, {"conv2d": dataclasses.replace(spec, reference=_with_same_mutant(spec.reference))}):
        with pytest.raises(search.CaseFailure) as failure:
            settings(ci(MUTANT_EXAMPLES), report_multiple_bugs=False)(
                search.property_test("conv2d", known(), env, origin=ORIGIN)
            )()
        config = failure.value.config
        assert config["attrs"]["padding"] == "SAME" and _odd_same_padding(config)
        case = reproduces(yaml_of(failure.value), tmp_path)
        assert run_case(case, case.dtypes[0], known(), env).status == "failed"
    assert run_case(case, case.dtypes[0], known(), env).status == "passed"


@pytest.mark.slow
def test_a_known_divergence_condition_is_what_excludes_a_configuration():
    # The same break as above, declared as a divergence of every SAME conv2d: the search must now pass.
    synthetic = divergences.parse_divergence(
        "synthetic.yaml",
        {
            "id": "synthetic_same",
            "kind": "wrong_result",
            "summary": "s",
            "when": {"op": "conv2d", "padding": "SAME"},
            "tensorflow_versions": ">=0",
            "onednn": "any",
            "tensorflow_does": ["wrong_values"],
            "evidence": "e",
            "repro": "r",
        },
        0,
    )
    spec = ops.OPS["conv2d"]
    tally = search.Tally()
    with mock.patch.dict(ops.OPS, {"conv2d": dataclasses.replace(spec, reference=_with_same_mutant(spec.reference))}):
        ci(MUTANT_EXAMPLES)(
            search.property_test("conv2d", (*known(), synthetic), Environment.current(), origin=ORIGIN, tally=tally)
        )()
    assert tally.divergences["synthetic_same"] > 0 and not tally.failed


DEPTHWISE_STRIDED_DILATED = {  # the repro of depthwise_strided_dilated in cases/known_divergences.yaml, as drawn
    "name": "depthwise_conv2d_repro",
    "op": "depthwise_conv2d",
    "attrs": {"strides": [1, 2, 2, 1], "padding": "SAME", "dilations": [2, 2]},
    "inputs": {
        "input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": [1, 6, 7, 2], "seed": 0}},
        "filter": {"layout": "HWIM", "generate": {"dist": "normal", "shape": [3, 3, 2, 1], "seed": 0}},
    },
    "dtypes": ["float32"],
    "tags": ["found"],
}


def test_a_known_divergence_is_rejected_not_failed():
    env = Environment.current()
    tally = search.Tally()

    @ci(1)
    @given(st.just(DEPTHWISE_STRIDED_DILATED))
    def search_the_repro(config):
        search.check(config, known(), env, origin=ORIGIN, tally=tally)

    with pytest.raises(Unsatisfiable):  # its only example was rejected
        search_the_repro()
    assert tally.rejected == {"depthwise_conv2d_repro"} and tally.divergences["depthwise_strided_dilated"] == 1
    # Without the registry's divergences the same configuration fails: the exclusion is what keeps it out.
    with pytest.raises(search.CaseFailure) as failure:
        search.check(DEPTHWISE_STRIDED_DILATED, (), env, origin=ORIGIN)
    assert "wrong_shape" in str(failure.value)


# --- malformed configurations ---------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
@DRAW_ONLY
@given(data=st.data())
def test_invalid_draws_are_generated_error_inputs_the_reference_decides(op, data):
    config = data.draw(search.invalid_configs(op))
    assert config["reference_decides"] is True and config["tags"][:2] == ["found", "error"]
    assert config["tags"][2] in error_inputs.CLASSES
    assert config["name"] == search.case_name(op, {k: v for k, v in config.items() if k != "name"})
    case = parse_case(search.found_file(config), config, 0)
    assert case.reference_decides and yaml.safe_load(search.to_yaml({"cases": [config]}))["cases"][0] == config


def test_the_share_of_invalid_draws_is_what_is_asked():
    def draws(invalid_share: float, n: int) -> list[dict]:
        drawn: list[dict] = []

        @settings(DRAW_ONLY, max_examples=n)
        @given(search.drawn_configs("conv2d", invalid_share=invalid_share))
        def draw(config):
            drawn.append(config)

        draw()
        return drawn

    share = [bool(c.get("reference_decides")) for c in draws(0.25, 200)]
    assert 0.1 < sum(share) / len(share) < 0.45, sum(share) / len(share)
    assert not any(c.get("reference_decides") for c in draws(0, 50))


def _accepts_nonpositive_windows(real):
    """A reference whose window checks are gone: a stride or dilation of 0 or less computes as 1 (a validation
    bug no valid configuration can show)."""

    def positive(value):
        if isinstance(value, list):
            return [positive(v) for v in value]
        return 1 if isinstance(value, int) and not isinstance(value, bool) and value <= 0 else value

    def broken(*args, **kwargs):
        return real(*args, **{k: positive(v) if k in ("strides", "dilations") else v for k, v in kwargs.items()})

    return broken


def test_invalid_draws_find_a_reference_that_accepts_what_tensorflow_rejects(tmp_path):
    """Only malformed draws can see a broken argument check: with them the search finds it and prints a case that
    reproduces it; valid draws alone never do."""
    spec = ops.OPS["conv2d"]
    env = Environment.current()
    with mock.patch.dict(
        ops.OPS, {"conv2d": dataclasses.replace(spec, reference=_accepts_nonpositive_windows(spec.reference))}
    ):
        valid_only = search.property_test("conv2d", known(), env, origin=ORIGIN, invalid_share=0)
        settings(ci(30), report_multiple_bugs=False)(valid_only)()  # nothing to find
        with pytest.raises(search.CaseFailure) as failure:
            settings(ci(60), report_multiple_bugs=False)(
                search.property_test(
                    "conv2d", known(), env, origin=ORIGIN, invalid_share=1, invalid_classes=("int_value",)
                )
            )()
        attrs = failure.value.config["attrs"]
        assert any(v <= 0 for a in ("strides", "dilations") for v in np.ravel(attrs.get(a, 1))), attrs
        assert "raises InvalidArgumentError" in str(failure.value)
        case = reproduces(yaml_of(failure.value), tmp_path)
        assert case.reference_decides and run_case(case, case.dtypes[0], known(), env).status == "failed"
    assert run_case(case, case.dtypes[0], known(), env).status == "passed"  # the real reference rejects it


# --- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--op", "conv4d"], "invalid choice: 'conv4d'"),
        (["--minutes", "0"], "must be a positive number of minutes, got '0'"),
        (["--minutes", "soon"], "must be a positive number of minutes, got 'soon'"),
        (["--max-examples", "-3"], "must be a positive integer, got '-3'"),
        (["--seed", "x"], "argument --seed"),
        (["--invalid-share", "0.3"], "expected one of 0, 0.25, 0.5, 0.75, 1"),
    ],
)
def test_wrong_use_is_a_clear_message_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        search.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_save_must_be_a_directory(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SystemExit) as exit_:
        search.main(["--op", "conv1d", "--max-examples", "1", "--save", str(file)])
    assert exit_.value.code == 2 and "is not a directory" in capsys.readouterr().err


def test_a_clean_search_exits_0_and_saves_nothing(tmp_path, capsys):
    assert (
        search.main(["--op", "conv1d", "--max-examples", "15", "--seed", "3", "--save", str(tmp_path / "found")]) == 0
    )
    out = capsys.readouterr().out
    assert "no failures" in out and "seed=3" in out and not (tmp_path / "found").exists()


def test_a_failing_search_saves_a_registry_file_and_exits_1(tmp_path, capsys):
    spec = ops.OPS["atrous_conv2d"]
    with mock.patch.dict(ops.OPS, {"atrous_conv2d": dataclasses.replace(spec, reference=_off_by_one(spec.reference))}):
        code = search.main(
            ["--op", "atrous_conv2d", "--max-examples", "5", "--seed", "3", "--save", str(tmp_path / "found")]
        )
    assert code == 1
    (path,) = (tmp_path / "found").glob("*.yaml")
    assert path.name.startswith("atrous_conv2d_") and f"saved: {path}" in capsys.readouterr().out
    (case,) = load_file(path, tmp_path)
    assert isinstance(case, Case) and case.name == path.stem and case.tags == ("found",)
    assert "--seed 3" in case.description
