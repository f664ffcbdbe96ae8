"""Fixtures every test folder shares, the ``tensorflow`` marker by folder, and the order the items run in.

The folders: ``unit/`` (the harness's own pieces, NumPy only), ``tensorflow/`` (tests that run TensorFlow in the
server process; marked ``tensorflow``), ``plugin/`` (the pytest plugin, through pytester or a pytest subprocess),
``backends/`` (the backend adapters and declarations) and ``docs/`` (the README's and the docs site's commands).
A test outside ``tensorflow/`` that needs TensorFlow carries ``@pytest.mark.tensorflow`` itself, so
``pytest tests -m "not tensorflow"`` runs without it.

``make test`` runs ``-n auto --dist loadgroup``: the slow tests (marked ``slow``, by their measured durations) and
the tests sharing a module-scoped fixture go first, the short tests and the registry's items after them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import support

from harness.atomic import write_atomic

TENSORFLOW_FOLDERS = ("tensorflow",)
GROUPS_INPUT = "harness_test_groups"  # xdist workerinput: the file where the workers write the items' groups
GROUPS_KEY = pytest.StashKey[Path]()


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    sharing: dict[str, list] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path.is_relative_to(tests) and path.relative_to(tests).parts[0] in TENSORFLOW_FOLDERS:
            item.add_marker(pytest.mark.tensorflow)
        if _shares_a_module_fixture(item):
            sharing.setdefault(item.module.__name__, []).append(item)
    for group, members in sharing.items():
        if len(members) > 1:  # one user alone needs no group (and need not go first)
            for item in members:
                item.add_marker(pytest.mark.xdist_group(group))
    yield
    items[:] = _longest_first(items)  # after the selections (-k, -m, --shard), so that shares stay as they were
    groups_file = getattr(config, "workerinput", {}).get(GROUPS_INPUT)
    if groups_file:  # an xdist worker: tell the controller's scheduler (GroupScheduling) the groups
        groups = {item.nodeid: mark.args[0] for item in items for mark in item.iter_markers("xdist_group")}
        write_atomic(Path(groups_file), json.dumps(groups))


def _shares_a_module_fixture(item) -> bool:
    """Whether the item uses a module-scoped fixture of its own module. The tests that use one run on one xdist
    worker, so that it is set up once (a fixture is module-scoped because it is costly: a run, a build)."""
    infos = getattr(item, "_fixtureinfo", None)
    module = item.nodeid.split("::")[0]
    return infos is not None and any(
        defs[-1].scope == "module" and defs[-1].baseid == module for defs in infos.name2fixturedefs.values() if defs
    )


def _longest_first(items: list) -> list:
    """The items in the order that keeps every xdist worker busy to the end: first the measured-slow tests (marked
    ``slow``) and the groups of tests sharing a module fixture, then the rest in collection order: the short tests,
    and last the thousands of registry items, which fill the gaps. (``--dist loadgroup`` hands the items out in
    this order, one test or group at a time, to whichever worker is free.)"""
    return sorted(
        items,
        key=lambda item: item.get_closest_marker("slow") is None and item.get_closest_marker("xdist_group") is None,
    )


# --- xdist: the groups, handed out whole -------------------------------------------------------------------
# xdist's own --dist loadgroup appends the group to each item's node id, which pytest 9.2 no longer lets a plugin
# change (Node.nodeid is read-only): its groups are silently ignored. The controller never collects, so the workers
# write each item's group to a file (the same file, the same content) and GroupScheduling reads it.


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: where the worker writes the groups (for --dist loadgroup)."""
    config = node.config
    if config.getoption("dist") != "loadgroup":
        return
    if GROUPS_KEY not in config.stash:
        config.stash[GROUPS_KEY] = Path(tempfile.mkdtemp(prefix="harness-test-groups-")) / "groups.json"
    node.workerinput[GROUPS_INPUT] = str(config.stash[GROUPS_KEY])


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """xdist's loadgroup, with the groups read from the workers' file: one test, or one group of tests, at a
        time to whichever worker is free, in collection order (with --no-loadscope-reorder)."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # first called once every worker has collected (and written the file)
                try:
                    self.groups = json.loads(config.stash[GROUPS_KEY].read_text(encoding="utf-8"))
                except (KeyError, OSError, ValueError):
                    self.groups = {}
            return self.groups.get(nodeid, nodeid)

        def _pending_of(self, workload: dict[str, dict[str, bool]]) -> int:
            # xdist counts over every unit the node was ever given, at every event: quadratic in thousands of
            # items. A worker runs its units in the order it got them, so the pending ones are the last few.
            pending = 0
            for unit in reversed(workload.values()):
                left = sum(not done for done in unit.values())
                if not left:
                    break
                pending += left
            return pending

    return GroupScheduling(config, log)


def pytest_unconfigure(config) -> None:
    path = config.stash.get(GROUPS_KEY, None)
    if path is not None:
        path.unlink(missing_ok=True)
        path.parent.rmdir()


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository."""
    return support.ROOT


@pytest.fixture(scope="session")
def registry():
    """Every case of ``cases/`` (``support.registry``)."""
    return support.registry()


@pytest.fixture(scope="session")
def env():
    """The environment the run measures (``Environment.current()``: the probe, cached per environment)."""
    from harness.tf.environment import Environment

    return Environment.current()


@pytest.fixture(scope="session")
def _loaded_before_pytester():
    """What the cases load on first use (the textbook formulations' scipy, the generators' NumPy random), loaded
    before any in-process pytest run: pytester unloads the modules a run loaded, and these extension modules cannot
    be loaded twice in one process."""
    import numpy.random  # noqa: F401
    import scipy.signal  # noqa: F401


@pytest.fixture
def pytester(_loaded_before_pytester, pytester):
    """pytester, with what in-process runs load lazily loaded first (``_loaded_before_pytester``)."""
    return pytester
