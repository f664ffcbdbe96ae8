"""The pytest plugin end to end (harness/pytest_plugin.py), in a throwaway project.

The project has only a conftest.py enabling the plugin and a cases/ directory:
a good conv2d case whose expected output is computed here by hand from the
definition of cross-correlation, a malformed case, a case with a wrong expected
value, and a file that is not valid YAML. pytest runs in this process (pytester's
in-process run): its cases call this process's TensorFlow server, started once.
"""

import pytest
from support import IN_PROCESS, PROJECT_INI

pytest_plugins = ["pytester"]

# 3x3 input and 2x2 filter, single channel, as HW literals
X_HW = [[1, 2, 0], [0, 1, 3], [2, 1, 1]]
W_HW = [[1, 0], [-1, 2]]


def cross_correlate_valid(x_hw, w_hw):
    """out[i][j] = sum over (a, b) of x[i + a][j + b] * w[a][b]: no kernel flip, no padding, stride 1."""
    kh, kw = len(w_hw), len(w_hw[0])
    out_h, out_w = len(x_hw) - kh + 1, len(x_hw[0]) - kw + 1
    return [
        [sum(x_hw[i + a][j + b] * w_hw[a][b] for a in range(kh) for b in range(kw)) for j in range(out_w)]
        for i in range(out_h)
    ]


def test_hand_computed_expected_value():
    # out[0][0] = 1*1 + 2*0 + 0*(-1) + 1*2 = 3     out[0][1] = 2*1 + 0*0 + 1*(-1) + 3*2 = 7
    # out[1][0] = 0*1 + 1*0 + 2*(-1) + 1*2 = 0     out[1][1] = 1*1 + 3*0 + 1*(-1) + 1*2 = 2
    assert cross_correlate_valid(X_HW, W_HW) == [[3, 7], [0, 2]]


def conv2d_case_yaml(name, expected_hw):
    """One case, as a list entry under ``cases:``."""
    return f"""\
  - name: {name}
    op: conv2d
    attrs: {{strides: 1, padding: VALID}}
    inputs:
      input: {{layout: HW, value: {X_HW}}}
      filters: {{layout: HW, value: {W_HW}}}
    expected: {{layout: HW, value: {expected_hw}}}
    dtypes: [float32]
"""


BAD_OP_YAML = """\
  - name: bad_op
    op: conv4d
    attrs: {strides: 1, padding: VALID}
    inputs:
      input: {layout: HW, value: [[1]]}
      filters: {layout: HW, value: [[1]]}
"""


def make_project(pytester):
    expected = cross_correlate_valid(X_HW, W_HW)
    wrong = [row[:] for row in expected]
    wrong[1][1] += 1  # 3 instead of 2

    pytester.makeini(PROJECT_INI)  # pins the rootdir (and so the cases/ prefix of the ids) to this directory
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]\n')
    cases = pytester.mkdir("cases")
    (cases / "good.yaml").write_text("cases:\n" + conv2d_case_yaml("my_case", expected) + BAD_OP_YAML, encoding="utf-8")
    (cases / "wrong.yaml").write_text("cases:\n" + conv2d_case_yaml("wrong_expected", wrong), encoding="utf-8")
    (cases / "broken.yaml").write_text(
        "cases:\n  - name: unclosed\n    attrs: {strides: 1, padding: VALID\n", encoding="utf-8"
    )


@pytest.mark.tensorflow
def test_cases_become_items_with_readable_failures(pytester):
    make_project(pytester)
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-q", "-rA")
    out = result.stdout.str()

    result.assert_outcomes(passed=3, failed=3)
    # the good case ran at its one dtype and passed, under a file::case[dtype] id; its reference self-check (and the
    # wrong case's: the reference is right there, its expected value is not) passed too
    result.stdout.fnmatch_lines(["PASSED cases/good.yaml::my_case[[]float32[]]"])
    result.stdout.fnmatch_lines(["PASSED cases/good.yaml::my_case[[]float64:reference[]]"])
    result.stdout.fnmatch_lines(["PASSED cases/wrong.yaml::wrong_expected[[]float64:reference[]]"])
    assert "my_case[float64]" not in out

    # one failing item each for the file that is not YAML, the malformed case and the wrong value (files in name order)
    result.stdout.fnmatch_lines(
        [
            "FAILED cases/broken.yaml::<file>*",
            "FAILED cases/good.yaml::bad_op*",
            "FAILED cases/wrong.yaml::wrong_expected[[]float32[]]*",
        ]
    )
    # the malformed case names the file, the case and the field
    assert "malformed case: cases/good.yaml: case 'bad_op': field 'op': unknown op 'conv4d'" in out

    # the file that is not YAML: one failing item naming the file
    assert "malformed case: cases/broken.yaml: YAML syntax error" in out

    # the wrong expected value: the report says which comparison failed, against 'expected', and where
    result.stdout.fnmatch_lines(
        [
            "cases/wrong.yaml::wrong_expected[[]float32[]]  op=conv2d*",
            "*FAIL tensorflow vs expected:*worst at index [[]0, 1, 1, 0[]]: *2.0* vs *3.0*",
        ]
    )
    assert "FAIL reference vs expected" in out
    assert "ok   tensorflow vs reference" in out

    # the plugin's own summary counts items per op
    result.stdout.fnmatch_lines(["*convolution cases*", "conv2d * 1 * 1"])


@pytest.mark.tensorflow
def test_k_selects_cases_by_name(pytester):
    make_project(pytester)
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-q", "-rA", "-k", "my_case or bad_op")

    result.assert_outcomes(passed=2, failed=1, deselected=3)  # my_case and its reference self-check; bad_op
    result.stdout.fnmatch_lines(["PASSED cases/good.yaml::my_case[[]float32[]]", "FAILED cases/good.yaml::bad_op*"])
    assert "wrong_expected" not in result.stdout.str()
    assert "broken.yaml" not in result.stdout.str()


STALE_DIVERGENCES = """divergences:
  - id: never_happens_per_entry
    kind: wrong_result
    summary: a per_entry divergence that TensorFlow does not show (it agrees)
    when: {op: conv2d, padding: VALID, dtype: float32}
    strict: per_entry
    tensorflow_versions: ">=0"
    onednn: any
    tensorflow_does: [wrong_values]
    evidence: made up for the test
    repro: none
  - id: never_happens_per_case
    kind: wrong_result
    summary: a per_case divergence that TensorFlow does not show
    when: {op: conv2d, padding: VALID, dtype: float64}
    tensorflow_versions: ">=0"
    onednn: any
    tensorflow_does: [wrong_values]
    evidence: made up for the test
    repro: none
cases:
  - name: repro
    op: conv2d
    attrs: {strides: 1, padding: VALID}
    inputs:
      input: {layout: HW, value: [[1, 2, 0], [0, 1, 3], [2, 1, 1]]}
      filters: {layout: HW, value: [[1, 0], [-1, 2]]}
    dtypes: [float32, float64]
"""


@pytest.mark.tensorflow
def test_stale_divergences_fail_the_run_per_case_and_per_entry(pytester):
    # per_case: the matching item itself fails; per_entry: the item passes (a coincidence is allowed), and the run
    # fails because no item of the entry diverged. Both are read from the items' records, as the reports read them.
    pytester.makeini(PROJECT_INI)
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]\n')
    pytester.mkdir("cases")
    (pytester.path / "cases" / "known_divergences.yaml").write_text(STALE_DIVERGENCES, encoding="utf-8")
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-q", "-rA", "--junitxml=junit.xml")
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=1)  # the float32 item and the reference self-check pass
    result.stdout.fnmatch_lines(
        [
            "*known divergences that no longer occur*",
            "never_happens_per_entry: every matching case agreed with the reference; update cases/known_divergences.yaml",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "PASSED cases/known_divergences.yaml::repro[[]float32[]]",
            "FAILED cases/known_divergences.yaml::repro[[]float64[]]*",
        ]
    )
    assert "known divergence 'never_happens_per_case' did not occur: TensorFlow now agrees" in result.stdout.str()
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="op" value="conv2d" />' in junit and '<property name="status" value="failed" />' in junit
