"""Build hook: the wheel carries the registry (``cases/``) as package data, ``harness/_registry/cases/``.

Everything else is in pyproject.toml. An editable install reads ``cases/`` where it is
(``harness.registry.location.shipped_root``), so the copy is made for regular builds only.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

REGISTRY = Path(__file__).resolve().parent / "cases"


class BuildWithRegistry(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "harness" / "_registry" / "cases"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(REGISTRY, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithRegistry})
