"""TensorFlow's known divergences from the reference: declared as data, matched by condition.

``cases/known_divergences.yaml`` lists what TensorFlow computes or does wrongly
(or does not support), each entry with the condition under which it happens,
the TensorFlow versions and oneDNN mode it was seen with, what TensorFlow does
instead, the evidence, a minimal repro and a link where one exists::

    divergences:
      - id: depthwise_strided_dilated
        kind: wrong_result            # wrong_result | unsupported | crash | accepts_invalid | error_class
        summary: one line
        when: {op: [depthwise_conv2d, separable_conv2d], stride_gt_1: true, dilation_gt_1: true}
        tensorflow_versions: ">=2.21,<2.22"
        onednn: any                   # on | off | any
        tensorflow_does: [wrong_shape, wrong_values]
        observed_on: [amd-epyc-zen4]  # recorded machines (tests/machines/<name>.json) it was seen on
        evidence: what was observed, with versions
        repro: |
          python code
        link: https://github.com/tensorflow/tensorflow/issues/...   # optional

Every case of the registry whose configuration satisfies ``when`` (under the
running TensorFlow version and oneDNN mode) is a strict expected failure: it is
reported as xfailed when TensorFlow does what the entry says, and fails when
TensorFlow agrees with the reference (the divergence is gone: update the entry)
or does something else. The reference is never bent to match TensorFlow.

An entry with ``strict: per_entry`` describes a defect whose effect depends on
sizes in a way the features cannot pin down (TensorFlow is sometimes right by
coincidence): a matching case that agrees passes, and the run fails when no
matching case diverges any more (see the pytest plugin's session check).

``when`` keys are the case features computed by ``features`` below; a value is
matched by equality, a list by membership. Some are facts about the machine, measured
at start-up (``harness.tf.environment``), never assumed: ``eigen_kernel`` /
``eigen_gradient_kernel`` (which kernel TensorFlow runs for the case's op, dtype and
padding), ``onednn_isa`` (the ISA oneDNN uses, after any ONEDNN_MAX_CPU_ISA cap) and
``cpu.<flag>`` (a CPU feature). An entry whose ``onednn_isa`` or ``cpu.*`` condition,
oneDNN mode or TensorFlow version fails in the run's environment cannot apply there
(``Divergence.not_here``): the reports call it "not applicable here", and it is never
stale there.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from harness import ops
from harness.conv import layouts
from harness.conv.padding import INT32_MAX, INT64_MAX, INT64_MIN, normalize_padding, normalize_window_arg, window
from harness.conv.quantized import ROUNDINGS
from harness.registry import location, special_features
from harness.registry.cases import CaseError
from harness.registry.quantization import SCHEMES
from harness.tf import machine
from harness.tf.environment import Environment

# error_class: TensorFlow rejects the input, as the case's error contract says, but with another exception class.
KINDS = ("wrong_result", "unsupported", "crash", "accepts_invalid", "error_class")
BEHAVIOURS = ("wrong_shape", "wrong_values", "aborts", "returns")  # and "raises <ErrorClass>"
# A quantized path's output that is the reference's under another rounding than the path declares: "rounds <rule>".
ROUNDS = tuple(f"rounds {r}" for r in ROUNDINGS)
FEATURES = {
    "op": "the op called: a tf.nn op or a raw op (required in every entry: an entry applies to the ops it names)",
    "dtype": "the dtype the case runs at",
    "data_format": "NHWC, NCHW, NWC or NCW",
    "padding": "SAME, VALID, explicit (a list of pairs) or invalid (anything else, in an error contract)",
    "stride_gt_1": "some spatial stride is greater than 1",
    "dilation_gt_1": "some spatial dilation (or atrous rate) is greater than 1",
    "dilated_kernel_axis": "some spatial axis has dilation > 1 and a kernel wider than 1 tap (the dilation changes "
    "which pixels the kernel reads)",
    "strided_dilated_axis": "some spatial axis has stride > 1, dilation > 1 and more than one output pixel",
    "strided_unit_width": "the output is one pixel wide and the width stride is greater than 1",
    "pointwise_strided": "the kernel is 1 on every spatial axis and some spatial stride is greater than 1",
    "output_empty": "the reference's output has no elements",
    "operand_inf_or_huge": "some operand element is infinite or of magnitude 1e38 or more (a sum can overflow float32)",
    "data_format_null": "TensorFlow receives data_format=None (given as null, or the op's default, as "
    "tf.nn.convolution's)",
    "dilations_whole_float": "a dilation (or rate) given as a bool or a float with an integral value (1.0)",
    "filter_rank": "the rank of the filter operand",
    "channels_inconsistent": "the data's channels are neither the filter's in_channels nor a grouping of them (a "
    "multiple whose group count divides the other channel axis)",
    "shape_arg_negative": "output_shape, input_sizes or filter_sizes holds a negative value",
    "space_to_batch_overflow": "a dilation (rate) whose square times the input's elements exceeds int64 (the "
    "space_to_batch block TensorFlow's atrous ops build)",
    "output_matches_input_shape": "the output has the input's shape",
    "output_batch_mismatch": "a transposed op's output_shape has another batch than its input",
    "grouped": "a grouped convolution: the input has k > 1 times as many channels as the filter's in_channels (a "
    "transposed op: its output_shape k > 1 times the filters' out_channels)",
    "kernel_exceeds_input": "an effective kernel is larger than the padded input",
    "kernel_larger_than_input": "an effective kernel is larger than the (forward) input on some axis, before padding",
    "input_rank": "the rank of the data operand",
    "tf_zero_output": "the kernel does not fit in the padded (forward) input on some axis, yet TensorFlow's own "
    "output-size formula, (padded - k_eff + s) / s truncated, gives 0 there (for a transposed op: "
    "the input's size, so TensorFlow accepts that output_shape)",
    "padding_in_batch_or_channels": "explicit padding with a nonzero batch or channel pair",
    "padding_negative": "explicit padding with a negative entry",
    "output_shape_length": "the number of values in conv2d_transpose's output_shape",
    "unequal_strides": "the spatial strides differ from each other",
    "filter_empty": "a filter operand has no elements",
    "input_spatial_empty": "the data operand has a spatial axis of size 0",
    "batch_empty": "the convolution's input has a batch of 0 (for a raw backprop op: the input it differentiates)",
    "batch_gt_1": "the convolution's input has a batch of more than 1",
    "fused_window_shifted": "FusedResizeAndPadConv2D / FusedPadConv2D, and a quantized case's QuantizedConv2D (the same "
    "im2col): on some spatial axis that kernel's window offset, ((out - 1) * s + k - padded + (1 for VALID)) / 2 "
    "truncated toward zero, is not conv2d's pad_before",
    "same_padding_odd": "SAME padding whose total on some spatial axis is odd (TensorFlow puts the extra pixel "
    "after the input)",
    "strides_in_batch_or_channels": "a full-rank strides value with a batch or channel entry other than 1",
    "window_arg_not_int": "the strides argument is null, or the strides or dilations argument is (or holds) a float "
    "or a bool instead of ints",
    "strides_float": "the strides argument is (or holds) a float or a bool",
    "int_attr_not_int": "tf.raw_ops.Conv's groups or batch_dims is a float or a bool",
    "dilations_float": "the dilations (or rate) argument is (or holds) a float or a bool",
    "dilations_not_int": "the dilations (or rate) argument is (or holds) a float, a bool or a string",
    "dilations_bool": "the dilations (or rate) argument holds a bool",
    "dilations_invalid": "the dilations (or rate) argument, a list of ints within int32, is not in a form the op "
    "takes: a wrong length, or an entry below 1",
    "strides_beyond_int32": "a strides value is beyond int32 (but within int64, the attribute's type)",
    "dilations_beyond_int32": "a dilations (or rate) value is beyond int32 (but within int64, the attribute's type)",
    "window_arg_beyond_int64": "a strides or dilations (or rate) value does not fit int64, the attribute's type",
    "shape_arg_out_of_range": "an entry of output_shape, input_sizes or filter_sizes is negative, or beyond int32 "
    "but within int64",
    "empty_array": "some operand has no elements, or so has the output that output_shape, input_sizes or "
    "filter_sizes asks for",
    "filter_without_taps": "a filter (or a raw op's filter_sizes) has a spatial size of 0",
    "out_backprop_empty": "a raw backprop op's out_backprop has no elements",
    "data_channels_empty": "the data operand has 0 channels",
    "multiplier_zero": "a depthwise filter's channel multiplier (M) is 0",
    "dilations_length": "the number of values in a dilations list (None for an int or None)",
    "expect_error": "the case is an error contract",
    "quantized": "the quantized scheme a case of TFLite's quantized ops runs at (int8 or 16x8); None for a float case",
    "output_channels_ge_8": "the op's output has 8 channels or more (TFLite's optimized depthwise and transpose "
    "kernels requantize 8 channels at a time)",
    "sizes_length": "the number of values in a raw backprop op's input_sizes / filter_sizes (None for other ops)",
    "padding_not_int": "an entry of an explicit padding list is a float or a bool instead of an int",
    "explicit_paddings_unused": "a raw backprop op's explicit_paddings is not empty while its padding is SAME or VALID",
    "malformed_shape": "a data operand's rank is not its data_format's, a strides list has a length the op does "
    "not take, or a raw backprop op's input_sizes / filter_sizes has other than 2 or 4 values "
    "or a negative one",
    "padding_only_row": "some output row reads only padding: every dilated kernel tap along H lands outside the input",
    "padding_only_column": "some output column reads only padding: every dilated kernel tap along W lands outside the "
    "input",
    "eigen_kernel": "TensorFlow runs an Eigen kernel for the op at this dtype and padding (measured here, never "
    "assumed: harness.tf.environment)",
    "eigen_gradient_kernel": "TensorFlow runs an Eigen kernel for the op's gradient at this dtype and padding "
    "(measured)",
    "kernel_refuses": "TensorFlow's kernel for the op failed on valid operands at this dtype when measured here "
    "(e.g. oneDNN has no implementation for the dtype under an ISA cap)",
    "onednn_isa": "the ISA oneDNN uses here, after any ONEDNN_MAX_CPU_ISA cap (measured from oneDNN's own log), "
    "e.g. avx2, avx512_core_bf16, avx512_core_amx",
    "cpu.<flag>": "the CPU has this feature (harness.tf.machine.DECIDING_FLAGS, e.g. cpu.amx_bf16, cpu.avx512_fp16)",
    "tf_intra_op_threads": "the size of TensorFlow's intra-op thread pool in this run (HARNESS_TF_INTRA_OP_THREADS, "
    "1 by default; 0 is TensorFlow's own default, one per core): some oneDNN kernels go wrong with one thread only",
    **special_features.FEATURES,
}
# Features of the machine, not of the case: an entry whose `when` one of these fails cannot apply here at all
# ("not applicable here", never stale). Matched from ``Environment.facts()``.
ENV_FEATURES = ("onednn_isa", "tf_intra_op_threads", "cpu.<flag>")


def _is_env_feature(key: str) -> bool:
    return key in ("onednn_isa", "tf_intra_op_threads") or key.startswith("cpu.")


ENTRY_FIELDS = {
    "id",
    "kind",
    "summary",
    "when",
    "tensorflow_versions",
    "onednn",
    "tensorflow_does",
    "evidence",
    "repro",
    "link",
    "strict",
    "scope",
    "backend",
    "observed_on",
}
# The kind of item an entry applies to. forward: a call of the op ``when.op`` names, with that op's own arguments:
# a registry case of it (a tf.nn op or a raw op), a raw backprop op that a gradient check calls, a backend's run of
# it. gradient: tf.GradientTape's gradients of the op (the features are those of the op's own call). Every item is
# matched by the same ``features`` of the op it calls; an entry applies only to the ops its ``when.op`` names.
SCOPES = ("forward", "gradient")
# nondeterministic: a per_entry defect whose effect is luck (uninitialized memory can hold zeros): a matching case
# that agrees passes, and the run does not fail when none diverges (the report still counts them).
STRICTNESS = ("per_case", "per_entry", "nondeterministic")


@dataclass(frozen=True)
class Divergence:
    id: str
    kind: str
    summary: str
    when: Mapping[str, Any]
    tensorflow_versions: SpecifierSet
    onednn: str  # on | off | any
    tensorflow_does: tuple[str, ...]
    evidence: str
    repro: str
    link: str | None
    file: str
    strict: str = "per_case"  # per_entry: a matching case may agree by coincidence; some case must still diverge
    scope: str = "forward"  # one of SCOPES
    # Empty: TensorFlow diverges from the reference. Backends' names (``harness.backends``; ``backend:`` one name or a
    # list): those backends diverge from TensorFlow, the oracle (a quantized case's paths: from the integer
    # reference); ``tensorflow_does`` then says what the backend does.
    backends: tuple[str, ...] = ()
    # The machines it was seen on: names of recorded environments (tests/machines/<name>.json) or free text.
    observed_on: tuple[str, ...] = ()

    @property
    def backend(self) -> str | None:
        """The backends it is declared for, as written (comma-separated); None for TensorFlow's own."""
        return ", ".join(self.backends) or None

    def not_here(self, env: Environment) -> str | None:
        """Why this entry cannot apply in ``env`` whatever the case (version, oneDNN mode, CPU features, oneDNN's
        ISA), or None when it can."""
        if self.onednn != "any" and (self.onednn == "on") != env.onednn:
            return f"needs oneDNN {self.onednn}"
        if not _version_in(self.tensorflow_versions, env.tensorflow_version):
            return f"needs TensorFlow {self.tensorflow_versions}, here {env.tensorflow_version}"
        env_keys = [key for key in self.when if _is_env_feature(key)]
        facts = env.facts() if env_keys else {}
        for key in env_keys:
            want = self.when[key]
            if not _matches(facts.get(key), want):
                have = facts.get(key)
                return (
                    f"needs {key} {'one of ' + ', '.join(map(str, want)) if isinstance(want, list) else want}, "
                    f"here {'unknown' if have is None else have}"
                )
        return None

    def applies(self, feats: Mapping[str, Any], env: Environment) -> bool:
        # the case's features first: most entries name other ops, and ``not_here`` parses versions
        if not all(_matches(feats.get(key), want) for key, want in self.when.items() if not _is_env_feature(key)):
            return False
        return self.not_here(env) is None

    def expects(self, behaviour: str) -> bool:
        return behaviour in self.tensorflow_does


def _not_int(value, kinds: tuple[type, ...] = (bool, float)) -> bool:
    """A window argument (or one of its entries) that is a float or a bool (or another of ``kinds``), not an int."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, kinds) for v in items)


def _beyond_int32(v: int) -> bool:
    """Beyond int32 but within int64 (INT64_MIN included: its magnitude is one more than INT64_MAX)."""
    return INT32_MAX < abs(v) and INT64_MIN <= v <= INT64_MAX


def _ints(value) -> list[int]:
    """The int entries of an argument (an int, or a list), bools left out."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, int) and not isinstance(v, bool)]


def _dilations_invalid(spec: ops.OpSpec, value, fmt: str) -> bool:
    """Whether a dilations / rate value of int32 ints is not one the op takes (a wrong length, an entry below 1)."""
    forms = spec.forms
    if not isinstance(value, list) or len(_ints(value)) != len(value) or any(abs(v) > INT32_MAX for v in value):
        return False
    try:
        normalize_window_arg(
            spec.name,
            forms.dilation_arg,
            value,
            fmt,
            allowed_lengths=forms.dilation_lengths,
            allow_int=forms.allow_int,
            default=forms.dilation_default,
        )
    except (ValueError, TypeError):
        return True
    return False


@functools.lru_cache(maxsize=256)
def _version_in(versions: SpecifierSet, text: str) -> bool:
    """Whether TensorFlow version ``text`` is in ``versions`` ("not installed" or an unparsable version: never). A
    nightly (2.22.0.dev20261203) is in ">=2.21" but not in "<2.22". Cached: every case matches every entry, and
    parsing a version is slower than the rest of the match."""
    try:
        return versions.contains(Version(text), prereleases=True)
    except Exception:
        return False


def _matches(have, want) -> bool:
    return have in want if isinstance(want, list) else have == want


def _fail(file: str, entry: str, field: str, message: str) -> CaseError:
    return CaseError(file, entry, field, message)


def parse_divergence(file: str, raw: Any, index: int) -> Divergence:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise _fail(file, f"divergence #{index}", "id", "each divergence is a mapping with a string id")
    did = raw["id"]
    unknown = set(raw) - ENTRY_FIELDS
    if unknown:
        raise _fail(file, did, sorted(unknown)[0], f"unknown field; allowed: {', '.join(sorted(ENTRY_FIELDS))}")
    for key in ("kind", "summary", "when", "tensorflow_versions", "tensorflow_does", "evidence", "repro"):
        if key not in raw:
            raise _fail(file, did, key, "missing field")
    if raw["kind"] not in KINDS:
        raise _fail(file, did, "kind", f"must be one of {', '.join(KINDS)}")
    when = raw["when"]
    if not isinstance(when, dict) or not when:
        raise _fail(file, did, "when", "must be a non-empty mapping of feature -> value or list of values")
    for key in when:
        if key.startswith("cpu."):
            if key[4:] not in machine.DECIDING_FLAGS:
                raise _fail(
                    file, did, f"when.{key}", f"unknown CPU feature; known: {', '.join(machine.DECIDING_FLAGS)}"
                )
        elif key not in FEATURES:
            raise _fail(file, did, f"when.{key}", f"unknown feature; known: {', '.join(FEATURES)}")
    if "onednn_isa" in when:
        for isa in when["onednn_isa"] if isinstance(when["onednn_isa"], list) else [when["onednn_isa"]]:
            if isa not in machine.ISA_LEVELS:
                raise _fail(
                    file, did, "when.onednn_isa", f"unknown oneDNN ISA {isa!r}; known: {', '.join(machine.ISA_LEVELS)}"
                )
    if "op" not in when:
        raise _fail(
            file,
            did,
            "when.op",
            "missing: name the ops the divergence was observed on (an entry applies only to the ops it names)",
        )
    for op in when["op"] if isinstance(when["op"], list) else [when["op"]]:
        if op not in ops.OPS and op not in ops.RAW_OPS:
            raise _fail(file, did, "when.op", f"unknown op {op!r}")
    try:
        versions = SpecifierSet(str(raw["tensorflow_versions"]))
    except InvalidSpecifier:
        raise _fail(
            file, did, "tensorflow_versions", f"not a version specifier: {raw['tensorflow_versions']!r}"
        ) from None
    onednn = raw.get("onednn", "any")
    onednn = {True: "on", False: "off"}.get(onednn, onednn)  # YAML reads on/off as booleans
    if onednn not in ("on", "off", "any"):
        raise _fail(file, did, "onednn", "must be on, off or any")
    does = raw["tensorflow_does"]
    does = [does] if isinstance(does, str) else does
    if not isinstance(does, list) or not does:
        raise _fail(file, did, "tensorflow_does", "must be a behaviour or a list of them")
    for b in does:
        if not isinstance(b, str) or not (b in BEHAVIOURS or b in ROUNDS or b.startswith("raises ")):
            raise _fail(
                file,
                did,
                "tensorflow_does",
                f"unknown behaviour {b!r}; use {', '.join(BEHAVIOURS + ROUNDS)} or 'raises <ErrorClass>'",
            )
    for key in ("summary", "evidence", "repro"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise _fail(file, did, key, "must be non-empty text")
    strict = raw.get("strict", "per_case")
    if strict not in STRICTNESS:
        raise _fail(file, did, "strict", f"must be one of {', '.join(STRICTNESS)}")
    scope = raw.get("scope", "forward")
    if scope == "raw_backprop":
        raise _fail(
            file,
            did,
            "scope",
            "raw_backprop is no longer a scope: a raw backprop op is an op of its own; name it in when.op "
            "(e.g. depthwise_conv2d_native_backprop_input) with scope forward, and its conditions are read from "
            "its own arguments",
        )
    if scope not in SCOPES:
        raise _fail(file, did, "scope", f"must be one of {', '.join(SCOPES)}")
    backend = raw.get("backend")
    backends = [backend] if isinstance(backend, str) else backend if backend is not None else []
    if not isinstance(backends, list) or not all(isinstance(b, str) and b for b in backends):
        raise _fail(file, did, "backend", "must be a backend name (harness.backends) or a list of them")
    observed = raw.get("observed_on", [])
    observed = [observed] if isinstance(observed, str) else observed
    if not isinstance(observed, list) or not all(isinstance(m, str) and m.strip() for m in observed):
        raise _fail(
            file,
            did,
            "observed_on",
            "must be a list of machine names (tests/machines/<name>.json) or descriptions of the CPUs it was seen on",
        )
    return Divergence(
        did,
        raw["kind"],
        raw["summary"].strip(),
        dict(when),
        versions,
        onednn,
        tuple(does),
        raw["evidence"].strip(),
        raw["repro"].rstrip(),
        raw.get("link"),
        file,
        strict,
        scope,
        tuple(backends),
        tuple(m.strip() for m in observed),
    )


def load(
    path: Path, root: Path | None = None, scope: str | None = "forward"
) -> tuple[list[Divergence], list[CaseError]]:
    """The divergences of one file with this ``scope`` (None: every scope), and the errors of unreadable entries."""
    path = Path(path)
    file = str(path.resolve().relative_to(Path(root).resolve())) if root else str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return [], [CaseError(file, None, None, f"cannot read divergences: {exc}")]
    entries, errors, seen = [], [], set()
    for i, raw in enumerate(doc.get("divergences") or []):
        try:
            d = parse_divergence(file, raw, i)
            if d.id in seen:
                raise _fail(file, d.id, "id", "duplicate divergence id")
            seen.add(d.id)
            if scope is None or d.scope == scope:
                entries.append(d)
        except CaseError as err:
            errors.append(err)
    return entries, errors


def in_scope(known: Sequence[Divergence], scope: str) -> list[Divergence]:
    """The entries of ``known`` with this scope (``SCOPES``)."""
    return [d for d in known if d.scope == scope]


def load_registry(reg: location.Registry, scope: str | None = None) -> tuple[list[Divergence], list[CaseError]]:
    """Every known divergence of the registry's folders with this ``scope`` (None: all), the shipped entries first,
    and the errors of entries that could not be read. A user's entry may not reuse an id already defined."""
    known: list[Divergence] = []
    errors: list[CaseError] = []
    ids: set[str] = set()
    for path, root in reg.divergence_files():
        entries, bad = load(path, root, scope=None)
        errors += bad
        for entry in entries:
            if entry.id in ids:
                errors.append(
                    _fail(
                        entry.file,
                        entry.id,
                        "id",
                        "a known divergence of this id is already defined "
                        "(the shipped cases/known_divergences.yaml shares its ids): choose another id",
                    )
                )
                continue
            ids.add(entry.id)
            if scope is None or entry.scope == scope:
                known.append(entry)
    return known, errors


def registry(root: Path | None = None) -> list[Divergence]:
    """The forward divergences that apply to cases under ``root`` (default: the current directory): the shipped
    registry's, and those of ``<root>/cases/known_divergences.yaml`` when that is a folder of the user's."""
    root = Path(root or Path.cwd())
    return load_registry(location.registry(root, location.default_folders(root), shipped="divergences"), "forward")[0]


# --- features of a case -------------------------------------------------------------------


def _spatial_values(value, fmt: str) -> list[int]:
    """The spatial entries of a strides / dilations value in any tf.nn form (best effort: an error contract's
    attributes may be anything)."""
    if value is None:
        return [1]
    try:
        items = [int(v) for v in np.asarray(value).reshape(-1)]
    except (TypeError, ValueError):
        return []
    if len(items) == len(fmt):
        return [v for v, c in zip(items, fmt) if c in layouts.spatial(fmt)]
    return items


def _window_values(spec: ops.OpSpec, attrs: Mapping, fmt: str) -> tuple[list[int], list[int]]:
    """(spatial strides, spatial dilations) as given, read by the op's own argument names (best effort)."""
    stride_arg, dilation_arg = spec.forms.stride_arg, spec.forms.dilation_arg
    return (
        _spatial_values(attrs.get(stride_arg) if stride_arg else None, fmt),
        _spatial_values(attrs.get(dilation_arg), fmt),
    )


MAX_ROWS = 1 << 16  # padding_only_row / _column look at each output line; beyond this many they say False


def _padding_only_line(
    spec: ops.OpSpec, x_shape, w_shape, w_layout: str, fmt: str, attrs: Mapping, padding, axis: str
) -> bool:
    """Whether some output line along ``axis`` ("H": rows, "W": columns) has its dilated taps all in the padding
    (see FEATURES); False when not computable."""
    if axis not in fmt:
        return False
    try:
        i = layouts.spatial(fmt).index(axis)
        if spec.kind == "transposed":  # the forward convolution's input is the transpose's output
            sizes = [int(v) for v in attrs["output_shape"]]
            size = sizes[fmt.index(axis)] if len(sizes) == len(fmt) else sizes[i]
        else:
            size = x_shape[fmt.index(axis)]
        # one value for every axis, or one per spatial axis
        stride, dilation = (v[i] if len(v) > i else v[0] for v in _window_values(spec, attrs, fmt))
        padding = normalize_padding(spec.name, padding, fmt)
        pad = padding if isinstance(padding, str) else padding[i]
        if stride <= 0 or dilation <= 0:  # an error contract: no window to speak of
            return False
        win = window(spec.name, size, w_shape[w_layout.index(axis)], stride, dilation, pad)
    except (ValueError, IndexError, TypeError, KeyError):
        return False
    if win.out > MAX_ROWS:  # an error input's size (2**31): not a configuration any entry is about
        return False
    return any(
        all(not 0 <= o * win.stride - win.pad_before + t * win.dilation < win.size for t in range(win.kernel))
        for o in range(win.out)
    )


def _sizes(value) -> tuple[int, ...] | None:
    """A raw op's input_sizes / filter_sizes as a shape, when it is a list of ints (best effort)."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def _convolution(spec: ops.OpSpec, arrays: Mapping[str, np.ndarray], attrs: Mapping) -> tuple[tuple, tuple, str]:
    """(input shape, filter shape, filter layout) of the convolution an op computes: its data and filter operands,
    or, for a raw backprop op, the forward convolution it differentiates (its sizes argument standing for the
    operand it computes). An empty tuple where a shape is not known."""
    filt = spec.filter
    if spec.kind == "fused":  # the convolution reads the resized, padded input
        return _fused_input_shape(np.shape(arrays["input"]), attrs), np.shape(arrays["filter"]), spec.filter_layout
    if spec.kind != "backprop":
        w_shape = np.shape(arrays[filt.name]) if filt is not None else ()
        return np.shape(arrays[spec.data.name]), w_shape, spec.filter_layout
    # backprop_input(input_sizes, filter, out_backprop), backprop_filter(input, filter_sizes, out_backprop), or the
    # V2 / V1 ops that take both operands (only the shape of the one whose gradient they compute is read)
    x_shape = np.shape(arrays["input"]) if "input" in arrays else _sizes(attrs.get("input_sizes")) or ()
    w_shape = np.shape(arrays[filt.name]) if filt is not None else _sizes(attrs.get("filter_sizes")) or ()
    return x_shape, w_shape, spec.filter_layout


def _fused_input_shape(x_shape: tuple[int, ...], attrs: Mapping) -> tuple[int, ...]:
    """The NHWC shape a fused op's conv2d reads: the input resized to ``size`` (when given), then padded by
    ``paddings``; () when they cannot be read."""
    size, paddings = attrs.get("size", list(x_shape[1:3])), attrs.get("paddings") or []
    try:
        pads = [int(before) + int(after) for before, after in paddings]
        sizes = [int(v) for v in size]
    except (TypeError, ValueError):
        return ()
    if len(x_shape) != 4 or len(pads) != 4 or len(sizes) != 2:
        return ()
    return tuple(int(n) + p for n, p in zip((x_shape[0], *sizes, x_shape[3]), pads))


def _fused_window_shifted(x_shape: tuple, kernel: list[int], strides: Sequence[int], padding: Any) -> bool:
    """Whether the fused kernel's window offset differs from conv2d's on some spatial axis (feature
    ``fused_window_shifted``), for the NHWC shape it convolves."""
    if padding not in ("SAME", "VALID") or len(x_shape) != 4 or len(strides) != 2:
        return False
    for size, k, s in zip(x_shape[1:3], kernel, strides):
        if s < 1 or (padding == "VALID" and size < k):
            return False
        out = -(-size // s) if padding == "SAME" else (size - k) // s + 1
        excess = (out - 1) * s + k - size
        fused = int((excess + (padding == "VALID")) / 2)  # C++ division truncates toward zero
        if fused != (max(0, excess) // 2 if padding == "SAME" else 0):
            return True
    return False


def _on_axis(values: Sequence[int], i: int) -> int:
    """Spatial axis ``i``'s entry of a strides / dilations value given once for every axis or once per axis (1 when
    it gives none)."""
    return values[i] if i < len(values) else (values[0] if values else 1)


def _per_axis(values: Sequence[int], axes: int) -> list[int]:
    """A strides / dilations value given once for every spatial axis (one entry) as one entry per axis."""
    return list(values) * axes if len(values) == 1 else list(values)


def _same_padding_odd(
    x_shape: tuple, fmt: str, kernel: list[int], strides: Sequence[int], dilations: Sequence[int]
) -> bool:
    """Whether SAME's total padding (``harness.conv.padding.window``) is odd on some spatial axis."""
    spatial = layouts.spatial(fmt)
    s_axes, d_axes = _per_axis(strides, len(spatial)), _per_axis(dilations, len(spatial))
    if len(s_axes) != len(spatial) or len(d_axes) != len(spatial):
        return False
    for c, k, st, d in zip(spatial, kernel, s_axes, d_axes):
        if st < 1 or d < 1 or k < 1:
            return False
        w = window("same_padding_odd", x_shape[fmt.index(c)], k, st, d, "SAME")
        if (w.pad_before + w.pad_after) % 2:
            return True
    return False


def _inf_or_huge(value: Any) -> bool:
    a = np.asarray(value)
    if a.dtype.kind in "iubOSU" or a.size == 0:  # integers cannot reach 1e38; bfloat16 (kind V) converts
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.any(np.abs(a.astype(np.float64)) >= 1e38))


def _flat(value: Any) -> list:
    """A scalar or a (nested) list's entries, flat; [] for None."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    return [value]


def _defaults_to_none(spec: ops.OpSpec) -> bool:
    """Whether the op's own data_format default is None (tf.nn.convolution's), not a layout name."""
    parameter = inspect.signature(spec.reference).parameters.get("data_format")
    return parameter is not None and parameter.default is None


def _padding_value(attrs: Mapping, fmt: str):
    """The padding as tf.nn takes it: a raw op's EXPLICIT with its flat explicit_paddings becomes the list of pairs."""
    padding = attrs.get("padding", "SAME")
    flat = attrs.get("explicit_paddings")
    if padding == "EXPLICIT" and isinstance(flat, list) and len(flat) == 2 * len(fmt):
        return [list(flat[i : i + 2]) for i in range(0, len(flat), 2)]
    return padding


def features(
    op: str,
    dtype: str,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping,
    reference_output,
    env: Environment,
    *,
    expect_error: bool = False,
    tolerance=None,
) -> dict:
    """The facts about one call of ``op`` (a tf.nn op or a raw op, with these operands and attributes) that
    divergence conditions can name (see FEATURES). The same for every kind of item: a registry case, a raw backprop
    op called by a gradient check, a backend's run, a tf.GradientTape gradient (the features of its op's call).
    ``tolerance``: the case's override of the bound (the simulated flushing is judged under it)."""
    spec = ops.get(op)
    fmt = spec.data_format(attrs)
    x = np.asarray(arrays[spec.data.name])
    x_shape, w_shape, w_layout = _convolution(spec, arrays, attrs)
    # The geometry features (kernel, padding-only rows, grouping) need the convolution's input and filter shapes.
    geometry = len(x_shape) == len(fmt) and bool(w_layout) and len(w_shape) == len(w_layout)
    padding = _padding_value(attrs, fmt)
    padding = "explicit" if padding == "EXPLICIT" else padding  # tf.raw_ops' name, without explicit_paddings
    spatial_strides, spatial_dilations = _window_values(spec, attrs, fmt)
    spatial = layouts.spatial(fmt)
    feats = {
        "op": op,
        "dtype": dtype,
        "data_format": fmt,
        "padding": padding if isinstance(padding, str) else "explicit" if isinstance(padding, list) else "invalid",
        "stride_gt_1": any(v > 1 for v in spatial_strides),
        "dilation_gt_1": any(v > 1 for v in spatial_dilations),
        "output_empty": None if reference_output is None else bool(np.asarray(reference_output).size == 0),
        "input_rank": x.ndim,
        "expect_error": expect_error,
        "quantized": SCHEMES.get(dtype),
        "output_channels_ge_8": reference_output is not None and np.shape(reference_output)[-1:] >= (8,),
        "eigen_kernel": env.eigen(spec.tf_kernels, dtype, spec.tf_padding_kind(attrs)),
        "eigen_gradient_kernel": env.eigen(spec.tf_gradient_kernels, dtype, spec.tf_padding_kind(attrs)),
        "kernel_refuses": env.refuses(spec.tf_kernels, dtype),
        "grouped": False,
        "channels_inconsistent": False,
        "data_format_null": attrs.get("data_format") is None and ("data_format" in attrs or _defaults_to_none(spec)),
        "kernel_exceeds_input": False,
        "kernel_larger_than_input": False,
        "tf_zero_output": False,
        "padding_in_batch_or_channels": False,
        "output_shape_length": len(attrs["output_shape"]) if isinstance(attrs.get("output_shape"), list) else None,
    }
    strides_value = attrs.get(spec.forms.stride_arg) if spec.forms.stride_arg else None
    # The convolution's output: a raw backprop op's out_backprop, another op's own output.
    conv_output = arrays["out_backprop"] if spec.kind == "backprop" else reference_output
    out_sizes = (
        [np.shape(conv_output)[fmt.index(c)] for c in spatial]
        if conv_output is not None and np.ndim(conv_output) == len(fmt)
        else []
    )
    feats["strided_unit_width"] = (
        bool(out_sizes) and out_sizes[-1] == 1 and len(spatial_strides) > 0 and spatial_strides[-1] > 1
    )
    feats["strided_dilated_axis"] = any(
        s > 1 and d > 1 and n > 1 for s, d, n in zip(spatial_strides, spatial_dilations, out_sizes)
    )
    kernel = [w_shape[w_layout.index(c)] if geometry else 0 for c in spatial]
    feats["dilated_kernel_axis"] = any(d > 1 and k > 1 for d, k in zip(spatial_dilations, kernel))
    feats["unequal_strides"] = len(set(spatial_strides)) > 1
    feats["pointwise_strided"] = geometry and all(k == 1 for k in kernel) and any(v > 1 for v in spatial_strides)
    feats["filter_empty"] = any(np.asarray(arrays[o.name]).size == 0 for o in spec.operands if o.kind == "filter")
    feats["input_spatial_empty"] = x.ndim == len(fmt) and any(x.shape[fmt.index(c)] == 0 for c in spatial)
    feats["batch_empty"] = len(x_shape) == len(fmt) and x_shape[fmt.index("N")] == 0
    feats["batch_gt_1"] = len(x_shape) == len(fmt) and x_shape[fmt.index("N")] > 1
    feats["fused_window_shifted"] = (  # the fused ops' im2col, which TensorFlow's quint8 QuantizedConv2D shares
        (spec.kind == "fused" or feats["quantized"] is not None)
        and geometry
        and _fused_window_shifted(x_shape, kernel, _per_axis(spatial_strides, len(spatial)), padding)
    )
    feats["same_padding_odd"] = (
        padding == "SAME" and geometry and _same_padding_odd(x_shape, fmt, kernel, spatial_strides, spatial_dilations)
    )
    try:
        full = [int(v) for v in np.asarray(strides_value).reshape(-1)] if strides_value is not None else []
    except (TypeError, ValueError):
        full = []
    feats["strides_in_batch_or_channels"] = len(full) == len(fmt) and any(
        v != 1 for v, c in zip(full, fmt) if c in "NC"
    )
    dilations_value = attrs.get(spec.forms.dilation_arg)
    feats["window_arg_not_int"] = (
        spec.forms.stride_arg is not None and strides_value is None and spec.forms.stride_arg in attrs
    ) or any(_not_int(v) for v in (strides_value, dilations_value) if v is not None)
    feats["dilations_length"] = len(dilations_value) if isinstance(dilations_value, list) else None
    feats["strides_float"] = strides_value is not None and _not_int(strides_value)
    feats["int_attr_not_int"] = any(_not_int(attrs[k]) for k in ("groups", "batch_dims") if k in attrs)
    feats["dilations_float"] = dilations_value is not None and _not_int(dilations_value)
    feats["dilations_not_int"] = dilations_value is not None and _not_int(dilations_value, (bool, float, str))
    feats["dilations_bool"] = isinstance(dilations_value, list) and _not_int(dilations_value, (bool,))
    feats["dilations_whole_float"] = any(
        isinstance(v, bool) or (isinstance(v, float) and v.is_integer()) for v in _flat(dilations_value)
    )
    filt = spec.filter
    feats["filter_rank"] = np.ndim(arrays[filt.name]) if filt is not None else None
    feats["dilations_invalid"] = _dilations_invalid(spec, dilations_value, fmt)
    feats["strides_beyond_int32"] = any(_beyond_int32(v) for v in _ints(strides_value))
    feats["dilations_beyond_int32"] = any(_beyond_int32(v) for v in _ints(dilations_value))
    feats["window_arg_beyond_int64"] = any(
        not INT64_MIN <= v <= INT64_MAX for value in (strides_value, dilations_value) for v in _ints(value)
    )
    shape_args = [attrs.get(a) for a in ("output_shape", "input_sizes", "filter_sizes")]
    feats["space_to_batch_overflow"] = any(d * d * max(x.size, 1) > INT64_MAX for d in spatial_dilations)
    feats["output_matches_input_shape"] = reference_output is not None and np.shape(reference_output) == x.shape
    feats["operand_inf_or_huge"] = any(_inf_or_huge(arrays[o.name]) for o in spec.operands if o.name in arrays)
    feats["shape_arg_negative"] = any(v < 0 for value in shape_args for v in _ints(value))
    out_shape = attrs.get("output_shape")
    feats["output_batch_mismatch"] = (
        isinstance(out_shape, list)
        and len(out_shape) == len(fmt)
        and x.ndim == len(fmt)
        and out_shape[fmt.index("N")] != x.shape[fmt.index("N")]
    )
    feats["shape_arg_out_of_range"] = any(
        v < 0 or INT32_MAX < v <= INT64_MAX for value in shape_args for v in _ints(value)
    )
    feats["out_backprop_empty"] = "out_backprop" in arrays and np.asarray(arrays["out_backprop"]).size == 0
    feats["empty_array"] = any(np.asarray(arrays[o.name]).size == 0 for o in spec.operands) or any(
        isinstance(value, list) and 0 in _ints(value) for value in shape_args
    )
    feats["filter_without_taps"] = (
        bool(w_layout)
        and len(w_shape) == len(w_layout)
        and any(w_shape[w_layout.index(c)] == 0 for c in spatial if c in w_layout)
    )
    feats["data_channels_empty"] = x.ndim == len(fmt) and x.shape[fmt.index("C")] == 0
    feats["multiplier_zero"] = any(
        "M" in o.layout
        and np.ndim(arrays[o.name]) == len(o.layout)
        and np.shape(arrays[o.name])[o.layout.index("M")] == 0
        for o in spec.operands
        if o.kind == "filter"
    )
    feats["padding_not_int"] = isinstance(padding, list) and any(
        isinstance(pair, list) and any(_not_int(v) for v in pair) for pair in padding
    )
    sizes = attrs.get("input_sizes", attrs.get("filter_sizes"))
    feats["sizes_length"] = len(sizes) if isinstance(sizes, list) else None
    feats["explicit_paddings_unused"] = bool(attrs.get("explicit_paddings")) and padding in ("SAME", "VALID")
    feats["malformed_shape"] = (
        any(np.ndim(arrays[o.name]) != len(fmt) for o in spec.operands if o.kind == "data")
        or (isinstance(strides_value, list) and len(strides_value) not in spec.forms.stride_lengths)
        or (
            isinstance(sizes, list)
            and (len(sizes) not in (2, len(fmt)) or any(isinstance(v, int) and v < 0 for v in sizes))
        )
    )
    feats["padding_negative"] = isinstance(padding, list) and any(
        isinstance(pair, list) and any(isinstance(v, int) and v < 0 for v in pair) for pair in padding
    )
    if isinstance(padding, list) and len(padding) == len(fmt):
        feats["padding_in_batch_or_channels"] = any(
            any(v != 0 for v in pair) for pair, c in zip(padding, fmt) if c in "NC" and isinstance(pair, list)
        )
    for feature, axis in (("padding_only_row", "H"), ("padding_only_column", "W")):
        feats[feature] = geometry and _padding_only_line(spec, x_shape, w_shape, w_layout, fmt, attrs, padding, axis)
    if geometry:
        groups = spec.group_count(x_shape, w_shape, attrs)
        feats["grouped"] = groups > 1
        out_axis = "I" if spec.kind == "transposed" else "O"  # the filter axis the groups must divide too
        feats["channels_inconsistent"] = groups != 1 and (
            not groups or bool(w_shape[w_layout.index(out_axis)] % groups) if out_axis in w_layout else True
        )
        # The forward convolution's input sizes: the data's, or a transposed op's output_shape (its spatial values).
        forward_in = {c: x_shape[fmt.index(c)] for c in spatial}
        target = {c: 0 for c in spatial}  # the forward output size TensorFlow's formula must not reach
        if spec.kind == "transposed":
            out = attrs.get("output_shape")
            values = out if isinstance(out, list) and all(isinstance(v, int) for v in out) else None
            if values is not None and len(values) in (len(fmt), len(spatial)):
                given = values if len(values) == len(spatial) else [values[fmt.index(c)] for c in spatial]
                target = dict(forward_in)  # TensorFlow accepts an output_shape its formula maps onto the input
                forward_in = dict(zip(spatial, given))
            else:
                forward_in = {}
        dil, strides = spatial_dilations, spatial_strides
        k_eff = {c: (w_shape[w_layout.index(c)] - 1) * _on_axis(dil, i) + 1 for i, c in enumerate(spatial)}
        feats["kernel_larger_than_input"] = any(k_eff[c] > size for c, size in forward_in.items())
        pads = (
            [(0, 0)] * len(spatial)
            if padding == "VALID"
            else []  # SAME always fits; another name is invalid
            if isinstance(padding, str)
            else [p for p, c in zip(padding, fmt) if c in spatial]
            if isinstance(padding, list)
            and len(padding) == len(fmt)
            and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in padding)
            else []
        )
        if forward_in and (padding == "VALID" or pads):
            for i, letter in enumerate(spatial):
                before_after = pads[i] if pads and i < len(pads) else (0, 0)
                excess = forward_in[letter] + sum(before_after) - k_eff[letter]
                if excess < 0:
                    feats["kernel_exceeds_input"] = True
                    stride = _on_axis(strides, i)
                    if stride > 0 and int((excess + stride) / stride) == target[letter]:  # C++ truncates toward 0
                        feats["tf_zero_output"] = True
    feats.update(special_features.features(op, dtype, arrays, attrs, reference_output, env, expect_error, tolerance))
    return {**feats, **env.facts()}


def matching(divergences, feats: Mapping[str, Any], env: Environment, backend: str | None = None) -> list[Divergence]:
    """Every divergence of TensorFlow (or, given ``backend``, of that backend) that applies to a case with these
    features, in file order."""
    return [
        d
        for d in divergences
        if ((backend in d.backends) if backend is not None else not d.backends) and d.applies(feats, env)
    ]
