"""The PyTorch backend (harness/backends/torch_nn.py) against the NumPy reference, on every computing case.

The registry's cases run through ``harness.backends.run`` (the harness's layout and geometry translation, then the
adapter's translation to ``torch.nn.functional``) at every dtype the case and the backend share, and are compared
with the reference under the usual bound. The configurations where PyTorch itself behaves differently from
TensorFlow's definition are the known divergences declared for the torch backend in cases/known_divergences.yaml,
matched by the divergence model on this machine and judged as a run judges them (the ``judge`` fixture of
tests/backends/conftest.py); a minimal repro of each is a test of its own at the end of this file.

The transposed-convolution translation (``(before, after)`` pads to PyTorch's ``padding`` / ``output_padding``, or
crop / zero-extend) is checked on small hand-computed examples against plain loops over the definition.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[torch]'")

import torch.nn.functional as F  # noqa: E402
from support import ROOT  # noqa: E402

from harness import backends, ops  # noqa: E402
from harness.backends import torch_nn  # noqa: E402
from harness.backends.base import rank_format  # noqa: E402
from harness.check.prepare import prepare  # noqa: E402
from harness.conv.dtypes import DTYPES, dtype_of  # noqa: E402
from harness.registry.loader import computing_cases  # noqa: E402
from harness.tf import machine  # noqa: E402
from harness.tf.environment import Environment  # noqa: E402


@pytest.fixture(scope="module")
def torch_divergences(backend_divergences) -> tuple:
    """The entries declared for the torch backend (``backend: torch``); the model decides where each applies (the
    AMX bfloat16 bug only where the CPU has AMX)."""
    return tuple(d for d in backend_divergences if d.backend == "torch")


@pytest.fixture(scope="module")
def backend():
    b = torch_nn.backend()
    assert b.unavailable is None
    return b


@pytest.fixture(scope="module")
def cases_by_op():
    by_op = {op: [] for op in ops.OPS}
    for case in computing_cases([], ROOT):
        if case.op in by_op:  # backends implement the tf.nn ops, no raw backprop ops
            by_op[case.op].append(case)
    return by_op


@pytest.mark.parametrize("dtype", torch_nn.TORCH_DTYPES)
@pytest.mark.parametrize("op", list(ops.OPS))
def test_registry_agrees_with_reference(backend, cases_by_op, judge, op, dtype):
    items = [c for c in cases_by_op[op] if dtype in c.dtypes]
    if not items:
        pytest.skip(f"no {op} case runs at {dtype}")
    failed = []
    for case in items:
        decided = judge(case, dtype, backend)
        if decided.status == "failed":
            failed.append(f"{case.id}[{dtype}]: {'; '.join(decided.errors)}")
    assert not failed, f"{len(failed)} of {len(items)} cases fail:\n" + "\n".join(failed)


def test_the_torch_divergences_that_apply_everywhere_match_registry_cases(cases_by_op, torch_divergences, env):
    matched = {
        d.id
        for cases in cases_by_op.values()
        for c in cases
        for dt in c.dtypes
        if dt in torch_nn.TORCH_DTYPES
        for d in prepare(c, dt).applicable(torch_divergences, env, backend="torch")
    }
    everywhere = {d.id for d in torch_divergences if d.not_here(env) is None}
    assert {"torch_rejects_zero_output_channels", "torch_rejects_empty_spatial_input"} <= everywhere
    assert everywhere <= matched, everywhere - matched


def test_backend_declaration(backend):
    assert backends.resolve("torch").unavailable is None
    assert backend.convention == "explicit" and backend.data_format == "NCHW"
    assert set(backend.ops) == set(ops.OPS)
    assert backend.covers("conv2d", "int32") and "does not run int32" in backend.covers("conv2d", "int32")
    for spec in ops.OPS.values():
        role = {"transposed": "transposed", "conv": "conv"}.get(spec.kind, "grouped")
        want = {"transposed": "IOHW"}.get(spec.kind, "OIHW")
        assert backends.explicit_layout(backend, spec, role, spec.filter) == rank_format(want, spec.rank)
    assert torch.get_num_threads() == 1


def test_tensors_have_pytorch_default_strides():
    # An NHWC array with one channel transposed to NCHW is C-contiguous for NumPy but has channel stride 1, which
    # PyTorch reads as channels-last memory (see test_repro_onednn_channels_last_unit_width).
    x = np.zeros((2, 10, 3, 1), np.float32).transpose(0, 3, 1, 2)
    t = torch_nn._to_torch(np.ascontiguousarray(x))
    assert t.stride() == (30, 30, 3, 1)


@pytest.mark.parametrize("dtype", torch_nn.TORCH_DTYPES)
def test_dtype_round_trip_is_exact(dtype):
    values = np.array([1.0, -2.5, 3.140625, 65504.0 if dtype == "float16" else 1e30, 2.0**-14], np.float64)
    a = values.astype(dtype_of(dtype))
    t = torch_nn._to_torch(a)
    assert str(t.dtype) == f"torch.{dtype}"
    back = torch_nn._to_numpy(t, a.dtype)
    assert back.dtype == a.dtype and np.array_equal(back.view(np.uint8), a.view(np.uint8))


# --- translation, against loops over the definitions ------------------------------------------------------


def transposed_by_definition(x, w, strides, dilations, pads, output_size):
    """x [N, I, *spatial], w [I, O, *k]: out[q] = sum of x[i] * w[t] over i * s + t * d - before == q."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, c_in = x.shape[:2]
    c_out = w.shape[1]
    out = np.zeros((n, c_out, *output_size))
    for b in range(n):
        for ci in range(c_in):
            for co in range(c_out):
                for i in np.ndindex(*x.shape[2:]):
                    for t in np.ndindex(*w.shape[2:]):
                        q = tuple(ii * s + tt * d - p[0] for ii, tt, s, d, p in zip(i, t, strides, dilations, pads))
                        if all(0 <= qq < m for qq, m in zip(q, output_size)):
                            out[(b, co) + q] += x[(b, ci) + i] * w[(ci, co) + t]
    return out


def correlated_by_definition(x, w, strides, dilations, pads, groups):
    """x [N, C, *spatial], w [O, C / groups, *k]; zero padding (before, after) per axis."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    x = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    n, c_in = x.shape[:2]
    c_out, per_group = w.shape[:2]
    out_size = [(m - (k - 1) * d - 1) // s + 1 for m, k, s, d in zip(x.shape[2:], w.shape[2:], strides, dilations)]
    out = np.zeros((n, c_out, *out_size))
    for b in range(n):
        for co in range(c_out):
            g = co // (c_out // groups)
            for q in np.ndindex(*out_size):
                for ci in range(per_group):
                    for t in np.ndindex(*w.shape[2:]):
                        i = tuple(qq * s + tt * d for qq, tt, s, d in zip(q, t, strides, dilations))
                        out[(b, co) + q] += x[(b, g * per_group + ci) + i] * w[(co, ci) + t]
    return out


def _transpose_output(n, k, s, d, before, after):
    return (n - 1) * s + (k - 1) * d + 1 - before - after


TRANSPOSE_1D = [
    # n, k, s, d, (before, after), torch's (padding, output_padding) or None
    (3, 3, 2, 1, (1, 1), (1, 0)),  # symmetric: padding crops 1 from each side
    (3, 3, 2, 1, (1, 0), (1, 1)),  # before > after: output_padding adds the row back at the end
    (3, 2, 2, 1, (0, 0), (0, 0)),  # the full result
    (3, 3, 2, 1, (0, -1), (0, 1)),  # after < 0: one zero row past the footprint, as output_padding
    (3, 3, 1, 3, (2, 0), (2, 2)),  # output_padding up to dilation - 1 when the dilation is the larger
    (3, 3, 2, 1, (0, 1), None),  # after > before: crop the end by hand
    (4, 3, 2, 1, (3, 0), None),  # before - after = 3 >= max(stride, dilation): crop by hand
    (3, 3, 2, 1, (0, -3), None),  # three zero rows past the footprint: zero-extend by hand
    (2, 3, 3, 2, (1, 4), None),  # both ends cropped unevenly, stride 3 and dilation 2
]


@pytest.mark.parametrize("n, k, s, d, pads, expected", TRANSPOSE_1D)
def test_transpose_translation_1d(n, k, s, d, pads, expected):
    assert torch_nn.transpose_args((pads,), (s,), (d,)) == (
        None if expected is None else ((expected[0],), (expected[1],))
    )
    rng = np.random.default_rng(n * 100 + k * 10 + s)
    x, w = rng.normal(size=(2, 3, n)), rng.normal(size=(3, 2, k))
    size = (_transpose_output(n, k, s, d, *pads),)
    got = torch_nn.conv_transpose(x, w, strides=(s,), dilations=(d,), pads=(pads,), output_size=size)
    want = transposed_by_definition(x, w, (s,), (d,), (pads,), size)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_transpose_translation_hand_computed():
    # x = [1, 2] (one channel), w = [1, 10, 100], stride 2: the full result [1, 10, 102, 20, 200] (length 5).
    x, w = np.array([[[1.0, 2.0]]]), np.array([[[1.0, 10.0, 100.0]]])
    full = [1, 10, 102, 20, 200]
    for pads, want in [
        ((0, 0), full),
        ((1, 1), full[1:4]),
        ((1, 0), full[1:]),
        ((0, 1), full[:4]),
        ((2, -1), full[2:] + [0]),
        ((0, -2), full + [0, 0]),
        ((3, -3), full[3:] + [0, 0, 0]),
    ]:
        size = (_transpose_output(2, 3, 2, 1, *pads),)
        got = torch_nn.conv_transpose(x, w, strides=(2,), dilations=(1,), pads=(pads,), output_size=size)
        assert got[0, 0].tolist() == want, pads


@pytest.mark.parametrize("pads", [((1, 1), (0, 1)), ((1, 0), (1, 1)), ((0, 1), (2, -1)), ((2, 0), (0, -2))])
def test_transpose_translation_2d(pads):
    # Axes translated independently: one axis expressible, the other not, forces the crop on both.
    n, k, s, d = (3, 2), (3, 2), (2, 1), (1, 2)
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(1, 2, *n)), rng.normal(size=(2, 3, *k))
    size = tuple(_transpose_output(*args, *p) for args, p in zip(zip(n, k, s, d), pads))
    got = torch_nn.conv_transpose(x, w, strides=s, dilations=d, pads=pads, output_size=size)
    np.testing.assert_allclose(got, transposed_by_definition(x, w, s, d, pads, size), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pads, groups", [(((0, 1), (1, 2)), 1), (((1, 1), (0, 0)), 1), (((2, 0), (0, 3)), 2)])
def test_conv_padding_translation(pads, groups):
    # F.pad lists the last axis first: distinct pads on H and W catch a swapped order.
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(2, 2, 5, 4)), rng.normal(size=(4, 2 // groups, 3, 2))
    got = torch_nn.conv(x, w, strides=(2, 1), dilations=(1, 2), pads=pads, groups=groups)
    np.testing.assert_allclose(
        got, correlated_by_definition(x, w, (2, 1), (1, 2), pads, groups), rtol=1e-12, atol=1e-12
    )


# --- minimal repros of PyTorch's own differences ----------------------------------------------------------


def test_repro_torch_rejects_kernel_larger_than_padded_empty_input():
    x, w = torch.zeros(1, 2, 0, 5), torch.zeros(4, 2, 3, 3)
    # TensorFlow: conv2d of a (1, 0, 5, 2) NHWC input, SAME -> (1, 0, 5, 4); SAME pads 1 + 1 rows: 2 < 3 taps.
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        F.conv2d(x, w, padding=(1, 1))


def test_repro_torch_rejects_zero_output_channels():
    # TensorFlow (Eigen): conv2d with a (3, 3, 2, 0) filter -> an empty (1, 5, 5, 0) output.
    with pytest.raises(RuntimeError, match="expected weight to be at least 1 at dimension 0"):
        F.conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(0, 2, 3, 3), padding=1)


def _pytorch_onednn_isa(env: Environment) -> str | None:
    """The ISA PyTorch's oneDNN uses here: the CPU's level under the same ONEDNN_MAX_CPU_ISA cap (PyTorch's own
    oneDNN log is not read)."""
    return machine.effective_isa(env.cpu, env.isa_cap)


def test_repro_onednn_channels_last_unit_width(env):
    # float32, batch 2, one channel, in NHWC memory (torch.from_numpy of an NHWC array, permuted): output one pixel
    # wide with width stride 2. oneDNN's AVX-512 kernel (PyTorch's and TensorFlow's) returns wrong values, often
    # garbage (1e30, NaN) that changes from call to call; ONEDNN_MAX_CPU_ISA=AVX2 or default NCHW strides are right.
    rng = np.random.default_rng(0)
    x_nhwc = rng.normal(size=(2, 10, 3, 1)).astype(np.float32)
    w_hwio = rng.normal(size=(4, 2, 1, 2)).astype(np.float32)
    x = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)  # strides (30, 1, 3, 1): channels-last memory
    w = torch.from_numpy(np.ascontiguousarray(w_hwio.transpose(3, 2, 0, 1)))
    want = F.conv2d(x.double(), w.double(), stride=(1, 2))
    got = F.conv2d(x, w, stride=(1, 2))
    # The adapter's copy with default strides takes the other path, which is right:
    x_default = torch_nn._to_torch(x_nhwc.transpose(0, 3, 1, 2))
    assert x_default.stride() == (30, 30, 3, 1)
    assert torch.allclose(F.conv2d(x_default, w, stride=(1, 2)).double(), want, atol=1e-4)
    if not torch.allclose(got.double(), want, atol=1e-4):
        # Wrong only in oneDNN's AVX-512 kernels (as TensorFlow's onednn_strided_unit_width_wrong_values); elsewhere
        # (AVX2, Arm) this must be right.
        assert (_pytorch_onednn_isa(env) or "").startswith("avx512"), f"wrong under {_pytorch_onednn_isa(env)}"
        pytest.xfail(
            f"PyTorch {torch.__version__} (oneDNN {_pytorch_onednn_isa(env)}): channels-last, one-pixel-wide "
            f"output, width stride 2 -> wrong by {(got.double() - want).abs().max().item():.3g}"
        )


def test_repro_onednn_bfloat16_unit_width(env):
    # bfloat16, default NCHW strides, integer values whose every partial sum is exact in bfloat16; the output is
    # (2, 1, 7, 1): one pixel wide, width stride 3. oneDNN's AMX kernel returns rows 0, 3, 6 of each image and then
    # zeros (it steps through the rows with the width stride); ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 is right.
    x = (torch.arange(2 * 2 * 8 * 5) % 7 - 3).reshape(2, 2, 8, 5).to(torch.bfloat16)
    w = (torch.arange(1 * 2 * 2 * 3) % 5 - 2).reshape(1, 2, 2, 3).to(torch.bfloat16)
    want = F.conv2d(x.double(), w.double(), stride=(1, 3))
    assert want.flatten().tolist() == [13, -9, 11, -4, -5, -6, 0, 11, -4, -5, -6, 0, 13, -9]
    got = F.conv2d(x, w, stride=(1, 3))
    if not torch.equal(got.double(), want):
        # Wrong only in oneDNN's AMX kernel (torch_onednn_bfloat16_width_strided_wrong_values); without AMX, right.
        assert (_pytorch_onednn_isa(env) or "").startswith("avx512_core_amx"), f"wrong under {_pytorch_onednn_isa(env)}"
        pytest.xfail(
            f"PyTorch {torch.__version__} (oneDNN {_pytorch_onednn_isa(env)}, bfloat16): one-pixel-wide "
            f"output, width stride 3 -> {got.flatten().tolist()}"
        )


def test_dtypes_are_those_torch_convolves():
    # int32 is left out because PyTorch's CPU transposed convolution has no integer kernel.
    with pytest.raises((RuntimeError, NotImplementedError), match="not implemented for 'Int'"):
        F.conv_transpose2d(torch.ones(1, 1, 2, 2, dtype=torch.int32), torch.ones(1, 1, 2, 2, dtype=torch.int32))
    assert set(torch_nn.TORCH_DTYPES) == set(DTYPES) - {"int32"}
