"""What changed between runs: ``harness compare A B [C ...]`` and anything else that compares results files.

Pure functions over ``results.Run`` objects (no files, no clock, no TensorFlow):

* ``compare_runs(a, b)``: what changed from one run to the next, by record id (new failures, fixes, changed
  behaviour, error growth, ids found in one run only, environment differences);
* ``compare_many(runs, labels)``: two or more runs (e.g. consecutive TensorFlow versions), as one JSON-ready dict:
  a per-op table with each run's counts, the items whose status differs between any two runs, and
  ``compare_runs`` of every consecutive pair;
* ``pair_lines``, ``table_lines`` and ``machines_side_by_side``: the text ``harness compare`` prints.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from harness.conv.dtypes import DTYPES
from harness.reports import results
from harness.tf import environment, machine

FAILING = ("failed", "malformed", "error")
TABLE_STATUSES = ("passed", "xfailed", "failed")  # the per-op table's counts ("failed" includes "error")


def compare_runs(a: results.Run, b: results.Run, growth: float = 2.0, floor: float = 0.01) -> dict:
    """What changed from run ``a`` to run ``b``, by record id.

    * new_failures / fixed: failing in one run and passing or xfailed in the other;
    * changed: passed <-> xfailed, or TensorFlow's behaviour changed (e.g. a divergence appeared or went away);
    * error_growth: both ran, and the worst error over the bound (the margin) grew by at least ``growth`` times
      to at least ``floor`` (tiny margins move with every BLAS).

    Returns ``{only_a: [id], only_b: [id], new_failures: [(id, status_a, status_b, first error of b)],
    fixed: [(id, status_a, status_b, "")], changed: [(id, "status_a: behaviour_a", "status_b: behaviour_b")],
    error_growth: [(id, margin_a, margin_b, max_abs_error_a, max_abs_error_b)] (largest growth first),
    environment: [(key, value_a, value_b)] (``flat_environment`` keys that differ)}``. A run with several records
    of one id (a merged run whose runs overlapped) is compared through the last of them.
    """
    ra, rb = {r["id"]: r for r in a.records}, {r["id"]: r for r in b.records}
    both = [i for i in rb if i in ra]
    out = {
        "only_a": sorted(set(ra) - set(rb)),
        "only_b": sorted(set(rb) - set(ra)),
        "new_failures": [],
        "fixed": [],
        "changed": [],
        "error_growth": [],
    }
    for i in both:
        sa, sb = ra[i]["status"], rb[i]["status"]
        if sb in FAILING and sa not in FAILING:
            out["new_failures"].append((i, sa, sb, first_error(rb[i])))
        elif sa in FAILING and sb not in FAILING:
            out["fixed"].append((i, sa, sb, ""))
        elif sa != sb or behaviour(ra[i]) != behaviour(rb[i]):
            out["changed"].append((i, f"{sa}: {ra[i].get('tensorflow', '')}", f"{sb}: {rb[i].get('tensorflow', '')}"))
        ma, mb = ra[i].get("margin"), rb[i].get("margin")
        if ma is not None and mb is not None and mb >= floor and (ma == 0 or mb / ma >= growth):
            out["error_growth"].append((i, ma, mb, ra[i].get("max_abs_error"), rb[i].get("max_abs_error")))
    out["error_growth"].sort(key=lambda g: -(g[2] / g[1]) if g[1] else -np.inf)
    ea, eb = flat_environment(a.environment), flat_environment(b.environment)
    out["environment"] = [(k, ea.get(k), eb.get(k)) for k in sorted(set(ea) | set(eb)) if ea.get(k) != eb.get(k)]
    return out


def behaviour(rec: dict) -> str:
    """TensorFlow's behaviour without its detail (messages carry pids, timestamps and garbage values)."""
    return str(rec.get("tensorflow") or "").split(" (", 1)[0]


def flat_environment(env: dict) -> dict:
    """An environment record with its kernel-path table as one key per kernel and dtype and its probe reduced to
    what a reader compares (the oneDNN version and any error), so that differences name the fact that differs."""
    flat = {k: v for k, v in env.items() if k not in ("kernel_paths", "probe")}
    for kernel, by_dtype in (env.get("kernel_paths") or {}).items():
        flat.update({f"kernel_paths.{kernel}.{dtype}": path for dtype, path in by_dtype.items()})
    probe = env.get("probe") or {}
    flat.update({f"probe.{k}": probe.get(k) for k in ("onednn_version", "error") if k in probe})
    if isinstance(flat.get("cpu_flags"), list):
        flat["cpu_flags"] = " ".join(flat["cpu_flags"])
    if isinstance(flat.get("memory_budget"), dict):
        flat["memory_budget"] = machine.MemoryBudget.from_record(flat["memory_budget"]).describe()
    return flat


def first_error(rec: dict) -> str:
    errors = rec.get("errors") or []
    return errors[0].splitlines()[0][:160] if errors else ""


# --- two or more runs -----------------------------------------------------------------------


def column_names(n: int) -> list[str]:
    """The runs' short names in the text: A, B, C, ... (1, 2, 3, ... past 26 runs)."""
    return [chr(ord("A") + k) for k in range(n)] if n <= 26 else [str(k + 1) for k in range(n)]


def table_row(rec: dict) -> str:
    """The per-op table's row of a record: its op (``results.op_label``), and ``@backend`` for a backend's check."""
    return results.op_label(rec) + (f" @{rec['backend']}" if rec.get("backend") else "")


def per_op_counts(run: results.Run) -> dict[str, dict[str, int]]:
    """Row -> {passed, xfailed, failed} over the run's case records (an ``error`` counts as failed; skipped items,
    malformed cases and crashed items are left out, as in the reports' per-op table)."""
    table: dict[str, Counter] = defaultdict(Counter)
    for rec in run.records:
        if rec.get("kind") == "case":
            status = "failed" if rec["status"] == "error" else rec["status"]
            row = table[table_row(rec)]
            if status in TABLE_STATUSES:
                row[status] += 1
    return {row: {s: c[s] for s in TABLE_STATUSES} for row, c in table.items()}


def statuses(run: results.Run) -> dict[str, str]:
    """Record id -> status; an id recorded more than once (a merged run whose runs overlapped) with different
    statuses gets them joined with "+" in the order they appear."""
    seen: dict[str, list[str]] = {}
    for rec in run.records:
        found = seen.setdefault(rec["id"], [])
        if rec["status"] not in found:
            found.append(rec["status"])
    return {i: "+".join(s) for i, s in seen.items()}


def compare_many(
    runs: Sequence[results.Run], labels: Sequence[str] | None = None, growth: float = 2.0, floor: float = 0.01
) -> dict:
    """Two or more runs, in order (e.g. oldest TensorFlow first), as one JSON-ready dict (lists, no tuples)::

        {"runs":  [{"label", "records": n, "counts": results.Run.counts()}],             # one per run, in order
         "table": {"columns": [label, ...],
                   "ops": [{"op": row, "counts": [{"passed", "xfailed", "failed"} or null, ...]}],  # null: no
                   "total": [{"passed", "xfailed", "failed"}, ...],                       # record of that row
                   "differing": [{"id", "statuses": [status or null, ...]}]},             # null: not in that run
         "pairs": [{"a": label_k, "b": label_k+1, **compare_runs(run_k, run_k+1)}, ...]}  # consecutive pairs

    ``ops`` rows are ``per_op_counts`` rows (sorted); ``differing`` holds every id whose status is not the same in
    every run that recorded it (sorted by id). In ``pairs`` the tuples of ``compare_runs`` are lists:
    new_failures/fixed ``[id, status_a, status_b, error]``, changed ``[id, a, b]``, error_growth
    ``[id, margin_a, margin_b, max_abs_error_a, max_abs_error_b]``, environment ``[key, value_a, value_b]``.
    """
    runs = list(runs)
    labels = list(labels) if labels is not None else column_names(len(runs))
    if len(labels) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(labels)} labels")
    counts = [per_op_counts(run) for run in runs]
    rows = sorted(set().union(*counts)) if counts else []
    total = [{s: sum(c[s] for c in table.values()) for s in TABLE_STATUSES} for table in counts]
    by_id = [statuses(run) for run in runs]
    ids = sorted(set().union(*by_id)) if by_id else []
    differing = []
    for i in ids:
        row = [s.get(i) for s in by_id]
        if len({s for s in row if s is not None}) > 1:
            differing.append({"id": i, "statuses": row})
    pairs = []
    for k in range(len(runs) - 1):
        diff = compare_runs(runs[k], runs[k + 1], growth=growth, floor=floor)
        pairs.append(
            {
                "a": labels[k],
                "b": labels[k + 1],
                **{key: [list(v) if isinstance(v, tuple) else v for v in value] for key, value in diff.items()},
            }
        )
    return {
        "runs": [
            {"label": label, "records": len(run.records), "counts": run.counts()} for label, run in zip(labels, runs)
        ],
        "table": {
            "columns": labels,
            "ops": [{"op": row, "counts": [c.get(row) for c in counts]} for row in rows],
            "total": total,
            "differing": differing,
        },
        "pairs": pairs,
    }


def table_lines(comparison: dict, names: Sequence[str], limit: int = 50) -> list[str]:
    """The table of ``compare_many``'s result as text: the per-op counts (passed/xfailed/failed) of each run in
    columns headed ``names``, then up to ``limit`` items whose status differs (``-``: not in that run)."""
    table = comparison["table"]

    def cell(counts) -> str:
        return "-" if counts is None else "/".join(str(counts[s]) for s in TABLE_STATUSES)

    rows = [(r["op"], [cell(c) for c in r["counts"]]) for r in table["ops"]] + [
        ("total", [cell(c) for c in table["total"]])
    ]
    width = max([len("op"), *(len(op) for op, _ in rows)]) + 2
    cols = [max([len(n), *(len(cells[k]) for _, cells in rows)]) + 2 for k, n in enumerate(names)]
    lines = [
        "per op: passed/xfailed/failed in each run",
        f"{'op':<{width}}" + "".join(f"{n:>{w}}" for n, w in zip(names, cols)),
    ]
    lines += [f"{op:<{width}}" + "".join(f"{c:>{w}}" for c, w in zip(cells, cols)) for op, cells in rows]
    differing = table["differing"]
    lines += ["", f"items whose status differs between runs: {len(differing)}"]
    if differing:
        shown = differing[:limit]
        width = max(len("id"), *(len(d["id"]) for d in shown)) + 2
        cols = [max([len(n), *(len(d["statuses"][k] or "-") for d in shown)]) + 2 for k, n in enumerate(names)]
        lines.append(f"{'id':<{width}}" + "".join(f"{n:>{w}}" for n, w in zip(names, cols)))
        lines += [
            f"{d['id']:<{width}}" + "".join(f"{s or '-':>{w}}" for s, w in zip(d["statuses"], cols)) for d in shown
        ]
        if len(differing) > limit:
            lines.append(f"... and {len(differing) - limit} more")
    return lines


def _number(value) -> str:
    return "inf" if value is None else f"{value:.3g}"


def pair_lines(
    diff: dict, env_a: dict, env_b: dict, growth: float = 2.0, limit: int = 50, names: tuple[str, str] = ("A", "B")
) -> list[str]:
    """What ``harness compare`` prints about one pair of runs (``diff``: ``compare_runs``; ``names``: the runs'
    short names in the text)."""
    na, nb = names
    lines = [
        f"what the verdicts depended on (* differs; {nb} shown only where it does):",
        *machines_side_by_side(env_a, env_b, names),
        "",
        f"environment differences: {len(diff['environment'])}",
    ]
    lines += [f"  {key}: {va} -> {vb}" for key, va, vb in diff["environment"]]
    for title, key in (("new failures", "new_failures"), ("fixed", "fixed"), ("changed behaviour", "changed")):
        rows = diff[key]
        lines += ["", f"{title}: {len(rows)}"]
        lines += [
            f"  {row[0]}: {row[1]} -> {row[2]}" + (f"  ({row[3]})" if len(row) > 3 and row[3] else "")
            for row in rows[:limit]
        ]
        if len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more")
    rows = diff["error_growth"]
    lines += ["", f"error growth (margin x{growth:g} or more, to at least 0.01 of the bound): {len(rows)}"]
    lines += [
        f"  {i}: margin {ma:.3g} -> {mb:.3g}, max|diff| {_number(ea)} -> {_number(eb)}"
        for i, ma, mb, ea, eb in rows[:limit]
    ]
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more")
    lines += ["", f"only in {na}: {len(diff['only_a'])}   only in {nb}: {len(diff['only_b'])}"]
    for title, key in ((f"only in {na}", "only_a"), (f"only in {nb}", "only_b")):
        lines += [f"  {title}: {i}" for i in diff[key][: min(limit, 10)]]
    return lines


def machines_side_by_side(a: dict, b: dict, names: tuple[str, str] = ("A", "B")) -> list[str]:
    """The facts the verdicts depend on, run A beside run B (``*`` where they differ): for runs from two machines."""

    na, nb = names
    envs = [environment.Environment.from_record(e) for e in (a, b)]
    rows = [
        ("CPU", [f"{e.get('cpu_model') or '?'} ({e.get('machine', '?')})" for e in (a, b)]),
        ("CPU ISA level", [str(e.get("cpu_isa_level") or "?") for e in (a, b)]),
        ("CPU features", [" ".join(e.get("cpu_flags") or []) or "?" for e in (a, b)]),
        ("TensorFlow", [str(e.get("tensorflow", "?")) for e in (a, b)]),
        ("oneDNN", [{"1": "on", "0": "off"}.get(str(e.get("onednn")), "?") for e in (a, b)]),
        ("oneDNN ISA", [str(e.get("onednn_isa") or "-") for e in (a, b)]),
        ("ISA cap", [str(e.get("onednn_isa_cap") or "none") for e in (a, b)]),
    ]
    for dtype in DTYPES:
        rows.append(
            (
                f"kernels {dtype}",
                [
                    environment.dtype_paths(e.probe, dtype) if e.probe and e.probe.paths else "not measured"
                    for e in envs
                ],
            )
        )
    width = max(len(label) for label, _ in rows)
    lines = []
    for label, (va, vb) in rows:
        mark = "*" if va != vb else " "
        lines.append(f" {mark}{label:<{width}}  {na}: {va}")
        if va != vb:
            lines.append(f"  {'':<{width}}  {nb}: {vb}")
    return lines
