"""``harness report --merge`` (harness/reports/merge.py) and the stale-divergence check it shares with the plugin
(``results.stale_per_entry``), on results files written here from small hand-made records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import ROOT

from harness import atomic, cli
from harness.reports import merge, report, results

REGISTRY = "0123456789abcdef"
ENV = {
    "tensorflow": "2.21.0",
    "onednn": "1",
    "numpy": "2.4.6",
    "python": "3.11.7",
    "machine": "x86_64",
    "cpu_model": "AMD EPYC",
    "cpu_flags": ["avx2"],
    "intra_op_threads": "1",
    "inter_op_threads": "1",
    "probe": {"paths": {}, "error": None, "seconds": 3.5, "source": "measured"},
}
REPRO = results.REPROS_PREFIX + "repro"


@pytest.fixture(autouse=True)
def at_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def rec(name: str, status: str = "passed", op: str = "conv2d", applicable=(), divergence=None, **extra) -> dict:
    """A case record with the keys the merge, the counts and the reports read."""
    return {
        "id": name if "::" in name else f"cases/t.yaml::{name}",
        "kind": "case",
        "status": status,
        "op": op,
        "dtype": "float32",
        "tensorflow": "agrees",
        "errors": [],
        "margin": 0.1,
        "max_abs_error": 1e-7,
        "applicable_divergences": list(applicable),
        "divergence": divergence,
        "seconds": 0.01,
        **extra,
    }


def divergence_row(did: str, strict: str = "per_entry") -> dict:
    return {
        "id": did,
        "kind": "wrong_result",
        "summary": did,
        "onednn": "any",
        "scope": "forward",
        "tensorflow_versions": "any",
        "tensorflow_does": ["wrong_values"],
        "strict": strict,
        "link": None,
        "file": "cases/known_divergences.yaml",
        "not_here": None,
    }


def write(
    directory: Path,
    records: list[dict],
    *,
    registry=REGISTRY,
    shard=None,
    env=None,
    divergences=(),
    started="2026-12-01T10:00:00+0000",
    finished="2026-12-01T10:01:00+0000",
    seconds=60.0,
    exitstatus=0,
    old: bool = False,
) -> Path:
    """A run's results.json in ``directory``; ``old``: without the keys older results files lack."""
    run = {
        "started": started,
        "finished": finished,
        "seconds": seconds,
        "exitstatus": exitstatus,
        "interrupted": False,
        "complete": True,
        "sweeps": "pairwise",
        "argv": ["pytest", "cases"],
        "stale_divergences": [],
    }
    if not old:
        run.update(registry=registry, shard=shard, selection={}, divergence_versions="declared")
    directory.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(
        directory / results.RESULTS_JSON, results.Run(dict(env or ENV), run, list(divergences), records).to_json()
    )
    return directory


def harness(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


RECORDS = [rec(f"c{k}[float32]") for k in range(7)] + [
    rec("x[float32]", "xfailed", divergence="d1", applicable=["d1"]),
    rec("f[float32]", "failed", errors=["boom"]),
    rec("s[float32]", "skipped"),
    rec("g[float32:gradients]", "passed", check="gradients"),
    rec("b[float32@torch]", "passed", backend="torch"),
    rec(REPRO + "[float32]", "xfailed", divergence="d1", applicable=["d1"]),
]


def test_four_disjoint_shares_merge_to_the_counts_of_one_whole_run(capsys, tmp_path):
    whole = write(tmp_path / "whole", RECORDS, divergences=[divergence_row("d1")], exitstatus=1)
    shares = [
        write(
            tmp_path / f"share{i}",
            [r for k, r in enumerate(RECORDS) if k % 4 == i - 1],
            shard=f"{i}/4",
            divergences=[divergence_row("d1")],
            seconds=15.0,
            exitstatus=1 if i == 1 else 0,
            started=f"2026-12-01T10:0{i}:00+0000",
            finished=f"2026-12-01T10:0{i}:30+0000",
        )
        for i in (1, 2, 3, 4)
    ]
    out = tmp_path / "merged"
    code, text, err = harness(capsys, "report", "--merge", *shares, "--out", out)
    assert code == 1, err  # the share with the failed case
    merged, one = results.load(out), results.load(whole)
    assert merged.counts() == one.counts() and merged.counts(None) == one.counts(None)
    assert report.tally(merged) == report.tally(one) and report.per_op(merged) == report.per_op(one)
    assert sorted(r["id"] for r in merged.records) == sorted(r["id"] for r in one.records)
    assert {r["source"] for r in merged.records} == {str(s) for s in shares}
    assert merged.environment == ENV and merged.environments is None
    run = merged.run
    assert run["merged_from"] == [str(s) for s in shares] and run["shard"] is None and run["registry"] == REGISTRY
    assert run["started"] == "2026-12-01T10:01:00+0000" and run["finished"] == "2026-12-01T10:04:30+0000"
    assert run["seconds"] == 60.0 and run["wall_seconds"] == 210.0 and run["exitstatus"] == 1 and run["complete"]
    assert run["merge"]["overlap"] == [] and run["merge"]["covers_registry"] and run["merge"]["stale_check"] == "ran"
    assert run["stale_divergences"] == [] and run["selection"] == {}
    assert "merged: 13 records (13 distinct items): 9 passed, 2 xfailed, 1 failed, 1 skipped" in text
    assert "overlap: none" in text and "stale known divergences (checked on the union): none" in text
    assert (out / "report.html").is_file() and "Merged from 4 runs" in (out / "summary.md").read_text()


def test_a_missing_share_leaves_the_union_partial_and_the_stale_check_unrun(capsys, tmp_path):
    shares = [
        write(tmp_path / f"s{i}", [r for k, r in enumerate(RECORDS) if k % 4 == i - 1], shard=f"{i}/4") for i in (1, 3)
    ]
    code, text, _ = harness(capsys, "report", "--merge", *shares, "--out", tmp_path / "m")
    merged = results.load(tmp_path / "m")
    assert merged.run["shard"] == "1/4,3/4" and not merged.run["merge"]["covers_registry"]
    assert "stale known divergences: not run: shares 2/4, 4/4 are missing" in text


def test_different_registries_are_refused_in_one_line_naming_both_fingerprints(capsys, tmp_path):
    a = write(tmp_path / "a", [rec("x[float32]")], registry="aaaaaaaaaaaaaaaa", shard="1/2")
    b = write(tmp_path / "b", [rec("y[float32]")], registry="bbbbbbbbbbbbbbbb", shard="2/2")
    code, out, err = harness(capsys, "report", "--merge", a, b, "--out", tmp_path / "m")
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("harness: error: ")]
    assert len(lines) == 1 and len(err.strip().splitlines()) == 1
    assert f"aaaaaaaaaaaaaaaa in {a}" in lines[0] and f"bbbbbbbbbbbbbbbb in {b}" in lines[0]
    assert "--allow-different-registries" in lines[0] and not (tmp_path / "m").exists()
    code, out, _ = harness(capsys, "report", "--merge", a, b, "--out", tmp_path / "m", "--allow-different-registries")
    merged = results.load(tmp_path / "m")
    assert code == 0 and merged.run["registry"] is None
    assert any("different registries" in w for w in merged.run["merge"]["warnings"])
    assert "warning: the runs used different registries" in out
    assert "registries are not known to be the same" in merged.run["merge"]["stale_check"]


def test_an_older_results_file_is_merged_with_its_unknowns_said(capsys, tmp_path):
    a = write(tmp_path / "a", [rec("x[float32]")], old=True)
    b = write(tmp_path / "b", [rec("y[float32]")])
    code, out, _ = harness(capsys, "report", "--merge", a, b, "--out", tmp_path / "m")
    merged = results.load(tmp_path / "m")
    assert code == 0 and merged.run["registry"] is None
    assert f"no registry fingerprint in {a} (an older results file)" in out
    assert "recorded no shard or selection" in merged.run["merge"]["stale_check"]


def test_an_item_from_two_machines_is_kept_from_both_and_the_report_says_so(capsys, tmp_path):
    other = {
        **ENV,
        "cpu_model": "Intel(R) Xeon(R)",
        "cpu_flags": ["avx2", "avx512f"],
        "probe": {**ENV["probe"], "seconds": 9.0},
    }
    a = write(tmp_path / "amd", [rec("x[float32]"), rec("y[float32]")])
    b = write(
        tmp_path / "intel",
        [rec("x[float32]", "failed", errors=["TensorFlow wrong_values"]), rec("z[float32]")],
        env=other,
    )
    code, out, _ = harness(capsys, "report", "--merge", a, b, "--out", tmp_path / "m")
    merged = results.load(tmp_path / "m")
    assert code == 1  # the failure on one machine is not hidden by the pass on the other
    copies = [r for r in merged.records if r["id"] == "cases/t.yaml::x[float32]"]
    assert [(r["source"], r["status"]) for r in copies] == [(str(a), "passed"), (str(b), "failed")]
    assert merged.run["merge"]["overlap"] == [
        {
            "id": "cases/t.yaml::x[float32]",
            "backend": None,
            "sources": [str(a), str(b)],
            "statuses": ["passed", "failed"],
        }
    ]
    assert merged.counts()["passed"] == 3 and merged.counts()["failed"] == 1 and merged.run["merge"]["items"] == 3
    assert "overlap: 1 item recorded by more than one run" in out and f"{a} passed, {b} failed" in out
    assert [e["source"] for e in merged.environments] == [str(a), str(b)]
    assert merged.environment["tensorflow"] == "2.21.0" and "cpu_model" not in merged.environment
    page, summary = (tmp_path / "m" / "report.html").read_text(), (tmp_path / "m" / "summary.md").read_text()
    assert "the merged runs came from several machines or environments" in page
    assert f"{a}: AMD EPYC" in page and f'<h3 class="mono">{b}</h3>' in page and 'id="overlap"' in page
    assert "The merged runs came from 2 different machines or environments" in summary
    assert "1 item recorded by more than one run" in summary


def test_environments_that_differ_only_in_measuring_time_are_one(tmp_path):
    a = results.Run(ENV, {}, [], [rec("x[float32]")])
    b = results.Run({**ENV, "probe": {**ENV["probe"], "seconds": 0.1, "source": "cache"}}, {}, [], [rec("y[float32]")])
    merged = merge.merge([("a", a), ("b", b)])
    assert merged.environment == ENV and merged.environments is None


STALE = [divergence_row("fixed_upstream"), divergence_row("still_there"), divergence_row("per_case", "per_case")]


def test_the_stale_per_entry_check_runs_on_the_union(capsys, tmp_path):
    # Share 1 has the repro and cases where both entries applied and TensorFlow agreed; share 2 has the case where
    # still_there diverged. Neither share can tell; the union shows that fixed_upstream never diverged.
    one = [
        rec(REPRO + "[float32]", applicable=["fixed_upstream", "still_there"]),
        rec("a[float32]", applicable=["fixed_upstream"]),
        rec("p[float32]", applicable=["per_case"]),
    ]
    two = [
        rec("b[float32]", "xfailed", applicable=["still_there"], divergence="still_there"),
        rec("c[float32]", applicable=["still_there"]),
    ]
    assert results.stale_per_entry(one, ["fixed_upstream", "still_there"]) == ["fixed_upstream", "still_there"]
    assert results.stale_per_entry(two, ["fixed_upstream", "still_there"]) == []  # no repro: not judged
    assert results.stale_per_entry(one + two, ["fixed_upstream", "still_there"]) == ["fixed_upstream"]
    backend = [rec(REPRO + "[float32@torch]", applicable=["fixed_upstream"], backend="torch")]
    assert results.stale_per_entry(backend, ["fixed_upstream"]) == []  # a backend's records do not count
    a = write(tmp_path / "s1", one, shard="1/2", divergences=STALE)
    b = write(tmp_path / "s2", two, shard="2/2", divergences=STALE)
    code, out, _ = harness(capsys, "report", "--merge", a, b, "--out", tmp_path / "m")
    merged = results.load(tmp_path / "m")
    assert code == 1 and merged.run["stale_divergences"] == ["fixed_upstream"] and merged.run["exitstatus"] == 1
    assert "stale known divergences (checked on the union): fixed_upstream" in out
    assert "stale known divergences: fixed_upstream" in "; ".join(report.verdict_reasons(merged))
    assert "fixed_upstream" in (tmp_path / "m" / "summary.md").read_text().split("### Stale known divergences")[1]


def test_merge_wrong_uses_get_one_clear_message(capsys, tmp_path):
    a = write(tmp_path / "a", [rec("x[float32]")])

    def wrong(*argv) -> str:
        code, out, err = harness(capsys, *argv)
        assert code == 2 and "Traceback" not in err, (argv, out, err)
        return err

    assert "no such directory" in wrong("report", "--merge", a, tmp_path / "nowhere")
    assert "are the same directory" in wrong("report", "--merge", a, tmp_path / "a" / ".")
    assert "is one of the merged runs" in wrong("report", "--merge", a, "--out", a)
    assert "not both" in wrong("report", a, "--merge", a)
    assert "give DIR, or --merge" in wrong("report")
    assert "go with --merge" in wrong("report", a, "--out", tmp_path / "x")
    assert "no such file" in wrong("report", "--merge", tmp_path)
    assert json.loads((a / results.RESULTS_JSON).read_text())["records"]  # untouched


def test_every_entry_that_excused_a_part_of_a_case_counts_as_seen():
    # A gradient item's tape and raw op, or a quantized item's paths, are excused by several entries: the record's
    # divergence names the first, diverged_divergences all of them; none of them is stale.
    both = rec(
        REPRO + "[bfloat16:gradients]",
        "xfailed",
        applicable=["tape_entry", "raw_entry"],
        divergence="tape_entry",
        diverged_divergences=["tape_entry", "raw_entry"],
    )
    assert results.stale_per_entry([both], ["tape_entry", "raw_entry"]) == []
    first_only = {**both, "diverged_divergences": ["tape_entry"]}
    assert results.stale_per_entry([first_only], ["tape_entry", "raw_entry"]) == ["raw_entry"]
