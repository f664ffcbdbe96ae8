"""The divergence atlas: what the version matrix (``harness matrix``) found, per known divergence, TensorFlow version
and oneDNN mode. Pure functions over the matrix's runs (``results.json`` read back as ``results.Run``).

``build(columns, runs, known)`` makes ``atlas.json``::

    {"schema": 1, "generated", "registry", "machine": {...},
     "columns": [{"key", "spec", "tensorflow", "onednn", "state", "error", "seconds", "counts"}],
     "divergences": [{"id", "kind", "summary", "declared", "strict",
                      "cells": {column key: {"state", "diverges", "agrees", "other", "shadowed", "detail"}},
                      "onset": {"on"|"off": {"first_bad", "last_good", "fixed_in", "last_bad"}},
                      "measured": specifier or null, "open_in_nightly": true | false | null}],
     "new": [{"key", "op", "backend", "check", "behaviour", "when": {...}, "columns": {column key: count},
              "repro": {column key: {"id", "dtype", "command"}}}],
     "per_version": {column key: {op label: {status: count}}},
     "changes": [{"from", "to", "onednn", "new_failures", "fixes", "changed", "error_growth"}]}  (item ids;
                 ``harness.reports.compare.compare_runs`` along each oneDNN mode's versions)

A cell's state, for one entry in one run (the run applies every entry whatever its ``tensorflow_versions``, so each
entry is tried on every version):

* ``diverges``: some case matching the entry made TensorFlow do what the entry says;
* ``agrees``: every matching case agreed with the reference (fixed there, or not yet broken);
* ``errors``: matching cases, none diverging as declared, some doing something else that no entry explains (or the
  run itself failed);
* ``not applicable``: no case matched (the entry's oneDNN mode, CPU or kernel conditions do not hold there).

``render(atlas)`` is the self-contained ``atlas.html``; ``suggestions(atlas)`` the ranges ``--suggest`` prints.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter, defaultdict
from typing import Mapping, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.registry.cases import item_case_id
from harness.reports import results

SCHEMA = 1
STATES = ("diverges", "agrees", "errors", "not applicable")
# The features a new disagreement is grouped by; the rest of the features the group shares become its ``when``.
GROUP_FEATURES = ("op", "expect_error", "eigen_kernel")
MAX_IDS = 20


# --- columns ---------------------------------------------------------------------------------

def version_key(spec: str) -> tuple:
    """Sort key of a version spec: numbered versions in order, then nightly, then anything else."""
    if spec == "nightly":
        return (2, ())
    try:
        return (0, Version(spec).release)
    except InvalidVersion:
        return (3, (spec,))


def mode_name(onednn: str) -> str:
    return "on" if str(onednn) not in ("0", "false", "False", "off") else "off"


# --- one run ---------------------------------------------------------------------------------

def _behaviour(rec: Mapping) -> str:
    """What TensorFlow did for a record, as a behaviour ("agrees", "wrong_values", "raises X", "aborts", ...)."""
    text = rec.get("tensorflow") or ""
    if rec.get("check") == "gradients":  # "tape agrees; Conv2DBackpropInput wrong_values (...)"
        parts = [re.sub(r" \(.*", "", p.split(" ", 1)[1]) for p in text.split("; ") if " " in p]
        bad = [p for p in parts if p != "agrees"]
        return bad[0] if bad else "agrees"
    if text.startswith("raises "):
        return " ".join(text.split(" ")[:2]).split(" (")[0]
    return text.split(" (")[0].split(" ")[0] or "unknown"


def _case_records(run: results.Run) -> list[dict]:
    """The case items that ran: TensorFlow against the reference, and any backend's against TensorFlow (a backend
    entry, e.g. of tensorflow-xla, applies to its backend's items only)."""
    return [r for r in run.records if r.get("kind") == "case" and r["status"] != "skipped"]


def cells(run: results.Run, known: Sequence[Mapping]) -> dict[str, dict]:
    """Every entry's cell in one run (see the module docstring); ``known``: the divergence rows (id and
    tensorflow_does). An item that another applicable entry excused is left out when TensorFlow did what this one
    declares as well (the first matching entry takes it); when not, it is "shadowed" and counts with the agreeing
    ones: this entry does not hold there. "other": TensorFlow did something else that no entry excused."""
    declared = {d["id"]: set(d.get("tensorflow_does") or ()) for d in known}
    tally = {i: Counter() for i in declared}
    for rec in _case_records(run):
        behaviour = _behaviour(rec)
        for did in rec.get("applicable_divergences") or []:
            if did not in tally:
                continue
            if rec.get("divergence") == did:
                tally[did]["diverges"] += 1
            elif rec.get("divergence") and behaviour in declared[did]:
                continue  # another entry excused what this one declares too: not this entry's evidence
            elif rec.get("divergence"):
                tally[did]["shadowed"] += 1  # another entry's bug, not this one's: it does not hold here
            elif behaviour == "agrees":
                tally[did]["agrees"] += 1
            else:
                tally[did]["other"] += 1
    out = {}
    for did, c in tally.items():
        state = ("diverges" if c["diverges"] else "errors" if c["other"] else "agrees" if c["agrees"] + c["shadowed"]
                 else "not applicable")
        out[did] = {"state": state, "diverges": c["diverges"], "agrees": c["agrees"] + c["shadowed"],
                    "other": c["other"], "shadowed": c["shadowed"]}
    return out


def _holds(cell: Mapping) -> str:
    """A cell as the ranges read it: "diverges", "agrees" (the entry does not hold there: TensorFlow agreed, or did
    something else than the entry declares) or "neutral" (no case matched, or the run failed)."""
    if cell["state"] == "diverges":
        return "diverges"
    if cell["state"] == "agrees" or (cell["state"] == "errors" and cell.get("other")):
        return "agrees"
    return "neutral"


def per_op(run: results.Run) -> dict[str, dict[str, int]]:
    """{op label: {status: count}}, plus "unexplained": the failures no known entry applies to. The matrix applies
    every entry to every version, so an entry that does not hold in a version fails its cases there: those
    failures are the atlas's "agrees" cells, not disagreements."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for rec in run.cases:
        counts[results.op_label(rec)][rec["status"]] += 1
        if rec["status"] == "failed" and not rec.get("applicable_divergences"):
            counts[results.op_label(rec)]["unexplained"] += 1
    return {op: dict(c) for op, c in sorted(counts.items())}


def _size(rec: Mapping) -> int:
    total = 0
    for shape in (rec.get("shapes") or {}).values():
        n = 1
        for d in shape or []:
            n *= int(d)
        total += n
    return total


def new_disagreements(run: results.Run) -> list[dict]:
    """The failures of one run that no known entry covers, grouped (``GROUP_FEATURES`` plus check and behaviour)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for rec in _case_records(run):
        if rec["status"] != "failed" or rec.get("applicable_divergences"):
            continue
        feats = rec.get("features") or {}
        parts = [str(rec.get("op")) + (f" @{rec['backend']}" if rec.get("backend") else ""),
                 rec.get("check") or "forward", _behaviour(rec)]
        parts += [f"{k}={feats.get(k)}" for k in GROUP_FEATURES[1:]]
        groups[" ".join(map(str, parts))].append(rec)
    found = []
    for key, recs in sorted(groups.items()):
        shared = dict(recs[0].get("features") or {})
        for rec in recs[1:]:
            feats = rec.get("features") or {}
            shared = {k: v for k, v in shared.items() if feats.get(k) == v}
        smallest = min(recs, key=lambda r: (r.get("check") == "gradients", _size(r), r["id"]))
        found.append({"key": key, "op": recs[0].get("op"), "backend": recs[0].get("backend"),
                      "check": recs[0].get("check") or "forward",
                      "behaviour": _behaviour(recs[0]), "count": len(recs), "when": shared,
                      "dtypes": sorted({r["dtype"] for r in recs}), "ids": [r["id"] for r in recs[:MAX_IDS]],
                      "smallest": smallest["id"], "smallest_dtype": smallest["dtype"],
                      "detail": (smallest.get("errors") or [""])[0][:300]})
    return found


# --- the atlas -------------------------------------------------------------------------------

def build(columns: Sequence[dict], runs: Mapping[str, results.Run], known: Sequence[dict],
          changes: Sequence[dict] = (), generated: str = "") -> dict:
    """The atlas (module docstring) from the matrix's ``columns`` (one per combination: key, spec, onednn, state,
    error, seconds, tensorflow), the ``runs`` that completed (by column key) and the ``known`` divergence rows
    (``results.divergence_rows``)."""
    columns = sorted(({**c, "onednn_version": c.get("onednn_version") or _onednn_version(runs.get(c["key"]))}
                      for c in columns), key=lambda c: (mode_name(c["onednn"]) == "off", version_key(c["spec"])))
    per_run = {key: cells(run, known) for key, run in runs.items()}
    entries = []
    for d in known:
        row = {}
        for col in columns:
            if col["key"] in per_run:
                row[col["key"]] = per_run[col["key"]][d["id"]]
            else:
                row[col["key"]] = {"state": "errors", "diverges": 0, "agrees": 0, "other": 0,
                                   "detail": col.get("error") or col.get("state")}
        entries.append({"id": d["id"], "kind": d.get("kind"), "summary": d.get("summary"),
                        "declared": d.get("tensorflow_versions"), "strict": d.get("strict"),
                        "onednn": d.get("onednn"), "cells": row})
    for entry in entries:
        entry["onset"] = {mode: _onset(entry["cells"], [c for c in columns if mode_name(c["onednn"]) == mode])
                          for mode in ("on", "off")}
        entry["measured"], entry["open_in_nightly"] = measured_range(entry["cells"], columns)
    new_by_key: dict[str, dict] = {}
    for col in columns:
        run = runs.get(col["key"])
        if run is None:
            continue
        for group in new_disagreements(run):
            merged = new_by_key.setdefault(group["key"], {**{k: group[k] for k in ("key", "op", "backend", "check",
                                                                                   "behaviour")},
                                                          "when": group["when"], "columns": {}, "repro": {},
                                                          "dtypes": set(), "detail": group["detail"]})
            merged["when"] = {k: v for k, v in merged["when"].items() if group["when"].get(k) == v}
            merged["columns"][col["key"]] = group["count"]
            merged["dtypes"].update(group["dtypes"])
            merged["repro"][col["key"]] = {
                "id": group["smallest"], "dtype": group["smallest_dtype"], "ids": group["ids"],
                "command": repro_command(group["smallest"], col, group["backend"], group["check"])}
    new = [{**g, "dtypes": sorted(g["dtypes"])} for g in new_by_key.values()]
    first = next(iter(runs.values()), None)
    return {"schema": SCHEMA, "generated": generated, "registry": first.run.get("registry") if first else None,
            "machine": _machine(first.environment) if first else {},
            "columns": list(columns), "divergences": entries, "new": new,
            "per_version": {key: per_op(run) for key, run in runs.items()}, "changes": list(changes)}


def _onednn_version(run: results.Run | None) -> str | None:
    return ((run.environment.get("probe") or {}).get("onednn_version") if run is not None else None)


def repro_command(item_id: str, column: Mapping, backend: str | None = None, check: str = "forward") -> str:
    """The ``harness repro`` line for a failing item of a matrix column (its group's ``backend`` and ``check``); the
    script shows TensorFlow's side of the case."""
    why = (f"  # TensorFlow's side; the disagreement is {backend}'s" if backend
           else "  # the forward case; the failure is in its gradients" if check == "gradients" else "")
    return f"harness repro '{item_case_id(item_id)}' --tensorflow {column['spec']} --onednn {column['onednn']}" + why


def _machine(env: Mapping) -> dict:
    return {k: env.get(k) for k in ("cpu_model", "cpu_vendor", "cpu_isa_level", "machine", "python", "platform",
                                    "onednn_isa_cap")}


def _onset(row: Mapping[str, dict], columns: Sequence[dict]) -> dict:
    """first_bad / last_good (the run before it where the entry did not hold) / last_bad / fixed_in along one oneDNN
    mode's versions, ignoring runs where no case matched (``_holds``)."""
    seen = [(c["spec"], _holds(row[c["key"]])) for c in columns if _holds(row[c["key"]]) != "neutral"]
    bad = [i for i, (_, s) in enumerate(seen) if s == "diverges"]
    if not bad:
        return {"first_bad": None, "last_good": None, "last_bad": None, "fixed_in": None}
    first, last = bad[0], bad[-1]
    last_good = next((seen[i][0] for i in range(first - 1, -1, -1) if seen[i][1] == "agrees"), None)
    fixed = next((seen[i][0] for i in range(last + 1, len(seen)) if seen[i][1] == "agrees"), None)
    return {"first_bad": seen[first][0], "last_good": last_good, "last_bad": seen[last][0], "fixed_in": fixed}


def _minor(spec: str) -> str:
    return ".".join(spec.split(".")[:2])


def measured_range(row: Mapping[str, dict], columns: Sequence[dict]) -> tuple[str | None, bool | None]:
    """(the ``tensorflow_versions`` specifier the runs support, whether nightly still diverges (None: not run or
    not applicable)). A nightly counts as the release it precedes (a fix there ends the range before that
    release: "<2.23" excludes 2.23.0.dev2026...). A numbered version diverges if it does under some oneDNN mode and agrees if it agrees under
    every mode where the entry applies. The range starts at the first diverging version, excludes agreeing versions
    after it, and ends before the first agreeing version with no divergence after it; it stays open when the newest
    numbered run (and nightly, if run) diverges."""
    by_version: dict[str, set] = defaultdict(set)
    for c in columns:
        # A nightly counts as its minor version (2.23.0.dev20261026: 2.23), which no release of it precedes.
        spec = _nightly_minor(c) if c["spec"] == "nightly" else c["spec"]
        by_version[spec].add(_holds(row[c["key"]]))
    nightly = set().union(*(by_version.get(_nightly_minor(c), set()) for c in columns if c["spec"] == "nightly"))
    open_nightly = None if not nightly or nightly <= {"neutral"} else "diverges" in nightly
    by_version.pop("nightly", None)  # a nightly whose version is unknown
    numbered = sorted(by_version, key=version_key)
    verdicts = [(v, "diverges" if "diverges" in s else "agrees" if "agrees" in s else "neutral")
                for v, s in ((v, by_version[v]) for v in numbered)]
    bad = [v for v, s in verdicts if s == "diverges"]
    if not bad:
        return None, open_nightly
    nightly_minors = {_nightly_minor(c) for c in columns if c["spec"] == "nightly"}
    # From a nightly on: its pre-releases too (">=2.23" would leave out 2.23.0.dev20261026).
    parts = [f">={_minor(bad[0])}" + (".0.dev0" if bad[0] in nightly_minors else "")]
    after = [x for x in verdicts if version_key(x[0]) > version_key(bad[-1])]
    fixed = next((v for v, s in after if s == "agrees"), None)
    if fixed is not None:
        parts.append(f"<{_minor(fixed)}")
    for v, s in verdicts:
        if s == "agrees" and version_key(bad[0]) < version_key(v) < version_key(bad[-1]):
            parts.append(f"!={_minor(v)}.*")
    return ",".join(parts), open_nightly


def _nightly_minor(column: Mapping) -> str:
    try:
        release = Version(str(column.get("tensorflow"))).release
    except InvalidVersion:
        return "nightly"
    return f"{release[0]}.{release[1]}"


def _same_range(a: str, b: str | None) -> bool:
    try:
        return SpecifierSet(a) == SpecifierSet(b if b not in (None, "any") else "")
    except InvalidSpecifier:
        return False


def suggestions(atlas: Mapping) -> list[str]:
    """One line per entry: the declared range, the measured one, the versions behind it, and nightly."""
    ran = sorted({c["spec"] for c in atlas["columns"] if c.get("state") == "ran"}, key=version_key)
    lines = [f"versions run: {', '.join(ran)}"]
    width = max((len(d["id"]) for d in atlas["divergences"]), default=10)
    for d in atlas["divergences"]:
        nightly = {True: "open in nightly", False: "fixed in nightly", None: "nightly: not run or n/a"}[
            d["open_in_nightly"]]
        measured = d["measured"] or "never diverged"
        mark = "" if d["measured"] is None or _same_range(d["measured"], d["declared"]) else "  <- update"
        lines.append(f"{d['id']:<{width}}  declared {d['declared']!s:<16} measured {measured:<22} {nightly}{mark}")
    return lines


# --- HTML ------------------------------------------------------------------------------------

_COLOURS = {"diverges": "#e8a33d", "agrees": "#7fbf7f", "errors": "#d9534f", "not applicable": "#e6e6e6"}


def _cell(c: Mapping) -> str:
    n = {"diverges": c.get("diverges"), "agrees": c.get("agrees"), "errors": c.get("other")}.get(c["state"])
    title = (f"{c['state']}: {c.get('diverges', 0)} diverging, {c.get('agrees', 0)} agreeing, "
             f"{c.get('other', 0)} other" + (f"; {c['detail']}" if c.get("detail") else ""))
    label = {"diverges": "✗", "agrees": "✓", "errors": "!", "not applicable": "·"}[c["state"]]
    return (f'<td class="cell" data-state="{c["state"]}" style="background:{_COLOURS[c["state"]]}" '
            f'title="{html.escape(title)}">{label}{f"<small>{n}</small>" if n else ""}</td>')


def _header(columns: Sequence[dict]) -> str:
    modes = Counter(mode_name(c["onednn"]) for c in columns)
    top = "".join(f'<th colspan="{n}">oneDNN {m}</th>' for m, n in modes.items())
    low = "".join(f'<th title="{html.escape(str(c.get("tensorflow") or c.get("error") or ""))}">'
                  f'{html.escape(c["spec"])}</th>' for c in columns)
    return top, low


def render(atlas: Mapping) -> str:
    """``atlas.html``: one self-contained page (no scripts or styles from elsewhere)."""
    esc = html.escape
    columns = atlas["columns"]
    top, low = _header(columns)
    rows = []
    for d in atlas["divergences"]:
        onset = "; ".join(
            f"{m}: " + (f"first bad {o['first_bad']}" + (f" (last good {o['last_good']})" if o["last_good"] else "")
                        + (f", fixed in {o['fixed_in']}" if o["fixed_in"] else "")
                        if o["first_bad"] else "never diverged")
            for m, o in d["onset"].items())
        rows.append(f'<tr id="{esc(d["id"])}"><th class="id" title="{esc(d["summary"] or "")}">{esc(d["id"])}</th>'
                    + "".join(_cell(d["cells"][c["key"]]) for c in columns)
                    + f'<td>{esc(d["declared"] or "")}</td><td>{esc(d["measured"] or "never diverged")}</td>'
                    f'<td>{esc(onset)}</td></tr>')
    states = "".join(f'<span class="key" style="background:{_COLOURS[s]}">{esc(s)}</span>' for s in STATES)
    new_rows = []
    for g in atlas["new"]:
        counts = "".join(f'<td class="num">{g["columns"].get(c["key"], "")}</td>' for c in columns)
        first = next((c for c in columns if c["key"] in g["repro"]), None)
        rep = g["repro"][first["key"]] if first else {}
        when = ", ".join(f"{k}: {v}" for k, v in g["when"].items() if v not in (None, False) and k != "op")
        where = f' @{g["backend"]}' if g.get("backend") else ""
        new_rows.append(f'<tr><th class="id">{esc(g["op"] + where)} {esc(g["check"])}<br><small>{esc(g["behaviour"])}'
                        f'</small></th>{counts}<td><code>{esc(rep.get("command", ""))}</code><br><small>'
                        f'{esc(when)}</small></td></tr>')
    ops = sorted({op for v in atlas["per_version"].values() for op in v})
    count_rows = []
    for op in ops:
        cells_ = []
        for c in columns:
            got = atlas["per_version"].get(c["key"], {}).get(op)
            cells_.append(f'<td class="num">{got.get("passed", 0)}/{got.get("xfailed", 0)}/{got.get("failed", 0)}'
                          f'/<b>{got.get("unexplained", 0)}</b></td>' if got else "<td></td>")
        count_rows.append(f'<tr><th class="id">{esc(op)}</th>{"".join(cells_)}</tr>')
    change_items = []
    for ch in atlas["changes"]:
        change_items.append(f'<li><b>{esc(ch["from"])} → {esc(ch["to"])}</b> (oneDNN {esc(ch["onednn"])}): '
                            f'{len(ch["new_failures"])} new failures, {len(ch["fixes"])} fixes, '
                            f'{len(ch.get("changed", []))} changed behaviour, {len(ch["error_growth"])} with error growth'
                            + "".join(f'<br><small>new failure: {esc(i)}</small>' for i in ch["new_failures"][:5])
                            + "</li>")
    machine = atlas.get("machine") or {}
    runs = "".join(f'<li>{esc(c["key"])}: {esc(c["state"])}'
                   + (f' — TensorFlow {esc(str(c["tensorflow"]))}' if c.get("tensorflow") else "")
                   + (f', oneDNN {esc(str(c["onednn_version"]))}' if c.get("onednn_version") else "")
                   + (f' — {esc(c["error"])}' if c.get("error") else "")
                   + (f' ({c["seconds"]:.0f} s)' if c.get("seconds") else "") + "</li>" for c in columns)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Divergence atlas</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; }}
td.cell {{ text-align: center; min-width: 2.2em; }}
td.cell small {{ display: block; font-size: 10px; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
th.id {{ text-align: left; font-weight: normal; font-family: monospace; }}
.key {{ padding: 2px 8px; margin-right: 6px; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>Divergence atlas</h1>
<p>Every known divergence (<code>cases/known_divergences.yaml</code>) tried on every TensorFlow version and oneDNN
mode of the matrix, on {esc(str(machine.get("cpu_model")))} ({esc(str(machine.get("cpu_isa_level")))}), registry
{esc(str(atlas.get("registry")))}, generated {esc(atlas.get("generated") or "")}. {states}</p>
<h2 id="divergences">Known divergences</h2>
<table id="atlas"><thead><tr><th rowspan="2">entry</th>{top}<th rowspan="2">declared</th>
<th rowspan="2">measured</th><th rowspan="2">onset and fix</th></tr><tr>{low}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2 id="new">New disagreements ({len(atlas["new"])} groups)</h2>
<p>Failures no entry explains, grouped by op, check, behaviour and kernel; counts per run, and the smallest case's
repro command.</p>
<table id="new-table"><thead><tr><th rowspan="2">group</th>{top}<th rowspan="2">repro</th></tr><tr>{low}</tr></thead>
<tbody>{"".join(new_rows) or '<tr><td colspan="99">none</td></tr>'}</tbody></table>
<h2 id="counts">Per version: passed/xfailed/failed/<b>unexplained</b> per op</h2>
<p>Every entry is applied in every run, so a version where an entry does not hold fails that entry's cases (its
"agrees" cells above). <b>Unexplained</b> failures are those no entry applies to: the new disagreements.</p>
<table id="counts-table"><thead><tr><th rowspan="2">op</th>{top}</tr><tr>{low}</tr></thead>
<tbody>{"".join(count_rows)}</tbody></table>
<h2 id="changes">Between consecutive versions</h2>
<ul>{"".join(change_items) or "<li>no consecutive runs</li>"}</ul>
<h2 id="runs">Runs</h2><ul>{runs}</ul>
</body></html>
"""


def dumps(atlas: Mapping) -> str:
    return json.dumps(atlas, indent=1, sort_keys=False, default=list) + "\n"
