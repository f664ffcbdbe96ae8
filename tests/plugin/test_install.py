"""The harness as a user installs it: the wheel in a fresh virtual environment outside the repository, `harness
init` in an empty folder, then `pytest` there (the plugin found through its pytest11 entry point, the registry from
the wheel's package data).

TensorFlow itself is not installed into that environment: its server runs in this environment's interpreter
(``HARNESS_TF_PYTHON``), as `harness verify --tensorflow` runs it in a cached one. The wheel's dependencies come
from the package index (pip's cache makes that quick after the first time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from support import ROOT

from harness import install

pytestmark = pytest.mark.tensorflow


def _run(argv, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """A built wheel installed into a fresh venv, and a folder where `harness init` ran: (venv bin, folder, env)."""
    base = tmp_path_factory.mktemp("user")
    dist = base / "dist"
    # python -m build: the sdist first, then the wheel from it (what a release makes); isolated from this checkout
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=base)
    wheel = next(dist.glob("tf_conv_harness-*.whl"))
    venv.EnvBuilder(with_pip=True).create(base / "venv")
    bin_ = base / "venv" / "bin"
    install.install(str(bin_ / "python"), [str(wheel)])  # as make installs (uv as pip would, else pip)
    folder = base / "my-kernel-repo"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HARNESS_", "PYTHON"))}
    env.update(HARNESS_TF_PYTHON=sys.executable, PATH=f"{bin_}{os.pathsep}{env.get('PATH', '')}")
    _run([str(bin_ / "harness"), "init"], cwd=folder, env=env)
    return bin_, folder, env, wheel


def test_the_wheel_carries_the_registry_and_the_entry_point(user):
    *_, wheel = user
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("harness/_registry/", 1)[1] for n in names if n.startswith("harness/_registry/")}
    in_repo = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cases").rglob("*") if p.is_file()}
    assert shipped == in_repo
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]" in text and "harness.pytest_plugin = harness.pytest_plugin" in text


def test_init_then_pytest_in_an_empty_folder(user):
    bin_, folder, env, _ = user
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        ".github/workflows/tf-conv-check.yml",
        "cases/example.yaml",
        "cases/known_divergences.yaml",
        "kernel/backend.yaml",
        "kernel/my_conv.py",
        "pytest.ini",
    ]
    proc = subprocess.run(
        [str(bin_ / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--reports", "reports"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    records = {r["id"]: r for r in json.loads((folder / "reports" / "results.json").read_text())["records"]}
    assert records["cases/example.yaml::my_first_case[float32]"]["status"] == "passed"
    assert records["cases/example.yaml::my_first_case[float64]"]["status"] == "passed"
    # a shipped known divergence applies to the user's own case
    xfail = records["cases/example.yaml::my_strided_dilated_depthwise[float32]"]
    assert xfail["status"] == "xfailed" and xfail["divergence"] == "depthwise_strided_dilated"
    # the placeholder kernel, declared in kernel/backend.yaml, is checked against TensorFlow
    assert records["cases/example.yaml::my_first_case[float32@my_kernel]"]["status"] == "passed"
    assert not [i for i, r in records.items() if r["status"] == "failed"]
    assert all(i.startswith("cases/example.yaml::") for i in records)  # the shipped cases are not collected


def test_the_shipped_registry_runs_from_the_wheel(user):
    bin_, folder, env, _ = user
    # the shipped files named on the command line, as a user picks some (collecting all of them takes 20-40 s)
    where = "from harness.registry.location import shipped_folder; print(shipped_folder().path)"
    shipped = Path(_run([str(bin_ / "python"), "-c", where], cwd=folder, env=env).stdout.strip())
    assert shipped.is_relative_to(bin_.parent)  # the wheel's copy, not this checkout's
    proc = subprocess.run(
        [
            str(bin_ / "python"),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--shipped",
            "cases",
            str(shipped / "seeds.yaml"),
            str(shipped / "known_divergences.yaml"),
            "cases/example.yaml",
            "--reports",
            "shipped",
            "-n",
            "2",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    records = json.loads((folder / "shipped" / "results.json").read_text())["records"]
    ids = {r["id"] for r in records}
    assert "cases/seeds.yaml::transpose_stride2_same[float32]" in ids  # a golden fixture, named as in the repository
    assert any(r["status"] == "xfailed" for r in records if r["id"].startswith("cases/known_divergences.yaml::"))
    assert not [r["id"] for r in records if r["status"] == "failed"]
    assert any(i.startswith("cases/example.yaml::") for i in ids)  # and the user's own, beside them
