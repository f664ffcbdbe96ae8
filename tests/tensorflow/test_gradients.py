"""TensorFlow's gradients of every op equal harness.ops.gradients' reference (calls TensorFlow, isolated).

For a spread of registry configurations (the pairwise sweeps and the examples, every data
format, float32 and float64), ``tf.GradientTape`` gradients w.r.t. every operand, for a
random output gradient, must match ``harness.ops.gradients`` within ``harness.conv.tolerance``'s
bound computed on the reference gradient function. The four raw backprop ops are checked
against their references the same way.

A configuration matching a known divergence of the forward op (cases/known_divergences.yaml,
matched by ``harness.registry.divergences.features`` / ``matching``) is skipped. Divergences found
in the gradients themselves are entries of cases/known_divergences.yaml with ``scope: gradient``
(or ``raw_backprop``): a configuration they match must show exactly the declared behaviour,
and fails once TensorFlow agrees with the reference (then update the entry).
"""

import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from harness.registry import divergences
from harness.ops import gradients
from harness import ops
from harness.conv import reference
from harness.registry.cases import Case, operand_array, parse_case
from harness.registry.loader import load_file
from harness.registry.divergences import matching
from harness.check.prepare import prepare
from harness.tf.environment import Environment
from harness.conv.dtypes import dtype_of
from harness.tf.isolation import Died, Raised, call_tensorflow
from harness.conv.tolerance import bound_for, compare

from support import ROOT
ENV = Environment.current()
FORWARD_DIVERGENCES, _errors = divergences.load(ROOT / "cases" / "known_divergences.yaml", ROOT)
assert not _errors, _errors

# Divergences of TensorFlow's gradients (not of the forward ops) are entries of the same file with
# `scope: gradient`; those of the raw backprop ops only (tf.nn's gradients do not pass dilations to them) have
# `scope: raw_backprop` and are matched before the gradient ones.
KNOWN_GRADIENT_DIVERGENCES = divergences.load(ROOT / "cases" / "known_divergences.yaml", ROOT, scope="gradient")[0]
KNOWN_RAW_OP_DIVERGENCES = divergences.load(ROOT / "cases" / "known_divergences.yaml", ROOT, scope="raw_backprop")[0]


# --- configurations -----------------------------------------------------------------------------------

# Each op's configurations come from its pairwise sweeps (and the examples) when it has some, else its other sweeps.
PAIRWISE_FILES = sorted((ROOT / "cases" / "sweeps").glob("*_pairwise.yaml")) + [ROOT / "cases" / "examples.yaml"]
OTHER_FILES = sorted(set((ROOT / "cases" / "sweeps").glob("*.yaml")) - set(PAIRWISE_FILES))
PER_FORMAT = 6  # configurations per (op, data_format)
DTYPES = ("float32", "float64")


def _spread(cases: list[Case], n: int) -> list[Case]:
    """n cases evenly spaced through the list (deterministic)."""
    if len(cases) <= n:
        return cases
    return [cases[round(i * (len(cases) - 1) / (n - 1))] for i in range(n)]


def _configurations() -> list[Case]:
    groups = defaultdict(list)
    pairwise = [c for path in PAIRWISE_FILES for c in load_file(path, ROOT) if isinstance(c, Case)]
    covered = {c.op for c in pairwise}
    others = [c for path in OTHER_FILES for c in load_file(path, ROOT) if isinstance(c, Case) and c.op not in covered]
    for c in pairwise + others:
        if c.expect_error is None and c.op in gradients.with_gradient():
            spec = ops.get(c.op)
            shapes = {o.name: operand_array(c, o.name, "float32").shape for o in spec.operands}
            if ops.kernel_fits(spec, shapes, c.attrs):
                groups[(c.op, spec.data_format(c.attrs))].append(c)
    picked = []
    for key in sorted(groups):
        picked += _spread(sorted(groups[key], key=lambda c: c.name), PER_FORMAT)
    return picked


# The minimal repros of the tracked divergences, so that each is exercised in every mode it applies to.
REPROS = [
    parse_case(__file__, raw, i) for i, raw in enumerate([
        {"name": "repro_conv2d_nchw_explicit", "op": "conv2d", "dtypes": list(DTYPES),
         "attrs": {"strides": 2, "padding": [[0, 0], [0, 0], [1, 1], [0, 2]], "data_format": "NCHW"},
         "inputs": {"input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": [1, 7, 6, 3]}},
                    "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": [3, 2, 3, 4]}}}},
        {"name": "repro_depthwise_dilated_same", "op": "depthwise_conv2d", "dtypes": list(DTYPES),
         "attrs": {"strides": [1, 1, 1, 1], "padding": "SAME", "dilations": [2, 2]},
         "inputs": {"input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": [1, 9, 9, 2]}},
                    "filter": {"layout": "HWIM", "generate": {"dist": "normal", "shape": [3, 3, 2, 2]}}}},
    ])
]
CONFIGS = _configurations() + REPROS


def test_the_spread_covers_every_op_and_data_format():
    assert {(c.op, ops.get(c.op).data_format(c.attrs)) for c in CONFIGS} == {
        (name, fmt) for name, spec in ops.OPS.items() for fmt in spec.formats}


def test_every_tracked_divergence_that_applies_here_is_exercised():
    matched = set()
    for case in CONFIGS:
        for dtype in DTYPES:
            feats = prepare(case, dtype).features(ENV)
            if not matching(FORWARD_DIVERGENCES, feats, ENV):
                matched |= {d.id for d in matching(KNOWN_GRADIENT_DIVERGENCES, feats, ENV)[:1]}
                if case.op in RAW_OPS:
                    matched |= {d.id for d in matching(KNOWN_RAW_OP_DIVERGENCES + KNOWN_GRADIENT_DIVERGENCES, feats, ENV)[:1]}
    here = {d.id for d in KNOWN_GRADIENT_DIVERGENCES + KNOWN_RAW_OP_DIVERGENCES if d.not_here(ENV) is None}
    assert here <= matched, f"not exercised: {sorted(here - matched)}"


def _materialize(case: Case, dtype: str):
    """(the prepared configuration, an output gradient) for one configuration."""
    p = prepare(case, dtype)
    rng = np.random.default_rng(zlib.crc32(f"{case.id}/{dtype}/dy".encode()))
    return p, rng.normal(size=p.reference.shape).astype(dtype_of(dtype))


def _known_divergence(p, tracked):
    """Skip a configuration with a known forward divergence; return the tracked divergence that applies, if any."""
    feats = p.features(ENV)
    forward = matching(FORWARD_DIVERGENCES, feats, ENV)
    if forward:
        pytest.skip(f"known divergence of the forward op: {', '.join(d.id for d in forward)}")
    found = matching(tracked, feats, ENV)
    return found[0] if found else None


def _behaviour(result, checks) -> tuple[str, str]:
    """What TensorFlow did, in the vocabulary of known divergences: agrees, wrong_shape, wrong_values, raises X, aborts."""
    if isinstance(result, Died):
        return "aborts", f"{result.how}: {result.stderr_tail}"
    if isinstance(result, Raised):
        return f"raises {result.error_class}", result.message.splitlines()[0][:300] if result.message else ""
    failed = [c for c in checks() if not c.ok]
    if any(c.detail.startswith("shape") for c in failed):
        return "wrong_shape", "; ".join(c.line() for c in failed)
    if failed:
        return "wrong_values", "; ".join(c.line() for c in failed)
    return "agrees", ""


def _check(divergence, result, checks) -> None:
    """TensorFlow agrees with the reference, or does exactly what the tracked divergence declares."""
    behaviour, detail = _behaviour(result, checks)
    if divergence is None:
        assert behaviour == "agrees", f"TensorFlow {behaviour}: {detail}"
    elif behaviour == "agrees":
        pytest.fail(f"known divergence {divergence.id!r} did not occur: TensorFlow agrees with the reference "
                    f"(update the entry in {Path(__file__).name})")
    else:
        assert divergence.expects(behaviour), (f"known divergence {divergence.id!r} says TensorFlow "
                                               f"{' or '.join(divergence.tensorflow_does)}, but it {behaviour}: {detail}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONFIGS, ids=lambda c: c.id)
def test_tensorflow_gradients_match_the_reference(case, dtype):
    spec = ops.get(case.op)
    p, dy = _materialize(case, dtype)
    arrays, attrs = p.arrays, p.attrs
    divergence = _known_divergence(p, KNOWN_GRADIENT_DIVERGENCES)
    result = call_tensorflow("gradients", (case.op, tuple(arrays[o.name] for o in spec.operands), attrs, dy), {})

    def checks():
        want = gradients.gradients(case.op, arrays, attrs, dy)
        for operand, got in zip(spec.operands, result.value):
            bound = bound_for(gradients.gradient_function(case.op, operand.name), {**arrays, "out_backprop": dy}, attrs,
                              dtype_of(dtype))
            yield compare(f"tensorflow d/d{operand.name}", got, "reference", want[operand.name], bound)

    _check(divergence, result, lambda: list(checks()))


# --- the raw backprop ops ---------------------------------------------------------------------------

RAW_OPS = {  # forward op -> its raw backprop ops
    "conv2d": ("conv2d_backprop_input", "conv2d_backprop_filter"),
    "depthwise_conv2d": ("depthwise_conv2d_native_backprop_input", "depthwise_conv2d_native_backprop_filter"),
}
RAW_CONFIGS = [(c, raw_op) for c in CONFIGS if c.op in RAW_OPS for raw_op in RAW_OPS[c.op]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case,raw_op", RAW_CONFIGS, ids=lambda v: v.id if isinstance(v, Case) else v)
def test_raw_backprop_ops_match_the_reference(case, raw_op, dtype):
    p, dy = _materialize(case, dtype)
    arrays, attrs = p.arrays, p.attrs
    x, w = (arrays[o.name] for o in ops.get(case.op).operands)
    divergence = _known_divergence(p, KNOWN_RAW_OP_DIVERGENCES + KNOWN_GRADIENT_DIVERGENCES)
    kwargs = gradients.raw_attrs(ops.get(case.op), attrs)
    wrt_input = raw_op.endswith("_input")
    # backprop_input(input_sizes, filter, out_backprop) is linear in filter and out_backprop;
    # backprop_filter(input, filter_sizes, out_backprop) in input and out_backprop.
    sizes = list(x.shape) if wrt_input else list(w.shape)

    def ref(a, b, **kw):
        return getattr(reference, raw_op)(*((sizes, a, b) if wrt_input else (a, sizes, b)), **kw)

    operands = {"filter": w, "out_backprop": dy} if wrt_input else {"input": x, "out_backprop": dy}
    result = call_tensorflow(raw_op, (sizes, w, dy) if wrt_input else (x, sizes, dy), kwargs)

    def checks():
        bound = bound_for(ref, operands, kwargs, dtype_of(dtype))
        return [compare(f"tensorflow {raw_op}", result.value, "reference", ref(*operands.values(), **kwargs), bound)]

    _check(divergence, result, checks)
