"""The mutation run's bookkeeping (harness.selftest.mutmut_run): the equivalents file and the score."""

from __future__ import annotations

import pytest

from harness.selftest.mutmut_run import Mutant, load_equivalents, load_sample, summarize


def _mutant(name: str, change: str = "x = 1") -> Mutant:
    return Mutant(name, name.rsplit("__mutmut_", 1)[0], "harness/conv/dtypes.py", change, "", "h", (1,), (1,))


def test_equivalents_default_to_the_equivalent_kind_and_may_be_oracle(tmp_path):
    path = tmp_path / "eq.yaml"
    path.write_text(
        "equivalents:\n- {mutant: a, change: x = 1, reason: same}\n"
        "- {mutant: b, change: x = 2, reason: looser bound, kind: oracle}\n",
        encoding="utf-8",
    )
    a, b = load_equivalents(path)
    assert (a.kind, b.kind) == ("equivalent", "oracle")


@pytest.mark.parametrize(
    "entry, complaint",
    [
        (
            "{mutant: a, change: x, reason: r, kind: harmless}",
            "equivalents[0]: kind 'harmless' is not one of equivalent, oracle",
        ),
        ("{mutant: a, change: x}", "equivalents[0]: must be {mutant, change, reason}"),
        ("{mutant: a, change: x, reason: r, why: w}", "equivalents[0]: must be {mutant, change, reason}"),
    ],
)
def test_a_bad_equivalents_entry_is_named(tmp_path, entry, complaint):
    path = tmp_path / "eq.yaml"
    path.write_text(f"equivalents:\n- {entry}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"eq.yaml: " + complaint.replace("[", r"\[").replace("{", r"\{")):
        load_equivalents(path)


def test_oracle_survivors_count_against_the_score_and_equivalents_do_not(tmp_path):
    mutants = [_mutant(f"m__mutmut_{i}", f"x = {i}") for i in range(4)]
    results = {
        "m__mutmut_0": {"status": "killed"},
        "m__mutmut_1": {"status": "survived"},
        "m__mutmut_2": {"status": "survived"},
        "m__mutmut_3": {"status": "survived"},
    }
    path = tmp_path / "eq.yaml"
    path.write_text(
        "equivalents:\n- {mutant: m__mutmut_1, change: x = 1, reason: same}\n"
        "- {mutant: m__mutmut_2, change: x = 2, reason: tighter, kind: oracle}\n",
        encoding="utf-8",
    )
    summary = summarize(mutants, results, load_equivalents(path))
    assert (summary["killed"], summary["equivalent"], summary["oracle"], summary["survived"]) == (1, 1, 1, 1)
    assert summary["score"] == pytest.approx(1 / 3)  # killed over (judged - equivalent)
    assert summary["untriaged"] == ["m__mutmut_3"]


def test_an_equivalent_whose_change_differs_is_stale_and_does_not_count(tmp_path):
    path = tmp_path / "eq.yaml"
    path.write_text("equivalents:\n- {mutant: m__mutmut_1, change: x = 2, reason: same}\n", encoding="utf-8")
    summary = summarize([_mutant("m__mutmut_1")], {"m__mutmut_1": {"status": "survived"}}, load_equivalents(path))
    assert summary["stale_equivalents"] == ["m__mutmut_1"] and summary["untriaged"] == ["m__mutmut_1"]


def test_the_sample_file_is_checked_entry_by_entry(tmp_path):
    path = tmp_path / "sample.yaml"
    path.write_text(
        "sample:\n- {mutant: a, change: x = 1, killer: 'cases/x.yaml::c[float32]'}\n- {mutant: b}\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"sample.yaml: sample\[1\]: must be \{mutant, change, killer\}"):
        load_sample(path)


def test_an_equivalent_follows_its_change_when_mutmut_renumbers_the_function(tmp_path):
    """An edit elsewhere in a function renumbers its mutants: the entry still applies to the mutant with its change
    (same function), and is stale only when no mutant of that function has that change."""
    path = tmp_path / "eq.yaml"
    path.write_text("equivalents:\n- {mutant: m__mutmut_1, change: x = 1, reason: same}\n", encoding="utf-8")
    renumbered = [_mutant("m__mutmut_7", "x = 1"), _mutant("m__mutmut_1", "x = 9"), _mutant("n__mutmut_1", "x = 1")]
    results = {m.name: {"status": "survived"} for m in renumbered}
    summary = summarize(renumbered, results, load_equivalents(path))
    assert summary["equivalent"] == 1 and summary["untriaged"] == ["m__mutmut_1", "n__mutmut_1"]
    assert summary["stale_equivalents"] == []
    gone = summarize(renumbered[1:], results, load_equivalents(path))
    assert gone["stale_equivalents"] == ["m__mutmut_1"]
