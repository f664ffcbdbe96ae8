"""Installing Python packages with uv, as pip would, falling back to pip (standard library only).

``install`` is the one way the project installs anything: ``make`` installs the project with it
(``tools/install.py``), ``harness.tf.versions`` other TensorFlow versions, and the tests the built wheel. uv
resolves, downloads and unpacks in parallel, a few times faster than pip for TensorFlow, torch and JAX. uv does not
read pip's configuration, so what pip is configured with (``pip config list``: its files and ``PIP_*``
variables) is passed on as uv's options: index URLs, find-links, constraints, certificates, the timeout. A setting
it is not told how to pass on, a missing uv or a failed uv run means pip does the install instead.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence

# pip's setting -> uv's option; settings that take several values (separated by whitespace) repeat the option.
OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "constraints": "--constraint",
}
FLAGS = {"no-index": "--no-index"}
ENVIRONMENT = {"cert": "SSL_CERT_FILE", "timeout": "UV_HTTP_TIMEOUT", "default-timeout": "UV_HTTP_TIMEOUT"}
IGNORED = {"disable-pip-version-check", "quiet", "progress-bar", "no-color", "root-user-action", "no-input"}


def pip_settings(python: str = sys.executable) -> dict[str, str]:
    """pip's effective settings, ``{name: value}``: the environment (``:env:``) over the files' ``install`` section
    over ``global`` (pip's own precedence)."""
    listing = subprocess.run(
        [python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    ranked: dict[str, tuple[int, str]] = {}
    for line in listing:
        key, sep, value = line.partition("=")
        section, _, name = key.rpartition(".")
        rank = {":env:": 3, "install": 2, "global": 1}.get(section)
        if not sep or rank is None:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name not in ranked or rank >= ranked[name][0]:
            ranked[name] = (rank, value)
    return {name: value for name, (_, value) in ranked.items()}


def uv_command(
    target: str, settings: dict[str, str], requirements: Sequence[str], python: str = sys.executable
) -> tuple[list[str], dict[str, str]]:
    """The command (uv run by ``python``) and environment that install ``requirements`` into the environment of the
    interpreter ``target`` as pip with ``settings`` would. ValueError naming a setting uv is not told how to honour."""
    cmd = [python, "-m", "uv", "pip", "install", "--quiet", "--python", target]
    cmd += ["--index-strategy", "unsafe-best-match"]  # pip takes the best version from every index
    # pip compiles every module at install; without that, a process that may not write bytecode
    # (PYTHONDONTWRITEBYTECODE) compiles each module it imports, every time: TensorFlow's 1,800, in every process
    cmd.append("--compile-bytecode")
    env = dict(os.environ)
    for name, value in settings.items():
        if name in OPTIONS:
            for item in shlex.split(value):
                cmd += [OPTIONS[name], item]
        elif name in FLAGS:
            if value.lower() in ("1", "true", "yes", "on"):
                cmd.append(FLAGS[name])
        elif name in ENVIRONMENT:
            env[ENVIRONMENT[name]] = value
        elif name not in IGNORED:
            raise ValueError(f"pip setting {name}={value!r}: not passed on to uv")
    return cmd + list(requirements), env


def install_with_uv(target: str, requirements: Sequence[str], python: str = sys.executable) -> str | None:
    """Install ``requirements`` (pip's arguments: requirement specifiers, ``-e PATH``, ``--pre``) into ``target``'s
    environment with the uv that ``python`` has: None when done, else why not (then pip should do it)."""
    if python == sys.executable and importlib.util.find_spec("uv") is None:
        return "uv is not installed"
    reqs = ["--prerelease=allow" if r == "--pre" else r for r in requirements]
    try:
        cmd, env = uv_command(target, pip_settings(python), reqs, python)
    except (subprocess.CalledProcessError, OSError, ValueError) as exc:
        return str(exc)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        last = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()][-1:] or ["no output"]
        return f"uv failed: {last[0].strip()[:300]}"
    return None


class InstallError(Exception):
    """pip failed too: ``output`` is what it printed."""

    def __init__(self, requirements: Sequence[str], output: str):
        self.output = output
        super().__init__(f"pip install {' '.join(requirements)} failed")


def pip_install(target: str, requirements: Sequence[str]) -> tuple[bool, str]:
    """``target``'s pip installs ``requirements``: (whether it did, what it printed)."""
    cmd = [target, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", *requirements]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        return False, str(exc)
    return done.returncode == 0, done.stdout + done.stderr


def install(target: str, requirements: Sequence[str], python: str = sys.executable, log=None, what: str = "") -> str:
    """Install ``requirements`` (pip's arguments) into the environment of the interpreter ``target``: with uv as pip
    would (``install_with_uv``), else with ``target``'s pip. Returns the tool that did it ("uv" or "pip"), after
    saying on ``log`` why uv did not (``what``: the line's prefix); InstallError with pip's output when pip fails
    too."""
    why_not_uv = install_with_uv(target, requirements, python)
    if why_not_uv is None:
        return "uv"
    if log is not None:
        print(f"{what}{why_not_uv}; installing with pip", file=log, flush=True)
    done, output = pip_install(target, requirements)
    if not done:
        raise InstallError(requirements, output)
    return "pip"


def main(argv: list[str]) -> int:
    """``python -m harness.install REQUIREMENT...`` (what ``tools/install.py`` runs): install into this interpreter's
    environment, with uv (installed first) as pip would, else with pip."""
    if not argv:
        print("usage: python -m harness.install REQUIREMENT... (e.g. -e '.[dev]')", file=sys.stderr)
        return 2
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "uv"], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"uv could not be installed ({exc})", file=sys.stderr)
    importlib.invalidate_caches()  # uv was installed after this process started
    try:
        install(sys.executable, argv, log=sys.stderr)
    except InstallError as exc:
        print(f"{exc}:\n{exc.output}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
