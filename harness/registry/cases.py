"""Cases: the typed model of a YAML case, its validation, and the arrays it stands for.

A case file is a YAML mapping::

    defaults: {dtypes: [float32], tags: [mine]}     # optional, merged into every case
    cases:                                           # explicit cases
      - name: conv_same
        op: conv2d
        attrs: {strides: 1, padding: SAME}
        inputs:
          input:   {layout: CHW, value: [[[1, 0], [0, 1]]]}
          filters: {layout: IHW, kernel: correlation, generate: {dist: normal, shape: [1, 3, 3], seed: 1}}
        expected: {layout: CHW, value: [...]}        # optional
        dtypes: [float32, float64]
        tolerance: {c: 4, reason: "..."}             # optional, reason required
        tags: [seed]
    sweeps: [...]                                    # grids of cases, see harness.registry.sweeps

Every problem is reported as a ``CaseError`` naming the file, the case and the
field; a bad case never hides the others. Reading files is ``harness.registry.loader``'s
(YAML with ``yaml.safe_load`` only); writing a case back out, ``harness.registry.serialize``'s.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import ops
from harness.conv import layouts
from harness.conv.dtypes import DTYPES, dtype_of, is_integer
from harness.conv.tolerance import Override
from harness.registry import quantization as quantized_cases
from harness.registry import special as special_values

KERNEL_ORIENTATIONS = ("correlation", "convolution")
DISTRIBUTIONS: dict[str, tuple[dict[str, float], bool]] = {
    # name: (parameters with defaults, integer-valued?)
    "normal": ({"mean": 0.0, "std": 1.0}, False),
    "uniform": ({"low": -1.0, "high": 1.0}, False),
    "integers": ({"low": -3, "high": 3}, True),  # inclusive bounds
    "arange": ({"start": 0, "step": 1}, True),
}
CASE_FIELDS = {
    "name",
    "op",
    "attrs",
    "inputs",
    "expected",
    "dtypes",
    "tolerance",
    "tags",
    "description",
    "expect_error",
    "gradients",
    "block_bytes",
    "reference_decides",
    "special",
    "source",
    "quantization",
}
# Where a case transcribed from someone else's suite comes from (cases/upstream/): every key required.
SOURCE_FIELDS = ("repository", "file", "test", "commit")
# An error contract's TensorFlow class may depend on the kernel that runs the case (measured per op, dtype and padding:
# harness.tf.environment). onednn_on / onednn_off are the older names of the two keys.
TF_KERNEL_KEYS = ("onednn_kernel", "eigen_kernel")
TF_KERNEL_KEY_ALIASES = {"onednn_on": "onednn_kernel", "onednn_off": "eigen_kernel"}
TENSOR_FIELDS = {"layout", "value", "generate", "kernel", "raw", "special"}
DEFAULT_DTYPES = ("float32", "float64")
DIVERGENCES_FILE = "known_divergences.yaml"


def split_case_id(case_id: str) -> tuple[str | None, str, str | None]:
    """``file::name[dtype]`` -> (file or None, name, dtype or None)."""
    file, _, name = case_id.rpartition("::")
    dtype = None
    if name.endswith("]") and "[" in name:
        name, _, dtype = name[:-1].rpartition("[")
    return (file or None), name, dtype


def item_case_id(item_id: str) -> str:
    """The case a pytest item runs, ``FILE::CASE[DTYPE]``: the item id without its check (``[DTYPE:gradients]``) or
    backend (``[DTYPE@BACKEND]``), as ``harness repro`` and ``harness show`` take it."""
    head, bracket, dtype = item_id.partition("[")
    return head + bracket + re.split(r"[:@]", dtype.rstrip("]"), maxsplit=1)[0] + "]" if bracket else item_id


class CaseError(Exception):
    """A malformed case: says which file, which case and which field."""

    def __init__(self, file: str, case: str | None, field: str | None, message: str):
        self.file, self.case, self.field, self.message = file, case, field, message
        where = file + (f": case {case!r}" if case else "") + (f": field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Generator:
    """Seeded random or deterministic values: ``dist`` in DISTRIBUTIONS."""

    dist: str
    shape: tuple[int, ...]
    seed: int
    params: dict

    def make(self) -> np.ndarray:
        """float64 values (integer-valued for integers / arange)."""
        p, rng = self.params, np.random.default_rng(self.seed)
        if self.dist == "normal":
            return rng.normal(p["mean"], p["std"], self.shape)
        if self.dist == "uniform":
            return rng.uniform(p["low"], p["high"], self.shape)
        if self.dist == "integers":
            return rng.integers(p["low"], p["high"], self.shape, endpoint=True).astype(np.float64)
        return p["start"] + p["step"] * np.arange(int(np.prod(self.shape)), dtype=np.float64).reshape(self.shape)


@dataclass(frozen=True)
class TensorSpec:
    """An operand or expected output as written in YAML: a literal or a generator, in a declared layout."""

    layout: str
    literal: np.ndarray | None = None  # float64 (exact for integer literals)
    generator: Generator | None = None
    kernel: str = "correlation"  # for filters: "convolution" means rotate 180 degrees first
    raw: bool = False  # pass the values exactly as written (no layout conversion): for wrong-rank error contracts
    special: special_values.Special | None = None  # a special value at a chosen place (harness.registry.special)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.literal.shape if self.literal is not None else self._generator().shape

    @property
    def integer_valued(self) -> bool:
        if self.literal is not None:
            return bool(np.array_equal(self.literal, np.round(self.literal)))
        return DISTRIBUTIONS[self._generator().dist][1]

    def values(self) -> np.ndarray:
        return self.literal if self.literal is not None else self._generator().make()

    def _generator(self) -> Generator:
        """The generator of a spec without a literal: the loader gives every spec one of the two."""
        if self.generator is None:
            raise ValueError(f"TensorSpec (layout {self.layout!r}) has neither a literal nor a generator")
        return self.generator


@dataclass(frozen=True)
class ExpectError:
    """An error contract: the reference must raise ``reference`` (ValueError), TensorFlow ``tensorflow``.

    ``tensorflow`` maps the kernel TensorFlow runs for the case (oneDNN's or Eigen's) to the error class it raises
    (they differ: an unreachable output_shape is AbortedError in oneDNN's kernel and InvalidArgumentError in
    Eigen's). ``match`` must occur in the reference's message; ``message``, when given, is the whole message.
    """

    reference: str
    tensorflow: Mapping[str, str]  # onednn_kernel / eigen_kernel -> error class name
    match: str | tuple[str, ...] | None = None  # text the reference's message contains (each of several)
    message: str | None = None  # the reference's message, exactly

    def missing(self, message: str) -> list[str]:
        """The parts of ``match`` that ``message`` does not contain (and ``self.message``, if it is not exact)."""
        wanted = (self.match,) if isinstance(self.match, str) else self.match or ()
        exact = [self.message] if self.message is not None and message != self.message else []
        return [m for m in wanted if m not in message] + exact

    def tensorflow_error(self, eigen_kernel: bool | None) -> str | None:
        """The class TensorFlow must raise when its kernel is Eigen's (True) or oneDNN's (False); None when the
        kernel is not known and the two classes differ."""
        if eigen_kernel is None:
            classes = set(self.tensorflow.values())
            return classes.pop() if len(classes) == 1 else None
        return self.tensorflow["eigen_kernel" if eigen_kernel else "onednn_kernel"]


@dataclass(frozen=True)
class Source:
    """Where an upstream case comes from: ``repository`` (owner/name), ``file`` (its path there), ``test`` (the test
    function, node test or advisory id) and ``commit`` (the revision read)."""

    repository: str
    file: str
    test: str
    commit: str

    def __str__(self) -> str:
        return f"{self.repository}@{self.commit[:12]}:{self.file}::{self.test}"


def _source(file: str, case: str, value: Any) -> Source:
    if not isinstance(value, dict):
        raise CaseError(file, case, "source", f"must be a mapping {{{', '.join(SOURCE_FIELDS)}}}, got {value!r}")
    for key in value:
        if key not in SOURCE_FIELDS:
            raise CaseError(file, case, f"source.{key}", f"unknown field; allowed: {', '.join(SOURCE_FIELDS)}")
    for key in SOURCE_FIELDS:
        if not isinstance(value.get(key), str) or not value[key].strip():
            quote = " (quote a commit YAML reads as a number)" if key == "commit" else ""
            raise CaseError(file, case, f"source.{key}", f"must be a non-empty string{quote}, got {value.get(key)!r}")
    if not re.fullmatch(r"[0-9a-f]{7,40}", value["commit"]):
        raise CaseError(
            file, case, "source.commit", f"must be a git commit (7 to 40 hex digits), got {value['commit']!r}"
        )
    return Source(*(value[k] for k in SOURCE_FIELDS))


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    op: str
    attrs: dict
    inputs: dict[str, TensorSpec]
    expected: TensorSpec | None = None
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    tolerance: Override | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    sweep: str | None = None  # the sweep this case was expanded from
    expect_error: ExpectError | None = None
    # Operands whose gradients are checked too (TensorFlow's tf.GradientTape and raw backprop ops against the
    # reference's), as items of their own: ``gradient_dtypes`` says at which dtypes.
    gradients: tuple[str, ...] = ()
    # The reference's block size for this case (harness.conv.reference.block_bytes), so that a small case crosses
    # the blocked paths' boundaries; None: the default (2 MiB).
    block_bytes: int | None = None
    # The reference decides what the case expects (generated inputs, harness.registry.error_inputs): where it
    # raises ValueError the case is an error contract that any TensorFlow error satisfies; where it returns, a
    # value case.
    reference_decides: bool = False
    # Provenance of a case transcribed from an upstream suite: repository, file, test (or advisory id), commit.
    source: Source | None = None
    # The case runs as TFLite's quantized op, at the schemes its dtypes name (harness.registry.quantization).
    quantization: quantized_cases.Quantization | None = None

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"

    @property
    def computes(self) -> bool:
        """Whether the case is known to compute a value in the op's own layouts from ordinary values: not an error
        contract, not decided by the reference, no operand passed as written (a wrong rank, or tf.nn.conv2d's extra
        batch axes) and no special values (their IEEE results are checked against TensorFlow, not other
        implementations' conventions)."""
        return (
            self.expect_error is None
            and not self.reference_decides
            and not any(t.raw or t.special is not None for t in self.inputs.values())
        )

    def item_name(self, dtype: str, check: str = "forward") -> str:
        return f"{self.name}[{dtype}]" if check == "forward" else f"{self.name}[{dtype}:{check}]"

    @property
    def gradient_dtypes(self) -> tuple[str, ...]:
        """The dtypes its gradients are checked at: its floating dtypes (tf.GradientTape has no integer gradients)."""
        return tuple(dt for dt in self.dtypes if not is_integer(dtype_of(dt))) if self.gradients else ()


# --- parsing helpers ----------------------------------------------------------------------


def _literal(file, case, fld, value) -> np.ndarray:
    """Nested lists of numbers -> float64 array, rejecting ragged or non-numeric input."""

    def walk(v, depth_path):
        if isinstance(v, bool) or isinstance(v, str) or v is None or isinstance(v, dict):
            raise CaseError(file, case, fld, f"non-numeric literal {v!r} at index {depth_path or '[]'}")
        if isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, f"{depth_path}[{i}]")
        elif not isinstance(v, (int, float)):
            raise CaseError(file, case, fld, f"non-numeric literal {v!r} at index {depth_path}")

    walk(value, "")
    try:
        arr = np.array(value, dtype=np.float64)
    except ValueError:
        raise CaseError(file, case, fld, "ragged literal: the nested lists do not form a rectangular array") from None
    if not isinstance(value, list):
        raise CaseError(file, case, fld, "a literal must be a nested list")
    return arr


def _shape(file, case, fld, value) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise CaseError(file, case, fld, f"shape must be a list of non-negative ints, got {value!r}")
    return tuple(value)


def _generator(file, case, fld, spec, default_seed: int) -> Generator:
    if not isinstance(spec, dict):
        raise CaseError(file, case, fld, f"must be a mapping with dist, shape and optional seed, got {spec!r}")
    dist = spec.get("dist")
    if not isinstance(dist, str) or dist not in DISTRIBUTIONS:
        raise CaseError(
            file, case, f"{fld}.dist", f"unknown distribution {dist!r}; expected one of {', '.join(DISTRIBUTIONS)}"
        )
    defaults, _ = DISTRIBUTIONS[dist]
    unknown = set(spec) - {"dist", "shape", "seed"} - set(defaults)
    if unknown:
        raise CaseError(
            file,
            case,
            f"{fld}.{sorted(unknown)[0]}",
            f"unknown field for dist {dist!r}; allowed: shape, seed, {', '.join(defaults)}",
        )
    if "shape" not in spec:
        raise CaseError(file, case, f"{fld}.shape", "missing field")
    params = {}
    for key, default in defaults.items():
        v = spec.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CaseError(file, case, f"{fld}.{key}", f"must be a number, got {v!r}")
        if DISTRIBUTIONS[dist][1] and v != int(v):
            raise CaseError(file, case, f"{fld}.{key}", f"must be an integer for dist {dist!r}, got {v!r}")
        params[key] = v
    seed = spec.get("seed", default_seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CaseError(file, case, f"{fld}.seed", f"must be an int, got {seed!r}")
    return Generator(dist, _shape(file, case, f"{fld}.shape", spec["shape"]), seed, params)


def _stable_seed(*parts: str) -> int:
    """A seed that depends only on the case and operand names (stable across runs and machines)."""
    return zlib.crc32("/".join(parts).encode())


def _tensor(file, case, fld, spec, allowed_letters: str, kind: str) -> TensorSpec:
    if not isinstance(spec, dict):
        raise CaseError(file, case, fld, f"must be a mapping with layout and value or generate, got {spec!r}")
    unknown = set(spec) - TENSOR_FIELDS
    if unknown:
        raise CaseError(
            file, case, f"{fld}.{sorted(unknown)[0]}", f"unknown field; allowed: {', '.join(sorted(TENSOR_FIELDS))}"
        )
    layout = spec.get("layout")
    if layout is None:
        raise CaseError(file, case, f"{fld}.layout", "missing field")
    if spec.get("raw") is True:  # passed as written: its letters only count its axes (a wrong rank may add some)
        allowed_letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if not isinstance(layout, str) or len(set(layout)) != len(layout) or not set(layout) <= set(allowed_letters):
        raise CaseError(
            file, case, f"{fld}.layout", f"unknown layout {layout!r}: use distinct letters from {allowed_letters!r}"
        )
    kernel = spec.get("kernel", "correlation")
    if kernel not in KERNEL_ORIENTATIONS:
        raise CaseError(file, case, f"{fld}.kernel", f"must be 'correlation' or 'convolution', got {kernel!r}")
    if "kernel" in spec and kind != "filter":
        raise CaseError(file, case, f"{fld}.kernel", "only filters have a kernel orientation")
    raw = spec.get("raw", False)
    if not isinstance(raw, bool):
        raise CaseError(file, case, f"{fld}.raw", f"must be true or false, got {raw!r}")
    if raw and kernel != "correlation":
        raise CaseError(file, case, f"{fld}.raw", "a raw operand is passed as written: no kernel rotation")
    if ("value" in spec) == ("generate" in spec):
        raise CaseError(file, case, fld, "give exactly one of 'value' (a literal) or 'generate'")
    if "value" in spec:
        t = TensorSpec(layout, literal=_literal(file, case, f"{fld}.value", spec["value"]), kernel=kernel, raw=raw)
    else:
        gen = _generator(file, case, f"{fld}.generate", spec["generate"], _stable_seed(file, case, fld))
        t = TensorSpec(layout, generator=gen, kernel=kernel, raw=raw)
    if len(t.shape) != len(layout):
        raise CaseError(
            file, case, fld, f"layout {layout!r} has {len(layout)} axes but the value has shape {list(t.shape)}"
        )
    if "special" in spec:
        if raw:
            raise CaseError(file, case, f"{fld}.special", "a raw operand is passed as written: no special values")
        try:
            t = dataclasses.replace(t, special=special_values.parse(spec["special"], layout, kind))
        except special_values.SpecialError as exc:
            where = f"{fld}.special" + (f".{exc.field}" if exc.field else "")
            raise CaseError(file, case, where, exc.message) from None
    return t


def _tolerance(file, case, spec) -> Override:
    if not isinstance(spec, dict):
        raise CaseError(file, case, "tolerance", "must be a mapping with reason and c and/or atol")
    unknown = set(spec) - {"reason", "c", "atol"}
    if unknown:
        raise CaseError(file, case, f"tolerance.{sorted(unknown)[0]}", "unknown field; allowed: reason, c, atol")
    reason = spec.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise CaseError(file, case, "tolerance.reason", "a tolerance override needs a written reason")
    for key in ("c", "atol"):
        if key in spec and (isinstance(spec[key], bool) or not isinstance(spec[key], (int, float)) or spec[key] < 0):
            hint = ""
            if isinstance(spec[key], str) and re.fullmatch(r"[0-9]+[eE][-+]?[0-9]+", spec[key].strip()):
                hint = f" (YAML reads {spec[key]} as a string: write {spec[key].replace('e', '.0e', 1)})"
            raise CaseError(file, case, f"tolerance.{key}", f"must be a non-negative number, got {spec[key]!r}{hint}")
    if "c" not in spec and "atol" not in spec:
        raise CaseError(file, case, "tolerance", "give c and/or atol")
    return Override(reason.strip(), spec.get("c"), float(spec.get("atol", 0.0)))


def _expect_error(file, case, spec) -> ExpectError:
    if not isinstance(spec, dict):
        raise CaseError(file, case, "expect_error", "must be a mapping {reference: ValueError, tensorflow: ErrorClass}")
    unknown = set(spec) - {"reference", "tensorflow", "match", "message"}
    if unknown:
        raise CaseError(
            file,
            case,
            f"expect_error.{sorted(unknown)[0]}",
            "unknown field; allowed: reference, tensorflow, match, message",
        )
    if spec.get("reference") != "ValueError":
        raise CaseError(
            file,
            case,
            "expect_error.reference",
            f"the reference always raises ValueError, got {spec.get('reference')!r}",
        )
    tf_error = spec.get("tensorflow")
    if isinstance(tf_error, str) and tf_error.isidentifier():
        tf_error = {key: tf_error for key in TF_KERNEL_KEYS}
    if isinstance(tf_error, dict):
        tf_error = {TF_KERNEL_KEY_ALIASES.get(k, k): v for k, v in tf_error.items()}
    if (
        not isinstance(tf_error, dict)
        or set(tf_error) != set(TF_KERNEL_KEYS)
        or not all(isinstance(v, str) and v.isidentifier() for v in tf_error.values())
    ):
        raise CaseError(
            file,
            case,
            "expect_error.tensorflow",
            f"must be an error class name, or {{onednn_kernel: Class, eigen_kernel: Class}}; "
            f"got {spec.get('tensorflow')!r}",
        )
    match = spec.get("match")
    if match is not None and not (
        isinstance(match, str) or (isinstance(match, list) and match and all(isinstance(m, str) and m for m in match))
    ):
        raise CaseError(file, case, "expect_error.match", "must be a string, or a list of strings that must all occur")
    message = spec.get("message")
    if message is not None and not (isinstance(message, str) and message):
        raise CaseError(
            file, case, "expect_error.message", f"must be the reference's whole message, a string; got {message!r}"
        )
    return ExpectError("ValueError", dict(tf_error), tuple(match) if isinstance(match, list) else match, message)


def _str_list(file, case, fld, value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseError(file, case, fld, f"must be a list of strings, got {value!r}")
    return tuple(value)


def parse_case(file: str, raw: Any, index: int, defaults: dict | None = None, sweep: str | None = None) -> Case:
    """Validate one raw YAML case (a dict) into a ``Case``; raises CaseError."""
    if not isinstance(raw, dict):
        raise CaseError(file, f"#{index}", None, f"a case must be a mapping, got {type(raw).__name__}")
    defaults = defaults or {}
    if "tags" in defaults and "tags" in raw:  # file-wide tags add to a case's own
        raw = {
            **raw,
            "tags": _str_list(file, raw.get("name"), "tags", defaults["tags"])
            + _str_list(file, raw.get("name"), "tags", raw["tags"]),
        }
        raw["tags"] = list(dict.fromkeys(raw["tags"]))
    raw = {**defaults, **raw}
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CaseError(file, f"#{index}", "name", "missing field (every case needs a unique name)")
    unknown = set(raw) - CASE_FIELDS
    if unknown:
        raise CaseError(file, name, sorted(unknown)[0], f"unknown field; allowed: {', '.join(sorted(CASE_FIELDS))}")
    if "op" not in raw:
        raise CaseError(file, name, "op", "missing field")
    if not isinstance(raw["op"], str):
        raise CaseError(file, name, "op", f"must be an op name, got {raw['op']!r}")
    try:
        spec = ops.get(raw["op"])
    except ValueError as exc:
        raise CaseError(file, name, "op", str(exc)) from None

    attrs = raw.get("attrs", {})
    if not isinstance(attrs, dict):
        raise CaseError(file, name, "attrs", f"must be a mapping, got {attrs!r}")
    for key in attrs:
        if key not in spec.attrs:
            raise CaseError(
                file, name, f"attrs.{key}", f"{spec.name} has no attribute {key!r}; it takes {', '.join(spec.attrs)}"
            )
    for key in spec.required:
        if key not in attrs:
            raise CaseError(file, name, f"attrs.{key}", f"missing field ({spec.name} requires it)")
    fmt = spec.data_format(attrs)  # null (None) is the op's default, as in tf.nn
    if fmt not in spec.formats:
        names = " or ".join(spec.format_value(f) for f in spec.formats)
        raise CaseError(file, name, "attrs.data_format", f"{spec.name} takes data_format {names}, got {fmt!r}")
    for key, symbols in spec.symbolic.items():
        if isinstance(attrs.get(key), str) and attrs[key] not in symbols:
            raise CaseError(
                file, name, f"attrs.{key}", f"unknown value {attrs[key]!r}; give a list or one of {', '.join(symbols)}"
            )

    inputs_raw = raw.get("inputs")
    if not isinstance(inputs_raw, dict):
        raise CaseError(
            file, name, "inputs", f"missing field: a mapping with {', '.join(o.name for o in spec.operands)}"
        )
    for key in inputs_raw:
        if key not in {o.name for o in spec.operands}:
            raise CaseError(
                file,
                name,
                f"inputs.{key}",
                f"{spec.name} has no operand {key!r}; it takes {', '.join(o.name for o in spec.operands)}",
            )
    if raw.get("special") is not None:
        inputs_raw = _case_special(file, name, spec, inputs_raw, raw["special"])
    inputs = {}
    for operand in spec.operands:
        if operand.name not in inputs_raw:
            raise CaseError(file, name, f"inputs.{operand.name}", "missing field")
        op_layout = operand.op_layout(spec.formats[0])
        inputs[operand.name] = _tensor(
            file, name, f"inputs.{operand.name}", inputs_raw[operand.name], op_layout, operand.kind
        )

    expected = None
    if raw.get("expected") is not None:
        expected = _tensor(file, name, "expected", raw["expected"], spec.output_format({}), "data")

    quantization = None
    if raw.get("quantization") is not None:
        dtypes = _str_list(file, name, "dtypes", raw.get("dtypes", ["int8"]))
        quantization = _quantization(file, name, spec, attrs, raw, dtypes)
    else:
        dtypes = _str_list(file, name, "dtypes", raw.get("dtypes", list(DEFAULT_DTYPES)))
    for dt in () if quantization else dtypes:
        if dt in quantized_cases.SCHEMES and dt not in DTYPES:
            raise CaseError(file, name, "dtypes", f"{dt} is a quantized scheme: the case needs a quantization field")
        if dt not in DTYPES:
            raise CaseError(file, name, "dtypes", f"unknown dtype {dt!r}; expected some of {', '.join(DTYPES)}")
        if is_integer(dtype_of(dt)):
            for key, t in inputs.items():
                if t.special is not None:
                    raise CaseError(
                        file, name, f"inputs.{key}.special", f"special values need floating-point dtypes, not {dt}"
                    )
                if not t.integer_valued:
                    raise CaseError(
                        file,
                        name,
                        f"inputs.{key}",
                        f"dtype {dt} needs integer values (a literal of ints, or dist integers / arange)",
                    )
    if len(set(dtypes)) != len(dtypes) or not dtypes:
        raise CaseError(file, name, "dtypes", f"must be a non-empty list of distinct dtypes, got {list(dtypes)}")
    tolerance = _tolerance(file, name, raw["tolerance"]) if raw.get("tolerance") is not None else None
    tags = _str_list(file, name, "tags", raw.get("tags", []))
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise CaseError(file, name, "description", "must be a string")
    expect_error = _expect_error(file, name, raw["expect_error"]) if raw.get("expect_error") is not None else None
    specials = [key for key, t in inputs.items() if t.special is not None]
    if specials and len(spec.operands) != 2:
        raise CaseError(
            file,
            name,
            f"inputs.{specials[0]}.special",
            f"special values are placed in ops of two operands, not {spec.name}",
        )
    if expect_error and expected is not None:
        raise CaseError(file, name, "expected", "an error contract (expect_error) has no expected output")
    grads = _gradients(file, name, spec, raw.get("gradients", []), expect_error)
    block = raw.get("block_bytes")
    if block is not None and (not isinstance(block, int) or isinstance(block, bool) or block < 1):
        raise CaseError(file, name, "block_bytes", f"must be a positive int (bytes per block), got {block!r}")
    decides = raw.get("reference_decides", False)
    if not isinstance(decides, bool):
        raise CaseError(file, name, "reference_decides", f"must be true or false, got {decides!r}")
    if decides and (expect_error is not None or expected is not None or grads):
        raise CaseError(
            file,
            name,
            "reference_decides",
            "the reference decides what the case expects: no expect_error, expected or gradients beside it",
        )
    source = _source(file, name, raw["source"]) if raw.get("source") is not None else None
    return Case(
        name,
        file,
        spec.name,
        dict(attrs),
        inputs,
        expected,
        dtypes,
        tolerance,
        tags,
        description,
        sweep,
        expect_error,
        grads,
        block,
        decides,
        source,
        quantization,
    )


def _quantization(file, case, spec, attrs: dict, raw: dict, dtypes: tuple[str, ...]) -> quantized_cases.Quantization:
    """The ``quantization`` field, and what a quantized case may be: one of TFLite's ops, NHWC, SAME or VALID,
    quantized dtypes, no expected output, error contract, gradients or special values."""
    if spec.name not in quantized_cases.TFLITE_OPS:
        raise CaseError(
            file, case, "op", f"a quantized case is one of {', '.join(quantized_cases.TFLITE_OPS)}, not {spec.name}"
        )
    for dt in dtypes:
        if dt not in quantized_cases.SCHEMES:
            raise CaseError(
                file, case, "dtypes", f"a quantized case runs at {' or '.join(quantized_cases.SCHEMES)}, not {dt!r}"
            )
    if spec.data_format(attrs) != "NHWC":
        raise CaseError(file, case, "attrs.data_format", "TFLite's convolutions are NHWC")
    if attrs.get("padding") not in ("SAME", "VALID"):
        raise CaseError(file, case, "attrs.padding", f"TFLite pads SAME or VALID, got {attrs.get('padding')!r}")
    for key in ("expected", "expect_error", "gradients", "special"):
        if raw.get(key):
            raise CaseError(file, case, key, "a quantized case compares integers exactly: it has no " + key)
    try:
        return quantized_cases.parse(raw["quantization"], dtypes)
    except quantized_cases.QuantizationError as exc:
        raise CaseError(file, case, "quantization" + (f".{exc.field}" if exc.field else ""), exc.message) from None


def _case_special(file, case, spec, inputs_raw: dict, value) -> dict:
    """The case-level ``special: {operand, value, at}`` moved onto its operand (``inputs.<operand>.special``).

    ``operand`` is an operand's name or its role, ``data`` or ``filter``, so that one sweep can place special
    values in ops whose filter arguments are named differently (``filters``, ``filter``)."""
    if not isinstance(value, dict) or "operand" not in value:
        raise CaseError(file, case, "special", f"must be a mapping {{operand, value, at}}, got {value!r}")
    operand = value["operand"]
    roles = {"data": spec.data.name, **({"filter": spec.filter.name} if spec.filter is not None else {})}
    names = [o.name for o in spec.operands]
    name = roles.get(operand, operand) if isinstance(operand, str) else None
    if name not in names:
        raise CaseError(
            file,
            case,
            "special.operand",
            f"{spec.name} has no operand {operand!r}; give one of {', '.join(names)}, or data / filter",
        )
    rest = {k: v for k, v in value.items() if k != "operand"}
    try:
        special_values.parse(rest, "", spec.operand(name).kind)
    except special_values.SpecialError as exc:
        raise CaseError(file, case, "special" + (f".{exc.field}" if exc.field else ""), exc.message) from None
    target = inputs_raw.get(name)
    if not isinstance(target, dict):
        return inputs_raw  # the operand's own errors are reported where it is parsed
    if "special" in target:
        raise CaseError(file, case, "special", f"operand {name!r} has its own special field already")
    return {**inputs_raw, name: {**target, "special": rest}}


def _gradients(file, case, spec, value, expect_error) -> tuple[str, ...]:
    """The ``gradients`` field: operand names of the op (``all``: every operand), for an op with a gradient rule."""
    operands = [o.name for o in spec.operands]
    if value == "all":
        value = operands
    names = _str_list(file, case, "gradients", value)
    if not names:
        return ()
    if spec.gradient is None:
        raise CaseError(file, case, "gradients", f"{spec.name} has no gradient rule (harness.ops.table)")
    if expect_error:
        raise CaseError(file, case, "gradients", "an error contract (expect_error) has no gradients to check")
    for n in names:
        if n not in operands:
            raise CaseError(
                file, case, "gradients", f"{spec.name} has no operand {n!r}; give some of {', '.join(operands)}, or all"
            )
    if len(set(names)) != len(names):
        raise CaseError(file, case, "gradients", f"must name distinct operands, got {list(names)}")
    return tuple(n for n in operands if n in names)


# --- materializing a case -----------------------------------------------------------------


def operand_array(case: Case, name: str, dtype: str) -> np.ndarray:
    """An operand's values cast to ``dtype`` and converted to the layout the op takes.

    A filter written for convolution is rotated by 180 degrees (over H and W) here,
    after the layout conversion: the op itself always correlates.
    """
    if any(t.special is not None for t in case.inputs.values()):
        return operand_arrays(case, dtype)[name]
    return _plain_operand(case, name, dtype)


def _plain_operand(case: Case, name: str, dtype: str) -> np.ndarray:
    """``operand_array`` without special values."""
    spec = ops.get(case.op)
    operand = spec.operand(name)
    t = case.inputs[name]
    if t.raw:
        return np.require(t.values().astype(dtype_of(dtype)), requirements="C")  # keeps a 0-d operand 0-d
    target = operand.op_layout(spec.data_format(case.attrs))
    arr = layouts.convert(t.values().astype(dtype_of(dtype)), t.layout, target)
    if t.kernel == "convolution":
        arr = layouts.rotate_180(arr, target)
    return np.require(arr, requirements="C")


def operand_arrays(case: Case, dtype: str) -> dict[str, np.ndarray]:
    """Every operand of the case by argument name, as the op receives it (see ``operand_array``), with the special
    values of its operands placed (``harness.registry.special``)."""
    arrays = {o.name: _plain_operand(case, o.name, dtype) for o in ops.get(case.op).operands}
    specials = {k: (t.special, t.layout, t.shape) for k, t in case.inputs.items() if t.special is not None}
    if not specials:
        return arrays
    try:
        return {
            k: np.ascontiguousarray(v)
            for k, v in special_values.apply(case.op, arrays, case.attrs, specials, dtype_of(dtype)).items()
        }
    except special_values.SpecialError as exc:
        where = f"inputs.{exc.operand or next(iter(specials))}.special" + (f".{exc.field}" if exc.field else "")
        raise CaseError(case.file, case.name, where, exc.message) from None


def expected_array(case: Case, dtype: str) -> np.ndarray | None:
    """The expected output cast to ``dtype``, in the op's output layout (its data_format, or a filter gradient's
    filter layout)."""
    if case.expected is None:
        return None
    spec = ops.get(case.op)
    fmt = spec.output_format(case.attrs)
    try:
        return layouts.convert(case.expected.values().astype(dtype_of(dtype)), case.expected.layout, fmt)
    except ValueError as exc:
        raise CaseError(case.file, case.name, "expected", str(exc)) from None


def operand_shape(case: Case, name: str) -> tuple[int, ...]:
    """An operand's shape in the layout the op takes, without generating its values."""
    spec = ops.get(case.op)
    t = case.inputs[name]
    if t.raw:
        return t.shape
    target = spec.operand(name).op_layout(spec.data_format(case.attrs))
    return layouts.convert(np.broadcast_to(np.int8(0), t.shape), t.layout, target).shape  # a view: allocates nothing


def expand_symbolic(case: Case) -> list[Case]:
    """A case whose attributes name a set of values (``output_shape: all``) becomes one case per value."""
    spec = ops.get(case.op)
    if spec.expand is None:
        return [case]
    try:
        variants = spec.variants({o.name: operand_shape(case, o.name) for o in spec.operands}, case.attrs)
    except ValueError as exc:
        raise CaseError(case.file, case.name, "attrs", f"cannot expand: {exc}") from None
    if variants is None:
        return [case]
    return [dataclasses.replace(case, name=f"{case.name}/{suffix}", attrs=attrs) for suffix, attrs in variants]
