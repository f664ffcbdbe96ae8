"""The README and the documentation site: their commands and examples must be true, the site must build.

The documents are read as one corpus (README.md and every page under docs/), so a command may move between pages
without a test changing. Every ``.venv/bin/harness`` line is parsed by the real argument parser (an option that
no longer exists fails here), the cheap read-only ones are run, every ``make`` target and ``python -m`` module
named exists, and the generated pages are what their data gives.
"""

import json
import os
import platform
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import yaml
from support import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").rglob("*.md"))}
CORPUS = "\n".join([README, *PAGES.values()])
README_MAX_LINES = 250
QUIET = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material for MkDocs' end-of-life banner


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", CORPUS, flags=re.S)


def _harness_commands() -> list[tuple[str, str]]:
    """(subcommand, rest of the line) of every ``.venv/bin/harness`` line shown, comments stripped."""
    return re.findall(r"^\.venv/bin/harness ([a-z][a-z-]*)(.*?)(?:\s+#.*)?$", CORPUS, flags=re.M)


def test_the_readme_is_a_landing_page():
    assert len(README.splitlines()) <= README_MAX_LINES
    for page in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / page).is_file(), page


def test_the_worked_example_is_the_file_in_cases():
    example = next(b for b in _blocks("yaml") if "conv2d_stride2_same_5x5" in b)
    assert yaml.safe_load(example) == yaml.safe_load((ROOT / "cases" / "examples.yaml").read_text())


def test_the_quantized_example_is_the_case_in_cases():
    example = next(b for b in _blocks("yaml") if "int8_conv2d_per_channel_strided_valid_relu6" in b)
    doc = yaml.safe_load((ROOT / "cases" / "quantized.yaml").read_text())
    case = next(c for c in doc["cases"] if c["name"] == "int8_conv2d_per_channel_strided_valid_relu6")
    assert yaml.safe_load(example) == [case]


def test_the_worked_example_expected_values_follow_its_description():
    # out[i, j] = x[2i, 2j] + 2 x[2i, 2j + 1] with x[i, j] = 5 i + j and zero beyond the right edge
    x = np.pad(np.arange(25).reshape(5, 5), ((0, 0), (0, 1)))
    want = [[x[2 * i, 2 * j] + 2 * x[2 * i, 2 * j + 1] for j in range(3)] for i in range(3)]
    doc = yaml.safe_load((ROOT / "cases" / "examples.yaml").read_text())
    assert doc["cases"][0]["expected"]["value"] == want


def test_the_special_values_example_runs_and_its_expected_values_hold():
    """docs/cases.md's special-values case: its NaN lands where the text says, the reference gives the expected values
    (NaN included) at every dtype, and TensorFlow agrees."""
    from harness.check.runner import run_case
    from harness.registry.cases import operand_arrays, parse_case

    block = next(b for b in _blocks("yaml") if "nan_read_through_a_zero_weight" in b)
    case = parse_case("docs/cases.md", yaml.safe_load(block)["cases"][0], 0)
    x = operand_arrays(case, "float32")["input"]
    assert np.argwhere(np.isnan(x)).tolist() == [[0, 0, 2, 0]]
    for dtype in case.dtypes:
        outcome = run_case(case, dtype)
        assert outcome.status == "passed", outcome.report()
        assert any(c.against == "expected" and c.ok for c in outcome.comparisons), outcome.report()


def test_the_python_snippet_runs_without_tensorflow_for_the_reference():
    snippet = next(b for b in _blocks("python") if "reference.conv2d" in b)
    namespace: dict = {}
    exec(snippet.replace("y_tf = wrappers", "# y_tf = wrappers"), namespace)
    assert namespace["y_ref"].shape == (1, 5, 5, 1)


def test_every_module_in_the_layout_table_exists():
    paths = re.findall(r"\| `((?:harness|bench|docs)/[a-z_/]*)`", CORPUS)
    assert paths
    for path in paths:
        assert (ROOT / path).exists(), path


def test_every_make_target_the_docs_name_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    named = set(re.findall(r"^make ([a-z][a-z-]*)", CORPUS, flags=re.M))
    assert named and named <= targets, named - targets


def test_every_python_module_command_in_the_docs_exists():
    for module in set(re.findall(r"python -m ((?:harness|bench|docs)\.[a-z_.]+)", CORPUS)):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_every_harness_command_shown_parses_and_every_subcommand_is_shown():
    from harness import cli

    parser = cli.parser()
    commands = _harness_commands()
    assert {name for name, _ in commands} == set(parser._subparsers._group_actions[0].choices)
    for name, rest in commands:
        try:
            parser.parse_args([name, *shlex.split(rest)])
        except SystemExit:
            pytest.fail(f"the docs show `harness {name}{rest}`, which the parser rejects")


@pytest.mark.slow
def test_the_read_only_commands_shown_run():
    shown = [(name, rest) for name, rest in dict.fromkeys(_harness_commands()) if name in ("list", "new", "backends")]
    assert {name for name, _ in shown} == {"list", "new", "backends"}
    for name, rest in shown:
        proc = subprocess.run(
            [sys.executable, "-m", "harness", name, *shlex.split(rest)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0 and proc.stdout, (name, rest, proc.stderr[-2000:])


@pytest.mark.tensorflow  # not marked slow: `harness machine --tensorflow` waits for make test's install of TEST_TF
def test_the_machine_examples_run(tmp_path):
    examples = re.findall(r"^\.venv/bin/harness machine(.*?)(?:\s+#.*)?$", CORPUS, flags=re.M)
    assert len(examples) >= 4
    for rest in dict.fromkeys(examples):
        if "AVX" in rest and platform.machine() not in ("x86_64", "AMD64"):
            continue  # an x86 cap
        args = rest.replace("tests/machines/mine.json", str(tmp_path / "mine.json")).split()
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "machine", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0 and proc.stdout, (rest, proc.stdout[-2000:], proc.stderr[-2000:])
        if "--record" in rest:
            recorded = json.loads((tmp_path / "mine.json").read_text())
            assert recorded["cpu_flags"] and recorded["probe"]["paths"]


def test_the_generated_pages_are_what_their_data_gives():
    proc = subprocess.run(
        [sys.executable, "-m", "docs.generate", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_every_op_and_divergence_has_its_section():
    from harness import ops

    table, found = PAGES["docs/reference/ops.md"], PAGES["docs/reference/divergences.md"]
    assert all(f"\n## {op}\n" in table for op in ops.OPS)
    ids = [d["id"] for d in yaml.safe_load((ROOT / "cases" / "known_divergences.yaml").read_text())["divergences"]]
    assert all(f"\n## {i}\n" in found for i in ids)


def test_the_site_builds_in_strict_mode(tmp_path):
    mkdocs = ROOT / ".venv" / "bin" / "mkdocs"
    command = [str(mkdocs)] if mkdocs.exists() else [sys.executable, "-m", "mkdocs"]
    proc = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        env=QUIET,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "ops" / "index.html").is_file()


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """The strict build is a real check: a page with a link to a missing page does not build. (With ``--quiet``
    MkDocs 1.6 hides the warnings that strict mode counts and exits 0: the build must not be run quietly.)"""
    import shutil

    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[gone](no-such-page.md)\n", encoding="utf-8")
    mkdocs = ROOT / ".venv" / "bin" / "mkdocs"
    command = [str(mkdocs)] if mkdocs.exists() else [sys.executable, "-m", "mkdocs"]
    proc = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        env=QUIET,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "no-such-page.md" in proc.stdout + proc.stderr


def test_every_dotted_harness_name_in_the_docs_exists():
    """``harness.conv.padding.window`` and the like: a module, or an attribute of one, that can be imported."""
    import importlib

    missing = []
    for name in sorted(set(re.findall(r"\bharness(?:\.[a-z_]+)+", CORPUS))):
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                missing.append(name)
                break
            obj = getattr(obj, attr)
    assert not missing, missing
