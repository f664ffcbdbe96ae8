"""Fixtures every test folder shares, and the ``tensorflow`` marker by folder.

The folders: ``unit/`` (the harness's own pieces, NumPy only), ``tensorflow/`` (tests that run TensorFlow in the
server process; marked ``tensorflow``), ``plugin/`` (the pytest plugin, through pytester or a pytest subprocess),
``backends/`` (the backend adapters and declarations) and ``docs/`` (the README's and the docs site's commands).
A test outside ``tensorflow/`` that needs TensorFlow carries ``@pytest.mark.tensorflow`` itself, so
``pytest tests -m "not tensorflow"`` runs without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import support

TENSORFLOW_FOLDERS = ("tensorflow",)


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        if path.is_relative_to(tests) and path.relative_to(tests).parts[0] in TENSORFLOW_FOLDERS:
            item.add_marker(pytest.mark.tensorflow)


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
