"""``--shard I/N`` (``make verify SHARD=I/N``): N shares that together run every item exactly once.

Checked on collection only (no case runs), in a subprocess as a CI matrix job would run it.
"""

import subprocess
import sys

from support import ROOT

FILES = ["cases/seeds.yaml", "cases/examples.yaml", "cases/errors.yaml"]


def collected(*extra: str) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *FILES, "--collect-only", "-q", "-p", "no:cacheprovider", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, [line for line in proc.stdout.splitlines() if "::" in line]


def test_shares_are_disjoint_balanced_and_cover_everything_once():
    _, everything = collected()
    shares = [collected("--shard", f"{i}/3")[1] for i in (1, 2, 3)]
    assert sorted(sum(shares, [])) == sorted(everything)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert collected("--shard", "2/3")[1] == shares[1]  # deterministic


def test_a_bad_shard_is_a_usage_error():
    for bad in ("4/3", "x"):
        code, _ = collected("--shard", bad)
        assert code == 4, bad  # pytest's usage-error status
