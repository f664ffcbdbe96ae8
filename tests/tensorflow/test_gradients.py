"""Gradient cases of the registry (``gradients:`` in a case, run by ``harness.check.runner.run_gradients``).

The registry itself checks TensorFlow's gradients against the reference's (items ``<case>[<dtype>:gradients]``).
These tests check that it does so everywhere it should, and that the check can fail:

* every op with a gradient rule has gradient cases in every data format it takes;
* every gradient divergence (``scope: gradient``) that can apply here is reached by some case;
* a wrong reference gradient, or a wrong TensorFlow gradient, fails the item.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support import ROOT, registry

from harness import ops
from harness.check.prepare import prepare
from harness.check.runner import run_gradients
from harness.conv import reference
from harness.ops import gradients
from harness.registry import divergences
from harness.registry.divergences import matching

KNOWN, _errors = divergences.load(ROOT / "cases" / "known_divergences.yaml", ROOT, scope=None)
assert not _errors, _errors


def gradient_cases():
    return [c for c in registry() if c.gradients]


def test_every_op_with_a_gradient_has_gradient_cases_in_every_data_format():
    have = {(c.op, ops.get(c.op).data_format(c.attrs)) for c in gradient_cases()}
    want = {(name, fmt) for name in gradients.with_gradient() for fmt in ops.get(name).formats}
    assert want <= have, f"no gradient case for {sorted(want - have)}"


def test_every_gradient_divergence_that_can_apply_here_is_reached_by_a_case(env):
    """Reached: some gradient case meets its condition (a forward divergence of that case may still shadow it, e.g.
    NCHW without oneDNN, where the forward op already fails)."""
    gradient_entries = [d for d in KNOWN if d.scope == "gradient" and d.not_here(env) is None]
    reached = set()
    for case in gradient_cases():
        for dtype in case.gradient_dtypes:
            feats = prepare(case, dtype).features(env)
            reached |= {d.id for d in matching(gradient_entries, feats, env)}
    assert {d.id for d in gradient_entries} <= reached, sorted({d.id for d in gradient_entries} - reached)


def _plain_conv2d():
    """gradient_conv2d_dilated without its dilation: a configuration every kernel differentiates."""
    case = next(c for c in registry() if c.name == "gradient_conv2d_dilated")
    return dataclasses.replace(case, name="plain", attrs={"strides": 1, "padding": "SAME"})


def test_a_plain_case_passes_and_compares_the_tape_and_both_raw_ops(env):
    case = _plain_conv2d()
    outcome = run_gradients(case, "float32", KNOWN, env)
    assert outcome.status == "passed", outcome.report()
    assert [c.subject for c in outcome.comparisons] == [
        "tensorflow d/dinput",
        "tensorflow d/dfilters",
        "tensorflow conv2d_backprop_input",
        "tensorflow conv2d_backprop_filter",
    ]
    assert outcome.check == "gradients" and "[float32:gradients]" in outcome.report()


def test_a_wrong_reference_backprop_fails_the_item(env, monkeypatch):
    case = _plain_conv2d()
    right = reference.conv2d_backprop_filter
    monkeypatch.setattr(reference, "conv2d_backprop_filter", lambda *a, **k: right(*a, **k) * 1.01)
    outcome = run_gradients(case, "float64", KNOWN, env)
    assert outcome.status == "failed"
    failed = {c.subject for c in outcome.comparisons if not c.ok}
    assert failed == {"tensorflow d/dfilters", "tensorflow conv2d_backprop_filter"}, outcome.report()


def test_a_declared_gradient_divergence_that_no_longer_occurs_fails(env):
    """An entry that matches but whose behaviour TensorFlow no longer shows is stale: the item fails."""
    case = _plain_conv2d()
    always = dataclasses.replace(next(d for d in KNOWN if d.id == "eigen_gradient_no_nchw"), when={"op": "conv2d"})
    outcome = run_gradients(case, "float32", [always], env)
    assert outcome.status == "failed" and "did not occur" in " ".join(outcome.errors), outcome.report()


def test_the_output_gradient_is_fixed_per_case_and_dtype():
    a = gradients.output_gradient("c/float32/dy", (2, 3), np.float32)
    assert np.array_equal(a, gradients.output_gradient("c/float32/dy", (2, 3), np.float32))
    assert not np.array_equal(a, gradients.output_gradient("c/float64/dy", (2, 3), np.float32))


@pytest.mark.parametrize("op", sorted(name for name in ops.OPS if ops.get(name).raw_backprop))
def test_raw_backprop_calls_name_reference_functions_linear_in_their_operands(op):
    """``OpSpec.raw_backprop`` names functions of the reference, and each call reproduces the gradient rule's."""
    case = next(c for c in gradient_cases() if c.op == op and "float64" in c.dtypes)
    p = prepare(case, "float64")
    dy = gradients.output_gradient("t", p.reference.shape, np.float64)
    want = gradients.gradients(op, p.arrays, p.attrs, dy)
    for name in ops.get(op).raw_backprop:
        raw = gradients.raw_backprop(op, name, p.arrays, p.attrs, dy)
        np.testing.assert_allclose(raw.reference(), want[name], rtol=1e-12, atol=1e-12)
        doubled = raw.run(*(2 * a for a in raw.operands.values()), **raw.kwargs)
        np.testing.assert_allclose(doubled, 4 * want[name], rtol=1e-12, atol=1e-12)
