"""Standalone repro scripts: one case at one dtype as a Python file that needs only NumPy and TensorFlow.

``script(case, dtype, env)`` writes a script fit to paste into an upstream TensorFlow bug report. It

* names the machine it was found on (CPU, oneDNN's ISA, the kernel TensorFlow ran) and sets
  ``TF_ENABLE_ONEDNN_OPTS``, any ``ONEDNN_MAX_CPU_ISA`` cap and the thread pools the way the harness ran, before
  importing TensorFlow;
* builds every operand exactly as the op receives it (after the harness's layout conversion and kernel rotation):
  a NumPy literal that round-trips bit for bit in the dtype, or, for a large generated operand, the generator's
  own NumPy code followed by the same transpose / flip ``harness.layouts`` applies;
* calls the same public ``tf.nn`` function with the same arguments as ``harness.wrappers`` (``output_shape``
  resolved as ``harness.runner`` resolves it);
* for a case that computes a value, compares TensorFlow's output with the harness's reference output (embedded
  exactly, or as shape and checksums when large) under the harness's tolerance bound and prints a verdict line,
  ``verdict: AGREES`` or ``verdict: DIFFERS``; for an error contract, prints what TensorFlow raised (or that it
  returned) against the class the case declares.

The script always exits 0: it is a report, not a test. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness import ops
from harness.check.prepare import Prepared, prepare
from harness.conv import layouts
from harness.conv.dtypes import dtype_of, is_integer
from harness.registry.cases import Case, Generator, operand_array
from harness.tf import wrappers
from harness.tf.environment import Environment

LITERAL_LIMIT = 4096  # elements: above this a generated operand is emitted as code, an output as checksums
WIDTH = 116  # line length of the generated script

# How the script spells each dtype: (NumPy dtype of the literal, TensorFlow cast applied after, if any).
# NumPy has no bfloat16, so bfloat16 operands are float32 arrays (exact: bfloat16 is a subset) cast by TensorFlow.
_SPELLING = {
    "float16": ("np.float16", None),
    "bfloat16": ("np.float32", "tf.bfloat16"),
    "float32": ("np.float32", None),
    "float64": ("np.float64", None),
    "int32": ("np.int32", None),
}


# --- values ------------------------------------------------------------------------------------


def _literal_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype the script builds an array of ``dtype`` in (float32 for bfloat16)."""
    return np.dtype(_SPELLING[dtype][0].removeprefix("np."))


def _number(value, dtype: str) -> str:
    """One value as Python source that, parsed as a float and stored in the literal's dtype, gives it back exactly."""
    if is_integer(dtype_of(dtype)):
        return str(int(value))
    target = _literal_dtype(dtype).type
    f = float(value)
    if np.isnan(f):
        return "np.nan"
    if np.isinf(f):
        return "np.inf" if f > 0 else "-np.inf"
    if f == 0:
        return "-0.0" if np.signbit(f) else "0"
    if f == int(f) and abs(f) < 2**53:
        return str(int(f))
    # Shortest first (the dtype's own repr), then float32's (bfloat16 values are float32 values), then float64's,
    # which is always exact: every dtype here is a subset of float64.
    candidates = [repr(f)]
    if dtype != "float64":
        candidates = [str(dtype_of(dtype).type(value)), str(np.float32(value))] + candidates
    for text in candidates:
        try:
            if target(float(text)) == target(value):
                return text
        except ValueError:  # pragma: no cover - NumPy spells every finite value as a float literal
            continue
    return repr(f)  # pragma: no cover - repr(float) round-trips in float64, and every dtype here fits in it


def _wrap(items: list[str], indent: str = "    ") -> str:
    """Comma-separated ``items`` wrapped at WIDTH, each line indented."""
    return textwrap.fill(
        ", ".join(items),
        width=WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _array_literal(values: np.ndarray, dtype: str) -> str:
    """``np.array([...], dtype=np.float32).reshape([...])`` holding exactly ``values`` (for bfloat16: in float32)."""
    items = [_number(v, dtype) for v in np.asarray(values).reshape(-1).tolist()]
    np_dtype = _SPELLING[dtype][0]
    shape = list(values.shape)
    if not items:
        return f"np.zeros({shape}, dtype={np_dtype})"
    if len(items) <= 16 and sum(len(i) + 2 for i in items) < 60:
        return f"np.array([{', '.join(items)}], dtype={np_dtype}).reshape({shape})"
    return f"np.array([\n{_wrap(items)}\n], dtype={np_dtype}).reshape({shape})"


def _py(value: Any) -> str:
    """A plain attribute value (int, float, str, None, nested lists) as Python source."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    raise ValueError(f"cannot write attribute value {value!r} as Python source")


# --- operands ----------------------------------------------------------------------------------


def _op_layout(case: Case, name: str) -> str:
    """The layout the op takes operand ``name`` in (the declared layout for a raw operand)."""
    spec = ops.get(case.op)
    t = case.inputs[name]
    return t.layout if t.raw else spec.operand(name).op_layout(spec.data_format(case.attrs))


def variable_name(case: Case, name: str) -> str:
    """The script's variable for an operand: its tf.nn argument name and layout, e.g. ``filters_hwio``."""
    return f"{name}_{_op_layout(case, name).lower()}"


def _generator_call(gen: Generator) -> str:
    """NumPy source computing ``gen.make()`` exactly (float64, in the declared layout)."""
    p, shape = gen.params, tuple(gen.shape)
    rng = f"np.random.default_rng({gen.seed})"
    if gen.dist == "normal":
        return f"{rng}.normal({p['mean']!r}, {p['std']!r}, {shape})"
    if gen.dist == "uniform":
        return f"{rng}.uniform({p['low']!r}, {p['high']!r}, {shape})"
    if gen.dist == "integers":
        return f"{rng}.integers({p['low']!r}, {p['high']!r}, {shape}, endpoint=True).astype(np.float64)"
    n = int(np.prod(shape))
    return f"{p['start']!r} + {p['step']!r} * np.arange({n}, dtype=np.float64).reshape({shape})"


def _convert_steps(shape: tuple[int, ...], src: str, dst: str) -> tuple[list[int] | None, list[int] | None]:
    """(reshape target or None, transpose axes or None): ``harness.layouts.convert`` from ``src`` to ``dst``.

    The same steps as convert: drop size-1 axes only ``src`` has, append size-1 axes for letters only ``dst``
    has, then transpose into ``dst`` order.
    """
    kept = [c for c in src if c in dst]
    expanded = [n for c, n in zip(src, shape) if c in dst] + [1] * (len(dst) - len(kept))
    order = kept + [c for c in dst if c not in kept]
    axes = [order.index(c) for c in dst]
    return (expanded if expanded != list(shape) else None), (axes if axes != list(range(len(dst))) else None)


def _generated_code(case: Case, name: str, dtype: str) -> str:
    """Statements assigning the operand from its generator, converted and rotated as ``operand_array`` does."""
    t = case.inputs[name]
    gen, var, target = t.generator, variable_name(case, name), _op_layout(case, name)
    if gen is None:  # operand_code calls this for generated operands only
        raise ValueError(f"{case.id}: operand {name!r} has no generator")
    params = ", ".join(f"{k}={v!r}" for k, v in gen.params.items())
    lines = _comment(
        f"{name}: {gen.dist}({params}), seed {gen.seed}, in layout {t.layout} {list(gen.shape)}, "
        "generated as the harness does"
    )
    lines.append(f"{var} = {_generator_call(gen)}")
    if not t.raw:
        reshape, axes = _convert_steps(gen.shape, t.layout, target)
        if reshape is not None:
            lines.append(f"{var} = {var}.reshape({reshape})")
        if axes is not None:
            lines.append(f"{var} = np.transpose({var}, {axes})  # {t.layout} -> {target}")
        if t.kernel == "convolution":
            spatial = tuple(i for i, c in enumerate(target) if c in layouts.spatial(target))
            lines.append(f"{var} = np.flip({var}, axis={spatial})  # a convolution kernel: rotated 180 degrees")
    lines.append(f"{var} = {var}.astype({_SPELLING[dtype][0]})")
    return "\n".join(lines)


def operand_code(case: Case, name: str, dtype: str) -> str:
    """NumPy-only statements assigning ``variable_name(case, name)`` the operand as the op receives it.

    Equal, bit for bit, to ``harness.cases.operand_array(case, name, dtype)``, except that a bfloat16 operand is
    its (exact) float32 values: the script casts it to tf.bfloat16 afterwards.
    """
    t = case.inputs[name]
    var = variable_name(case, name)
    # Special values change operands after generating them (harness.registry.special): their values, as literals.
    specials = any(spec.special is not None for spec in case.inputs.values())
    if t.generator is not None and not specials and int(np.prod(t.shape)) > LITERAL_LIMIT:
        return _generated_code(case, name, dtype)
    return f"{var} = {_array_literal(operand_array(case, name, dtype), dtype)}"


# --- the script --------------------------------------------------------------------------------


def _comment(text: str, prefix: str = "# ") -> list[str]:
    lines = []
    for paragraph in text.strip().splitlines() or [""]:
        lines += textwrap.wrap(paragraph, WIDTH - len(prefix), break_long_words=False, break_on_hyphens=False) or [""]
    return [(prefix + line).rstrip() for line in lines]


def _call(case: Case, attrs: Mapping) -> str:
    """``tf.nn.<op>(operands..., attr=value, ...)``: operands positional, attributes by keyword (tf.nn's names);
    a ``tf.raw_ops`` function takes every argument by keyword."""
    spec = ops.get(case.op)
    if spec.function.startswith("tf.raw_ops.") or spec.positional:  # keywords, in the signature's order
        values = {
            **{o.name: variable_name(case, o.name) for o in spec.operands},
            **{k: _py(v) for k, v in attrs.items()},
        }
        first = spec.positional or tuple(o.name for o in spec.operands)
        args = [f"{k}={values[k]}" for k in first] + [f"{k}={v}" for k, v in values.items() if k not in first]
    else:
        args = [variable_name(case, o.name) for o in spec.operands] + [f"{k}={_py(v)}" for k, v in attrs.items()]
    one_line = f"output = {spec.function}({', '.join(args)})"
    if len(one_line) <= WIDTH:
        return one_line
    return f"output = {spec.function}(\n" + "".join(f"    {a},\n" for a in args) + ")"


def _kernel(case: Case, dtype: str, attrs: Mapping, env: Environment) -> bool | None:
    """Whether TensorFlow runs an Eigen kernel for the case here (None: not measured)."""
    spec = ops.get(case.op)
    return env.eigen(spec.tf_kernels, dtype, spec.tf_padding_kind(attrs))


def _header(case: Case, dtype: str, env: Environment, eigen: bool | None, finding: str) -> list[str]:
    settings = wrappers.settings()
    mode = "on" if env.onednn else "off"
    kind = "an error contract" if case.expect_error or case.reference_decides else "a computed output"
    cpu = env.cpu.model if env.cpu else "an unrecorded CPU"
    isa = f", oneDNN ISA {env.onednn_isa}" if env.onednn_isa else ""
    cap = f", ONEDNN_MAX_CPU_ISA={env.isa_cap}" if env.isa_cap else ""
    kernel = {True: "Eigen's", False: "oneDNN's", None: "an unmeasured"}[eigen]
    lines = [
        '"""Reproduce ' + f"{case.id}[{dtype}]",
        "",
        f"{ops.get(case.op).function}, {kind}.",
        "Written by tf-conv-harness (harness/repro.py); needs only NumPy and TensorFlow.",
        f"The harness ran it with TensorFlow {env.tensorflow_version} and NumPy "
        f"{(env.probe.numpy if env.probe else None) or settings['tensorflow_numpy']}, "
        f"oneDNN {mode} (TF_ENABLE_ONEDNN_OPTS={int(env.onednn)}),",
        f"{settings['intra_op_threads']} intra-op / {settings['inter_op_threads']} inter-op threads, "
        f"on {cpu}{isa}{cap}:",
        f"TensorFlow ran {kernel} kernel. What TensorFlow does can depend on the CPU (docs/divergences.md: "
        '"Which machine you run on").',
        "Prints a verdict line; always exits 0.",
        '"""',
    ]
    if finding.strip():
        lines += ["", "# What the harness found:"] + _comment(finding, "#   ")
    if case.description.strip():
        lines += ["", "# The case's description:"] + _comment(case.description, "#   ")
    return lines


def _prologue(env: Environment) -> list[str]:
    settings = wrappers.settings()
    cap = (
        [
            "# The cap on the ISA oneDNN may use that the harness ran under (read at oneDNN's first use).",
            f'os.environ["ONEDNN_MAX_CPU_ISA"] = "{env.isa_cap}"',
        ]
        if env.isa_cap
        else []
    )
    return [
        "",
        "import os",
        "import sys",
        "",
        "# Read by TensorFlow when it is imported: the oneDNN mode the harness ran in.",
        f'os.environ["TF_ENABLE_ONEDNN_OPTS"] = "{int(env.onednn)}"',
        *cap,
        "",
        "import numpy as np  # noqa: E402",
        "import tensorflow as tf  # noqa: E402",
        "",
        "# The harness pins TensorFlow's thread pools (results may depend on the summation order).",
        f"tf.config.threading.set_intra_op_parallelism_threads({int(settings['intra_op_threads'])})",
        f"tf.config.threading.set_inter_op_parallelism_threads({int(settings['inter_op_threads'])})",
        'print("TensorFlow", tf.__version__, "NumPy", np.__version__,',
        '      "TF_ENABLE_ONEDNN_OPTS=" + os.environ["TF_ENABLE_ONEDNN_OPTS"])',
    ]


def _operands(case: Case, dtype: str) -> list[str]:
    spec = ops.get(case.op)
    layouts = ", ".join(f"{o.name} {_op_layout(case, o.name)}" for o in spec.operands)
    lines = [""] + _comment(f"The operands exactly as the harness passes them to {spec.function} ({dtype}; {layouts}):")
    for o in spec.operands:
        lines.append(operand_code(case, o.name, dtype))
    cast = _SPELLING[dtype][1]
    if cast:
        lines.append("# NumPy has no bfloat16: the float32 arrays above hold bfloat16 values exactly; cast them.")
        lines += [
            f"{variable_name(case, o.name)} = tf.cast({variable_name(case, o.name)}, {cast})" for o in spec.operands
        ]
    return lines


def _raised_lines(indent: str = "    ") -> list[str]:
    return [
        f"{indent}first_line = (str(exc).strip().splitlines() or [''])[0]",
        f'{indent}print(f"TensorFlow raised {{type(exc).__name__}}: {{first_line}}")',
    ]


ANY_ERROR = "any error"  # what a case the reference decides expects of TensorFlow where the reference rejects it


def _error_contract(case: Case, eigen: bool | None, attrs: Mapping, ref_error: ValueError | None) -> list[str]:
    expect = case.expect_error
    if expect is None and not (case.reference_decides and ref_error is not None):  # error contracts only
        raise ValueError(f"{case.id}: not an error contract")
    if expect is None:  # the reference decides: it rejects the input, and any TensorFlow error agrees
        want, kernel = ANY_ERROR, "any kernel: the reference decides, and every error class agrees"
    else:
        declared = expect.tensorflow_error(eigen)
        if declared is None:  # the kernel was not measured: either class the case declares
            want, kernel = " or ".join(sorted(set(expect.tensorflow.values()))), "whichever kernel runs"
        else:
            want, kernel = declared, "Eigen's kernel" if eigen else "oneDNN's kernel"
    if ref_error is not None:
        reference = f"The harness's reference raises ValueError: {ref_error}"
    else:
        reference = "The harness's reference ACCEPTS this configuration, although the case expects ValueError."
    lines = (
        ["", "# Expected behaviour:"]
        + _comment(reference, "#   ")
        + _comment(f"The case declares that TensorFlow raises {want} ({kernel}).", "#   ")
    )
    lines += [
        f'EXPECTED_ERROR = "{want}"',
        f'print("expected: TensorFlow raises {want} (the reference raises ValueError)")',
        "",
        "# TensorFlow may abort the whole process here (under oneDNN, for some invalid inputs): the line below shows",
        "# that the call was reached.",
        f'print("calling {ops.get(case.op).function} ...", flush=True)',
        "try:",
        textwrap.indent(_call(case, attrs), "    "),
        "except Exception as exc:  # every TensorFlow error class is an outcome to report",
        *_raised_lines(),
        f'    agrees = EXPECTED_ERROR == "{ANY_ERROR}" or type(exc).__name__ in EXPECTED_ERROR.split(" or ")',
        '    verdict = "AGREES" if agrees else "DIFFERS"',
        '    print(f"verdict: {verdict} (TensorFlow raised {type(exc).__name__}; the case declares {EXPECTED_ERROR})")',
        "else:",
        '    print(f"TensorFlow returned a value of shape {list(output.shape)} instead of raising")',
        '    print(f"verdict: DIFFERS (TensorFlow returned a value; the case declares {EXPECTED_ERROR})")',
    ]
    return lines


def _reference_block(
    ref: np.ndarray, dtype: str, bound_max: float, describe: str, per_element: np.ndarray
) -> list[str]:
    lines = [
        "",
        "# The harness's reference output (NumPy, accumulating in float64, rounded to the dtype) and the",
        "# largest per-element tolerance: " + describe,
    ]
    if ref.size <= LITERAL_LIMIT:
        return lines + [f"reference = {_array_literal(ref, dtype)}", f"BOUND = {bound_max!r}"]
    # Too large to embed: shape and checksums. If every element is within its bound b, then
    # |sum(tf) - sum(ref)| <= sum(b) and |sum(tf^2) - sum(ref^2)| <= sum(b * (2 |ref| + b)).
    r = ref.astype(np.float64)
    sum_bound = float(per_element.sum())
    sq_bound = float((per_element * (2 * np.abs(r) + per_element)).sum())
    return lines + [
        f"# The output has {ref.size} elements, too many to embed: its shape and float64 checksums instead.",
        f"REFERENCE_SHAPE = {list(ref.shape)}",
        f"REFERENCE_SUM = {float(r.sum())!r}",
        f"REFERENCE_SUM_OF_SQUARES = {float((r * r).sum())!r}",
        f"BOUND = {bound_max!r}",
        "# If every element is within its bound b: |sum(tf) - sum(ref)| <= sum(b), and",
        "# |sum(tf^2) - sum(ref^2)| <= sum(b * (2 |ref| + b)).",
        f"SUM_BOUND = {sum_bound!r}",
        f"SUM_OF_SQUARES_BOUND = {sq_bound!r}",
    ]


_COMPARE_EMBEDDED = """
output = tf.cast(output, tf.float64).numpy()
want = reference.astype(np.float64)
print("TensorFlow output shape:", list(output.shape))
print("reference output shape: ", list(want.shape))
if output.shape != want.shape:
    print("max |diff|: n/a (the shapes differ)")
    print(f"bound:      {BOUND:.3g}")
    print("verdict: DIFFERS (TensorFlow's output shape is not the reference's)")
else:
    with np.errstate(invalid="ignore"):
        same = (output == want) | (np.isnan(output) & np.isnan(want))  # equal infinities and NaNs agree
        diff = np.where(same, 0.0, np.abs(output - want))
    max_diff = float(np.where(np.isnan(diff), np.inf, diff).max(initial=0.0))
    print(f"max |diff|: {max_diff:.3g}")
    print(f"bound:      {BOUND:.3g}")
    if max_diff <= BOUND:
        print("verdict: AGREES (every element within the bound)")
    else:
        print(f"verdict: DIFFERS (max |diff| {max_diff:.3g} exceeds the bound {BOUND:.3g})")
"""

_COMPARE_CHECKSUMS = """
output = tf.cast(output, tf.float64).numpy()
print("TensorFlow output shape:", list(output.shape))
print("reference output shape: ", REFERENCE_SHAPE)
print("max |diff|: n/a (the reference is not embedded; comparing checksums)")
print(f"bound:      {BOUND:.3g}")
if list(output.shape) != REFERENCE_SHAPE:
    print("verdict: DIFFERS (TensorFlow's output shape is not the reference's)")
else:
    d_sum = abs(float(output.sum()) - REFERENCE_SUM)
    d_sq = abs(float((output * output).sum()) - REFERENCE_SUM_OF_SQUARES)
    print(f"sum:            TensorFlow {float(output.sum())!r}, reference {REFERENCE_SUM!r}, "
          f"|diff| {d_sum:.3g} (bound {SUM_BOUND:.3g})")
    print(f"sum of squares: TensorFlow {float((output * output).sum())!r}, reference {REFERENCE_SUM_OF_SQUARES!r}, "
          f"|diff| {d_sq:.3g} (bound {SUM_OF_SQUARES_BOUND:.3g})")
    if d_sum <= SUM_BOUND and d_sq <= SUM_OF_SQUARES_BOUND:
        print("verdict: AGREES (the checksums are within their bounds)")
    else:
        print("verdict: DIFFERS (a checksum is outside its bound)")
"""


def _computed(p: Prepared) -> list[str]:
    case, dtype, attrs = p.case, p.dtype, p.attrs
    ref, bound = p.reference_output(), p.reference_bound()  # script returns on error contracts and rejections
    bound_max = float(bound.per_element.max()) if bound.per_element.size else 0.0
    lines = _reference_block(ref, dtype, bound_max, bound.describe(), bound.per_element)
    lines += [
        "",
        "# TensorFlow may abort the whole process for some inputs: the line below shows that the call was reached.",
        f'print("calling {p.spec.function} ...", flush=True)',
        "try:",
        textwrap.indent(_call(case, attrs), "    "),
        "except Exception as exc:  # a report, not a test: say what happened",
        *_raised_lines(),
        '    print("verdict: DIFFERS (TensorFlow raised; the reference computes an output of shape '
        f'{list(ref.shape)})")',
        "    sys.exit(0)",
    ]
    compare = _COMPARE_EMBEDDED if ref.size <= LITERAL_LIMIT else _COMPARE_CHECKSUMS
    return lines + compare.rstrip("\n").split("\n")


def script(case: Case, dtype: str, env: Environment, *, finding: str = "") -> str:
    """A standalone Python script (NumPy and TensorFlow only) reproducing ``case`` at ``dtype``.

    ``env`` is the environment to reproduce (the script sets TF_ENABLE_ONEDNN_OPTS and any ISA cap before importing
    TensorFlow, and an error contract expects the class of the kernel ``env`` measured for the case);
    ``finding``, if given, is what the harness found, quoted as a comment block at the top. Raises ValueError
    for a dtype the case does not run at, and for a case that computes a value which the reference rejects (a
    malformed case, nothing to report upstream).
    """
    if dtype not in case.dtypes:
        raise ValueError(f"{case.id}: dtype {dtype!r} is not one of the case's dtypes ({', '.join(case.dtypes)})")
    if case.quantization is not None:
        raise ValueError(
            f"{case.id} is a quantized case (TFLite's {case.op} at {dtype}): repro scripts are written for TensorFlow's "
            f"float ops only; `harness show {case.id}[{dtype}]` prints every path's output and its difference from the "
            "integer reference, and each known divergence of the TFLite paths has its own repro"
        )
    p = prepare(case, dtype)
    if not p.expects_error and p.reference_error is not None:
        raise ValueError(
            f"{case.id}: the reference rejects this case, so there is nothing to reproduce: {p.reference_error}"
        )
    eigen = _kernel(case, dtype, p.attrs, env)
    lines = _header(case, dtype, env, eigen, finding) + _prologue(env) + _operands(case, dtype)
    if p.expects_error:
        lines += _error_contract(case, eigen, p.attrs, p.reference_error)
    else:
        lines += _computed(p)
    return "\n".join(lines) + "\n"
