"""The TensorFlow version matrix: the registry once per TensorFlow version and oneDNN mode, then the atlas.

``harness matrix`` (``make matrix``) runs, for every combination of the versions and oneDNN modes asked for,
``pytest cases --any-tensorflow-version`` with the TensorFlow server in that version's cached environment
(``harness.tf.versions``), into ``<out>/runs/<key>/`` (results.json, report.html, junit.xml, pytest.log and the
matrix's own ``matrix.json``). Every known divergence is applied whatever its ``tensorflow_versions``, so each
entry is tried on every version. Then ``<out>/atlas.json`` and ``<out>/atlas.html`` (``harness.reports.atlas``), and a
repro script for the smallest case of each new-disagreement group under ``<out>/repros/<key>/``.

* A combination already run for the same registry (``harness.registry.loader.fingerprint``) is not run again
  unless ``rerun``; an interrupted matrix resumes where it stopped. A combination during which ``cases/``
  changed is recorded as "registry changed" and runs again next time.
* A version that cannot be installed or started is recorded as such (its column reads "errors"), and the matrix
  goes on.
* Each combination's progress line counts its items by outcome (``atlas.outcome``): the failures of entries that do
  not hold on that version are "not holding", apart from what failed.
* ``suggest`` prints each entry's measured ``tensorflow_versions`` range from the atlas, without running anything.
* ``merge`` merges the atlases of several machines and partial matrices into one (``atlas.merge``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness import atomic
from harness.registry import divergences, location
from harness.registry.cases import DIVERGENCES_FILE, Case, item_case_id, split_case_id
from harness.registry.loader import fingerprint, load_file
from harness.reports import atlas, compare, repro, results
from harness.tf import environment, machine, versions

STATE_FILE = "matrix.json"
STATE_SCHEMA = 1


@dataclass(frozen=True)
class Combination:
    spec: str  # a version spec (harness.tf.versions): "2.17", "2.17.1", "nightly"
    onednn: str  # TF_ENABLE_ONEDNN_OPTS: "1" or "0"

    @property
    def key(self) -> str:
        return atlas.column_key(self.spec, self.onednn)

    @property
    def numbered(self) -> bool:
        """Whether the spec names a version (else "installed" or an interpreter: the version is what answers)."""
        return self.spec == "nightly" or versions._SPEC.match(self.spec) is not None


def default_versions(nightly: bool = False) -> list[str]:
    """Every minor version from ``versions.OLDEST`` to the one installed here (newest patch each), and nightly
    when asked."""
    installed = versions.installed(sys.executable)["tensorflow"]
    if installed == "not installed":
        raise versions.VersionError("no TensorFlow installed here to end the default version list; give --versions")
    return versions.minor_versions(installed) + (["nightly"] if nightly else [])


def combinations(specs: Sequence[str], modes: Sequence[str]) -> list[Combination]:
    """Every (spec, mode); a spec is a version (``versions.parse``), "installed" or a path to an interpreter."""
    for spec in specs:
        if spec != "installed" and os.sep not in spec:
            versions.parse(spec)  # a bad spec is an error before anything runs
    for mode in modes:
        if mode not in ("0", "1"):
            raise versions.VersionError(f"oneDNN mode {mode!r}: expected 1 (on) or 0 (off)")
    return [Combination(spec, mode) for mode in modes for spec in specs]


def _read_state(directory: Path) -> dict | None:
    try:
        rec = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("schema") == STATE_SCHEMA else None


def _write_state(directory: Path, state: dict) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(directory / STATE_FILE, json.dumps(state, indent=1) + "\n")
    return state


def run_one(
    combo: Combination,
    root: Path,
    out: Path,
    registry: str,
    workers: str,
    rerun: bool,
    log: TextIO,
    backends: Sequence[str] = (),
) -> dict:
    """Run one combination (or reuse its earlier run with the same registry and backends); its state record.
    ``backends``: also check these backends (``--backend``), e.g. tensorflow-function and tensorflow-xla, whose
    known divergences are TensorFlow's own in graph mode."""
    directory = out / "runs" / combo.key
    old = _read_state(directory)
    if (
        old
        and not rerun
        and old.get("registry") == registry
        and old.get("state") == "ran"
        and old.get("backends", []) == list(backends)
        and (directory / results.RESULTS_JSON).exists()
    ):
        if "outcomes" not in old:  # recorded before outcomes were
            old = _write_state(directory, {**old, "outcomes": atlas.outcome_counts(results.load(directory))})
        return {**old, "resumed": True}
    base = {
        "schema": STATE_SCHEMA,
        "key": combo.key,
        "spec": combo.spec,
        "onednn": combo.onednn,
        "registry": registry,
        "backends": list(backends),
        "started": results.now(),
        "tensorflow": None,
        "error": None,
    }
    start = time.monotonic()
    try:
        python = versions.ensure(combo.spec, log=log)
    except versions.VersionError as exc:
        return _write_state(
            directory,
            {**base, "state": "install failed", "error": str(exc), "seconds": round(time.monotonic() - start, 1)},
        )
    installed_s = round(time.monotonic() - start, 1)
    env = {**os.environ, versions.PYTHON_ENV: python, "TF_ENABLE_ONEDNN_OPTS": combo.onednn}
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "cases",
        "-q",
        "-p",
        "no:cacheprovider",
        "--any-tensorflow-version",
        "--reports",
        str(directory),
        f"--junitxml={directory / 'junit.xml'}",
    ]
    if workers != "0":
        argv += ["-n", workers]
    for backend in backends:
        argv += ["--backend", backend]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / results.RESULTS_JSON).unlink(missing_ok=True)
    with open(directory / "pytest.log", "w", encoding="utf-8") as pytest_log:
        code = subprocess.run(
            argv, cwd=root, env=env, stdout=pytest_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        ).returncode
    seconds = round(time.monotonic() - start, 1)
    try:
        run = results.load(directory / results.RESULTS_JSON)
    except results.ResultsError as exc:
        return _write_state(
            directory,
            {
                **base,
                "state": "run failed",
                "exitstatus": code,
                "seconds": seconds,
                "error": f"pytest exited with {code} and wrote no results ({exc}); see {directory / 'pytest.log'}",
            },
        )
    probe = run.environment.get("probe") or {}
    state = "ran"
    error = None
    if run.run.get("registry") != registry:  # cases/ was edited mid-run: its items mix two registries
        state, error = (
            "registry changed",
            (
                f"cases/ changed while this combination ran (registry {registry} at "
                f"the start, {run.run.get('registry')} in its results); it runs again "
                f"next time"
            ),
        )
    elif not probe.get("paths"):
        state, error = "start failed", f"TensorFlow could not be probed: {probe.get('error') or 'no probe'}"
    if not combo.numbered:  # the atlas orders versions: an interpreter's column is the version that answered
        base["spec"] = run.environment.get("tensorflow") or combo.spec
    return _write_state(
        directory,
        {
            **base,
            "state": state,
            "error": error,
            "exitstatus": code,
            "seconds": seconds,
            "install_seconds": installed_s,
            "tensorflow": run.environment.get("tensorflow"),
            "onednn_version": probe.get("onednn_version"),
            "python": python,
            "counts": run.counts(),
            "outcomes": atlas.outcome_counts(run),
        },
    )


def progress_line(i: int, total: int, key: str, state: dict) -> str:
    """The line ``run`` prints when combination ``i`` of ``total`` is done: its state, TensorFlow version, items by
    outcome (``atlas.outcome``: the cases of entries that do not hold there are not failures) and time."""
    outcomes = state.get("outcomes") or {}
    names = {"not holding": "not holding (an entry applied, TensorFlow agreed)"}
    figures = ", ".join(f"{n} {names.get(o, o)}" for o, n in outcomes.items() if n)
    how = "already run for this registry" if state.get("resumed") else f"{state.get('seconds', 0):.0f} s"
    return (
        f"[{i}/{total}] {key}: {state['state']}"
        + (f", TensorFlow {state['tensorflow']}" if state.get("tensorflow") else "")
        + (f": {figures}" if figures else "")
        + (f"; {state['error']}" if state.get("error") else "")
        + f" ({how})"
    )


def run(
    specs: Sequence[str],
    modes: Sequence[str],
    root: Path,
    out: Path,
    workers: str = "auto",
    rerun: bool = False,
    log: TextIO = sys.stdout,
    backends: Sequence[str] = (),
) -> dict:
    """Run the matrix and write the atlas; the atlas."""
    combos = combinations(specs, modes)
    registry = fingerprint(root)
    total_start = time.monotonic()
    print(
        f"matrix: {len(combos)} combinations ({', '.join(specs)} × oneDNN "
        f"{', '.join(atlas.mode_name(m) for m in modes)}), registry {registry}, into {out}",
        file=log,
        flush=True,
    )
    for i, combo in enumerate(combos, 1):
        print(f"[{i}/{len(combos)}] {combo.key} ...", file=log, flush=True)
        state = run_one(combo, root, out, registry, workers, rerun, log, backends)
        print(progress_line(i, len(combos), combo.key, state), file=log, flush=True)
    built = write_atlas(root, out, [c.key for c in combos])
    print(
        f"matrix: {len(combos)} combinations in {time.monotonic() - total_start:.0f} s; atlas: {out / 'atlas.html'}",
        file=log,
        flush=True,
    )
    return built


def _columns(out: Path, keys: Sequence[str] | None, registry: str) -> list[dict]:
    found = []
    for directory in sorted((out / "runs").iterdir()) if (out / "runs").is_dir() else []:
        state = _read_state(directory)
        if state is None or (keys is not None and state["key"] not in keys) or state.get("registry") != registry:
            continue
        found.append(state)
    return found


def write_atlas(root: Path, out: Path, keys: Sequence[str] | None = None) -> dict:
    """Build ``atlas.json`` and ``atlas.html`` from the runs under ``out`` for this registry (``keys``: only those
    combinations), and the new disagreements' repro scripts."""
    registry = fingerprint(root)
    columns = _columns(out, keys, registry)
    runs = {c["key"]: results.load(out / "runs" / c["key"]) for c in columns if c["state"] == "ran"}
    # The entries the runs applied (the shipped registry's and the user's, as the pytest configuration said); with
    # none to read, those of <root>/cases/known_divergences.yaml
    rows = next((run.divergences for run in runs.values() if run.divergences), None)
    if rows is None:
        path = root / location.FOLDER / DIVERGENCES_FILE
        rows = results.divergence_rows(divergences.load(path, root, scope=None)[0] if path.is_file() else [])
    changes = []
    for mode in ("1", "0"):
        chain = sorted(
            (c for c in columns if c["onednn"] == mode and c["key"] in runs), key=lambda c: atlas.version_key(c["spec"])
        )
        for a, b in zip(chain, chain[1:]):
            diff = compare.compare_runs(runs[a["key"]], runs[b["key"]])
            changes.append(
                {
                    "from": a["spec"],
                    "to": b["spec"],
                    "onednn": atlas.mode_name(mode),
                    **{
                        key: [row[0] for row in diff[name]]
                        for key, name in (
                            ("new_failures", "new_failures"),
                            ("fixes", "fixed"),
                            ("changed", "changed"),
                            ("error_growth", "error_growth"),
                        )
                    },
                }
            )
    host = next(iter(runs.values())).environment if runs else _this_machine()
    built = atlas.build(columns, runs, rows, changes, generated=results.now(), machine=host, registry=registry)
    _write_repros(root, out, built, runs)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(out / "atlas.json", atlas.dumps(built))
    atomic.write_atomic(out / "atlas.html", atlas.render(built))
    return built


def _this_machine() -> dict:
    """This machine as an environment record has it (``atlas.machine_of`` reads it), for an atlas none of whose
    runs completed; {} when its CPU cannot be read."""
    try:
        cpu = machine.read_cpu()
    except machine.MachineError:
        return {}
    return {
        "cpu_model": cpu.model,
        "cpu_vendor": cpu.vendor,
        "cpu_isa_level": machine.cpu_isa_level(cpu),
        "onednn_isa_cap": machine.isa_cap(),
        "machine": platform.machine(),
        "platform": platform.platform(),
    }


def _find(root: Path, item_id: str) -> tuple[Case, str] | None:
    file, name, dtype = split_case_id(item_case_id(item_id))
    if file is None or dtype is None:  # the runs' records hold pytest item ids: FILE::CASE[DTYPE...]
        raise ValueError(f"not the id of a case's pytest item (FILE::CASE[DTYPE]): {item_id!r}")
    for entry in load_file(root / file, root):
        if isinstance(entry, Case) and entry.name == name:
            return entry, dtype
    return None


def _write_repros(root: Path, out: Path, built: dict, runs: dict) -> None:
    """A repro script for the smallest case of each new-disagreement group, per run it failed in."""
    for n, group in enumerate(built["new"], 1):
        for key, rep in group["repro"].items():
            found = _find(root, rep["id"])
            if found is None:
                continue
            case, dtype = found
            env = environment.Environment.from_record(runs[key].environment)
            stem = re.sub(r"[^\w.=-]+", "_", case.name)[:60]  # a variant's "/" is not a directory
            path = out / "repros" / key / f"{n:03d}_{stem}_{dtype}.py"
            try:
                text = repro.script(
                    case,
                    dtype,
                    env,
                    finding=f"new disagreement ({group['key']}) with TensorFlow "
                    f"{env.tensorflow_version}: {group['detail']}",
                )
            except ValueError as exc:
                rep["script"] = None
                rep["script_error"] = str(exc)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_atomic(path, text)
            rep["script"] = str(path.relative_to(out))


def read_atlas(path: Path) -> dict:
    """The atlas in ``path`` (a matrix's output directory, or its atlas.json); ``atlas.AtlasError`` naming the path
    when there is none or it is not an atlas."""
    file = path if path.is_file() else path / "atlas.json"
    try:
        built = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise atlas.AtlasError(f"{file}: cannot read the atlas ({exc}); run `harness matrix` first") from None
    return atlas.upgrade(built, str(file))


def suggest(out: Path) -> list[str]:
    """The ``--suggest`` lines, from ``<out>/atlas.json``."""
    return atlas.suggestions(read_atlas(out))


def atlas_of_run(directory: Path) -> dict:
    """The one-column atlas of a run that ``harness matrix`` did not make (a CI job's ``harness verify``, or its
    shards merged by ``harness report --merge``): the column is the TensorFlow version and oneDNN mode it ran."""
    run = results.load(directory)
    env = run.environment
    spec, onednn = str(env.get("tensorflow") or "unknown"), str(env.get("onednn") or "1")
    key = atlas.column_key(spec, onednn)
    column: dict[str, Any] = {
        "schema": STATE_SCHEMA,
        "key": key,
        "spec": spec,
        "onednn": onednn,
        "registry": run.run.get("registry"),
        "backends": [],
        "state": "ran",
        "error": None,
        "exitstatus": run.run.get("exitstatus"),
        "seconds": run.run.get("seconds"),
        "tensorflow": env.get("tensorflow"),
        "onednn_version": (env.get("probe") or {}).get("onednn_version"),
        "counts": run.counts(),
        "outcomes": atlas.outcome_counts(run),
    }
    return atlas.build(
        [column],
        {key: run},
        run.divergences,
        [],
        generated=results.now(),
        machine=env,
        registry=run.run.get("registry"),
    )


def _read_any(path: Path) -> dict:
    """An atlas (a matrix output directory or atlas.json), or a run directory's one-column atlas."""
    path = Path(path)
    if path.is_dir() and not (path / "atlas.json").is_file() and (path / results.RESULTS_JSON).is_file():
        return atlas_of_run(path)
    return read_atlas(path)


def merge(sources: Sequence[Path], out: Path, allow_different_registries: bool = False) -> dict:
    """Merge the atlases in ``sources`` (matrix output directories, atlas.json files, or run directories:
    ``atlas_of_run``; oldest first) into ``<out>/atlas.json`` and ``atlas.html`` (``out`` may be one of them: all
    are read first); the merged atlas."""
    read = [(str(path), _read_any(path)) for path in sources]
    built = atlas.merge(read, allow_different_registries, generated=results.now())
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(out / "atlas.json", atlas.dumps(built))
    atomic.write_atomic(out / "atlas.html", atlas.render(built))
    return built
