"""``harness report --merge`` on real shares: ``cases/seeds.yaml`` run as ``--shard 1/2`` and ``--shard 2/2`` into two
report directories and once whole, in a throwaway project (its ``cases/`` holds only that file, so the registry is
fixed whatever happens to the repository's). The merged run must be the whole run: the same record ids, statuses and
counts. The three pytest runs go in parallel subprocesses (each starts its own TensorFlow server).
"""

import shutil
import subprocess
import sys

import pytest
from support import PROJECT_INI, ROOT

from harness import cli
from harness.reports import report, results


@pytest.mark.tensorflow
def test_two_real_shares_merge_to_the_whole_run(tmp_path, capsys):
    project = tmp_path / "project"
    (project / "cases").mkdir(parents=True)
    shutil.copy(ROOT / "cases" / "seeds.yaml", project / "cases" / "seeds.yaml")
    (project / "pytest.ini").write_text(PROJECT_INI)
    (project / "conftest.py").write_text('pytest_plugins = ["harness.pytest_plugin"]\n')
    runs = {"whole": [], "share1": ["--shard", "1/2"], "share2": ["--shard", "2/2"]}
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "cases",
                "--reports",
                str(tmp_path / name),
                *extra,
            ],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, extra in runs.items()
    }
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert (tmp_path / name / results.RESULTS_JSON).is_file(), out[-3000:]

    merged_dir = tmp_path / "merged"
    code = cli.main(["report", "--merge", str(tmp_path / "share1"), str(tmp_path / "share2"), "--out", str(merged_dir)])
    printed = capsys.readouterr().out
    whole, merged = results.load(tmp_path / "whole"), results.load(merged_dir)
    shares = [results.load(tmp_path / name) for name in ("share1", "share2")]
    assert [s.run["shard"] for s in shares] == ["1/2", "2/2"] and all(s.records for s in shares)
    assert merged.counts() == whole.counts() and report.tally(merged) == report.tally(whole)
    assert sorted((r["id"], r["status"]) for r in merged.records) == sorted(
        (r["id"], r["status"]) for r in whole.records
    )
    assert merged.run["registry"] == whole.run["registry"] and merged.run["shard"] is None
    assert merged.run["merge"]["overlap"] == [] and merged.run["merge"]["stale_check"] == "ran"
    assert merged.run["stale_divergences"] == whole.run["stale_divergences"] == []
    assert code == (0 if report.verdict(whole) == "pass" else 1), printed
    assert (merged_dir / "report.html").is_file() and (merged_dir / "summary.md").is_file()
