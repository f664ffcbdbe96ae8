"""``harness matrix`` for real, on a throwaway project: the installed TensorFlow in both oneDNN modes and an
interpreter that does not exist (a version that cannot be had), then the atlas in headless Chromium.

The project's registry is a seed fixture and the repro case of one known divergence, so a combination runs in
seconds; "installed" and a path are matrix versions like "2.17", minus the install.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

import pytest
import yaml
from support import PROJECT_INI, ROOT
from test_report_browser import chromium, console_lines, dump, run_chromium  # noqa: F401 (a fixture)

from harness.tf import versions

ENTRY = "depthwise_strided_dilated"
REPRO = "depthwise_strided_dilated_6x7"
MISSING = "/nonexistent/bin/python"


def _project(root):
    seeds = {c["name"]: c for c in yaml.safe_load((ROOT / "cases" / "seeds.yaml").read_text())["cases"]}
    registry = yaml.safe_load((ROOT / "cases" / "known_divergences.yaml").read_text())
    files = {
        "pytest.ini": PROJECT_INI,
        "conftest.py": 'pytest_plugins = ["harness.pytest_plugin"]\n',
        "cases/seeds.yaml": yaml.safe_dump({"cases": [{**seeds["conv2d_same_2x5x5"], "dtypes": ["float32"]}]}),
        "cases/known_divergences.yaml": yaml.safe_dump(
            {
                "divergences": [d for d in registry["divergences"] if d["id"] == ENTRY],
                "cases": [{**c, "dtypes": ["float32"]} for c in registry["cases"] if c["name"] == REPRO],
            }
        ),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def _matrix(project, *args):
    return subprocess.run(
        [sys.executable, "-m", "harness", "matrix", *args], cwd=project, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory):
    project = tmp_path_factory.mktemp("matrix-project")
    _project(project)
    first = _matrix(project, "--versions", f"installed,{MISSING}", "--onednn", "1,0", "-n", "0", "--out", "m")
    again = _matrix(project, "--versions", f"installed,{MISSING}", "--onednn", "1,0", "-n", "0", "--out", "m")
    return project, first, again


@pytest.mark.tensorflow
def test_the_matrix_runs_records_failures_and_resumes(matrix_run):
    project, first, again = matrix_run
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    assert re.search(r"matrix: 4 combinations \(installed, /nonexistent/bin/python × oneDNN on, off\)", out)
    assert all(f"[{i}/4]" in out for i in range(1, 5)) and re.search(r"matrix: 4 combinations in \d+ s", out)
    assert re.search(r"\[1/4\] tfinstalled-onednn-on: ran, TensorFlow [\d.]+: \d+ passed, 1 xfailed \(\d+ s\)", out)
    assert (
        "tfnonexistent_bin_python-onednn-on: install failed; --tensorflow /nonexistent/bin/python: no such "
        "interpreter" in out
    )
    built = json.loads((project / "m" / "atlas.json").read_text())
    states = {c["key"]: c["state"] for c in built["columns"]}
    assert states == {
        "tfinstalled-onednn-on": "ran",
        "tfinstalled-onednn-off": "ran",
        "tfnonexistent_bin_python-onednn-on": "install failed",
        "tfnonexistent_bin_python-onednn-off": "install failed",
    }
    installed = versions.installed(sys.executable)["tensorflow"]
    assert {c["spec"] for c in built["columns"] if c["state"] == "ran"} == {installed}
    (entry,) = built["divergences"]
    assert entry["cells"]["tfinstalled-onednn-on"]["state"] == "diverges"
    assert entry["cells"]["tfnonexistent_bin_python-onednn-on"]["state"] == "errors"
    minor = ".".join(installed.split(".")[:2])
    # one version run: its onset is at the edge of what was run, and the range says no more than that
    assert entry["measured"]["range"] == f">={minor}" and entry["measured"]["onset"] == f"<={minor}"
    assert entry["onset"]["on"]["first_bad"] == installed and entry["onset"]["on"]["onset"] == f"<={installed}"
    assert entry["cells"]["tfinstalled-onednn-on"]["measurements"][0]["machine"] in built["machines"]
    assert built["new"] == [] and built["per_version"]["tfinstalled-onednn-off"]
    # a second run reuses what ran for this registry and tries the failed ones again
    assert again.returncode == 0 and again.stdout.count("already run for this registry") == 2, again.stdout
    assert again.stdout.count("install failed") == 2
    suggested = _matrix(project, "--out", "m", "--suggest")
    assert suggested.returncode == 0 and re.search(
        rf"{ENTRY}\s+declared \S+\s+measured <={minor}, open", suggested.stdout
    )
    assert "<- update" not in suggested.stdout  # declared from an older version on: one version narrows nothing


def test_bad_matrix_input_is_one_line(tmp_path):
    _project(tmp_path)
    for args, message in (
        (["--versions", "2.x"], "TensorFlow version '2.x': expected MAJOR.MINOR"),
        (["--versions", "installed", "--onednn", "2"], "oneDNN mode '2': expected 1 (on) or 0"),
        (["--suggest", "--out", "nowhere"], "nowhere/atlas.json: cannot read the atlas"),
    ):
        proc = _matrix(tmp_path, *args)
        assert proc.returncode == 2 and proc.stderr.startswith(f"harness: error: {message}"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "reports").exists()


@pytest.mark.tensorflow
def test_the_atlas_in_a_browser(chromium, matrix_run, tmp_path):  # noqa: F811 (the fixture)
    project, _, _ = matrix_run
    page = project / "m" / "atlas.html"
    result = dump(chromium, tmp_path / "profile", page)
    assert result.returncode == 0 and console_lines(result.stderr) == [], result.stderr[-3000:]
    dom = result.stdout
    row = re.search(rf'<tr id="{ENTRY}">.*?</tr>', dom, re.S).group(0)
    assert row.count('class="cell" data-state="diverges"') == 2 and row.count('class="cell" data-state="errors"') == 2
    assert "first bad" in row and '<table id="counts-table">' in dom and "no such interpreter" in dom
    shot = tmp_path / "atlas.png"
    result = run_chromium(chromium, tmp_path / "profile2", f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert result.returncode == 0 and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert struct.unpack(">II", data[16:24])[0] > 0
