"""The ``.npz`` exchange: check a kernel that runs outside Python (C, CUDA, an FPGA simulator) against TensorFlow.

Two steps around the outside implementation::

    harness export DIR [FILES] [--op OP] [--dtype DT] [--tag TAG] [--onednn 0|1]   # 1. the harness writes DIR
    ... the outside implementation reads DIR/*.npz and writes DIR/<name>.out.npy ...  # 2. yours
    harness check-npz DIR [--reports REPORTS] [--rounding R]                       # 3. the harness checks

The directory, version 2 of the format
--------------------------------------

``DIR/manifest.json`` lists the entries: one per (case, dtype) that computes a value (error contracts are left out).
Each entry has a file name stem ``NAME`` (the case name and dtype with every character outside ``[A-Za-z0-9._-]``
replaced by ``_``, cut to 80 characters and stripped of leading and trailing ``_.-``, then ``-`` and 8 hex digits
of the CRC-32 of the entry's ``id``; e.g. ``conv2d_same_2x5x5_float32-8803acc9``) and two files:

* ``DIR/NAME.npz`` (written by the harness; an uncompressed NumPy zip archive: every member is a ``.npy`` file):

  - one array per operand, under the ``tf.nn`` argument name (``input``, ``filters``; ``value`` for
    atrous_conv2d; ``filter`` for depthwise_conv2d; ``depthwise_filter`` and ``pointwise_filter`` for
    separable_conv2d), exactly as the op receives it: in the op's own layouts (the entry's ``operands[].layout``:
    the data in the case's ``data_format``, NHWC / NCHW / NWC / NCW; the filters in TensorFlow's HWIO, HWIM, HWOI
    or WIO) and already rotated when a case writes its filter for true convolution: the op always correlates;
  - ``reference``: the reference's output (``output_shape`` in ``output_layout``, the case's data_format);
  - ``tensorflow``: TensorFlow's output, only when TensorFlow returned one (``tensorflow.stored``); a TensorFlow
    that raised or aborted is described in the manifest instead;
  - ``bound``: float64, the output's shape: the largest difference allowed at each element (``harness.conv.tolerance``);
    all zeros for an exact comparison.

  The arrays have the entry's ``stored_dtype``: its ``dtype`` (float16, float32, float64, int32), except bfloat16,
  which ``.npy`` cannot hold portably: bfloat16 arrays are stored as float32 (every bfloat16 value is exactly a
  float32; the low 16 bits are zero). ``bound`` is always float64.

* ``DIR/NAME.out.npy`` (written by YOUR implementation; the entry's ``output``): one ``.npy`` array, the op's output
  for those operands, with shape ``output_shape`` in layout ``output_layout`` and dtype ``dtype`` (little- or
  big-endian). For a bfloat16 entry write float32 (rounded to bfloat16, to nearest even, before comparing) or
  uint16 (the raw bfloat16 bits). Any other dtype is a failure saying which, and so is any other shape (except
  the shape of a stored TensorFlow output that differs from the reference's: see below). An entry without its
  ``.out.npy`` is reported as skipped ("no output"), not as a failure.

``manifest.json`` (the values of ``cases/seeds.yaml::conv2d_same_2x5x5[float32]``)::

    {"format": "tf-conv-harness-npz", "version": 2, "created": "2025-06-01T12:00:00+0000",
     "harness": "0.1.0", "tensorflow": "2.21.0", "numpy": "2.4.6", "onednn": "1", "sweeps": "pairwise",
     "environment": {...},                  # as in results.json: versions, threads, CPU flags
     "output_suffix": ".out.npy",
     "divergences": [...],                  # the known divergences the entries name (rows as in results.json)
     "entries": [{
        "id": "cases/seeds.yaml::conv2d_same_2x5x5[float32]", "case_id": "cases/seeds.yaml::conv2d_same_2x5x5",
        "file": "cases/seeds.yaml", "case": "conv2d_same_2x5x5", "dtype": "float32", "stored_dtype": "float32",
        "npz": "conv2d_same_2x5x5_float32-8803acc9.npz", "output": "conv2d_same_2x5x5_float32-8803acc9.out.npy",
        "op": "conv2d", "attrs": {"strides": [1, 1, 1, 1], "padding": "SAME"},  # as passed to tf.nn.conv2d
        "data_format": "NHWC",
        "operands": [{"name": "input", "kind": "data", "shape": [1, 5, 5, 2], "layout": "NHWC"},
                     {"name": "filters", "kind": "filter", "shape": [3, 3, 2, 1], "layout": "HWIO"}],
        "output_shape": [1, 5, 5, 1], "output_layout": "NHWC",
        "tensorflow": {"behaviour": "agrees", "detail": "", "stored": true, "known_wrong": false},
        "oracle": "tensorflow",             # what an output is checked against (see below)
        "known_divergences": [],            # ids of the known divergences of TensorFlow that apply to this case
        "divergence": null,                 # the one that explains what TensorFlow did (then known_wrong: true)
        "divergence_summary": null,         # and its one-line summary
        "tolerance": {"exact": true, "c": 0.0, "u": 0.0, "override": null,
                      "text": "exact equality (integer-valued inputs, partial sums exactly representable)"},
        "tags": ["seed"], "sweep": null,
        "yaml": "cases:\n- name: conv2d_same_2x5x5\n ..."}],   # the case, for the reports
     "skipped": [{"id": "cases/errors.yaml::conv2d_stride_0[float32]", "reason": "an error contract: ..."}]}

``tolerance`` rebuilds the bound's description (``harness.conv.tolerance.Bound``): a float case has ``"exact": false,
"c": 2.0, "u": 5.96e-08`` (float32's unit roundoff) and a case's own override as ``{reason, c, atol}``; the
per-element values are the ``bound`` array.

``tensorflow.behaviour`` is what TensorFlow did against the reference: ``agrees``, ``wrong_shape``,
``wrong_values``, ``raises <ErrorClass>`` or ``aborts``. ``oracle`` is ``tensorflow`` where it agrees and
``reference`` elsewhere; ``known_wrong`` says a known divergence (``cases/known_divergences.yaml``) explains it.

How ``check`` judges an output (as ``harness verify --backend`` judges a backend, ``runner.run_backend``): where
TensorFlow agrees with the reference, the output must agree with TensorFlow under ``bound``. Where it does not
(a known divergence, an error, an abort), the output must agree with the reference, or with TensorFlow's own output
(noted). ``check`` writes ``results.json``, ``report.html`` and ``summary.md``, one record per entry in the shape of
``harness.reports.results.record`` (backend ``npz``, id ``<case id>[<dtype>@npz]``), so ``harness report`` and
``harness compare`` read them.

Quantized entries (version 2)
-----------------------------

A quantized case (``Case.quantization``, dtypes ``int8`` / ``int16``: ``cases/quantized.yaml``) is exported as
TFLite's integer op, with ``"kind": "quantized"`` and three files:

* ``DIR/NAME.tflite``: the one-op model every TFLite path ran (built from the case's parameters, or converted and
  calibrated by TFLite's converter: ``harness.check.quantized.prepare``);
* ``DIR/NAME.npz``: ``input`` (NHWC, int8 or int16), ``filter`` (int8: OHWI for conv2d and transpose_conv,
  ``[1, kh, kw, C*M]`` for depthwise), ``bias`` (int32; int64 for 16x8), and ``expected_<rounding>``, the integer
  reference's output under each rounding of ``harness.conv.quantized.ROUNDINGS`` that applies (16x8: no float32);
* ``DIR/NAME.out.npy``: yours, the output integers, NHWC, in the entry's dtype (int8 or int16) exactly.

The entry has the fields above except ``tensorflow`` and ``tolerance`` (the comparison is exact), plus::

    "kind": "quantized", "model": "NAME.tflite", "tflite_op": "CONV_2D",
    "attrs": {"strides": [1, 1], "padding": "SAME", "dilations": [1, 1]},   # TFLite's (output_shape: transpose)
    "quantization": {"scheme": "int8", "calibrated": false,
                     "input_scale": 0.02, "input_zero_point": -3, "filter_scale": [0.01, ...],  # one per channel
                     "output_scale": 0.05, "output_zero_point": 5, "activation": "RELU6",
                     "activation_range": [-128, 127],       # the clamp, as TFLite's integer kernels compute it
                     "multiplier": [1099511628, ...], "shift": [-7, ...]},  # QuantizeMultiplier, per channel
    "roundings": {"double": "expected_double", "single": "expected_single", ...},   # rounding -> array
    "tflite": {"tflite-ref": ["double", "single"], "tflite-builtin": ["double_half_up"], "tflite": ["float32"]}

``tflite`` says, per tf.lite path at export (``harness.check.quantized.PATHS``), which roundings its output equals
(several where they agree; an error text if it failed). ``check`` passes an output that equals one rounding's
(``--rounding R``: that one's) and says which, and which TFLite path computes the same; an output that matches none
fails with, per rounding, the number of outputs that differ and by how many LSB, and whether it differs where every
rounding agrees (an arithmetic error) or only where they disagree (a tie rule of its own).

Exporting into a directory that already holds a manifest replaces that export: its ``.npz`` (and ``.tflite``) files
and any ``.out.npy`` written for it are removed first (the operands may have changed), other files are left alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import yaml

from harness import atomic, ops
from harness.check import diagnose
from harness.check import quantized as quantized_check
from harness.check.prepare import prepare
from harness.check.runner import Outcome
from harness.check.verdict import (
    AGREES,
    REFERENCE,
    TENSORFLOW,
    against_oracle,
    call_behaviour,
    tensorflow_behaviour,
    verdict,
)
from harness.conv import quantized as integer
from harness.conv.dtypes import dtype_of
from harness.conv.tolerance import Bound, Override, compare
from harness.registry import divergences as divergences_module
from harness.registry.cases import Case, CaseError, parse_case
from harness.registry.quantization import SCHEMES
from harness.registry.serialize import case_yaml
from harness.reports import report, results
from harness.tf import isolation, tflite, wrappers
from harness.tf.environment import Environment
from harness.tf.isolation import Returned, call_tensorflow
from harness.tf.tflite import QUANTIZATION_KEYS

FORMAT = "tf-conv-harness-npz"
VERSION = 2  # 2: quantized entries (``"kind": "quantized"``); a version-1 directory reads as before
READS = (1, 2)
MANIFEST = "manifest.json"
NPZ_SUFFIX = ".npz"
MODEL_SUFFIX = ".tflite"
QUANTIZED = "quantized"  # the ``kind`` of a quantized entry (a float entry has none)
EXPECTED = "expected_"  # a quantized entry's expected output under rounding R: array ``expected_R``
OUTPUT_SUFFIX = ".out.npy"
BACKEND = "npz"  # the backend name in the check's records
MAX_STEM = 80
ENTRY_FIELDS = (
    "id",
    "case_id",
    "file",
    "case",
    "dtype",
    "stored_dtype",
    "npz",
    "output",
    "op",
    "attrs",
    "operands",
    "output_shape",
    "output_layout",
    "oracle",
    "yaml",
)
FLOAT_FIELDS = ("tensorflow", "tolerance")
QUANTIZED_FIELDS = ("model", "tflite_op", "quantization", "roundings", "tflite")


class ExchangeError(ValueError):
    """An exchange directory or manifest that cannot be used (the message names the file and what is wrong)."""


# --- names and dtypes -----------------------------------------------------------------------


def safe_name(case_id: str, dtype: str) -> str:
    """The file name stem of an entry: readable, unique (a CRC-32 of the full id) and safe on every file system."""
    full = f"{case_id}[{dtype}]"
    name = case_id.rpartition("::")[2]
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", f"{name}[{dtype}]")[:MAX_STEM].strip("_.-") or "case"
    return f"{slug}-{zlib.crc32(full.encode()):08x}"


def stored_dtype(dtype: str) -> str:
    return "float32" if dtype == "bfloat16" else dtype


def _to_stored(a: np.ndarray, dtype: str) -> np.ndarray:
    a = np.asarray(a)
    return np.ascontiguousarray(a.astype(np.float32) if dtype == "bfloat16" else a)


def _from_stored(a: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(a).astype(dtype_of(dtype)) if dtype == "bfloat16" else np.asarray(a)


def _harness_version() -> str:
    try:
        return metadata.version("tf-conv-harness")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_npz(path: Path, arrays: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- export ---------------------------------------------------------------------------------


def _set_onednn(onednn: str | None) -> None:
    """Run TensorFlow with TF_ENABLE_ONEDNN_OPTS=onednn: restart the isolated TensorFlow child if it runs otherwise."""
    if onednn is None or os.environ.get(wrappers.ONEDNN_ENV) == onednn:
        return
    os.environ[wrappers.ONEDNN_ENV] = onednn
    isolation.restart()  # started under the other mode: the next call starts a fresh child


def _remove_previous(directory: Path) -> int:
    """Remove the files of an earlier export in ``directory`` (its .npz and the outputs written for it)."""
    path = directory / MANIFEST
    if not path.exists():
        return 0
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        names = [(e["npz"], e["output"], *([e["model"]] if "model" in e else [])) for e in old["entries"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExchangeError(
            f"{path}: an earlier manifest that cannot be read ({exc}); remove it or export to another directory"
        ) from None
    removed = 0
    for files in names:
        for name in files:
            if Path(name).name != name:  # a manifest naming files elsewhere is not ours to clean up
                continue
            target = directory / name
            if target.is_file():
                target.unlink()
                removed += 1
    path.unlink()
    return removed


def export(
    cases_with_dtypes: Iterable[tuple[Case, str]],
    directory: Path,
    onednn: str | None = None,
    *,
    divergences: Sequence | None = None,
    root: Path | None = None,
) -> Path:
    """Write one ``.npz`` per (case, dtype) that computes a value, and ``manifest.json``; return the manifest's path.

    ``onednn`` ("0" / "1") sets TF_ENABLE_ONEDNN_OPTS for TensorFlow (None: as set, default "1"). ``divergences``:
    the known divergences of TensorFlow (default: ``<root>/cases/known_divergences.yaml``, root = the current
    directory). The file format is described in this module's docstring.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ExchangeError(f"{directory}: not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    _set_onednn(onednn)
    env = Environment.current()
    known = list(divergences) if divergences is not None else divergences_module.registry(root)
    _remove_previous(directory)

    entries: list[dict] = []
    skipped: list[dict] = []
    named: dict[str, None] = {}  # the known divergences the entries name, in order
    for case, dtype in cases_with_dtypes:
        entry_id = f"{case.id}[{dtype}]"
        if case.expect_error:
            skipped.append({"id": entry_id, "reason": "an error contract: no value to compute"})
            continue
        try:
            if case.quantization is not None:
                entry = _export_quantized(case, dtype, directory)
            else:
                entry = _export_one(case, dtype, directory, env, known)
        except (CaseError, ValueError) as exc:
            skipped.append({"id": entry_id, "reason": f"the reference rejects this case: {exc}"})
            continue
        except quantized_check.ServerError as exc:
            skipped.append({"id": entry_id, "reason": f"TensorFlow could not make its TFLite model: {exc}"})
            continue
        entries.append(entry)
        named.update({d: None for d in entry.get("known_divergences", ())})
    rows = [row for row in results.divergence_rows(known, env) if row["id"] in named]
    settings = env.record()
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": results.now(),
        "harness": _harness_version(),
        "tensorflow": settings.get("tensorflow"),
        "numpy": np.__version__,
        "onednn": settings.get("onednn"),
        "sweeps": os.environ.get("HARNESS_SWEEP", "pairwise"),
        "environment": settings,
        "output_suffix": OUTPUT_SUFFIX,
        "divergences": rows,
        "entries": entries,
        "skipped": skipped,
    }
    path = directory / MANIFEST
    atomic.write_atomic(path, json.dumps(manifest, indent=1, allow_nan=False) + "\n")
    return path


def _export_one(case: Case, dtype: str, directory: Path, env, known) -> dict:
    p = prepare(case, dtype)
    if p.reference_error is not None:
        raise p.reference_error
    spec, arrays, attrs = p.spec, p.arrays, p.attrs
    ref, bound = p.reference_output(), p.reference_bound()  # the caller skips error contracts
    behaviour, detail, tf_value, _ = tensorflow_behaviour(call_tensorflow(case.op, *p.arguments), ref, bound)
    applicable = p.applicable(known, env)
    divergence = verdict("TensorFlow", behaviour, detail, applicable).divergence

    stem = safe_name(case.id, dtype)
    stored = {name: _to_stored(a, dtype) for name, a in arrays.items()}
    stored[REFERENCE] = _to_stored(ref, dtype)
    if tf_value is not None:
        stored[TENSORFLOW] = _to_stored(tf_value, dtype)
    stored["bound"] = np.ascontiguousarray(bound.per_element, dtype=np.float64)
    if bound.overflow is not None:  # where a partial sum may overflow (special values): harness.conv.tolerance
        stored["bound_overflow"] = np.ascontiguousarray(bound.overflow)
        stored["bound_overflow_at"] = np.float64(bound.overflow_at)
    _write_npz(directory / f"{stem}{NPZ_SUFFIX}", stored)

    fmt = spec.data_format(attrs)
    override = bound.override
    return {
        "id": f"{case.id}[{dtype}]",
        "case_id": case.id,
        "file": case.file,
        "case": case.name,
        "dtype": dtype,
        "stored_dtype": stored_dtype(dtype),
        "npz": f"{stem}{NPZ_SUFFIX}",
        "output": f"{stem}{OUTPUT_SUFFIX}",
        "op": case.op,
        "attrs": results.jsonable(attrs),
        "data_format": fmt,
        "operands": [
            {
                "name": o.name,
                "kind": o.kind,
                "shape": list(arrays[o.name].shape),
                "layout": "raw" if case.inputs[o.name].raw else o.op_layout(fmt),
            }
            for o in spec.operands
        ],
        "output_shape": list(ref.shape),
        "output_layout": fmt,
        "tensorflow": {
            "behaviour": behaviour,
            "detail": detail,
            "stored": tf_value is not None,
            "known_wrong": divergence is not None,
        },
        "oracle": TENSORFLOW if behaviour == AGREES else REFERENCE,
        "known_divergences": [d.id for d in applicable],
        "divergence": divergence.id if divergence else None,
        "divergence_summary": divergence.summary if divergence else None,
        "tolerance": {
            "exact": bound.exact,
            "c": bound.c,
            "u": bound.u,
            "override": ({"reason": override.reason, "c": override.c, "atol": override.atol} if override else None),
            "text": bound.describe(),
        },
        "tags": list(case.tags),
        "sweep": case.sweep,
        "yaml": case_yaml(case),
    }


def _export_quantized(case: Case, dtype: str, directory: Path) -> dict:
    """A quantized case at scheme ``dtype``: its model, integer operands and the expected output under every
    rounding (``harness.check.quantized.prepare``), and what each of tf.lite's paths computed, as a manifest entry."""
    call = quantized_check.prepare(case, dtype)
    by_rounding = {r: call.reference(r) for r in call.roundings()}
    tflite_paths: dict[str, Any] = {}
    for path in quantized_check.TFLITE_PATHS:
        runtime, resolver, _ = quantized_check.PATHS[path]
        result = quantized_check.run_model(runtime, call.model, call.input_q, resolver)
        if isinstance(result, Returned):
            tflite_paths[path] = quantized_check.roundings_matched(np.asarray(result.value), by_rounding)
        else:
            tflite_paths[path] = (call_behaviour(result, path) or ("failed", ""))[0]

    stem = safe_name(case.id, dtype)
    stored = {"input": call.input_q, "filter": call.filter_q, "bias": call.bias_q}
    stored.update({f"{EXPECTED}{r}": v for r, v in by_rounding.items()})
    _write_npz(directory / f"{stem}{NPZ_SUFFIX}", {k: np.ascontiguousarray(v) for k, v in stored.items()})
    model = directory / f"{stem}{MODEL_SUFFIX}"
    atomic.write_atomic(model, np.asarray(call.model, np.uint8).tobytes())

    p = call.params
    multiplier, shift = integer.quantized_multipliers(p["input_scale"], p["filter_scale"], p["output_scale"])
    low, high = integer.activation_range(p["activation"], p["output_scale"], p["output_zero_point"], dtype)
    filter_layout = "1HW(C*M)" if call.op == "depthwise_conv2d" else "OHWI"
    out = by_rounding["double"]
    return {
        "kind": QUANTIZED,
        "id": f"{case.id}[{dtype}]",
        "case_id": case.id,
        "file": case.file,
        "case": case.name,
        "dtype": dtype,
        "stored_dtype": dtype,
        "npz": f"{stem}{NPZ_SUFFIX}",
        "output": f"{stem}{OUTPUT_SUFFIX}",
        "model": model.name,
        "op": case.op,
        "tflite_op": tflite.BUILTIN_NAMES[call.op],
        "attrs": results.jsonable(dict(call.attrs)),
        "data_format": "NHWC",
        "operands": [
            {"name": "input", "kind": "data", "shape": list(call.input_q.shape), "layout": "NHWC", "dtype": dtype},
            {
                "name": "filter",
                "kind": "filter",
                "shape": list(call.filter_q.shape),
                "layout": filter_layout,
                "dtype": "int8",
            },
            {
                "name": "bias",
                "kind": "bias",
                "shape": list(call.bias_q.shape),
                "layout": "O",
                "dtype": call.bias_q.dtype.name,
            },
        ],
        "output_shape": list(out.shape),
        "output_layout": "NHWC",
        "quantization": {
            "scheme": quantized_check.SCHEMES[dtype],
            "calibrated": call.calibrated,
            **{k: results.jsonable(p[k]) for k in QUANTIZATION_KEYS},
            "activation": p["activation"],
            "activation_range": [low, high],
            "multiplier": multiplier.tolist(),
            "shift": shift.tolist(),
        },
        "roundings": {r: f"{EXPECTED}{r}" for r in by_rounding},
        "tflite": tflite_paths,
        "oracle": REFERENCE,
        "tags": list(case.tags),
        "sweep": case.sweep,
        "yaml": case_yaml(case),
    }


# --- check ----------------------------------------------------------------------------------


def load_manifest(directory: Path) -> dict:
    """The manifest of an exchange directory, validated; ExchangeError naming the file and the problem."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ExchangeError(f"{directory}: no such directory")
    if not path.is_file():
        raise ExchangeError(f"{path}: no manifest (write one with: harness export {directory} ...)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExchangeError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ExchangeError(
            f"{path}: not a {FORMAT} manifest (its 'format' is "
            f"{doc.get('format') if isinstance(doc, dict) else None!r})"
        )
    if doc.get("version") not in READS:
        raise ExchangeError(
            f"{path}: format version {doc.get('version')!r}; this harness reads versions "
            f"{', '.join(map(str, READS))} (export again)"
        )
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise ExchangeError(f"{path}: field 'entries' must be a list")
    for i, entry in enumerate(entries):
        quantized = isinstance(entry, dict) and entry.get("kind") == QUANTIZED
        fields = ENTRY_FIELDS + (QUANTIZED_FIELDS if quantized else FLOAT_FIELDS)
        missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise ExchangeError(f"{path}: entries[{i}]: missing field {missing[0]!r}")
        for key in ("npz", "output", *(("model",) if entry.get("kind") == QUANTIZED else ())):
            if Path(entry[key]).name != entry[key]:
                raise ExchangeError(
                    f"{path}: entries[{i}] ({entry['id']}): field {key!r} must be a file name in "
                    f"the directory, got {entry[key]!r}"
                )
        if entry["op"] not in ops.OPS:
            raise ExchangeError(f"{path}: entries[{i}] ({entry['id']}): unknown op {entry['op']!r}")
    return doc


def _bound(entry: dict, per_element: np.ndarray, stored: dict | None = None) -> Bound:
    tol = entry["tolerance"]
    over = tol.get("override")
    override = Override(over["reason"], over.get("c"), float(over.get("atol") or 0.0)) if over else None
    stored = stored or {}
    overflow = np.asarray(stored["bound_overflow"], np.int8) if "bound_overflow" in stored else None
    overflow_at = float(stored["bound_overflow_at"]) if "bound_overflow_at" in stored else np.inf
    return Bound(
        np.asarray(per_element, dtype=np.float64),
        bool(tol["exact"]),
        float(tol["c"]),
        float(tol["u"]),
        override,
        overflow,
        overflow_at,
    )


def _case(entry: dict) -> Case:
    """The entry's case, back from the YAML the export stored (for the record's file, tags, layouts and YAML)."""
    try:
        raw = yaml.safe_load(entry["yaml"])["cases"][0]
        case = parse_case(entry["file"], raw, 0)
    except (yaml.YAMLError, CaseError, KeyError, IndexError, TypeError) as exc:
        raise ExchangeError(
            f"{MANIFEST}: entry {entry['id']}: its case ('yaml') cannot be read back ({exc}); export again"
        ) from None
    return dataclasses.replace(case, sweep=entry.get("sweep"))


def _read_output(path: Path, entry: dict) -> tuple[np.ndarray | None, list[str], list[str]]:
    """(the output at the entry's dtype or None, errors, notes)."""
    name = path.name
    try:
        got = np.load(path, allow_pickle=False)
    except Exception as exc:  # a truncated file, a pickle, not NumPy's format at all
        return (
            None,
            [
                f"cannot read {name}: {type(exc).__name__}: {exc} (write one .npy array, e.g. with "
                f"numpy.save; see harness/exchange.py for the format)"
            ],
            [],
        )
    if isinstance(got, np.lib.npyio.NpzFile):
        got.close()
        return None, [f"{name} is an .npz archive; write one .npy array (numpy.save) under this name"], []
    got = np.asarray(got)
    if not got.dtype.isnative:  # big-endian data written on (or for) another machine
        got = got.astype(got.dtype.newbyteorder("="))
    dtype, notes = entry["dtype"], []
    want = np.dtype(dtype) if dtype in SCHEMES else dtype_of(dtype)  # int8 / int16: a quantized entry
    if dtype == "bfloat16" and got.dtype == np.float32:
        rounded = got.astype(want)
        if not np.array_equal(rounded.astype(np.float32), got, equal_nan=True):
            notes.append(f"{name}: float32 values that are not bfloat16 values; rounded to bfloat16 before comparing")
        got = rounded
    elif dtype == "bfloat16" and got.dtype == np.uint16:
        got = got.view(ml_dtypes.bfloat16)
    elif got.dtype != want:
        allowed = "float32 (rounded to bfloat16) or uint16 (the raw bfloat16 bits)" if dtype == "bfloat16" else dtype
        return None, [f"{name} has dtype {got.dtype}; this entry's dtype is {dtype}: write {allowed}"], notes
    return got, [], notes


def _check_one(directory: Path, entry: dict):
    """The ``runner.Outcome`` of one entry's output."""
    start = time.perf_counter()
    case = _case(entry)
    dtype = entry["dtype"]
    attrs = entry["attrs"]
    shapes = {o["name"]: tuple(o["shape"]) for o in entry["operands"]}
    shapes["output"] = tuple(entry["output_shape"])
    tf_info = entry["tensorflow"]
    tf_text = tf_info["behaviour"] + (f" ({tf_info['detail']})" if tf_info.get("detail") else "")
    if tf_info.get("known_wrong"):
        tf_text += f"; known divergence {entry.get('divergence')!r}"
    common = dict(
        attrs=attrs,
        shapes=shapes,
        tensorflow=tf_text,
        applicable=tuple(entry.get("known_divergences", ())),
        backend=BACKEND,
    )

    def done(status: str, **kw) -> Outcome:
        return Outcome(case, dtype, status, seconds=time.perf_counter() - start, **common, **kw)

    out_path = directory / entry["output"]
    if not out_path.exists():
        return done("skipped", skip_reason=f"no output: {entry['output']} was not written")
    stored = _load_arrays(directory / entry["npz"], (REFERENCE, "bound", *(o["name"] for o in entry["operands"])))
    ref = _from_stored(stored[REFERENCE], dtype)
    tf_value = _from_stored(stored[TENSORFLOW], dtype) if TENSORFLOW in stored else None
    bound = _bound(entry, stored["bound"], stored)
    common["bound"] = bound

    got, errors, notes = _read_output(out_path, entry)
    if got is None:
        return done("failed", errors=tuple(errors), notes=tuple(notes), outputs={REFERENCE: ref})
    if got.shape != ref.shape and (tf_value is None or got.shape != tf_value.shape):
        errors.append(
            f"{entry['output']} has shape {list(got.shape)}; the output is {list(ref.shape)} in layout "
            f"{entry['output_layout']}"
        )

    tf_check = compare(TENSORFLOW, tf_value, REFERENCE, ref, bound) if tf_value is not None else None
    tf_right = tf_check is not None and tf_check.ok
    comparisons, behaviour, detail, oracle_notes = against_oracle(
        BACKEND,
        got,
        ref,
        tf_value,
        tf_right,
        bound,
        f" (known divergence {entry['divergence']!r})" if entry.get("divergence") else "",
    )
    notes += oracle_notes
    if tf_check is not None:
        comparisons.append(tf_check)
    if behaviour == "wrong_shape":
        detail = f"{entry['output']} has shape {list(got.shape)}, the reference {list(ref.shape)}"
    elif behaviour == "wrong_values":
        detail = (
            f"{entry['output']} is outside the bound around {'TensorFlow' if tf_right else 'the reference'}'s output"
        )
    decided = verdict(BACKEND, AGREES if errors else behaviour, detail, (), errors)  # a read error says enough
    status, errors = decided.status, list(decided.errors)
    found: tuple[str, ...] = ()
    if status == "failed" and got.shape == ref.shape:
        arrays = {o["name"]: _from_stored(stored[o["name"]], dtype) for o in entry["operands"]}
        try:
            found = (diagnose.explain(entry["op"], arrays, attrs, got, bound, BACKEND),)
        except Exception as exc:  # the diagnosis is a help, never the reason a check stops
            found = (f"no diagnosis: {type(exc).__name__}: {exc}",)
    outputs = {REFERENCE: ref, **({TENSORFLOW: tf_value} if tf_value is not None else {}), BACKEND: got}
    return done(
        status,
        comparisons=tuple(comparisons),
        errors=tuple(errors),
        notes=tuple(notes),
        diagnosis=found,
        outputs=outputs if status == "failed" else {},
    )


def _load_arrays(npz_path: Path, keys: Iterable[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            stored = {key: data[key] for key in data.files}
    except Exception as exc:
        raise ExchangeError(f"{npz_path}: cannot read the exported arrays ({exc}); export again") from None
    for key in keys:
        if key not in stored:
            raise ExchangeError(f"{npz_path}: no array {key!r}; export again")
    return stored


def rounding_differences(got: np.ndarray, expected: Mapping[str, np.ndarray]) -> str:
    """What an integer output that matches no rounding gets wrong: how many outputs differ from the first rounding's
    (and from each other's) and by how much, and whether it differs where every rounding gives the same value (an
    arithmetic error) or only where they disagree (a tie rule of its own)."""
    g = got.astype(np.int64)
    values = {r: v.astype(np.int64) for r, v in expected.items()}
    (first, want), *others = values.items()
    d = g - want
    signs = {int(v) for v in np.sign(d[d != 0])}
    way = ", all below" if signs == {-1} else ", all above" if signs == {1} else ""
    text = f"{int((d != 0).sum())} of {d.size} outputs differ from {first} rounding by up to {int(np.abs(d).max())} LSB"
    text += way + (f" (from {', '.join(f'{r}: {int((g != v).sum())}' for r, v in others)})" if others else "")
    agree = np.logical_and.reduce([v == want for _, v in others]) if others else np.ones(g.shape, bool)
    off = int(((g != want) & agree).sum())
    if off:
        return text + (
            f"; {off} where every rounding gives the same value: an error in the arithmetic (a truncating shift, a "
            f"wrong multiplier, zero point or clamp), not a tie rule"
        )
    return text + "; only where the roundings disagree (ties and near-ties): a tie rule of its own"


def _check_quantized(directory: Path, entry: dict, rounding: str | None) -> Outcome:
    """The ``runner.Outcome`` of a quantized entry's output: exactly one of the roundings' outputs (``rounding``:
    that one), saying which and which of tf.lite's paths computes the same."""
    start = time.perf_counter()
    case = _case(entry)
    dtype = entry["dtype"]
    roundings: dict[str, str] = entry["roundings"]
    if rounding is not None and rounding not in roundings:
        raise ExchangeError(
            f"{MANIFEST}: entry {entry['id']} has no rounding {rounding!r} (it has {', '.join(roundings)})"
        )
    shapes = {o["name"]: tuple(o["shape"]) for o in entry["operands"]}
    shapes["output"] = tuple(entry["output_shape"])
    paths = entry["tflite"]
    tf_text = "; ".join(
        f"{p}: {'rounds ' + ', '.join(m) if isinstance(m, list) and m else m or 'matches no rounding'}"
        for p, m in paths.items()
    )
    bound = quantized_check.exact_bound(shapes["output"])
    common = dict(attrs=entry["attrs"], shapes=shapes, tensorflow=tf_text, backend=BACKEND, bound=bound)

    def done(status: str, **kw) -> Outcome:
        return Outcome(case, dtype, status, seconds=time.perf_counter() - start, **common, **kw)

    out_path = directory / entry["output"]
    if not out_path.exists():
        return done("skipped", skip_reason=f"no output: {entry['output']} was not written")
    stored = _load_arrays(directory / entry["npz"], roundings.values())
    expected = {r: stored[key] for r, key in roundings.items()}
    got, errors, notes = _read_output(out_path, entry)
    if got is None:
        return done("failed", errors=tuple(errors), notes=tuple(notes))
    want_shape = tuple(entry["output_shape"])
    if got.shape != want_shape:
        message = f"{entry['output']} has shape {list(got.shape)}; the output is {list(want_shape)} in layout NHWC"
        return done("failed", errors=(message,), notes=tuple(notes))
    matched = quantized_check.roundings_matched(got, expected)
    hit = [r for r in ([rounding] if rounding is not None else expected) if r in matched]
    target = hit[0] if hit else (rounding or "double")
    comparison = compare(BACKEND, got, f"{REFERENCE} ({target} rounding)", expected[target], bound)
    same_paths = [p for p, m in paths.items() if isinstance(m, list) and set(m) & set(matched)]
    by = f" (as tf.lite's {', '.join(same_paths)} at export)" if same_paths else ""
    if matched:
        notes.append(f"{entry['output']} is the reference's output under {', '.join(matched)} rounding{by}")
    if hit:
        detail = f"exact, {', '.join(matched)} rounding"
        return done("passed", comparisons=(dataclasses.replace(comparison, detail=detail),), notes=tuple(notes))
    if matched:
        message = f"{entry['output']} rounds {', '.join(matched)}{by}, not {rounding} as required (--rounding)"
    else:
        message = f"{entry['output']} matches no rounding: " + rounding_differences(got, expected)
    outputs = {f"{REFERENCE} ({r})": v for r, v in expected.items()} | {BACKEND: got}
    return done(
        "failed",
        comparisons=(dataclasses.replace(comparison, detail=message),),
        errors=(message,),
        notes=tuple(notes),
        outputs=outputs,
    )


def check(directory: Path, reports: Path | None = None, rounding: str | None = None) -> list[dict]:
    """Check every output written into an exchange directory; one record (``harness.reports.results.record``) per entry.

    With ``reports``, also write ``results.json``, ``report.html`` and ``summary.md`` there. ``rounding``: a quantized
    entry's output must be the reference's under that rounding (default: under any of its ``roundings``).
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    if rounding is not None and rounding not in integer.ROUNDINGS:
        raise ExchangeError(f"unknown rounding {rounding!r}: one of {', '.join(integer.ROUNDINGS)}")
    started, t0 = results.now(), time.perf_counter()
    records = []
    for entry in manifest["entries"]:
        if entry.get("kind") == QUANTIZED:
            outcome = _check_quantized(directory, entry, rounding)
        else:
            outcome = _check_one(directory, entry)
        rec = results.record(outcome, f"{entry['case_id']}[{entry['dtype']}@{BACKEND}]", entry.get("tags", ()))
        rec["exchange"] = {"npz": entry["npz"], "output": entry["output"], "oracle": entry["oracle"]}
        records.append(rec)
    if reports is not None:
        write_reports(records, manifest, Path(reports), directory, started, time.perf_counter() - t0)
    return records


def write_reports(
    records: list[dict],
    manifest: dict,
    reports: Path,
    directory: Path | None = None,
    started: str | None = None,
    seconds: float = 0.0,
) -> list[Path]:
    """``results.json``, ``report.html`` and ``summary.md`` of a check, in ``reports``; their paths."""
    failed = any(r["status"] == "failed" for r in records)
    run = results.Run(
        environment={**manifest.get("environment", {}), "backend": BACKEND},
        run={
            "started": started or results.now(),
            "finished": results.now(),
            "seconds": seconds,
            "exitstatus": 1 if failed else 0,
            "interrupted": False,
            "complete": True,
            "sweeps": manifest.get("sweeps", "?"),
            "argv": results.argv(),
            "backend": BACKEND,
            "exchange": str(directory) if directory is not None else None,
            "exported": manifest.get("created"),
        },
        divergences=list(manifest.get("divergences", [])),
        records=records,
    )
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / results.RESULTS_JSON
    atomic.write_atomic(path, run.to_json())
    return [path, *report.write_reports(run, reports)]


# --- the command-line entry points (wired by harness.cli) ------------------------------------


def select(
    entries, op_filter: Sequence[str] = (), dtype_filter: Sequence[str] = (), tag_filter: Sequence[str] = ()
) -> list[tuple[Case, str]]:
    """(case, dtype) pairs of the loaded entries that pass the filters (as ``harness list`` selects them)."""
    chosen = []
    for entry in entries:
        if not isinstance(entry, Case) or (op_filter and entry.op not in op_filter):
            continue
        if tag_filter and not set(tag_filter) & set(entry.tags):
            continue
        chosen += [(entry, d) for d in entry.dtypes if not dtype_filter or d in dtype_filter]
    return chosen
