"""The registry still kills the fixed sample of mutants of the reference package (``selftest/mutation_sample.yaml``).

``make mutation`` judges every mutmut mutant against the whole registry (about 30 minutes on 2 cores); this is the
sampled version ``make test`` runs: each sampled mutant against the item that killed it in the last full run. It
fails when a case that killed a mutant was removed or weakened, or when the reference changed under a sampled
mutant (then the sample is rewritten after a full run, ``MUTATION_ARGS="--write-sample 30 --seed 1"``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from support import ROOT

from harness.selftest.mutmut_run import SAMPLE, load_sample

# Two planted entries show the check can fail, in the same run (mutant generation alone takes 20-40 s): a mutant of
# the window view's strides paired with an error contract of conv1d (which never reaches the view) survives, and an
# entry whose change is not its mutant's is stale.
PLANTED = [
    {
        "mutant": "harness.conv.reference.x__window_view__mutmut_6",
        "change": "out_steps = tuple(step[2 + a] * w.stride for a, w in enumerate(wins))",
        "killer": "cases/errors.yaml::conv1d_channel_mismatch[float32]",
    },
    {
        "mutant": "harness.conv.reference.x__window_view__mutmut_7",
        "change": "not what mutmut changed",
        "killer": "cases/errors.yaml::conv1d_channel_mismatch[float32]",
    },
]


@pytest.mark.slow
def test_the_registry_still_kills_every_sampled_mutant(tmp_path):
    entries = load_sample(ROOT / SAMPLE)
    assert not {e["mutant"] for e in PLANTED} & {e["mutant"] for e in entries}
    assert len(entries) >= 30 and len({e["mutant"].rsplit(".", 1)[0] for e in entries}) == 4  # all four modules
    sample = tmp_path / "sample.yaml"
    sample.write_text(yaml.safe_dump({"sample": entries + PLANTED}), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.selftest.mutmut_run",
            "--check-sample",
            "--sample-file",
            str(sample),
            "--out",
            str(tmp_path / "out"),
            "--jobs",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    flagged = [line for line in proc.stdout.splitlines() if line.startswith("mutation sample:")]
    assert proc.returncode == 1 and len(flagged) == 2, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert f"sample: {len(entries)} of {len(entries) + 2} mutants killed by their recorded item" in proc.stdout
    assert "survived: harness.conv.reference.x__window_view__mutmut_6 (by cases/errors.yaml::" in flagged[1]
    assert "harness.conv.reference.x__window_view__mutmut_7: no such mutant, or its change differs" in flagged[0]
