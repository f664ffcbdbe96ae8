"""What a verdict depends on besides the case: TensorFlow's version and oneDNN mode, the CPU, oneDNN's ISA cap, and
which kernels TensorFlow was measured to run here.

TensorFlow picks a convolution's kernel by dtype, padding and CPU (``harness.kernel_probe`` explains how), and what it
accepts and computes follows the kernel. So the harness never assumes a kernel: ``Environment.current()`` reads the
CPU (``harness.tf.machine``) and asks TensorFlow, in a server process of its own, which kernel each of
``kernel_probe.KERNELS`` runs for each dtype and padding kind, and which ISA oneDNN uses. The answer is kept in
``<cache>/probes/<key>.json`` (``machine.cache_dir()``), keyed by everything it depends on (TensorFlow's build, the
interpreter, the CPU, the oneDNN mode and cap, the probe's own code), so a run pays for it once (about 5 s).

A probe that fails (TensorFlow missing, the probe process dying) leaves the facts it could not measure
``unknown``, says why in ``Probe.error``, and the run goes on: no known divergence that needs an unknown fact
applies, so the cases it would excuse fail, and the pytest plugin fails the run. It is never quietly green.

``Environment.record()`` is the ``environment`` record of ``results.json``; ``Environment.from_record`` reads one
back, which is how ``tests/machines/*.json`` replay the divergence model on machines the tests do not run on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from harness.atomic import write_atomic
from harness.conv.dtypes import DTYPES
from harness.tf import flush_probe, isolation, kernel_probe, machine, rounding_probe, versions, wrappers
from harness.tf.machine import Cpu, MemoryBudget

PROBE_SCHEMA = 5
MAX_PROBE_DEATHS = 8  # probe calls that may kill their process before the rest are given up as unknown
# Variables that change what TensorFlow or oneDNN run (besides the mode and the cap, which are keyed on their own).
_KEYED_ENV_PREFIXES = ("ONEDNN_", "DNNL_", "TF_ONEDNN_", "TF_ENABLE_ONEDNN")
_UNKEYED_ENV = ("ONEDNN_VERBOSE", "DNNL_VERBOSE")


@dataclass(frozen=True)
class Probe:
    """What TensorFlow was measured to run on this machine (``harness.kernel_probe``).

    ``paths``: "Kernel/dtype/padding" (padding "named" or "explicit") -> "onednn", "eigen", "none" (no kernel for
    the dtype) or "unknown". ``runs``: "Kernel/dtype" -> "ok", "no kernel", "<ErrorClass>: message" or "aborts
    (...)" for valid operands; ``implementations``: "Kernel/dtype" -> the oneDNN implementation that ran.
    """

    paths: Mapping[str, str] = field(default_factory=dict)
    runs: Mapping[str, str] = field(default_factory=dict)
    implementations: Mapping[str, str] = field(default_factory=dict)
    onednn_version: str | None = None
    onednn_isa_text: str | None = None
    tensorflow: str | None = None  # the version that answered
    error: str | None = None  # why some facts are unknown (None: every fact was measured)
    seconds: float = 0.0  # what measuring took
    source: str = "measured"
    numpy: str | None = (
        None  # the NumPy of the TensorFlow server's interpreter  # "measured", "cache" (``machine.cache_dir()``), or where a recorded probe came from
    )
    # "Kernel/dtype/padding" -> {"inputs": ..., "results": ...}: whether the kernel flushes subnormal inputs (DAZ) /
    # results (FTZ) to zero, True / False or what was seen instead (``harness.tf.flush_probe``); absent: unknown
    # (a probe recorded before it was measured).
    flushes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # "Kernel/dtype/padding" -> True when the kernel returns the exact sum rounded once where its partial sums are
    # exact in float32, else what came out (``harness.tf.rounding_probe``); absent: unknown.
    rounding: Mapping[str, Any] = field(default_factory=dict)

    def path(self, kernel: str, dtype: str, padding: str) -> str:
        return self.paths.get(f"{kernel}/{dtype}/{padding}", "unknown")

    @property
    def onednn_isa(self) -> str | None:
        """The ISA oneDNN uses here (``machine.ISA_LEVELS``), from its own log; None when unknown."""
        return machine.normalize_isa(self.onednn_isa_text)

    def record(self) -> dict:
        return {
            "schema": PROBE_SCHEMA,
            "tensorflow": self.tensorflow,
            "onednn_version": self.onednn_version,
            "onednn_isa_text": self.onednn_isa_text,
            "onednn_isa": self.onednn_isa,
            "paths": dict(self.paths),
            "runs": dict(self.runs),
            "implementations": dict(self.implementations),
            "error": self.error,
            "seconds": self.seconds,
            "source": self.source,
            "numpy": self.numpy,
            "flushes": {k: dict(v) for k, v in self.flushes.items()},
            "rounding": dict(self.rounding),
        }

    @classmethod
    def from_record(cls, rec: Mapping, source: str | None = None) -> Probe:
        return cls(
            dict(rec.get("paths") or {}),
            dict(rec.get("runs") or {}),
            dict(rec.get("implementations") or {}),
            rec.get("onednn_version"),
            rec.get("onednn_isa_text"),
            rec.get("tensorflow"),
            rec.get("error"),
            float(rec.get("seconds") or 0.0),
            source or rec.get("source") or "recorded",
            rec.get("numpy"),
            {k: dict(v) for k, v in (rec.get("flushes") or {}).items()},
            dict(rec.get("rounding") or {}),
        )


@dataclass(frozen=True)
class Environment:
    """What the divergence conditions depend on besides the case.

    ``cpu`` and ``probe`` are None when not read (a hand-made environment in a test): every fact that needs them is
    then unknown (None), and no condition on it holds. ``memory``: the memory budget of a case in this run
    (``machine.memory_budget``; None: the process's default, derived when a case first needs it).
    """

    tensorflow_version: str
    onednn: bool
    cpu: Cpu | None = None
    isa_cap: str | None = None
    probe: Probe | None = None
    memory: MemoryBudget | None = None
    intra_op_threads: int | None = None  # TensorFlow's intra-op thread pool in this run (None: not known)

    @classmethod
    def current(cls, refresh: bool = False) -> Environment:
        """This process's environment, measured (once per environment: see the module docstring; ``refresh``
        measures again).

        Raises ``machine.MachineError`` for an unreadable CPU or a bad ISA cap, before anything runs."""
        settings = wrappers.settings()
        cpu, cap = machine.read_cpu(), machine.isa_cap()
        onednn = settings["onednn"] not in ("0", "false", "False")
        key = (settings["tensorflow"], onednn, cpu, cap, _keyed_environ())
        if refresh:
            _current.cache_clear()
            _cache_path(*key).unlink(missing_ok=True)
        threads = _threads(settings["intra_op_threads"])
        return dataclasses.replace(_current(*key), memory=machine.memory_budget(), intra_op_threads=threads)

    # --- facts -----------------------------------------------------------------------------

    @property
    def onednn_isa(self) -> str | None:
        return self.probe.onednn_isa if self.probe and self.onednn else None

    def kernel_path(self, kernel: str, dtype: str, padding: str) -> str:
        """ "onednn", "eigen", "none" or "unknown" for one TensorFlow kernel (``kernel_probe.KERNELS``)."""
        return self.probe.path(kernel, dtype, padding) if self.probe else "unknown"

    def eigen(self, kernels, dtype: str, padding: str) -> bool | None:
        """Whether TensorFlow runs an Eigen kernel among ``kernels`` for this dtype and padding kind: True if any is
        Eigen, False if all are oneDNN, None when that is not known (or a kernel does not exist for the dtype)."""
        paths = [self.kernel_path(k, dtype, padding) for k in kernels]
        if "eigen" in paths:
            return True
        return False if paths and all(p == "onednn" for p in paths) else None

    def has_kernels(self, kernels, dtype: str) -> bool | None:
        """Whether TensorFlow has every one of ``kernels`` for this dtype here: False if one has none, None when
        that is not known."""
        paths = [self.kernel_path(k, dtype, "named") for k in kernels]
        if "none" in paths:
            return False
        return True if paths and all(p in ("onednn", "eigen") for p in paths) else None

    def refuses(self, kernels, dtype: str) -> bool | None:
        """Whether one of ``kernels`` failed on the probe's valid operands at this dtype (e.g. oneDNN has no
        implementation for it under an ISA cap): True, False when all ran, None when not measured."""
        runs = [self.probe.runs.get(f"{k}/{dtype}") if self.probe else None for k in kernels]
        if any(r not in (None, "ok", "no kernel") for r in runs):
            return True
        return False if runs and all(r == "ok" for r in runs) else None

    def flushes_subnormals(self, kernels, dtype: str, padding: str) -> bool | None:
        """Whether one of ``kernels`` was measured to flush subnormal inputs or results to zero at this dtype and
        padding kind: True if one does, False if none does, None when that is not known (not measured, or neither
        answer). ``harness.tf.flush_probe`` measures it."""
        if self.probe is None:
            return None
        found = [self.probe.flushes.get(f"{k}/{dtype}/{padding}") for k in kernels]
        measured = [f for f in found if f is not None]
        if not found or len(measured) < len(found):
            return None
        answers = [f.get(test) for f in measured for test in ("inputs", "results")]
        if any(a is True for a in answers):
            return True
        return False if all(a is False for a in answers) else None

    def rounds_once(self, kernels, dtype: str, padding: str) -> bool:
        """Whether every one of ``kernels`` was measured to return the exact sum rounded once to ``dtype`` where its
        partial sums are exact in float32 (``harness.tf.rounding_probe``), at this padding kind. False when one was
        not, or when that is not known: the usual bound then applies."""
        if self.probe is None or not kernels:
            return False
        return all(self.probe.rounding.get(f"{k}/{dtype}/{padding}") is True for k in kernels)

    def facts(self) -> dict:
        """The environment-level features a known divergence's ``when`` can name (``divergences.ENV_FEATURES``):
        ``onednn_isa``, ``tf_intra_op_threads`` and ``cpu.<flag>`` for every flag of ``machine.DECIDING_FLAGS``."""
        return {
            "onednn_isa": self.onednn_isa,
            "tf_intra_op_threads": self.intra_op_threads,
            **{f"cpu.{f}": (self.cpu.has(f) if self.cpu else None) for f in machine.DECIDING_FLAGS},
        }

    # --- the record ------------------------------------------------------------------------

    def record(self) -> dict:
        """The environment as a JSON-ready dict: what ``results.json``, the reports and ``harness compare`` show."""
        cpu = self.cpu
        return {
            **wrappers.settings(),
            "tensorflow": self.tensorflow_version,
            "onednn": "1" if self.onednn else "0",
            "python": platform.python_version(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu.model if cpu else None,
            "cpu_vendor": cpu.vendor if cpu else None,
            "cpu_flags": list(cpu.flags) if cpu else [],
            "cpu_isa_level": machine.cpu_isa_level(cpu) if cpu else None,
            "onednn_isa_cap": self.isa_cap,
            "onednn_isa": self.onednn_isa,
            "kernel_paths": kernel_path_table(self.probe) if self.probe else None,
            "subnormals": flush_lines(self.probe) if self.probe else None,
            "probe": self.probe.record() if self.probe else None,
            "tf_cpp_min_log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL", ""),
            "memory_budget": self.memory.record() if self.memory else None,
        }

    @classmethod
    def from_record(cls, rec: Mapping, source: str | None = None) -> Environment:
        """An environment read back from a ``record()`` (e.g. another machine's ``results.json``)."""
        cpu = Cpu.from_record(
            {
                "arch": rec.get("machine"),
                "vendor": rec.get("cpu_vendor"),
                "model": rec.get("cpu_model"),
                "flags": rec.get("cpu_flags"),
            }
        )
        probe = Probe.from_record(rec["probe"], source) if rec.get("probe") else None
        return cls(
            str(rec.get("tensorflow", "?")),
            str(rec.get("onednn", "1")) not in ("0", "false", "False"),
            cpu,
            rec.get("onednn_isa_cap"),
            probe,
            MemoryBudget.from_record(rec["memory_budget"]) if rec.get("memory_budget") else None,
            _threads(rec.get("intra_op_threads")),
        )


MACHINE_FIELDS = (
    "tensorflow",
    "onednn",
    "machine",
    "cpu_model",
    "cpu_vendor",
    "cpu_flags",
    "cpu_isa_level",
    "onednn_isa_cap",
    "onednn_isa",
    "kernel_paths",
    "probe",
)


def machine_record(record: Mapping) -> dict:
    """The part of an environment record that describes the machine and what TensorFlow runs there: what
    ``harness machine --record`` writes and ``tests/machines/*.json`` keep, for replaying the divergence model."""
    rec: dict[str, Any] = {"recorded": time.strftime("%Y-%m-%d"), **{k: record.get(k) for k in MACHINE_FIELDS}}
    if rec["probe"]:
        rec["probe"] = {**rec["probe"], "source": f"measured; recorded {rec['recorded']}"}
    return rec


def load_recorded(path: Path | str) -> Environment:
    """A recorded machine (``harness machine --record FILE``, ``tests/machines/*.json``) as an Environment."""
    path = Path(path)
    return Environment.from_record(json.loads(path.read_text(encoding="utf-8")), path.stem)


def kernel_path_table(probe: Probe) -> dict[str, dict[str, str]]:
    """{kernel: {dtype: path}}, with "explicit: <path>" where explicit padding takes another path: the short form the
    reports show."""

    table: dict[str, dict[str, str]] = {}
    for kernel in kernel_probe.KERNELS:
        row = {}
        for dtype in DTYPES:
            named = probe.path(kernel, dtype, "named")
            explicit = probe.path(kernel, dtype, "explicit") if "explicit" in kernel_probe.paddings(kernel) else named
            row[dtype] = named if named == explicit else f"{named} (explicit padding: {explicit})"
        table[kernel] = row
    return table


def dtype_paths(probe: Probe, dtype: str) -> str:
    """One dtype's kernel paths in a line: the path most kernels take, then the exceptions, e.g.
    "onednn; eigen for explicit padding: Conv2DBackpropInput, Conv2DBackpropFilter"."""

    groups: dict[str, list[str]] = {}
    for kernel in kernel_probe.KERNELS:
        for padding in kernel_probe.paddings(kernel):
            if f"{kernel}/{dtype}/{padding}" not in probe.paths:  # a probe recorded before this kernel was probed
                continue
            groups.setdefault(probe.path(kernel, dtype, padding), []).append(f"{kernel}/{padding}")
    if not groups:
        return "not measured"
    main = max(groups, key=lambda p: len(groups[p]))
    parts = [main]
    for path, items in groups.items():
        if path == main:
            continue
        explicit = [i.split("/")[0] for i in items if i.endswith("/explicit")]
        named = [i.split("/")[0] for i in items if i.endswith("/named")]
        both = [k for k in named if k in explicit]
        only_explicit = [k for k in explicit if k not in both]
        only_named = [k for k in named if k not in both]
        if both:
            parts.append(f"{path}: {', '.join(both)}")
        if only_explicit:
            parts.append(f"{path} for explicit padding: {', '.join(only_explicit)}")
        if only_named:
            parts.append(f"{path} for SAME/VALID: {', '.join(only_named)}")
    return "; ".join(parts)


def describe(env: Environment) -> list[str]:
    """The environment's deciding facts as a few lines of text (the run summary, ``harness compare``)."""

    cpu = env.cpu
    where = f"{cpu.model} ({cpu.vendor}, {cpu.arch})" if cpu else "an unrecorded CPU"
    level = machine.cpu_isa_level(cpu) if cpu else None
    onednn = (
        f"oneDNN {env.probe.onednn_version or '?'} uses {env.onednn_isa or 'an unknown ISA'}"
        if env.onednn and env.probe
        else "oneDNN off"
    )
    cap = f" (ONEDNN_MAX_CPU_ISA={env.isa_cap})" if env.isa_cap else ""
    lines = [f"machine: {where}, CPU ISA level {level or '?'}; {onednn}{cap}"]
    if env.memory is not None:
        lines.append(f"  memory budget: {env.memory.describe()}")
    if cpu:
        lines.append(f"  CPU features: {' '.join(cpu.flags) or 'none of the deciding ones'}")
    probe = env.probe
    if probe is None or not probe.paths:
        lines.append(f"  kernel paths: not measured ({probe.error if probe else 'no probe'})")
        return lines
    cached = {"measured": "", "cache": "; read from the cache"}.get(probe.source, f"; {probe.source}")
    lines.append(f"  kernel paths (measured in {probe.seconds:.1f} s{cached}):")
    lines += [f"    {dtype:<9} {dtype_paths(probe, dtype)}" for dtype in DTYPES]
    lines.append("  subnormals (measured: inputs read as zero (DAZ) / results flushed to zero (FTZ), by kernel path):")
    lines += [f"    {line}" for line in flush_lines(probe)]
    lines.append("  rounding (measured: the exact sum rounded once where partial sums are exact in float32):")
    lines += [f"    {line}" for line in rounding_lines(probe)]
    return lines


def _measured(probe: Probe, facts: Mapping[str, Any], dtype: str) -> Iterator[tuple[str, str, Any]]:
    """(kernel, kernel path, fact) of every kernel and padding kind measured at ``dtype`` on a path that ran."""
    for kernel in kernel_probe.KERNELS:
        for padding in kernel_probe.paddings(kernel):
            found = facts.get(f"{kernel}/{dtype}/{padding}")
            path = probe.path(kernel, dtype, padding)
            if found is not None and path not in ("none", "unknown"):
                yield kernel, path, found


def rounding_lines(probe: Probe) -> list[str]:
    """One line per dtype of ``rounding_probe.DTYPES``: for each kernel path, the kernels that round once (at both
    padding kinds) and those that do not, e.g. "bfloat16  eigen: once Conv2D; not once DepthwiseConv2dNative, ..."
    (what came out instead is in the probe's record: ``harness machine --json``)."""
    if not probe.rounding:
        return ["not measured (a probe recorded before rounding was measured)"]
    lines = []
    for dtype in rounding_probe.DTYPES:
        by_path: dict[str, dict[str, list[str]]] = {}
        for kernel, path, found in _measured(probe, probe.rounding, dtype):
            names = by_path.setdefault(path, {}).setdefault("once" if found is True else "not once", [])
            if kernel not in names:
                names.append(kernel)
        parts = [
            f"{path}: {next(iter(answers))}"
            if len(answers) == 1
            else f"{path}: " + "; ".join(f"{a} {', '.join(ks)}" for a, ks in sorted(answers.items()))
            for path, answers in sorted(by_path.items())
        ]
        lines.append(f"{dtype:<9} {'; '.join(parts) or 'not measured'}")
    return lines


def flush_lines(probe: Probe) -> list[str]:
    """One line per dtype: for each kernel path, whether its kernels flush subnormal inputs and results, e.g.
    "float32   onednn: inputs flushed, results flushed; eigen: inputs flushed, results flushed"."""
    if not probe.flushes:
        return ["not measured (a probe recorded before subnormal flushing was measured)"]
    lines = []
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        by_path: dict[str, set[str]] = {}
        for _, path, found in _measured(probe, probe.flushes, dtype):
            text = ", ".join(
                f"{test} " + ("flushed" if v is True else "kept" if v is False else f"? ({v})")
                for test, v in found.items()
            )
            by_path.setdefault(path, set()).add(text)
        parts = [f"{path}: {' | '.join(sorted(texts))}" for path, texts in sorted(by_path.items())]
        lines.append(f"{dtype:<9} {'; '.join(parts) or 'not measured'}")
    return lines


# --- measuring --------------------------------------------------------------------------------


def _threads(value: object) -> int | None:
    """An intra-op thread count as recorded (a string from the environment variable): None when not a number."""
    try:
        return int(str(value))
    except ValueError:
        return None


def _keyed_environ() -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith(_KEYED_ENV_PREFIXES) and k not in _UNKEYED_ENV)
    )


def probe_key(tensorflow: str, onednn: bool, cpu: Cpu, cap: str | None, environ) -> str:
    """The cache key of a probe: everything its answer depends on."""

    source = b"".join(Path(str(m.__file__)).read_bytes() for m in (kernel_probe, flush_probe, rounding_probe))
    server = versions.installed()  # where TensorFlow is installed and when: a reinstall in place changes the key
    material = json.dumps(
        {
            "schema": PROBE_SCHEMA,
            "tensorflow": tensorflow,
            "identity": server["origin"],
            "python": versions.server_python(),
            "numpy": server["numpy"],
            "onednn": onednn,
            "cap": cap,
            "cpu": cpu.record(),
            "environ": list(environ),
            "probe": hashlib.sha256(source).hexdigest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def _cache_path(tensorflow: str, onednn: bool, cpu: Cpu, cap: str | None, environ: tuple) -> Path:
    return machine.cache_dir() / "probes" / f"{probe_key(tensorflow, onednn, cpu, cap, environ)}.json"


@cache
def _current(tensorflow: str, onednn: bool, cpu: Cpu, cap: str | None, environ: tuple) -> Environment:
    if tensorflow == "not installed":
        return Environment(
            tensorflow, onednn, cpu, cap, Probe(error="TensorFlow is not installed", source="not measured")
        )
    path = _cache_path(tensorflow, onednn, cpu, cap, environ)
    probe = _load(path)
    if probe is None:
        probe = measure()
        if probe.error is None:  # a failed probe is measured again next time
            try:
                write_atomic(path, json.dumps(probe.record(), indent=1) + "\n")
            except OSError:  # an unwritable cache costs a probe per process, nothing else
                pass
    return Environment(probe.tensorflow or tensorflow, onednn, cpu, cap, probe)


def _load(path: Path) -> Probe | None:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("schema") != PROBE_SCHEMA or rec.get("error"):
        return None
    return Probe.from_record(rec, "cache")


def measure(call: Callable[[str, tuple, dict], object] | None = None) -> Probe:
    """Run ``kernel_probe`` in TensorFlow servers of its own until every item has an answer; an item whose call kills
    the server is recorded as such ("aborts"), and the probe goes on after it in a fresh server.

    ``call``: how to call TensorFlow (default: a ``TFProcess`` of the probe's own, closed afterwards, so that no
    server with oneDNN's verbose log on outlives the probe and a pytest controller keeps no TensorFlow)."""

    if call is not None:
        return _measure(call)
    process = isolation.TFProcess()
    try:
        return _measure(process.call)
    finally:
        process.close()


def _measure(call) -> Probe:

    start = time.monotonic()
    fd, out = tempfile.mkstemp(prefix="harness-probe-", suffix=".jsonl")
    os.close(fd)
    done: dict[str, dict] = {}
    error, deaths = None, 0
    try:
        while True:
            try:
                result = call("probe", (out, sorted(done)), {})
            except (OSError, RuntimeError) as exc:  # TensorFlow's process could not even start
                error = f"TensorFlow could not be started: {_line(str(exc), last=True)}"
                break
            started = None  # the item a dead process was in
            for line in Path(out).read_text(encoding="utf-8").splitlines():
                obj = json.loads(line)
                if "start" in obj:
                    started = obj["start"]
                else:
                    done[obj["item"]] = obj
                    started = None
            if isinstance(result, isolation.Returned):
                break
            if isinstance(result, isolation.Raised):
                error = f"the probe raised {result.error_class}: {_line(result.message)}"
                break
            how = f"{result.how}: {_line(result.stderr_tail, last=True)}".rstrip(": ")
            if started is None:  # died outside any item: trying again would do the same
                error = f"the probe's TensorFlow process died ({how})"
                break
            # A valid call that kills TensorFlow is a fact about TensorFlow here; a kernel path it hides is unknown.
            done[started] = (
                {"item": started, "path": "unknown", "detail": f"aborts ({how})"}
                if started.startswith("path/")
                else {"item": started, "runs": f"aborts ({how})"}
            )
            deaths += 1
            if deaths > MAX_PROBE_DEATHS:
                error = f"the probe's TensorFlow process died {deaths} times; the rest was not measured"
                break
    finally:
        Path(out).unlink(missing_ok=True)
    paths = {i.split("/", 1)[1]: d.get("path", "unknown") for i, d in done.items() if i.startswith("path/")}
    runs = {i.split("/", 1)[1]: d.get("runs", "unknown") for i, d in done.items() if i.startswith("run/")}
    impls = {
        i.split("/", 1)[1]: d["implementation"]
        for i, d in done.items()
        if i.startswith("run/") and d.get("implementation")
    }
    info = done.get("onednn", {})
    missing = [
        i[5:] for i in kernel_probe.items() if i.startswith("path/") and paths.get(i[5:], "unknown") == "unknown"
    ]
    if missing and error is None:
        error = f"{len(missing)} kernel path(s) could not be measured, e.g. {missing[0]}"
    flushes = {
        i.split("/", 1)[1]: {k: v for k, v in d.items() if k in ("inputs", "results")}
        for i, d in done.items()
        if i.startswith("flush/")
    }
    rounding = {i.split("/", 1)[1]: d.get("once") for i, d in done.items() if i.startswith("rounding/")}
    answered = done.get("tensorflow", {})
    return Probe(
        paths,
        runs,
        impls,
        info.get("version"),
        info.get("isa_text"),
        answered.get("version"),
        error,
        round(time.monotonic() - start, 3),
        numpy=answered.get("numpy"),
        flushes=flushes,
        rounding=rounding,
    )


def _line(text: str, last: bool = False) -> str:
    """The first (or last) line of a message, cut to 200 characters."""
    lines = (text or "").strip().splitlines()
    return lines[-1 if last else 0][:200] if lines else ""
