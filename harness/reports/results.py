"""Run results as data: one JSON record per pytest item plus the run's environment.

The pytest plugin turns every ``Outcome`` into a ``record`` (a plain dict, JSON-safe) on the worker that ran it,
so that it crosses pytest-xdist unchanged; the controller streams each record to ``results.jsonl`` as it arrives
(one line, flushed) and writes ``results.json`` at the end. A run killed before the end still leaves the
stream, and ``harness report DIR`` rebuilds every report from it (``load`` reads either file).

``results.json``::

    {"schema": 1,
     "environment": {tensorflow, numpy, python, onednn, threads, cpu_model, cpu_flags, cpu_isa_level,
                     onednn_isa_cap, onednn_isa, kernel_paths, probe, ...}    # harness.environment: record()
     "run": {started, finished, seconds, exitstatus, interrupted, complete, sweeps, argv, rootdir,
             registry,             # harness.registry.loader.fingerprint of cases/
             shard,                # "I/N", or null: the whole selection
             selection,            # the options that ran part of the registry ({}: all of it)
             divergence_versions,  # "declared", or "any" (--any-tensorflow-version)
             stale_divergences},   # per_entry divergences no case showed (stale_per_entry)
     "divergences": [{id, kind, summary, onednn, tensorflow_versions, tensorflow_does, strict, link, file}],
     "records": [{id, kind, status, op, dtype, attrs, shapes, layouts, coverage, implementations,
                  max_abs_error, max_rel_error, bound, margin, seconds, ...}]}

Results files from before a run key existed lack it: readers treat a missing key as unknown. A run merged from
several (``harness report --merge``, ``harness.reports.merge``) also has ``run.merged_from`` and ``run.merge``, a
``source`` in each record, and, when its runs came from different environments, ``environments``: one
``{source, environment}`` per run (``environment`` then holds only the facts they share).

Non-finite error figures (a shape mismatch has an infinite error) are written as ``null``: the files are strict
JSON, readable by any consumer and by the HTML report's browser.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import ops
from harness.conv import layouts
from harness.registry.cases import DIVERGENCES_FILE
from harness.registry.serialize import case_yaml

SCHEMA = 1
RESULTS_JSON = "results.json"
RESULTS_STREAM = "results.jsonl"
STATUSES = ("passed", "xfailed", "failed", "skipped", "malformed", "error")  # "error": a test's setup/teardown failed
HEATMAP_BATCHES, HEATMAP_CHANNELS = 2, 4  # the slices of a failing output kept for the heatmaps
REPROS_PREFIX = f"cases/{DIVERGENCES_FILE}::"  # the ids of the known divergences' own repro cases


def finite(value: float) -> float | None:
    """A float for JSON: None when infinite or NaN."""
    value = float(value)
    return value if np.isfinite(value) else None


def jsonable(value: Any) -> Any:
    """Attributes and shapes as JSON types (tuples -> lists, NumPy scalars -> Python)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return finite(value)
    return value


# --- arrays for the heatmaps --------------------------------------------------------------


def encode_array(a: np.ndarray) -> dict:
    """An array as {shape, float64 little-endian bytes in base64}: exact, with inf and NaN kept."""
    a64 = np.ascontiguousarray(np.asarray(a, dtype=np.float64)).astype("<f8")
    return {"shape": list(a64.shape), "f8": base64.b64encode(a64.tobytes()).decode("ascii")}


def decode_array(encoded: Mapping) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded["f8"]), dtype="<f8").reshape(encoded["shape"])


def heatmap_slices(a: np.ndarray, fmt: str) -> np.ndarray:
    """An output in layout ``fmt`` as N×H×W×C (channels last, W=1 for 1-D ops), cut to the slices a report shows."""
    a_nhwc = layouts.convert(np.asarray(a), fmt, layouts.channels_last(fmt))
    if a_nhwc.ndim == 3:  # NWC: one row
        a_nhwc = a_nhwc[:, None, :, :]
    return a_nhwc[:HEATMAP_BATCHES, :, :, :HEATMAP_CHANNELS]


# --- one record per item --------------------------------------------------------------------


def _label(values: Iterable[int]) -> str:
    """Per-axis strides or dilations as a short label: "1", "2", "1x2"."""
    values = [int(v) for v in values]
    if not values:
        return "?"
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def coverage(op: str, attrs: Mapping) -> dict[str, str]:
    """The coverage-matrix coordinates of a case: padding, stride, dilation and layout labels."""
    spec = ops.get(op)
    fmt = spec.data_format(attrs)
    padding = attrs.get("padding", "SAME")
    cell = {"padding": padding if isinstance(padding, str) else "explicit", "layout": fmt}
    try:  # the labels need strides and dilations only (a raw op's EXPLICIT padding is not tf.nn's form)
        strides, dilations, _ = spec.window_attrs({k: v for k, v in attrs.items() if k != "padding"})
        cell.update(stride=_label(strides), dilation=_label(dilations))
    except (ValueError, TypeError):  # an error contract's deliberately bad attributes
        cell.update(stride="invalid", dilation="invalid")
    return cell


def op_label(rec: dict) -> str:
    """The row a record counts in per op: the op, or "<op> gradients" / "<op> reference" for a gradient item or a
    reference self-check item (``harness.check.self_checks``)."""
    op = rec.get("op") or "?"
    return f"{op} {rec['check']}" if rec.get("check") in ("gradients", "reference") else op


def record(outcome, item_id: str, tags: Iterable[str] = (), with_arrays: bool | None = None) -> dict:
    """The JSON record of one ``runner.Outcome``.

    A failing record also carries the case's YAML, the full report text and (``with_arrays``, default: when it
    failed) the reference and TensorFlow outputs cut to ``heatmap_slices``, so a report can be rebuilt from
    ``results.json`` alone.
    """

    case = outcome.case
    spec = ops.get(case.op)
    fmt = spec.data_format(outcome.attrs or case.attrs)
    comparisons = outcome.comparisons
    worst = max(comparisons, key=lambda c: c.margin, default=None)
    rec = {
        "id": item_id,
        "kind": "case",
        "status": outcome.status,
        "file": case.file,
        "case": case.name,
        "op": case.op,
        "dtype": outcome.dtype,
        "tags": list(tags),
        "sweep": case.sweep,
        "attrs": jsonable(outcome.attrs or case.attrs),
        "shapes": jsonable(outcome.shapes),
        "layouts": {
            **{
                name: {
                    "given": t.layout,
                    "op": ("raw" if t.raw else spec.operand(name).op_layout(fmt)),
                    "kernel": t.kernel,
                }
                for name, t in case.inputs.items()
            },
            "output": {
                "op": spec.output_format(outcome.attrs or case.attrs),
                "expected": case.expected.layout if case.expected else None,
            },
        },
        "coverage": coverage(case.op, outcome.attrs or case.attrs),
        "expect_error": bool(case.expect_error),
        "implementations": ["reference", *(c.subject for c in comparisons if c.against == "reference")],
        "tensorflow": outcome.tensorflow,
        "divergence": outcome.divergence.id if outcome.divergence else None,
        "applicable_divergences": list(outcome.applicable),
        "diverged_divergences": list(outcome.diverged),
        "features": jsonable(dict(outcome.features)),
        "max_abs_error": finite(max((c.max_abs_error for c in comparisons), default=0.0)),
        "max_rel_error": finite(max((c.max_rel_error for c in comparisons), default=0.0)),
        "bound": finite(max((c.max_bound for c in comparisons), default=0.0)),
        "margin": finite(outcome.worst_margin),
        "worst": f"{worst.subject} vs {worst.against}" if worst else None,
        "tolerance": outcome.bound.describe() if outcome.bound else None,
        "tolerance_override": (
            {"reason": case.tolerance.reason, "c": case.tolerance.c, "atol": case.tolerance.atol}
            if case.tolerance
            else None
        ),
        "comparisons": [
            {
                "subject": c.subject,
                "against": c.against,
                "ok": c.ok,
                "max_abs_error": finite(c.max_abs_error),
                "max_rel_error": finite(c.max_rel_error),
                "bound": finite(c.max_bound),
                "margin": finite(c.margin),
                "detail": c.detail,
            }
            for c in comparisons
        ],
        "errors": list(outcome.errors),
        "notes": list(outcome.notes),
        "diagnosis": list(outcome.diagnosis),
        "not_applicable": dict(outcome.not_applicable),
        "seconds": outcome.seconds,
        "backend": outcome.backend,
        "check": outcome.check,
        "skip_reason": outcome.skip_reason or None,
    }
    if outcome.status == "failed":
        rec["report"] = outcome.report()
        rec["yaml"] = case_yaml(case)
    if with_arrays if with_arrays is not None else outcome.status == "failed":
        rec["arrays"] = {
            name: encode_array(heatmap_slices(a, fmt)) for name, a in outcome.outputs.items() if np.ndim(a) == len(fmt)
        }
        rec["arrays_layout"] = "NHWC" if len(fmt) == 4 else "NWC as N×1×W×C"
    return rec


def item_record(item_id: str, status: str, seconds: float, message: str = "", kind: str = "test") -> dict:
    """The record of an item that is not a case run: a harness self-test, a malformed case, a crashed worker."""
    return {"id": item_id, "kind": kind, "status": status, "seconds": seconds, "errors": [message] if message else []}


# --- writing and reading --------------------------------------------------------------------


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


@dataclass
class Run:
    """A run's results: what ``results.json`` holds."""

    environment: dict
    run: dict = field(default_factory=dict)
    divergences: list = field(default_factory=list)
    records: list = field(default_factory=list)
    environments: list | None = None  # a merged run's [{source, environment}] when its runs' environments differ

    def to_json(self) -> str:
        doc = {
            "schema": SCHEMA,
            "environment": self.environment,
            "run": self.run,
            "divergences": self.divergences,
            "records": self.records,
        }
        if self.environments is not None:
            doc["environments"] = self.environments
        return json.dumps(doc, allow_nan=False, separators=(",", ":"))

    @property
    def cases(self) -> list[dict]:
        return [r for r in self.records if r.get("kind") == "case"]

    def counts(self, kind: str | None = "case") -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for r in self.records:
            if kind is None or r.get("kind") == kind:
                counts[r["status"]] = counts.get(r["status"], 0) + 1
        return counts


def record_key(rec: Mapping) -> tuple[str, str | None]:
    """What makes a record unique within a run: its id (an item id already names its dtype, check and backend:
    ``FILE::CASE[DTYPE]``, ``[DTYPE:gradients]``, ``[DTYPE@BACKEND]``), with its backend for records made elsewhere."""
    return str(rec["id"]), rec.get("backend") or None


def stale_per_entry(records: Iterable[Mapping], per_entry_ids: Iterable[str]) -> list[str]:
    """The ``strict: per_entry`` divergences (of ``per_entry_ids``) that matched some case of ``records`` but made
    none diverge: TensorFlow may have fixed them (``run.stale_divergences``).

    Only the default check's case records count (a backend's verdict is against TensorFlow, not the reference).
    Judged only when ``records`` include the entries' own repro cases (``REPROS_PREFIX``), else []: a subset may
    hold an entry's coincidental agreements without its divergent cases. The caller decides whether the records are
    the whole registry (the plugin skips a share or a selection; ``harness report --merge`` checks the union).
    """
    known = set(per_entry_ids)
    matched: set[str] = set()
    diverged: set[str] = set()
    ran_repros = False
    for rec in records:
        if rec.get("kind") != "case" or rec.get("backend"):
            continue
        ran_repros |= str(rec["id"]).startswith(REPROS_PREFIX)
        matched.update(i for i in rec.get("applicable_divergences") or () if i in known)
        # every entry that excused a part of the case (older records: the one that excused it)
        diverged.update(i for i in (rec.get("diverged_divergences") or [rec.get("divergence")]) if i in known)
    return sorted(matched - diverged) if ran_repros else []


class Stream:
    """``results.jsonl``: a header line, then one line per record, flushed as each arrives."""

    def __init__(self, directory: Path, header: dict):
        self.path = Path(directory) / RESULTS_STREAM
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")
        self.write({"header": header})

    def write(self, obj: dict) -> None:
        self._file.write(dumps(obj) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def divergence_rows(known, env=None) -> list[dict]:
    """The known-divergence registry as JSON rows for the reports; ``not_here``: why an entry cannot apply in the
    run's environment (``Divergence.not_here``), None where it can."""
    return [
        {
            "id": d.id,
            "kind": d.kind,
            "summary": d.summary,
            "onednn": d.onednn,
            "scope": d.scope,
            "tensorflow_versions": str(d.tensorflow_versions) or "any",
            "tensorflow_does": list(d.tensorflow_does),
            "strict": d.strict,
            "backend": d.backend,
            "link": d.link,
            "file": d.file,
            "evidence": d.evidence,
            "when": jsonable(dict(d.when)),
            "observed_on": list(d.observed_on),
            "not_here": d.not_here(env) if env is not None else None,
        }
        for d in known
    ]


class ResultsError(ValueError):
    """A results file that cannot be read (message names the file)."""


def load(path: Path) -> Run:
    """A run from ``results.json``, from a ``results.jsonl`` stream (a run that was killed), or from a directory
    holding either (the complete file preferred)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON if (path / RESULTS_JSON).exists() else path / RESULTS_STREAM
    if not path.exists():
        raise ResultsError(f"{path}: no such file (a run with --reports DIR writes {RESULTS_JSON} there)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from None
    if path.suffix == ".jsonl":
        return _load_stream(path, text)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("records"), list):
        raise ResultsError(f"{path}: not a harness results file (schema {SCHEMA} with a 'records' list)")
    return Run(
        doc.get("environment", {}),
        doc.get("run", {}),
        doc.get("divergences", []),
        doc["records"],
        doc.get("environments"),
    )


def _load_stream(path: Path, text: str) -> Run:
    lines = text.splitlines()
    try:
        header = json.loads(lines[0])["header"]
    except (IndexError, ValueError, KeyError, TypeError):
        raise ResultsError(f"{path}: not a harness results stream (no header line)") from None
    records = []
    for n, line in enumerate(lines[1:], start=2):
        try:
            records.append(json.loads(line))
        except ValueError:
            if n == len(lines):  # the line being written when the run was killed
                continue
            raise ResultsError(f"{path}:{n}: not valid JSON") from None
    run = {**header.get("run", {}), "complete": False, "interrupted": False}  # killed: incomplete, not interrupted
    return Run(header.get("environment", {}), run, header.get("divergences", []), records)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def argv() -> list[str]:
    return list(sys.argv)
