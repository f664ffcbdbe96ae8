"""The machinery on another real TensorFlow: the seed fixtures and the known divergences' repro cases against an
older version in its own cached environment (``harness.tf.versions``), with NumPy 1 on the server's side.

The first run on a machine installs the version (about 30 s and 1.2 GiB, under the user cache); later runs reuse
it. The run must be green there: the seeds pass exactly as printed, and every divergence repro either diverges as
its entry says (the entry's measured ``tensorflow_versions`` covers the version) or passes where it does not.
"""

import json
import os
import subprocess
import sys

import pytest
from support import ROOT

from harness.tf import versions

# The newest TensorFlow that needs NumPy 1: the wire crosses NumPy versions. `make test` installs it while pytest
# collects (its TEST_TF); ensure() waits for that install instead of starting another.
OTHER_VERSION = os.environ.get("HARNESS_TEST_TF", "2.17")


@pytest.fixture(scope="module")
def other_python():
    try:
        return versions.ensure(OTHER_VERSION)
    except versions.VersionError as exc:  # no network or no disk: say so, loudly
        pytest.fail(f"cannot install TensorFlow {OTHER_VERSION} for this test: {exc}")


def test_seeds_and_divergence_repros_are_green_on_an_older_tensorflow(other_python, tmp_path):
    reports = tmp_path / "reports"
    env = {**os.environ, versions.PYTHON_ENV: other_python, "TF_ENABLE_ONEDNN_OPTS": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "cases/seeds.yaml",
            "cases/known_divergences.yaml",
            "-q",
            "-p",
            "no:cacheprovider",
            "--reports",
            str(reports),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    run = json.loads((reports / "results.json").read_text())
    environment = run["environment"]
    assert environment["tensorflow"].startswith(OTHER_VERSION + "."), environment["tensorflow"]
    assert environment["probe"]["tensorflow"] == environment["tensorflow"]  # read from the server itself
    assert environment["tensorflow_python"] == other_python
    if versions.parse(OTHER_VERSION)[:2] < (2, 18):  # the server's NumPy 1 against the harness's NumPy 2
        assert environment["tensorflow_numpy"].startswith("1."), environment["tensorflow_numpy"]
    statuses = [r["status"] for r in run["records"]]
    failed = [r["id"] for r in run["records"] if r["status"] == "failed"]
    assert out.returncode == 0 and not failed, failed or out.stdout[-3000:]
    assert statuses.count("xfailed") > 10 and statuses.count("passed") > 26  # the repros diverge; the seeds pass
