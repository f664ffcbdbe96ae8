"""Quantized entries of the .npz exchange (harness/exchange.py): the model, the integer operands, the expected output
under every rounding; check-npz's exact comparison, the rounding it names, and the C example of examples/int8_kernel/.

Exporting builds each case's TFLite model and runs tf.lite's three paths (in TensorFlow's isolated process).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import ROOT

from harness import exchange
from harness.registry.cases import Case
from harness.registry.loader import load_file

QUANTIZED = "cases/quantized.yaml"
SELECTED = [  # (case, scheme)
    ("int8_conv2d_ties_of_one_half", "int8"),  # exact ties: the integer roundings and XNNPACK's float32 part
    ("int8_depthwise_16_channels_strided", "int8"),
    ("int8_transpose_conv_same_stride_2", "int8"),
    ("int16_conv2d_16x8", "int16"),  # 16x8: no float32 rounding, an int64 bias
]
TIES = "int8_conv2d_ties_of_one_half"


def _cases(file: str) -> dict[str, Case]:
    return {c.name: c for c in load_file(ROOT / file, ROOT) if isinstance(c, Case)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qexchange")
    cases = _cases(QUANTIZED)
    float_case = _cases("cases/seeds.yaml")["conv2d_same_2x5x5"]
    exchange.export([(cases[n], d) for n, d in SELECTED] + [(float_case, "float32")], directory, root=ROOT)
    return directory


def manifest_of(directory: Path) -> dict:
    return exchange.load_manifest(directory)


def entry(manifest: dict, name: str) -> dict:
    return next(e for e in manifest["entries"] if e["case"] == name)


def arrays(directory: Path, e: dict) -> dict[str, np.ndarray]:
    with np.load(directory / e["npz"]) as data:
        return {k: data[k] for k in data.files}


def test_a_quantized_entry_holds_model_operands_and_every_rounding(exported):
    m = manifest_of(exported)
    assert m["version"] == exchange.VERSION == 2
    assert [e["case"] for e in m["entries"]] == [n for n, _ in SELECTED] + ["conv2d_same_2x5x5"]
    assert "kind" not in m["entries"][-1] and m["entries"][-1]["tensorflow"]["behaviour"] == "agrees"
    layouts = {"conv2d": "OHWI", "depthwise_conv2d": "1HW(C*M)", "conv2d_transpose": "OHWI"}
    for name, scheme in SELECTED:
        e = entry(m, name)
        assert e["kind"] == "quantized" and e["dtype"] == scheme and e["oracle"] == "reference"
        assert "tensorflow" not in e and "tolerance" not in e
        model = (exported / e["model"]).read_bytes()
        assert model[4:8] == b"TFL3", "a TFLite flatbuffer carries the file identifier TFL3"
        assert e["model"] == e["npz"][: -len(".npz")] + ".tflite"
        a = arrays(exported, e)
        assert a["input"].dtype == np.dtype(scheme) and a["filter"].dtype == np.int8
        assert a["bias"].dtype == (np.int32 if scheme == "int8" else np.int64)
        shapes = {o["name"]: o["shape"] for o in e["operands"]}
        assert {k: list(a[k].shape) for k in ("input", "filter", "bias")} == shapes
        assert [o["layout"] for o in e["operands"]] == ["NHWC", layouts[e["op"]], "O"]
        want = ["double", "single", "double_half_up"] + (["float32"] if scheme == "int8" else [])
        assert list(e["roundings"]) == want
        for key in e["roundings"].values():
            assert a[key].dtype == np.dtype(scheme) and list(a[key].shape) == e["output_shape"]
        # BUILTIN_REF, a separate implementation, computed the double rounding's integers (checked at export)
        assert "double" in e["tflite"]["tflite-ref"], e["tflite"]


def test_the_multipliers_are_q31_of_the_real_multipliers(exported):
    """Each channel's (multiplier, shift) is ``M ~= multiplier * 2**(shift - 31)``, ``multiplier`` in [2**30, 2**31)
    and within half a Q31 unit of M's mantissa."""
    for name, _ in SELECTED:
        q = entry(manifest_of(exported), name)["quantization"]
        assert len(q["multiplier"]) == len(q["shift"]) == len(q["filter_scale"])
        for scale, mult, shift in zip(q["filter_scale"], q["multiplier"], q["shift"]):
            real = q["input_scale"] * scale / q["output_scale"]
            assert 2**30 <= mult < 2**31
            assert abs(mult * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32), (name, real, mult, shift)
        low, high = q["activation_range"]
        assert np.iinfo(np.dtype(entry(manifest_of(exported), name)["dtype"])).min <= low < high


def test_the_ties_case_tells_the_roundings_apart(exported):
    e = entry(manifest_of(exported), TIES)
    a = arrays(exported, e)
    assert not np.array_equal(a["expected_double"], a["expected_float32"])
    assert e["tflite"]["tflite"] == ["float32"], "XNNPACK rounds ties to even"


@pytest.fixture
def copy(exported, tmp_path):
    directory = tmp_path / "x"
    shutil.copytree(exported, directory)
    return directory


def _write(directory: Path, name: str, make) -> None:
    e = entry(manifest_of(directory), name)
    np.save(directory / e["output"], make(arrays(directory, e)))


def _record(records: list[dict], name: str) -> dict:
    return next(r for r in records if r["case"] == name)


def test_check_passes_an_exact_output_and_names_its_rounding(copy):
    for name, _ in SELECTED:
        _write(copy, name, lambda a: a["expected_double"])
    _write(copy, TIES, lambda a: a["expected_float32"])
    records = exchange.check(copy)
    for name, _ in SELECTED:
        r = _record(records, name)
        assert r["status"] == "passed", r["errors"]
        assert r["comparisons"][0]["ok"] and r["comparisons"][0]["max_abs_error"] == 0
    assert _record(records, "conv2d_same_2x5x5")["status"] == "skipped"
    ties = _record(records, TIES)
    assert any("under float32 rounding (as tf.lite's tflite at export)" in n for n in ties["notes"]), ties["notes"]

    strict = _record(exchange.check(copy, rounding="double"), TIES)
    assert strict["status"] == "failed"
    assert "rounds float32 (as tf.lite's tflite at export), not double as required" in strict["errors"][0]
    with pytest.raises(exchange.ExchangeError, match="unknown rounding 'nearest'"):
        exchange.check(copy, rounding="nearest")
    with pytest.raises(exchange.ExchangeError, match="has no rounding 'float32'"):
        exchange.check(copy, rounding="float32")  # the 16x8 entry has no XNNPACK rounding


def test_check_says_what_an_output_of_no_rounding_gets_wrong(copy):
    def off_by_one_everywhere(a):
        out = a["expected_double"].astype(np.int64) + 1
        return np.clip(out, -128, 127).astype(np.int8)

    _write(copy, "int8_depthwise_16_channels_strided", off_by_one_everywhere)
    r = _record(exchange.check(copy), "int8_depthwise_16_channels_strided")
    assert r["status"] == "failed"
    assert re.search(
        r"matches no rounding: \d+ of \d+ outputs differ from double rounding by up to 1 LSB, all above", r["errors"][0]
    )
    assert "where every rounding gives the same value: an error in the arithmetic" in r["errors"][0]


def test_a_tie_rule_of_its_own_is_told_from_an_arithmetic_error():
    double = np.array([3, -3, 5], np.int8)  # ties at index 0 (2.5) and 1 (-2.5): the roundings differ there
    half_even = np.array([2, -2, 5], np.int8)
    expected = {"double": double, "float32": half_even}
    text = exchange.rounding_differences(np.array([2, -3, 5], np.int8), expected)  # ties toward -inf
    assert text.startswith("1 of 3 outputs differ from double rounding by up to 1 LSB, all below (from float32: 1)")
    assert text.endswith("only where the roundings disagree (ties and near-ties): a tie rule of its own")
    text = exchange.rounding_differences(np.array([3, -2, 4], np.int8), expected)
    assert "1 where every rounding gives the same value" in text


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda a: a["expected_double"].astype(np.int32), "has dtype int32; this entry's dtype is int8: write int8"),
        (lambda a: a["expected_double"][:, :1], "has shape"),
    ],
)
def test_a_wrong_dtype_or_shape_fails_clearly(copy, make, message):
    _write(copy, TIES, make)
    r = _record(exchange.check(copy), TIES)
    assert r["status"] == "failed" and message in r["errors"][0], r["errors"]


def test_a_quantized_entry_without_its_fields_is_refused(copy):
    path = copy / exchange.MANIFEST
    text = path.read_text(encoding="utf-8").replace('"quantization"', '"quantisation"', 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(exchange.ExchangeError, match="missing field 'quantization'"):
        exchange.load_manifest(copy)


def test_exporting_again_removes_the_models(exported, copy):
    models = sorted(copy.glob("*.tflite"))
    assert len(models) == len(SELECTED)
    exchange.export([(_cases("cases/seeds.yaml")["conv2d_same_2x5x5"], "float64")], copy, root=ROOT)
    assert not list(copy.glob("*.tflite"))


# --- the worked example: examples/int8_kernel/README.md, run as written ---------------------------------------


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "examples" / "int8_kernel" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [shlex.split(line.split("#")[0]) for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to build the example kernel")
def test_the_c_kernel_example_as_its_readme_runs_it(tmp_path):
    """The README's commands in order: export, the kernel (all pass), the floor twin (caught: no rounding), the
    half-up twin (TFLite's optimized kernels' rounding: caught by --rounding double)."""
    directory = tmp_path / "int8-exchange"
    outputs = []
    for argv in _readme_commands():
        argv = [str(directory) if a == "int8-exchange" else a for a in argv]
        program = {".venv/bin/harness": [sys.executable, "-m", "harness"], ".venv/bin/python": [sys.executable]}
        done = subprocess.run(program[argv[0]] + argv[1:], cwd=ROOT, capture_output=True, text=True, timeout=600)
        outputs.append((argv, done.returncode, done.stdout + done.stderr))
    checks = [(rc, out) for argv, rc, out in outputs if "check-npz" in argv]
    assert [rc for rc, _ in checks] == [0, 1, 1], outputs
    entries = exchange.load_manifest(directory)["entries"]
    n = len(entries)
    assert n >= 12 and f"{n} entries: {n} passed, 0 failed" in checks[0][1]
    # the floor twin can only go wrong where a sum is shifted right: some shift < 0 and some sum to shift
    shifted = sum(
        min(e["quantization"]["shift"], default=0) < 0 and 0 not in e["operands"][0]["shape"] for e in entries
    )
    assert (
        f"{n} entries: {n - shifted} passed, {shifted} failed" in checks[1][1] and "matches no rounding" in checks[1][1]
    )
    assert f"{n} entries: {n - 3} passed, 3 failed" in checks[2][1]  # the cases whose ties differ
    text = (ROOT / "examples" / "int8_kernel" / "README.md").read_text(encoding="utf-8")
    for _, out in checks:
        assert out.splitlines()[0].split(": ", 1)[1] in text, "the README shows each check's summary line"
    assert "rounds double_half_up (as tf.lite's tflite-builtin at export), not double as required" in checks[2][1]
