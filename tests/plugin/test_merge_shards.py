"""``harness report --merge`` on real shares: ``cases/seeds.yaml`` run as ``--shard 1/2`` and ``--shard 2/2`` into two
report directories and once whole, in a throwaway project (its ``cases/`` holds only that file, so the registry is
fixed whatever happens to the repository's). The merged run must be the whole run: the same record ids, statuses and
counts. The three pytest runs go in this process, one after the other (pytester's in-process run), on this process's
TensorFlow server.
"""

import shutil

import pytest
from support import IN_PROCESS, PROJECT_INI, ROOT

from harness import cli
from harness.reports import report, results

pytest_plugins = ["pytester"]


@pytest.mark.tensorflow
def test_two_real_shares_merge_to_the_whole_run(pytester, tmp_path, capsys):
    pytester.makeini(PROJECT_INI)
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]\n')
    shutil.copy(ROOT / "cases" / "seeds.yaml", pytester.mkdir("cases") / "seeds.yaml")
    runs = {"whole": [], "share1": ["--shard", "1/2"], "share2": ["--shard", "2/2"]}
    for name, extra in runs.items():
        result = pytester.runpytest_inprocess(*IN_PROCESS, "-q", "cases", "--reports", str(tmp_path / name), *extra)
        assert (tmp_path / name / results.RESULTS_JSON).is_file(), result.stdout.str()[-3000:]

    capsys.readouterr()  # the runs' own output
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
