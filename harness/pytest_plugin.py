"""pytest plugin: every ``cases/**/*.yaml`` file becomes test items, one per case and dtype.

Item ids read ``cases/seeds.yaml::transpose_stride2_same[float32]``, so
``pytest cases/seeds.yaml -k transpose`` works. A malformed case (or a file that
is not valid YAML) becomes one failing item whose message names the file, the
case and the field; the other cases of the file still run.

Enabled from the repository's ``conftest.py``. At the end of a run it prints a
summary per op and records TensorFlow's settings (version, oneDNN mode, threads)
in the JUnit XML report as testsuite properties.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness import divergences, tf_ops
from harness.cases import DIVERGENCES_FILE, Case, CaseError, load_file
from harness.runner import Outcome, run_case
from harness.sweeps import SWEEP_ENV

CASES_DIR = "cases"


DIVERGENCES_KEY = pytest.StashKey[tuple]()  # (known divergences, their load errors, Environment)
STALE_KEY = pytest.StashKey[list]()  # per_entry divergences that no case showed any more


@pytest.hookimpl(trylast=True)  # after junitxml has created its report object
def pytest_configure(config: pytest.Config) -> None:
    tf_ops.pin_environment()  # before any xdist worker or TensorFlow child starts
    path = config.rootpath / CASES_DIR / DIVERGENCES_FILE
    loaded = divergences.load(path, config.rootpath) if path.exists() else ([], [])
    config.stash[DIVERGENCES_KEY] = (tuple(loaded[0]), tuple(loaded[1]), divergences.Environment.current())
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for key, value in tf_ops.settings().items():
            xml.add_global_property(key, value)


def _is_case_file(file_path: Path, rootpath: Path) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    try:
        rel = file_path.relative_to(rootpath)
    except ValueError:
        return False
    return rel.parts[0] == CASES_DIR


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if _is_case_file(file_path, parent.config.rootpath):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):
        if self.path.name == DIVERGENCES_FILE:  # entries that could not be read fail as items of this file
            for error in self.config.stash[DIVERGENCES_KEY][1]:
                yield BadCaseItem.from_parent(self, name=f"divergence:{error.case}", error=error)
        for entry in load_file(self.path, self.config.rootpath):
            if isinstance(entry, CaseError):
                yield BadCaseItem.from_parent(self, name=entry.case or "<file>", error=entry)
            else:
                for dtype in entry.dtypes:
                    yield CaseItem.from_parent(self, name=entry.item_name(dtype), case=entry, dtype=dtype)


class CaseFailed(Exception):
    def __init__(self, outcome: Outcome):
        super().__init__(outcome.report())
        self.outcome = outcome


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, dtype: str, **kwargs):
        super().__init__(**kwargs)
        self.case, self.dtype = case, dtype
        for mark in (case.op, *case.tags):  # so that `pytest -m depthwise_conv2d` selects
            self.config.addinivalue_line("markers", f"{mark}: convolution case tag")
            self.add_marker(mark)

    def runtest(self) -> None:
        known, _, env = self.config.stash[DIVERGENCES_KEY]
        outcome = run_case(self.case, self.dtype, known, env)
        self.user_properties += [
            ("op", self.case.op),
            ("dtype", self.dtype),
            ("status", outcome.status),
            ("tensorflow", outcome.tensorflow),
            ("divergence", outcome.divergence.id if outcome.divergence else ""),
            ("applicable_divergences", " ".join(outcome.applicable)),
            ("expect_error", "yes" if self.case.expect_error else ""),
            ("max_rel_error", f"{max((c.max_rel_error for c in outcome.comparisons), default=0.0):.6g}"),
            ("max_bound", f"{max((c.max_bound for c in outcome.comparisons), default=0.0):.6g}"),
            ("implementations", " ".join(c.subject for c in outcome.comparisons if c.against == "reference")),
            ("max_abs_error", f"{max((c.max_abs_error for c in outcome.comparisons), default=0.0):.6g}"),
            ("worst_margin", f"{outcome.worst_margin:.6g}"),
            ("tolerance", outcome.bound.describe() if outcome.bound else ""),
        ]
        if self.case.tolerance:
            self.user_properties.append(("tolerance_override", self.case.tolerance.reason))
        if outcome.status == "xfailed":
            pytest.xfail(f"known divergence {outcome.divergence.id}: {outcome.divergence.summary}")
        if not outcome.passed:
            raise CaseFailed(outcome)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{self.case.id}[{self.dtype}]"


class BadCaseItem(pytest.Item):
    """A case the loader rejected: fails with the loader's message, naming file, case and field."""

    def __init__(self, *, error: CaseError, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        self.user_properties += [("op", "?"), ("status", "malformed")]
        raise self.error

    def repr_failure(self, excinfo, style=None):
        return f"malformed case: {excinfo.value}"

    def reportinfo(self):
        return self.path, None, f"{self.error.file}::{self.name}"


def _stale_per_entry_divergences(terminalreporter, config) -> list[str]:
    """per_entry divergences that matched some case but made none diverge: TensorFlow may have fixed them."""
    known = {d.id: d for d in config.stash[DIVERGENCES_KEY][0] if d.strict == "per_entry"}
    matched, diverged, ran_repros = set(), set(), False
    for status in ("passed", "failed", "xfailed"):
        for report in terminalreporter.stats.get(status, []):
            ran_repros |= report.nodeid.startswith(f"{CASES_DIR}/{DIVERGENCES_FILE}::")
            props = dict(getattr(report, "user_properties", []))
            matched.update(i for i in props.get("applicable_divergences", "").split() if i in known)
            if props.get("divergence") in known:
                diverged.add(props["divergence"])
    # Judged only on runs that include the entries' own repro cases: a subset may hold only coincidental agreements.
    return sorted(matched - diverged) if ran_repros else []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(session.config, "workerinput"):
        return
    stale = _stale_per_entry_divergences(reporter, session.config)
    if stale:
        session.config.stash[STALE_KEY] = stale
        session.exitstatus = pytest.ExitCode.TESTS_FAILED



def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    stale = config.stash.get(STALE_KEY, [])
    if stale:
        terminalreporter.section("known divergences that no longer occur", red=True)
        for did in stale:
            terminalreporter.line(f"{did}: every matching case agreed with the reference; update {CASES_DIR}/{DIVERGENCES_FILE}", red=True)
    counts: dict[str, Counter] = defaultdict(Counter)
    divergences_seen: Counter = Counter()
    overrides: dict[str, str] = {}
    for status in ("passed", "failed", "xfailed"):
        for report in terminalreporter.stats.get(status, []):
            if report.when != "call":
                continue
            props = dict(report.user_properties)
            if "op" in props:
                counts[props["op"]][status] += 1
            if props.get("divergence"):
                divergences_seen[props["divergence"]] += 1
            if props.get("tolerance_override"):
                overrides[report.nodeid.rsplit("[", 1)[0]] = props["tolerance_override"]
    if not counts:
        return
    tw = terminalreporter
    settings = tf_ops.settings()
    tw.section("convolution cases")
    tw.line(f"TensorFlow {settings['tensorflow']}  oneDNN={settings['onednn']}  NumPy {settings['numpy']}  "
            f"threads intra={settings['intra_op_threads']} inter={settings['inter_op_threads']}  "
            f"sweeps={os.environ.get(SWEEP_ENV, 'pairwise')}")
    tw.line(f"{'op':<20}{'passed':>8}{'xfailed':>9}{'failed':>8}")
    for op in sorted(counts):
        tw.line(f"{op:<20}{counts[op]['passed']:>8}{counts[op]['xfailed']:>9}{counts[op]['failed']:>8}")
    total = sum((c for c in counts.values()), Counter())
    tw.line(f"{'total':<20}{total['passed']:>8}{total['xfailed']:>9}{total['failed']:>8}")
    if divergences_seen:
        tw.line("known divergences observed (cases/known_divergences.yaml):")
        for did, n in sorted(divergences_seen.items()):
            tw.line(f"  {did:<50}{n:>6}")
    tw.line(f"tolerance overrides: {len(overrides) or 'none'}")
    for nodeid, reason in sorted(overrides.items()):
        tw.line(f"  {nodeid}: {reason}")
