"""No known divergence can go stale on an op or a kind of item it was never observed on (no TensorFlow here).

An entry applies to the ops its ``when.op`` names (the parser requires it) and to one kind of item (``scope``:
forward calls of the op, or its tf.GradientTape gradients), and every kind of item is matched by the same
``divergences.features`` of the op it calls. So an entry can only go stale where the registry has an item of that
op and kind which it matches. This checks the other direction, for every entry and every op it names: the
registry (as make verify-full runs it) has an item of that op and kind that the entry applies to, under the
recorded environment of a machine it was observed on (tests/machines/<name>.json; TensorFlow versions set aside, as a record is one version). An op
named without such an item is an op the entry was never seen to hold for: drop it from ``when.op``, or add the case
that shows it.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from support import CASES, ROOT, registry
from support import recorded_machine as machine

from harness import ops
from harness.check import quantized
from harness.check.prepare import Prepared, prepare
from harness.ops import gradients as reference_gradients
from harness.registry import divergences
from harness.registry.cases import DIVERGENCES_FILE, Case, CaseError
from harness.registry.loader import load_file
from harness.registry.sweeps import SWEEP_ENV
from harness.tf.environment import Environment

ENTRIES, _errors = divergences.load(ROOT / "cases" / DIVERGENCES_FILE, ROOT, scope=None)
assert not _errors, _errors


def named_ops(entry: divergences.Divergence) -> list[str]:
    op = entry.when["op"]
    return op if isinstance(op, list) else [op]


@cache
def full_registry() -> tuple[Case, ...]:
    """Every case of cases/ as make verify-full runs them (every sweep combination, every generated input)."""
    saved = os.environ.get(SWEEP_ENV)
    os.environ[SWEEP_ENV] = "full"
    try:
        return tuple(c for path in sorted(CASES.rglob("*.yaml")) for c in load_file(path, ROOT) if isinstance(c, Case))
    finally:
        if saved is None:
            del os.environ[SWEEP_ENV]
        else:
            os.environ[SWEEP_ENV] = saved


@cache
def cases_of(op: str) -> tuple[Case, ...]:
    """The full registry's cases of ``op``, hand-written files first (a sweep's items are many and alike)."""
    sizes = Counter((c.file, c.sweep) for c in full_registry())  # small sweeps first: the big grids are alike
    return tuple(
        sorted(
            (c for c in full_registry() if c.op == op),
            key=lambda c: (c.sweep is not None, not c.reference_decides, sizes[c.file, c.sweep]),
        )
    )


PREPARED: dict[tuple[str, str], Prepared | None] = {}


def prepared(case: Case, dtype: str) -> Prepared | None:
    if (case.id, dtype) not in PREPARED:
        try:
            PREPARED[case.id, dtype] = prepare(case, dtype, check=None)  # features only: no memory estimate
        except (CaseError, ValueError):
            PREPARED[case.id, dtype] = None
    return PREPARED[case.id, dtype]


def forward_items(op: str) -> Iterator[tuple[str, object]]:
    """(item id, features function of an environment) of every forward call of ``op``: its registry cases, and,
    for a raw backprop op, the raw calls of the gradient checks that call it (as harness.check.runner does)."""
    for case in cases_of(op):
        for dtype in case.dtypes:
            if case.quantization is not None:  # TFLite's op (harness.check.quantized): features of the float geometry
                yield f"{case.id}[{dtype}]", lambda env, case=case, dtype=dtype: quantized.features_of(case, dtype, env)
                continue
            p = prepared(case, dtype)
            if p is not None:
                yield f"{case.id}[{dtype}]", p.features
    callers = [name for name, spec in ops.OPS.items() if op in spec.raw_backprop.values()]
    for caller in callers:
        for case in cases_of(caller):
            if not case.gradients:
                continue
            for dtype in case.gradient_dtypes:
                p = prepared(case, dtype)
                if p is None or p.reference is None:
                    continue
                wrt = next(name for name, raw in ops.get(caller).raw_backprop.items() if raw == op)
                if wrt not in case.gradients:
                    continue
                dy = reference_gradients.output_gradient(f"{case.id}/{dtype}/dy", p.reference.shape, p.reference.dtype)
                raw = reference_gradients.raw_backprop(caller, wrt, p.arrays, p.attrs, dy)
                assert raw is not None and raw.name == op

                def feats(env: Environment, raw=raw, dtype=dtype) -> dict:
                    return divergences.features(raw.name, dtype, raw.operands, raw.attrs, raw.reference(), env)

                yield f"{case.id}[{dtype}:gradients] {op}", feats


def gradient_items(op: str) -> Iterator[tuple[str, object]]:
    for case in cases_of(op):
        if case.gradients:
            for dtype in case.gradient_dtypes:
                p = prepared(case, dtype)
                if p is not None and p.reference is not None:
                    yield f"{case.id}[{dtype}:gradients]", p.features


FEATURES: dict[tuple[str, str], dict] = {}  # (item, machine) -> its features: every entry of an op asks again


def evidence(entry: divergences.Divergence, op: str) -> str | None:
    """The first item of ``op`` and the entry's kind that the entry applies to on a machine it was observed on."""
    unversioned = dataclasses.replace(entry, tensorflow_versions=SpecifierSet())
    items = gradient_items(op) if entry.scope == "gradient" else forward_items(op)
    for item, feats in items:
        for name in entry.observed_on:
            env = machine(name)
            if unversioned.not_here(env) is not None:
                continue
            key = (f"{entry.scope} {item}", name)
            if key not in FEATURES:
                FEATURES[key] = feats(env)
            if unversioned.applies(FEATURES[key], env):
                return f"{item} on {name}"
    return None


@pytest.fixture(scope="module")
def loaded_registry() -> tuple[Case, ...]:
    """The full registry, loaded once (about 10 s): module-scoped, so that make test runs these tests on one
    worker (tests/conftest.py) rather than loading it on each."""
    return full_registry()


@pytest.mark.parametrize(
    ("entry", "op"), [(d, op) for d in ENTRIES for op in named_ops(d)], ids=lambda v: getattr(v, "id", v)
)
def test_every_op_an_entry_names_has_an_item_of_its_kind_it_applies_to_where_observed(entry, op, loaded_registry):
    found = evidence(entry, op)
    assert found, (
        f"{entry.id} names op {op}, but no {entry.scope} item of {op} in cases/ meets its condition on "
        f"{', '.join(entry.observed_on)}: it was never observed there (drop {op}, or add a case that shows it)"
    )


def test_an_entry_without_its_ops_is_rejected(tmp_path):
    path = tmp_path / "known_divergences.yaml"
    entry = {
        "id": "no_op",
        "kind": "wrong_result",
        "summary": "s",
        "when": {"filter_empty": True},
        "tensorflow_versions": ">=2.13",
        "tensorflow_does": ["wrong_values"],
        "evidence": "e",
        "repro": "r",
    }
    path.write_text(yaml.safe_dump({"divergences": [entry]}), encoding="utf-8")
    entries, errors = divergences.load(path)
    assert entries == [] and [(e.case, e.field) for e in errors] == [("no_op", "when.op")]
    assert "name the ops" in str(errors[0])
    path.write_text(
        yaml.safe_dump({"divergences": [{**entry, "when": {"op": "conv2d"}, "scope": "raw_backprop"}]}),
        encoding="utf-8",
    )
    entries, errors = divergences.load(path)
    assert entries == [] and [(e.case, e.field) for e in errors] == [("no_op", "scope")]
    assert "when.op" in str(errors[0])


def test_a_raw_backprop_op_has_the_same_features_called_directly_or_by_a_gradient_check():
    """The raw call a gradient check makes, and a registry case of the raw op with the same arguments, are matched
    alike: a direct raw-op case of raw_depthwise_backprop_ignores_dilations xfails as the gradient items do."""
    case = next(c for c in registry() if c.name == "gradient_depthwise_dilated_same")
    p = prepare(case, "float32")
    dy = reference_gradients.output_gradient("dy", p.reference_output().shape, np.dtype(np.float32))
    raw = reference_gradients.raw_backprop(case.op, "input", p.arrays, p.attrs, dy)
    assert raw is not None
    env = machine("amd-epyc-zen3")
    via_gradient = divergences.features(raw.name, "float32", raw.operands, raw.attrs, raw.reference(), env)
    direct = next(c for c in registry() if c.name == "raw_depthwise_backprop_input_dilated")
    direct_feats = prepare(direct, "float32").features(env)
    for key in ("op", "dilated_kernel_axis", "dilation_gt_1", "padding", "data_format", "eigen_kernel", "input_rank"):
        assert via_gradient[key] == direct_feats[key], key
    assert via_gradient["dilated_kernel_axis"] is True
    ids = {d.id for d in divergences.matching(divergences.in_scope(ENTRIES, "forward"), direct_feats, env)}
    assert ids == {"raw_depthwise_backprop_ignores_dilations"}
