"""The plugin's case folders (harness_cases / --cases, harness_shipped / --shipped): inert until configured, a
folder named on the command line, and a bad folder as a usage error. Collection only (--co)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

CASE = {
    "name": "mine",
    "op": "conv2d",
    "attrs": {"strides": 1, "padding": "VALID"},
    "inputs": {"input": {"layout": "HW", "value": [[1, 2], [3, 4]]}, "filters": {"layout": "HW", "value": [[1]]}},
    "dtypes": ["float32"],
}


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "mine.yaml").write_text(yaml.safe_dump({"cases": [CASE]}))
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    return tmp_path


def _collect(project, *args):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", *args], cwd=project, capture_output=True, text=True, timeout=300
    )


@pytest.mark.tensorflow
def test_installed_but_unconfigured_the_plugin_collects_nothing(project):
    proc = _collect(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_plain.py::test_plain" in proc.stdout and "mine.yaml" not in proc.stdout


@pytest.mark.tensorflow
def test_a_folder_named_on_the_command_line_is_collected_beside_the_tests(project):
    proc = _collect(project, "--cases", "cases", "--shipped", "none")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cases/mine.yaml::mine[float32]" in proc.stdout and "test_plain.py::test_plain" in proc.stdout


def test_a_bad_folder_is_a_usage_error(project):
    proc = _collect(project, "--cases", "nope")
    assert proc.returncode == 4 and "case folder 'nope': no such directory" in proc.stderr, proc.stderr
