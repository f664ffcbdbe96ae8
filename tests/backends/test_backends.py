"""The backend interface (harness/backends/__init__.py) and the backend check (runner.run_backend).

The translations are checked by backends written here from the definitions, in conventions other than
TensorFlow's: one with tf.nn signatures taking NCHW data, OIHW filters and *convolution* kernels, and one in the
explicit convention (geometry resolved, pads given). Both must reproduce the reference on every computing case of
the registry's seeds, examples and sweeps: a wrong layout conversion, rotation, attribute reordering, depthwise
grouping or transpose padding would break some of them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from support import ROOT

from harness import backends, ops
from harness.check.runner import run_backend
from harness.conv import layouts
from harness.conv.dtypes import dtype_of
from harness.conv.tolerance import bound_for, compare
from harness.registry.cases import operand_arrays, parse_case
from harness.registry.divergences import parse_divergence
from harness.registry.loader import computing_cases, load_file
from harness.tf.environment import Environment

FILES = [
    ROOT / "cases" / "seeds.yaml",
    ROOT / "cases" / "examples.yaml",
    *sorted((ROOT / "cases" / "sweeps").glob("*.yaml")),
]


# --- a tf-convention backend in other conventions: NCHW data, OIHW filters, convolution kernels ----------------


def _nchw_convolution_backend() -> backends.Backend:
    """The reference, called the way a PyTorch-minded user's kernels would be: each function receives NCHW data
    and OIHW-style filters already rotated by 180 degrees (a true convolution), with data_format="NCHW"."""

    def wrap(op):
        spec = ops.get(op)
        filter_layouts = {o.name: backend_layout(op, o) for o in spec.operands if o.kind == "filter"}

        def fn(*operands, **attrs):
            arrays = []
            for o, a in zip(spec.operands, operands):
                if o.kind == "filter":  # undo what the harness must have done: OIHW-style layout, rotated
                    a = layouts.convert(layouts.rotate_180(a, filter_layouts[o.name]), filter_layouts[o.name], o.layout)
                arrays.append(a)
            return spec.reference(*arrays, **attrs)

        return fn

    def backend_layout(op, operand):
        """Channels first, in reverse: HWIO -> OIHW, HWIM -> MIHW, HWOI -> IOHW, WIO -> OIW."""
        spatial = layouts.spatial(operand.layout)
        return "".join(reversed([c for c in operand.layout if c not in spatial])) + spatial

    table = {
        f"{op}.{o.name}": backend_layout(op, o)
        for op, spec in ops.OPS.items()
        for o in spec.operands
        if o.kind == "filter"
    }
    return backends.Backend(
        "nchw-convolution",
        {op: wrap(op) for op in ops.OPS if op != "atrous_conv2d"},
        data_format="NCHW",
        filter_layouts=table,
        orientation="convolution",
    )


# --- an explicit-convention backend, from the definitions ---------------------------------------------------


def _explicit_conv(x_nchw, w_oihw, *, strides, dilations, pads, groups):
    """out[n, o, p] = sum over i in o's group and taps t of x_padded[n, i, p * s + t * d] * w[o, i, t]."""
    x = np.pad(x_nchw.astype(np.float64), [(0, 0), (0, 0), *pads])
    n, c = x.shape[:2]
    o_total, i_per_group = w_oihw.shape[:2]
    kernel = w_oihw.shape[2:]
    out_sizes = [(size - (k - 1) * d - 1) // s + 1 for size, k, d, s in zip(x.shape[2:], kernel, dilations, strides)]
    out = np.zeros((n, o_total, *out_sizes))
    per_group = o_total // groups
    for o in range(o_total):
        g = o // per_group
        for taps in itertools.product(*(range(k) for k in kernel)):
            window = tuple(
                slice(t * d, t * d + (m - 1) * s + 1, s) for t, d, s, m in zip(taps, dilations, strides, out_sizes)
            )
            patch = x[(slice(None), slice(g * i_per_group, (g + 1) * i_per_group), *window)]
            out[:, o] += np.tensordot(w_oihw[(o, slice(None), *taps)].astype(np.float64), patch, axes=(0, 1))
    return out.astype(x_nchw.dtype)


def _explicit_conv_transpose(x_nchw, w_iohw, *, strides, dilations, pads, output_size):
    """Scatter every input pixel through the kernel into the full output, then cut (before, after) per axis."""
    n, c_in = x_nchw.shape[:2]
    c_out = w_iohw.shape[1]
    kernel = w_iohw.shape[2:]
    full = [(m - 1) * s + (k - 1) * d + 1 for m, s, k, d in zip(x_nchw.shape[2:], strides, kernel, dilations)]
    extra = [max(0, -after) for _, after in pads]
    out = np.zeros((n, c_out, *(f + e for f, e in zip(full, extra))))
    for pos in itertools.product(*(range(m) for m in x_nchw.shape[2:])):
        for taps in itertools.product(*(range(k) for k in kernel)):
            at = tuple(p * s + t * d for p, s, t, d in zip(pos, strides, taps, dilations))
            out[(slice(None), slice(None), *at)] += np.einsum(
                "ni,io->no",
                x_nchw[(slice(None), slice(None), *pos)].astype(np.float64),
                w_iohw[(slice(None), slice(None), *taps)].astype(np.float64),
            )
    cut = tuple(slice(before, before + size) for (before, _), size in zip(pads, output_size))
    return out[(slice(None), slice(None), *cut)].astype(x_nchw.dtype)


def _explicit_backend() -> backends.Backend:
    return backends.explicit_backend(
        "explicit-numpy",
        _explicit_conv,
        _explicit_conv_transpose,
        data_format="NCHW",
        filter_layouts={"conv": "OIHW", "transposed": "IOHW"},
    )


def _disagreements(backend: backends.Backend, dtypes=("float64",)) -> list[str]:
    failures = []
    for case in computing_cases(FILES, ROOT):
        spec = ops.get(case.op)
        for dtype in (d for d in dtypes if d in case.dtypes):
            arrays = operand_arrays(case, dtype)
            attrs = spec.resolved(arrays, case.attrs)
            try:
                want = spec.call(spec.reference, arrays, attrs)
            except ValueError:
                continue  # configurations the reference rejects are error contracts' business
            try:
                got = backends.run(backend, case.op, arrays, attrs, dtype)
            except backends.NotCovered:
                continue
            result = compare(
                backend.name, got, "reference", want, bound_for(spec.reference, arrays, attrs, dtype_of(dtype))
            )
            if not result.ok:
                failures.append(f"{case.id}[{dtype}]: {result.line()}")
    return failures


def test_a_tf_convention_backend_in_nchw_with_convolution_kernels_reproduces_the_reference():
    assert _disagreements(_nchw_convolution_backend()) == []


def test_an_explicit_convention_backend_reproduces_the_reference():
    assert _disagreements(_explicit_backend()) == []


def test_the_explicit_transpose_pads_can_extend_past_the_last_footprint():
    # Input 2 pixels, kernel 3, stride 2, VALID: the full result has (2-1)*2 + 3 = 5 pixels; output_shape 6 is
    # also reachable (the forward conv of 6 pixels has 2 outputs), so the harness passes after = -1: one zero row.
    x = np.array([[[1.0, 2.0]]])  # NCW
    w = np.array([[[1.0, 10.0, 100.0]]])  # IOW
    out = _explicit_conv_transpose(x, w, strides=(2,), dilations=(1,), pads=((0, -1),), output_size=(6,))
    assert out.tolist() == [[[1.0, 10.0, 102.0, 20.0, 200.0, 0.0]]]


def test_depthwise_as_grouped_orders_channels_c_major():
    w_hwim = np.arange(2 * 2 * 3 * 2).reshape(2, 2, 3, 2)  # 3 channels, multiplier 2
    grouped = layouts.depthwise_as_grouped(w_hwim, "OIHW")
    assert grouped.shape == (6, 1, 2, 2)
    for c, m in itertools.product(range(3), range(2)):
        assert np.array_equal(grouped[c * 2 + m, 0], w_hwim[:, :, c, m])


def test_convert_axis_list_reorders_full_rank_attributes():
    assert layouts.convert_axis_list([1, 2, 3, 1], "NHWC", "NCHW") == [1, 1, 2, 3]
    assert layouts.convert_axis_list([[0, 0], [1, 2], [3, 4], [0, 0]], "NHWC", "NCHW") == [
        [0, 0],
        [0, 0],
        [1, 2],
        [3, 4],
    ]
    with pytest.raises(ValueError):
        layouts.convert_axis_list([1, 2, 3], "NHWC", "NCHW")


# --- run_backend: statuses ----------------------------------------------------------------------------------


def _case(name: str, file: str = "seeds.yaml"):
    return next(c for c in load_file(ROOT / "cases" / file, ROOT) if c.name == name)


def _symmetric_same(backend: backends.Backend) -> backends.Backend:
    """A classic porting bug: SAME padding split evenly, with the odd pixel before instead of after."""

    def conv(x, w, *, strides, dilations, pads, groups):
        pads = tuple((after, before) for before, after in pads)
        return _explicit_conv(x, w, strides=strides, dilations=dilations, pads=pads, groups=groups)

    return backends.Backend(
        "odd-pixel-first",
        {"conv2d": conv},
        convention="explicit",
        data_format="NCHW",
        filter_layouts={"conv2d": "OIHW"},
    )


@pytest.mark.slow
@pytest.mark.tensorflow
def test_run_backend_statuses():
    env = Environment.current()
    good = _explicit_backend()
    assert run_backend(_case("conv2d_same_2x5x5"), "float32", good, (), env).status == "passed"
    contract = next(c for c in load_file(ROOT / "cases" / "errors.yaml", ROOT))
    assert run_backend(contract, "float32", good, (), env).status == "skipped"
    skipped = run_backend(_case("conv2d_same_2x5x5"), "int32", _symmetric_same(good), (), env)
    assert skipped.status == "passed" or skipped.status == "skipped"
    assert run_backend(_case("transpose_stride2_same"), "float32", _symmetric_same(good), (), env).status == "skipped"

    # 6 pixels, 3-tap kernel, stride 2, SAME: 3 outputs, total padding (3-1)*2 + 3 - 6 = 1, which TensorFlow puts
    # after (bottom / right); the buggy backend puts it before
    case = parse_case(
        "t.yaml",
        {
            "name": "odd_total_padding",
            "op": "conv2d",
            "attrs": {"strides": 2, "padding": "SAME"},
            "inputs": {
                "input": {"layout": "HW", "generate": {"dist": "integers", "shape": [6, 6]}},
                "filters": {"layout": "HW", "generate": {"dist": "integers", "shape": [3, 3]}},
            },
        },
        0,
    )
    bad = run_backend(case, "float64", _symmetric_same(good), (), env)
    assert bad.status == "failed" and bad.errors[0].startswith("odd-pixel-first wrong_values"), bad.report()
    entry = parse_divergence(
        "t.yaml",
        {
            "id": "odd_pixel_first",
            "backend": "odd-pixel-first",
            "kind": "wrong_result",
            "summary": "s",
            "when": {"op": "conv2d", "padding": "SAME"},
            "tensorflow_versions": ">=0",
            "tensorflow_does": ["wrong_values"],
            "evidence": "e",
            "repro": "r",
        },
        0,
    )
    assert run_backend(case, "float64", _symmetric_same(good), (entry,), env).status == "xfailed"
    # the same entry does not excuse TensorFlow, nor another backend
    assert run_backend(case, "float64", good, (entry,), env).status == "passed"


@pytest.mark.tensorflow
def test_graph_modes_share_tensorflow_s_refusals():
    env = Environment.current()
    case = _case("transpose_float64_dilated", "known_divergences.yaml")  # eager TensorFlow raises for this
    outcome = run_backend(case, "float64", backends.resolve("tensorflow-function"), (), env)
    assert outcome.status == "passed" and any("as TensorFlow does here" in n for n in outcome.notes), outcome.report()


def test_resolve_rejects_what_is_not_a_backend():
    with pytest.raises(backends.BackendError, match="not a backend"):
        backends.resolve("nonsense")
    for name in backends.BUILTIN:
        assert backends.resolve(name).name == name
