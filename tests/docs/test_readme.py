"""The README's commands and examples must be true."""

import json
import pytest
import re

import numpy as np
import yaml

from support import ROOT
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_the_worked_example_is_the_file_in_cases():
    example = next(b for b in _blocks("yaml") if "conv2d_stride2_same_5x5" in b)
    assert yaml.safe_load(example) == yaml.safe_load((ROOT / "cases" / "examples.yaml").read_text())


def test_the_worked_example_expected_values_follow_its_description():
    # out[i, j] = x[2i, 2j] + 2 x[2i, 2j + 1] with x[i, j] = 5 i + j and zero beyond the right edge
    x = np.pad(np.arange(25).reshape(5, 5), ((0, 0), (0, 1)))
    want = [[x[2 * i, 2 * j] + 2 * x[2 * i, 2 * j + 1] for j in range(3)] for i in range(3)]
    doc = yaml.safe_load((ROOT / "cases" / "examples.yaml").read_text())
    assert doc["cases"][0]["expected"]["value"] == want


def test_the_python_snippet_runs_without_tensorflow_for_the_reference():
    snippet = next(b for b in _blocks("python") if "reference.conv2d" in b)
    namespace: dict = {}
    exec(snippet.replace("y_tf = wrappers", "# y_tf = wrappers"), namespace)
    assert namespace["y_ref"].shape == (1, 5, 5, 1)


def test_every_module_in_the_layout_table_exists():
    for path in re.findall(r"\| `((?:harness|bench)/[a-z_/]*)`", README):
        assert (ROOT / path).exists(), path


def test_every_make_target_the_readme_names_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    named = set(re.findall(r"^make ([a-z][a-z-]*)", README, flags=re.M))
    assert named and named <= targets, named - targets


def test_every_python_module_command_in_the_readme_exists():
    for module in set(re.findall(r"python -m ((?:harness|bench)\.[a-z_.]+)", README)):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_every_harness_subcommand_in_the_readme_exists_and_the_list_examples_run():
    import subprocess
    import sys

    from harness import cli

    commands = re.findall(r"^\.venv/bin/harness ([a-z][a-z-]*)(.*?)(?:\s+#.*)?$", README, flags=re.M)
    subcommands = set(cli.parser()._subparsers._group_actions[0].choices)
    assert {name for name, _ in commands} == subcommands  # every subcommand is shown, and nothing else
    for name, rest in commands:
        if name == "list":
            proc = subprocess.run([sys.executable, "-m", "harness", name, *rest.split()], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0 and proc.stdout, (rest, proc.stderr)


@pytest.mark.tensorflow
def test_the_machine_examples_run(tmp_path):
    import platform
    import subprocess
    import sys

    examples = re.findall(r"^\.venv/bin/harness machine(.*?)(?:\s+#.*)?$", README, flags=re.M)
    assert len(examples) >= 4
    for rest in dict.fromkeys(examples):
        if "AVX" in rest and platform.machine() not in ("x86_64", "AMD64"):
            continue  # an x86 cap
        args = rest.replace("tests/machines/mine.json", str(tmp_path / "mine.json")).split()
        proc = subprocess.run([sys.executable, "-m", "harness", "machine", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0 and proc.stdout, (rest, proc.stdout[-2000:], proc.stderr[-2000:])
        if "--record" in rest:
            recorded = json.loads((tmp_path / "mine.json").read_text())
            assert recorded["cpu_flags"] and recorded["probe"]["paths"]
