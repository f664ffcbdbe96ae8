"""The divergence model on every machine the registry has run on, not only this one (no TensorFlow here).

tests/machines/<name>.json are recorded environments (CPU features, oneDNN's ISA and cap, TensorFlow's measured
kernel paths: ``harness machine --record``); tests/machines/expected.yaml says, for the items whose verdict depends
on the machine, which known divergences applied on each. A change to the model or to an entry's ``when`` that only
holds on the CPU it was made on fails here, on every CPU.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from support import MACHINES, ROOT
from support import recorded_machine as machine

from harness.check.prepare import prepare
from harness.registry import divergences
from harness.registry.cases import DIVERGENCES_FILE, Case, split_case_id
from harness.registry.loader import load_file
from harness.tf.environment import Environment

EXPECTED = yaml.safe_load((MACHINES / "expected.yaml").read_text(encoding="utf-8"))
RECORDED = sorted(p.stem for p in MACHINES.glob("*.json"))


@cache
def registry(scope: str | None = None) -> tuple[divergences.Divergence, ...]:
    """The known divergences of one scope (None: every scope)."""
    entries, errors = divergences.load(ROOT / "cases" / DIVERGENCES_FILE, ROOT, scope=scope)
    assert errors == []
    return tuple(entries)


@cache
def case(file: str, name: str) -> Case:
    found = [c for c in load_file(ROOT / file, ROOT) if isinstance(c, Case) and c.name == name]
    assert len(found) == 1, f"{file}::{name}: not one case in the registry (expected.yaml names a case that moved?)"
    return found[0]


def applicable(item_id: str, env: Environment) -> list[str]:
    """The ids of the known divergences of TensorFlow's forward ops that the model applies to one item in ``env``."""
    file, name, dtype = split_case_id(item_id)
    return [d.id for d in prepare(case(file, name), dtype).applicable(registry("forward"), env)]


def test_every_machine_with_expectations_is_recorded_and_the_other_way_round():
    assert sorted(EXPECTED) == RECORDED
    for name in RECORDED:
        env = machine(name)
        assert env.cpu is not None and env.cpu.flags and env.probe is not None and env.probe.paths, name
        assert env.probe.error is None, f"{name}: a recorded probe must be complete: {env.probe.error}"


@pytest.mark.parametrize("name", RECORDED)
def test_the_model_gives_each_item_the_divergences_observed_on_the_machine(name):
    env = machine(name)
    wrong = {
        item: (applicable(item, env), want) for item, want in EXPECTED[name].items() if applicable(item, env) != want
    }
    assert not wrong, "\n".join(
        f"{item}: the model applies {got}, {name} showed {want}" for item, (got, want) in wrong.items()
    )


@pytest.mark.parametrize("name", RECORDED)
def test_an_entry_applies_on_every_recorded_machine_it_was_observed_on(name):
    # The machine's conditions only: a record was made with one TensorFlow, an entry may hold for others
    # (tensorflow_versions, measured by harness matrix).
    env = machine(name)
    entries = [dataclasses.replace(d, tensorflow_versions=SpecifierSet()) for d in registry() if name in d.observed_on]
    wrong = {d.id: d.not_here(env) for d in entries if d.not_here(env)}
    assert not wrong, f"entries observed on {name} that the model calls not applicable there: {wrong}"


def test_every_entry_says_where_it_was_observed():
    assert [d.id for d in registry() if not d.observed_on] == []
    names = {m for d in registry() for m in d.observed_on}
    assert names <= set(RECORDED), (
        f"observed_on names machines with no record in tests/machines: {names - set(RECORDED)}"
    )


def test_the_cpu_dependent_entries_are_not_applicable_on_a_machine_without_the_feature():
    # the crashes seen with AMX cannot be stale on a CPU without it: they do not apply there at all
    zen4 = machine("amd-epyc-zen4")
    segfault = next(d for d in registry() if d.id == "onednn_bfloat16_padding_only_row_segfaults")
    assert segfault.not_here(zen4) == (
        "needs onednn_isa one of avx512_core_amx, avx512_core_amx_fp16, here avx512_core_bf16"
    )
    assert segfault.not_here(machine("intel-sapphire-rapids")) is None


def test_the_recorded_kernel_paths_differ_where_the_cpus_do():
    zen4, spr = machine("amd-epyc-zen4"), machine("intel-sapphire-rapids")
    assert zen4.eigen(("Conv2D",), "float16", "named") is True
    assert spr.eigen(("Conv2D",), "float16", "named") is False
    for env in (zen4, spr):  # the same everywhere: explicit padding keeps the backprops on Eigen, float64 too
        assert env.eigen(("Conv2DBackpropInput",), "float32", "explicit") is True
        assert env.eigen(("Conv2DBackpropInput",), "float32", "named") is False
        assert env.eigen(("Conv2D",), "float64", "named") is True
