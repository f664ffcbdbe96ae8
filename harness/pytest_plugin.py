"""pytest plugin: every ``cases/**/*.yaml`` file becomes test items, one per case and dtype.

Item ids read ``cases/seeds.yaml::transpose_stride2_same[float32]``, so
``pytest cases/seeds.yaml -k transpose`` works. A malformed case (or a file that
is not valid YAML) becomes one failing item whose message names the file, the
case and the field; the other cases of the file still run.

Registered through the ``pytest11`` entry point (``harness.pytest_plugin``) wherever the harness is installed, and
inert until the configuration names case folders: which folders a run reads is ``harness.registry.location``'s
``Registry``, built from

* ``harness_cases`` (ini, paths relative to the ini file) and ``--cases DIR`` (repeatable): the user's folders;
* ``harness_shipped`` (ini) or ``--shipped``: ``divergences`` (the default: the shipped known divergences apply to
  the user's cases), ``cases`` (the shipped cases are collected too) or ``none``.

A bare ``pytest`` collects every folder of the registry besides its test paths; with file arguments, only those.
At the end of a run it prints a
summary per op and records TensorFlow's settings (version, oneDNN mode, threads)
in the JUnit XML report as testsuite properties.

Options (``pytest --help``, group "harness"):

* ``--reports DIR``: write ``results.json``, ``report.html`` and ``summary.md`` into DIR (``harness.reports.results``,
  ``harness.reports.report``). Each item's record is made on the worker that ran it and streamed by the controller to
  ``DIR/results.jsonl`` as it arrives, so an interrupted run (Ctrl-C, SIGTERM) still writes every file for what
  ran, and a killed one leaves the stream for ``harness report DIR``.
* ``--op``, ``--dtype``, ``--tag``: run only the matching cases (repeatable; exact names, unlike ``-k``).
* ``--progress``: a progress bar instead of pytest's dots (``harness verify`` turns it on).
* ``--memory-budget SIZE`` (else ``$HARNESS_MEMORY_BUDGET``, else the ini option ``harness_memory_budget``, else
  derived from the machine and shared by the xdist workers: ``harness.tf.machine.memory_budget``): a case whose
  estimated peak memory is over it fails with a one-line error, before anything is allocated
  (``harness.check.budget``); the budget is recorded in the run's environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from harness import atomic, backends
from harness.check import self_checks
from harness.check.runner import Outcome, run_backend, run_case, run_gradients
from harness.check.self_checks import run_self_checks
from harness.registry import divergences, location
from harness.registry.cases import DIVERGENCES_FILE, Case, CaseError
from harness.registry.loader import load_file
from harness.registry.sweeps import SWEEP_ENV
from harness.reports import report, results
from harness.tf import environment, machine, wrappers
from harness.tf.environment import Environment

CASES_DIR = location.FOLDER
SHARD_ENV = "HARNESS_SHARD"  # I/N, as `make verify SHARD=I/N` passes it
BACKENDS_ENV = "HARNESS_BACKENDS"  # space-separated backend specs, as `make verify BACKENDS="..."` passes them


DIVERGENCES_KEY = pytest.StashKey[tuple]()  # (known divergences, their load errors, Environment)
REGISTRY_KEY = pytest.StashKey[location.Registry]()  # the run's case folders; absent: the plugin is inert
ENVIRONMENT_INPUT = "harness_environment"  # the controller's Environment.record(), passed to each xdist worker
BACKENDS_KEY = pytest.StashKey[tuple]()  # the harness.backends.Backend objects to check, besides the default item
STALE_KEY = pytest.StashKey[list]()  # per_entry divergences that no case showed any more
RECORDER_KEY = pytest.StashKey["Recorder"]()
STARTED_KEY = pytest.StashKey[float]()  # time.monotonic() at configure, for the wall time the summary prints
RSS_KEY = pytest.StashKey[dict]()  # worker id -> its peak resident set, bytes (the controller's view)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "convolution cross-validation harness")
    group.addoption(
        "--reports",
        metavar="DIR",
        default=None,
        help="write results.json, report.html and summary.md (and stream results.jsonl) into DIR",
    )
    group.addoption("--op", action="append", default=[], metavar="OP", help="run only cases of this op (repeatable)")
    group.addoption("--dtype", action="append", default=[], metavar="DTYPE", help="run only this dtype (repeatable)")
    group.addoption(
        "--tag", action="append", default=[], metavar="TAG", help="run only cases with this tag (repeatable)"
    )
    group.addoption(
        "--progress", action="store_true", default=False, help="show a progress bar instead of a character per case"
    )
    group.addoption(
        "--shard",
        default=os.environ.get(SHARD_ENV) or None,
        metavar="I/N",
        help=f"run only the I-th of N deterministic, balanced shares of the items (1 <= I <= N), so N "
        f"CI jobs cover the run once; default from ${SHARD_ENV}",
    )
    group.addoption(
        "--backend",
        action="append",
        default=[],
        metavar="SPEC",
        help="also check this backend against TensorFlow on every case it covers (repeatable): a name "
        "(reference, textbook, tensorflow-function, tensorflow-xla, torch, jax, onnxruntime), "
        f"module:function or a declaration file; default from ${BACKENDS_ENV}",
    )
    group.addoption(
        "--cases",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of your own YAML cases, read besides the registry (repeatable; adds to the harness_cases ini "
        "option); a known_divergences.yaml at its top extends the shipped known divergences",
    )
    group.addoption(
        "--shipped",
        choices=location.SHIPPED_MODES,
        default=None,
        help="how the registry that ships with the harness takes part: cases (its cases are collected too), "
        "divergences (only its known divergences apply) or none; default from the harness_shipped ini option",
    )
    group.addoption(
        "--memory-budget",
        default=None,
        metavar="SIZE",
        help=f"the memory one case may take at its peak, e.g. 2GiB or 500MB (a case over it fails, unallocated); "
        f"default from ${machine.MEMORY_ENV}, the harness_memory_budget ini option, else "
        f"{machine.MEMORY_SHARE:.0%}% of the memory available, shared by the xdist workers",
    )
    parser.addini("harness_cases", type="paths", default=[], help="folders of YAML cases (relative to this file)")
    parser.addini(
        "harness_memory_budget",
        default="",
        help="the memory one case may take at its peak, e.g. 2GiB (see --memory-budget)",
    )
    parser.addini(
        "harness_backends",
        type="linelist",
        default=[],
        help="backends to check against TensorFlow besides the default item, as --backend takes them (a name or a "
        "declaration file relative to the rootdir)",
    )
    parser.addini(
        "harness_shipped",
        default="divergences",
        help="cases, divergences or none: how the harness's shipped registry takes part (see --shipped)",
    )
    group.addoption(
        "--any-tensorflow-version",
        action="store_true",
        default=False,
        help="apply every known divergence whatever its tensorflow_versions (what `harness matrix` runs: "
        "it measures where each entry holds)",
    )


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _environment(config: pytest.Config) -> Environment:
    """The run's environment: measured once by the controller (``Environment.current``), handed to the workers."""
    given = getattr(config, "workerinput", {}).get(ENVIRONMENT_INPUT)
    if given is not None:
        return Environment.from_record(given)
    try:
        memory = memory_budget(config)  # a bad value stops the run before TensorFlow's probe
        return dataclasses.replace(Environment.current(), memory=memory)
    except machine.MachineError as exc:  # an unreadable CPU, a bad ISA cap or memory budget: nothing starts
        raise pytest.UsageError(str(exc)) from None


def memory_budget(config: pytest.Config) -> machine.MemoryBudget:
    """The run's memory budget of a case: --memory-budget, $HARNESS_MEMORY_BUDGET, the ini option, else derived
    from the machine's available memory shared by the xdist workers (each with its TensorFlow server)."""
    workers = getattr(config.option, "numprocesses", None)  # xdist resolved "auto" to a number before configure
    lanes = workers if isinstance(workers, int) and workers > 0 else len(getattr(config.option, "tx", None) or ())
    settings = [
        ("--memory-budget", config.option.memory_budget),
        (machine.MEMORY_ENV, os.environ.get(machine.MEMORY_ENV)),
        ("harness_memory_budget", config.getini("harness_memory_budget")),
    ]
    return machine.memory_budget(settings, lanes=max(1, lanes))


def _registry(config: pytest.Config) -> location.Registry:
    """The run's case folders, from the ini options and the command line (a bad folder is a usage error)."""
    mode = config.option.shipped or config.getini("harness_shipped")
    folders = [*config.getini("harness_cases"), *config.option.cases]
    try:
        return location.registry(config.rootpath, folders, shipped=str(mode).strip())
    except location.RegistryError as exc:
        raise pytest.UsageError(str(exc)) from None


def _add_folders_to_args(config: pytest.Config, reg: location.Registry) -> None:
    """A run without file arguments collects every folder of the registry that its test paths do not cover."""
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return
    given = [Path(str(a).split("::")[0]).resolve() for a in config.args]
    for folder in reg.collected:
        if not any(folder.path.is_relative_to(g) for g in given):
            config.args.append(str(folder.path))


def _active(config: pytest.Config) -> bool:
    return REGISTRY_KEY in config.stash


def _collected(config: pytest.Config) -> tuple[location.CaseFolder, ...]:
    return config.stash[REGISTRY_KEY].collected


@pytest.hookimpl(trylast=True)  # after junitxml has created its report object
def pytest_configure(config: pytest.Config) -> None:
    reg = _registry(config)
    if not reg.collected:
        return  # no case folder: pytest runs as if the plugin were not installed
    config.stash[REGISTRY_KEY] = reg
    _add_folders_to_args(config, reg)
    wrappers.pin_environment()  # before any xdist worker or TensorFlow child starts
    config.stash[STARTED_KEY] = time.monotonic()
    config.stash[RSS_KEY] = {}
    loaded = divergences.load_registry(reg, scope=None)
    if config.option.any_tensorflow_version:
        loaded = ([dataclasses.replace(d, tensorflow_versions=SpecifierSet()) for d in loaded[0]], loaded[1])
    env = _environment(config)
    config.stash[DIVERGENCES_KEY] = (tuple(loaded[0]), tuple(loaded[1]), env)
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        record = env.record()
        for key, value in wrappers.settings().items():
            xml.add_global_property(key, value)
        for key in ("cpu_model", "cpu_isa_level", "onednn_isa", "onednn_isa_cap"):
            xml.add_global_property(key, record[key] if record[key] is not None else "")
    config.stash[BACKENDS_KEY] = _backends(config)
    if _is_controller(config) and (config.option.reports or config.option.progress):
        config.stash[RECORDER_KEY] = recorder = Recorder(config)
        config.pluginmanager.register(recorder, "harness-recorder")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: every worker gets the controller's measured environment (no worker measures it again)."""
    if not _active(node.config):
        return
    node.workerinput[ENVIRONMENT_INPUT] = node.config.stash[DIVERGENCES_KEY][2].record()


def _backends(config: pytest.Config) -> tuple:
    """The backends named by --backend or $HARNESS_BACKENDS, resolved (a bad spec is a usage error)."""

    specs = list(config.option.backend) or os.environ.get(BACKENDS_ENV, "").split() or config.getini("harness_backends")
    resolved = []
    for spec in dict.fromkeys(specs):
        try:
            resolved.append(backends.resolve(spec, config.rootpath))
        except backends.BackendError as exc:
            raise pytest.UsageError(str(exc)) from None
    return tuple(resolved)


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix not in location.CASE_SUFFIXES or not _active(parent.config):
        return None
    folder = parent.config.stash[REGISTRY_KEY].folder_of(file_path)
    if folder is None:
        return None
    # Named as case ids name it (cases/seeds.yaml), also when the folder is outside the rootdir (an installed copy)
    return CaseFile.from_parent(parent, path=file_path, nodeid=folder.name_of(file_path), folder=folder)


class CaseFile(pytest.File):
    def __init__(self, *, folder: location.CaseFolder, **kwargs):
        super().__init__(**kwargs)
        self.folder = folder

    def collect(self):
        if self.path.name == DIVERGENCES_FILE:  # entries that could not be read fail as items of this file
            for error in self.config.stash[DIVERGENCES_KEY][1]:
                if error.file == self.folder.name_of(self.path):
                    yield BadCaseItem.from_parent(self, name=f"divergence:{error.case}", error=error)
        for entry in load_file(self.path, self.folder.root):
            if isinstance(entry, CaseError):
                yield BadCaseItem.from_parent(self, name=entry.case or "<file>", error=entry)
            else:
                for dtype in entry.dtypes:
                    yield CaseItem.from_parent(self, name=entry.item_name(dtype), case=entry, dtype=dtype)
                    if dtype in entry.gradient_dtypes:
                        yield GradientItem.from_parent(
                            self, name=entry.item_name(dtype, "gradients"), case=entry, dtype=dtype
                        )
                    for backend in () if entry.expect_error else self.config.stash[BACKENDS_KEY]:
                        yield BackendItem.from_parent(
                            self, name=f"{entry.name}[{dtype}@{backend.name}]", case=entry, dtype=dtype, backend=backend
                        )
                if self_checks.applies(entry):
                    yield SelfCheckItem.from_parent(
                        self,
                        name=entry.item_name(self_checks.DTYPE, self_checks.CHECK),
                        case=entry,
                        dtype=self_checks.DTYPE,
                    )


class CaseFailed(Exception):
    def __init__(self, outcome: Outcome):
        super().__init__(outcome.report())
        self.outcome = outcome


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, dtype: str, **kwargs):
        super().__init__(**kwargs)
        self.case, self.dtype = case, dtype
        self.outcome: Outcome | None = None  # set by runtest for pytest_runtest_makereport, which clears it
        for mark in (case.op, *case.tags):  # so that `pytest -m depthwise_conv2d` selects
            self.config.addinivalue_line("markers", f"{mark}: convolution case tag")
            self.add_marker(mark)

    def run(self, known, env) -> Outcome:
        """What this item checks: the case through the reference, TensorFlow and the textbook formulations."""
        return run_case(self.case, self.dtype, known, env)

    def runtest(self) -> None:
        known, _, env = self.config.stash[DIVERGENCES_KEY]
        outcome = self.run(known, env)
        self.outcome = outcome  # for pytest_runtest_makereport
        if outcome.status == "skipped":
            pytest.skip(outcome.skip_reason)
        if outcome.status == "xfailed":
            excused_by = outcome.divergence
            if excused_by is None:  # check.verdict: xfailed always names the divergence that excused it
                raise RuntimeError(f"{self.nodeid}: xfailed without a known divergence")
            pytest.xfail(f"known divergence {excused_by.id}: {excused_by.summary}")
        if not outcome.passed:
            raise CaseFailed(outcome)

    def repr_failure(self, excinfo, style=None):
        # A case's failure or known divergence is its report; pytest's traceback with source would be slow
        # (it parses the source of every frame) and say nothing about the case.
        if isinstance(excinfo.value, (CaseFailed, pytest.xfail.Exception)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{self.case.id}[{self.dtype}]"


class BackendItem(CaseItem):
    """One case at one dtype through one backend, checked against TensorFlow (``runner.run_backend``)."""

    def __init__(self, *, backend, **kwargs):
        super().__init__(**kwargs)
        self.backend = backend
        self.config.addinivalue_line("markers", f"backend_{backend.name}: checks this backend")
        self.add_marker(f"backend_{backend.name}")

    def run(self, known, env) -> Outcome:
        return run_backend(self.case, self.dtype, self.backend, known, env)

    def reportinfo(self):
        return self.path, None, f"{self.case.id}[{self.dtype}@{self.backend.name}]"


class GradientItem(CaseItem):
    """One case's gradients at one dtype: TensorFlow's tf.GradientTape and raw backprop ops against the reference's
    (``runner.run_gradients``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.config.addinivalue_line("markers", "gradients: checks an op's gradients")
        self.add_marker("gradients")

    def run(self, known, env) -> Outcome:
        return run_gradients(self.case, self.dtype, known, env)

    def reportinfo(self):
        return self.path, None, f"{self.case.id}[{self.dtype}:gradients]"


class SelfCheckItem(CaseItem):
    """One case's reference checked against itself in float64, with no TensorFlow (``self_checks``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.config.addinivalue_line("markers", "reference: checks the reference against itself")
        self.add_marker("reference")

    def run(self, known, env) -> Outcome:
        return run_self_checks(self.case, env.memory)

    def reportinfo(self):
        return self.path, None, f"{self.case.id}[{self.dtype}:{self_checks.CHECK}]"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the item's JSON record to its call report: it travels with the report from an xdist worker."""
    report = (yield).get_result()
    if call.when != "call":
        return
    if isinstance(item, CaseItem) and item.outcome is not None:
        record = results.record(item.outcome, item.nodeid, item.case.tags)
        item.outcome = None  # its arrays are no longer needed
    elif isinstance(item, BadCaseItem):
        record = results.item_record(item.nodeid, "malformed", call.duration, str(item.error), kind="malformed")
    else:
        return
    # As JSON text: xdist's transport (execnet) cannot send an int below -2**31 (a case's attributes may hold one).
    report.harness_record_json = json.dumps(record)
    item.user_properties += junit_properties(record)  # junitxml writes them from the teardown report


def harness_record(report) -> dict | None:
    """The JSON record a case item's call report carries (``pytest_runtest_makereport``); None for other reports."""
    text = getattr(report, "harness_record_json", None)
    return json.loads(text) if text is not None else None


JUNIT_FIELDS = (
    "op",
    "dtype",
    "backend",
    "status",
    "tensorflow",
    "divergence",
    "max_abs_error",
    "max_rel_error",
    "bound",
    "margin",
    "tolerance",
)


def junit_properties(record: dict) -> list[tuple[str, str]]:
    """The record's main fields as JUnit test-case properties (for CI systems that show them)."""
    return [(key, "" if record.get(key) is None else str(record[key])) for key in JUNIT_FIELDS if key in record]


def _records(terminalreporter) -> list[dict]:
    """The record of every case item this run reported (``results.record``, made where the item ran)."""
    return [
        record
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call" and (record := harness_record(report)) is not None
    ]


class BadCaseItem(pytest.Item):
    """A case the loader rejected: fails with the loader's message, naming file, case and field."""

    def __init__(self, *, error: CaseError, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo, style=None):
        return f"malformed case: {excinfo.value}"

    def reportinfo(self):
        return self.path, None, f"{self.error.file}::{self.name}"


def _selection(config: pytest.Config) -> dict:
    """The options that ran a part of the registry (empty: all of it, or a shard of it)."""
    opt = config.option
    chosen = {
        "op": opt.op,
        "dtype": opt.dtype,
        "tag": opt.tag,
        "keyword": opt.keyword,
        "markexpr": opt.markexpr,
        "args": [str(a) for a in config.args if Path(a).resolve() not in {f.path for f in _collected(config)}],
    }
    return {k: v for k, v in chosen.items() if v}


def _stale_per_entry_divergences(terminalreporter, config) -> list[str]:
    """per_entry divergences that matched some case but made none diverge: TensorFlow may have fixed them."""
    opt = config.option
    if opt.shard or opt.op or opt.dtype or opt.tag or opt.keyword or opt.markexpr:
        return []  # a share or a selection may hold an entry's coincidental agreements without its divergent cases
    files = {f.name_of(f.divergence_file) for f in _collected(config) if f.divergence_file is not None}
    # only the entries whose own file (and so whose repro cases) this run collected
    per_entry = [d.id for d in config.stash[DIVERGENCES_KEY][0] if d.strict == "per_entry" and d.file in files]
    return results.stale_per_entry(_records(terminalreporter), per_entry)  # the same check `report --merge` runs


def _unmeasured(config: pytest.Config) -> str | None:
    """Why TensorFlow's kernel paths are not (all) known in this run, or None: such a run is never green."""
    probe = config.stash[DIVERGENCES_KEY][2].probe
    return "no probe ran" if probe is None else probe.error


def _peak_rss() -> int:
    """This process's peak resident set size, bytes (Linux reports ru_maxrss in KiB)."""

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    rss = getattr(node, "workeroutput", {}).get("harness_peak_rss")
    if rss is not None:
        node.config.stash[RSS_KEY][node.gateway.id] = rss


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if not _active(session.config):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not _is_controller(session.config):
        session.config.workeroutput["harness_peak_rss"] = _peak_rss()  # reaches the controller's testnodedown
        return
    if not session.config.pluginmanager.has_plugin("dsession"):  # no xdist: this process ran the items
        session.config.stash[RSS_KEY]["main"] = _peak_rss()
    stale = _stale_per_entry_divergences(reporter, session.config) if reporter is not None else []
    if stale:
        session.config.stash[STALE_KEY] = stale
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _unmeasured(session.config) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # the verdicts rest on facts nobody measured
    recorder = session.config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.finish(int(session.exitstatus), stale)


# --- selection, progress and the results record -------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" -> (I, N) with 1 <= I <= N; a usage error otherwise."""
    try:
        index, total = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise pytest.UsageError(f"--shard {text!r}: expected I/N, e.g. 2/4") from None
    if not 1 <= index <= total:
        raise pytest.UsageError(f"--shard {text!r}: need 1 <= I <= N")
    return index, total


@pytest.hookimpl(trylast=True)  # after the filters below: shares of what would run
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if not _active(config):
        return
    _select(config, items)
    if config.option.shard:
        index, total = parse_shard(config.option.shard)
        # Every N-th item in collection order: shares differ by at most one item and mix files, ops and sizes
        # alike, so they take about the same time; the order is the same on every machine (sorted files).
        keep = [item for k, item in enumerate(items) if k % total == index - 1]
        drop = [item for k, item in enumerate(items) if k % total != index - 1]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


def _select(config: pytest.Config, items: list) -> None:
    """--op / --dtype / --tag: keep the cases that match every given filter (malformed cases are always kept)."""
    ops_, dtypes_, tags_ = set(config.option.op), set(config.option.dtype), set(config.option.tag)
    if not (ops_ or dtypes_ or tags_):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        if isinstance(item, CaseItem):
            ok = (
                (not ops_ or item.case.op in ops_)
                and (not dtypes_ or item.dtype in dtypes_)
                and (not tags_ or bool(tags_ & set(item.case.tags)))
            )
            (keep if ok else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config):
    """With --progress the bar replaces pytest's character per case (other tests keep theirs)."""
    record = harness_record(report) if config.option.progress and report.when == "call" else None
    if record is not None:
        status = record["status"]
        return ("xfailed" if status == "xfailed" else "failed" if report.failed else "passed"), "", ""
    return None


class Recorder:
    """The controller's side of --reports / --progress: turns item reports into records, streams and renders them.

    Registered as a plugin of its own on the controller only, so its hooks see every report once, whether the
    items ran in this process or on xdist workers.
    """

    def __init__(self, config: pytest.Config):
        self.config = config
        self.directory = Path(config.option.reports) if config.option.reports else None
        self.records: list[dict] = []
        self.counts: Counter = Counter()
        self.total = 0
        self.started, self._t0 = results.now(), time.monotonic()
        self._last_draw, self._last_line = 0.0, -1
        self.stream = None
        known = config.stash[DIVERGENCES_KEY][0]
        env = config.stash[DIVERGENCES_KEY][2]
        self.header = {
            "environment": env.record(),
            "divergences": results.divergence_rows(known, env),
            "run": {
                "started": self.started,
                "argv": results.argv(),
                "sweeps": os.environ.get(SWEEP_ENV, "pairwise"),
                "rootdir": str(config.rootpath),
                "registry": config.stash[REGISTRY_KEY].fingerprint(),
                "shard": config.option.shard,
                "selection": _selection(config),
                "divergence_versions": "any" if config.option.any_tensorflow_version else "declared",
            },
        }
        if self.directory is not None:
            self.stream = results.Stream(self.directory, self.header)
        self._old_sigterm = None
        if self.directory is not None:  # SIGTERM (CI timeouts, kill) ends the run like Ctrl-C: reports still written
            try:
                self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
            except ValueError:  # not the main thread
                pass

    def add(self, report) -> None:
        rec = self._record(report)
        if rec is None:
            return
        self.records.append(rec)
        self.counts[rec["status"]] += 1
        if self.stream is not None:
            self.stream.write(rec)
        if self.config.option.progress:
            self._draw()

    # hooks
    def pytest_runtest_logreport(self, report) -> None:
        self.add(report)

    def pytest_collection_finish(self, session) -> None:
        if not self.config.pluginmanager.has_plugin("dsession"):
            self.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self.total = len(ids)  # every worker collects the same items

    def _record(self, report) -> dict | None:
        rec = harness_record(report)
        if rec is not None:
            return rec
        message = str(report.longrepr)[-2000:] if report.longrepr is not None and not report.passed else ""
        if report.when not in ("setup", "call", "teardown"):  # xdist: the worker died while running this item
            return results.item_record(report.nodeid, "failed", report.duration, message, kind="crashed")
        if report.when == "call":
            status = "xfailed" if hasattr(report, "wasxfail") else report.outcome
            return results.item_record(report.nodeid, status, report.duration, message)
        if report.when == "setup" and report.skipped:
            status = "xfailed" if hasattr(report, "wasxfail") else "skipped"
            return results.item_record(report.nodeid, status, report.duration, message)
        if report.failed:  # a fixture failed in setup or teardown
            return results.item_record(report.nodeid, "error", report.duration, message)
        return None

    def _draw(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        done = len(self.records)
        total = max(self.total, done)
        width = 30
        filled = int(width * done / total) if total else width
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total or '?'}  passed {self.counts['passed']}"
            f"  xfailed {self.counts['xfailed']}  failed {self.counts['failed'] + self.counts['error']}"
            f"  malformed {self.counts['malformed']}  {now - self._t0:.0f}s"
        )
        stream = sys.stdout
        if stream.isatty():
            stream.write("\r" + line + ("\n" if final else ""))
        elif (final and done != self._last_line) or (not final and done % max(1, total // 10) == 0):
            stream.write(line + "\n")  # a log, not a terminal: a line per tenth
            self._last_line = done
        stream.flush()

    def finish(self, exitstatus: int, stale: list[str]) -> None:
        if self.config.option.progress:
            self._draw(final=True)
        if self.directory is None:
            return

        interrupted = exitstatus == int(pytest.ExitCode.INTERRUPTED)
        run = results.Run(
            self.header["environment"],
            {
                **self.header["run"],
                "finished": results.now(),
                "seconds": round(time.monotonic() - self._t0, 3),
                "exitstatus": exitstatus,
                "interrupted": interrupted,
                "complete": not interrupted,
                "stale_divergences": stale,
            },
            self.header["divergences"],
            self.records,
        )
        atomic.write_atomic(self.directory / results.RESULTS_JSON, run.to_json())
        written = [self.directory / results.RESULTS_JSON, *report.write_reports(run, self.directory)]
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"reports: {', '.join(str(p) for p in written)}")

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _active(config):
        return
    stale = config.stash.get(STALE_KEY, [])
    if stale:
        terminalreporter.section("known divergences that no longer occur", red=True)
        for did in stale:
            terminalreporter.line(
                f"{did}: every matching case agreed with the reference; update {CASES_DIR}/{DIVERGENCES_FILE}", red=True
            )
    counts: dict[str, Counter] = defaultdict(Counter)
    by_backend: dict[tuple, Counter] = defaultdict(Counter)  # (backend, op) -> statuses
    divergences_seen: Counter = Counter()
    overrides: dict[str, str] = {}
    for rec in _records(terminalreporter):
        if rec.get("kind") != "case":
            continue
        status = rec["status"]
        if rec.get("backend"):
            by_backend[rec["backend"], rec["op"]][status] += 1
            continue
        if status != "skipped":
            counts[results.op_label(rec)][status] += 1
        if rec.get("divergence"):
            divergences_seen[rec["divergence"]] += 1
        if rec.get("tolerance_override"):
            overrides[rec["id"].rsplit("[", 1)[0]] = rec["tolerance_override"]["reason"]
    if not counts:
        return
    tw = terminalreporter
    settings = wrappers.settings()
    known, _, env = config.stash[DIVERGENCES_KEY]
    tw.section("convolution cases")
    tw.line(
        f"TensorFlow {env.tensorflow_version}  oneDNN={settings['onednn']}  NumPy {settings['numpy']}  "
        f"threads intra={settings['intra_op_threads']} inter={settings['inter_op_threads']}  "
        f"sweeps={os.environ.get(SWEEP_ENV, 'pairwise')}"
    )
    for line in environment.describe(env):
        tw.line(line)
    unmeasured = _unmeasured(config)
    if unmeasured:
        tw.line(
            f"TensorFlow's kernel paths are not all known ({unmeasured}): the run fails; the known divergences "
            f"that need them do not apply",
            red=True,
        )
    elsewhere = [(d.id, d.not_here(env)) for d in known if d.not_here(env)]
    if elsewhere:
        tw.line(f"known divergences not applicable here: {len(elsewhere)}")
        for did, why in elsewhere:
            tw.line(f"  {did}: {why}")
    width = max([28, *(len(op) + 2 for op in counts)])
    tw.line(f"{'op':<{width}}{'passed':>8}{'xfailed':>9}{'failed':>8}")
    for op in sorted(counts):
        tw.line(f"{op:<{width}}{counts[op]['passed']:>8}{counts[op]['xfailed']:>9}{counts[op]['failed']:>8}")
    total = sum((c for c in counts.values()), Counter())
    tw.line(f"{'total':<{width}}{total['passed']:>8}{total['xfailed']:>9}{total['failed']:>8}")
    if by_backend:
        tw.line("backends against TensorFlow:")
        tw.line(f"{'backend':<22}{'op':<20}{'passed':>8}{'xfailed':>9}{'failed':>8}{'skipped':>9}")
        for (backend, op), c in sorted(by_backend.items()):
            tw.line(f"{backend:<22}{op:<20}{c['passed']:>8}{c['xfailed']:>9}{c['failed']:>8}{c['skipped']:>9}")
    if divergences_seen:
        tw.line("known divergences observed (cases/known_divergences.yaml):")
        for did, n in sorted(divergences_seen.items()):
            tw.line(f"  {did:<50}{n:>6}")
    tw.line(f"tolerance overrides: {len(overrides) or 'none'}")
    for nodeid, reason in sorted(overrides.items()):
        tw.line(f"  {nodeid}: {reason}")
    rss = config.stash.get(RSS_KEY, {})
    workers = ", ".join(f"{name} {rss[name] / 2**20:.0f} MiB" for name in sorted(rss)) or "not reported"
    tw.line(
        f"{sum(c.total() for c in counts.values())} cases in {time.monotonic() - config.stash[STARTED_KEY]:.1f} s "
        f"wall; peak resident memory per worker: {workers} (TensorFlow runs in a separate server process)"
    )
