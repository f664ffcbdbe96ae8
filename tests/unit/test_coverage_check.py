"""``make coverage``'s check (harness/selftest/coverage.py): unreached lines and branches against the exclusion file.

The registry run itself is ``make coverage``; here the check runs on hand-made coverage.py JSON reports over a small
source tree, and the checked-in exclusion file is checked against the reference package's source.
"""

from __future__ import annotations

import pytest
from support import ROOT

from harness.selftest import coverage
from harness.selftest.coverage import EXIT, ExclusionError, check, load_exclusions, misses

SOURCE = """\
def f(x):
    if x > 0:
        return 1
    raise ValueError("negative")


def g(x):
    return x
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A root whose only target module is SOURCE (the other targets are empty files)."""
    for target in coverage.TARGETS:
        (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / target).write_text("", encoding="utf-8")
    (tmp_path / coverage.TARGETS[0]).write_text(SOURCE, encoding="utf-8")
    return tmp_path


def report(missing_lines, missing_branches):
    data = {
        "missing_lines": missing_lines,
        "missing_branches": missing_branches,
        "summary": {"covered_lines": 0, "num_statements": 0, "covered_branches": 0, "num_branches": 0},
    }
    empty = {"missing_lines": [], "missing_branches": [], "summary": data["summary"]}
    return {"files": {t: (data if i == 0 else empty) for i, t in enumerate(coverage.TARGETS)}}


def exclusions(tmp_path, root, text):
    path = tmp_path / "exclusions.yaml"
    path.write_text(text, encoding="utf-8")
    return load_exclusions(path, root)


def test_misses_name_lines_and_branches_by_their_text(tree):
    found = misses(report([4], [[2, 4], [2, -1]]), tree)
    target = coverage.TARGETS[0]
    assert [(m.file, m.line, m.text, m.to, m.to_text) for m in found] == [
        (target, 4, 'raise ValueError("negative")', None, None),
        (target, 2, "if x > 0:", 4, 'raise ValueError("negative")'),
        (target, 2, "if x > 0:", -1, EXIT),
    ]


def test_a_branch_out_of_a_line_that_never_ran_is_not_a_second_miss(tree):
    found = misses(report([2, 3], [[2, 3]]), tree)
    assert [m.line for m in found] == [2, 3]


def test_unlisted_misses_fail_and_listed_ones_pass(tree, tmp_path):
    found = misses(report([4], [[2, 4]]), tree)
    none = exclusions(tmp_path, tree, "exclusions: []\n")
    assert check(found, none) == (found, [])
    by_line = exclusions(
        tmp_path,
        tree,
        f"""exclusions:
  - {{file: {coverage.TARGETS[0]}, line: 'raise ValueError("negative")', reason: r}}
""",
    )
    assert check(found, by_line) == ([], [])  # the line, and the branch into it


def test_an_excluded_branch_excludes_its_target_line_too(tree, tmp_path):
    found = misses(report([4], [[2, 4]]), tree)
    branch = exclusions(
        tmp_path,
        tree,
        f"""exclusions:
  - {{file: {coverage.TARGETS[0]}, line: "if x > 0:", to: 'raise ValueError("negative")', reason: r}}
""",
    )
    assert check(found, branch) == ([], [])


def test_a_function_entry_covers_its_body_only(tree, tmp_path):
    found = misses(report([4, 8], []), tree)
    entry = exclusions(
        tmp_path,
        tree,
        f"""exclusions:
  - {{file: {coverage.TARGETS[0]}, functions: [g], reason: r}}
""",
    )
    unlisted, stale = check(found, entry)
    assert [m.line for m in unlisted] == [4] and stale == []


def test_an_exclusion_that_covers_nothing_is_stale(tree, tmp_path):
    entry = exclusions(
        tmp_path,
        tree,
        f"""exclusions:
  - {{file: {coverage.TARGETS[0]}, functions: [g], reason: r}}
""",
    )
    assert check([], entry) == ([], entry)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("exclusions: {}", "a list 'exclusions'"),
        ("exclusions: [{file: harness/conv/reference.py, line: x}]", "field 'reason'"),
        ("exclusions: [{file: harness/other.py, line: x, reason: r}]", "is not one of"),
        ("exclusions: [{file: harness/conv/reference.py, reason: r}]", "exactly one of 'line'"),
        ("exclusions: [{file: harness/conv/reference.py, functions: [nope], reason: r}]", "no function 'nope'"),
        ("exclusions: [{file: harness/conv/reference.py, line: x, reason: r, why: y}]", "field 'why': unknown field"),
    ],
)
def test_a_malformed_exclusion_file_names_the_entry_and_field(tree, tmp_path, text, fragment):
    with pytest.raises(ExclusionError, match="exclusions") as err:
        exclusions(tmp_path, tree, text)
    assert fragment in str(err.value)


def test_every_checked_in_exclusion_names_source_that_exists():
    """A renamed function or an edited line makes an entry name nothing: caught here without running coverage."""
    for e in load_exclusions(ROOT / coverage.EXCLUSIONS, ROOT):
        lines = {ln.strip() for ln in (ROOT / e.file).read_text(encoding="utf-8").splitlines()}
        if e.line is not None:
            assert e.line in lines, f"{e.describe()}: no such line"
        if e.to is not None:
            assert e.to == EXIT or e.to in lines, f"{e.describe()}: no such target line"
        assert e.reason
