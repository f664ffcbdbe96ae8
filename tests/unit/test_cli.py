"""The ``harness`` command (harness/cli.py): every subcommand, and every wrong use ending in a clear message.

Most subcommands run in-process through ``cli.main`` (``show`` and ``repro`` call TensorFlow in the isolated
child, as the runner does); ``verify`` and the console script run in a subprocess, as a user runs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import MACHINES, ROOT

from harness import atomic, cli
from harness.registry.cases import parse_case
from harness.registry.loader import load_file
from harness.reports import results


@pytest.fixture(autouse=True)
def at_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def harness(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def wrong_use(capsys, *argv: str) -> str:
    """Run a wrong use: exit status 2, one ``harness: error:`` message, no traceback. Returns the message."""
    code, out, err = harness(capsys, *argv)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in out + err
    messages = [line for line in err.splitlines() if line.startswith("harness: error: ")]
    assert len(messages) == 1, err
    return messages[0]


# --- list ----------------------------------------------------------------------------------


def test_every_subcommand_and_the_pytest_plugin_print_their_help(capsys):
    """argparse %-formats help texts: a literal "%" in one (50% of ...) breaks --help of the whole command."""
    import argparse

    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        with pytest.raises(SystemExit) as exit_info:
            cli.parser().parse_args([name, "--help"])
        assert exit_info.value.code == 0, name
        assert "usage:" in capsys.readouterr().out, name
    proc = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "--memory-budget" in proc.stdout, proc.stderr[-1000:]


def test_list_prints_every_case_with_ids_ops_dtypes_and_tags(capsys):
    code, out, err = harness(capsys, "list", "cases/seeds.yaml")
    assert code == 0
    seeds = [c for c in load_file(ROOT / "cases/seeds.yaml", ROOT)]
    assert len(out.splitlines()) == 1 + len(seeds)
    line = next(ln for ln in out.splitlines() if ln.startswith("cases/seeds.yaml::transpose_stride2_same "))
    assert "conv2d_transpose" in line and "float32" in line and "seed" in line
    assert err.strip() == f"{len(seeds)} cases"


def test_list_filters_and_ids(capsys):
    code, out, _ = harness(capsys, "list", "--op", "conv1d", "--dtype", "float64", "--ids")
    ids = out.split()
    assert code == 0 and ids and all(i.endswith("[float64]") for i in ids)
    every = [c for f in sorted((ROOT / "cases").rglob("*.yaml")) for c in load_file(f, ROOT)]
    want = sorted(f"{c.id}[float64]" for c in every if getattr(c, "op", None) == "conv1d" and "float64" in c.dtypes)
    assert sorted(ids) == want
    code, out, _ = harness(capsys, "list", "--tag", "seed", "--ids")
    assert all(i.startswith("cases/seeds.yaml::") for i in out.split())


def test_list_reports_malformed_cases_and_fails(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - name: x\n    op: conv4d\n")
    code, out, err = harness(capsys, "list", str(bad))
    assert code == 1 and "MALFORMED" in out and "conv4d" in out and "1 malformed" in err


# --- show ----------------------------------------------------------------------------------


@pytest.mark.tensorflow
def test_show_prints_conversions_inputs_both_outputs_and_their_difference(capsys):
    code, out, _ = harness(capsys, "show", "cases/seeds.yaml::transpose_stride2_same[float32]")
    assert code == 0
    assert "filters: given OIHW [2, 4, 3, 3] -> HWOI [3, 3, 2, 4]" in out
    assert "layouts.rotate_180(w, 'HWOI')" in out
    for heading in (
        "inputs, as the op receives them",
        "reference output NHWC [1, 6, 6, 2]",
        "tensorflow output NHWC [1, 6, 6, 2]",
        "tensorflow - reference",
        "status: passed",
    ):
        assert heading in out
    # the first row of the documents' printed NCHW result (channel 0), as the reference's first plane
    assert "[[ 4.  3.  6.  2.  7.  3.]" in out


@pytest.mark.tensorflow
def test_show_accepts_a_bare_name_and_the_dtype_option(capsys):
    code, out, _ = harness(capsys, "show", "conv2d_same_2x5x5", "--dtype", "float64")
    assert code == 0 and out.startswith("cases/seeds.yaml::conv2d_same_2x5x5[float64]")


# --- new / repro ---------------------------------------------------------------------------


def test_new_scaffolds_a_valid_case_with_its_output_shape(capsys):
    code, out, _ = harness(
        capsys, "new", "conv2d", "--shape", "input=1,9,9,3", "--strides", "2", "--padding", "VALID", "--name", "mine"
    )
    assert code == 0
    # VALID, 9 rows, 3-tap default kernel, stride 2: floor((9 - 3) / 2) + 1 = 4 rows and columns
    assert out.startswith("# output: NHWC [1, 4, 4, 4]")
    raw = yaml.safe_load(out)["cases"][0]
    case = parse_case("new.yaml", raw, 0)
    assert (case.name, case.op, case.attrs) == ("mine", "conv2d", {"strides": 2, "padding": "VALID"})
    assert case.inputs["input"].shape == (1, 9, 9, 3) and case.expected is None


def test_new_appends_to_a_case_file_that_then_loads(capsys, tmp_path):
    target = tmp_path / "mine.yaml"
    for name in ("first", "second"):
        code, _, err = harness(capsys, "new", "depthwise_conv2d", "--name", name, "--append", str(target))
        assert code == 0 and f"appended case {name!r}" in err
    loaded = load_file(target)
    assert [c.name for c in loaded] == ["first", "second"] and all(c.op == "depthwise_conv2d" for c in loaded)
    assert "already there" in wrong_use(capsys, "new", "depthwise_conv2d", "--name", "first", "--append", str(target))
    assert "conv2d's filters is HWIO (4 axes), got 2" in wrong_use(capsys, "new", "conv2d", "--shape", "filters=3,3")
    assert "expected NAME=VALUE" in wrong_use(capsys, "new", "conv2d", "--shape", "3,3")


@pytest.mark.tensorflow
def test_repro_writes_a_standalone_script_for_the_case(capsys, tmp_path):
    target = tmp_path / "repro.py"
    code, _, err = harness(capsys, "repro", "cases/seeds.yaml::depthwise_same_2x5x5[float32]", "-o", str(target))
    assert code == 0 and f"wrote {target}" in err
    text = target.read_text()
    compile(text, str(target), "exec")
    assert "cases/seeds.yaml::depthwise_same_2x5x5[float32]" in text and "tf.nn.depthwise_conv2d(" in text
    assert "status passed; TensorFlow agrees" in text  # the finding, from running the case
    code, out, _ = harness(capsys, "repro", "depthwise_same_2x5x5", "--no-run")
    assert code == 0 and out.startswith('"""Reproduce cases/seeds.yaml::depthwise_same_2x5x5[float32]')


# --- backends / export / check-npz ------------------------------------------------------------


def test_backends_lists_what_each_implements(capsys):
    code, out, _ = harness(capsys, "backends", "reference", "examples/naive_kernel/backend.yaml")
    assert code == 0
    assert out.startswith("reference             available\n")
    assert "naive_nchw" in out and "convention tf, data NCHW" in out
    assert "not a backend" in wrong_use(capsys, "backends", "nonsense")
    assert "not a backend" in wrong_use(capsys, "verify", "--backend", "nonsense")


@pytest.mark.tensorflow
def test_export_and_check_npz_round_trip_through_the_command(capsys, tmp_path):
    import numpy as np

    code, out, _ = harness(
        capsys, "export", "--npz", str(tmp_path), "cases/seeds.yaml", "--op", "conv2d", "--dtype", "float64"
    )
    assert code == 0 and "wrote 2 entries" in out
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for entry in manifest["entries"]:  # an "outside implementation" that returns the reference's output
        np.save(tmp_path / entry["output"], np.load(tmp_path / entry["npz"])["reference"])
    code, out, _ = harness(capsys, "check-npz", str(tmp_path))
    assert code == 0 and "2 passed, 0 failed" in out
    assert (tmp_path / "reports" / "report.html").is_file()
    assert "--npz" in wrong_use(capsys, "export", "cases/seeds.yaml")


# --- verify ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.tensorflow
def test_verify_runs_a_subset_with_a_progress_bar_and_writes_the_reports(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "verify",
            "cases/seeds.yaml",
            "--op",
            "atrous_conv2d",
            "--dtype",
            "float32",
            "-n",
            "0",
            "--reports",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "] 1/1  passed 1" in proc.stdout  # the bar's last state
    assert "atrous_conv2d" in proc.stdout and "total" in proc.stdout  # the summary table
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [r["id"] for r in doc["records"]] == ["cases/seeds.yaml::atrous_rate2_valid_10x10[float32]"]
    for name in ("junit.xml", "report.html", "summary.md"):
        assert (tmp_path / name).is_file()


# --- compare / report ----------------------------------------------------------------------


def record(case_id: str, status: str, margin: float = 0.1, tensorflow: str = "agrees", error: str = "") -> dict:
    return {
        "id": case_id,
        "kind": "case",
        "status": status,
        "margin": margin,
        "max_abs_error": margin * 1e-6,
        "tensorflow": tensorflow,
        "errors": [error] if error else [],
    }


def write_run(path: Path, records: list[dict], **environment) -> Path:
    run = results.Run({"tensorflow": "2.21.0", "onednn": "1", **environment}, {"complete": True}, [], records)
    atomic.write_atomic(path, run.to_json())
    return path


def test_compare_shows_two_machines_facts_side_by_side(capsys, tmp_path):
    machines = MACHINES
    zen4, spr = (json.loads((machines / f"{n}.json").read_text()) for n in ("amd-epyc-zen4", "intel-sapphire-rapids"))
    # the ops both records measured (a newer record probes more kernels: tf.raw_ops.Conv, Conv3D)
    zen4["kernel_paths"] = {op: paths for op, paths in zen4["kernel_paths"].items() if op in spr["kernel_paths"]}
    zen4["probe"]["paths"] = {op: p for op, p in zen4["probe"]["paths"].items() if op in spr["probe"]["paths"]}
    a = write_run(
        tmp_path / "a.json", [record("x[float16]", "xfailed", tensorflow="raises UnimplementedError (NCHW)")], **zen4
    )
    b = write_run(tmp_path / "b.json", [record("x[float16]", "passed")], **spr)
    code, out, _ = harness(capsys, "compare", str(a), str(b))
    assert code == 0
    side = out.split("what the verdicts depended on", 1)[1].split("environment differences", 1)[0]
    assert " *CPU  " in side and "A: AMD EPYC (x86_64)" in side and "B: Intel(R) Xeon(R) (Sapphire Rapids)" in side
    assert " *oneDNN ISA" in side and "A: avx512_core_bf16" in side and "B: avx512_core_amx" in side
    assert " *kernels float16" in side and "A: eigen\n" in side  # B: oneDNN, like float32
    assert "  kernels float64   A: eigen\n  kernels int32" in side  # the same on both: no B line
    assert "kernel_paths.Conv2D.float16: eigen -> onednn" in out
    assert "changed behaviour: 1\n  x[float16]: xfailed: raises UnimplementedError (NCHW) -> passed: agrees" in out


def test_compare_reports_new_failures_fixed_changed_and_error_growth(capsys, tmp_path):
    a = write_run(
        tmp_path / "a.json",
        [
            record("x[float32]", "passed"),
            record("y[float32]", "failed", error="boom"),
            record("z[float32]", "xfailed", tensorflow="wrong_values"),
            record("g[float32]", "passed", 0.01),
            record("gone", "passed"),
        ],
    )
    b = write_run(
        tmp_path / "b.json",
        [
            record("x[float32]", "failed", error="TensorFlow wrong_values: outside"),
            record("y[float32]", "passed"),
            record("z[float32]", "passed"),
            record("g[float32]", "passed", 0.5),
            record("new", "passed"),
        ],
        onednn="0",
    )
    code, out, _ = harness(capsys, "compare", str(a), str(b))
    assert code == 1  # a new failure
    assert "environment differences: 1\n  onednn: 1 -> 0" in out
    assert " *oneDNN" in out and "A: on" in out and "B: off" in out
    assert "new failures: 1\n  x[float32]: passed -> failed  (TensorFlow wrong_values: outside)" in out
    assert "fixed: 1\n  y[float32]: failed -> passed" in out
    assert "changed behaviour: 1\n  z[float32]: xfailed: wrong_values -> passed: agrees" in out
    assert "g[float32]: margin 0.01 -> 0.5" in out
    assert "only in A: 1   only in B: 1" in out
    code, out, _ = harness(capsys, "compare", str(a), str(a))
    assert (
        code == 0
        and "new failures: 0" in out
        and "error growth (margin x2 or more, to at least 0.01 of the bound): 0" in out
    )


def test_report_rebuilds_the_reports_from_a_results_file(capsys, tmp_path):
    write_run(tmp_path / results.RESULTS_JSON, [record("x[float32]", "passed")])
    code, out, _ = harness(capsys, "report", str(tmp_path))
    assert code == 0 and (tmp_path / "report.html").is_file() and (tmp_path / "summary.md").is_file()


# --- wrong use ------------------------------------------------------------------------------


def test_wrong_uses_get_one_clear_message_and_status_2(capsys, tmp_path):
    assert "invalid choice: 'bogus'" in wrong_use(capsys, "bogus")
    assert "the following arguments are required: COMMAND" in wrong_use(capsys)
    assert "--op conv4d: unknown op" in wrong_use(capsys, "list", "--op", "conv4d")
    assert "--dtype float99: unknown dtype" in wrong_use(capsys, "verify", "--dtype", "float99")
    assert "no such case file or directory: nope.yaml" in wrong_use(capsys, "list", "nope.yaml")
    assert "no such case file or directory: nope.yaml" in wrong_use(capsys, "verify", "nope.yaml")
    msg = wrong_use(capsys, "show", "transpose_stride2")
    assert "no case 'transpose_stride2'; did you mean: cases/seeds.yaml::transpose_stride2_same" in msg
    assert "unknown dtype 'float99'" in wrong_use(capsys, "show", "transpose_stride2_same[float99]")
    assert "does not run at int32" in wrong_use(capsys, "show", "depthwise_same_2x5x5[int32]")
    assert "only verify passes arguments after --" in wrong_use(capsys, "list", "--", "-x")
    assert "contradicts" in wrong_use(capsys, "repro", "transpose_stride2_same[float32]", "--dtype", "float64")
    assert "no such case file cases/nope.yaml" in wrong_use(capsys, "show", "cases/nope.yaml::x")
    assert "no case name" in wrong_use(capsys, "show", "cases/seeds.yaml::")
    missing = tmp_path / "missing.json"
    assert f"{missing}: no such file" in wrong_use(capsys, "compare", str(missing), str(missing))
    notjson = tmp_path / "x.json"
    notjson.write_text("{")
    assert "not valid JSON" in wrong_use(capsys, "compare", str(notjson), str(notjson))
    notrun = tmp_path / "y.json"
    notrun.write_text("[]")
    assert "not a harness results file" in wrong_use(capsys, "compare", str(notrun), str(notrun))
    assert "--growth 1.0: must be greater than 1" in wrong_use(
        capsys, "compare", str(notrun), str(notrun), "--growth", "1"
    )
    assert "no such directory" in wrong_use(capsys, "report", str(tmp_path / "nowhere"))
    assert "no such file" in wrong_use(capsys, "report", str(tmp_path))
    assert "unknown op 'conv4d'" in wrong_use(capsys, "new", "conv4d")


def test_an_ambiguous_case_name_asks_for_the_file(capsys, tmp_path, monkeypatch):
    (tmp_path / "cases").mkdir()
    text = "cases:\n  - {name: same, op: conv2d, attrs: {strides: 1, padding: SAME}, inputs: {input: {layout: HW, value: [[1]]}, filters: {layout: HW, value: [[1]]}}}\n"
    (tmp_path / "cases" / "a.yaml").write_text(text)
    (tmp_path / "cases" / "b.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    msg = wrong_use(capsys, "show", "same")
    assert "in several files; give the file: cases/a.yaml::same, cases/b.yaml::same" in msg
    monkeypatch.chdir("/")  # no cases/ of the user's: the registry that ships with the harness
    assert cli.main(["list", "--op", "atrous_conv2d", "--tag", "seed", "--ids"]) == 0
    assert "cases/seeds.yaml::atrous_rate2_valid_10x10[float32]" in capsys.readouterr().out.split()


@pytest.mark.slow
def test_the_console_script_and_python_m_are_the_same_command():
    script = Path(sys.executable).parent / "harness"
    assert script.is_file(), "pip install -e . creates the harness console script"
    for argv in ([str(script)], [sys.executable, "-m", "harness"]):
        proc = subprocess.run(
            [*argv, "list", "cases/seeds.yaml", "--op", "atrous_conv2d", "--tag", "seed", "--ids"],  # one file: quick
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0 and proc.stdout.split() == [
            f"cases/seeds.yaml::atrous_rate2_valid_10x10[{d}]" for d in ("float32", "float64", "float16", "bfloat16")
        ]
        bad = subprocess.run([*argv, "show", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and bad.stderr.startswith("harness: error: no case 'nope'")
        assert "Traceback" not in bad.stderr
