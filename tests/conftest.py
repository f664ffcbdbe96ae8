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

from pathlib import Path

import pytest
import support

TENSORFLOW_FOLDERS = ("tensorflow",)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        if path.is_relative_to(tests) and path.relative_to(tests).parts[0] in TENSORFLOW_FOLDERS:
            item.add_marker(pytest.mark.tensorflow)
        if _shares_a_module_fixture(item):  # before xdist's own hook, which reads the groups (``--dist loadgroup``)
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    yield
    items[:] = _longest_first(items)  # after the selections (-k, -m, --shard), so that shares stay as they were


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
