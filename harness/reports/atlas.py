"""The divergence atlas: what the version matrix (``harness matrix``) measured, per known divergence, TensorFlow
version and oneDNN mode, and on which machines. Pure functions over the matrix's runs (``results.json`` read back as
``results.Run``) and over atlases (``merge``): an atlas says only what was measured.

``build(columns, runs, known, changes, generated, machine, registry)`` makes ``atlas.json``; ``merge`` makes one of
several::

    {"schema": 2, "generated", "registry" (null: unknown, or merged atlases of different registries),
     "machines": {label: {"label", "cpu_model", "cpu_vendor", "cpu_isa_level", "onednn_isa_cap", "machine",
                          "python", "platform"}},
     "columns": [{"key", "spec", "onednn", "state", "tensorflow", "onednn_version", "error", "seconds", "counts",
                  "outcomes", "runs": [{"machine", "state", "tensorflow", "onednn_version", "error", "seconds",
                                        "counts", "outcomes", "per_op", "source" (merged: its atlas)}]}],
     "divergences": [{"id", "kind", "summary", "declared", "strict", "onednn", "backend",
                      "cells": {column key: {"state", "text", "diverges", "agrees", "other", "shadowed", "detail",
                                             "measurements": [{"machine", "tensorflow", "state", "diverges",
                                                               "agrees", "other", "shadowed", "detail"}]}},
                      "onset": {"on"|"off": {"state", "first_bad", "last_good", "last_bad", "fixed_in", "onset",
                                             "fix"}},
                      "measured": {"state", "text", "range", "onset", "fix", "last_good", "last_bad", "excluded",
                                   "versions", "nightly", "detail"},
                      "nightly": state, "open_in_nightly": true | false | null}],
     "new": [{"key", "op", "backend", "check", "behaviour", "when": {...}, "columns": {column key: count},
              "by_machine": {column key: {label: count}}, "machines": [label],
              "repro": {column key: {"id", "dtype", "command", "script"}}}],
     "per_version": {column key: {op label: {outcome: count}}}  (``OUTCOMES``, plus "unexplained"; the sum of the
                    column's runs' ``per_op``),
     "changes": [{"from", "to", "onednn", "machine", "new_failures", "fixes", "changed", "error_growth"}]}
                 (item ids; ``harness.reports.compare.compare_runs`` along each oneDNN mode's versions)
    a merged atlas also has "sources": [{"directory", "generated", "registry", "machines"}] and "warnings".

**Columns** are the versions and oneDNN modes run; a version run in one mode but not in the other gets a column in
the other whose ``state`` is "not run" (a mode never run anywhere gets none: its onset says "not run"). A column's
``runs`` are the machines that ran it (one, unless merged). A machine is its CPU model and ISA level (and the
``ONEDNN_MAX_CPU_ISA`` cap it ran under), from the run's environment record; ``label`` names it.

**A cell** is one entry in one column. Each machine that ran the column measured it (the run applies every entry
whatever its ``tensorflow_versions``, so each entry is tried on every version), and a measurement's state is

* ``diverges``: some case matching the entry made TensorFlow do what the entry says;
* ``agrees``: every matching case agreed with the reference (fixed there, or not yet broken): the entry does not
  hold there;
* ``errors``: matching cases, none diverging as declared, some doing something else that no entry explains (this
  also ends a range, like ``agrees``); or the run itself failed (no measurement);
* ``not applicable``: no case matched: the entry's oneDNN mode, CPU or kernel conditions do not hold on the machine
  that ran it (``detail``: why, from ``Divergence.not_here`` when it is the environment);
* ``not run``: nothing measured it: the column was not run, or the entry is a backend's that the run did not check.

The cell's ``state`` is the first of ``PRECEDENCE`` among its measurements, and ``text`` says each machine's when
they differ: "diverges (A), not applicable (B)".

**Onsets** (``onset``, per oneDNN mode, along the columns' versions, counting only cells that diverge or agree):
``first_bad`` / ``last_good`` (the version before it that agreed) / ``last_bad`` / ``fixed_in`` (the first version
after the last bad one that agreed). ``onset`` is ``first_bad``, or ``<=V`` when no earlier version was measured
agreeing: the onset is at the edge of what was run, V or before. ``fix`` is ``fixed_in``, or ``>V`` (V the last
bad version) when no later version was measured agreeing. ``state`` is "diverges", else what the mode's cells
measured: "agrees", "errors", "not applicable" or "not run".

**The measured range** (``measured``, across oneDNN modes, by minor version; a nightly counts as the release it
precedes): ``versions`` maps each minor measured to "diverges" (in some mode, on some machine), "agrees" (in some
and diverging in none) or the neutral state it had. ``range`` is the ``tensorflow_versions`` specifier of what was
run: from the first diverging version (``.0.dev0`` when a nightly: its pre-releases), before the first agreeing one
after the last divergence, without the agreeing ones in between (``excluded``). ``onset`` and ``fix`` are as above,
across modes. ``text`` reads it ("<=2.15 to 2.21, open"; "2.14 to 2.15, fixed in 2.16"; "not applicable here";
"not run"). ``propose(declared, measured)`` is what ``--suggest`` proposes: the declared range, narrowed only by a
version that was run and agreed, widened only by one that was run and diverged; never moved on the strength of
versions that were not run.

**Merging** (``merge``): columns are matched by version spec and oneDNN mode, cells keep every machine's
measurement (one per machine: of the newest TensorFlow that answered, and for the same version, of the later
atlas), and onsets and ranges are computed again from the union. Atlases of different registries are an
``AtlasError`` unless ``allow_different_registries`` (then a warning, as for an atlas whose registry is not known).
Schema-1 atlases are read (``upgrade``): their one machine measured every cell.

``render(atlas)`` is the self-contained ``atlas.html``; ``suggestions(atlas)`` the lines ``--suggest`` prints.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.registry.cases import item_case_id
from harness.reports import results

SCHEMA = 2
STATES = ("diverges", "agrees", "errors", "not applicable", "not run")
# A cell measured on several machines shows the first of these that its measurements have.
PRECEDENCE = ("diverges", "errors", "agrees", "not applicable", "not run")
MODES = ("on", "off")
MACHINE_FIELDS = ("cpu_model", "cpu_vendor", "cpu_isa_level", "onednn_isa_cap", "machine", "python", "platform")
# An item's outcome in a matrix run (``outcome``): its status, with the failures of entries that do not hold apart.
OUTCOMES = ("passed", "xfailed", "not holding", "failed", "skipped")
# The features a new disagreement is grouped by; the rest of the features the group shares become its ``when``.
GROUP_FEATURES = ("op", "expect_error", "eigen_kernel")
MAX_IDS = 20


class AtlasError(ValueError):
    """An atlas that cannot be read or merged (the message names it)."""


# --- columns and machines -------------------------------------------------------------------


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


def column_key(spec: str, onednn: str) -> str:
    """A column's key (and its run's directory name): ``tf2.17-onednn-on``; an interpreter's path becomes one name."""
    name = re.sub(r"[^\w.]+", "_", spec).strip("_")
    return f"tf{name}-onednn-{mode_name(onednn)}"


def _column_order(column: Mapping) -> tuple:
    return (mode_name(column["onednn"]) == "off", version_key(column["spec"]))


def machine_of(env: Mapping) -> dict:
    """The machine a run measured on, from its environment record (``Environment.record``): ``MACHINE_FIELDS`` and
    its ``label``, "CPU model (ISA level)" plus any oneDNN ISA cap it ran under."""
    rec = {k: env.get(k) for k in MACHINE_FIELDS}
    label = f"{rec['cpu_model'] or 'unknown CPU'} ({rec['cpu_isa_level'] or 'unknown ISA level'}"
    label += f", ONEDNN_MAX_CPU_ISA={rec['onednn_isa_cap']})" if rec["onednn_isa_cap"] else ")"
    return {"label": label, **rec}


def _not_run_column(spec: str, mode: str) -> dict:
    onednn = "1" if mode == "on" else "0"
    return {
        "key": column_key(spec, onednn),
        "spec": spec,
        "onednn": onednn,
        "state": "not run",
        "tensorflow": None,
        "onednn_version": None,
        "error": None,
        "seconds": None,
        "runs": [],
    }


def _grid(columns: Sequence[dict]) -> list[dict]:
    """The columns in order (oneDNN on first, versions ascending), plus a "not run" column for each version that
    ran in one oneDNN mode but not in the other."""
    have = {(c["spec"], mode_name(c["onednn"])) for c in columns}
    modes = {mode for _, mode in have}
    specs = dict.fromkeys(c["spec"] for c in columns)
    extra = [_not_run_column(s, m) for m in MODES if m in modes for s in specs if (s, m) not in have]
    return sorted([*columns, *extra], key=_column_order)


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


def outcome(rec: Mapping) -> str:
    """An item's outcome in a matrix run: its status, except that a failure where a known entry applied and
    TensorFlow agreed with the reference is "not holding". The matrix applies every entry on every version, so
    these are the atlas's "agrees" cells (the entry does not hold there), not failures; "failed" is what no entry
    explains."""
    if rec["status"] == "failed" and rec.get("applicable_divergences") and _behaviour(rec) == "agrees":
        return "not holding"
    return rec["status"]


def outcome_counts(run: results.Run) -> dict[str, int]:
    """{outcome: count} over the run's case items, ``OUTCOMES`` first, zeros left out."""
    counts = Counter(outcome(r) for r in run.cases)
    return {k: counts[k] for k in (*OUTCOMES, *sorted(set(counts) - set(OUTCOMES))) if counts[k]}


def cells(run: results.Run, known: Sequence[Mapping]) -> dict[str, dict]:
    """Every entry's measurement in one run: {entry id: {"state", "diverges", "agrees", "other", "shadowed"} (and
    "detail" when not applicable or not run)}; see the module docstring. ``known``: the divergence rows (id,
    tensorflow_does, and backend for a backend's entry). An item that another applicable entry excused is left out
    when TensorFlow did what this one declares as well (the first matching entry takes it); when not, it is
    "shadowed" and counts with the agreeing ones: this entry does not hold there. "other": TensorFlow did something
    else that no entry excused."""
    declared = {d["id"]: set(d.get("tensorflow_does") or ()) for d in known}
    tally: dict[str, Counter[str]] = {i: Counter() for i in declared}
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
    not_here = {row.get("id"): row.get("not_here") for row in run.divergences or ()}
    checked = {r.get("backend") for r in run.cases}  # the backends whose items this run has
    out = {}
    for d in known:
        c = tally[d["id"]]
        state = (
            "diverges"
            if c["diverges"]
            else "errors"
            if c["other"]
            else "agrees"
            if c["agrees"] + c["shadowed"]
            else "not applicable"
        )
        cell = {
            "state": state,
            "diverges": c["diverges"],
            "agrees": c["agrees"] + c["shadowed"],
            "other": c["other"],
            "shadowed": c["shadowed"],
        }
        if state == "not applicable" and d.get("backend") and d["backend"] not in checked:
            cell.update(state="not run", detail=f"the {d['backend']} backend was not checked in this run")
        elif state == "not applicable":
            cell["detail"] = not_here.get(d["id"]) or "no case matched here"
        out[d["id"]] = cell
    return out


def _holds(measurement: Mapping) -> str:
    """A measurement as the ranges read it: "diverges", "agrees" (the entry does not hold there: TensorFlow agreed,
    or did something else than the entry declares) or "neutral" (no case matched, not run, or the run failed)."""
    if measurement["state"] == "diverges":
        return "diverges"
    if measurement["state"] == "agrees" or (measurement["state"] == "errors" and measurement.get("other")):
        return "agrees"
    return "neutral"


def per_op(run: results.Run) -> dict[str, dict[str, int]]:
    """{op label: {outcome: count}} (``outcome``), plus "unexplained": the failures no known entry applies to (the
    new disagreements). The matrix applies every entry to every version, so an entry that does not hold in a
    version fails its cases there: those are "not holding" (the atlas's "agrees" cells), not failures."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for rec in run.cases:
        counts[results.op_label(rec)][outcome(rec)] += 1
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
        parts = [
            str(rec.get("op")) + (f" @{rec['backend']}" if rec.get("backend") else ""),
            rec.get("check") or "forward",
            _behaviour(rec),
        ]
        parts += [f"{k}={feats.get(k)}" for k in GROUP_FEATURES[1:]]
        groups[" ".join(map(str, parts))].append(rec)
    found = []
    for key, recs in sorted(groups.items()):
        shared = dict(recs[0].get("features") or {})
        for rec in recs[1:]:
            feats = rec.get("features") or {}
            shared = {k: v for k, v in shared.items() if feats.get(k) == v}
        smallest = min(recs, key=lambda r: (r.get("check") == "gradients", _size(r), r["id"]))
        found.append(
            {
                "key": key,
                "op": recs[0].get("op"),
                "backend": recs[0].get("backend"),
                "check": recs[0].get("check") or "forward",
                "behaviour": _behaviour(recs[0]),
                "count": len(recs),
                "when": shared,
                "dtypes": sorted({r["dtype"] for r in recs}),
                "ids": [r["id"] for r in recs[:MAX_IDS]],
                "smallest": smallest["id"],
                "smallest_dtype": smallest["dtype"],
                "detail": (smallest.get("errors") or [""])[0][:300],
            }
        )
    return found


# --- cells, onsets, ranges -------------------------------------------------------------------


def state_text(state: str) -> str:
    """A state as the atlas prints it alone: "not applicable" is "not applicable here" (on the machine that ran)."""
    return "not applicable here" if state == "not applicable" else state


def summarize(measurements: Sequence[Mapping]) -> dict:
    """A cell from its measurements (one per machine, each ``{"machine", "tensorflow", "state", "diverges",
    "agrees", "other", "shadowed", "detail"}``): its state (the first of ``PRECEDENCE`` they have; "not run" when
    there are none), a ``text`` that names each machine's state when they differ, the summed counts and the
    details."""
    ms = [dict(m) for m in measurements]
    if not ms:
        return {
            "state": "not run",
            "text": "not run",
            "diverges": 0,
            "agrees": 0,
            "other": 0,
            "shadowed": 0,
            "detail": None,
            "measurements": [],
        }
    by_state: dict[str, list[str]] = {}
    for m in ms:
        by_state.setdefault(m["state"], []).append(m["machine"])
    order = sorted(by_state, key=PRECEDENCE.index)
    text = state_text(order[0]) if len(order) == 1 else ", ".join(f"{s} ({', '.join(by_state[s])})" for s in order)
    details = dict.fromkeys(m["detail"] for m in ms if m.get("detail"))
    return {
        "state": order[0],
        "text": text,
        **{k: sum(m.get(k) or 0 for m in ms) for k in ("diverges", "agrees", "other", "shadowed")},
        "detail": "; ".join(details) or None,
        "measurements": ms,
    }


def _cell_holds(cell: Mapping) -> str:
    holds = {_holds(m) for m in cell["measurements"]}
    return "diverges" if "diverges" in holds else "agrees" if "agrees" in holds else "neutral"


def _neutral_state(cells_: Sequence[Mapping]) -> str:
    """What cells that neither diverge nor agree measured: "errors", "not applicable" or "not run"."""
    states = {m["state"] for c in cells_ for m in c["measurements"]}
    return next((s for s in ("errors", "not applicable") if s in states), "not run")


def _onset(row: Mapping[str, dict], columns: Sequence[dict]) -> dict:
    """One oneDNN mode's onset and fix along its ``columns`` (module docstring)."""
    seen = [(c["spec"], h) for c in columns if (h := _cell_holds(row[c["key"]])) != "neutral"]
    bad = [i for i, (_, s) in enumerate(seen) if s == "diverges"]
    if not bad:
        state = "agrees" if seen else _neutral_state([row[c["key"]] for c in columns])
        return {
            "state": state,
            "first_bad": None,
            "last_good": None,
            "last_bad": None,
            "fixed_in": None,
            "onset": None,
            "fix": None,
        }
    first, last = bad[0], bad[-1]  # what is measured around them agrees (holds), by construction
    last_good = seen[first - 1][0] if first > 0 else None
    fixed = seen[last + 1][0] if last + 1 < len(seen) else None
    return {
        "state": "diverges",
        "first_bad": seen[first][0],
        "last_good": last_good,
        "last_bad": seen[last][0],
        "fixed_in": fixed,
        "onset": seen[first][0] if last_good else f"<={seen[first][0]}",
        "fix": fixed if fixed else f">{seen[last][0]}",
    }


def _release_minor(text: str | None) -> str | None:
    """The minor version of a version: 2.17 of 2.17.1, 2.23 of a nightly's 2.23.0-dev20261026; None when ``text`` is
    not a version."""
    try:
        release = Version(str(text)).release
    except InvalidVersion:
        return None
    return f"{release[0]}.{release[1] if len(release) > 1 else 0}"


def _by_version(row: Mapping[str, dict], columns: Sequence[dict]) -> tuple[dict[str, list], set[str], list]:
    """({minor: [measurement]}, the minors a nightly measured, the nightly columns' measurements). A nightly counts
    as the release it precedes (its measurement's TensorFlow, e.g. 2.23.0.dev20261026: 2.23)."""
    by: dict[str, list] = defaultdict(list)
    nightly_minors, nightly = set(), []
    for c in columns:
        for m in row[c["key"]]["measurements"]:
            if c["spec"] == "nightly":
                nightly.append(m)
                minor = _release_minor(m.get("tensorflow") or c.get("tensorflow"))
                nightly_minors |= {minor} if minor else set()
            else:
                minor = _release_minor(c["spec"])
            if minor:
                by[minor].append(m)
    return by, nightly_minors, nightly


def _measured(row: Mapping[str, dict], columns: Sequence[dict]) -> tuple[dict, str]:
    """(the measured range across oneDNN modes (module docstring), the nightly's state)."""
    by, nightly_minors, nightly = _by_version(row, columns)
    order = sorted(by, key=version_key)
    versions = {}
    for v in order:
        holds = {_holds(m) for m in by[v]}
        versions[v] = (
            "diverges"
            if "diverges" in holds
            else "agrees"
            if "agrees" in holds
            else next((s for s in ("errors", "not applicable") if s in {m["state"] for m in by[v]}), "not run")
        )
    nightly_holds = {_holds(m) for m in nightly}
    nightly_state = (
        "diverges"
        if "diverges" in nightly_holds
        else "agrees"
        if "agrees" in nightly_holds
        else _neutral_state([{"measurements": nightly}])
    )
    bad = [v for v in order if versions[v] == "diverges"]
    details = dict.fromkeys(row[c["key"]]["detail"] for c in columns if row[c["key"]].get("detail"))
    base = {"versions": versions, "nightly": sorted(nightly_minors, key=version_key), "detail": None}
    if not bad:
        agreeing = [v for v in order if versions[v] == "agrees"]
        state = "agrees" if agreeing else _neutral_state([row[c["key"]] for c in columns])
        text = {
            "agrees": f"agrees in {', '.join(agreeing)}",
            "errors": "errors: no version measured",
            "not applicable": "not applicable here",
            "not run": "not run",
        }[state]
        return {
            "state": state,
            "text": text,
            "range": None,
            "onset": None,
            "fix": None,
            "last_good": None,
            "last_bad": None,
            "excluded": [],
            **base,
            "detail": ("; ".join(details) or None) if state != "agrees" else None,
        }, nightly_state
    first, last = bad[0], bad[-1]
    i, j = order.index(first), order.index(last)
    last_good = next((v for v in reversed(order[:i]) if versions[v] == "agrees"), None)
    fixed = next((v for v in order[j + 1 :] if versions[v] == "agrees"), None)
    excluded = [v for v in order[i:j] if versions[v] == "agrees"]
    # From a nightly on: its pre-releases too (">=2.23" would leave out 2.23.0.dev20261026).
    parts = [f">={first}" + (".0.dev0" if first in nightly_minors else "")]
    parts += [f"<{fixed}"] if fixed else []
    parts += [f"!={v}.*" for v in excluded]
    onset = first if last_good else f"<={first}"
    start = onset
    if last_good and _after(_minor_tuple(last_good)) != _minor_tuple(first):  # what lies between was not measured
        start += f" (last good {last_good})"
    text = (start if first == last else f"{start} to {last}") + (f" except {', '.join(excluded)}" if excluded else "")
    text += f", fixed in {fixed}" if fixed else ", open"
    return {
        "state": "diverges",
        "text": text,
        "range": ",".join(parts),
        "onset": onset,
        "fix": fixed if fixed else f">{last}",
        "last_good": last_good,
        "last_bad": last,
        "excluded": excluded,
        **base,
    }, nightly_state


def _derive(row: Mapping[str, dict], columns: Sequence[dict]) -> dict:
    """An entry's onsets, measured range and nightly state from its cells."""
    measured, nightly = _measured(row, columns)
    return {
        "onset": {m: _onset(row, [c for c in columns if mode_name(c["onednn"]) == m]) for m in MODES},
        "measured": measured,
        "nightly": nightly,
        "open_in_nightly": {"diverges": True, "agrees": False}.get(nightly),
    }


def _entry(meta: Mapping, row: Mapping[str, dict], columns: Sequence[dict]) -> dict:
    """An atlas entry: ``meta`` (id, kind, summary, declared, strict, onednn, backend), its cells (a "not run" cell
    for every column it has none in) and what they give."""
    full = {c["key"]: row.get(c["key"]) or summarize([]) for c in columns}
    return {
        **{k: meta.get(k) for k in ("id", "kind", "summary", "declared", "strict", "onednn", "backend")},
        "cells": full,
        **_derive(full, columns),
    }


# --- the atlas -------------------------------------------------------------------------------


def build(
    columns: Sequence[dict],
    runs: Mapping[str, results.Run],
    known: Sequence[dict],
    changes: Sequence[dict] = (),
    generated: str = "",
    machine: Mapping | None = None,
    registry: str | None = None,
) -> dict:
    """The atlas (module docstring) from the matrix's ``columns`` (one per combination: key, spec, onednn, state,
    error, seconds, tensorflow), the ``runs`` that completed (by column key), the ``known`` divergence rows
    (``results.divergence_rows``, with each entry's ``backend``) and the ``machine`` that ran the matrix (an
    environment record; default the first run's), which a column whose run failed is attributed to; ``registry``:
    the fingerprint of the registry run (default the first run's)."""
    first = next(iter(runs.values()), None)
    host = machine_of(machine if machine is not None else first.environment if first else {})
    machines = {host["label"]: host}
    cols = []
    for c in columns:
        run = runs.get(c["key"])
        where = machine_of(run.environment) if run is not None else host
        machines[where["label"]] = where
        onednn_version = c.get("onednn_version") or _onednn_version(run)
        cols.append(
            {
                **c,
                "onednn_version": onednn_version,
                "runs": [
                    {
                        "machine": where["label"],
                        "state": c["state"],
                        "tensorflow": c.get("tensorflow"),
                        "onednn_version": onednn_version,
                        "error": c.get("error"),
                        "seconds": c.get("seconds"),
                        "counts": c.get("counts"),
                        "outcomes": c.get("outcomes"),
                        "per_op": per_op(run) if run is not None else {},
                    }
                ],
            }
        )
    cols = _grid(cols)
    per_run = {key: cells(run, known) for key, run in runs.items()}
    entries = []
    for d in known:
        row = {}
        for col in cols:
            if not col["runs"]:
                continue  # not run
            failed = {
                "state": "errors",
                "diverges": 0,
                "agrees": 0,
                "other": 0,
                "shadowed": 0,
                "detail": col.get("error") or col.get("state"),
            }
            got = per_run[col["key"]][d["id"]] if col["key"] in per_run else failed
            row[col["key"]] = summarize(
                [{"machine": col["runs"][0]["machine"], "tensorflow": col.get("tensorflow"), **got}]
            )
        entries.append(_entry({**d, "declared": d.get("tensorflow_versions")}, row, cols))
    new_by_key: dict[str, dict] = {}
    for col in cols:
        run = runs.get(col["key"])
        if run is None:
            continue
        for group in new_disagreements(run):
            merged = new_by_key.setdefault(
                group["key"],
                {
                    **{k: group[k] for k in ("key", "op", "backend", "check", "behaviour")},
                    "when": group["when"],
                    "columns": {},
                    "by_machine": {},
                    "machines": [],
                    "repro": {},
                    "dtypes": set(),
                    "detail": group["detail"],
                },
            )
            merged["when"] = {k: v for k, v in merged["when"].items() if group["when"].get(k) == v}
            merged["columns"][col["key"]] = group["count"]
            merged["by_machine"][col["key"]] = {col["runs"][0]["machine"]: group["count"]}
            merged["machines"] = list(dict.fromkeys([*merged["machines"], col["runs"][0]["machine"]]))
            merged["dtypes"].update(group["dtypes"])
            merged["repro"][col["key"]] = {
                "id": group["smallest"],
                "dtype": group["smallest_dtype"],
                "ids": group["ids"],
                "command": repro_command(group["smallest"], col, group["backend"], group["check"]),
            }
    new = [{**g, "dtypes": sorted(g["dtypes"])} for g in new_by_key.values()]
    return {
        "schema": SCHEMA,
        "generated": generated,
        "registry": registry or (first.run.get("registry") if first else None),
        "machines": machines,
        "columns": cols,
        "divergences": entries,
        "new": new,
        "per_version": {key: per_op(run) for key, run in runs.items()},
        "changes": [{**ch, "machine": ch.get("machine") or host["label"]} for ch in changes],
    }


def _onednn_version(run: results.Run | None) -> str | None:
    return (run.environment.get("probe") or {}).get("onednn_version") if run is not None else None


def repro_command(item_id: str, column: Mapping, backend: str | None = None, check: str = "forward") -> str:
    """The ``harness repro`` line for a failing item of a matrix column (its group's ``backend`` and ``check``); the
    script shows TensorFlow's side of the case."""
    why = (
        f"  # TensorFlow's side; the disagreement is {backend}'s"
        if backend
        else "  # the forward case; the failure is in its gradients"
        if check == "gradients"
        else "  # the forward case; the failure is the reference's own (its self-check, no TensorFlow)"
        if check == "reference"
        else ""
    )
    return f"harness repro '{item_case_id(item_id)}' --tensorflow {column['spec']} --onednn {column['onednn']}" + why


# --- proposing a range -----------------------------------------------------------------------


def _minor_tuple(text: str) -> tuple[int, int]:
    release = Version(text.removesuffix(".*")).release
    return release[0], release[1] if len(release) > 1 else 0


def _after(minor: tuple[int, int]) -> tuple[int, int]:
    return minor[0], minor[1] + 1


def _minor_text(minor: tuple[int, int]) -> str:
    return f"{minor[0]}.{minor[1]}"


ANY_VERSION = '"" (any version)'  # the proposal of a range with neither bound nor exclusion


def propose(declared: str | None, measured: Mapping) -> str | None:
    """The ``tensorflow_versions`` to declare instead of ``declared`` given an entry's ``measured`` range, or None
    when the measurements do not contradict it (minor versions throughout).

    The lower bound is the declared one, moved up past the last version measured agreeing before the first one
    measured diverging, and down to that first one if it lies below; the upper bound likewise, down to the first
    version measured agreeing after the last divergence and up past that divergence. Versions measured agreeing
    between two divergences are excluded, and so stay the declared exclusions no measurement contradicts. A version
    that was not run moves nothing: an onset at the edge of what was run (``<=V``) keeps an older declared bound.
    """
    if measured.get("state") != "diverges":
        return None
    try:
        spec = SpecifierSet("" if declared in (None, "any") else declared)
    except InvalidSpecifier:
        return measured.get("range")
    verdicts = {_minor_tuple(v): s for v, s in measured["versions"].items()}
    mentioned = [*verdicts, *(_minor_tuple(s.version) for s in spec)]
    universe = sorted(
        {
            (major, n)
            for major in {m[0] for m in mentioned}
            for n in range(max(m[1] for m in mentioned if m[0] == major) + 2)
        }
    )
    inside = {m: spec.contains(Version(_minor_text(m)), prereleases=True) for m in universe}
    declared_in = [m for m in universe if inside[m]]
    bad = sorted(m for m, s in verdicts.items() if s == "diverges")
    agree = sorted(m for m, s in verdicts.items() if s == "agrees")
    first, last = bad[0], bad[-1]
    good_before = max((m for m in agree if m < first), default=None)
    good_after = min((m for m in agree if m > last), default=None)
    if declared_in:  # None: unbounded (the declared range holds at the universe's edge)
        low = None if inside[universe[0]] else declared_in[0]
        high = None if inside[universe[-1]] else _after(declared_in[-1])
    else:  # a range with no version in it: the measurements alone
        low, high = first, _after(last)
    if good_before is not None and (low is None or low <= good_before):
        low = _after(good_before)
    if low is not None and low > first:
        low = first
    if good_after is not None and (high is None or high > good_after):
        high = good_after
    if high is not None and high <= last:
        high = _after(last)
    excluded = {m for m in agree if first < m < last}
    if declared_in:
        excluded |= {
            m
            for m in universe
            if declared_in[0] < m < declared_in[-1] and not inside[m] and verdicts.get(m) != "diverges"
        }

    def proposed(m: tuple[int, int]) -> bool:
        return (low is None or m >= low) and (high is None or m < high) and m not in excluded

    if all(proposed(m) == inside[m] for m in universe):
        return None
    nightly = {_minor_tuple(v) for v in measured.get("nightly") or ()}
    parts = (
        [f">={_minor_text(low)}" + (".0.dev0" if low == first and low in nightly else "")] if low is not None else []
    )
    parts += [f"<{_minor_text(high)}"] if high is not None else []
    parts += [
        f"!={_minor_text(m)}.*" for m in sorted(excluded) if (low is None or m >= low) and (high is None or m < high)
    ]
    return ",".join(parts)


def suggestions(atlas: Mapping) -> list[str]:
    """What ``harness matrix --suggest`` prints: the versions run per oneDNN mode and the machines, then one line
    per entry: the declared range, what was measured, the nightly, and the range to declare instead (``propose``)
    when the measurements contradict the declared one."""
    atlas = upgrade(atlas)
    ran = {
        m: sorted(
            {c["spec"] for c in atlas["columns"] if c.get("state") == "ran" and mode_name(c["onednn"]) == m},
            key=version_key,
        )
        for m in MODES
    }
    lines = [
        "versions run: " + "; ".join(f"oneDNN {m}: {', '.join(ran[m]) or 'not run'}" for m in MODES),
        f"machines: {'; '.join(atlas['machines']) or 'none'}",
    ]
    width = max((len(d["id"]) for d in atlas["divergences"]), default=10)
    for d in atlas["divergences"]:
        nightly = {"diverges": "open in nightly", "agrees": "fixed in nightly"}.get(
            d["nightly"], f"nightly: {state_text(d['nightly'])}"
        )
        proposal = propose(d["declared"], d["measured"])
        mark = "" if proposal is None else f"  <- update: {proposal or ANY_VERSION}"
        lines.append(
            f"{d['id']:<{width}}  declared {d['declared']!s:<16} measured {d['measured']['text']:<26} {nightly}{mark}"
        )
    return lines


# --- reading and merging atlases -------------------------------------------------------------


def upgrade(atlas: Mapping, source: str = "the atlas") -> dict:
    """A schema-2 atlas as it is; a schema-1 atlas (one machine, cells without measurements) as schema 2, its
    machine having measured every cell; ``AtlasError`` for anything else (``source`` names it)."""
    if not isinstance(atlas, Mapping) or not isinstance(atlas.get("divergences"), list):
        raise AtlasError(f"{source}: not a divergence atlas (no 'divergences' list)")
    if atlas.get("schema") == SCHEMA:
        return dict(atlas)
    if atlas.get("schema") != 1:
        raise AtlasError(f"{source}: atlas schema {atlas.get('schema')!r}: expected 1 or {SCHEMA}")
    host = machine_of(atlas.get("machine") or {})
    cols = _grid(
        [
            {
                **c,
                "runs": [
                    {
                        "machine": host["label"],
                        **{
                            k: c.get(k)
                            for k in ("state", "tensorflow", "onednn_version", "error", "seconds", "counts", "outcomes")
                        },
                        "per_op": (atlas.get("per_version") or {}).get(c["key"], {}),
                    }
                ],
            }
            for c in atlas["columns"]
        ]
    )
    entries = []
    for d in atlas["divergences"]:
        row = {
            key: summarize(
                [
                    {
                        "machine": host["label"],
                        "tensorflow": col.get("tensorflow"),
                        "state": cell["state"],
                        "detail": cell.get("detail"),
                        **{k: cell.get(k) or 0 for k in ("diverges", "agrees", "other", "shadowed")},
                    }
                ]
            )
            for col in cols
            if (key := col["key"]) in d["cells"] and (cell := d["cells"][key])
        }
        entries.append(_entry(d, row, cols))
    return {
        **{k: v for k, v in atlas.items() if k != "machine"},
        "schema": SCHEMA,
        "machines": {host["label"]: host},
        "columns": cols,
        "divergences": entries,
        "new": [
            {**g, "machines": [host["label"]], "by_machine": {k: {host["label"]: n} for k, n in g["columns"].items()}}
            for g in atlas.get("new", [])
        ],
        "changes": [{**ch, "machine": host["label"]} for ch in atlas.get("changes", [])],
    }


def _tf_order(item: Mapping) -> Version:
    try:
        return Version(str(item.get("tensorflow")))
    except InvalidVersion:
        return Version("0")


def _latest(items: Sequence[Mapping]) -> list[dict]:
    """One item per machine (runs or measurements, oldest source first): of the newest TensorFlow that answered,
    and for the same version, the later one."""
    best: dict[str, Mapping] = {}
    for item in items:
        if item["machine"] not in best or _tf_order(item) >= _tf_order(best[item["machine"]]):
            best[item["machine"]] = item
    return [dict(v) for v in best.values()]


def _merged_column(key: str, spec: str, onednn: str, runs: Sequence[Mapping]) -> dict:
    """A column measured by ``runs`` (one per machine)."""
    ran = [r for r in runs if r.get("state") == "ran"]

    def joined(field: str) -> str | None:
        return ", ".join(dict.fromkeys(str(r[field]) for r in runs if r.get(field))) or None

    def summed(field: str) -> dict:
        total: Counter = Counter()
        for r in runs:
            total.update(r.get(field) or {})
        return dict(total)

    return {
        "key": key,
        "spec": spec,
        "onednn": onednn,
        "state": "ran" if ran else next((r["state"] for r in runs if r.get("state")), "not run"),
        "tensorflow": joined("tensorflow"),
        "onednn_version": joined("onednn_version"),
        "error": "; ".join(f"{r['machine']}: {r['error']}" for r in runs if r.get("error")) or None,
        "seconds": round(sum(r.get("seconds") or 0 for r in runs), 1),
        "counts": summed("counts"),
        "outcomes": summed("outcomes"),
        "runs": list(runs),
    }


def merge(
    sources: Sequence[tuple[str, Mapping]], allow_different_registries: bool = False, generated: str = ""
) -> dict:
    """One atlas of several (``[(directory, atlas)]``, oldest first): see the module docstring."""
    if not sources:
        raise AtlasError("nothing to merge")
    atlases = [(name, upgrade(a, name)) for name, a in sources]
    warnings = [w for _, a in atlases for w in a.get("warnings") or ()]
    registries = {name: a.get("registry") for name, a in atlases if a.get("registry")}
    unknown = [name for name, a in atlases if not a.get("registry")]
    if unknown:
        warnings.append(f"no registry fingerprint in {', '.join(unknown)}: not checked that it ran the same cases/")
    prints = list(dict.fromkeys(registries.values()))
    if len(prints) > 1:
        groups = "; ".join(f"{p} in {', '.join(n for n, q in registries.items() if q == p)}" for p in prints)
        message = f"the atlases are of different registries (cases/ fingerprints): {groups}"
        if not allow_different_registries:
            raise AtlasError(f"{message}; merge atlases of the same cases/, or pass --allow-different-registries")
        warnings.append(message)
    # Columns: one per version spec and oneDNN mode, keyed as the atlases had them unless two columns share a key.
    slots: dict[tuple[str, str], dict] = {}
    for n, (name, a) in enumerate(atlases):
        for c in a["columns"]:
            slot = slots.setdefault(
                (c["spec"], mode_name(c["onednn"])), {"keys": {}, "runs": [], "onednn": c["onednn"]}
            )
            slot["keys"][n] = c["key"]
            slot["runs"] += [{**r, "source": name, "atlas": n} for r in c.get("runs") or []]
    taken = Counter(next(iter(s["keys"].values())) for s in slots.values())
    keys = {}  # (atlas index, its column key) -> the merged column's key
    columns = []
    for (spec, _), slot in slots.items():
        key = next(iter(slot["keys"].values()))
        key = key if taken[key] == 1 else column_key(spec, slot["onednn"])
        keys.update({(n, k): key for n, k in slot["keys"].items()})
        columns.append(_merged_column(key, spec, slot["onednn"], _latest(slot["runs"])))
    kept = {(r.pop("atlas"), c["key"], r["machine"]) for c in columns for r in c["runs"]}  # whose runs count
    cols = _grid(columns)
    # Entries: the latest atlas's description, the measurements of every atlas.
    meta: dict[str, Mapping] = {}
    measured: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for n, (_, a) in enumerate(atlases):
        for d in a["divergences"]:
            meta[d["id"]] = d
            for key, cell in d["cells"].items():
                if (n, key) in keys:
                    measured[d["id"]][keys[n, key]] += cell.get("measurements") or []
    order = dict.fromkeys(d["id"] for _, a in atlases for d in a["divergences"])
    entries = [_entry(meta[i], {k: summarize(_latest(ms)) for k, ms in measured[i].items()}, cols) for i in order]
    return {
        "schema": SCHEMA,
        "generated": generated,
        "registry": prints[0] if len(prints) == 1 and not unknown else None,
        "machines": {k: v for _, a in atlases for k, v in a["machines"].items()},
        "sources": [
            {
                "directory": name,
                "generated": a.get("generated"),
                "registry": a.get("registry"),
                "machines": list(a["machines"]),
            }
            for name, a in atlases
        ],
        "warnings": warnings,
        "columns": cols,
        "divergences": entries,
        "new": _merge_new(atlases, keys, kept),
        "per_version": _per_version(cols),
        "changes": list(
            {
                (ch["from"], ch["to"], ch["onednn"], ch.get("machine")): ch
                for _, a in atlases
                for ch in a.get("changes", [])
            }.values()
        ),
    }


def _merge_new(atlases, keys, kept) -> list[dict]:
    """The new-disagreement groups of several atlases: per column, each machine's count from the atlas whose run of
    the column on that machine counts (``kept``), and their sum; the first repro per column (its script's path
    joined to its atlas's directory)."""
    groups: dict[str, dict] = {}
    for n, (name, a) in enumerate(atlases):
        for g in a.get("new", []):
            merged = groups.setdefault(g["key"], {**g, "columns": {}, "by_machine": {}, "repro": {}, "dtypes": []})
            merged["when"] = {k: v for k, v in merged["when"].items() if g["when"].get(k) == v}
            merged["dtypes"] = sorted({*merged["dtypes"], *g.get("dtypes", [])})
            for key, counts in g.get("by_machine", {}).items():
                to = keys.get((n, key))
                for machine, count in counts.items():
                    if (n, to, machine) in kept:
                        merged["by_machine"].setdefault(to, {})[machine] = count
            for key, rep in g.get("repro", {}).items():
                to = keys.get((n, key))
                if to in merged["by_machine"] and to not in merged["repro"]:
                    script = rep.get("script")
                    joined = os.path.join(name, script) if script and "sources" not in a else script
                    merged["repro"][to] = {**rep, "script": joined}
    for g in groups.values():
        g["columns"] = {key: sum(counts.values()) for key, counts in g["by_machine"].items()}
        g["machines"] = list(dict.fromkeys(m for counts in g["by_machine"].values() for m in counts))
    return [g for g in groups.values() if g["columns"]]


def _per_version(columns: Sequence[Mapping]) -> dict:
    """Per column and op, the outcome counts of its runs summed (a column run on two machines counts twice)."""
    out = {}
    for c in columns:
        total: dict[str, Counter] = defaultdict(Counter)
        for r in c["runs"]:
            for op, counts in (r.get("per_op") or {}).items():
                total[op].update(counts)
        if total:
            out[c["key"]] = {op: dict(n) for op, n in sorted(total.items())}
    return out


# --- HTML ------------------------------------------------------------------------------------

_COLOURS = {
    "diverges": "#e8a33d",
    "agrees": "#7fbf7f",
    "errors": "#d9534f",
    "not applicable": "#e6e6e6",
    "not run": "#ffffff",
}
_LABELS = {"diverges": "✗", "agrees": "✓", "errors": "!", "not applicable": "·", "not run": "–"}


def _cell(c: Mapping) -> str:
    n = {"diverges": c.get("diverges"), "agrees": c.get("agrees"), "errors": c.get("other")}.get(c["state"])
    lines = [c["text"]] + [
        f"{m['machine']}"
        + (f", TensorFlow {m['tensorflow']}" if m.get("tensorflow") else "")
        + f": {state_text(m['state'])}; {m.get('diverges', 0)} diverging, {m.get('agrees', 0)} agreeing, "
        f"{m.get('other', 0)} other" + (f"; {m['detail']}" if m.get("detail") else "")
        for m in c["measurements"]
    ]
    mixed = len({m["state"] for m in c["measurements"]}) > 1
    machines = "; ".join(m["machine"] for m in c["measurements"])
    return (
        f'<td class="cell" data-state="{c["state"]}" data-machines="{html.escape(machines)}" '
        f'style="background:{_COLOURS[c["state"]]}" title="{html.escape(chr(10).join(lines))}">'
        f"{_LABELS[c['state']]}{'*' if mixed else ''}{f'<small>{n}</small>' if n else ''}</td>"
    )


def _header(columns: Sequence[dict]) -> tuple[str, str]:
    modes = Counter(mode_name(c["onednn"]) for c in columns)
    top = "".join(f'<th colspan="{n}">oneDNN {m}</th>' for m, n in modes.items())
    low = "".join(
        f'<th title="{html.escape(str(c.get("tensorflow") or c.get("error") or c["state"]))}">'
        f"{html.escape(c['spec'])}</th>"
        for c in columns
    )
    return top, low


def onset_text(onset: Mapping) -> str:
    """One oneDNN mode's onset as the atlas prints it: "first bad <=2.15, not fixed by 2.21", "first bad 2.16 (last
    good 2.15), fixed in 2.19", "agrees: never diverged", "not applicable here", "not run"."""
    if onset["state"] != "diverges":
        return "agrees: never diverged" if onset["state"] == "agrees" else state_text(onset["state"])
    text = f"first bad {onset['onset']}" + (f" (last good {onset['last_good']})" if onset["last_good"] else "")
    return text + (f", fixed in {onset['fixed_in']}" if onset["fixed_in"] else f", not fixed by {onset['last_bad']}")


def _runs_item(c: Mapping) -> str:
    esc = html.escape
    runs = c.get("runs") or []
    if not runs:
        return f"<li>{esc(c['key'])}: not run</li>"
    parts = [
        f"{esc(r['machine'])}: {esc(str(r.get('state')))}"
        + (f" — TensorFlow {esc(str(r['tensorflow']))}" if r.get("tensorflow") else "")
        + (f", oneDNN {esc(str(r['onednn_version']))}" if r.get("onednn_version") else "")
        + (f" — {esc(str(r['error']))}" if r.get("error") else "")
        + (f" ({r['seconds']:.0f} s)" if r.get("seconds") else "")
        for r in runs
    ]
    return f"<li>{esc(c['key'])}: " + "; ".join(parts) + "</li>"


def render(atlas: Mapping) -> str:
    """``atlas.html``: one self-contained page (no scripts or styles from elsewhere)."""
    atlas = upgrade(atlas)
    esc = html.escape
    columns = atlas["columns"]
    top, low = _header(columns)
    modes_run = {mode_name(c["onednn"]) for c in columns}
    rows = []
    for d in atlas["divergences"]:
        onset = "; ".join(f"{m}: {onset_text(o)}" for m, o in d["onset"].items())
        m = d["measured"]
        rows.append(
            f'<tr id="{esc(d["id"])}"><th class="id" title="{esc(d["summary"] or "")}">{esc(d["id"])}</th>'
            + "".join(_cell(d["cells"][c["key"]]) for c in columns)
            + f"<td>{esc(d['declared'] or '')}</td>"
            f'<td class="measured" data-state="{esc(m["state"])}" title="{esc(m.get("range") or m.get("detail") or "")}">'
            f"{esc(m['text'])}</td><td>{esc(onset)}</td></tr>"
        )
    states = "".join(f'<span class="key" style="background:{_COLOURS[s]}">{_LABELS[s]} {esc(s)}</span>' for s in STATES)
    new_rows = []
    for g in atlas["new"]:
        counts = "".join(f'<td class="num">{g["columns"].get(c["key"], "")}</td>' for c in columns)
        first = next((c for c in columns if c["key"] in g["repro"]), None)
        rep = g["repro"][first["key"]] if first else {}
        when = ", ".join(f"{k}: {v}" for k, v in g["when"].items() if v not in (None, False) and k != "op")
        where = f" @{g['backend']}" if g.get("backend") else ""
        new_rows.append(
            f'<tr><th class="id">{esc(g["op"] + where)} {esc(g["check"])}<br><small>{esc(g["behaviour"])}'
            f"</small></th>{counts}<td><code>{esc(rep.get('command', ''))}</code><br><small>"
            f"{esc(when)}; seen on {esc('; '.join(g.get('machines') or []))}</small></td></tr>"
        )
    ops = sorted({op for v in atlas["per_version"].values() for op in v})
    count_rows = []
    for op in ops:
        cells_ = []
        for c in columns:
            got = atlas["per_version"].get(c["key"], {}).get(op)
            cells_.append(
                f'<td class="num">{got.get("passed", 0)}/{got.get("xfailed", 0)}/{got.get("not holding", 0)}'
                f"/<b>{got.get('failed', 0)}</b></td>"
                if got
                else "<td></td>"
            )
        count_rows.append(f'<tr><th class="id">{esc(op)}</th>{"".join(cells_)}</tr>')
    change_items = []
    for ch in atlas["changes"]:
        change_items.append(
            f"<li><b>{esc(ch['from'])} → {esc(ch['to'])}</b> (oneDNN {esc(ch['onednn'])}, "
            f"{esc(str(ch.get('machine')))}): "
            f"{len(ch['new_failures'])} new failures, {len(ch['fixes'])} fixes, "
            f"{len(ch.get('changed', []))} changed behaviour, {len(ch['error_growth'])} with error growth"
            + "".join(f"<br><small>new failure: {esc(i)}</small>" for i in ch["new_failures"][:5])
            + "</li>"
        )
    machines = "; ".join(atlas["machines"]) or "no machine"
    not_run = [m for m in MODES if m not in modes_run]
    sources = "".join(
        f"<li>{esc(s['directory'])}: {esc('; '.join(s['machines']))}, registry {esc(str(s['registry']))}, "
        f"generated {esc(str(s['generated']))}</li>"
        for s in atlas.get("sources") or []
    )
    warnings = "".join(f"<li>{esc(w)}</li>" for w in atlas.get("warnings") or [])
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
.key {{ padding: 2px 8px; margin-right: 6px; border: 1px solid #ccc; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>Divergence atlas</h1>
<p>Every known divergence (<code>cases/known_divergences.yaml</code>) tried on every TensorFlow version and oneDNN
mode of the matrix, measured on {esc(machines)}; registry {esc(str(atlas.get("registry")))}, generated
{esc(atlas.get("generated") or "")}.{esc(" oneDNN " + " and ".join(not_run) + ": not run.") if not_run else ""}</p>
<p>{states}</p>
<p>A cell says what was measured there: <b>not run</b> (nothing ran that version and mode, or the run did not check
the entry's backend) and <b>not applicable</b> (the entry's oneDNN, CPU or kernel conditions do not hold on the
machine that ran it) are no evidence either way. A cell marked * was measured differently on different machines;
its tooltip names each. An onset <code>&lt;=V</code> is at the edge of what was run: V diverged and no earlier
version was measured agreeing.</p>
{f"<ul class='warnings'>{warnings}</ul>" if warnings else ""}
<h2 id="divergences">Known divergences</h2>
<table id="atlas"><thead><tr><th rowspan="2">entry</th>{top}<th rowspan="2">declared</th>
<th rowspan="2">measured</th><th rowspan="2">onset and fix</th></tr><tr>{low}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2 id="new">New disagreements ({len(atlas["new"])} groups)</h2>
<p>Failures no entry explains, grouped by op, check, behaviour and kernel; counts per run, and the smallest case's
repro command.</p>
<table id="new-table"><thead><tr><th rowspan="2">group</th>{top}<th rowspan="2">repro</th></tr><tr>{low}</tr></thead>
<tbody>{"".join(new_rows) or '<tr><td colspan="99">none</td></tr>'}</tbody></table>
<h2 id="counts">Per version: passed/xfailed/not holding/<b>failed</b> per op</h2>
<p>Every entry is applied in every run, so in a version where an entry does not hold TensorFlow agrees on its
cases: they are <i>not holding</i> (its "agrees" cells above), not failures. <b>Failed</b> is what no entry
explains: the new disagreements, and cases where TensorFlow did something else than an applicable entry says.</p>
<table id="counts-table"><thead><tr><th rowspan="2">op</th>{top}</tr><tr>{low}</tr></thead>
<tbody>{"".join(count_rows)}</tbody></table>
<h2 id="changes">Between consecutive versions</h2>
<ul>{"".join(change_items) or "<li>no consecutive runs</li>"}</ul>
<h2 id="runs">Runs</h2><ul>{"".join(_runs_item(c) for c in columns)}</ul>
{f'<h2 id="sources">Merged from</h2><ul>{sources}</ul>' if sources else ""}
</body></html>
"""


def dumps(atlas: Mapping) -> str:
    return json.dumps(atlas, indent=1, sort_keys=False, default=list) + "\n"
