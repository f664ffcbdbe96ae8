"""The JAX (harness/backends/jax_lax.py) and ONNX Runtime (harness/backends/onnx_runtime.py) adapters.

* The registry: every computing case of cases/ through ``harness.backends.run`` against the NumPy reference
  (which is checked against TensorFlow elsewhere), under ``harness.conv.tolerance.bound_for``. Where a backend itself
  behaves otherwise, the known divergence declared for it in cases/known_divergences.yaml (``backend: jax`` /
  ``backend: onnxruntime``) must apply and say what it does; one that applies where the backend agrees fails too
  (the ``judge`` fixture of tests/backends/conftest.py).
* The transposed-convolution padding mapping of both adapters, against plain NumPy loops written from the
  definition, including the mappings TensorFlow never needs (``after`` below ``-(stride - 1)``, ``before`` past
  the kernel's reach).
* The dtype declarations: each declared dtype runs and returns its own dtype; ONNX Runtime's CPU Conv still has no
  float64 kernel.

Time: JAX compiles every new shape (15-20 ms at float32; float64, which XLA CPU compiles with its own loop emitter,
about 10x that), so both backends run on fixed samples of the registry (``RUNS``: 1 case in N, by a hash of its id)
plus every small hand-written case. ``make verify BACKENDS="jax onnxruntime"`` runs them on every case. HARNESS_BACKEND_TESTS_FULL=1 runs every case at every dtype
each backend declares (JAX: also float16, bfloat16, int32; 10-15 minutes in all on 2 cores).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from support import ROOT

from harness import backends, ops
from harness.conv.dtypes import DTYPES, dtype_of
from harness.registry.cases import operand_shape
from harness.registry.loader import computing_cases

FULL = os.environ.get("HARNESS_BACKEND_TESTS_FULL") == "1"

# (backend, dtype) -> keep 1 case in SAMPLE[...] (by a hash of its id), unless FULL.
RUNS = {("jax", "float32"): 8, ("jax", "float64"): 16, ("onnxruntime", "float32"): 3, ("onnxruntime", "float16"): 3}
# JAX's other declared dtypes, every case: 150-250 ms an item (a compile each), so with FULL only.
FULL_ONLY = {("jax", "float16"): 1, ("jax", "bfloat16"): 1, ("jax", "int32"): 1}


def _backend(name: str, module: str) -> backends.Backend:
    pytest.importorskip(module)  # the backend's package (jax, onnxruntime)
    be = backends.resolve(name)
    assert be.unavailable is None, be.unavailable
    return be


@pytest.fixture(scope="module")
def registry():
    return [c for c in computing_cases([], ROOT) if c.op in ops.OPS]  # backends implement the tf.nn ops, no raw ops


def _sampled(case, every: int) -> bool:
    """Every case when ``every`` is 1; else the small hand-written ones and 1 in ``every`` of the rest."""
    if FULL or every == 1:
        return True
    if case.sweep is None and sum(np.prod(operand_shape(case, o.name)) for o in ops.get(case.op).operands) < 20_000:
        return True
    return int.from_bytes(hashlib.sha256(case.id.encode()).digest()[:4], "big") % every == 0


@pytest.mark.parametrize("name, dtype", [*RUNS, *FULL_ONLY])
def test_registry_against_reference(registry, judge, name, dtype):
    if (name, dtype) in FULL_ONLY and not FULL:
        pytest.skip("HARNESS_BACKEND_TESTS_FULL=1 runs this dtype on the registry (2-4 minutes)")
    be = _backend(name, name)
    every = {**RUNS, **FULL_ONLY}[name, dtype]
    selected = [case for case in registry if _sampled(case, every)]
    assert len(selected) > len(registry) // every // 2
    failed = []
    for case in selected:
        decided = judge(case, dtype, be)
        if decided.status == "failed":
            shapes = {operand: operand_shape(case, operand) for operand in case.inputs}
            failed.append(f"{case.id}[{dtype}]: {'; '.join(decided.errors)}  attrs={case.attrs} shapes={shapes}")
    assert not failed, f"{len(failed)} of {len(selected)} cases fail:\n" + "\n".join(failed)


# --- the transposed convolution's padding, from the definition --------------------------------------------------


def transpose_by_definition(x_nc, w_io, strides, dilations, befores, out_sizes):
    """y[n, o, p...] = sum over i, q... with p = q * s + t * d - before of x[n, i, q...] * w[i, o, t...].

    x: [N, I, *in], w: [I, O, *kernel] (channels-first, plain loops); the output has ``out_sizes``.
    """
    n, i_c = x_nc.shape[:2]
    o_c = w_io.shape[1]
    y = np.zeros((n, o_c, *out_sizes), np.float64)
    for q in np.ndindex(*x_nc.shape[2:]):
        for t in np.ndindex(*w_io.shape[2:]):
            p = tuple(qq * s + tt * d - b for qq, tt, s, d, b in zip(q, t, strides, dilations, befores))
            if all(0 <= pp < m for pp, m in zip(p, out_sizes)):
                for b_ in range(n):
                    for i in range(i_c):
                        for o in range(o_c):
                            y[(b_, o, *p)] += x_nc[(b_, i, *q)] * w_io[(i, o, *t)]
    return y


# (in size, kernel, stride, dilation, before, after) per axis; output = (n - 1) s + k_eff - before - after.
GEOMETRIES = [
    ((3, 2, 2, 1, 0, 0), (4, 3, 1, 1, 1, 1)),  # plain; SAME-like
    ((3, 3, 2, 1, 1, -1), (2, 2, 3, 1, 0, -2)),  # after < 0: zeros past the footprint (TF's largest shapes)
    ((4, 3, 2, 2, 3, 0), (3, 2, 1, 3, 2, 1)),  # dilated; before up to k_eff - 1
    ((3, 2, 2, 1, 2, 0), (3, 3, 1, 1, 4, -1)),  # before > k_eff - 1 (a crop); after < 0 with stride 1
    ((2, 2, 2, 1, 0, -3), (3, 1, 1, 2, 0, -2)),  # -after >= stride: beyond output_padding's reach
    ((3, 2, 2, 1, -1, 0), (2, 2, 1, 1, -2, 1)),  # before < 0: zeros before the first footprint
]


def _transpose_case(geometry, dtype=np.float32):
    rng = np.random.default_rng(len(repr(geometry)))
    sizes, kernels, strides, dilations, befores, afters = zip(*geometry)
    x = rng.integers(-3, 4, size=(2, 3, *sizes)).astype(dtype)
    w = rng.integers(-3, 4, size=(3, 2, *kernels)).astype(dtype)
    out = tuple((n - 1) * s + (k - 1) * d + 1 - b - a for n, k, s, d, b, a in geometry)
    want = transpose_by_definition(x.astype(np.float64), w.astype(np.float64), strides, dilations, befores, out)
    return x, w, strides, dilations, tuple(zip(befores, afters)), out, want


def test_transpose_by_definition_hand_example():
    # x = [1, 2], w = [1, 10, 100], stride 2: positions 0..4 get 1, 10, 100 + 2, 20, 200; before 1, after -1
    # drops position 0 and adds one zero at the end.
    x = np.array([[[1.0, 2.0]]])
    w = np.array([[[1.0, 10.0, 100.0]]])
    assert transpose_by_definition(x, w, (2,), (1,), (0,), (5,)).ravel().tolist() == [1, 10, 102, 20, 200]
    assert transpose_by_definition(x, w, (2,), (1,), (1,), (5,)).ravel().tolist() == [10, 102, 20, 200, 0]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "_".join(map(str, g)))
def test_jax_transpose_padding(geometry):
    jax_lax = pytest.importorskip("harness.backends.jax_lax")
    x, w, strides, dilations, pads, out, want = _transpose_case(geometry)
    got = jax_lax.conv_transpose(
        np.moveaxis(x, 1, -1),
        np.moveaxis(w, (0, 1), (-2, -1)),
        strides=strides,
        dilations=dilations,
        pads=pads,
        output_size=out,
    )
    np.testing.assert_array_equal(np.moveaxis(got, -1, 1), want)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "_".join(map(str, g)))
def test_onnxruntime_transpose_padding(geometry):
    onnx_runtime = pytest.importorskip("harness.backends.onnx_runtime")
    x, w, strides, dilations, pads, out, want = _transpose_case(geometry)
    got = onnx_runtime.conv_transpose(x, w, strides=strides, dilations=dilations, pads=pads, output_size=out)
    np.testing.assert_array_equal(got, want)


def test_jax_transpose_padding_numbers():
    jax_lax = pytest.importorskip("harness.backends.jax_lax")
    assert jax_lax.transpose_padding(kernel=3, dilation=1, before=1, after=1) == (1, 1)  # SAME, stride 1
    assert jax_lax.transpose_padding(kernel=3, dilation=2, before=0, after=-1) == (4, 5)  # k_eff 5
    assert jax_lax.transpose_padding(kernel=2, dilation=1, before=3, after=0) == (-2, 1)  # crop


def test_onnxruntime_transpose_attributes():
    onnx_runtime = pytest.importorskip("harness.backends.onnx_runtime")
    f = onnx_runtime.transpose_attributes  # -> pads_begin, pads_end, output_padding, zeros_before, zeros_after
    assert f(stride=2, before=1, after=1) == (1, 1, 0, 0, 0)
    assert f(stride=2, before=1, after=-1) == (1, 0, 1, 0, 0)  # TF's largest output: output_padding
    assert f(stride=3, before=0, after=-2) == (0, 0, 2, 0, 0)
    assert f(stride=2, before=0, after=-2) == (0, 0, 0, 0, 2)  # output_padding must stay < stride
    assert f(stride=1, before=0, after=-1) == (0, 0, 0, 0, 1)
    assert f(stride=2, before=-1, after=0) == (0, 0, 0, 1, 0)


# --- dtypes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jax", "onnxruntime"])
def test_declared_dtypes_run(name):
    be = _backend(name, name)
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, size=(1, 5, 4, 2))
    w = rng.integers(-2, 3, size=(3, 2, 2, 3))
    want = ops.get("conv2d").reference(x.astype(np.int32), w.astype(np.int32), 2, "SAME")
    for dtype in be.dtypes:
        dt = dtype_of(dtype)
        got = backends.run(
            be, "conv2d", {"input": x.astype(dt), "filters": w.astype(dt)}, {"strides": 2, "padding": "SAME"}, dtype
        )
        assert got.dtype == dt, dtype
        np.testing.assert_array_equal(got.astype(np.int32), want, err_msg=dtype)
    for dtype in set(DTYPES) - set(be.dtypes):
        with pytest.raises(backends.NotCovered):
            backends.run(
                be,
                "conv2d",
                {"input": x.astype(dtype_of(dtype)), "filters": w.astype(dtype_of(dtype))},
                {"strides": 2, "padding": "SAME"},
                dtype,
            )


def test_onnxruntime_has_no_float64_conv():
    """The reason float64 is not declared: if a new ONNX Runtime adds the kernel, declare it."""
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from harness.backends import onnx_runtime

    node = helper.make_node("Conv", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 1, 3, 3]),
            helper.make_tensor_value_info("w", TensorProto.DOUBLE, [1, 1, 2, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None] * 4)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", onnx_runtime.OPSET)], ir_version=onnx_runtime.IR_VERSION
    )
    options = ort.SessionOptions()
    options.log_severity_level = 4
    with pytest.raises(Exception, match="NOT_IMPLEMENTED|Could not find an implementation"):
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
