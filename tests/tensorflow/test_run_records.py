"""``--reports DIR`` end to end: every item recorded, whatever happens to the run.

Each test builds a throwaway project (a conftest enabling the plugin, a few conv2d cases, and sometimes a test
file that crashes its worker or is slow enough to interrupt) and runs pytest on it in a subprocess, because the
cases call TensorFlow and because the point is what a real run leaves on disk:

* a normal run with pytest-xdist writes results.json, report.html and summary.md, one record per item, strict JSON;
* a worker that dies mid-item is recorded as that item's failure, and every other item is still recorded;
* Ctrl-C (SIGINT) and SIGTERM still write every file, marked interrupted, covering what ran;
* SIGKILL leaves results.jsonl, from which ``harness report DIR`` rebuilds the rest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import PROJECT_INI

from harness.reports import results

pytestmark = pytest.mark.slow  # every test here is a pytest run in a subprocess

N_CASES = 6
CASES_YAML = (
    "cases:\n"
    + "".join(
        f"""\
  - name: c{i}
    op: conv2d
    attrs: {{strides: 1, padding: SAME}}
    inputs:
      input: {{layout: NHWC, generate: {{dist: integers, shape: [1, 5, 5, 2]}}}}
      filters: {{layout: HWIO, generate: {{dist: integers, shape: [3, 3, 2, 2]}}}}
    dtypes: [float32, float64]
"""
        for i in range(N_CASES)
    )
    + """\
  - name: broken
    op: conv2d
    attrs: {strides: 1}
"""
)
N_CASE_ITEMS = 3 * N_CASES + 1  # two dtypes and a reference self-check each, and the malformed case

CRASH_TEST = """\
import os

def test_fine():
    pass

def test_worker_dies():
    os._exit(3)
"""

# Far more than an interrupted run can get through: on a loaded machine one worker may take many seconds to reach
# the case items (its TensorFlow server starts first) while the other runs slow items, and the run must still be
# going when the signal comes.
SLOW_ITEMS = 400
SLOW_TEST = f"""\
import time
import pytest

@pytest.mark.parametrize("i", range({SLOW_ITEMS}))
def test_slow(i):
    time.sleep(0.5)
"""


def strict_json(path: Path) -> dict:
    def reject(constant):
        raise ValueError(f"{path}: non-standard JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def make_project(tmp_path: Path, tests: dict[str, str] | None = None) -> Path:
    tests = tests or {}
    (tmp_path / "pytest.ini").write_text(PROJECT_INI + "addopts = -p no:cacheprovider\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["harness.pytest_plugin"]\n')
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "small.yaml").write_text(CASES_YAML)
    for name, text in tests.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def pytest_argv(project: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "--rootdir",
        str(project),
        "--reports",
        str(project / "out"),
        f"--junitxml={project / 'out' / 'junit.xml'}",
        "-q",
        *extra,
    ]


def run(project: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(pytest_argv(project, *extra), cwd=project, capture_output=True, text=True, timeout=300)


def test_a_run_with_workers_records_every_item_even_one_whose_worker_dies(tmp_path):
    """One run with two workers (it starts TensorFlow twice: one run serves both checks): every file is written
    with one record per item, and a worker that dies mid-item is that item's failure, nothing else lost."""
    project = make_project(tmp_path, {"test_crash.py": CRASH_TEST})
    proc = run(project, "-n", "2", "cases", "test_crash.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the malformed case and the dead worker fail
    out = project / "out"
    for name in ("junit.xml", "results.json", "report.html", "summary.md", "results.jsonl"):
        assert (out / name).is_file(), name
    doc = strict_json(out / "results.json")
    assert doc["schema"] == results.SCHEMA
    assert {"tensorflow", "numpy", "python", "onednn", "intra_op_threads", "cpu_flags"} <= set(doc["environment"])
    assert doc["run"]["complete"] and not doc["run"]["interrupted"]
    records = {r["id"]: r for r in doc["records"]}
    assert len(records) == len(doc["records"]) == N_CASE_ITEMS + 2
    case = records["cases/small.yaml::c0[float32]"]
    assert case["status"] == "passed" and case["op"] == "conv2d" and case["dtype"] == "float32"
    assert case["shapes"] == {"input": [1, 5, 5, 2], "filters": [3, 3, 2, 2], "output": [1, 5, 5, 2]}
    assert case["coverage"] == {"padding": "SAME", "layout": "NHWC", "stride": "1", "dilation": "1"}
    assert "tensorflow" in case["implementations"] and case["margin"] == 0.0  # integer inputs: exact
    bad = records["cases/small.yaml::broken"]
    assert bad["status"] == "malformed" and "field 'attrs.padding'" in bad["errors"][0]
    assert results.load(out).records == doc["records"]
    crashed = records["test_crash.py::test_worker_dies"]
    assert crashed["status"] == "failed" and crashed["kind"] == "crashed", crashed
    assert records["test_crash.py::test_fine"]["status"] == "passed"
    assert sum(1 for r in doc["records"] if r["id"].startswith("cases/")) == N_CASE_ITEMS
    assert "test_worker_dies" in (out / "summary.md").read_text()


def stream_lines(project: Path) -> int:
    path = project / "out" / results.RESULTS_STREAM
    return len(path.read_text().splitlines()) if path.exists() else 0


def stream_case_records(project: Path) -> int:
    """Records of cases/ items in the stream so far (0 before its header is written)."""
    try:
        run = results.load(project / "out" / results.RESULTS_STREAM)
    except results.ResultsError:
        return 0
    return sum(1 for r in run.records if r["id"].startswith("cases/"))


def start_and_wait(project: Path, records: int, *extra: str, cases: int = 0) -> subprocess.Popen:
    """Start a run and return once at least ``records`` records, ``cases`` of them from cases/, are in the stream."""
    # SIGINT back to its default before pytest starts: a shell runs background jobs (`make test &`, some CI runners)
    # with SIGINT ignored, the run inherits that, and Python then never turns Ctrl-C into KeyboardInterrupt. A
    # default disposition survives exec (an ignored one would too); no preexec_fn, which forks a threaded process.
    argv = pytest_argv(project, *extra)
    reset = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.executable, sys.argv[1:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", reset, *argv], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while stream_lines(project) < 1 + records or stream_case_records(project) < cases:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the run recorded nothing in 120 s"
        time.sleep(0.1)
    return proc


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_still_writes_valid_files_for_what_ran(tmp_path, how):
    project = make_project(tmp_path, {"test_slow.py": SLOW_TEST})
    proc = start_and_wait(project, N_CASE_ITEMS + 2, "-n", "2", "cases", "test_slow.py", cases=N_CASE_ITEMS)
    seen = stream_lines(project) - 1
    proc.send_signal(how)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output
    out = project / "out"
    doc = strict_json(out / "results.json")
    assert doc["run"]["interrupted"] and not doc["run"]["complete"], (doc["run"], len(doc["records"]), output[-2000:])
    assert seen <= len(doc["records"]) < N_CASE_ITEMS + SLOW_ITEMS, (doc["run"], output[-2000:])
    assert sum(1 for r in doc["records"] if r["id"].startswith("cases/")) == N_CASE_ITEMS
    assert (out / "report.html").stat().st_size > 0 and "interrupted" in (out / "summary.md").read_text().lower()
    assert (out / "junit.xml").is_file()


def test_a_killed_run_leaves_a_stream_that_harness_report_turns_into_reports(tmp_path):
    project = make_project(tmp_path, {"test_slow.py": SLOW_TEST})
    proc = start_and_wait(project, 3, "-n", "0", "test_slow.py")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    out = project / "out"
    assert not (out / "results.json").exists()
    seen = stream_lines(project) - 1
    done = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(out)], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    doc = strict_json(out / "results.json")
    assert len(doc["records"]) == seen and not doc["run"]["complete"]
    assert (out / "report.html").is_file() and (out / "summary.md").is_file()
