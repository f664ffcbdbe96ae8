"""harness/install.py: pip's configuration, passed on to uv as options (make's install, tools/install.py, and
harness.tf.versions; pip is the fallback)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from harness import install


def test_pip_settings_take_the_environment_over_install_over_global(monkeypatch):
    listing = "\n".join(
        [
            "global.find-links='/opt/wheels'",
            "global.index-url='https://a.example/simple'",
            "install.index-url='https://b.example/simple'",
            ":env:.index-url='https://c.example/simple'",
            "global.extra-index-url='file:///x/simple file:///y/simple'",
            "site.unknown-section='ignored'",
            "not a setting",
        ]
    )

    def fake_run(argv, **kwargs):
        assert argv[1:] == ["-m", "pip", "config", "list"]
        return subprocess.CompletedProcess(argv, 0, stdout=listing)

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    assert install.pip_settings("python") == {
        "find-links": "/opt/wheels",
        "index-url": "https://c.example/simple",
        "extra-index-url": "file:///x/simple file:///y/simple",
    }


def test_uv_gets_every_index_link_and_constraint_and_the_certificate():
    settings = {
        "extra-index-url": "file:///x/simple file:///y/simple",
        "find-links": "/opt/wheels",
        "constraint": "/etc/pip/constraints.txt",
        "cert": "/etc/ssl/ca.pem",
        "default-timeout": "180",
        "disable-pip-version-check": "1",
        "no-index": "false",
    }
    cmd, env = install.uv_command("target", settings, ["-e", ".[dev]"], python="py")
    assert cmd[:4] == ["py", "-m", "uv", "pip"] and cmd[-2:] == ["-e", ".[dev]"]
    assert ("--python", "target") in list(zip(cmd, cmd[1:]))
    pairs = list(zip(cmd, cmd[1:]))
    assert ("--extra-index-url", "file:///x/simple") in pairs and ("--extra-index-url", "file:///y/simple") in pairs
    assert ("--find-links", "/opt/wheels") in pairs and ("--constraint", "/etc/pip/constraints.txt") in pairs
    assert ("--index-strategy", "unsafe-best-match") in pairs  # pip takes the best version from every index
    assert "--compile-bytecode" in cmd  # as pip does: no process compiles the modules it imports
    assert "--no-index" not in cmd
    assert env["SSL_CERT_FILE"] == "/etc/ssl/ca.pem" and env["UV_HTTP_TIMEOUT"] == "180"
    assert "--no-index" in install.uv_command("py", {"no-index": "true"}, [])[0]


def test_pip_takes_over_when_uv_cannot_do_it(monkeypatch):
    assert install.install_with_uv(sys.executable, ["x"], python="/no/such/python").startswith("[Errno 2]")
    monkeypatch.setattr(install.importlib.util, "find_spec", lambda name: None)
    assert install.install_with_uv(sys.executable, ["x"]) == "uv is not installed"


def test_a_setting_uv_is_not_told_about_is_an_error_so_that_pip_installs():
    with pytest.raises(ValueError, match=r"pip setting trusted-host='example.org': not passed on to uv"):
        install.uv_command("py", {"trusted-host": "example.org"}, [])
    assert install.main([]) == 2


def test_install_falls_back_to_pip_and_reports_pip_s_output_when_it_fails(monkeypatch):
    calls = []

    def pip(cmd, **kwargs):
        calls.append(cmd)
        failed = "broken" in cmd
        return subprocess.CompletedProcess(cmd, 1 if failed else 0, "", "ERROR: no matching distribution" * failed)

    monkeypatch.setattr(install, "install_with_uv", lambda *args, **kwargs: "uv is not installed")
    monkeypatch.setattr(install.subprocess, "run", pip)
    log = io.StringIO()
    assert install.install("/env/bin/python", ["pkg==1"], log=log) == "pip"
    assert calls[-1][:4] == ["/env/bin/python", "-m", "pip", "install"] and calls[-1][-1] == "pkg==1"
    assert log.getvalue() == "uv is not installed; installing with pip\n"
    with pytest.raises(install.InstallError, match=r"pip install broken failed") as failure:
        install.install("/env/bin/python", ["broken"])
    assert "no matching distribution" in failure.value.output
    monkeypatch.setattr(install, "install_with_uv", lambda *args, **kwargs: None)
    assert install.install("/env/bin/python", ["pkg==1"]) == "uv" and len(calls) == 2
