"""Other TensorFlow versions for the TensorFlow server: one cached virtual environment per version.

Only the TensorFlow server (``harness.tf.isolation``) runs there; the harness, pytest, the reference and the reports
stay in the harness's own environment. ``HARNESS_TF_PYTHON`` names the server's interpreter (unset: this one), and
``ensure(spec)`` turns a request into one:

* ``"2.17"``: the newest 2.17.x of ``tensorflow-cpu``; ``"2.17.1"``: exactly that; ``"nightly"``: ``tf-nightly``;
* a path to an existing interpreter that has TensorFlow: used as it is, nothing installed;
* ``"installed"``: this interpreter's own TensorFlow.

A version's environment is ``<cache>/<spec>/`` (``cache_root()``: ``$HARNESS_TF_CACHE``, else
``$XDG_CACHE_HOME/tf-conv-harness/tf``, else ``~/.cache/tf-conv-harness/tf``), created once with the least the
server needs: TensorFlow and what its own pins pull in, plus ``numpy<2`` before 2.18 (older wheels allow NumPy 2
but were built against 1.x) and ``ml_dtypes`` before 2.14 (``harness.conv.dtypes`` imports it; TensorFlow has
its own bfloat16 type there, which the server uses for TensorFlow's arrays). Its marker file ``harness-tf.json`` is written last, after TensorFlow was imported
there, so an interrupted install has no marker and is redone; a marker whose TensorFlow has gone (a corrupt
environment) is redone too. Every failure is a ``VersionError``: one line naming the value.

``python -m harness.tf.versions ensure SPEC`` prints the interpreter (installing first when needed); ``list`` and
``clean [SPEC ...]`` show and remove cached environments.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from pathlib import Path

from harness import install
from harness.tf import machine

PYTHON_ENV = "HARNESS_TF_PYTHON"
CACHE_ENV = "HARNESS_TF_CACHE"
MARKER = "harness-tf.json"
MARKER_SCHEMA = 1
DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu")
NEEDED_BYTES = 3 * 2**30  # free space asked for before an install: a nightly takes about 2.4 GB
OLDEST = (2, 13)  # the oldest minor version the matrix runs by default
_SPEC = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


class VersionError(RuntimeError):
    """A TensorFlow version that cannot be had: one line naming the value."""


# --- the server's interpreter ---------------------------------------------------------------


def server_python() -> str:
    """The interpreter the TensorFlow server runs (``HARNESS_TF_PYTHON``, default this one)."""
    return os.environ.get(PYTHON_ENV) or sys.executable


def _local_installed() -> dict:
    version = "not installed"
    for dist in DISTRIBUTIONS:
        try:
            version = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    try:
        numpy = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        numpy = None
    origin = None
    try:
        from importlib import util

        spec = util.find_spec("tensorflow")
        if spec is not None and spec.origin:
            origin = f"{spec.origin}@{os.stat(spec.origin).st_mtime_ns}"
    except (ImportError, ValueError, OSError):
        pass
    return {"tensorflow": version, "numpy": numpy, "origin": origin, "python": ".".join(map(str, sys.version_info[:3]))}


def installed(python: str | None = None) -> dict:
    """What an interpreter holds, read without importing TensorFlow: {"tensorflow": version or "not installed",
    "numpy", "origin" (where TensorFlow is and when it was installed), "python"}. Default: the server's."""
    return _installed(python or server_python())


def harness_path() -> str:
    """A directory to put on another interpreter's path so that it imports this harness package and nothing else.

    From a source checkout that is the checkout. An installed harness sits in a site-packages whose NumPy (and the
    rest) would shadow the other interpreter's own (NumPy 1 for TensorFlow before 2.18): then a directory holding
    only a link to the package, made once per package location.
    """
    package = Path(__file__).resolve().parents[1]
    if package.parent.name not in ("site-packages", "dist-packages"):
        return str(package.parent)
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    directory = Path(tempfile.gettempdir()) / f"tf-conv-harness-{os.getuid()}-{digest}"
    directory.mkdir(mode=0o700, exist_ok=True)
    try:
        (directory / "harness").symlink_to(package, target_is_directory=True)
    except FileExistsError:  # made earlier, or by a concurrent process
        pass
    return str(directory)


def _query(python: str) -> dict:
    """``installed`` without the cache (an environment being checked or installed changes under it)."""
    if python == sys.executable:
        return _local_installed()
    code = (
        f"import json, sys; sys.path.insert(0, {harness_path()!r}); "
        "from harness.tf import versions; print(json.dumps(versions._local_installed()))"
    )
    try:
        out = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONNOUSERSITE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VersionError(f"{PYTHON_ENV}={python}: cannot run it ({exc})") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise VersionError(f"{PYTHON_ENV}={python}: cannot read its packages ({last})")
    return json.loads(out.stdout.strip().splitlines()[-1])


_installed = cache(_query)


# --- specs -------------------------------------------------------------------------------------


def parse(spec: str) -> tuple[int, int, int | None] | None:
    """(major, minor, patch or None) of a version spec; None for "nightly"; VersionError for anything else."""
    if spec == "nightly":
        return None
    m = _SPEC.match(spec)
    if not m:
        raise VersionError(
            f"TensorFlow version {spec!r}: expected MAJOR.MINOR (e.g. 2.17), MAJOR.MINOR.PATCH, "
            "'nightly', 'installed' or a path to a Python interpreter"
        )
    return int(m[1]), int(m[2]), (int(m[3]) if m[3] is not None else None)


def requirements(spec: str) -> list[str]:
    """What pip installs for a version spec: TensorFlow (CPU wheel), and ``numpy<2`` before 2.18."""
    parsed = parse(spec)
    if parsed is None:
        return ["tf-nightly"]
    major, minor, patch = parsed
    pins = [f"tensorflow-cpu=={spec}" if patch is not None else f"tensorflow-cpu=={major}.{minor}.*"]
    if (major, minor) < (2, 18):
        pins.append("numpy<2")
    if (major, minor) < (2, 14):  # the harness's dtypes module needs it; TensorFlow depends on it from 2.14 on
        pins.append("ml_dtypes")
    return pins


def minor_versions(newest: str, oldest: tuple[int, int] = OLDEST) -> list[str]:
    """Every minor version from ``oldest`` to ``newest`` (a version string), e.g. ["2.13", ..., "2.21"]."""
    m = _SPEC.match(newest.split("-")[0].split("rc")[0].split(".dev")[0]) if newest else None
    if not m:
        raise VersionError(f"TensorFlow version {newest!r}: cannot tell its minor version")
    major, minor = int(m[1]), int(m[2])
    return [f"{major}.{n}" for n in range(oldest[1] if major == oldest[0] else 0, minor + 1)]


# --- cached environments -----------------------------------------------------------------------


def cache_root(environ=None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ[CACHE_ENV]) if environ.get(CACHE_ENV) else machine.cache_dir(environ) / "tf"


def _python_of(directory: Path) -> Path:
    return directory / "bin" / "python"


def marker(spec: str, root: Path | None = None) -> dict | None:
    """The marker of a cached environment, or None when there is none (not installed, or interrupted)."""
    try:
        rec = json.loads(((root or cache_root()) / spec / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("schema") == MARKER_SCHEMA else None


def cached(root: Path | None = None) -> list[dict]:
    """Every cached environment's marker (with "directory" and "bytes"), by version."""
    root = root or cache_root()
    found = []
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        rec = marker(directory.name, root)
        if directory.is_dir():
            found.append(
                {
                    **(rec or {"spec": directory.name, "tensorflow": None, "state": "incomplete"}),
                    "directory": str(directory),
                    "bytes": _size(directory),
                }
            )
    return found


def _size(directory: Path) -> int:
    total = 0
    for path in directory.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            pass
    return total


@contextmanager
def _locked(root: Path, spec: str):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{spec}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs asking for one version: the second waits, then reuses
        yield


def _healthy(spec: str, directory: Path, rec: dict) -> bool:
    """Whether a marked environment still holds the TensorFlow its marker names (cheap: no TensorFlow import)."""
    python = _python_of(directory)
    if not python.exists():
        return False
    try:
        found = _query(str(python))
    except VersionError:
        return False
    return found.get("tensorflow") == rec.get("tensorflow") and bool(found.get("origin"))


def _pip_failure(spec: str, log: str, requirement: str) -> str:
    text = log.lower()
    if "no space left on device" in text:
        return f"TensorFlow {spec}: no space left on device while installing into {cache_root()}"
    if "no matching distribution" in text or "could not find a version" in text:
        return (
            f"TensorFlow {spec}: pip has no {requirement} for Python "
            f"{sys.version_info.major}.{sys.version_info.minor} on this platform"
        )
    last = [ln for ln in log.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return f"TensorFlow {spec}: pip could not install {requirement}: {last[0].strip()[:200]}"


def ensure(spec: str, root: Path | None = None, log=None) -> str:
    """The interpreter whose TensorFlow answers for ``spec`` (see the module docstring), installing its environment
    first when it is not cached (progress on ``log``). VersionError, with nothing left half-installed, when that
    cannot be done."""
    if spec in ("installed", ""):
        return sys.executable
    if os.sep in spec or Path(spec).is_file():
        python = Path(spec).expanduser()
        if not python.is_file() or not os.access(python, os.X_OK):
            raise VersionError(f"--tensorflow {spec}: no such interpreter")
        if installed(str(python))["tensorflow"] == "not installed":
            raise VersionError(f"--tensorflow {spec}: that interpreter has no TensorFlow")
        return str(python)
    parse(spec)
    log = log or sys.stderr
    root = root or cache_root()
    directory = root / spec
    with _locked(root, spec):
        rec = marker(spec, root)
        if rec is not None and _healthy(spec, directory, rec):
            return str(_python_of(directory))
        if directory.exists():
            why = "corrupt (its TensorFlow is gone)" if rec else "incomplete (an interrupted install)"
            print(f"TensorFlow {spec}: the cached environment {directory} is {why}; installing it again", file=log)
            shutil.rmtree(directory, ignore_errors=True)
        _install(spec, directory, log)
    return str(_python_of(directory))


def _install(spec: str, directory: Path, log) -> None:
    free = shutil.disk_usage(directory.parent).free
    if free < NEEDED_BYTES:
        raise VersionError(
            f"TensorFlow {spec}: {free / 2**30:.1f} GiB free in {directory.parent}, an environment "
            f"needs about {NEEDED_BYTES / 2**30:.0f} GiB ({CACHE_ENV} puts them elsewhere)"
        )
    pins = requirements(spec)
    print(f"TensorFlow {spec}: installing {' '.join(pins)} into {directory} ...", file=log, flush=True)
    start = time.monotonic()
    try:
        _run([sys.executable, "-m", "venv", str(directory)], spec, "creating the environment")
        pre = ["--pre"] if spec == "nightly" else []
        try:
            install.install(str(_python_of(directory)), [*pre, *pins], log=log, what=f"TensorFlow {spec}: ")
        except install.InstallError as exc:
            raise VersionError(_pip_failure(spec, exc.output, pins[0])) from None
        code = "import json, numpy, tensorflow as tf; print(json.dumps([tf.__version__, numpy.__version__]))"
        out = _run(
            [str(_python_of(directory)), "-c", code],
            spec,
            "importing TensorFlow",
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        tensorflow, numpy = json.loads(out.strip().splitlines()[-1])
        dist = _query(str(_python_of(directory)))["tensorflow"]
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # nothing half-installed, whatever stopped it
        raise
    seconds = round(time.monotonic() - start, 1)
    rec = {
        "schema": MARKER_SCHEMA,
        "spec": spec,
        "tensorflow": dist,
        "tensorflow_module": tensorflow,
        "numpy": numpy,
        "python": ".".join(map(str, sys.version_info[:3])),
        "requirements": pins,
        "installed": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": seconds,
        "bytes": _size(directory),
    }
    (directory / MARKER).write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")  # last: marks it complete
    print(
        f"TensorFlow {spec}: {dist} (NumPy {numpy}) installed in {seconds:.0f} s, {rec['bytes'] / 2**30:.1f} GiB",
        file=log,
        flush=True,
    )


def _run(argv: list[str], spec: str, what: str, env=None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise VersionError(f"TensorFlow {spec}: {what} failed: {exc}") from None
    if out.returncode != 0:
        raise VersionError(_pip_failure(spec, out.stdout + out.stderr, what))
    return out.stdout


def clean(specs=(), root: Path | None = None) -> list[tuple[str, int]]:
    """Remove cached environments (all, or those of ``specs``): [(spec, bytes freed)]."""
    root = root or cache_root()
    removed = []
    for rec in cached(root):
        if specs and rec["spec"] not in specs and Path(rec["directory"]).name not in specs:
            continue
        shutil.rmtree(rec["directory"], ignore_errors=True)
        Path(root, f".{Path(rec['directory']).name}.lock").unlink(missing_ok=True)
        removed.append((Path(rec["directory"]).name, rec["bytes"]))
    return removed


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m harness.tf.versions", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="print the interpreter for a version, installing it first").add_argument("spec")
    sub.add_parser("list", help="the cached environments")
    sub.add_parser("clean", help="remove cached environments").add_argument("specs", nargs="*")
    args = p.parse_args(argv)
    try:
        if args.command == "ensure":
            print(ensure(args.spec))
        elif args.command == "list":
            for rec in cached():
                print(
                    f"{rec['spec']:<10} {rec.get('tensorflow') or rec.get('state')!s:<22} "
                    f"{rec['bytes'] / 2**30:5.1f} GiB  {rec['directory']}"
                )
        else:
            for spec, size in clean(args.specs):
                print(f"removed {spec} ({size / 2**30:.1f} GiB)")
    except VersionError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
