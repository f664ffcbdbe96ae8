"""The .npz exchange (harness/exchange.py): export cases, let an "outside implementation" write outputs, check them.

The outside implementation here is NumPy reading the exported files only (the reference for most entries, a wrong
value for one, nothing for another; and the example kernel through the round trip in examples/naive_kernel/).
Exporting calls TensorFlow (in the isolated child, as the runner does) once per entry.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from support import ROOT

from harness import cli, exchange, ops
from harness.conv import reference
from harness.registry.cases import Case, operand_array
from harness.registry.loader import load_file
from harness.reports import report, results

SELECTED = [  # (file, case, dtype)
    ("cases/seeds.yaml", "conv2d_same_2x5x5", "float32"),
    ("cases/seeds.yaml", "conv2d_same_2x5x5", "bfloat16"),
    ("cases/seeds.yaml", "depthwise_valid_4x4x2_multiplier2", "float64"),
    ("cases/seeds.yaml", "transpose_stride2_same", "float32"),
    ("cases/known_divergences.yaml", "depthwise_strided_dilated_6x7", "float32"),  # TensorFlow: wrong shape (known)
    ("cases/errors.yaml", "conv2d_stride_0", "float32"),  # an error contract: not exported
]


def _case(file: str, name: str) -> Case:
    return next(c for c in load_file(ROOT / file, ROOT) if isinstance(c, Case) and c.name == name)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    directory = tmp_path_factory.mktemp("exchange")
    path = exchange.export([(_case(f, n), d) for f, n, d in SELECTED], directory, root=ROOT)
    return directory, path


def manifest_of(directory: Path) -> dict:
    return json.loads((directory / exchange.MANIFEST).read_text(encoding="utf-8"))


def entry(manifest: dict, name: str, dtype: str) -> dict:
    return next(e for e in manifest["entries"] if e["case"] == name and e["dtype"] == dtype)


def outside_implementation(directory: Path, e: dict) -> np.ndarray:
    """What a correct outside implementation computes from the .npz alone (here: the reference)."""
    with np.load(directory / e["npz"]) as data:
        dtype = ml_dtypes.bfloat16 if e["dtype"] == "bfloat16" else np.dtype(e["stored_dtype"])
        operands = [data[o["name"]].astype(dtype) for o in e["operands"]]
    out = getattr(reference, e["op"])(*operands, **e["attrs"])
    return out.astype(np.float32) if e["dtype"] == "bfloat16" else out


# --- export ----------------------------------------------------------------------------------


def test_manifest_describes_the_export(exported):
    directory, path = exported
    assert path == directory / "manifest.json"
    m = manifest_of(directory)
    assert m["format"] == exchange.FORMAT and m["version"] == exchange.VERSION
    assert m["harness"] and m["tensorflow"] and m["numpy"] == np.__version__ and m["onednn"] in ("0", "1")
    assert m["output_suffix"] == ".out.npy"
    assert [e["id"] for e in m["entries"]] == [f"{f}::{n}[{d}]" for f, n, d in SELECTED[:-1]]
    assert m["skipped"] == [
        {"id": "cases/errors.yaml::conv2d_stride_0[float32]", "reason": "an error contract: no value to compute"}
    ]
    names = [e["npz"] for e in m["entries"]] + [e["output"] for e in m["entries"]]
    assert len(set(names)) == len(names)
    for e in m["entries"]:
        assert re.fullmatch(r"[A-Za-z0-9._-]+-[0-9a-f]{8}\.npz", e["npz"]), e["npz"]
        assert e["output"] == e["npz"][: -len(".npz")] + ".out.npy"
        assert (directory / e["npz"]).is_file() and not (directory / e["output"]).exists()


def test_npz_holds_the_operands_as_the_op_receives_them(exported):
    directory, _ = exported
    m = manifest_of(directory)
    for f, n, d in SELECTED[:-1]:
        e = entry(m, n, d)
        case = _case(f, n)
        spec = ops.get(case.op)
        with np.load(directory / e["npz"]) as data:
            assert set(data.files) == {
                *(o.name for o in spec.operands),
                "reference",
                "bound",
                *(["tensorflow"] if e["tensorflow"]["stored"] else []),
            }
            for o, described in zip(spec.operands, e["operands"]):
                want = operand_array(case, o.name, d)
                assert described == {
                    "name": o.name,
                    "kind": o.kind,
                    "shape": list(want.shape),
                    "layout": o.op_layout(e["data_format"]),
                }
                assert data[o.name].dtype == np.dtype(e["stored_dtype"])
                np.testing.assert_array_equal(data[o.name], want.astype(np.float32) if d == "bfloat16" else want)
            assert list(data["reference"].shape) == e["output_shape"]
            assert data["bound"].dtype == np.float64 and list(data["bound"].shape) == e["output_shape"]
        assert e["output_layout"] == e["data_format"] == spec.data_format(e["attrs"])


def test_bfloat16_is_stored_as_float32_exactly(exported):
    directory, _ = exported
    e = entry(manifest_of(directory), "conv2d_same_2x5x5", "bfloat16")
    assert e["stored_dtype"] == "float32"
    with np.load(directory / e["npz"]) as data:
        for key in ("input", "filters", "reference", "tensorflow"):
            a = data[key]
            assert a.dtype == np.float32
            np.testing.assert_array_equal(a.astype(ml_dtypes.bfloat16).astype(np.float32), a)


def test_tensorflow_agreeing_is_the_oracle(exported):
    directory, _ = exported
    e = entry(manifest_of(directory), "conv2d_same_2x5x5", "float32")
    assert e["tensorflow"] == {"behaviour": "agrees", "detail": "", "stored": True, "known_wrong": False}
    assert e["oracle"] == "tensorflow" and e["divergence"] is None
    assert e["attrs"] == _case("cases/seeds.yaml", "conv2d_same_2x5x5").attrs  # as passed to tf.nn.conv2d
    assert e["tolerance"]["exact"] is True  # integer-valued operands: exact equality


def test_the_bound_is_described(exported):
    directory, _ = exported
    kinds = set()
    for e in manifest_of(directory)["entries"]:
        tol = e["tolerance"]
        with np.load(directory / e["npz"]) as data:
            bound = data["bound"]
        if tol["exact"]:
            assert not bound.any() and tol["text"].startswith("exact")
        else:
            assert tol["c"] == 2.0 and tol["u"] > 0 and bound.max() > 0 and tol["override"] is None
        kinds.add(tol["exact"])
    assert kinds == {True, False}


def test_a_known_divergence_is_said_and_the_reference_is_the_oracle(exported):
    directory, _ = exported
    m = manifest_of(directory)
    e = entry(m, "depthwise_strided_dilated_6x7", "float32")
    assert e["tensorflow"]["behaviour"] == "wrong_shape" and e["tensorflow"]["known_wrong"] is True
    assert e["divergence"] == "depthwise_strided_dilated" and "depthwise_strided_dilated" in e["known_divergences"]
    assert e["oracle"] == "reference"
    with np.load(directory / e["npz"]) as data:
        assert list(data["tensorflow"].shape) != e["output_shape"]  # stored, but known to be wrong
    assert [d["id"] for d in m["divergences"]] == ["depthwise_strided_dilated"]


def test_transpose_attrs_are_as_passed_to_tf_nn(exported):
    directory, _ = exported
    e = entry(manifest_of(directory), "transpose_stride2_same", "float32")
    assert isinstance(e["attrs"]["output_shape"], list) and len(e["attrs"]["output_shape"]) == 4
    assert [o["layout"] for o in e["operands"]] == ["NHWC", "HWOI"]


# --- check -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checked(exported, tmp_path_factory):
    """Outputs for every entry but the transpose (missing); the float32 conv2d one deliberately wrong."""
    source, _ = exported
    directory = tmp_path_factory.mktemp("checked") / "x"
    shutil.copytree(source, directory)
    m = manifest_of(directory)
    for e in m["entries"]:
        if e["op"] == "conv2d_transpose":
            continue
        out = outside_implementation(directory, e)
        if e["case"] == "conv2d_same_2x5x5" and e["dtype"] == "float32":
            out = out.copy()
            out.flat[7] += 0.5
        np.save(directory / e["output"], out)
    reports = directory / "reports"
    return directory, exchange.check(directory, reports), reports


def test_check_statuses(checked):
    _, records, _ = checked
    status = {r["id"]: r["status"] for r in records}
    assert status == {
        "cases/seeds.yaml::conv2d_same_2x5x5[float32@npz]": "failed",
        "cases/seeds.yaml::conv2d_same_2x5x5[bfloat16@npz]": "passed",
        "cases/seeds.yaml::depthwise_valid_4x4x2_multiplier2[float64@npz]": "passed",
        "cases/seeds.yaml::transpose_stride2_same[float32@npz]": "skipped",
        "cases/known_divergences.yaml::depthwise_strided_dilated_6x7[float32@npz]": "passed",
    }


def test_check_records_have_the_shape_of_results_record(checked):
    from harness.check.runner import Outcome

    _, records, _ = checked
    case = _case("cases/seeds.yaml", "conv2d_same_2x5x5")
    keys = set(results.record(Outcome(case, "float32", "passed"), "x"))
    for r in records:
        assert keys <= set(r), keys - set(r)
        assert r["kind"] == "case" and r["backend"] == "npz"
    failed = next(r for r in records if r["status"] == "failed")
    assert {"report", "yaml", "arrays"} <= set(failed)
    assert {c["against"] for c in failed["comparisons"] if c["subject"] == "npz"} == {"reference", "tensorflow"}
    assert any(not c["ok"] for c in failed["comparisons"] if c["subject"] == "npz")
    assert "wrong_values" in failed["errors"][0] and failed["diagnosis"]
    missing = next(r for r in records if r["status"] == "skipped")
    assert "was not written" in missing["skip_reason"] and missing["op"] == "conv2d_transpose"
    known = next(r for r in records if r["case"] == "depthwise_strided_dilated_6x7")
    assert any(
        "known divergence 'depthwise_strided_dilated'" in n and "agrees with the reference" in n for n in known["notes"]
    )
    assert known["applicable_divergences"] == ["depthwise_strided_dilated"]


def test_check_writes_reports(checked):
    _, records, reports = checked
    for name in ("results.json", "report.html", "summary.md"):
        assert (reports / name).is_file()
    run = results.load(reports)
    assert [r["id"] for r in run.records] == [r["id"] for r in records]
    assert report.verdict(run) == "fail"
    assert "conv2d_same_2x5x5[float32@npz]" in (reports / "report.html").read_text(encoding="utf-8")
    assert "1 failed" in (reports / "summary.md").read_text(encoding="utf-8")


def _recheck(checked, tmp_path, name: str, dtype: str, make) -> dict:
    source, _, _ = checked
    directory = tmp_path / "x"
    shutil.copytree(source, directory, ignore=shutil.ignore_patterns("reports"))
    e = entry(manifest_of(directory), name, dtype)
    make(directory / e["output"], outside_implementation(directory, e))
    return next(r for r in exchange.check(directory) if r["case"] == name and r["dtype"] == dtype)


def test_a_wrong_dtype_fails_clearly(checked, tmp_path):
    r = _recheck(
        checked,
        tmp_path,
        "depthwise_valid_4x4x2_multiplier2",
        "float64",
        lambda path, out: np.save(path, out.astype(np.float32)),
    )
    assert r["status"] == "failed"
    assert "has dtype float32; this entry's dtype is float64" in r["errors"][0]


def test_a_wrong_shape_fails_clearly(checked, tmp_path):
    r = _recheck(
        checked,
        tmp_path,
        "depthwise_valid_4x4x2_multiplier2",
        "float64",
        lambda path, out: np.save(path, out[:, :, :1]),
    )
    assert r["status"] == "failed"
    assert "has shape [1, 2, 1, 4]; the output is [1, 2, 2, 4] in layout NHWC" in r["errors"][0]


def test_an_unreadable_output_fails_clearly(checked, tmp_path):
    r = _recheck(
        checked,
        tmp_path,
        "depthwise_valid_4x4x2_multiplier2",
        "float64",
        lambda path, out: path.write_bytes(b"not numpy"),
    )
    assert r["status"] == "failed" and "cannot read" in r["errors"][0]


def test_bfloat16_outputs_as_raw_bits(checked, tmp_path):
    r = _recheck(
        checked,
        tmp_path,
        "conv2d_same_2x5x5",
        "bfloat16",
        lambda path, out: np.save(path, out.astype(ml_dtypes.bfloat16).view(np.uint16)),
    )
    assert r["status"] == "passed"


def test_big_endian_outputs_are_read(checked, tmp_path):
    r = _recheck(
        checked,
        tmp_path,
        "depthwise_valid_4x4x2_multiplier2",
        "float64",
        lambda path, out: np.save(path, out.astype(">f8")),
    )
    assert r["status"] == "passed"


def test_outside_output_matching_tensorflow_where_it_is_known_wrong_passes_with_a_note(checked, tmp_path):
    def tensorflow_output(path, _):
        with np.load(path.parent / path.name.replace(".out.npy", ".npz")) as data:
            np.save(path, data["tensorflow"])

    r = _recheck(checked, tmp_path, "depthwise_strided_dilated_6x7", "float32", tensorflow_output)
    assert r["status"] == "passed"
    assert any("agrees with TensorFlow" in n for n in r["notes"])


# --- the command-line entry points --------------------------------------------------------


def export_args(directory, files=(), op=(), dtype=(), tag=()):
    return argparse.Namespace(
        directory=str(directory), files=list(files), op=list(op), dtype=list(dtype), tag=list(tag), onednn=None
    )


def test_cmd_export_and_cmd_check_npz(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    directory = tmp_path / "round"
    code = cli.cmd_export(export_args(directory, ["cases/seeds.yaml"], op=["conv2d"], dtype=["float32"]))
    out = capsys.readouterr().out
    assert code == 0 and "wrote 3 entries" in out and "check-npz" in out
    m = manifest_of(directory)
    assert {e["case"] for e in m["entries"]} == {
        "conv2d_same_2x5x5",
        "corr2d_valid_printed_random_5x5",
        "conv1x1_equals_matmul_3x8x8_to_5",
    }
    for e in m["entries"][:2]:
        np.save(directory / e["output"], outside_implementation(directory, e))
    code = cli.cmd_check_npz(argparse.Namespace(directory=str(directory), reports=None))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 passed, 0 failed, 1 without output" in out and "missing" in out
    assert (directory / "reports" / "report.html").is_file()

    # Exporting again replaces the earlier export: its outputs are removed, other files stay.
    (directory / "notes.txt").write_text("mine")
    assert (
        cli.cmd_export(export_args(directory, ["cases/seeds.yaml"], op=["conv2d"], dtype=["float32"], tag=["seed"]))
        == 0
    )
    capsys.readouterr()
    assert not list(directory.glob("*.out.npy")) and (directory / "notes.txt").read_text() == "mine"
    code = cli.cmd_check_npz(argparse.Namespace(directory=str(directory), reports=str(tmp_path / "r")))
    assert code == 1  # nothing was checked
    assert "0 passed, 0 failed, 3 without output" in capsys.readouterr().out


def test_the_round_trip_in_the_example_readme(tmp_path, monkeypatch):
    """The README's NumPy-only outside implementation (the example kernel), end to end."""
    text = (ROOT / "examples" / "naive_kernel" / "README.md").read_text(encoding="utf-8")
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "np.save" in b)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    directory = tmp_path / "exchange"
    cases = [c for c in load_file(ROOT / "cases" / "sweeps" / "conv2d.yaml", ROOT) if isinstance(c, Case)]
    picked = (
        [c for c in cases if "b2_5x8" in c.name and "NHWC" in c.name][:3]
        + [c for c in cases if "b2_5x8" in c.name and "NCHW" in c.name][:3]
        + [_case("cases/seeds.yaml", "conv2d_same_2x5x5")]
    )
    explicit = [
        c
        for c in load_file(ROOT / "cases" / "sweeps" / "conv2d_pairwise.yaml", ROOT)
        if isinstance(c, Case) and not isinstance(c.attrs.get("padding"), str)
    ][:2]
    picked += explicit
    assert explicit and {ops.get(c.op).data_format(c.attrs) for c in picked} == {"NHWC", "NCHW"}
    exchange.export([(c, "float32") for c in picked] + [(picked[-1], "float64")], directory, root=ROOT)
    assert 'Path("exchange")' in snippet
    exec(snippet.replace('Path("exchange")', f"Path({str(directory)!r})"), {"__name__": "outside"})
    records = exchange.check(directory)
    assert [r["status"] for r in records] == ["passed"] * len(records), [
        (r["id"], r["errors"]) for r in records if r["status"] != "passed"
    ]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "no such directory"),
        (lambda d: d.mkdir(), "no manifest"),
        (lambda d: (d.mkdir(), (d / "manifest.json").write_text("{not json")), "not a readable JSON manifest"),
        (lambda d: (d.mkdir(), (d / "manifest.json").write_text('{"format": "other"}')), "not a tf-conv-harness-npz"),
        (
            lambda d: (d.mkdir(), (d / "manifest.json").write_text('{"format": "tf-conv-harness-npz", "version": 9}')),
            "format version 9",
        ),
        (
            lambda d: (
                d.mkdir(),
                (d / "manifest.json").write_text(
                    '{"format": "tf-conv-harness-npz", "version": 1, "entries": [{"id": "x"}]}'
                ),
            ),
            "entries[0]: missing field",
        ),
    ],
)
def test_check_npz_wrong_use(tmp_path, setup, message):
    directory = tmp_path / "d"
    setup(directory)
    with pytest.raises(cli.UsageError, match=re.escape(message)):
        cli.cmd_check_npz(argparse.Namespace(directory=str(directory), reports=None))


def test_export_wrong_use(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(cli.UsageError, match="no case that computes a value"):
        cli.cmd_export(export_args(tmp_path / "e", ["cases/errors.yaml"]))
    with pytest.raises(cli.UsageError, match="unknown op"):
        cli.cmd_export(export_args(tmp_path / "e", op=["conv4d"]))
    with pytest.raises(cli.UsageError, match="no such case file"):
        cli.cmd_export(export_args(tmp_path / "e", ["cases/absent.yaml"]))
    (tmp_path / "file").write_text("x")
    with pytest.raises(cli.UsageError, match="not a directory"):
        cli.cmd_export(export_args(tmp_path / "file", ["cases/seeds.yaml"], op=["conv2d"], dtype=["float32"]))


def test_safe_names_are_unique_and_portable():
    a = exchange.safe_name("cases/sweeps/conv2d.yaml::grid/format=NHWC/padding=SAME", "float32")
    b = exchange.safe_name("cases/sweeps/conv2d.yaml::grid/format=NHWC/padding=SAME", "float64")
    c = exchange.safe_name("cases/other.yaml::grid/format=NHWC/padding=SAME", "float32")
    assert len({a, b, c}) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) and len(n) <= exchange.MAX_STEM + 9 for n in (a, b, c))
