"""The run's reports, rendered from ``results.json`` alone: ``report.html`` and ``summary.md``.

``report.html`` is one self-contained file (inline CSS and JS, heatmaps as ``data:`` PNGs, a Content-Security-Policy
that forbids every fetch) that opens from disk: the verdict and counts, the environment, a per-op table, the coverage
matrix op × padding × stride × dilation × layout × dtype, every failure with its report, YAML and heatmaps, the known
divergences (with those that no longer diverge highlighted), tolerance overrides, the slowest cases, and the malformed
cases and crashed items. Tables are rendered here, not in the browser: a full run has thousands of records and the
page must stay small and fast.

``summary.md`` is a short Markdown digest for ``$GITHUB_STEP_SUMMARY``.

No TensorFlow here: a report can be rebuilt anywhere from the results file (``python -m harness.report DIR``).
"""

from __future__ import annotations

import html
import math
import re
import shlex
from collections import Counter, defaultdict
from collections.abc import Iterable, Set
from pathlib import Path

import numpy as np

from harness import atomic
from harness.reports import heatmap, results
from harness.tf import environment, machine

REPORT_HTML = "report.html"
SUMMARY_MD = "summary.md"
DTYPE_ORDER = ("float16", "bfloat16", "float32", "float64", "int32")
PADDING_ORDER = ("SAME", "VALID", "explicit")
LAYOUT_ORDER = ("NHWC", "NCHW", "NWC", "NCW")
COVERAGE_AXES = ("padding", "stride", "dilation", "layout")
MAX_FAILURE_DETAILS = 40  # failures shown in full (report, YAML, heatmaps); the rest are listed by id and first line
MAP_BUDGET = 2_500_000  # bytes of heatmaps in one page; later failures get their report and YAML without maps
MAX_MAP_SIDE = 64  # larger output maps are subsampled: a 224×224 map per slice would make the page huge
MAP_DISPLAY = 96  # heatmaps are scaled up (pixelated) to about this many CSS pixels along their long side
SLOWEST = 20
MAX_SUMMARY_FAILURES = 20
MAX_TEXT = 20_000  # a report or YAML longer than this is cut (a huge literal case would bloat the page)


# --- counting ---------------------------------------------------------------------------------


def esc(value) -> str:
    """Text for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def of_kind(run: results.Run, kind: str) -> list[dict]:
    return [r for r in run.records if r.get("kind") == kind]


def default_cases(run: results.Run) -> list[dict]:
    """Case records of the default check (reference, textbook formulations and TensorFlow), not of a backend."""
    return [r for r in of_kind(run, "case") if not r.get("backend")]


def per_backend(run: results.Run) -> tuple[list[str], list[str], dict]:
    """Backends, ops, and {(backend, op): Counter of statuses} of the backend checks (``--backend``)."""
    cells: dict = defaultdict(Counter)
    for r in of_kind(run, "case"):
        if r.get("backend"):
            cells[r["backend"], r.get("op") or "?"][r["status"]] += 1
    return sorted({b for b, _ in cells}), sorted({op for _, op in cells}), dict(cells)


def tally(run: results.Run) -> dict:
    """The headline counts: case statuses, and malformed cases, crashed items and harness self-tests apart."""
    cases = Counter(r["status"] for r in of_kind(run, "case"))
    tests = Counter(r["status"] for r in of_kind(run, "test"))
    malformed, crashed = len(of_kind(run, "malformed")), len(of_kind(run, "crashed"))
    return {
        "passed": cases["passed"],
        "xfailed": cases["xfailed"],
        "failed": cases["failed"] + cases["error"],
        "skipped": cases["skipped"],
        "malformed": malformed,
        "crashed": crashed,
        "total": sum(cases.values()) + malformed + crashed,
        "tests": dict(tests),
    }


def failing_cases(run: results.Run) -> list[dict]:
    return [r for r in of_kind(run, "case") if r["status"] in ("failed", "error")]


def other_problems(run: results.Run) -> list[dict]:
    """Malformed cases, crashed items and failing harness self-tests: failures that are not a case's outcome."""
    return [
        r
        for r in run.records
        if r.get("kind") in ("malformed", "crashed") or (r.get("kind") == "test" and r["status"] in ("failed", "error"))
    ]


def stale_divergences(run: results.Run) -> list[str]:
    return list(run.run.get("stale_divergences") or [])


def verdict_reasons(run: results.Run) -> list[str]:
    """Why the run fails, one phrase each; empty when it passes."""
    t = tally(run)
    failed_tests = t["tests"].get("failed", 0) + t["tests"].get("error", 0)
    reasons = [
        plural(n, label)
        for n, label in (
            (t["failed"], "failed case"),
            (t["malformed"], "malformed case"),
            (t["crashed"], "crashed item"),
            (failed_tests, "failing self-test"),
        )
        if n
    ]
    if stale_divergences(run):
        reasons.append(f"stale known divergences: {', '.join(stale_divergences(run))}")
    unmeasured = unmeasured_paths(run)
    if unmeasured:
        reasons.append(f"TensorFlow's kernel paths were not measured: {unmeasured}")
    status = run.run.get("exitstatus")
    if not reasons and run.run.get("complete", True) and status not in (None, 0):
        reasons.append(f"pytest exit status {status}")
    return reasons


def unmeasured_paths(run: results.Run) -> str | None:
    """Why the run's kernel paths are not (all) known, or None; a results file from before they were measured
    (no ``probe`` in its environment) is judged as it was then. A merged run from several environments: each."""
    reasons = []
    for source, env in source_environments(run):
        if "probe" not in env:
            continue
        why = "no probe ran" if not env["probe"] else env["probe"].get("error")
        if why:
            reasons.append(f"{source}: {why}" if source is not None else why)
    return "; ".join(reasons) or None


def source_environments(run: results.Run) -> list[tuple[str | None, dict]]:
    """[(source, environment)]: one per run of a merged run whose runs' environments differ, else [(None, the
    run's environment)]."""
    if run.environments:
        return [(e.get("source"), e.get("environment") or {}) for e in run.environments]
    return [(None, run.environment)]


def reason_section(reason: str) -> str:
    """The report section that explains a verdict reason."""
    if "failed case" in reason:
        return "failures"
    if reason.startswith("TensorFlow's kernel paths"):
        return "machine"
    return "divergences" if reason.startswith("stale") else "problems"


def verdict(run: results.Run) -> str:
    """ "pass" or "fail" (an interrupted run is judged on what ran; the report says it was interrupted)."""
    return "fail" if verdict_reasons(run) else "pass"


def interruption(run: results.Run) -> str | None:
    """The banner for a run that did not finish: "interrupted", "incomplete" or None."""
    if run.run.get("interrupted"):
        return "interrupted"
    if not run.run.get("complete", True):
        return "incomplete"
    return None


def per_op(run: results.Run) -> dict[str, Counter]:
    """op -> counts of statuses, plus "error contracts" and "seconds"."""
    table: dict[str, Counter] = defaultdict(Counter)
    for r in default_cases(run):
        row = table[results.op_label(r)]
        row["failed" if r["status"] == "error" else r["status"]] += 1
        row["error contracts"] += bool(r.get("expect_error"))
        # a float in the Counter of statuses, which typeshed types as Counter[str] -> int
        row["seconds"] += r.get("seconds") or 0.0  # type: ignore[assignment]
    return dict(sorted(table.items()))


def _order(values: Iterable[str], preferred: tuple) -> list[str]:
    """Known labels in their natural order first, then the rest alphabetically."""
    return sorted(set(values), key=lambda v: _rank(str(v), preferred))


def _label_key(label) -> tuple:
    """Stride / dilation labels ("1", "2", "1x2", "invalid") in numeric order."""
    parts = str(label).split("x")
    if all(p.isdigit() for p in parts):
        return (0, len(parts), tuple(int(p) for p in parts), "")
    return (1, 0, (), str(label))


def _row_key(row: tuple) -> tuple:
    """Coverage rows by op, then padding, stride, dilation and layout in their natural orders."""
    op, padding, stride, dilation, layout = row
    return (op, _rank(padding, PADDING_ORDER), _label_key(stride), _label_key(dilation), _rank(layout, LAYOUT_ORDER))


def _rank(value: str, preferred: tuple) -> tuple:
    return (preferred.index(value) if value in preferred else len(preferred), value)


def coverage_matrix(run: results.Run) -> tuple[list[tuple], list[str], dict]:
    """Rows (op, padding, stride, dilation, layout) that occur, dtype columns, and {(row, dtype): Counter of statuses}.

    Error contracts are left out: their attributes are deliberately invalid (see ``error_contracts``).
    """
    cells: dict = defaultdict(Counter)
    for r in default_cases(run):
        if r.get("expect_error") or not r.get("coverage"):
            continue
        cov = r["coverage"]
        row = (r.get("op") or "?", *(str(cov.get(axis, "?")) for axis in COVERAGE_AXES))
        cells[row, r.get("dtype") or "?"][r["status"]] += 1
    rows = sorted({row for row, _ in cells}, key=_row_key)
    dtypes = _order((d for _, d in cells), DTYPE_ORDER)
    return rows, dtypes, dict(cells)


def error_contracts(run: results.Run) -> tuple[list[str], list[str], dict]:
    """Error-contract cases per (op, dtype): ops, dtypes and {(op, dtype): Counter of statuses}."""
    cells: dict = defaultdict(Counter)
    for r in default_cases(run):
        if r.get("expect_error"):
            cells[r.get("op") or "?", r.get("dtype") or "?"][r["status"]] += 1
    return sorted({op for op, _ in cells}), _order((d for _, d in cells), DTYPE_ORDER), dict(cells)


def cell_colour(counts: Counter | None) -> str:
    """green: all passed; amber: some xfailed, none failed; red: any failed; grey: nothing (or only skipped)."""
    if not counts:
        return "absent"
    if counts["failed"] or counts["error"]:
        return "red"
    if counts["xfailed"]:
        return "amber"
    if counts["passed"]:
        return "green"
    return "grey"


def divergence_stats(run: results.Run) -> list[dict]:
    """Each registry entry with how many records it excused (xfailed) and applied to, and whether it now passes."""
    excused: Counter[str] = Counter()
    applied: Counter[str] = Counter()
    for r in default_cases(run):
        if r["status"] == "xfailed" and r.get("divergence"):
            excused[r["divergence"]] += 1
        applied.update(set(r.get("applicable_divergences") or ()))
    stale = set(stale_divergences(run))
    rows = []
    for d in run.divergences:
        did = d.get("id")
        row = {**d, "excused": excused[did], "applied": applied[did], "stale": did in stale}
        # An entry that matched cases yet excused none may have been fixed (certain only for stale ones).
        row["none_diverged"] = row["applied"] > 0 and row["excused"] == 0
        rows.append(row)
    return rows


def observed_divergences(run: results.Run) -> dict[str, int]:
    """Divergence id -> how many xfailed records it excused."""
    seen = Counter(r["divergence"] for r in of_kind(run, "case") if r["status"] == "xfailed" and r.get("divergence"))
    return dict(sorted(seen.items()))


def case_id(record_id: str) -> str:
    """``file::case[dtype]`` without the dtype."""
    return record_id.rsplit("[", 1)[0] if record_id.endswith("]") else record_id


def tolerance_overrides(run: results.Run) -> list[dict]:
    """One row per case with a tolerance override: case id, reason, c, atol and the dtypes it ran at."""
    rows: dict[str, dict] = {}
    for r in default_cases(run):
        override = r.get("tolerance_override")
        if override:
            row = rows.setdefault(case_id(r["id"]), {"case": case_id(r["id"]), **override, "dtypes": []})
            row["dtypes"].append(r.get("dtype"))
    return [rows[k] for k in sorted(rows)]


def slowest(run: results.Run, n: int = SLOWEST) -> list[dict]:
    return sorted(of_kind(run, "case"), key=lambda r: -(r.get("seconds") or 0.0))[:n]


def first_line(record: dict) -> str:
    """The first error line of a failing record (its first error, else TensorFlow's status, else its report)."""
    for text in (*(record.get("errors") or ()), record.get("tensorflow") or "", record.get("report") or ""):
        for line in str(text).splitlines():
            if line.strip():
                return line.strip()
    return record.get("status", "")


# --- formatting -------------------------------------------------------------------------------


def duration(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def command_line(argv) -> str:
    """The run's command as typed: pytest's ``__main__.py`` shown as ``python -m pytest``."""
    argv = [str(a) for a in (argv or [])]
    if argv and argv[0].replace("\\", "/").endswith("pytest/__main__.py"):
        argv = ["python", "-m", "pytest", *argv[1:]]
    return shlex.join(argv)


def onednn_label(value) -> str:
    return {"1": "on", "0": "off"}.get(str(value), str(value) if value not in (None, "") else "?")


def memory_budget_label(budget: dict | None) -> str:
    """A recorded memory budget (``machine.MemoryBudget.record``) as the reports show it."""
    if not budget:
        return "not recorded"
    return machine.MemoryBudget.from_record(budget).describe()


def environment_items(env: dict) -> list[tuple[str, str]]:
    """The environment as (label, value) pairs, in reading order."""
    threads = f"intra {env.get('intra_op_threads', '?')}, inter {env.get('inter_op_threads', '?')}"
    probe = env.get("probe") or {}
    isa = env.get("onednn_isa") or ("-" if str(env.get("onednn")) == "0" else "unknown")
    version = f" (oneDNN {probe['onednn_version']})" if probe.get("onednn_version") else ""
    source = probe.get("source", "measured")
    paths = (
        "not recorded"
        if "probe" not in env
        else f"NOT MEASURED: {probe.get('error') or 'no probe ran'}"
        if not probe or probe.get("error")
        else f"measured in {probe.get('seconds') or 0:.1f} s"
        + {"measured": "", "cache": ", read from the cache"}.get(source, f" ({source})")
    )
    return [
        ("TensorFlow", env.get("tensorflow", "?")),
        ("NumPy", env.get("numpy", "?")),
        ("Python", env.get("python", "?")),
        ("oneDNN", onednn_label(env.get("onednn"))),
        ("threads", threads),
        ("CPU", f"{env.get('cpu_model') or '?'} ({env.get('machine', '?')}, {env.get('cpu_count', '?')} cores)"),
        ("CPU ISA level", env.get("cpu_isa_level") or "?"),
        ("oneDNN ISA", f"{isa}{version}"),
        ("ISA cap", env.get("onednn_isa_cap") or "none"),
        ("kernel paths", paths),
        ("memory budget", memory_budget_label(env.get("memory_budget"))),
        ("CPU flags", " ".join(env.get("cpu_flags") or []) or "none recorded"),
        ("platform", env.get("platform", "?")),
    ]


def run_environment_items(run: results.Run) -> list[tuple[str, str]]:
    """``environment_items`` of the run; for a merged run from several environments, each value that differs is
    given per run ("reports-1: ...; reports-2: ..."), after an item that says so."""
    envs = source_environments(run)
    if len(envs) == 1:
        return environment_items(envs[0][1])
    per = [environment_items(env) for _, env in envs]
    items = [("environments", f"{len(envs)}: the merged runs came from several machines or environments")]
    for k, (label, _) in enumerate(per[0]):
        values = [str(p[k][1]) for p in per]
        items.append(
            (
                label,
                values[0]
                if len(set(values)) == 1
                else "; ".join(f"{source}: {v}" for (source, _), v in zip(envs, values)),
            )
        )
    return items


def shapes_text(record: dict) -> str:
    shapes = record.get("shapes") or {}
    return ", ".join(f"{name}={list(shape) if shape is not None else '?'}" for name, shape in shapes.items())


def fmt_number(value) -> str:
    if value is None:
        return "inf"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def clip(text: str, limit: int = MAX_TEXT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


# --- HTML pieces ------------------------------------------------------------------------------

# Runs before anything else: counts script errors and console.error calls where a test can read them.
ERROR_TRAP = """<script>(function(){var d=document.documentElement;function bump(){d.dataset.errors=String((+d.dataset.errors||0)+1);}
window.onerror=function(){bump();};window.addEventListener("unhandledrejection",bump);
var ce=console.error;console.error=function(){bump();return ce.apply(console,arguments);};})();</script>"""

# Nothing may be fetched: the page is self-contained by construction, not by care alone.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

CSS = """
:root{--green:#cdebc5;--amber:#ffe09a;--red:#f6aaa3;--grey:#e6e6e6;--ink:#1d232a;--muted:#5d6773;--line:#d5dae0}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);margin:0;background:#f6f7f9}
main{padding:0 24px 40px;max-width:1500px}
h1{font-size:20px;margin:0}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:14px;margin:14px 0 6px}
a{color:#0b5cad}
code,pre,.mono{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,monospace;font-size:12px}
pre{background:#fff;border:1px solid var(--line);padding:8px 10px;overflow:auto;max-height:420px;margin:6px 0;white-space:pre}
.band{background:#fff;border-bottom:1px solid var(--line);padding:14px 24px 10px}
.band .top{display:flex;flex-wrap:wrap;gap:18px;align-items:stretch}
.env{display:grid;grid-template-columns:repeat(auto-fill,minmax(245px,1fr));gap:2px 18px;margin:12px 0 0;font-size:12.5px}
.env div{display:flex;gap:8px;min-width:0}.env div.wide{grid-column:1/-1}
.env dt{font-weight:600;white-space:nowrap}.env dd{margin:0;color:var(--muted);overflow-wrap:anywhere}
.verdict{border-radius:8px;padding:12px 18px;min-width:220px;color:#fff}
.verdict.pass{background:#2f7d32}.verdict.fail{background:#b3261e}
.verdict .big{font-size:30px;font-weight:700;letter-spacing:.04em}
.verdict ul{margin:4px 0 0;padding-left:18px;font-size:13px}.verdict a{color:#fff}
.banner{background:#ffe09a;border:2px solid #c98a00;color:#5a3d00;padding:8px 14px;font-weight:600;margin:12px 24px 0;border-radius:6px}
.tiles{display:flex;flex-wrap:wrap;gap:8px;align-content:flex-start}
.tile{border:1px solid var(--line);border-radius:8px;padding:6px 12px;min-width:88px;background:#fbfbfc}
.tile b{display:block;font-size:22px}
.tile span{color:var(--muted);font-size:12px}
.tile.green{background:var(--green)}.tile.amber{background:var(--amber)}.tile.red{background:var(--red)}
.meta{font-size:12.5px;color:var(--muted);margin:4px 0}
.meta dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 10px;margin:0}
.meta dt{font-weight:600;color:var(--ink)}.meta dd{margin:0;word-break:break-word}
nav{padding:8px 24px;font-size:13px;background:#eef1f4;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:3}
nav a{margin-right:14px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid var(--line);padding:2px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
#per-op th{white-space:normal;vertical-align:bottom}#per-op th.n{max-width:72px}#per-op td,#per-op th{padding:2px 6px}
tr.total td{font-weight:700;background:#f3f5f7}
.overview{display:flex;flex-wrap:wrap;gap:8px 36px;align-items:flex-start}
.overview>section{flex:1 1 600px;min-width:0}.overview>aside{flex:0 1 auto}
.small{font-size:12px;max-width:420px}
.scroll{max-height:75vh;overflow:auto;border:1px solid var(--line);display:inline-block;max-width:100%}
#coverage{border:0}
#coverage thead th{position:sticky;top:0;z-index:2}
.matrix td.cell{text-align:center;min-width:60px;font-variant-numeric:tabular-nums}
#coverage tr.op th{background:#dde3ea;font-size:13.5px}
td.green{background:var(--green)}td.amber{background:var(--amber)}td.red{background:var(--red)}
td.grey{background:var(--grey)}td.absent{background:repeating-linear-gradient(45deg,#fafafa,#fafafa 4px,#f0f0f0 4px,#f0f0f0 8px)}
td.cell small{color:#4a4a4a}
.sw.absent{background:repeating-linear-gradient(45deg,#fafafa,#fafafa 3px,#d8d8d8 3px,#d8d8d8 6px)}
.legend span.sw{display:inline-block;width:14px;height:12px;border:1px solid #999;vertical-align:-2px;margin:0 4px 0 10px}
.filter{margin:4px 0 8px}.filter input{font:inherit;padding:3px 6px;width:300px}
.muted{color:var(--muted)}
details.failure{background:#fff;border:1px solid var(--line);border-left:4px solid #b3261e;border-radius:4px;margin:10px 0;padding:6px 12px}
details.failure>summary{cursor:pointer;font-weight:600}
.pair{display:flex;flex-wrap:wrap;gap:0 32px;align-items:flex-start}.pair>div{min-width:0;max-width:100%}
.pair>div:last-child{flex:1 1 380px}
td pre{white-space:pre-wrap;overflow-wrap:anywhere;max-height:240px;margin:2px 0}
#divergences,#slowest,#problems{width:100%}#divergences td:nth-child(3){min-width:280px}td a{overflow-wrap:anywhere}
pre.yaml{max-height:360px}
details.failure>summary .mono{font-size:13px}
.maps{border-collapse:collapse;margin:6px 0}
.maps td,.maps th{border:0;padding:3px 8px 3px 0;vertical-align:top;background:transparent;text-align:center;font-weight:400}
.maps th{font-size:12px}.maps th small{display:block;color:var(--muted)}
.maps td.lbl{font-size:12px;color:var(--muted);text-align:right;vertical-align:middle}
img.map{image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #bbb;display:block}
.note{background:#fff6d6;border:1px solid #e8cf7a;padding:4px 8px;border-radius:4px;display:inline-block;margin:4px 0}
tr.now-passes td{background:#fff3c4}
tr.stale td{background:#ffd8b0}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:8px;background:#e3e7ec;margin-left:4px}
.tag.stale{background:#e0730b;color:#fff}.tag.coincident{background:#c98a00;color:#fff}
tr.na td{color:var(--muted);background:#f3f4f6}.tag.na{background:#8a939d;color:#fff}
.path{display:inline-block;padding:0 6px;border-radius:4px}.path.green{background:var(--green)}
.path.amber{background:var(--amber)}.path.grey{background:var(--grey)}.path.red{background:var(--red)}
"""

# Runs after the page is built: the coverage filter, then the readiness flag the browser test waits for.
INIT_SCRIPT = """<script>(function(){
var box=document.getElementById("coverage-filter"),table=document.getElementById("coverage");
function apply(){var terms=box.value.toLowerCase().split(/\\s+/).filter(Boolean),shown={};
var rows=table.tBodies[0].rows;
for(var i=0;i<rows.length;i++){var r=rows[i];if(!r.dataset.key)continue;
var ok=terms.every(function(t){return r.dataset.key.indexOf(t)>=0;});r.hidden=!ok;if(ok)shown[r.dataset.op]=true;}
for(var j=0;j<rows.length;j++){var g=rows[j];if(g.dataset.group)g.hidden=!shown[g.dataset.group];}}
if(box&&table&&table.tBodies.length){box.addEventListener("input",apply);}
document.body.dataset.ready="1";})();</script>"""


def tile(label: str, value, colour: str = "") -> str:
    return f'<div class="tile {colour}"><b>{esc(value)}</b><span>{esc(label)}</span></div>'


def table(
    headers: list[str],
    rows: list[list[str]],
    numeric: Set[int] = frozenset(),
    attrs: str = "",
    row_classes: list[str] | None = None,
) -> str:
    """An HTML table; cells in ``rows`` are already HTML (escape before)."""
    head = "".join(
        f'<th class="n">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        body.append(
            f"<tr{cls}>"
            + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
            + "</tr>"
        )
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="sec-{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def render_header(run: results.Run) -> str:
    """The top band: verdict (and why), counts, environment and how the run was made."""
    t, v, reasons = tally(run), verdict(run), verdict_reasons(run)
    why = "".join(f'<li><a href="#sec-{reason_section(r)}">{esc(r)}</a></li>' for r in reasons)
    box = (
        f'<div class="verdict {v}"><div class="big">{v.upper()}</div>'
        f"<div>tf-conv-harness run</div>{f'<ul>{why}</ul>' if why else ''}</div>"
    )
    tiles = [
        tile("passed", t["passed"], "green" if t["passed"] else ""),
        tile("xfailed", t["xfailed"], "amber" if t["xfailed"] else ""),
        tile("failed", t["failed"], "red" if t["failed"] else ""),
        tile("malformed", t["malformed"], "red" if t["malformed"] else ""),
        tile("crashed", t["crashed"], "red" if t["crashed"] else ""),
        tile("skipped", t["skipped"]),
        tile("total", t["total"]),
    ]
    tests = t["tests"]
    if tests:
        bad = tests.get("failed", 0) + tests.get("error", 0)
        tiles.append(
            tile(
                "harness self-tests " + ", ".join(f"{n} {s}" for s, n in sorted(tests.items())),
                sum(tests.values()),
                "red" if bad else "green",
            )
        )
    took = duration(run.run.get("seconds"))
    if run.run.get("merged_from") and run.run.get("wall_seconds") is not None:
        took += f" summed over the runs ({duration(run.run['wall_seconds'])} from the first start to the last end)"
    info = [
        ("started", run.run.get("started", "?")),
        ("duration", took),
        ("sweeps", run.run.get("sweeps", "?")),
        ("exit status", run.run.get("exitstatus", "?")),
        ("command", command_line(run.run.get("argv"))),
    ]
    if run.run.get("merged_from"):
        info.append(("merged from", ", ".join(run.run["merged_from"])))
    wide = {"CPU flags", "platform", "command", "environments", "merged from"}  # a whole row each, after the rest
    items = run_environment_items(run) + info
    items = [i for i in items if i[0] not in wide] + [i for i in items if i[0] in wide]
    meta = "".join(
        f'<div class="{"wide" if k in wide else ""}"><dt>{esc(k)}</dt><dd>{esc(v_)}</dd></div>' for k, v_ in items
    )
    return (
        f'<header class="band"><div class="top">{box}<div class="tiles">{"".join(tiles)}</div></div>'
        f'<dl class="env">{meta}</dl></header>'
    )


def render_banner(run: results.Run) -> str:
    state = interruption(run)
    if state is None:
        return ""
    ran = len(run.records)
    text = {
        "interrupted": f"INTERRUPTED: the run was stopped before the end; this report covers the {ran} items that ran.",
        "incomplete": f"INCOMPLETE: the run did not finish (rebuilt from the stream); this report covers the "
        f"{ran} items recorded.",
    }[state]
    return f'<div class="banner" id="banner" data-state="{state}">{esc(text)}</div>'


def render_per_op(run: results.Run) -> str:
    table_ = per_op(run)
    if not table_:
        return "<p>No cases ran.</p>"
    cols = ("passed", "xfailed", "failed", "skipped")
    rows: list[list[str]] = []
    total: Counter[str] = Counter()
    for op, c in table_.items():
        total.update(c)
        rows.append(
            [
                esc(op),
                *(str(c[s]) for s in cols),
                str(sum(c[s] for s in cols)),
                str(c["error contracts"]),
                f"{c['seconds']:.1f}",
            ]
        )
    rows.append(
        [
            "total",
            *(str(total[s]) for s in cols),
            str(sum(total[s] for s in cols)),
            str(total["error contracts"]),
            f"{total['seconds']:.1f}",
        ]
    )
    return table(
        ["op", *cols, "total", "error contracts", "time (s)"],
        rows,
        numeric=set(range(1, 8)),
        attrs=' id="per-op"',
        row_classes=[""] * (len(rows) - 1) + ["total"],
    )


def cell_html(counts: Counter | None, where: str) -> str:
    """One matrix cell: total items, xfailed and failed counts, coloured, exact counts in the title."""
    colour = cell_colour(counts)
    if not counts:
        return f'<td class="cell absent" title="{esc(where)}: not covered"></td>'
    failed = counts["failed"] + counts["error"]
    title = f"{where}: passed {counts['passed']}, xfailed {counts['xfailed']}, failed {failed}" + (
        f", skipped {counts['skipped']}" if counts["skipped"] else ""
    )
    extra = (f" <small>{counts['xfailed']} xf</small>" if counts["xfailed"] else "") + (
        f" <small>{failed} fail</small>" if failed else ""
    )
    return (
        f'<td class="cell {colour}" title="{esc(title)}" data-passed="{counts["passed"]}" '
        f'data-xfailed="{counts["xfailed"]}" data-failed="{failed}"><b>{sum(counts.values())}</b>{extra}</td>'
    )


def render_coverage(run: results.Run) -> str:
    rows, dtypes, cells = coverage_matrix(run)
    if not rows:
        return "<p>No cases with an output ran.</p>"
    head = "".join(f"<th>{esc(a)}</th>" for a in COVERAGE_AXES) + "".join(
        f'<th class="n">{esc(d)}</th>' for d in dtypes
    )
    body, current = [], None
    per_op_rows = Counter(row[0] for row in rows)
    for row in rows:
        op = row[0]
        if op != current:
            current = op
            body.append(
                f'<tr class="op" data-group="{esc(op)}"><th colspan="{len(COVERAGE_AXES) + len(dtypes)}">'
                f'{esc(op)} <span class="muted">({plural(per_op_rows[op], "combination")})</span></th></tr>'
            )
        statuses = {cell_colour(cells.get((row, d))) for d in dtypes}
        key = " ".join([*row, *(s for s, c in (("failed", "red"), ("xfailed", "amber")) if c in statuses)]).lower()
        where = " ".join(f"{a}={v}" for a, v in zip(("op", *COVERAGE_AXES), row))
        tds = "".join(f"<td>{esc(v)}</td>" for v in row[1:])
        tds += "".join(cell_html(cells.get((row, d)), f"{where} dtype={d}") for d in dtypes)
        body.append(f'<tr data-op="{esc(op)}" data-key="{esc(key)}">{tds}</tr>')
    legend = (
        '<div class="legend">'
        '<span class="sw" style="background:var(--green)"></span>all passed'
        '<span class="sw" style="background:var(--amber)"></span>some xfailed (known divergences), none failed'
        '<span class="sw" style="background:var(--red)"></span>some failed'
        '<span class="sw absent"></span>not covered. '
        '<span class="muted">Cells: items run, then xfailed (xf) and failed counts; hover for exact counts. '
        "Error contracts have their own table.</span></div>"
    )
    box = (
        '<div class="filter"><input id="coverage-filter" type="search" '
        'placeholder="filter rows: e.g. conv2d NCHW explicit, or failed / xfailed" aria-label="filter the '
        'coverage matrix"></div>'
    )
    return (
        legend + box + f'<div class="scroll"><table id="coverage" class="matrix"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def render_backends(run: results.Run) -> str:
    """The backend × op matrix: each backend's items checked against TensorFlow."""
    names, op_names, cells = per_backend(run)
    if not names:
        return ""
    head = "".join(f"<th>{esc(op)}</th>" for op in op_names)
    rows = "".join(
        f"<tr><th>{esc(b)}</th>" + "".join(cell_html(cells.get((b, op)), f"{b} · {op}") for op in op_names) + "</tr>"
        for b in names
    )
    return (
        f'<table id="backends" class="matrix"><thead><tr><th>backend</th>{head}</tr></thead><tbody>{rows}'
        "</tbody></table><p class=\"note\">Each backend's output compared with TensorFlow's (with the "
        "reference's where TensorFlow is known to diverge); skipped: cases a backend does not cover.</p>"
    )


def render_error_contracts(run: results.Run) -> str:
    ops_, dtypes, cells = error_contracts(run)
    if not ops_:
        return "<p>No error contracts ran.</p>"
    body = "".join(
        f"<tr><td>{esc(op)}</td>"
        + "".join(cell_html(cells.get((op, d)), f"error contracts op={op} dtype={d}") for d in dtypes)
        + "</tr>"
        for op in ops_
    )
    head = "<th>op</th>" + "".join(f'<th class="n">{esc(d)}</th>' for d in dtypes)
    return (
        f'<table id="error-contracts" class="matrix"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        '<p class="muted small">Invalid configurations: the reference must raise ValueError, TensorFlow the named '
        "error class.</p>"
    )


# --- failures and their heatmaps ------------------------------------------------------------------


def decoded_arrays(record: dict) -> dict[str, np.ndarray]:
    """The record's output slices (N×H×W×C), skipping any that cannot be decoded: the rest still render."""
    out = {}
    for name, encoded in (record.get("arrays") or {}).items():
        try:
            a = results.decode_array(encoded)
        except (KeyError, TypeError, ValueError):
            continue
        if a.ndim == 4:
            out[name] = a
    return out


def _failing(record: dict, against: str) -> set[str]:
    return {
        c.get("subject") for c in record.get("comparisons") or () if not c.get("ok") and c.get("against") == against
    }


def map_columns(record: dict, arrays: dict[str, np.ndarray]) -> tuple[list[dict], list[str]]:
    """What to draw for a failing record, in order: [{label, array, kind}], and notes on what cannot be drawn.

    Always the reference, TensorFlow and tensorflow − reference; then the expected output and every textbook
    formulation that disagreed, each with its difference from the reference. A difference needs equal shapes.
    """
    if not arrays:
        return [], ["No output slices were recorded: the case failed before its outputs could be compared."]
    columns, notes = [], []
    ref = arrays.get("reference")

    def add(label: str, a: np.ndarray) -> None:
        columns.append({"label": label, "array": a, "kind": "sequential"})
        if ref is None or label == "reference":
            return
        if a.shape == ref.shape:
            columns.append({"label": f"{label} − reference", "array": a - ref, "kind": "diverging"})
        else:
            full = (record.get("shapes") or {}).get("output")
            notes.append(
                f"{label}'s output and the reference's differ in shape (slices shown: {list(a.shape)} vs "
                f"{list(ref.shape)}"
                + (f"; the reference's full output is {full}" if full else "")
                + "): both are shown, with no difference map."
            )

    if ref is None:
        notes.append("No reference output was recorded: the other outputs are shown without difference maps.")
    else:
        add("reference", ref)
    if "tensorflow" in arrays:
        add("tensorflow", arrays["tensorflow"])
    else:
        status = record.get("tensorflow") or "TensorFlow was not run"
        notes.append(f"TensorFlow returned no output ({status}): there is no TensorFlow map.")
    if "expected" in arrays and _failing(record, "expected"):  # something disagreed with the case's expected
        add("expected", arrays["expected"])
    disagreeing = _failing(record, "reference")
    for name, a in arrays.items():
        if name not in ("reference", "tensorflow", "expected") and (name in disagreeing or ref is None):
            add(name, a)
    return columns, notes


def map_cell(a_2d: np.ndarray, kind: str, vmin, vmax) -> tuple[str, int]:
    """One slice as an <img> (PNG data URI, pixelated scale-up) and the subsampling step used."""
    if a_2d.size == 0:
        return '<span class="muted">empty</span>', 1
    sub, step = heatmap.subsample(a_2d, MAX_MAP_SIDE)
    h, w = sub.shape
    factor = max(1, math.ceil(MAP_DISPLAY / max(h, w)))
    finite = a_2d[np.isfinite(a_2d)]
    title = (
        f"{a_2d.shape[0]}×{a_2d.shape[1]}, min {finite.min():.4g}, max {finite.max():.4g}"
        if finite.size
        else f"{a_2d.shape[0]}×{a_2d.shape[1]}, no finite values"
    )
    if finite.size < a_2d.size:
        title += f", {a_2d.size - finite.size} non-finite"
    uri = heatmap.data_uri(heatmap.png(heatmap.colorize(sub, kind, vmin, vmax)))
    return (
        f'<img class="map" src="{uri}" width="{w * factor}" height="{h * factor}" alt="{esc(title)}" '
        f'title="{esc(title)}">'
    ), step


def render_maps(record: dict) -> str:
    """The heatmap grid of a failing record: one row per (batch, channel) slice, one column per output."""
    arrays = decoded_arrays(record)
    columns, notes = map_columns(record, arrays)
    parts = [f'<div class="note">{esc(n)}</div>' for n in notes]
    if not columns:
        return "".join(parts)
    values = [c["array"] for c in columns if c["kind"] == "sequential"]
    shared = heatmap.value_range(*values) or (0.0, 0.0)  # one scale for all value maps: they are compared by eye
    heads = []
    for c in columns:
        if c["kind"] == "sequential":
            c["vmin"], c["vmax"] = shared
            caption = f"scale [{shared[0]:.4g}, {shared[1]:.4g}]"
        else:
            lo_hi = heatmap.value_range(c["array"]) or (0.0, 0.0)
            m = max(abs(lo_hi[0]), abs(lo_hi[1]))
            c["vmin"], c["vmax"] = -m, m
            caption = f"max |diff| {m:.3g}, scale ±{m:.3g}"
        heads.append(f"<th>{esc(c['label'])}<small>{esc(caption)}</small></th>")
    batches = max(c["array"].shape[0] for c in columns)
    channels = max(c["array"].shape[3] for c in columns)
    rows, steps = [], set()
    for b in range(batches):
        for ch in range(channels):
            tds = []
            for c in columns:
                a = c["array"]
                if b < a.shape[0] and ch < a.shape[3]:
                    cell, step = map_cell(a[b, :, :, ch], c["kind"], c["vmin"], c["vmax"])
                    steps.add(step)
                else:
                    cell = '<span class="muted">—</span>'
                tds.append(f"<td>{cell}</td>")
            rows.append(f'<tr><td class="lbl">batch {b}<br>channel {ch}</td>{"".join(tds)}</tr>')
    if max(steps, default=1) > 1:
        parts.append(
            f'<div class="note">Maps larger than {MAX_MAP_SIDE} pixels are subsampled (one pixel in '
            f"{max(steps)} along each axis).</div>"
        )
    layout = record.get("arrays_layout", "NHWC")
    parts.append(
        f'<p class="muted">Output slices (first {results.HEATMAP_BATCHES} batches × '
        f"{results.HEATMAP_CHANNELS} channels, {esc(layout)}).</p>"
    )
    parts.append(
        f'<table class="maps"><thead><tr><th></th>{"".join(heads)}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return "".join(parts)


def render_map_legend() -> str:
    seq = heatmap.data_uri(heatmap.png(heatmap.gradient("sequential")))
    div = heatmap.data_uri(heatmap.png(heatmap.gradient("diverging")))
    return (
        '<p class="legend">Heatmaps: values <span class="muted">low</span> '
        f'<img src="{seq}" width="128" height="10" alt="viridis colour bar"> <span class="muted">high</span> '
        '(one scale for all value maps of a failure); differences <span class="muted">−</span> '
        f'<img src="{div}" width="128" height="10" alt="diverging colour bar"> <span class="muted">+</span> '
        '(white = 0); <span class="sw" style="background:rgb(255,0,255)"></span>NaN or ±inf.</p>'
    )


def render_failure(record: dict, index: int, maps: str | None = None) -> str:
    """One failure, collapsible: facts, report, YAML and ``maps`` (default: ``render_maps(record)``)."""
    facts = [
        ("op", record.get("op")),
        ("dtype", record.get("dtype")),
        ("shapes", shapes_text(record)),
        ("attrs", record.get("attrs")),
        ("tensorflow", record.get("tensorflow") or "—"),
        ("worst", record.get("worst")),
        ("max |diff|", fmt_number(record.get("max_abs_error"))),
        ("margin", fmt_number(record.get("margin"))),
        ("tolerance", record.get("tolerance") or "—"),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    report_text = record.get("report") or "\n".join(record.get("errors") or ()) or "(no report recorded)"
    yaml_text = record.get("yaml") or "(no YAML recorded)"
    return (
        f'<details class="failure" id="failure-{index}"{" open" if index < 3 else ""}>'
        f'<summary><span class="mono">{esc(record["id"])}</span> — {esc(first_line(record))}</summary>'
        f'<div class="meta"><dl>{dl}</dl></div>'
        f"<h3>Report</h3><pre>{esc(clip(report_text))}</pre>"
        f'<div class="pair"><div><h3>Outputs</h3>{render_maps(record) if maps is None else maps}</div>'
        f'<div><h3>Case YAML</h3><pre class="yaml">{esc(clip(yaml_text))}</pre></div></div></details>'
    )


def render_failures(run: results.Run) -> str:
    failures = failing_cases(run)
    if not failures:
        return "<p>No case failed.</p>"
    shown, rest = failures[:MAX_FAILURE_DETAILS], failures[MAX_FAILURE_DETAILS:]
    parts, used = [render_map_legend()], 0
    for i, record in enumerate(shown):
        maps = (
            render_maps(record)
            if used < MAP_BUDGET
            else (
                '<div class="note">Heatmaps left out to keep this page small; the output slices are in '
                "results.json (decode with harness.results.decode_array).</div>"
            )
        )
        used += len(maps)
        parts.append(render_failure(record, i, maps))
    if rest:
        parts.append(f"<h3>and {len(rest)} more (shown by id; results.json has every record)</h3>")
        parts.append(
            table(
                ["id", "first error"], [[f'<span class="mono">{esc(r["id"])}</span>', esc(first_line(r))] for r in rest]
            )
        )
    return "".join(parts)


# --- the other sections -----------------------------------------------------------------------------


def _link(url) -> str:
    """An <a> for http(s) links only (a registry entry could hold anything)."""
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return f'<a href="{esc(url)}" rel="noreferrer" title="{esc(url)}">{esc(link_text(url))}</a>'
    return esc(url) if url else ""


def link_text(url: str) -> str:
    """A short label for a link: ``tensorflow/tensorflow#100237`` for a GitHub issue or pull request."""
    found = re.match(r"https?://github\.com/([^/]+/[^/]+)/(?:issues|pull)/(\d+)", url)
    return f"{found.group(1)}#{found.group(2)}" if found else url.split("://", 1)[1]


def render_divergences(run: results.Run) -> str:
    stats = divergence_stats(run)
    if not stats:
        return "<p>No known-divergence registry was loaded.</p>"
    rows, classes = [], []
    for d in stats:
        if d.get("not_here"):
            note = f'<span class="tag na">not applicable here</span> {esc(d["not_here"])}'
        elif d["stale"]:
            note = (
                '<span class="tag stale">now passes</span> every case it applies to agreed with the reference '
                "(stale: update cases/known_divergences.yaml)"
            )
        elif d["none_diverged"]:
            note = f'<span class="tag coincident">now passes?</span> applied to {d["applied"]} cases, none diverged'
        elif d["excused"]:
            note = f"diverged in {d['excused']} of {d['applied']}"
        elif d.get("scope") not in (None, "forward"):
            note = '<span class="muted">checked by tests/tensorflow/test_gradients.py</span>'
        else:
            note = '<span class="muted">not exercised by this run</span>'
        scope = f'<span class="tag">{esc(d["scope"])}</span>' if d.get("scope") not in (None, "forward") else ""
        rows.append(
            [
                f'<span class="mono" id="div-{esc(d.get("id"))}">{esc(d.get("id"))}</span>',
                esc(d.get("kind")) + scope,
                esc(d.get("summary")) + _seen_on(d),
                esc(d.get("onednn")),
                esc(d.get("tensorflow_versions")),
                str(d["excused"]),
                str(d["applied"]),
                note,
                _link(d.get("link")),
            ]
        )
        classes.append(
            "na" if d.get("not_here") else "stale" if d["stale"] else "now-passes" if d["none_diverged"] else ""
        )
    excused = sum(d["excused"] for d in stats)
    elsewhere = sum(1 for d in stats if d.get("not_here"))
    head = (
        f"<p>{len(stats)} entries; {sum(1 for d in stats if d['excused'])} diverged in this run, excusing "
        f"{excused} xfailed items; {elsewhere} cannot apply on this machine or in this mode (greyed: never "
        f"stale here). Highlighted: entries that no longer diverge (stale ones certainly; "
        f'"applied to N cases, none diverged" may be a per_entry coincidence).</p>'
    )
    return head + table(
        ["id", "kind", "summary", "oneDNN", "TF versions", "excused (xfailed)", "applied to", "this run", "link"],
        rows,
        numeric={5, 6},
        attrs=' id="divergences"',
        row_classes=classes,
    )


PATH_CLASSES = {"onednn": "green", "eigen": "amber", "none": "grey", "unknown": "red"}


def render_machine(run: results.Run) -> str:
    """What the verdicts depended on: the CPU, oneDNN's ISA, and the kernel TensorFlow runs per kernel and dtype;
    for a merged run from several environments, one part per run."""
    envs = source_environments(run)
    if len(envs) == 1:
        return render_machine_environment(envs[0][1])
    return f'<p class="note">The merged runs came from {len(envs)} different machines or environments.</p>' + "".join(
        f'<h3 class="mono">{esc(source)}</h3>' + render_machine_environment(env, f"kernel-paths-{k}")
        for k, (source, env) in enumerate(envs, start=1)
    )


def render_machine_environment(env: dict, anchor: str = "kernel-paths") -> str:
    """The machine part of one environment record (``anchor``: its kernel-path table's id)."""
    table_ = env.get("kernel_paths")
    probe = env.get("probe") or {}
    cap = env.get("onednn_isa_cap")
    intro = (
        f"<p>{esc(env.get('cpu_model') or 'An unrecorded CPU')} ({esc(env.get('machine', '?'))}): oneDNN "
        + (
            f"uses <b>{esc(env.get('onednn_isa') or 'an unknown ISA')}</b>"
            if str(env.get("onednn")) != "0"
            else "is off"
        )
        + (f' under <span class="mono">ONEDNN_MAX_CPU_ISA={esc(cap)}</span>' if cap else "")
        + f" (the CPU allows {esc(env.get('cpu_isa_level') or '?')}). Which kernel TensorFlow runs decides what it "
        'accepts and computes; it was asked, not assumed (docs/divergences.md: "Which machine you run on").</p>'
    )
    if not table_:
        why = probe.get("error") if probe else "this run recorded no kernel paths"
        return intro + f'<p class="note">Kernel paths not measured: {esc(why)}</p>'
    dtypes = list(next(iter(table_.values())))
    rows = []
    for kernel, by_dtype in table_.items():
        cells = []
        for d in dtypes:
            value = str(by_dtype.get(d, "unknown"))
            cells.append(f'<span class="path {PATH_CLASSES.get(value.split(" ")[0], "")}">{esc(value)}</span>')
        rows.append([f'<span class="mono">{esc(kernel)}</span>', *cells])
    failing = {k: v for k, v in (probe.get("runs") or {}).items() if v not in ("ok", "no kernel")}
    notes = "".join(
        f'<li><span class="mono">{esc(k)}</span> fails on valid operands: {esc(v)}</li>'
        for k, v in sorted(failing.items())
    )
    error = f'<p class="note">Probe: {esc(probe["error"])}</p>' if probe.get("error") else ""
    subnormals = "".join(f'<li class="mono">{esc(line)}</li>' for line in env.get("subnormals") or [])
    return (
        intro
        + error
        + table(["TensorFlow kernel", *dtypes], rows, attrs=f' id="{esc(anchor)}"')
        + (f"<ul>{notes}</ul>" if notes else "")
        + (
            "<p>Subnormals, measured per dtype and kernel path (inputs read as zero: DAZ; results flushed to zero: "
            f"FTZ):</p><ul>{subnormals}</ul>"
            if subnormals
            else ""
        )
    )


def _seen_on(d: dict) -> str:
    machines = d.get("observed_on") or []
    return f'<br><small class="muted">seen on {esc(", ".join(machines))}</small>' if machines else ""


def render_observed(run: results.Run) -> str:
    """The divergences that excused items in this run, most frequent first, linked to their registry rows."""
    seen = sorted(observed_divergences(run).items(), key=lambda kv: (-kv[1], kv[0]))
    if not seen:
        return "<p>none</p>"
    return table(
        ["id", "xfailed"],
        [[f'<a href="#div-{esc(did)}" class="mono">{esc(did)}</a>', str(n)] for did, n in seen],
        numeric={1},
        attrs=' id="observed"',
    )


def render_overrides(run: results.Run) -> str:
    rows = tolerance_overrides(run)
    if not rows:
        return '<p id="overrides">none</p>'
    return table(
        ["case", "reason", "c", "atol", "dtypes"],
        [
            [
                f'<span class="mono">{esc(r["case"])}</span>',
                esc(r.get("reason")),
                esc(r.get("c")),
                esc(r.get("atol")),
                esc(", ".join(map(str, r["dtypes"]))),
            ]
            for r in rows
        ],
        attrs=' id="overrides"',
    )


def render_slowest(run: results.Run) -> str:
    rows = slowest(run)
    if not rows:
        return "<p>No cases ran.</p>"
    return table(
        ["#", "id", "op", "dtype", "shapes", "status", "seconds"],
        [
            [
                str(i + 1),
                f'<span class="mono">{esc(r["id"])}</span>',
                esc(r.get("op")),
                esc(r.get("dtype")),
                esc(shapes_text(r)),
                esc(r["status"]),
                f"{r.get('seconds') or 0.0:.3f}",
            ]
            for i, r in enumerate(rows)
        ],
        numeric={0, 6},
        attrs=' id="slowest"',
    )


def render_problems(run: results.Run) -> str:
    problems = other_problems(run)
    t = tally(run)
    counts = (
        f"<p>malformed cases: {t['malformed']}; crashed items: {t['crashed']}; harness self-tests: "
        + (", ".join(f"{n} {s}" for s, n in sorted(t["tests"].items())) or "none in this run")
        + ".</p>"
    )
    if not problems:
        return counts
    label: dict[str | None, str] = {
        "malformed": "malformed case",
        "crashed": "crashed item",
        "test": "harness self-test",
    }
    return counts + table(
        ["id", "what", "message"],
        [
            [
                f'<span class="mono">{esc(r["id"])}</span>',
                esc(label.get(r.get("kind"), r.get("kind"))),
                f"<pre>{esc(clip(chr(10).join(r.get('errors') or ()) or r['status'], 4000))}</pre>",
            ]
            for r in problems
        ],
        attrs=' id="problems"',
    )


def merge_info(run: results.Run) -> dict | None:
    """A merged run's ``run.merge`` (``harness.reports.merge``), or None for a run that was not merged."""
    info = run.run.get("merge")
    return info if run.run.get("merged_from") and isinstance(info, dict) else None


def render_merge(run: results.Run) -> str:
    """The runs a merged run came from, with their counts; the items recorded by several; the stale check."""
    info = merge_info(run) or {}
    statuses = ("passed", "xfailed", "failed", "skipped")
    rows = [
        [
            f'<span class="mono">{esc(s.get("directory"))}</span>',
            esc(s.get("shard") or "whole"),
            esc(s.get("registry") or "unknown"),
            str(s.get("records", 0)),
            *(str((s.get("counts") or {}).get(k, 0)) for k in statuses),
            esc(s.get("exitstatus")),
        ]
        for s in info.get("sources", [])
    ]
    parts = [
        table(
            ["run", "shard", "registry", "records", *statuses, "exit status"],
            rows,
            numeric={3, 4, 5, 6, 7},
            attrs=' id="merged"',
        )
    ]
    overlap = info.get("overlap") or []
    parts.append(
        f"<p>{len(run.records)} records of {info.get('items', '?')} distinct items. "
        + (
            f"{plural(len(overlap), 'item')} recorded by more than one run: kept from each and counted "
            f"once per run.</p>"
            if overlap
            else "No item was recorded by more than one run.</p>"
        )
    )
    if overlap:
        parts.append(
            table(
                ["id", "runs: status"],
                [
                    [
                        f'<span class="mono">{esc(o["id"])}</span>',
                        esc(", ".join(f"{d}: {st}" for d, st in zip(o["sources"], o["statuses"]))),
                    ]
                    for o in overlap[:200]
                ],
                attrs=' id="overlap"',
            )
        )
    check = info.get("stale_check", "?")
    parts.append(f"<p>Stale-divergence check on the union: {esc(check)}.</p>")
    parts += [f'<p class="note">{esc(w)}</p>' for w in info.get("warnings") or ()]
    return "".join(parts)


def render_html(run: results.Run) -> str:
    """The whole report page (pure: no files, no clock)."""
    v = verdict(run)
    t = tally(run)
    overview = (  # the coverage matrix beside the per-op tables: both visible without scrolling
        '<div class="overview">'
        + section("coverage", "Coverage: op × padding × stride × dilation × layout × dtype", render_coverage(run))
        + "<aside>"
        + section("per-op", "Per op", render_per_op(run))
        + section("errors", "Error contracts (op × dtype)", render_error_contracts(run))
        + section("observed", "Known divergences observed", render_observed(run))
        + "</aside></div>"
    )
    if per_backend(run)[0]:
        overview += section("backends", "Backends against TensorFlow (backend × op)", render_backends(run))
    sections = [
        ("failures", f"Failures ({t['failed']})", render_failures(run)),
        ("problems", "Malformed cases, crashed items and failing self-tests", render_problems(run)),
        ("divergences", "Known divergences (cases/known_divergences.yaml)", render_divergences(run)),
        ("machine", "Machine: what the verdicts depended on", render_machine(run)),
        ("overrides", "Tolerance overrides", render_overrides(run)),
        ("slowest", f"Slowest {SLOWEST} cases", render_slowest(run)),
    ]
    links = [
        ("coverage", "Coverage"),
        ("per-op", "Per op"),
        ("errors", "Error contracts"),
        ("failures", "Failures"),
        ("problems", "Malformed / crashed"),
        ("divergences", "Known divergences"),
        ("machine", "Machine"),
        ("overrides", "Tolerance overrides"),
        ("slowest", "Slowest"),
    ]
    if merge_info(run) is not None:
        sections.insert(0, ("merged", f"Merged from {len(run.run['merged_from'])} runs", render_merge(run)))
        links.insert(0, ("merged", "Merged runs"))
    nav = "".join(f'<a href="#sec-{a}">{esc(label)}</a>' for a, label in links)
    body = overview + "".join(section(a, title, content) for a, title, content in sections)
    title = f"tf-conv-harness {v.upper()}: {t['passed']} passed, {t['xfailed']} xfailed, {t['failed']} failed"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head>' + ERROR_TRAP + '<meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body data-verdict="{v}">{render_header(run)}{render_banner(run)}<nav>{nav}</nav>'
        f"<main>{body}</main>{INIT_SCRIPT}</body></html>\n"
    )


# --- summary.md ---------------------------------------------------------------------------------------


def md_text(text, limit: int = 240) -> str:
    """One line of Markdown-safe text (GitHub renders inline HTML and emphasis: escape them)."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return "".join("\\" + ch if ch in "\\`*_[]<>|#" else ch for ch in line)


def md_code(text) -> str:
    """Inline code (ids): backticks inside would end the span, pipes would split a table cell."""
    return "`" + str(text).replace("`", "'").replace("|", "\\|") + "`"


def render_summary(run: results.Run) -> str:
    """A short Markdown digest for $GITHUB_STEP_SUMMARY."""
    v, t = verdict(run), tally(run)
    icon = "✅" if v == "pass" else "❌"
    lines = [f"## {icon} tf-conv-harness: {v.upper()}", ""]
    state = interruption(run)
    if state:
        lines += [
            f"> ⚠️ **{state}**: the run did not finish; these counts cover the {len(run.records)} items recorded.",
            "",
        ]
    reasons = verdict_reasons(run)
    if reasons:
        lines += [f"Failing because: {md_text('; '.join(reasons), 500)}", ""]
    counts = " · ".join(f"{t[k]} {k}" for k in ("passed", "xfailed", "failed", "malformed", "crashed", "skipped"))
    tests = ", ".join(f"{n} {s}" for s, n in sorted(t["tests"].items()))
    lines += [f"**{counts}** ({t['total']} items" + (f"; harness self-tests: {tests}" if tests else "") + ")", ""]
    envs = source_environments(run)
    if len(envs) > 1:
        lines += [f"The merged runs came from {len(envs)} different machines or environments:", ""]
    for source, env in envs:
        line = md_text(
            f"TensorFlow {env.get('tensorflow', '?')} · oneDNN {onednn_label(env.get('onednn'))} · "
            f"NumPy {env.get('numpy', '?')} · Python {env.get('python', '?')} · threads "
            f"{env.get('intra_op_threads', '?')}/{env.get('inter_op_threads', '?')}"
            + (
                f" · sweeps {run.run.get('sweeps', '?')} · {duration(run.run.get('seconds'))}" if source is None else ""
            ),
            400,
        )
        lines += [(f"{md_code(source)}: " if source is not None else "") + line, ""]
        lines += [
            md_text(line.strip(), 400) + "  " for line in environment.describe(environment.Environment.from_record(env))
        ]
        lines.append("")
    if len(envs) > 1:
        lines += [
            md_text(f"sweeps {run.run.get('sweeps', '?')} · {duration(run.run.get('seconds'))} summed over the runs"),
            "",
        ]
    lines += summary_merge_lines(run)
    table_ = per_op(run)
    if table_:
        lines += ["| op | passed | xfailed | failed | skipped |", "|---|--:|--:|--:|--:|"]
        total: Counter[str] = Counter()
        for op, c in table_.items():
            total.update(c)
            lines.append(f"| {md_text(op)} | {c['passed']} | {c['xfailed']} | {c['failed']} | {c['skipped']} |")
        lines += [
            f"| **total** | {total['passed']} | {total['xfailed']} | {total['failed']} | {total['skipped']} |",
            "",
        ]
    names, op_names, cells = per_backend(run)
    if names:
        lines += [
            "| backend × op (against TensorFlow) | passed | xfailed | failed | skipped |",
            "|---|--:|--:|--:|--:|",
        ]
        for b in names:
            for op in op_names:
                cell = cells.get((b, op))
                if cell:
                    lines.append(
                        f"| {md_text(b)} · {md_text(op)} | {cell['passed']} | {cell['xfailed']} | "
                        f"{cell['failed'] + cell['error']} | {cell['skipped']} |"
                    )
        lines.append("")
    failures = failing_cases(run)
    if failures:
        lines.append(f"### Failures ({len(failures)})")
        lines += [f"- {md_code(r['id'])}: {md_text(first_line(r))}" for r in failures[:MAX_SUMMARY_FAILURES]]
        if len(failures) > MAX_SUMMARY_FAILURES:
            lines.append(f"- … and {len(failures) - MAX_SUMMARY_FAILURES} more")
        lines.append("")
    problems = other_problems(run)
    if problems:
        lines.append(f"### Malformed cases, crashed items and failing self-tests ({len(problems)})")
        lines += [
            f"- {md_code(r['id'])} ({r.get('kind')}): {md_text(first_line(r))}" for r in problems[:MAX_SUMMARY_FAILURES]
        ]
        if len(problems) > MAX_SUMMARY_FAILURES:
            lines.append(f"- … and {len(problems) - MAX_SUMMARY_FAILURES} more")
        lines.append("")
    seen = observed_divergences(run)
    lines.append("### Known divergences observed" if seen else "Known divergences observed: none")
    lines += [f"- {md_code(did)}: {n}" for did, n in seen.items()]
    lines.append("")
    elsewhere = [d for d in run.divergences if d.get("not_here")]
    if elsewhere:
        lines.append(
            f"Not applicable on this machine or in this mode ({len(elsewhere)}): "
            + "; ".join(f"{md_code(d['id'])} ({md_text(d['not_here'], 120)})" for d in elsewhere)
        )
        lines.append("")
    stale = stale_divergences(run)
    if stale:
        lines.append("### Stale known divergences (no case diverges any more: update cases/known_divergences.yaml)")
        lines += [f"- {md_code(did)}" for did in stale]
        lines.append("")
    overrides = tolerance_overrides(run)
    lines += [f"Tolerance overrides: {len(overrides) or 'none'}", ""]
    return "\n".join(lines)


def summary_merge_lines(run: results.Run) -> list[str]:
    """summary.md's part about a merged run: its runs, the overlap, the stale check and any warning."""
    info = merge_info(run)
    if info is None:
        return []
    lines = [f"### Merged from {len(run.run['merged_from'])} runs", ""]
    for s in info.get("sources", []):
        c = s.get("counts") or {}
        lines.append(
            f"- {md_code(s.get('directory'))} ({md_text(s.get('shard') or 'whole')}): {s.get('records', 0)} "
            f"records, {c.get('passed', 0)} passed, {c.get('xfailed', 0)} xfailed, {c.get('failed', 0)} "
            f"failed, {c.get('skipped', 0)} skipped"
        )
    overlap = info.get("overlap") or []
    lines += [
        "",
        (
            f"{plural(len(overlap), 'item')} recorded by more than one run (kept from each, counted once per run); "
            if overlap
            else "No item recorded by more than one run; "
        )
        + f"stale-divergence check on the union: {md_text(info.get('stale_check', '?'))}",
        "",
    ]
    lines += [f"> ⚠️ {md_text(w, 400)}" for w in info.get("warnings") or ()]
    return lines + ([""] if info.get("warnings") else [])


# --- files ----------------------------------------------------------------------------------------------


def write_reports(run: results.Run, directory: Path) -> list[Path]:
    """Write report.html and summary.md into ``directory`` (atomically); return their paths."""
    directory = Path(directory)
    written = []
    for name, text in ((REPORT_HTML, render_html(run)), (SUMMARY_MD, render_summary(run))):
        atomic.write_atomic(directory / name, text)
        written.append(directory / name)
    return written
