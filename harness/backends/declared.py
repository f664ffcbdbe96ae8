"""A user's own kernel as a backend: ``module:function``, or a declaration file (YAML or TOML).

``module:function`` (``--backend naive_conv:conv2d``) is one function named after the ``tf.nn`` op it implements
and with that op's ``tf.nn`` signature; ``module:function=op`` names the op when the function is named otherwise
(``--backend mykernels:conv_nhwc=conv2d``). It takes whatever data_format the case uses and TensorFlow's filter
layouts (HWIO, HWIM, HWOI, WIO), and correlates like TensorFlow.

A declaration file says what a module implements and in which conventions; the harness translates every case
into them (``harness.backends``)::

    name: naive_nchw          # optional, default: the file's stem
    module: naive_conv        # importable module
    path: [.]                 # optional: directories put in front of sys.path, relative to this file
    convention: tf            # tf (functions with tf.nn signatures, the default) | explicit
    data_format: NCHW         # the data layout the functions take and return (1-D ops drop H); optional for
                              # convention tf (default: whatever the case uses), required for explicit
    kernel: correlation       # correlation (default) | convolution (the harness rotates filters by 180 degrees)
    dtypes: [float32, float64]  # optional, default every dtype the harness knows
    filter_layouts: {conv2d: OIHW, conv2d_transpose: IOHW}   # optional: "op" or "op.operand" -> layout
                              # (convention explicit: also "conv", "grouped", "transposed", see below)
    ops:                      # tf.nn op -> function name in the module (or a list of ops: same-named functions)
      conv2d: conv2d_nchw
      depthwise_conv2d: depthwise_nchw
    description: text         # optional

Filter layout letters (``harness.conv.layouts``): H, W, I (input channels), O (output channels), M (depthwise
multiplier). A layout must use exactly the letters of the filter TensorFlow takes: conv2d, atrous_conv2d and the
pointwise filter of separable_conv2d ``{H, W, I, O}``; conv2d_transpose ``{H, W, O, I}`` (O = the transposed
convolution's output channels, so PyTorch's ``[in, out, kh, kw]`` is ``IOHW``); depthwise_conv2d and the depthwise
filter of separable_conv2d ``{H, W, I, M}`` in convention tf; conv1d ``{W, I, O}`` (or a 2-D spelling, H dropped).
In convention explicit the functions are one grouped convolution and one transposed convolution, and their
weights have a layout per *role*, declared under the role's key: ``conv`` (``{H, W, I, O}``: every op of kind
conv, and separable_conv2d's pointwise filter), ``grouped`` (``{H, W, I, O}``: a depthwise filter passed as a
grouped convolution's weight ``[in_c * multiplier, 1, kh, kw]``; default: the ``conv`` layout) and ``transposed``
(``{H, W, O, I}``). An op's own key overrides its role's (a depthwise op's uses ``{H, W, I, O}`` too); a
separable op has no keys of its own (its two filters take the ``grouped`` and ``conv`` layouts). Undeclared
roles take TensorFlow's layouts (HWIO; HWOI).

The module is imported with the ``path`` directories first, then the current directory (put at the front of
``sys.path`` when missing), then whatever is installed: it must be importable from one of them. A module already
imported under the same name (earlier in the same process) is reused.

Every problem is a ``harness.backends.BackendError`` naming the spec or the file and the field.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness import ops
from harness.backends.base import CONVENTIONS, ORIENTATIONS, Backend, BackendError, rank_format
from harness.conv.dtypes import DTYPES

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package (a dependency there)
    import tomli as tomllib  # type: ignore[import-not-found]  # installed there only (a 3.10 marker)

FIELDS = (
    "name",
    "module",
    "path",
    "convention",
    "data_format",
    "kernel",
    "dtypes",
    "filter_layouts",
    "ops",
    "description",
)
DATA_FORMATS = ("NHWC", "NCHW")
SUFFIXES = (".yaml", ".yml", ".toml")


# --- importing ------------------------------------------------------------------------------


def _import(module: str, where: str, extra_paths: Sequence[str] = ()):
    """Import ``module`` with ``extra_paths`` and then the current directory at the front of sys.path."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    for directory in reversed(list(extra_paths)):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    importlib.invalidate_caches()  # a module written after the interpreter started (a test's tmp_path)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            searched = ", ".join([*extra_paths, cwd])
            raise BackendError(
                f"{where}: module {module!r} not found ({exc}); it must be importable from the "
                f"current directory ({searched}) or installed"
            ) from None
        raise BackendError(f"{where}: importing module {module!r} failed: {exc}") from None
    except ImportError as exc:
        raise BackendError(f"{where}: importing module {module!r} failed: {exc}") from None
    except Exception as exc:  # the user's module raised (or has a syntax error) while being imported
        raise BackendError(f"{where}: importing module {module!r} raised {type(exc).__name__}: {exc}") from None


def _function(mod, name: str, where: str) -> Callable:
    fn = getattr(mod, name, None)
    if fn is None:
        public = sorted(n for n, v in vars(mod).items() if callable(v) and not n.startswith("_"))
        hint = f"; it defines {', '.join(public[:12])}" if public else ""
        raise BackendError(
            f"{where}: module {mod.__name__!r} ({getattr(mod, '__file__', '?')}) has no function {name!r}{hint}"
        )
    if not callable(fn):
        raise BackendError(f"{where}: {mod.__name__}.{name} is not a function (it is a {type(fn).__name__})")
    return fn


# --- module:function --------------------------------------------------------------------------


def from_function(spec: str) -> Backend:
    """``module:function`` or ``module:function=op``: one tf.nn-style function as a backend named ``spec``."""
    where = f"backend {spec!r}"
    module, sep, rest = spec.partition(":")
    function, _, op = rest.partition("=")
    if not sep or not module or not function:
        raise BackendError(f"{where}: expected module:function or module:function=op")
    if not all(part.isidentifier() for part in module.split(".")):
        raise BackendError(f"{where}: {module!r} is not a module name (dotted Python identifiers)")
    if not function.isidentifier():
        raise BackendError(f"{where}: {function!r} is not a function name")
    if op:
        if op not in ops.OPS:
            raise BackendError(f"{where}: unknown op {op!r} after '='; known ops: {', '.join(ops.OPS)}")
    elif function in ops.OPS:
        op = function
    else:
        raise BackendError(
            f"{where}: function {function!r} is not named after a tf.nn op; name the op: "
            f"{module}:{function}=OP with OP one of {', '.join(ops.OPS)}"
        )
    fn = _function(_import(module, where), function, where)
    return Backend(
        spec,
        {op: fn},
        convention="tf",
        data_format=None,
        dtypes=tuple(DTYPES),
        description=f"{module}.{function} as tf.nn.{op} (tf.nn signature, the case's data_format, "
        f"TensorFlow's filter layouts)",
    )


# --- declaration files ----------------------------------------------------------------------


def _read(path: Path) -> dict:
    if path.suffix not in SUFFIXES:
        raise BackendError(f"{path}: a backend declaration is a .yaml, .yml or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackendError(f"{path}: no such backend declaration file") from None
    except OSError as exc:
        raise BackendError(f"{path}: cannot read: {exc}") from None
    try:
        doc = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "YAML"
        raise BackendError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(doc, dict):
        raise BackendError(
            f"{path}: a backend declaration is a mapping with module, ops, ... (got {type(doc).__name__})"
        )
    return doc


def _filter_operands(op: str) -> list[ops.Operand]:
    return [o for o in ops.get(op).operands if o.kind == "filter"]


def _allowed_letters(op: str, operand: ops.Operand, convention: str) -> set[str]:
    """The letters a declared layout of this filter must use (the 2-D spelling; 1-D ops may drop H)."""
    if convention == "explicit" and operand.layout == "HWIM":  # passed as a grouped convolution's weight
        return set("HWIO")
    return set(operand.layout) | ({"H"} if "H" not in operand.layout else set())


def _check_layout(where: str, key: str, layout: Any, op: str, operand: ops.Operand, convention: str) -> None:
    fld = f"{where}: field 'filter_layouts.{key}'"
    if not isinstance(layout, str) or not layout:
        raise BackendError(f"{fld}: a layout is a string of axis letters, got {layout!r}")
    letters = _allowed_letters(op, operand, convention)
    one_d = "H" not in operand.layout
    ok = set(layout) == letters and len(layout) == len(letters)
    if one_d:
        ok = ok or (set(layout) == letters - {"H"} and len(layout) == len(letters) - 1)
    if not ok:
        spelled = "".join(sorted(letters - ({"H"} if one_d else set()), key="HWIOM".index))
        what = {"I": "input channels", "O": "output channels", "M": "depthwise multiplier", "H": "height", "W": "width"}
        meaning = ", ".join(f"{c} {what[c]}" for c in spelled)
        grouped = (
            " (in convention explicit a depthwise filter is passed as a grouped weight "
            "[in_c * multiplier, 1, kh, kw]: O and I, not M)"
            if convention == "explicit" and operand.layout == "HWIM"
            else ""
        )
        also = " (or the 2-D spelling with H, which is dropped)" if one_d else ""
        of = f"the {op} role's weight" if op in ROLES else f"{op}'s {operand.name}"
        raise BackendError(
            f"{fld}: {layout!r} is not a layout of {of}: it needs each of "
            f"the letters {spelled}{also} exactly once ({meaning}); TensorFlow's own is "
            f"{operand.layout!r}{grouped}"
        )


ROLES = {"conv": "HWIO", "grouped": "HWIO", "transposed": "HWOI"}  # convention explicit: role -> TF's letters


def _filter_layouts(where: str, raw: Any, convention: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BackendError(
            f"{where}: field 'filter_layouts': must be a mapping of op or op.operand -> layout, got {raw!r}"
        )
    out = {}
    for key, layout in raw.items():
        key = str(key)
        if convention == "explicit" and key in ROLES:
            role_operand = ops.Operand(key, "filter", ROLES[key])
            _check_layout(where, key, layout, key, role_operand, convention)
            out[key] = layout
            continue
        op, _, operand_name = key.partition(".")
        if op not in ops.OPS:
            roles = f"; in convention explicit also the roles {', '.join(ROLES)}" if convention == "explicit" else ""
            raise BackendError(
                f"{where}: field 'filter_layouts.{key}': unknown op {op!r}; known ops: {', '.join(ops.OPS)}{roles}"
            )
        filters = _filter_operands(op)
        if operand_name and operand_name not in {o.name for o in filters}:
            raise BackendError(
                f"{where}: field 'filter_layouts.{key}': {op} has no filter operand "
                f"{operand_name!r}; its filters: {', '.join(o.name for o in filters)}"
            )
        kind = ops.get(op).kind
        if convention == "explicit" and (kind == "separable" or (kind == "depthwise" and operand_name)):
            raise BackendError(
                f"{where}: field 'filter_layouts.{key}': in convention explicit a depthwise "
                f"filter is declared as '{op}' or by its role 'grouped' (the grouped weight), and "
                f"a separable op's filters by their roles 'grouped' and 'conv'"
            )
        targets = [o for o in filters if not operand_name or o.name == operand_name]
        if len({o.layout for o in targets}) > 1:
            raise BackendError(
                f"{where}: field 'filter_layouts.{key}': {op}'s filters "
                f"({', '.join(f'{o.name} {o.layout}' for o in targets)}) have different letters; "
                f"declare each as '{op}.<operand>'"
            )
        _check_layout(where, key, layout, op, targets[0], convention)
        out[key] = layout
    return out


def _ops(where: str, raw: Any, mod, module: str) -> dict[str, Callable]:
    if raw is None:
        raise BackendError(f"{where}: field 'ops': missing field (a mapping of tf.nn op -> function name)")
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        raw = {op: op for op in raw}
    if not isinstance(raw, dict) or not raw:
        raise BackendError(
            f"{where}: field 'ops': must be a non-empty mapping of tf.nn op -> function name "
            f"(or a list of ops implemented by functions of the same names), got {raw!r}"
        )
    out = {}
    for op, name in raw.items():
        if op not in ops.OPS:
            raise BackendError(f"{where}: field 'ops.{op}': unknown op {op!r}; known ops: {', '.join(ops.OPS)}")
        if not isinstance(name, str) or not name.isidentifier():
            raise BackendError(f"{where}: field 'ops.{op}': must be a function name in module {module!r}, got {name!r}")
        out[op] = _function(mod, name, f"{where}: field 'ops.{op}'")
    return out


def load(path: Path) -> Backend:
    """The backend a declaration file (YAML or TOML, schema in the module docstring) declares."""
    path = Path(path)
    doc = _read(path)
    where = str(path)
    unknown = sorted(set(map(str, doc)) - set(FIELDS))
    if unknown:
        raise BackendError(f"{where}: field {unknown[0]!r}: unknown field; allowed: {', '.join(FIELDS)}")

    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise BackendError(f"{where}: field 'name': must be a non-empty string, got {name!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise BackendError(f"{where}: field 'description': must be a string")

    convention = doc.get("convention", "tf")
    if convention not in CONVENTIONS:
        raise BackendError(f"{where}: field 'convention': must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    kernel = doc.get("kernel", "correlation")
    if kernel not in ORIENTATIONS:
        raise BackendError(f"{where}: field 'kernel': must be one of {', '.join(ORIENTATIONS)}, got {kernel!r}")
    data_format = doc.get("data_format")
    if data_format is not None and data_format not in DATA_FORMATS:
        raise BackendError(
            f"{where}: field 'data_format': must be NHWC or NCHW (1-D ops drop H: NWC or NCW), got {data_format!r}"
        )
    if data_format is None and convention == "explicit":
        raise BackendError(
            f"{where}: field 'data_format': required for convention explicit (its functions get "
            f"no data_format argument): NCHW or NHWC"
        )

    dtypes = doc.get("dtypes", list(DTYPES))
    if isinstance(dtypes, str):
        dtypes = [dtypes]
    if not isinstance(dtypes, list) or not dtypes or not all(isinstance(d, str) for d in dtypes):
        raise BackendError(f"{where}: field 'dtypes': must be a non-empty list of dtype names, got {dtypes!r}")
    for dt in dtypes:
        if dt not in DTYPES:
            raise BackendError(f"{where}: field 'dtypes': unknown dtype {dt!r}; expected some of {', '.join(DTYPES)}")
    if len(set(dtypes)) != len(dtypes):
        raise BackendError(
            f"{where}: field 'dtypes': listed twice: {sorted({d for d in dtypes if dtypes.count(d) > 1})}"
        )

    filter_layouts = _filter_layouts(where, doc.get("filter_layouts"), convention)

    module = doc.get("module")
    if module is None:
        raise BackendError(f"{where}: field 'module': missing field (the module that holds the functions)")
    if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
        raise BackendError(
            f"{where}: field 'module': must be a module name (dotted Python identifiers), got {module!r}"
        )
    paths = doc.get("path", [])
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BackendError(
            f"{where}: field 'path': must be a list of directories (relative to {path.parent}), got {paths!r}"
        )
    directories = []
    for p in paths:
        directory = (path.parent / p).resolve()
        if not directory.is_dir():
            raise BackendError(f"{where}: field 'path': no such directory {p!r} (resolved to {directory})")
        directories.append(str(directory))

    mod = _import(module, f"{where}: field 'module'", directories)
    functions = _ops(where, doc.get("ops"), mod, module)
    if convention == "tf" and data_format is not None:
        for op in functions:
            spec = ops.get(op)
            fmt = rank_format(data_format, len(spec.formats[0]))
            if fmt not in spec.formats:
                raise BackendError(
                    f"{where}: field 'ops.{op}': {op} takes data_format {' or '.join(spec.formats)} "
                    f"only, so a convention-tf backend with data_format {data_format} cannot run it "
                    f"(use convention explicit, or a separate declaration without data_format)"
                )
    return Backend(
        name.strip(),
        functions,
        convention=convention,
        data_format=data_format,
        filter_layouts=filter_layouts,
        orientation=kernel,
        dtypes=tuple(dtypes),
        description=description.strip() or f"{module} ({convention} convention, declared in {path})",
    )
