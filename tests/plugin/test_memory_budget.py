"""The memory budget through the pytest plugin, in a throwaway project: a case too large for the budget fails with
one line before anything is allocated, the other cases of its file run on, and the budget is in the report."""

import json
import re
import time

import pytest
from support import IN_PROCESS

pytest_plugins = ["pytester"]

CASES = """\
cases:
  - name: small
    op: conv2d
    attrs: {strides: 1, padding: VALID}
    inputs:
      input: {layout: HW, value: [[1, 2, 0], [0, 1, 3], [2, 1, 1]]}
      filters: {layout: HW, value: [[1, 0], [-1, 2]]}
    expected: {layout: HW, value: [[3, 7], [0, 2]]}
    dtypes: [float32]
  - name: huge
    op: conv2d
    attrs: {strides: 1, padding: SAME}
    inputs:
      input: {layout: NHWC, generate: {dist: normal, shape: [1, 100000, 100000, 64]}}
      filters: {layout: HWIO, generate: {dist: normal, shape: [3, 3, 64, 64]}}
    dtypes: [float32]
    gradients: all
  - name: small_too
    op: depthwise_conv2d
    attrs: {strides: [1, 1, 1, 1], padding: SAME}
    inputs:
      input: {layout: NHWC, generate: {dist: integers, shape: [1, 5, 5, 2]}}
      filter: {layout: HWIM, generate: {dist: integers, shape: [3, 3, 2, 1]}}
    dtypes: [float32]
"""


def make_project(pytester, ini: str = "") -> None:
    pytester.makeini("[pytest]\nharness_cases = cases\nharness_shipped = none\n" + ini)
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]\n')
    pytester.mkdir("cases")
    (pytester.path / "cases" / "big.yaml").write_text(CASES, encoding="utf-8")


@pytest.mark.tensorflow
def test_a_case_over_the_budget_fails_with_one_line_and_the_others_run_on(pytester):
    make_project(pytester, "harness_memory_budget = 1GiB\n")
    start = time.monotonic()
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-q", "-rA", "--reports", "out")
    seconds = time.monotonic() - start
    out = result.stdout.str()
    result.assert_outcomes(passed=4, failed=3)  # each case's reference self-check too
    for item in ("huge[float32]", "huge[float32:gradients]", "huge[float64:reference]"):
        assert f"FAILED cases/big.yaml::{item}" in out, out
    assert "PASSED cases/big.yaml::small[float32]" in out and "PASSED cases/big.yaml::small_too[float32]" in out
    # Distinct lines: with CI set, pytest's short summary repeats each failure's whole message.
    lines = {text for text in out.splitlines() if text.startswith("ERROR cases/big.yaml: case 'huge': ")}
    assert len(lines) == 3  # the forward item's, the gradient item's and the self-check's
    for line in lines:
        assert re.fullmatch(
            r"ERROR cases/big\.yaml: case 'huge': array '[^']+' of shape \[[\d, ]+\] [a-z0-9]+ needs \d+\.\d TiB, "
            r"over the memory budget of 1\.0 GiB \(harness_memory_budget\)",
            line,
        ), line
    assert seconds < 60  # the 4.7 TiB never allocated (the run's time is TensorFlow's start and the small cases)
    run = json.loads((pytester.path / "out" / "results.json").read_text(encoding="utf-8"))
    assert run["environment"]["memory_budget"]["bytes"] == 1 << 30
    assert run["environment"]["memory_budget"]["source"] == "harness_memory_budget"
    huge = next(r for r in run["records"] if r["id"] == "cases/big.yaml::huge[float32]")
    assert huge["status"] == "failed" and "over the memory budget" in json.dumps(huge)
    assert "memory budget" in (pytester.path / "out" / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args, ini, named",
    [
        (["--memory-budget", "lots"], "", "--memory-budget='lots'"),
        ([], "harness_memory_budget = 2 gigs\n", "harness_memory_budget='2 gigs'"),
        (["--memory-budget", "0"], "harness_memory_budget = 1GiB\n", "--memory-budget='0'"),
    ],
)
def test_a_bad_budget_stops_the_run_naming_the_setting_and_its_value(pytester, args, ini, named):
    make_project(pytester, ini)
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-q", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert named in result.stderr.str(), result.stderr.str()


def test_the_environment_variable_is_a_setting_too(pytester, monkeypatch):
    make_project(pytester)
    monkeypatch.setenv("HARNESS_MEMORY_BUDGET", "12 bytes")
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "HARNESS_MEMORY_BUDGET='12 bytes': not a memory size" in result.stderr.str()
