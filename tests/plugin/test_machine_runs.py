"""Runs on this machine that depend on it: under an ISA cap, with a bad cap (subprocesses: the cap is read at
start), with a probe that fails (in this process)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest
from support import IN_PROCESS, PROJECT_INI, ROOT

from harness.tf import environment, machine

pytest_plugins = ["pytester"]

BELOW = machine.caps_below(machine.read_cpu())


def harness(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.tensorflow
@pytest.mark.skipif("AVX2" not in BELOW, reason="this CPU's own level is not above AVX2")
def test_a_run_under_a_cap_records_the_cap_and_the_isa_onednn_used_and_is_green(tmp_path):
    # the items whose verdicts the cap changes: the AVX-512 one-pixel-wide bug, and bfloat16 below AVX-512
    proc = harness(
        "verify",
        "cases/known_divergences.yaml",
        "--onednn-isa",
        "avx2",
        "-n",
        "0",
        "--reports",
        str(tmp_path),
        "--",
        "-k",
        "conv2d_strided_unit_width or conv2d_bfloat16_padding_only_row",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    run = json.loads((tmp_path / "results.json").read_text())
    env = run["environment"]
    assert env["onednn_isa_cap"] == "AVX2" and env["onednn_isa"] == "avx2" and env["probe"]["error"] is None
    statuses = {r["id"].split("::")[1]: r for r in run["records"]}
    assert statuses["conv2d_strided_unit_width[float32]"]["status"] == "passed"  # right under AVX2
    bf16 = statuses["conv2d_bfloat16_padding_only_row[bfloat16]"]
    if env["kernel_paths"]["Conv2D"]["bfloat16"] == "onednn":  # TensorFlow's CPU check sent bfloat16 to oneDNN
        assert (bf16["status"], bf16["divergence"]) == ("xfailed", "onednn_dtype_without_implementation")
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in proc.stdout  # the summary's machine line


def test_a_bad_cap_is_one_line_and_nothing_starts(tmp_path):
    proc = harness("verify", "cases/seeds.yaml", "--onednn-isa", "AVX3", "--reports", str(tmp_path / "r"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("harness: error: --onednn-isa AVX3: not a oneDNN ISA on ")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "cases/seeds.yaml",
            "-p",
            "no:cacheprovider",
            "--reports",
            str(tmp_path / "p"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX3"},
    )
    assert proc.returncode == 4  # pytest's usage error
    assert "ERROR: ONEDNN_MAX_CPU_ISA='AVX3': not a oneDNN ISA on" in proc.stderr
    assert not (tmp_path / "p").exists()
    proc = harness("machine", "--onednn-isa", "sse5")
    assert proc.returncode == 2 and proc.stderr.startswith("harness: error: --onednn-isa sse5: not a oneDNN ISA")


GOOD_CASE = """cases:
  - name: my_case
    op: conv2d
    attrs: {strides: 1, padding: VALID}
    inputs:
      input: {layout: HW, value: [[1, 2, 0], [0, 1, 3], [2, 1, 1]]}
      filters: {layout: HW, value: [[1, 0], [-1, 2]]}
    expected: {layout: HW, value: [[3, 7], [0, 2]]}
    dtypes: [float32]
"""


@pytest.mark.slow
@pytest.mark.tensorflow
def test_a_probe_that_fails_is_recorded_and_the_run_is_not_green(pytester, tmp_path, monkeypatch):
    # The probe is replaced by one that fails (as when TensorFlow cannot start in its process); TensorFlow itself
    # works, so the one case passes: only the unmeasured facts make the run fail. The run is in this process, with
    # a cache of environments of its own (this process's has the measured one).
    monkeypatch.setattr(
        environment, "measure", lambda: environment.Probe(error="simulated: the probe process died (SIGKILL)")
    )
    monkeypatch.setattr(environment, "_current", functools.cache(environment._current.__wrapped__))
    pytester.makeini(PROJECT_INI)
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]\n')
    pytester.mkdir("cases")
    (pytester.path / "cases" / "good.yaml").write_text(
        GOOD_CASE, encoding="utf-8"
    )  # tests/plugin/test_plugin.py's case
    reports = tmp_path / "reports"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))  # an empty cache: the (failing) probe runs
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-q", "--reports", str(reports))
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=2)  # the case and its reference self-check
    result.stdout.fnmatch_lines(
        [
            "*kernel paths: not measured (simulated: the probe process died (SIGKILL))*",
            "*TensorFlow's kernel paths are not all known (simulated: *): the run fails*",
        ]
    )
    run = json.loads((reports / "results.json").read_text())
    assert run["environment"]["probe"]["error"].startswith("simulated")
    summary = (reports / "summary.md").read_text()
    assert "FAIL" in summary.splitlines()[0] and "TensorFlow's kernel paths were not measured: simulated" in summary
