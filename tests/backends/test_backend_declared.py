"""A user's own kernel as a backend (harness/backends/declared.py), and the worked example in examples/naive_kernel/.

``module:function`` specs and declaration files resolve through ``harness.backends.resolve``; every mistake in
either is a ``BackendError`` naming the spec or the file and the field. End to end, ``backends.run`` on registry
cases must give the reference's output for a tf-convention NCHW / OIHW kernel, an explicit-convention kernel and
the example kernel (NumPy only: no TensorFlow here).
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support import ROOT

from harness import backends, ops
from harness.backends import BackendError, declared
from harness.check.runner import against_reference
from harness.conv.dtypes import dtype_of
from harness.conv.tolerance import bound_for
from harness.registry.cases import Case, operand_arrays
from harness.registry.loader import load_file

EXAMPLE = ROOT / "examples" / "naive_kernel"
_names = itertools.count()


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch):
    """Resolving a backend puts directories on sys.path: each test gets them removed afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def module_name(monkeypatch):
    """A fresh module name (imported modules are cached by name), forgotten after the test."""
    names = []

    def make(stem: str = "user_kernel") -> str:
        name = f"{stem}_{next(_names)}_{id(names) % 10_000}"
        names.append(name)
        return name

    yield make
    for name in names:
        sys.modules.pop(name, None)


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# --- kernels written for these tests ---------------------------------------------------------

TF_NCHW_KERNEL = """
import numpy as np

def _spatial(v):
    if v is None:
        return (1, 1)
    if np.ndim(v) == 0:
        return (int(v), int(v))
    v = [int(a) for a in v]
    return tuple(v * 2) if len(v) == 1 else tuple(v) if len(v) == 2 else (v[2], v[3])

def _pads(padding, sizes, k_eff, strides):
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if padding == "SAME":
        pads = []
        for n, k, s in zip(sizes, k_eff, strides):
            total = max(0, (-(-n // s) - 1) * s + k - n)
            pads.append((total // 2, total - total // 2))
        return pads
    return [tuple(padding[2]), tuple(padding[3])]

def _conv(x, w_groups, strides, padding, dilations):
    # x [N, C, H, W]; w_groups [G, O/G, C/G, kh, kw]: a grouped correlation, float64 accumulation
    strides, dilations = _spatial(strides), _spatial(dilations)
    k = w_groups.shape[-2:]
    k_eff = [(kk - 1) * d + 1 for kk, d in zip(k, dilations)]
    pads = _pads(padding, x.shape[2:], k_eff, strides)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), *pads])
    out_hw = [max(0, (xp.shape[2 + i] - k_eff[i]) // strides[i] + 1) if xp.shape[2 + i] >= k_eff[i] else 0
              for i in range(2)]
    if padding == "SAME":
        out_hw = [-(-n // s) for n, s in zip(x.shape[2:], strides)]
    g, og, cg = w_groups.shape[:3]
    out = np.zeros((x.shape[0], g, og, *out_hw))
    if out.size:
        xg = xp.reshape(x.shape[0], g, cg, *xp.shape[2:])
        for i, j in np.ndindex(*k):
            sl = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip((i, j), dilations, out_hw, strides))
            out += np.einsum("ngchw,goc->ngohw", xg[(slice(None), slice(None), slice(None), *sl)],
                             w_groups[:, :, :, i, j].astype(np.float64))
    return out.reshape(x.shape[0], g * og, *out_hw).astype(x.dtype)

def conv2d_nchw(input, filters, strides, padding, data_format="NCHW", dilations=None):
    assert data_format == "NCHW", data_format
    return _conv(input, filters[None], strides, padding, dilations)          # OIHW

def depthwise_nchw(input, filter, strides, padding, data_format="NCHW", dilations=None):
    assert data_format == "NCHW", data_format
    c, m = filter.shape[:2]                                                   # IMHW
    return _conv(input, filter[:, :, None], strides, padding, dilations)
"""

EXPLICIT_KERNEL = """
import numpy as np

def conv(x, w, *, strides, dilations, pads, groups):
    # x [N, C, *spatial] (NCHW / NCW), w [O, C/groups, *k] (OIHW / OIW)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), *pads])
    k = w.shape[2:]
    out_sizes = [(xp.shape[2 + i] - (k[i] - 1) * dilations[i] - 1) // strides[i] + 1 for i in range(len(k))]
    n, c, o = x.shape[0], x.shape[1], w.shape[0]
    out = np.zeros((n, groups, o // groups, *out_sizes))
    if out.size:
        xg = xp.reshape(n, groups, c // groups, *xp.shape[2:])
        wg = w.astype(np.float64).reshape(groups, o // groups, w.shape[1], *k)
        for taps in np.ndindex(*k):
            sl = tuple(slice(t * d, t * d + (m - 1) * s + 1, s) for t, d, m, s in zip(taps, dilations, out_sizes, strides))
            patch = xg[(slice(None), slice(None), slice(None), *sl)]
            out += np.einsum("ngc...,goc->ngo...", patch, wg[(slice(None), slice(None), slice(None), *taps)])
    return out.reshape(n, o, *out_sizes).astype(x.dtype)

def conv_transpose(x, w, *, strides, dilations, pads, output_size):
    # x [N, I, *spatial], w [I, O, *k] (IOHW); scatter every input pixel through the kernel, then crop
    k = w.shape[2:]
    n_in = x.shape[2:]
    full = [(n - 1) * s + (kk - 1) * d + 1 for n, s, kk, d in zip(n_in, strides, k, dilations)]
    length = [max(f, b + size) for f, (b, _), size in zip(full, pads, output_size)]
    out = np.zeros((x.shape[0], w.shape[1], *length))
    if x.size and w.size:
        for taps in np.ndindex(*k):
            sl = tuple(slice(t * d, t * d + (m - 1) * s + 1, s) for t, d, m, s in zip(taps, dilations, n_in, strides))
            out[(slice(None), slice(None), *sl)] += np.einsum(
                "ni...,io->no...", x.astype(np.float64), w[(slice(None), slice(None), *taps)].astype(np.float64))
    crop = tuple(slice(b, b + size) for (b, _), size in zip(pads, output_size))
    return out[(slice(None), slice(None), *crop)].astype(x.dtype)
"""


# --- registry cases ----------------------------------------------------------------------


def registry_cases(*files: str) -> list[Case]:
    paths = [ROOT / f for f in files] if files else sorted((ROOT / "cases").rglob("*.yaml"))
    return [c for p in paths for c in load_file(p, ROOT) if isinstance(c, Case) and c.computes]


def check_against_reference(backend, case: Case, dtype: str) -> None:
    result = against_reference(case, dtype, backend)
    assert result.ok, f"{case.id}[{dtype}]: {result.line()}"


def features(case: Case) -> set[str]:
    spec = ops.get(case.op)
    padding = case.attrs.get("padding")
    found = {spec.data_format(case.attrs), padding if isinstance(padding, str) else "explicit"}
    strides = case.attrs.get("strides", case.attrs.get("stride", 1))
    dilations = case.attrs.get("dilations", case.attrs.get("rate", 1))
    if any(v > 1 for v in np.ravel(strides)):
        found.add("strided")
    if dilations is not None and any(v > 1 for v in np.ravel(dilations)):
        found.add("dilated")
    return found


# --- module:function ---------------------------------------------------------------------


def test_module_function_named_after_its_op(tmp_path, monkeypatch, module_name):
    name = module_name()
    write(
        tmp_path,
        f"{name}.py",
        """
        from harness.conv import reference

        def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None):
            return reference.conv2d(input, filters, strides, padding, data_format, dilations)
    """,
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    backend = backends.resolve(f"{name}:conv2d")  # importable because the current directory is put on sys.path
    assert str(tmp_path) in sys.path
    assert backend.name == f"{name}:conv2d"
    assert list(backend.ops) == ["conv2d"] and backend.convention == "tf" and backend.data_format is None
    assert backend.covers("conv2d", "bfloat16") is None and backend.covers("conv1d", "float32")
    for case in registry_cases("cases/seeds.yaml"):
        if case.op == "conv2d":
            check_against_reference(backend, case, "float32")


def test_module_function_with_its_op_named(tmp_path, monkeypatch, module_name):
    name = module_name()
    write(
        tmp_path,
        f"{name}.py",
        """
        from harness.conv import reference

        def my_depthwise(input, filter, strides, padding, data_format=None, dilations=None):
            return reference.depthwise_conv2d(input, filter, strides, padding, data_format, dilations)
    """,
    )
    monkeypatch.chdir(tmp_path)
    backend = backends.resolve(f"{name}:my_depthwise=depthwise_conv2d")
    assert list(backend.ops) == ["depthwise_conv2d"]
    for case in registry_cases("cases/seeds.yaml"):
        if case.op == "depthwise_conv2d":
            check_against_reference(backend, case, "float64")


@pytest.mark.parametrize(
    "spec_suffix, source, expected",
    [
        (":conv2d", None, "not found"),
        (":conv2d", "def other(): pass\n", "has no function 'conv2d'"),
        (":my_conv", "def my_conv(): pass\n", "not named after a tf.nn op"),
        (":my_conv=conv4d", "def my_conv(): pass\n", "unknown op 'conv4d'"),
        (":conv2d", "raise RuntimeError('no GPU here')\n", "raised RuntimeError: no GPU here"),
        (":conv2d", "import a_module_nobody_has_9f2\n", "No module named 'a_module_nobody_has_9f2'"),
        (":conv2d", "conv2d = 3\n", "is not a function"),
        (":", "", "expected module:function"),
        (":conv-2d", "", "not a function name"),
    ],
)
def test_module_function_errors_name_the_spec(tmp_path, monkeypatch, module_name, spec_suffix, source, expected):
    name = module_name()
    if source is not None:
        write(tmp_path, f"{name}.py", source)
    monkeypatch.chdir(tmp_path)
    spec = name + spec_suffix
    with pytest.raises(BackendError) as err:
        backends.resolve(spec)
    message = str(err.value)
    assert message.startswith(f"backend {spec!r}: "), message
    assert expected in message, message


def test_a_missing_module_says_where_it_looked(tmp_path, monkeypatch, module_name):
    monkeypatch.chdir(tmp_path)
    name = module_name()
    with pytest.raises(BackendError) as err:
        declared.from_function(f"{name}:conv2d")
    assert f"No module named '{name}'" in str(err.value)  # the ImportError's own message
    assert str(tmp_path) in str(err.value) and "installed" in str(err.value)


# --- declaration files -------------------------------------------------------------------

GOOD_YAML = """
    module: {module}
    path: [kernels]
    convention: tf
    data_format: NCHW
    kernel: correlation
    dtypes: [float32, float64]
    filter_layouts: {{conv2d: OIHW, depthwise_conv2d: IMHW}}
    ops:
      conv2d: conv2d_nchw
      depthwise_conv2d: depthwise_nchw
    description: a test kernel
"""


@pytest.fixture
def tf_kernel(tmp_path, module_name):
    """A tf-convention NCHW / OIHW kernel module in tmp_path/kernels, and a declaration of it in tmp_path."""
    name = module_name("nchw_kernel")
    (tmp_path / "kernels").mkdir()
    write(tmp_path / "kernels", f"{name}.py", TF_NCHW_KERNEL)
    return name


def test_a_yaml_declaration(tmp_path, tf_kernel, monkeypatch):
    path = write(tmp_path, "my_kernel.yaml", GOOD_YAML.format(module=tf_kernel))
    monkeypatch.chdir(ROOT)  # the path field is relative to the declaration, not to the current directory
    backend = backends.resolve(str(path))
    assert backend.name == "my_kernel"  # the file's stem
    assert backend.convention == "tf" and backend.data_format == "NCHW" and backend.orientation == "correlation"
    assert backend.dtypes == ("float32", "float64") and backend.description == "a test kernel"
    assert dict(backend.filter_layouts) == {"conv2d": "OIHW", "depthwise_conv2d": "IMHW"}
    assert backend.covers("conv2d", "float16") and backend.covers("conv2d", "float64") is None


def test_a_toml_declaration_relative_to_the_root(tmp_path, tf_kernel):
    write(
        tmp_path,
        "k.toml",
        f"""
        name = "nchw_toml"
        module = "{tf_kernel}"
        path = ["kernels"]
        data_format = "NCHW"
        kernel = "correlation"
        [filter_layouts]
        conv2d = "OIHW"
        [ops]
        conv2d = "conv2d_nchw"
    """,
    )
    backend = backends.resolve("k.toml", root=tmp_path)
    assert backend.name == "nchw_toml" and list(backend.ops) == ["conv2d"] and backend.convention == "tf"
    assert set(backend.dtypes) == {"float16", "bfloat16", "float32", "float64", "int32"}


def test_ops_as_a_list_of_same_named_functions(tmp_path, module_name):
    name = module_name()
    write(tmp_path, f"{name}.py", "def conv2d(*a, **k): pass\ndef conv1d(*a, **k): pass\n")
    path = write(tmp_path, "b.yaml", f"module: {name}\npath: [.]\nops: [conv2d, conv1d]\n")
    assert sorted(declared.load(path).ops) == ["conv1d", "conv2d"]


def _declaration_error(tmp_path: Path, text: str, suffix: str = ".yaml") -> str:
    path = tmp_path / f"decl{suffix}"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(BackendError) as err:
        backends.resolve(str(path))
    message = str(err.value)
    assert message.startswith(str(path)), message  # every message names the file
    return message


BASE = {
    "module": "{module}",
    "path": "[kernels]",
    "data_format": "NCHW",
    "ops": "{{conv2d: conv2d_nchw, depthwise_conv2d: depthwise_nchw}}",
}


def _yaml(**fields) -> str:
    merged = {**BASE, **fields}
    return "".join(f"{k}: {v}\n" for k, v in merged.items() if v is not None)


@pytest.mark.parametrize(
    "fields, where, what",
    [
        ({"colour": "blue"}, "field 'colour'", "unknown field"),
        ({"convention": "pytorch"}, "field 'convention'", "tf, explicit"),
        ({"kernel": "flipped"}, "field 'kernel'", "correlation, convolution"),
        ({"data_format": "NHCW"}, "field 'data_format'", "NHWC or NCHW"),
        ({"convention": "explicit", "data_format": None}, "field 'data_format'", "required for convention explicit"),
        ({"dtypes": "[float32, float8]"}, "field 'dtypes'", "unknown dtype 'float8'"),
        ({"dtypes": "[]"}, "field 'dtypes'", "non-empty"),
        ({"name": "''"}, "field 'name'", "non-empty"),
        ({"filter_layouts": "{conv2d: OIHM}"}, "field 'filter_layouts.conv2d'", "exactly once"),
        ({"filter_layouts": "{conv2d: OIH}"}, "field 'filter_layouts.conv2d'", "'HWIO'"),
        ({"filter_layouts": "{conv2d: OIHWO}"}, "field 'filter_layouts.conv2d'", "exactly once"),
        ({"filter_layouts": "{conv2d: 7}"}, "field 'filter_layouts.conv2d'", "string of axis letters"),
        (
            {"filter_layouts": "{depthwise_conv2d: OIHW}"},
            "field 'filter_layouts.depthwise_conv2d'",
            "M depthwise multiplier",
        ),
        ({"filter_layouts": "{conv2d_transpose: IOHM}"}, "field 'filter_layouts.conv2d_transpose'", "'HWOI'"),
        ({"filter_layouts": "{conv1d: OIHM}"}, "field 'filter_layouts.conv1d'", "2-D spelling"),
        ({"filter_layouts": "{conv4d: OIDHW}"}, "field 'filter_layouts.conv4d'", "unknown op 'conv4d'"),
        ({"filter_layouts": "{conv2d.weights: OIHW}"}, "field 'filter_layouts.conv2d.weights'", "no filter operand"),
        ({"filter_layouts": "{separable_conv2d: HWIO}"}, "field 'filter_layouts.separable_conv2d'", "declare each"),
        ({"filter_layouts": "[OIHW]"}, "field 'filter_layouts'", "mapping"),
        (
            {"convention": "explicit", "filter_layouts": "{depthwise_conv2d: IMHW}"},
            "field 'filter_layouts.depthwise_conv2d'",
            "grouped weight",
        ),
        (
            {"convention": "explicit", "filter_layouts": "{depthwise_conv2d.filter: OIHW}"},
            "field 'filter_layouts.depthwise_conv2d.filter'",
            "declared as 'depthwise_conv2d' or by its role 'grouped'",
        ),
        (
            {"convention": "explicit", "filter_layouts": "{separable_conv2d: OIHW}"},
            "field 'filter_layouts.separable_conv2d'",
            "by their roles 'grouped' and 'conv'",
        ),
        (
            {"convention": "explicit", "filter_layouts": "{transposed: OIHM}"},
            "field 'filter_layouts.transposed'",
            "the transposed role's weight",
        ),
        ({"convention": "tf", "filter_layouts": "{conv: OIHW}"}, "field 'filter_layouts.conv'", "unknown op 'conv'"),
        ({"ops": "{conv4d: conv2d_nchw}"}, "field 'ops.conv4d'", "unknown op 'conv4d'"),
        ({"ops": "{conv2d: conv2d_nhwc}"}, "field 'ops.conv2d'", "has no function 'conv2d_nhwc'"),
        ({"ops": "{conv2d: 12}"}, "field 'ops.conv2d'", "function name"),
        ({"ops": None}, "field 'ops'", "missing field"),
        ({"ops": "{}"}, "field 'ops'", "non-empty"),
        ({"ops": "{atrous_conv2d: conv2d_nchw}"}, "field 'ops.atrous_conv2d'", "takes data_format NHWC only"),
        ({"module": None}, "field 'module'", "missing field"),
        ({"module": "'not a module'"}, "field 'module'", "dotted Python identifiers"),
        ({"module": "no_such_kernel_module_b71"}, "field 'module'", "No module named 'no_such_kernel_module_b71'"),
        ({"path": "[nowhere]"}, "field 'path'", "no such directory 'nowhere'"),
        ({"path": "{a: 1}"}, "field 'path'", "list of directories"),
        ({"description": "[1]"}, "field 'description'", "string"),
    ],
)
def test_declaration_errors_name_the_file_and_the_field(tmp_path, tf_kernel, fields, where, what):
    text = _yaml(**fields).replace("{module}", tf_kernel).replace("{{", "{").replace("}}", "}")
    message = _declaration_error(tmp_path, text)
    assert where in message, message
    assert what in message, message


def test_explicit_grouped_depthwise_layout_is_accepted(tmp_path, tf_kernel):
    text = _yaml(
        convention="explicit",
        filter_layouts="{depthwise_conv2d: OIHW, conv2d: OIHW, conv1d: OIW, "
        "grouped: IOHW, conv: OIHW, transposed: IOHW}",
    )
    path = write(tmp_path, "e.yaml", text.replace("{module}", tf_kernel).replace("{{", "{").replace("}}", "}"))
    backend = declared.load(path)
    assert backend.filter_layouts["depthwise_conv2d"] == "OIHW" and backend.filter_layouts["grouped"] == "IOHW"
    spec = ops.get("separable_conv2d")  # no keys of its own: its roles'
    assert backends.explicit_layout(backend, spec, "grouped", spec.filter) == "IOHW"
    assert backends.explicit_layout(backend, ops.get("depthwise_conv2d"), "grouped", spec.filter) == "OIHW"


@pytest.mark.parametrize(
    "text, suffix, what",
    [
        ("module: [unclosed\n", ".yaml", "not valid YAML"),
        ("module = \n", ".toml", "not valid TOML"),
        ("- module: x\n", ".yaml", "a backend declaration is a mapping"),
    ],
)
def test_unreadable_declarations(tmp_path, text, suffix, what):
    assert what in _declaration_error(tmp_path, text, suffix)


def test_a_missing_declaration_file(tmp_path):
    with pytest.raises(BackendError, match="no such backend declaration file"):
        backends.resolve(str(tmp_path / "absent.yaml"))


# --- end to end through backends.run ---------------------------------------------------------

E2E_FILES = (
    "cases/seeds.yaml",
    "cases/examples.yaml",
    "cases/known_divergences.yaml",
    "cases/sweeps/conv2d.yaml",
    "cases/sweeps/conv2d_pairwise.yaml",
    "cases/sweeps/depthwise.yaml",
    "cases/sweeps/depthwise_pairwise.yaml",
)


def check_cases(backend, cases) -> tuple[int, set]:
    """Check ``backend`` against the reference on ``cases`` at float32 and float64: (items checked, features seen)."""
    seen, checked = set(), 0
    for case in cases:
        for dtype in ("float32", "float64"):
            if dtype in case.dtypes:
                check_against_reference(backend, case, dtype)
                checked += 1
        seen |= features(case)
    return checked, seen


def test_tf_convention_nchw_oihw_kernel_agrees_with_the_reference(tmp_path, tf_kernel):
    path = write(tmp_path, "k.yaml", GOOD_YAML.format(module=tf_kernel))
    backend = backends.resolve(str(path))
    checked, seen = check_cases(backend, [c for c in registry_cases(*E2E_FILES) if c.op in backend.ops])
    assert checked > 100
    assert {"NHWC", "NCHW", "SAME", "VALID", "explicit", "strided", "dilated"} <= seen


def test_tf_convention_kernel_gets_converted_operands_and_attributes(tmp_path, module_name):
    """What the function receives: NCHW data, OIHW filters, full-rank lists reordered, data_format set."""
    name = module_name()
    write(
        tmp_path,
        f"{name}.py",
        """
        import numpy as np
        calls = []

        def conv2d(input, filters, strides, padding, data_format, dilations=None):
            calls.append((input.shape, filters.shape, strides, padding, data_format, dilations))
            return np.zeros((input.shape[0], filters.shape[0], 2, 3), input.dtype)
    """,
    )
    path = write(
        tmp_path,
        "k.yaml",
        f"module: {name}\npath: [.]\ndata_format: NCHW\nfilter_layouts: {{conv2d: OIHW}}\nops: [conv2d]\n",
    )
    backend = declared.load(path)
    x = np.zeros((1, 4, 6, 3), np.float32)  # NHWC
    w = np.zeros((3, 3, 3, 5), np.float32)  # HWIO
    attrs = {"strides": [1, 2, 2, 1], "padding": [[0, 0], [1, 1], [0, 2], [0, 0]], "dilations": [1, 1, 1, 1]}
    out = backends.run(backend, "conv2d", {"input": x, "filters": w}, attrs, "float32")
    call = sys.modules[name].calls[0]
    assert call == ((1, 3, 4, 6), (5, 3, 3, 3), [1, 1, 2, 2], [[0, 0], [0, 0], [1, 1], [0, 2]], "NCHW", [1, 1, 1, 1])
    assert out.shape == (1, 2, 3, 5)  # back in NHWC


def test_explicit_convention_kernel_agrees_with_the_reference(tmp_path, module_name):
    name = module_name("explicit_kernel")
    write(tmp_path, f"{name}.py", EXPLICIT_KERNEL)
    path = write(
        tmp_path,
        "explicit.yaml",
        f"""
        name: explicit_nchw
        module: {name}
        path: [.]
        convention: explicit
        data_format: NCHW
        filter_layouts: {{conv: OIHW, transposed: IOHW}}
        ops: {{conv2d: conv, depthwise_conv2d: conv, separable_conv2d: conv, atrous_conv2d: conv, conv1d: conv,
              conv2d_transpose: conv_transpose}}
    """,
    )
    backend = backends.resolve(str(path))
    assert backend.convention == "explicit" and backend.name == "explicit_nchw"
    per_op: dict[str, int] = {}
    for case in (c for c in registry_cases() if c.op in backend.ops):
        if per_op.get(case.op, 0) >= 12:  # a dozen of each op keeps this quick
            continue
        per_op[case.op] = per_op.get(case.op, 0) + 1
        for dtype in ("float32", "float64"):
            if dtype in case.dtypes:
                check_against_reference(backend, case, dtype)
    assert set(per_op) == set(backend.ops), per_op


def test_explicit_convention_rotates_filters_for_a_convolution_kernel(tmp_path, module_name):
    name = module_name("flipping_kernel")
    write(
        tmp_path,
        f"{name}.py",
        EXPLICIT_KERNEL
        + """

def true_conv(x, w, **kw):
    return conv(x, w[..., ::-1, ::-1], **kw)   # a kernel that convolves: flips what it is given
""",
    )
    path = write(
        tmp_path,
        "flip.yaml",
        f"module: {name}\npath: [.]\nconvention: explicit\ndata_format: NCHW\n"
        f"kernel: convolution\nfilter_layouts: {{conv: OIHW}}\n"
        f"ops: {{conv2d: true_conv, depthwise_conv2d: true_conv}}\n",
    )
    backend = backends.resolve(str(path))
    for case in registry_cases("cases/seeds.yaml"):
        if case.op in backend.ops:
            check_against_reference(backend, case, "float64")


# --- the worked example ------------------------------------------------------------------


def _small(case: Case, limit: int = 40_000) -> bool:
    """Cases whose output (and input) are small: the example kernel loops over output pixels in Python."""
    spec = ops.get(case.op)
    sizes = [int(np.prod(t.shape)) for t in case.inputs.values()]
    data = next(o for o in spec.operands if o.kind == "data")
    return max(sizes) <= limit and int(np.prod(case.inputs[data.name].shape)) <= limit


def test_the_example_kernel_uses_numpy_only():
    for name in ("naive_conv.py", "naive_conv_buggy.py"):
        source = (EXAMPLE / name).read_text(encoding="utf-8")
        imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
        assert imports <= {"numpy", "__future__", "pathlib"}, (name, imports)  # pathlib: the buggy copy reads the other


def test_the_example_declaration_resolves():
    backend = backends.resolve("examples/naive_kernel/backend.yaml", root=ROOT)
    assert backend.name == "naive_nchw" and sorted(backend.ops) == ["conv2d", "depthwise_conv2d"]
    assert backend.data_format == "NCHW" and dict(backend.filter_layouts) == {
        "conv2d": "OIHW",
        "depthwise_conv2d": "IMHW",
    }


def test_the_example_kernel_agrees_with_the_reference_on_the_registry():
    backend = backends.resolve("examples/naive_kernel/backend.yaml", root=ROOT)
    checked, seen = check_cases(backend, [c for c in registry_cases() if c.op in backend.ops and _small(c)])
    assert checked > 300
    assert {"NHWC", "NCHW", "SAME", "VALID", "explicit", "strided", "dilated"} <= seen


def test_the_buggy_example_fails_only_where_same_padding_is_asymmetric_and_is_diagnosed():
    from harness.check import diagnose

    backend = backends.resolve("examples/naive_kernel/buggy.yaml", root=ROOT)
    failing, passing = [], []
    for case in registry_cases("cases/seeds.yaml", "cases/sweeps/conv2d.yaml", "cases/realistic.yaml"):
        if case.op != "conv2d" or not _small(case, 200_000):
            continue
        try:
            check_against_reference(backend, case, "float32")
            passing.append(case)
        except AssertionError:
            failing.append(case)
    assert failing and passing
    assert all(c.attrs.get("padding") == "SAME" for c in failing)
    assert any(c.attrs.get("padding") == "SAME" for c in passing)  # an odd kernel at stride 1 pads symmetrically
    # A shifted output (right shape, wrong values) is traced to its convention.
    case = (
        next(c for c in failing if c.name == "resnet50_stem_7x7_s2")
        if any(c.name == "resnet50_stem_7x7_s2" for c in failing)
        else failing[0]
    )
    spec = ops.get(case.op)
    arrays = operand_arrays(case, "float32")
    out = backends.run(backend, case.op, arrays, case.attrs, "float32")
    ref = spec.call(spec.reference, arrays, case.attrs)
    if out.shape == ref.shape:
        bound = bound_for(spec.reference, arrays, case.attrs, dtype_of("float32"))
        assert "same_symmetric_k_div_2" in diagnose.explain(case.op, arrays, case.attrs, out, bound, backend.name)
