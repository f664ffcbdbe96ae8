"""``harness compare A B [C ...]`` (harness/reports/compare.py): three or more runs as one table, and ``--json``.

Two runs print what they always printed (tests/unit/test_cli.py checks that output).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import ROOT

from harness import atomic, cli
from harness.reports import compare, results


@pytest.fixture(autouse=True)
def at_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def rec(case_id: str, status: str, op: str = "conv2d", margin: float = 0.1, **extra) -> dict:
    return {
        "id": case_id,
        "kind": "case",
        "status": status,
        "op": op,
        "margin": margin,
        "max_abs_error": margin * 1e-6,
        "tensorflow": "agrees",
        "errors": ["boom"] if status == "failed" else [],
        **extra,
    }


def write(path: Path, records: list[dict], tensorflow: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run = results.Run({"tensorflow": tensorflow, "onednn": "1"}, {"complete": True}, [], records)
    atomic.write_atomic(path / results.RESULTS_JSON, run.to_json())
    return path


def three_runs(tmp_path: Path) -> list[Path]:
    return [
        write(
            tmp_path / "tf-2.19",
            [
                rec("x[float32]", "passed"),
                rec("y[float32]", "xfailed"),
                rec("d[float32]", "passed", op="depthwise_conv2d"),
                rec("g[float32:gradients]", "passed", check="gradients"),
            ],
            "2.19.0",
        ),
        write(
            tmp_path / "tf-2.20",
            [
                rec("x[float32]", "failed"),
                rec("y[float32]", "xfailed"),
                rec("d[float32]", "passed", op="depthwise_conv2d"),
                rec("g[float32:gradients]", "passed", check="gradients"),
            ],
            "2.20.0",
        ),
        write(
            tmp_path / "tf-2.21",
            [
                rec("x[float32]", "passed"),
                rec("y[float32]", "passed"),
                rec("d[float32]", "passed", op="depthwise_conv2d", margin=0.5),
                rec("t[float32@torch]", "passed", backend="torch"),
            ],
            "2.21.0",
        ),
    ]


def test_three_runs_print_one_table_then_each_consecutive_pair(capsys, tmp_path):
    a, b, c = three_runs(tmp_path)
    code = cli.main(["compare", str(a), str(b), str(c)])
    out = capsys.readouterr().out
    assert code == 1  # x failed from 2.19 to 2.20
    assert out.startswith(f"A: {a}  (4 records)\nB: {b}  (4 records)\nC: {c}  (4 records)\n")
    table = out.split("per op: passed/xfailed/failed in each run\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[0].split() == ["op", "A", "B", "C"]
    assert table[1].split() == ["conv2d", "1/1/0", "0/1/1", "2/0/0"]
    assert table[2].split() == ["conv2d", "@torch", "-", "-", "1/0/0"]
    assert table[3].split() == ["conv2d", "gradients", "1/0/0", "1/0/0", "-"]
    assert table[4].split() == ["depthwise_conv2d", "1/0/0", "1/0/0", "1/0/0"]
    assert table[5].split() == ["total", "3/1/0", "2/1/1", "4/0/0"]
    assert out.count("per op:") == 1
    differing = out.split("items whose status differs between runs: 2\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert differing[1].split() == ["x[float32]", "passed", "failed", "passed"]
    assert differing[2].split() == ["y[float32]", "xfailed", "xfailed", "passed"]
    assert f"=== A -> B: {a} -> {b} ===" in out and f"=== B -> C: {b} -> {c} ===" in out
    ab, bc = out.split("=== A -> B")[1].split("=== B -> C")
    assert "new failures: 1\n  x[float32]: passed -> failed  (boom)" in ab and "A: 2.19.0" in ab
    assert "fixed: 1\n  x[float32]: failed -> passed" in bc and "B: 2.20.0" in bc and "C: 2.21.0" in bc
    assert "changed behaviour: 1\n  y[float32]: xfailed: agrees -> passed: agrees" in bc
    assert "d[float32]: margin 0.1 -> 0.5" in bc and "only in B: 1   only in C: 1" in bc


def test_json_is_the_runs_the_table_and_every_consecutive_pair(capsys, tmp_path):
    a, b, c = three_runs(tmp_path)
    code = cli.main(["compare", str(a), str(b), str(c), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [r["label"] for r in doc["runs"]] == [str(a), str(b), str(c)] and doc["runs"][0]["records"] == 4
    assert doc["runs"][1]["counts"]["failed"] == 1
    assert doc["table"]["columns"] == [str(a), str(b), str(c)]
    assert doc["table"]["ops"][0] == {
        "op": "conv2d",
        "counts": [
            {"passed": 1, "xfailed": 1, "failed": 0},
            {"passed": 0, "xfailed": 1, "failed": 1},
            {"passed": 2, "xfailed": 0, "failed": 0},
        ],
    }
    assert doc["table"]["ops"][1]["counts"][:2] == [None, None]
    assert doc["table"]["differing"] == [
        {"id": "x[float32]", "statuses": ["passed", "failed", "passed"]},
        {"id": "y[float32]", "statuses": ["xfailed", "xfailed", "passed"]},
    ]
    first, second = doc["pairs"]
    assert (first["a"], first["b"], second["a"], second["b"]) == (str(a), str(b), str(b), str(c))
    assert first["new_failures"] == [["x[float32]", "passed", "failed", "boom"]] and first["fixed"] == []
    assert second["fixed"] == [["x[float32]", "failed", "passed", ""]]
    assert second["only_a"] == ["g[float32:gradients]"] and second["only_b"] == ["t[float32@torch]"]
    assert ["tensorflow", "2.20.0", "2.21.0"] in second["environment"]
    runs = [results.load(p) for p in (a, b, c)]
    pure = compare.compare_many(runs, [str(p) for p in (a, b, c)])
    assert pure == doc == json.loads(json.dumps(pure))  # JSON-ready as it is
    code = cli.main(["compare", str(a), str(c), "--json"])  # two runs: the same shape, one pair
    two = json.loads(capsys.readouterr().out)
    assert code == 0 and len(two["pairs"]) == 1 and two["pairs"][0]["new_failures"] == []


def test_compare_needs_two_runs(capsys, tmp_path):
    (a, *_) = three_runs(tmp_path)
    assert cli.main(["compare", str(a)]) == 2
    assert "harness: error: compare needs at least two runs, got 1" in capsys.readouterr().err
