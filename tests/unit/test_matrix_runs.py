"""harness.matrix without TensorFlow: the pytest run is replaced by one that writes a results.json, so what the
matrix records about a combination (and whether it resumes it), its progress lines, its atlas, ``--suggest`` and
``--merge`` are checked on their own."""

import io
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.version import Version
from support import ROOT

from harness import cli, matrix
from harness.registry.loader import fingerprint
from harness.reports import results
from harness.reports.atlas import AtlasError
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


def test_a_resumed_run_recorded_before_outcomes_gets_them(tmp_path, monkeypatch):
    state = run_one(tmp_path, monkeypatch, "r1")
    assert state["outcomes"] == {"passed": 1}
    directory = tmp_path / "m" / "runs" / COMBO.key
    old = {k: v for k, v in state.items() if k != "outcomes"}
    (directory / matrix.STATE_FILE).write_text(json.dumps(old), encoding="utf-8")
    again = run_one(tmp_path, monkeypatch, "r1")
    assert again["resumed"] is True and again["outcomes"] == {"passed": 1}
    assert json.loads((directory / matrix.STATE_FILE).read_text())["outcomes"] == {"passed": 1}


def test_the_progress_line_counts_entries_that_do_not_hold_apart_from_failures():
    state = {
        "state": "ran",
        "tensorflow": "2.15.1",
        "seconds": 52.4,
        "error": None,
        "outcomes": {"passed": 1200, "xfailed": 30, "not holding": 67},
    }
    line = matrix.progress_line(2, 3, "tf2.15-onednn-on", state)
    assert line == (
        "[2/3] tf2.15-onednn-on: ran, TensorFlow 2.15.1: 1200 passed, 30 xfailed, 67 not holding (an entry "
        "applied, TensorFlow agreed) (52 s)"
    )
    assert not re.search(r"\bfailed", line)
    failed = matrix.progress_line(1, 1, "k", {**state, "outcomes": {"passed": 1, "failed": 2}, "resumed": True})
    assert failed.endswith(": 1 passed, 2 failed (already run for this registry)")


# --- a matrix without TensorFlow, its atlas, --suggest and --merge --------------------------------------------

ENTRY = "depthwise_strided_dilated"
BACKEND_ENTRY = "onednn_strided_unit_width_wrong_values_in_function"  # backend: tensorflow-function
MACHINE = {"cpu_model": "AMD EPYC 7B13", "cpu_isa_level": "avx2"}


def _project(root):
    """A registry of two entries of the real one (no cases: the fake runs below make the records)."""
    doc = yaml.safe_load((ROOT / "cases" / "known_divergences.yaml").read_text(encoding="utf-8"))
    entries = [d for d in doc["divergences"] if d["id"] in (ENTRY, BACKEND_ENTRY)]
    (root / "cases").mkdir(parents=True)
    (root / "cases" / "known_divergences.yaml").write_text(yaml.safe_dump({"divergences": entries}), "utf-8")


def fake_matrix_pytest(root, holds_from):
    """pytest of a combination: the entry's cases agree before version ``holds_from`` (3 items, "not holding")
    and diverge from it on (1 item)."""

    def run(argv, **kw):
        directory = Path(argv[argv.index("--reports") + 1])
        version = re.match(r"tf([\d.]+)-onednn", directory.name).group(1)
        case = {
            "kind": "case",
            "op": "depthwise_conv2d",
            "dtype": "float32",
            "check": "forward",
            "applicable_divergences": [ENTRY],
        }
        if Version(version) >= Version(holds_from):
            recs = [
                {
                    **case,
                    "id": "cases/x.yaml::a[float32]",
                    "status": "xfailed",
                    "tensorflow": "wrong_values (x)",
                    "divergence": ENTRY,
                }
            ]
        else:
            recs = [
                {**case, "id": f"cases/x.yaml::a{i}[float32]", "status": "failed", "tensorflow": "agrees"}
                for i in range(3)
            ]
        recs.append({"id": "cases/x.yaml::b[float32]", "kind": "case", "status": "passed", "op": "conv2d"})
        env = {"tensorflow": version + ".0", "probe": {"paths": {"conv2d": "onednn"}}, **MACHINE}
        (directory / results.RESULTS_JSON).write_text(
            results.Run(env, {"registry": fingerprint(root)}, [], recs).to_json(), encoding="utf-8"
        )
        return type("Done", (), {"returncode": 0})()

    return run


def fake_matrix(root, monkeypatch, specs, out, holds_from="2.16"):
    monkeypatch.setattr(versions, "ensure", lambda spec, log: sys.executable)
    monkeypatch.setattr(matrix.subprocess, "run", fake_matrix_pytest(root, holds_from))
    log = io.StringIO()
    built = matrix.run(specs, ["1"], root, out, workers="0", log=log)
    return built, log.getvalue()


def test_a_partial_matrix_reports_what_it_measured_and_no_more(tmp_path, monkeypatch):
    _project(tmp_path)
    built, log = fake_matrix(tmp_path, monkeypatch, ["2.15", "2.16"], tmp_path / "m")
    assert "[1/2] tf2.15-onednn-on: ran, TensorFlow 2.15.0: 1 passed, 3 not holding (an entry applied" in log
    assert not re.search(r"\bfailed", log)
    entries = {d["id"]: d for d in built["divergences"]}
    assert entries[ENTRY]["measured"]["text"] == "2.16, open" and entries[ENTRY]["onset"]["off"]["state"] == "not run"
    backend = entries[BACKEND_ENTRY]
    assert {c["text"] for c in backend["cells"].values()} == {"not run"}
    assert (
        backend["cells"]["tf2.15-onednn-on"]["detail"] == "the tensorflow-function backend was not checked in this run"
    )
    assert backend["backend"] == "tensorflow-function" and backend["measured"]["text"] == "not run"
    assert list(built["machines"]) == ["AMD EPYC 7B13 (avx2)"]
    on_disk = json.loads((tmp_path / "m" / "atlas.json").read_text())
    assert on_disk["schema"] == 2 and on_disk["divergences"] == json.loads(json.dumps(built["divergences"]))


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_matrix_merge_and_suggest_from_the_command_line(tmp_path, monkeypatch, capsys):
    _project(tmp_path)
    fake_matrix(tmp_path, monkeypatch, ["2.15", "2.16", "2.17"], tmp_path / "full")
    fake_matrix(tmp_path, monkeypatch, ["2.17"], tmp_path / "partial")
    code, out, _ = _cli(capsys, "matrix", "--suggest", "--out", str(tmp_path / "partial"))
    # the partial run saw 2.17 diverge with nothing older run: the declared range stands
    (line,) = [line for line in out.splitlines() if line.startswith(ENTRY)]
    assert code == 0 and "measured <=2.17, open" in line and "<- update" not in out
    code, out, _ = _cli(
        capsys, "matrix", "--merge", str(tmp_path / "partial"), str(tmp_path / "full"), "--out", str(tmp_path / "m")
    )
    assert code == 0 and "merged 2 atlases: 1 machines (AMD EPYC 7B13 (avx2)), 3 of 3 columns run" in out
    merged = matrix.read_atlas(tmp_path / "m")
    full = matrix.read_atlas(tmp_path / "full")
    assert [d["measured"] for d in merged["divergences"]] == [d["measured"] for d in full["divergences"]]
    assert merged["divergences"][0]["measured"]["text"] == "2.16 to 2.17, open"  # 2.15 agreed: a measured onset
    assert '<td class="measured" data-state="diverges" title="&gt;=2.16">2.16 to 2.17, open</td>' in (
        tmp_path / "m" / "atlas.html"
    ).read_text(encoding="utf-8")
    # merging into the atlas kept: the output may be one of the inputs
    code, _, _ = _cli(
        capsys, "matrix", "--merge", str(tmp_path / "m"), str(tmp_path / "partial"), "--out", str(tmp_path / "m")
    )
    assert code == 0 and matrix.read_atlas(tmp_path / "m")["divergences"] == merged["divergences"]


def test_bad_merge_input_is_one_line(tmp_path, monkeypatch, capsys):
    _project(tmp_path)
    fake_matrix(tmp_path, monkeypatch, ["2.15"], tmp_path / "a")
    other = json.loads((tmp_path / "a" / "atlas.json").read_text())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "atlas.json").write_text(json.dumps({**other, "registry": "0123"}), encoding="utf-8")
    (tmp_path / "c.json").write_text("{}", encoding="utf-8")
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for argv, message in (
        (["--merge", str(tmp_path / "nowhere")], f"--merge {tmp_path / 'nowhere'}: no such directory or file"),
        (["--merge", a, a], f"--merge: {a} and {a} are the same atlas"),
        (["--merge", a, "--versions", "2.15"], "--merge runs nothing: it does not go with --versions"),
        (["--merge", a, b], "the atlases are of different registries (cases/ fingerprints)"),
        (["--merge", str(tmp_path / "c.json")], f"{tmp_path / 'c.json'}: not a divergence atlas"),
        (["--allow-different-registries"], "--allow-different-registries goes with --merge"),
    ):
        code, out, err = _cli(capsys, "matrix", *argv, "--out", str(tmp_path / "out"))
        assert code == 2 and err.startswith(f"harness: error: {message}"), err
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    code, out, _ = _cli(capsys, "matrix", "--merge", a, b, "--allow-different-registries", "--out", str(tmp_path / "o"))
    assert code == 0 and out.startswith("warning: the atlases are of different registries")


def test_an_atlas_is_read_from_its_directory_or_its_file(tmp_path):
    with pytest.raises(AtlasError, match=r"nowhere/atlas.json: cannot read the atlas"):
        matrix.read_atlas(tmp_path / "nowhere")
    (tmp_path / "a.json").write_text('{"schema": 2, "divergences": []}', encoding="utf-8")
    assert matrix.read_atlas(tmp_path / "a.json")["divergences"] == []
