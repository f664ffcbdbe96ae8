"""``--shard I/N`` (``make verify SHARD=I/N``): N shares that together run every item exactly once.

Checked on collection only (no case runs), with the repository's own configuration, as a CI matrix job would run
it; pytest runs in this process (pytester's in-process run: collecting needs no process of its own).
"""

import pytest
from support import IN_PROCESS, ROOT

pytest_plugins = ["pytester"]

FILES = ["cases/seeds.yaml", "cases/examples.yaml", "cases/errors.yaml"]


@pytest.fixture
def collected(pytester):
    def collect(*extra: str) -> tuple[int, list[str]]:
        result = pytester.runpytest_inprocess(
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            *(str(ROOT / name) for name in FILES),
            "--collect-only",
            "-q",
            *IN_PROCESS,
            *extra,
        )
        return result.ret, [line for line in result.outlines if "::" in line]

    return collect


def test_shares_are_disjoint_balanced_and_cover_everything_once(collected):
    _, everything = collected()
    shares = [collected("--shard", f"{i}/3")[1] for i in (1, 2, 3)]
    assert sorted(sum(shares, [])) == sorted(everything)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert collected("--shard", "2/3")[1] == shares[1]  # deterministic


def test_a_bad_shard_is_a_usage_error(collected):
    for bad in ("4/3", "x"):
        code, _ = collected("--shard", bad)
        assert code == 4, bad  # pytest's usage-error status
