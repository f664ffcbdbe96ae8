"""TensorFlow's gradients of every op equal harness.gradients' reference (calls TensorFlow, isolated).

For a spread of registry configurations (the pairwise sweeps and the examples, every data
format, float32 and float64), ``tf.GradientTape`` gradients w.r.t. every operand, for a
random output gradient, must match ``harness.gradients`` within ``harness.tolerance``'s
bound computed on the reference gradient function. The four raw backprop ops are checked
against their references the same way.

A configuration matching a known divergence of the forward op (cases/known_divergences.yaml,
matched by ``harness.divergences.features`` / ``matching``) is skipped. Divergences found
in the gradients themselves are tracked in ``KNOWN_GRADIENT_DIVERGENCES`` below, with the same
fields and condition vocabulary: a configuration they match must show exactly the declared
behaviour, and fails once TensorFlow agrees with the reference (then update the entry).
"""

import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from harness import divergences, gradients, ops, reference
from harness.cases import Case, load_file, operand_array, parse_case
from harness.divergences import Environment, features, matching, parse_divergence
from harness.dtypes import dtype_of
from harness.isolation import Died, Raised, call_tensorflow
from harness.padding import normalize_padding, normalize_window_arg, raw_op_window_args
from harness.tolerance import bound_for, compare

ROOT = Path(__file__).resolve().parents[1]
ENV = Environment.current()
FORWARD_DIVERGENCES, _errors = divergences.load(ROOT / "cases" / "known_divergences.yaml", ROOT)
assert not _errors, _errors

# --- divergences of TensorFlow's gradients (not of the forward ops) -------------------------------------
# Found by this file with TensorFlow 2.21.0 (tensorflow-cpu wheel), Python 3.11, x86-64. In each case the
# forward op works; only its gradient kernel (Conv2DBackpropInput / Conv2DBackpropFilter) refuses.

KNOWN_GRADIENT_DIVERGENCES = [
    parse_divergence(__file__, raw, i) for i, raw in enumerate([
        {
            "id": "eigen_conv2d_gradient_no_dilation",
            "kind": "unsupported",
            "summary": "the Eigen Conv2D backprop kernels (oneDNN off, or float64) reject dilations > 1",
            "when": {"op": ["conv2d", "conv1d"], "dilation_gt_1": True, "eigen_kernel": True},
            "tensorflow_versions": ">=2.21,<2.22",
            "onednn": "any",
            "tensorflow_does": ["raises InvalidArgumentError"],
            "evidence": "tf.nn.conv2d(x, w, 1, 'SAME', dilations=2) computes its forward result (the Eigen Conv2D kernel "
                        "handles dilations), but its gradient raises InvalidArgumentError 'Current CPU implementations do "
                        "not yet support dilation rates larger than 1' from Conv2DBackpropInput (float64 in both oneDNN "
                        "modes; float32 too with TF_ENABLE_ONEDNN_OPTS=0); conv1d inherits it. atrous_conv2d is not "
                        "affected: it dilates through space_to_batch.",
            "repro": "import numpy as np, tensorflow as tf\n"
                     "x = tf.constant(np.random.rand(1, 7, 6, 3)); w = tf.constant(np.random.rand(3, 2, 3, 4))\n"
                     "with tf.GradientTape() as t:\n    t.watch(x); y = tf.nn.conv2d(x, w, 1, 'SAME', dilations=2)\n"
                     "t.gradient(y, x)  # InvalidArgumentError (float64)",
        },
        {
            "id": "onednn_conv2d_gradient_dilated_explicit",
            "kind": "unsupported",
            "summary": "under oneDNN, the gradient of conv2d with dilations > 1 and explicit padding is rejected",
            "when": {"op": "conv2d", "dilation_gt_1": True, "padding": "explicit"},
            "tensorflow_versions": ">=2.21,<2.22",
            "onednn": "on",
            "tensorflow_does": ["raises InvalidArgumentError"],
            "evidence": "float32 NHWC conv2d with dilations 2 and padding [[0, 0], [1, 1], [0, 2], [0, 0]]: the forward "
                        "op runs under oneDNN, the gradient falls back to the Eigen Conv2DBackpropInput and raises "
                        "'Current CPU implementations do not yet support dilation rates larger than 1'.",
            "repro": "import numpy as np, tensorflow as tf\n"
                     "x = tf.constant(np.random.rand(1, 7, 6, 3).astype(np.float32)); w = tf.constant(np.random.rand(3, 2, 3, 4).astype(np.float32))\n"
                     "with tf.GradientTape() as t:\n    t.watch(x); y = tf.nn.conv2d(x, w, 1, [[0, 0], [1, 1], [0, 2], [0, 0]], dilations=2)\n"
                     "t.gradient(y, x)  # InvalidArgumentError",
        },
        {
            "id": "onednn_conv2d_gradient_nchw_explicit",
            "kind": "unsupported",
            "summary": "under oneDNN, the gradient of an NCHW conv2d with explicit padding is rejected",
            "when": {"op": "conv2d", "data_format": "NCHW", "padding": "explicit"},
            "tensorflow_versions": ">=2.21,<2.22",
            "onednn": "on",
            "tensorflow_does": ["raises InvalidArgumentError"],
            "evidence": "float32 NCHW conv2d with padding [[0, 0], [0, 0], [1, 1], [0, 2]] runs forward under oneDNN; "
                        "its gradient falls back to the Eigen kernel: InvalidArgumentError "
                        "'Conv2DCustomBackpropInputOp only supports NHWC'.",
            "repro": "import numpy as np, tensorflow as tf\n"
                     "x = tf.constant(np.random.rand(1, 3, 7, 6).astype(np.float32)); w = tf.constant(np.random.rand(3, 2, 3, 4).astype(np.float32))\n"
                     "with tf.GradientTape() as t:\n    t.watch(x); y = tf.nn.conv2d(x, w, 2, [[0, 0], [0, 0], [1, 1], [0, 2]], data_format='NCHW')\n"
                     "t.gradient(y, x)  # InvalidArgumentError",
        },
        {
            "id": "onednn_depthwise_gradient_nchw_explicit",
            "kind": "unsupported",
            "summary": "under oneDNN, the gradient of an NCHW depthwise / separable conv with explicit padding is rejected",
            "when": {"op": ["depthwise_conv2d", "separable_conv2d"], "data_format": "NCHW", "padding": "explicit",
                     "dilation_gt_1": False},
            "tensorflow_versions": ">=2.21,<2.22",
            "onednn": "on",
            "tensorflow_does": ["raises UnimplementedError"],
            "evidence": "float32 NCHW depthwise_conv2d, strides [1, 1, 3, 3], padding [[0, 0], [0, 0], [0, 2], [3, 1]]: the "
                        "forward op runs under oneDNN; its gradient (and the raw DepthwiseConv2dNativeBackpropInput / "
                        "Filter ops) fall back to Eigen: UnimplementedError 'Depthwise convolution on CPU is only "
                        "supported for NHWC format'. With dilations > 1 tf.nn goes through space_to_batch and works.",
            "repro": "import numpy as np, tensorflow as tf\n"
                     "x = tf.constant(np.random.rand(2, 3, 6, 5).astype(np.float32)); w = tf.constant(np.random.rand(1, 1, 3, 3).astype(np.float32))\n"
                     "with tf.GradientTape() as t:\n    t.watch(x); y = tf.nn.depthwise_conv2d(x, w, [1, 1, 3, 3], [[0, 0], [0, 0], [0, 2], [3, 1]], data_format='NCHW')\n"
                     "t.gradient(y, x)  # UnimplementedError",
        },
    ])
]

# The raw ops only (tf.nn's gradients do not pass dilations to them): matched before the list above.
KNOWN_RAW_OP_DIVERGENCES = [
    parse_divergence(__file__, {
        "id": "raw_depthwise_backprop_ignores_dilations",
        "kind": "wrong_result",
        "summary": "DepthwiseConv2dNativeBackpropInput / Filter ignore their dilations attribute",
        "when": {"op": "depthwise_conv2d", "dilation_gt_1": True},
        "tensorflow_versions": ">=2.21,<2.22",
        "onednn": "any",
        "tensorflow_does": ["wrong_values", "raises InvalidArgumentError", "raises AbortedError"],
        "evidence": "With dilations [1, 2, 2, 1] and SAME, both raw ops (and tf.nn.depthwise_conv2d_backprop_input / _filter) "
                    "return exactly the reference for dilations [1, 1, 1, 1] (max difference 0 and 3.6e-15 in float64), "
                    "in both oneDNN modes. Proof that TensorFlow is the wrong side: the adjoint identity; for a (1, 9, 9, 2) "
                    "float32 input and a 5x5 kernel, <depthwise_conv2d(x, w), dy> = -149.62 (TensorFlow's own forward "
                    "agrees with the reference to 3e-6) while <x, TF's backprop_input> = -92.73 and <w, TF's "
                    "backprop_filter> = -92.73; the reference gives -149.62 for both. With VALID or explicit padding "
                    "the undilated output size no longer matches out_backprop: InvalidArgumentError 'Number of rows of "
                    "out_backprop doesn't match computed' without oneDNN, AbortedError 'could not create a primitive "
                    "descriptor' with it. tf.nn.depthwise_conv2d's own gradient is right: for dilations > 1 it runs "
                    "through space_to_batch and calls the raw ops with dilations 1.",
        "repro": "import numpy as np, tensorflow as tf\n"
                 "w = np.random.rand(3, 3, 2, 2); dy = np.random.rand(1, 9, 9, 4)\n"
                 "a = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(input_sizes=[1, 9, 9, 2], filter=w, out_backprop=dy, strides=[1, 1, 1, 1], padding='SAME', dilations=[1, 2, 2, 1])\n"
                 "b = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(input_sizes=[1, 9, 9, 2], filter=w, out_backprop=dy, strides=[1, 1, 1, 1], padding='SAME')\n"
                 "print(np.array_equal(a, b))  # True: the dilations were ignored",
        "link": "https://github.com/tensorflow/tensorflow/issues/56498",
    }, 0),
]


# --- configurations -----------------------------------------------------------------------------------

CASE_FILES = sorted((ROOT / "cases" / "sweeps").glob("*_pairwise.yaml")) + [ROOT / "cases" / "examples.yaml"]
PER_FORMAT = 6  # configurations per (op, data_format)
DTYPES = ("float32", "float64")


def _spread(cases: list[Case], n: int) -> list[Case]:
    """n cases evenly spaced through the list (deterministic)."""
    if len(cases) <= n:
        return cases
    return [cases[round(i * (len(cases) - 1) / (n - 1))] for i in range(n)]


def _configurations() -> list[Case]:
    groups = defaultdict(list)
    for path in CASE_FILES:
        for c in load_file(path, ROOT):
            if isinstance(c, Case) and c.expect_error is None and c.op in gradients.GRADIENTS:
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
            arrays, attrs, y, _ = _materialize(case, dtype)
            feats = features(case, dtype, arrays, attrs, y, ENV)
            if not matching(FORWARD_DIVERGENCES, feats, ENV):
                matched |= {d.id for d in matching(KNOWN_GRADIENT_DIVERGENCES, feats, ENV)[:1]}
                if case.op in RAW_OPS:
                    matched |= {d.id for d in matching(KNOWN_RAW_OP_DIVERGENCES + KNOWN_GRADIENT_DIVERGENCES, feats, ENV)[:1]}
    here = {d.id for d in KNOWN_GRADIENT_DIVERGENCES + KNOWN_RAW_OP_DIVERGENCES if d.onednn in ("any", "on" if ENV.onednn else "off")}
    assert here <= matched, f"not exercised: {sorted(here - matched)}"


def _materialize(case: Case, dtype: str):
    """(arrays, resolved attrs, forward reference output, output gradient) for one configuration."""
    spec = ops.get(case.op)
    arrays = {o.name: operand_array(case, o.name, dtype) for o in spec.operands}
    attrs = spec.resolve(arrays, case.attrs) if spec.resolve else dict(case.attrs)
    y = spec.call(spec.reference, arrays, attrs)
    rng = np.random.default_rng(zlib.crc32(f"{case.id}/{dtype}/dy".encode()))
    return arrays, attrs, y, rng.normal(size=y.shape).astype(dtype_of(dtype))


def _known_divergence(case: Case, dtype: str, arrays, attrs, y, tracked):
    """Skip a configuration with a known forward divergence; return the tracked divergence that applies, if any."""
    feats = features(case, dtype, arrays, attrs, y, ENV)
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
    arrays, attrs, y, dy = _materialize(case, dtype)
    divergence = _known_divergence(case, dtype, arrays, attrs, y, KNOWN_GRADIENT_DIVERGENCES)
    result = call_tensorflow("gradients", (case.op, tuple(arrays[o.name] for o in spec.operands), attrs, dy), {})

    def checks():
        want = gradients.gradients(case.op, arrays, attrs, dy)
        for operand, got in zip(spec.operands, result.value):
            bound = bound_for(gradients.gradient_function(case.op, operand.name), {**arrays, "out_backprop": dy}, attrs,
                              dtype_of(dtype))
            yield compare(f"tensorflow d/d{operand.name}", got, "reference", want[operand.name], bound)

    _check(divergence, result, lambda: list(checks()))


# --- the raw backprop ops ---------------------------------------------------------------------------

RAW_OPS = {  # forward op -> (its raw backprop ops, the tf.nn lengths of strides / dilations)
    "conv2d": (("conv2d_backprop_input", "conv2d_backprop_filter"), (1, 2, 4), (1, 2, 4)),
    "depthwise_conv2d": (("depthwise_conv2d_native_backprop_input", "depthwise_conv2d_native_backprop_filter"), (4,), (2,)),
}
RAW_CONFIGS = [(c, raw_op) for c in CONFIGS if c.op in RAW_OPS for raw_op in RAW_OPS[c.op][0]]


def _raw_attrs(case: Case, attrs) -> dict:
    _, stride_lengths, dilation_lengths = RAW_OPS[case.op]
    fmt = ops.get(case.op).data_format(attrs)
    strides = normalize_window_arg(case.op, "strides", attrs["strides"], fmt, allowed_lengths=stride_lengths)
    dilations = normalize_window_arg(case.op, "dilations", attrs.get("dilations"), fmt, allowed_lengths=dilation_lengths,
                                     default=1)
    s4, d4, padding, explicit = raw_op_window_args(strides, dilations, normalize_padding(case.op, attrs["padding"], fmt), fmt)
    return {"strides": s4, "padding": padding, "explicit_paddings": explicit, "data_format": fmt, "dilations": d4}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case,raw_op", RAW_CONFIGS, ids=lambda v: v.id if isinstance(v, Case) else v)
def test_raw_backprop_ops_match_the_reference(case, raw_op, dtype):
    arrays, attrs, y, dy = _materialize(case, dtype)
    x, w = (arrays[o.name] for o in ops.get(case.op).operands)
    divergence = _known_divergence(case, dtype, arrays, attrs, y, KNOWN_RAW_OP_DIVERGENCES + KNOWN_GRADIENT_DIVERGENCES)
    kwargs = _raw_attrs(case, attrs)
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
