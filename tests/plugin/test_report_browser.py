"""report.html as a user sees it: a real pytest run, then the page opened in headless Chromium.

The throwaway project holds three of the seed documents' fixtures, one of them again with a deliberately wrong
expected value (a failure with heatmaps), a malformed case, and its own ``cases/known_divergences.yaml`` with two
entries of the real registry and the repro case of one of them (an xfailed item). pytest runs once, in this process
(pytester's in-process run), with ``--reports``; Chromium then dumps the DOM (the coverage matrix and the summary
rendered, the page's init script ran, no script errors), logs its console (nothing from the page) and takes a
screenshot, kept as ``reports/report-screenshot.png`` for people to look at.

Chromium (the Debian package ``chromium``) is optional locally: without it the test is skipped, unless
HARNESS_REQUIRE_BROWSER=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import yaml
from support import IN_PROCESS, PROJECT_INI
from support import ROOT as REPO

from harness.reports import report

SCREENSHOT = REPO / "reports" / "report-screenshot.png"
WINDOW = (1280, 2000)
BROWSER_TIMEOUT = 60
SEED_CASES = ("conv2d_same_2x5x5", "depthwise_same_2x5x5", "transpose_stride2_same")
DIVERGENCES = ("depthwise_strided_dilated", "output_size_zero_returns_empty")
REPRO_CASE = "depthwise_strided_dilated_6x7"
WRONG_CASE = "conv2d_same_2x5x5_wrong_expected"

pytest_plugins = ["pytester"]


# --- the browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; skip (or fail when HARNESS_REQUIRE_BROWSER=1) without one."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium not installed, and HARNESS_REQUIRE_BROWSER=1 requires it (apt-get install chromium)")
    pytest.skip("chromium not installed (make test installs it)")


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with its own profile directory, killed after BROWSER_TIMEOUT seconds."""
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)


def console_lines(stderr: str) -> list[str]:
    """The page's console messages in Chromium's log (its own dbus / GPU noise is not tagged CONSOLE)."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def dump(binary: str, profile: Path, page: Path) -> subprocess.CompletedProcess:
    """The DOM after the page's scripts ran, on stdout, with the console logged to stderr."""
    return run_chromium(
        binary, profile, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom", page.as_uri()
    )


# --- the project --------------------------------------------------------------------------------------


def project_files() -> dict[str, str]:
    """Case files for the throwaway project, taken from the real registry."""
    seeds = {c["name"]: c for c in yaml.safe_load((REPO / "cases" / "seeds.yaml").read_text())["cases"]}
    registry = yaml.safe_load((REPO / "cases" / "known_divergences.yaml").read_text())
    chosen = [copy.deepcopy(seeds[name]) for name in SEED_CASES]
    wrong = copy.deepcopy(seeds["conv2d_same_2x5x5"])
    wrong.update(name=WRONG_CASE, dtypes=["float32"], description="the seed fixture with one expected value off by 1")
    wrong["expected"]["value"][0][1][2] += 1
    malformed = {
        "name": "bad_op",
        "op": "conv4d",
        "attrs": {"strides": 1, "padding": "VALID"},
        "inputs": {"input": {"layout": "HW", "value": [[1]]}, "filters": {"layout": "HW", "value": [[1]]}},
    }
    divergences = {
        "divergences": [d for d in registry["divergences"] if d["id"] in DIVERGENCES],
        "cases": [{**c, "dtypes": ["float32"]} for c in registry["cases"] if c["name"] == REPRO_CASE],
    }
    assert len(divergences["divergences"]) == len(DIVERGENCES) and len(divergences["cases"]) == 1
    dump_ = lambda doc: yaml.safe_dump(doc, sort_keys=False, width=120)  # noqa: E731
    return {
        "pytest.ini": PROJECT_INI,
        "conftest.py": 'pytest_plugins = ["harness.pytest_plugin"]\n',
        "cases/seeds.yaml": dump_({"defaults": {"tags": ["seed"]}, "cases": chosen}),
        "cases/wrong.yaml": dump_({"cases": [wrong, malformed]}),
        "cases/known_divergences.yaml": dump_(divergences),
    }


@pytest.fixture
def report_html(chromium, pytester) -> Path:
    """Run the project with --reports (in this process, on its TensorFlow server) and return report.html."""
    for name, text in project_files().items():
        (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / name).write_text(text, encoding="utf-8")
    out = pytester.path / "out"
    result = pytester.runpytest_inprocess(*IN_PROCESS, "-n", "0", "-q", "--reports", str(out), "cases")
    stdout = result.stdout.str()
    assert result.ret == 1, stdout[-4000:] + result.stderr.str()[-4000:]  # the wrong case fails
    assert f"FAILED cases/wrong.yaml::{WRONG_CASE}[float32]" in stdout, stdout[-4000:]
    assert (out / "results.json").exists() and (out / "summary.md").exists()
    return out / report.REPORT_HTML


# --- the tests -------------------------------------------------------------------------------------------


def test_the_console_checks_would_catch_an_error(chromium, tmp_path):
    """A control page that throws and logs an error: the DOM records both and the log shows CONSOLE lines."""
    page = tmp_path / "control.html"
    page.write_text(
        "<!DOCTYPE html><html><head>" + report.ERROR_TRAP + '<meta charset="utf-8">'
        '<link rel="icon" href="data:,"></head><body><script>console.error("control error");'
        "document.body.dataset.ready = '1'; null.boom;</script></body></html>",
        encoding="utf-8",
    )
    result = dump(chromium, tmp_path / "profile", page)
    assert re.search(r'<html[^>]* data-errors="2"', result.stdout), result.stdout[:500]
    assert any("control error" in line for line in console_lines(result.stderr)), result.stderr[-3000:]


@pytest.mark.tensorflow
def test_report_in_a_browser(chromium, report_html, tmp_path):
    # the DOM after the page initialised
    result = dump(chromium, tmp_path / "profile", report_html)
    assert result.returncode == 0, result.stderr[-3000:]
    dom = result.stdout
    assert re.search(r'<body[^>]* data-ready="1"', dom), "the page's init script did not finish"
    errors = re.search(r'<html[^>]* data-errors="(\d+)"', dom)
    assert errors is None or errors.group(1) == "0", f"{errors.group(1)} script errors on the page"
    assert console_lines(result.stderr) == [], console_lines(result.stderr)

    # the summary band: verdict and counts
    assert re.search(r'<body[^>]* data-verdict="fail"', dom)
    assert '<div class="big">FAIL</div>' in dom and "1 failed case<" in dom and "1 malformed case<" in dom
    # the coverage matrix, with a row per configuration and a red cell for the wrong case
    matrix = dom[dom.index('<table id="coverage"') :]
    matrix = matrix[: matrix.index("</table>")]
    rows = re.findall(r'<tr data-op="([^"]+)"', matrix)
    assert {"conv2d", "depthwise_conv2d", "conv2d_transpose"} <= set(rows)
    assert 'class="cell red"' in matrix and 'class="cell green"' in matrix and 'class="cell amber"' in matrix
    # the failure, with its YAML and heatmaps
    assert f"cases/wrong.yaml::{WRONG_CASE}[float32]" in dom and "expected − reference" in dom
    assert len(re.findall(r'<img class="map" src="data:image/png;base64,', dom)) >= 5
    assert "name: conv2d_same_2x5x5_wrong_expected" in dom
    # the known divergence excused the repro case; the malformed case is listed with its message
    row = re.search(r'id="div-depthwise_strided_dilated".*?</tr>', dom, re.S).group(0)
    assert "diverged in 1 of 1" in row
    assert "cases/wrong.yaml::bad_op" in dom and "conv4d" in dom

    # the screenshot, kept for people to look at
    shot = tmp_path / "report.png"
    result = run_chromium(chromium, tmp_path / "profile2", f"--screenshot={shot}", report_html.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == WINDOW
    assert len(data) > 10_000  # a blank page compresses to a few hundred bytes
    SCREENSHOT.parent.mkdir(exist_ok=True)
    partial = SCREENSHOT.with_name(f".{SCREENSHOT.name}.{os.getpid()}.tmp")
    shutil.copyfile(shot, partial)
    os.replace(partial, SCREENSHOT)  # concurrent runs never leave half a file
