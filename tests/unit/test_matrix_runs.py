"""harness.matrix.run_one without TensorFlow: the pytest run is replaced by one that writes a results.json, so
what the matrix records about a combination (and whether it resumes it) is checked on its own."""

import io
import sys

from harness import matrix
from harness.reports import results
from harness.tf import versions

COMBO = matrix.Combination("2.17", "1")


def fake_pytest(registry):
    """A stand-in for ``subprocess.run(pytest ...)`` that writes a run of ``registry`` into ``--reports``."""

    def run(argv, **kw):
        directory = argv[argv.index("--reports") + 1]
        rec = {"id": "cases/x.yaml::a[float32]", "kind": "case", "status": "passed"}
        env = {"tensorflow": "2.17.1", "probe": {"paths": {"conv2d": "onednn"}, "onednn_version": "v3.4.1"}}
        with open(f"{directory}/{results.RESULTS_JSON}", "w", encoding="utf-8") as f:
            f.write(results.Run(env, {"registry": registry}, [], [rec]).to_json())
        return type("Done", (), {"returncode": 0})()

    return run


def run_one(tmp_path, monkeypatch, wrote_registry):
    monkeypatch.setattr(versions, "ensure", lambda spec, log: sys.executable)
    monkeypatch.setattr(matrix.subprocess, "run", fake_pytest(wrote_registry))
    return matrix.run_one(COMBO, tmp_path, tmp_path / "m", "r1", "0", False, io.StringIO())


def test_a_run_of_this_registry_is_recorded_and_then_resumed(tmp_path, monkeypatch):
    state = run_one(tmp_path, monkeypatch, "r1")
    assert state["state"] == "ran" and state["error"] is None and state["tensorflow"] == "2.17.1"
    assert state["counts"]["passed"] == 1 and state["onednn_version"] == "v3.4.1"
    assert run_one(tmp_path, monkeypatch, "r1").get("resumed") is True


def test_a_registry_edited_mid_run_is_recorded_and_run_again(tmp_path, monkeypatch):
    state = run_one(tmp_path, monkeypatch, "r2")
    assert state["state"] == "registry changed" and "registry r1 at the start, r2 in its results" in state["error"]
    again = run_one(tmp_path, monkeypatch, "r1")
    assert "resumed" not in again and again["state"] == "ran"
