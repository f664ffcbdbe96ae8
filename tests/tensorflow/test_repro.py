"""harness.reports.repro: standalone repro scripts (NumPy + TensorFlow only) that reproduce a case exactly.

The scripts of a representative set of cases are run, each in its own Python process (they import TensorFlow),
all started at once so that the TensorFlow imports overlap; the other tests need no TensorFlow: they check the
scripts' imports and syntax for many registry cases, and that the operand code rebuilds ``operand_array`` bit for
bit.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from functools import cache

import ml_dtypes
import numpy as np
import pytest
import support
from support import ROOT

from harness import ops
from harness.registry.cases import Case, operand_array, operand_arrays, parse_case
from harness.reports import repro
from harness.tf.environment import Environment, load_recorded

ALLOWED_IMPORTS = {"os", "sys", "numpy", "tensorflow"}

# A large case that exercises the generator path: both operands declared in other layouts than the op takes
# (NCHW data, OIHW filters written for convolution), > LITERAL_LIMIT elements each, and an output of 9216 elements.
LARGE = {
    "name": "large_generated",
    "op": "conv2d",
    "attrs": {"strides": 1, "padding": "SAME"},
    "inputs": {
        "input": {"layout": "NCHW", "generate": {"dist": "normal", "shape": [1, 8, 24, 24], "seed": 11}},
        "filters": {
            "layout": "OIHW",
            "kernel": "convolution",
            "generate": {"dist": "uniform", "shape": [16, 8, 6, 6], "seed": 12, "low": -2},
        },
    },
    "dtypes": ["float32"],
}


@cache
def registry() -> dict[str, Case]:
    return {c.id: c for c in support.registry()}


def case(case_id: str) -> Case:
    if case_id == "large_generated":
        return parse_case("tests/tensorflow/test_repro.py", LARGE, 0)
    return registry()[case_id]


# (case id, dtype, the verdict the script must print)
RUNS = {
    "seed_conv2d": ("cases/seeds.yaml::conv2d_same_2x5x5", "float32", "AGREES"),
    "seed_depthwise_bfloat16": ("cases/seeds.yaml::depthwise_same_2x5x5", "bfloat16", "AGREES"),
    "transpose_output_shape_float16": (
        "cases/sweeps/transpose.yaml::transpose_grid/format=NHWC/padding=asym/strides=2/dilations=1/"
        "output_shape=smallest/shape=b2_3x5_k2x3",
        "float16",
        "AGREES",
    ),
    "large_generated": ("large_generated", "float32", "AGREES"),
    "error_contract": ("cases/errors.yaml::transpose_channel_mismatch", "float32", None),  # the declared class
    "divergence": ("cases/known_divergences.yaml::depthwise_strided_dilated_6x7", "float32", "DIFFERS"),
}


ENV_ON = load_recorded(ROOT / "tests" / "machines" / "amd-epyc-zen4.json")
ENV_OFF = load_recorded(ROOT / "tests" / "machines" / "amd-epyc-zen4-onednn-off.json")


def here() -> Environment:
    return Environment.current()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every script of RUNS, run in its own process, all at once (about 3 s each, TensorFlow's import)."""
    directory = tmp_path_factory.mktemp("repro")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONPATH", None)
    procs = {}
    for key, (case_id, dtype, _) in RUNS.items():
        path = directory / f"{key}.py"
        path.write_text(repro.script(case(case_id), dtype, here(), finding=f"test_repro: {key}"), encoding="utf-8")
        procs[key] = subprocess.Popen(
            [sys.executable, str(path)],
            cwd=directory,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


def verdict(stdout: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("verdict: ")]
    assert len(lines) == 1, stdout
    return lines[0].split()[1]


@pytest.mark.parametrize("key", [k for k, (_, _, want) in RUNS.items() if want])
def test_scripts_print_the_harness_verdict(outputs, key):
    result = outputs[key]
    assert result.returncode == 0, result.stderr[-2000:]
    case_id, dtype, want = RUNS[key]
    assert verdict(result.stdout) == want, result.stdout
    assert f"calling tf.nn.{case(case_id).op} ..." in result.stdout
    assert "TensorFlow output shape:" in result.stdout and "bound:" in result.stdout


def test_the_large_case_compares_checksums(outputs):
    out = outputs["large_generated"].stdout
    assert "reference output shape:  [1, 24, 24, 16]" in out and "sum of squares:" in out


def test_the_divergence_is_a_wrong_shape(outputs):
    out = outputs["divergence"].stdout
    assert "TensorFlow output shape: [1, 4, 3, 2]" in out and "reference output shape:  [1, 3, 4, 2]" in out


def test_the_error_contract_reports_the_raised_class(outputs):
    result = outputs["error_contract"]
    assert result.returncode == 0, result.stderr[-2000:]
    c = case(RUNS["error_contract"][0])
    spec = ops.get(c.op)
    want = c.expect_error.tensorflow_error(here().eigen(spec.tf_kernels, "float32", spec.tf_padding_kind(c.attrs)))
    assert f"TensorFlow raised {want}: " in result.stdout
    assert verdict(result.stdout) == "AGREES"
    assert f"expected: TensorFlow raises {want}" in result.stdout
    assert result.stdout.index("calling tf.nn.conv2d_transpose ...") < result.stdout.index("TensorFlow raised")


# --- the scripts' text, without TensorFlow ---------------------------------------------------------------


def imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or "").split(".")[0] if node.level == 0 else ".")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("__import__", "exec", "eval"):
            found.add(node.func.id)
    return found


def sample_cases() -> list[tuple[Case, str]]:
    """A few cases of every op and dtype, error contracts and raw operands included (small ones: fast)."""
    picked, seen = [], {}
    for c in registry().values():
        if c.quantization is not None:  # TFLite's models: repro.script refuses them (test below)
            continue
        for dtype in c.dtypes:
            key = (c.op, dtype, c.expect_error is None, any(t.raw for t in c.inputs.values()))
            if seen.get(key, 0) < 2:
                seen[key] = seen.get(key, 0) + 1
                picked.append((c, dtype))
    return picked


def test_scripts_import_only_numpy_tensorflow_os_and_sys_and_are_readable():
    pairs = sample_cases() + [(case(cid), dt) for cid, dt, _ in RUNS.values()]
    assert len(pairs) > 40
    for c, dtype in pairs:
        source = repro.script(c, dtype, ENV_ON)
        assert imports(source) == ALLOWED_IMPORTS, c.id
        compile(source, c.id, "exec")
        assert 'os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"' in source
        assert source.index("TF_ENABLE_ONEDNN_OPTS") < source.index("import tensorflow")
        body = source.split('"""', 2)[2]  # the docstring names the case id, which may be long
        assert max(len(line) for line in body.splitlines()) <= 120, c.id


def test_the_header_names_the_case_versions_mode_and_finding():
    from harness.tf import wrappers

    c = case("cases/seeds.yaml::conv2d_same_2x5x5")
    source = repro.script(c, "float64", ENV_OFF, finding="TensorFlow returned garbage\nin two lines")
    settings = wrappers.settings()
    header = source.split("import os", 1)[0]
    assert header.startswith('"""Reproduce cases/seeds.yaml::conv2d_same_2x5x5[float64]')
    assert "tf.nn.conv2d" in header and f"TensorFlow {settings['tensorflow']}" in header
    assert f"NumPy {settings['numpy']}" in header and "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)" in header
    assert "#   TensorFlow returned garbage\n#   in two lines" in header
    assert "on AMD EPYC" in header and "TensorFlow ran Eigen's kernel" in header
    assert 'os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"' in source
    assert "finding" not in repro.script(c, "float64", ENV_OFF).split("import os", 1)[0].lower()


def test_the_call_uses_the_harness_arguments():
    c = case(RUNS["transpose_output_shape_float16"][0])
    source = repro.script(c, "float16", ENV_ON)
    arrays = operand_arrays(c, "float16")
    resolved = ops.get(c.op).resolved(arrays, c.attrs)["output_shape"]
    call = "".join(line.strip() for line in source.split("output = ", 1)[1].split(")\n", 1)[0].splitlines())
    assert call == (
        'tf.nn.conv2d_transpose(input_nhwc,filters_hwoi,data_format="NHWC",'
        f"padding=[[0, 0], [0, 2], [1, 0], [0, 0]],strides=2,dilations=1,output_shape={resolved},"
    )


@pytest.mark.parametrize(
    "case_id",
    [
        "cases/raw_conv.yaml::raw_conv_2d_explicit",
        "cases/fused_conv.yaml::fused_resize_up_reflect_same",
        "cases/raw_backprop.yaml::conv2d_backprop_input_v2_same_strided",
        "cases/raw_backprop.yaml::conv2d_backprop_input_same_strided",
    ],
)
def test_a_raw_op_is_called_with_keywords_only(case_id):
    """tf.raw_ops functions take keyword arguments only: the script passes every operand and attribute by name, the
    operands (and sizes) first in the op's order."""
    c = case(case_id)
    tree = ast.parse(repro.script(c, c.dtypes[0], ENV_ON))
    spec = ops.get(c.op)
    (call,) = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and getattr(node.targets[0], "id", "") == "output"
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == spec.function
    ]
    assert not call.args
    first = list(spec.positional or [o.name for o in spec.operands])
    assert [k.arg for k in call.keywords][: len(first)] == first


def test_a_script_runs_under_the_isa_cap_the_harness_ran_under():
    avx2 = load_recorded(ROOT / "tests" / "machines" / "amd-epyc-zen4-avx2.json")
    source = repro.script(case("cases/seeds.yaml::depthwise_same_2x5x5"), "bfloat16", avx2)
    assert source.index('os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"') < source.index("import tensorflow")
    assert "oneDNN ISA avx2, ONEDNN_MAX_CPU_ISA=AVX2" in source.split("import os", 1)[0]
    assert "ONEDNN_MAX_CPU_ISA" not in repro.script(case("cases/seeds.yaml::depthwise_same_2x5x5"), "bfloat16", ENV_ON)


def test_error_contract_states_the_expected_behaviour():
    c = case("cases/errors.yaml::transpose_channel_mismatch")
    on, off = repro.script(c, "float32", ENV_ON), repro.script(c, "float32", ENV_OFF)
    assert 'EXPECTED_ERROR = "AbortedError"' in on and 'EXPECTED_ERROR = "InvalidArgumentError"' in off
    assert "The harness's reference raises ValueError: conv2d_transpose: argument 'filters'" in on
    assert "reference = " not in on
    unmeasured = repro.script(c, "float32", Environment("2.21.0", True))  # either class, and says why
    assert (
        'EXPECTED_ERROR = "AbortedError or InvalidArgumentError"' in unmeasured
        and "whichever kernel runs" in unmeasured
    )


def test_bad_requests_raise():
    c = case("cases/seeds.yaml::depthwise_same_2x5x5")
    with pytest.raises(ValueError, match="int32"):
        repro.script(c, "int32", ENV_ON)
    bad = parse_case(
        "x.yaml",
        {
            **LARGE,
            "inputs": {
                **LARGE["inputs"],
                "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": [3, 3, 3, 4]}},
            },
        },
        0,
    )
    with pytest.raises(ValueError, match="the reference rejects this case"):
        repro.script(bad, "float32", ENV_ON)


# --- the operands rebuild operand_array bit for bit ------------------------------------------------------


def rebuilt(c: Case, name: str, dtype: str) -> np.ndarray:
    """What the script's operand code computes (before its tf.cast for bfloat16)."""
    namespace = {"np": np}
    exec(repro.operand_code(c, name, dtype), namespace)
    value = namespace[repro.variable_name(c, name)]
    return value.astype(ml_dtypes.bfloat16) if dtype == "bfloat16" else value


def bit_identical(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))
    )


GENERATED = [  # (layout, shape, kernel, dist params) of large generated operands of a conv2d: every code path
    ("NHWC", [1, 20, 20, 16], "correlation", {"dist": "normal", "mean": 0.5, "std": 3}),
    ("NCHW", [2, 8, 18, 18], "correlation", {"dist": "uniform", "low": -1e-3, "high": 7}),
    ("CHW", [8, 24, 24], "correlation", {"dist": "integers", "low": -100, "high": 100}),
    ("HWC", [30, 30, 8], "correlation", {"dist": "arange", "start": -3, "step": 3}),
]


@pytest.mark.parametrize("layout, shape, kernel, gen", GENERATED, ids=[g[0] for g in GENERATED])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_generated_operands_are_bit_identical(layout, shape, kernel, gen, dtype):
    channels = shape[layout.index("C")]
    raw = {
        "name": "g",
        "op": "conv2d",
        "attrs": {"strides": 1, "padding": "SAME"},
        "inputs": {
            "input": {"layout": layout, "generate": {**gen, "shape": shape, "seed": 3}},
            "filters": {
                "layout": "OIHW",
                "kernel": "convolution",
                "generate": {"dist": "normal", "shape": [16, channels, 6, 6], "seed": 4},
            },
        },
        "dtypes": [dtype],
    }
    c = parse_case("g.yaml", raw, 0)
    for name in ("input", "filters"):
        code = repro.operand_code(c, name, dtype)
        assert "np.array(" not in code and ("default_rng" in code or "np.arange" in code)  # code, not a literal
        assert bit_identical(rebuilt(c, name, dtype), operand_array(c, name, dtype)), (name, code)


def test_registry_operands_are_bit_identical():
    """Every operand of the sample (literals) and every large generated operand of the registry (code)."""
    large = [
        (c, dt)
        for c in registry().values()
        for dt in c.dtypes[:1]
        if any(t.generator and np.prod(t.shape) > repro.LITERAL_LIMIT for t in c.inputs.values())
    ]
    assert large
    for c, dtype in sample_cases() + large + [(case("large_generated"), "float32")]:
        for o in ops.get(c.op).operands:
            assert bit_identical(rebuilt(c, o.name, dtype), operand_array(c, o.name, dtype)), (c.id, dtype, o.name)


@pytest.mark.parametrize(
    "dtype, values",
    [
        ("float32", [0.1, -1 / 3, 1e-30, 3.4e38, -0.0, np.inf, -np.inf, 2.0**-149, 16777217.0]),
        ("float16", [0.1, 65504.0, 6e-8, -1 / 3, 2.0**-24, 1 + 2**-10]),
        ("bfloat16", [0.1, -1 / 3, 3e38, 1 + 2**-7, 2.0**-133]),
        ("float64", [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, 2.0**53 + 2]),
        ("int32", [0, -7, 2**31 - 1, -(2**31)]),
    ],
)
def test_literals_round_trip_exactly(dtype, values):
    from harness.conv.dtypes import dtype_of

    want = np.array(values).astype(dtype_of(dtype))
    source = repro._array_literal(want, dtype)
    got = eval(source, {"np": np})
    if dtype == "bfloat16":
        got = got.astype(ml_dtypes.bfloat16)
    assert bit_identical(got, want), source
    nan = eval(repro._array_literal(np.array([np.nan], dtype_of("float32")), "float32"), {"np": np})
    assert np.isnan(nan).all()


def test_a_quantized_case_gets_a_clear_refusal_not_a_script():
    c = case("cases/quantized.yaml::int8_conv2d_ties_of_one_half")
    with pytest.raises(ValueError, match="is a quantized case .*`harness show"):
        repro.script(c, "int8", ENV_ON)
