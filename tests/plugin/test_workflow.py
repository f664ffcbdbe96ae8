"""The CI workflow template (harness/templates/ci.yml, harness.starter): this repository's own workflow is its
rendering, both renderings pass actionlint, `harness init` refuses to overwrite, and the merge job's script runs
on shard reports made here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import PROJECT_INI, ROOT

from harness import starter

ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def test_the_repository_workflow_is_the_rendered_template():
    rendered = starter.workflow("pip install .", repository=True)
    assert (ROOT / ".github" / "workflows" / "ci.yml").read_text() == rendered, (
        'regenerate it: python -c "from harness import starter; '
        "open('.github/workflows/ci.yml', 'w').write(starter.workflow('pip install .', repository=True))\""
    )
    user = starter.workflow("pip install git+https://example.org/tf-conv-harness")
    assert "make lint" in rendered and "make lint" not in user and not re.search(r"@[A-Z]+@", user + rendered)


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed (make env installs it)")
def test_both_workflows_pass_actionlint(tmp_path):
    starter.init(tmp_path / "user")
    for path in (ROOT / ".github" / "workflows" / "ci.yml", tmp_path / "user" / starter.WORKFLOW):
        proc = subprocess.run([ACTIONLINT, str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(starter.workflow("pip install .").replace("runs-on: ubuntu-latest", "runs-on: 3", 1))
    assert subprocess.run([ACTIONLINT, str(broken)], capture_output=True).returncode != 0  # it does check


def test_init_writes_nothing_over_existing_files(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "example.yaml").write_text("cases: []\n")
    with pytest.raises(starter.StarterError, match=r"cases/example.yaml exists already: harness init --force"):
        starter.init(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cases", "example.yaml"]
    made = starter.init(tmp_path, force=True)
    assert Path("pytest.ini") in made.written and "my_first_case" in (tmp_path / "cases" / "example.yaml").read_text()


def test_init_beside_an_existing_pytest_configuration(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "k"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n')
    made = starter.init(tmp_path)
    assert made.config_elsewhere == "pyproject.toml" and not (tmp_path / "pytest.ini").exists()
    assert made.ini_lines.splitlines() == [
        "harness_cases = cases",
        "harness_shipped = divergences",
        "harness_backends = kernel/backend.yaml",
    ]
    with pytest.raises(starter.StarterError, match="install command 'a\\\\nb': must be one non-empty line"):
        starter.workflow("a\nb")


def _merge_script() -> str:
    jobs = yaml.safe_load(starter.workflow("pip install ."))["jobs"]
    (step,) = [s for s in jobs["merge"]["steps"] if "harness report --merge" in s.get("run", "")]
    return step["run"]


@pytest.mark.slow
@pytest.mark.tensorflow
def test_the_merge_job_runs_on_shard_reports(tmp_path):
    """Two oneDNN modes x two shards of a small registry, laid out as the verify jobs upload them; the merge job's
    script makes one report per combination (the shards' union) and the atlas across them."""
    project = tmp_path / "project"
    (project / "cases").mkdir(parents=True)
    shutil.copy(ROOT / "cases" / "seeds.yaml", project / "cases" / "seeds.yaml")
    (project / "pytest.ini").write_text(PROJECT_INI)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    procs = []
    for onednn in ("1", "0"):
        for shard in (1, 2):
            out = tmp_path / "ci" / "reports" / f"tf2.21-onednn{onednn}" / f"shard{shard}"
            argv = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "cases",
                "--shard",
                f"{shard}/2",
                "--reports",
                str(out),
            ]
            procs.append(
                subprocess.Popen(
                    argv,
                    cwd=project,
                    env={**env, "TF_ENABLE_ONEDNN_OPTS": onednn},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
    for proc in procs:
        assert proc.wait(timeout=900) == 0, proc.stderr.read()
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", _merge_script()],
        cwd=tmp_path / "ci",
        env={**env, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    merged = tmp_path / "ci" / "merged"
    for onednn in ("1", "0"):
        run = json.loads((merged / f"tf2.21-onednn{onednn}" / "results.json").read_text())
        shards = [
            json.loads(
                (tmp_path / "ci" / "reports" / f"tf2.21-onednn{onednn}" / f"shard{i}" / "results.json").read_text()
            )
            for i in (1, 2)
        ]
        assert sorted(r["id"] for r in run["records"]) == sorted(r["id"] for s in shards for r in s["records"])
        assert (merged / f"tf2.21-onednn{onednn}" / "report.html").is_file()
    atlas = json.loads((merged / "atlas" / "atlas.json").read_text())
    assert {c["onednn"] for c in atlas["columns"]} == {"1", "0"}
    assert (merged / "atlas" / "atlas.html").is_file()
