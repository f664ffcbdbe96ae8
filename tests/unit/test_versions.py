"""harness.tf.versions: a TensorFlow version's cached environment, with pip and the venv module faked (the real
install runs in tests/tensorflow/test_other_version.py)."""

import json
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from harness.tf import versions


@pytest.mark.parametrize(
    "spec,want",
    [
        ("2.17", ["tensorflow-cpu==2.17.*", "numpy<2"]),
        ("2.17.1", ["tensorflow-cpu==2.17.1", "numpy<2"]),
        ("2.13", ["tensorflow-cpu==2.13.*", "numpy<2", "ml_dtypes"]),
        ("2.18", ["tensorflow-cpu==2.18.*"]),
        ("2.21", ["tensorflow-cpu==2.21.*"]),
        ("nightly", ["tf-nightly"]),
    ],
)
def test_requirements_pin_what_older_wheels_need(spec, want):
    assert versions.requirements(spec) == want


@pytest.mark.parametrize("spec", ["2", "two", "2.17.x", "2.17 ", "latest", "2.17.1.1"])
def test_a_bad_version_is_one_line_naming_it(spec):
    with pytest.raises(versions.VersionError) as err:
        versions.ensure(spec, root=Path("/nonexistent"))
    assert repr(spec) in str(err.value) and "\n" not in str(err.value)


def test_the_default_list_is_every_minor_from_the_oldest():
    assert versions.minor_versions("2.21.0") == [f"2.{n}" for n in range(13, 22)]
    assert versions.minor_versions("2.23.0.dev20261026")[-1] == "2.23"
    with pytest.raises(versions.VersionError):
        versions.minor_versions("not installed")


def test_the_cache_honours_xdg_and_the_override(tmp_path):
    assert versions.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "tf-conv-harness" / "tf"
    assert versions.cache_root({"XDG_CACHE_HOME": "/x", versions.CACHE_ENV: str(tmp_path)}) == tmp_path


def test_installed_and_a_path_need_no_install(tmp_path):
    assert versions.ensure("installed") == sys.executable
    with pytest.raises(versions.VersionError, match="no such interpreter"):
        versions.ensure(str(tmp_path / "bin" / "python"))


class FakePip:
    """Stands for `python -m venv` and pip: records calls, creates the interpreter, fails when told."""

    def __init__(self, monkeypatch, fail: str | None = None, interrupt: bool = False, uv: bool = False):
        self.calls = []
        self.fail, self.interrupt, self.uv = fail, interrupt, uv
        monkeypatch.setattr(versions, "_run", self.run)
        monkeypatch.setattr(versions, "_query", self.installed)
        monkeypatch.setattr(versions.install, "install_with_uv", self.install_with_uv)
        monkeypatch.setattr(versions.install, "pip_install", self.pip_install)

    def install_with_uv(self, target, requirements, python=None):
        """harness.install's uv: installs when told to, else says why not (then pip installs)."""
        self.calls.append(["uv", target, *requirements])
        if not self.uv:
            return "uv is not installed"
        (Path(target).parent.parent / "tf").write_text("2.17.1")
        return None

    def pip_install(self, target, requirements):
        """harness.install's pip: installs, or fails with the output it was told."""
        argv = [target, "-m", "pip", "install", *requirements]
        self.calls.append(argv)
        if self.interrupt:
            raise KeyboardInterrupt
        if self.fail:
            return False, self.fail
        (Path(target).parent.parent / "tf").write_text("2.17.1")
        return True, ""

    def run(self, argv, spec, what, env=None):
        self.calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            python = Path(argv[3]) / "bin" / "python"
            python.parent.mkdir(parents=True)
            python.write_text("")
            return ""
        return json.dumps(["2.17.1", "1.26.4"]) + "\n"

    def installed(self, python):
        marker = Path(python).parent.parent / "tf"
        return {
            "tensorflow": marker.read_text() if marker.exists() else "not installed",
            "numpy": "1.26.4",
            "origin": str(marker) if marker.exists() else None,
            "python": "3.11.7",
        }


def test_an_install_is_marked_last_and_reused(tmp_path, monkeypatch):
    pip = FakePip(monkeypatch)
    python = versions.ensure("2.17", root=tmp_path, log=sys.stderr)
    assert python == str(tmp_path / "2.17" / "bin" / "python")
    assert versions.marker("2.17", tmp_path)["tensorflow"] == "2.17.1"
    assert any("tensorflow-cpu==2.17.*" in argv for argv in pip.calls)
    n = len(pip.calls)
    assert versions.ensure("2.17", root=tmp_path) == python and len(pip.calls) == n  # reused


def test_uv_installs_when_it_can_and_pip_is_not_run(tmp_path, monkeypatch, capsys):
    pip = FakePip(monkeypatch, uv=True)
    versions.ensure("2.17", root=tmp_path, log=sys.stderr)
    assert versions.marker("2.17", tmp_path)["tensorflow"] == "2.17.1"
    assert [argv for argv in pip.calls if "pip" in argv] == []
    assert pip.calls[1][0] == "uv" and "tensorflow-cpu==2.17.*" in pip.calls[1]
    FakePip(monkeypatch)  # and without uv, pip installs and says why
    versions.ensure("2.16", root=tmp_path, log=sys.stderr)
    assert "TensorFlow 2.16: uv is not installed; installing with pip" in capsys.readouterr().err


def test_an_interrupted_install_is_detected_and_redone(tmp_path, monkeypatch, capsys):
    (tmp_path / "2.17" / "bin").mkdir(parents=True)  # what an install killed before its marker leaves
    FakePip(monkeypatch)
    versions.ensure("2.17", root=tmp_path)
    assert "incomplete (an interrupted install)" in capsys.readouterr().err
    assert versions.marker("2.17", tmp_path) is not None


def test_a_corrupt_environment_is_detected_and_redone(tmp_path, monkeypatch, capsys):
    FakePip(monkeypatch)
    versions.ensure("2.17", root=tmp_path)
    (tmp_path / "2.17" / "tf").unlink()  # TensorFlow removed from under the marker
    versions.ensure("2.17", root=tmp_path)
    assert "corrupt (its TensorFlow is gone)" in capsys.readouterr().err
    assert (tmp_path / "2.17" / "tf").exists()


def test_an_interrupt_during_pip_leaves_nothing_half_installed(tmp_path, monkeypatch):
    FakePip(monkeypatch, interrupt=True)
    with pytest.raises(KeyboardInterrupt):
        versions.ensure("2.17", root=tmp_path)
    assert not (tmp_path / "2.17").exists()


@pytest.mark.parametrize(
    "pip_says,message",
    [
        (
            "ERROR: No matching distribution found for tensorflow-cpu==2.99.*",
            "TensorFlow 2.99: pip has no tensorflow-cpu==2.99.* for Python 3.",
        ),
        ("OSError: [Errno 28] No space left on device", "TensorFlow 2.99: no space left on device while installing"),
        ("ERROR: something else\n", "TensorFlow 2.99: pip could not install tensorflow-cpu==2.99.*: ERROR: something"),
    ],
)
def test_a_failed_install_is_one_line_and_removed(tmp_path, monkeypatch, pip_says, message):
    FakePip(monkeypatch, fail=pip_says)
    with pytest.raises(versions.VersionError) as err:
        versions.ensure("2.99", root=tmp_path)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert not (tmp_path / "2.99").exists()


def test_too_little_disk_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    pip = FakePip(monkeypatch)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(versions.shutil, "disk_usage", lambda path: usage(10 * 2**30, 9 * 2**30, 2**30))
    with pytest.raises(versions.VersionError, match=r"1\.0 GiB free in .*needs about 3 GiB"):
        versions.ensure("2.17", root=tmp_path)
    assert pip.calls == [] and not (tmp_path / "2.17").exists()


def test_clean_removes_environments_and_says_how_much(tmp_path, monkeypatch):
    FakePip(monkeypatch)
    versions.ensure("2.17", root=tmp_path)
    versions.ensure("2.16", root=tmp_path)
    assert [r["spec"] for r in versions.cached(tmp_path)] == ["2.16", "2.17"]
    removed = versions.clean(["2.16"], root=tmp_path)
    assert [spec for spec, _ in removed] == ["2.16"] and [r["spec"] for r in versions.cached(tmp_path)] == ["2.17"]
    assert [spec for spec, _ in versions.clean(root=tmp_path)] == ["2.17"] and versions.cached(tmp_path) == []
