"""``harness init``: a starter in a user's repository, and the CI workflow template this repository uses too.

The starter (``harness/templates/``)::

    cases/example.yaml                 one case with a hand-computed expected value, one of a known divergence
    cases/known_divergences.yaml       the user's own entries (none yet), extending the shipped ones
    kernel/backend.yaml, my_conv.py    a backend declaration and a placeholder kernel to replace
    pytest.ini                         harness_cases, harness_shipped, harness_backends (unless pytest is configured)
    .github/workflows/tf-conv-check.yml   the CI template (``workflow``)

Nothing is overwritten unless asked (``force``).
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
WORKFLOW = Path(".github") / "workflows" / "tf-conv-check.yml"
DEFAULT_INSTALL = "pip install tf-conv-harness"

# The lint job of this repository's own workflow (the users' has none: their lint is theirs).
REPOSITORY_LINT = """  lint:
    if: github.event_name != 'schedule'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
      - uses: actions/setup-python@v6
        with:
          python-version: ${{ env.PYTHON_VERSION }}
      - name: ruff, mypy and actionlint (make lint)
        run: make lint
"""


class StarterError(ValueError):
    """A starter that cannot be written: the message names the file."""


def workflow(install: str = DEFAULT_INSTALL, *, repository: bool = False) -> str:
    """The CI workflow: ``install`` is the shell command that installs the harness; ``repository`` renders this
    repository's own (``.github/workflows/ci.yml``: it installs the checkout and lints it too)."""
    if "\n" in install or not install.strip():
        raise StarterError(f"install command {install!r}: must be one non-empty line")
    text = (TEMPLATES / "ci.yml").read_text(encoding="utf-8")
    what = "this repository's own CI, rendered by harness.starter.workflow" if repository else "written by harness init"
    text = text.replace("@WHAT@", what).replace("@INSTALL@", install.strip())
    return text.replace("@LINT@\n", REPOSITORY_LINT + "\n" if repository else "")


def pytest_configured(target: Path) -> str | None:
    """The file that already configures pytest in ``target``, or None (pytest reads the first it finds)."""
    if (target / "pytest.ini").is_file():
        return "pytest.ini"
    for name, section in (("pyproject.toml", None), ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        path = target / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if section is None:  # pyproject.toml (tomllib is Python 3.11+: the table's header is enough)
            if re.search(r"^\[tool\.pytest\.ini_options\]", text, re.MULTILINE):
                return name
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read_string(text)
        except configparser.Error as exc:
            raise StarterError(f"{path}: not a valid ini file ({exc})") from None
        if parser.has_section(section):
            return name
    return None


@dataclass(frozen=True)
class Starter:
    written: tuple[Path, ...]  # relative to the target
    config_elsewhere: str | None  # the file that configures pytest already (its lines to add are in ``ini_lines``)
    ini_lines: str


def init(target: Path, *, install: str = DEFAULT_INSTALL, force: bool = False) -> Starter:
    """Write the starter into ``target`` (created if missing). Raises StarterError naming the first file that exists
    already (unless ``force``)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise StarterError(f"{target}: not a directory")
    ini = (TEMPLATES / "pytest.ini").read_text(encoding="utf-8")
    configured = pytest_configured(target) if target.exists() else None
    files = {
        Path("cases") / "example.yaml": (TEMPLATES / "example.yaml").read_text(encoding="utf-8"),
        Path("cases") / "known_divergences.yaml": (TEMPLATES / "known_divergences.yaml").read_text(encoding="utf-8"),
        Path("kernel") / "backend.yaml": (TEMPLATES / "backend.yaml").read_text(encoding="utf-8"),
        Path("kernel") / "my_conv.py": (TEMPLATES / "my_conv.py").read_text(encoding="utf-8"),
        WORKFLOW: workflow(install),
    }
    if configured is None:
        files[Path("pytest.ini")] = ini
    if not force:
        for name in files:
            if (target / name).exists():
                raise StarterError(f"{target / name} exists already: harness init --force overwrites it")
    for name, text in files.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text, encoding="utf-8")
    lines = "".join(line + "\n" for line in ini.splitlines() if line.startswith("harness_"))
    return Starter(tuple(files), configured, lines)
