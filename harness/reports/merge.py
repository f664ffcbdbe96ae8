"""Several runs' results as one run: ``harness report --merge DIR [DIR ...]``.

For the shares of ``make verify SHARD=I/N`` (each CI job wrote its own reports directory), and for runs of the same
registry on several machines. ``merge(sources)`` is pure: ``[(directory, results.Run)]`` in, one ``results.Run``
out, which the reports render like any run.

* **Registry.** Every run must have run the same ``cases/`` (``run.registry``, a fingerprint); otherwise
  ``MergeError`` names the directories and their fingerprints, unless ``allow_different_registries`` (then a
  warning). A results file without a fingerprint (older) is unknown: a warning says it could not be checked.
* **Records.** All records are kept, in the order of the sources, each with a ``source``: its run's directory.
  A record is identified by ``results.record_key``. Shares are disjoint, so for them the records are the
  concatenation. An item recorded by more than one run (runs from several machines, overlapping shares) is kept
  once per run: ``run.merge.overlap`` lists each such item with its sources and their statuses.
* **Counts** are over records, as for any run: an item recorded by k runs counts k times, once per verdict (the
  counts are the sum of the runs' counts), so a failure on one machine is never hidden by a pass on another. For
  disjoint shares they are exactly the counts of one whole run.
* **Environment.** When every run has the same environment record, ignoring what measuring took (``probe.seconds``,
  ``probe.source``) and the memory budget (each share derives its own), the merged run has the first's. Otherwise ``environment`` holds only the facts they share and
  ``environments`` one ``{source, environment}`` per run; the reports say the runs came from several
  machines or environments.
* **Stale divergences.** ``results.stale_per_entry`` runs on the union when the union is known to be the whole
  registry: the runs are complete, have one registry, divergence mode and sweep mode, none ran a selection, and one
  ran unsharded or every share I/N of some N is there. Its result is ``run.stale_divergences``, as a normal run
  writes it (a stale entry also makes ``exitstatus`` at least 1, as in the plugin); ``run.merge.stale_check`` says
  whether it ran, and why not.

The merged ``run``::

    {merged_from: [directory, ...],
     started: the earliest, finished: the latest (of those recorded),
     seconds: the sum of the runs' seconds (machine time: what one machine would have taken),
     wall_seconds: finished - started (null when the timestamps cannot be read),
     exitstatus: the worst (ranked 0 < 5 < 1 < 2 < 3 < 4), interrupted: any, complete: all,
     registry: the shared fingerprint (null when unknown or different), shard: null when the union is unsharded
     (all N shares, or a run of the whole) else the shares there ("1/4,3/4"), selection: the shared one ({}: none)
     else {"sources": {directory: selection}}, divergence_versions, sweeps, rootdir, argv: the shared value else
     null (``harness report --merge`` writes its own command line as argv), stale_divergences,
     merge: {sources: [{directory, records, items, counts, registry, shard, selection, divergence_versions,
                        started, finished, seconds, exitstatus, complete}],
             overlap: [{id, backend, sources, statuses}], items: distinct records, covers_registry: bool,
             stale_check: "ran" or why it did not, warnings: [text]}}
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from harness.reports import results

EXIT_RANK = (0, 5, 1, 2, 3, 4)  # pytest exit statuses, best first: ok, no tests, failed, interrupted, internal, usage
# environment fields that record how a fact was measured, not the fact (and the memory budget: a share of the memory
# free when each run started, which differs between the shares of one machine's run)
TIMING = {"probe": ("seconds", "source"), "memory_budget": ("bytes", "source", "available", "lanes")}


class MergeError(ValueError):
    """Runs that cannot be merged (the message names them)."""


def merge(sources: Sequence[tuple[str, results.Run]], allow_different_registries: bool = False) -> results.Run:
    """One run from ``sources`` ([(directory, run)], in order); see the module docstring."""
    if not sources:
        raise MergeError("nothing to merge")
    dirs = [d for d, _ in sources]
    warnings: list[str] = []
    registry = _registry(sources, allow_different_registries, warnings)
    environment, environments = merge_environments(sources)
    records, overlap = _records(sources)
    divergences = _divergences([run for _, run in sources])
    versions = _shared(sources, "divergence_versions", warnings, "divergence modes (--any-tensorflow-version)")
    sweeps = _shared(sources, "sweeps", warnings, "sweep modes (pairwise or full)")
    if environments is not None:
        warnings.append(f"the runs came from {len(environments)} different machines or environments")
    covers, why_not = covers_registry(sources)
    if covers and registry is None:
        covers, why_not = False, "the runs' registries are not known to be the same"
    if covers and any(run.run.get("divergence_versions") != versions for _, run in sources):
        covers, why_not = False, "the runs applied the known divergences differently (--any-tensorflow-version)"
    if covers and any(run.run.get("sweeps") != sweeps for _, run in sources):
        covers, why_not = False, "the runs expanded the sweeps differently"
    if covers:
        stale = results.stale_per_entry(records, [d["id"] for d in divergences if d.get("strict") == "per_entry"])
        stale_check = "ran"
    else:
        stale, stale_check = [], f"not run: {why_not}"
    run = {
        "merged_from": dirs,
        **_times(sources),
        "exitstatus": _worst([run.run.get("exitstatus") for _, run in sources], bool(stale)),
        "interrupted": any(run.run.get("interrupted") for _, run in sources),
        "complete": all(run.run.get("complete", True) for _, run in sources),
        "registry": registry,
        "shard": _shard(sources),
        "selection": _selection(sources),
        "divergence_versions": versions,
        "sweeps": sweeps,
        "rootdir": _same([run.run.get("rootdir") for _, run in sources]),
        "argv": _same([run.run.get("argv") for _, run in sources]),
        "stale_divergences": stale,
        "merge": {
            "sources": [_source_row(d, run) for d, run in sources],
            "overlap": overlap,
            "items": len({results.record_key(r) for r in records}),
            "covers_registry": covers,
            "stale_check": stale_check,
            "warnings": warnings,
        },
    }
    return results.Run(environment, run, divergences, records, environments)


# --- the pieces -------------------------------------------------------------------------------


def _registry(sources, allow: bool, warnings: list[str]) -> str | None:
    """The runs' shared registry fingerprint, or None (unknown or different: warned, or MergeError)."""
    known = {d: run.run.get("registry") for d, run in sources if run.run.get("registry")}
    unknown = [d for d, run in sources if not run.run.get("registry")]
    if unknown:
        warnings.append(
            f"no registry fingerprint in {', '.join(unknown)} (an older results file): not checked "
            f"that it ran the same cases/"
        )
    prints = list(dict.fromkeys(known.values()))
    if len(prints) <= 1:
        return prints[0] if prints and not unknown else None
    groups = "; ".join(f"{p} in {', '.join(d for d, q in known.items() if q == p)}" for p in prints)
    message = f"the runs used different registries (cases/ fingerprints): {groups}"
    if not allow:
        raise MergeError(f"{message}; merge runs of the same cases/, or pass --allow-different-registries")
    warnings.append(message)
    return None


def comparable(env: dict) -> dict:
    """An environment record without the fields that say how a fact was measured (``TIMING``)."""
    out = dict(env)
    for key, fields in TIMING.items():
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k not in fields}
    return out


def merge_environments(sources) -> tuple[dict, list | None]:
    """(environment, environments): the shared record and None when every run's is the same (``comparable``);
    else the facts all runs share, and [{source, environment}] per run."""
    envs = [run.environment or {} for _, run in sources]
    flat = [comparable(e) for e in envs]
    if all(f == flat[0] for f in flat):
        return envs[0], None
    shared = {k: envs[0][k] for k in envs[0] if all(k in f and f[k] == flat[0][k] for f in flat)}
    return shared, [{"source": d, "environment": e} for (d, _), e in zip(sources, envs)]


def _records(sources) -> tuple[list[dict], list[dict]]:
    """Every record with its ``source``, and the items recorded by more than one run."""
    records: list[dict] = []
    where: dict[tuple, list[tuple]] = {}
    for d, run in sources:
        for rec in run.records:
            records.append({**rec, "source": d})
            where.setdefault(results.record_key(rec), []).append((d, rec.get("status")))
    overlap = [
        {"id": key[0], "backend": key[1], "sources": [d for d, _ in seen], "statuses": [s for _, s in seen]}
        for key, seen in where.items()
        if len(seen) > 1
    ]
    return records, overlap


def _divergences(runs) -> list[dict]:
    """The known-divergence rows, by id in first-seen order; ``not_here`` only when no run could apply the entry."""
    rows: dict[str, dict] = {}
    reasons: dict[str, list] = {}
    for run in runs:
        for row in run.divergences:
            did = row.get("id")
            rows.setdefault(did, dict(row))
            reasons.setdefault(did, []).append(row.get("not_here"))
    for did, why in reasons.items():
        if len(why) > 1:
            rows[did]["not_here"] = None if not all(why) else "; ".join(dict.fromkeys(why))
    return list(rows.values())


def _shared(sources, key: str, warnings: list[str], what: str):
    """The runs' shared ``run[key]`` (None when unknown or different; a difference is warned about)."""
    values = {d: run.run.get(key) for d, run in sources}
    distinct = set(v for v in values.values() if v is not None)
    if len(distinct) > 1:
        warnings.append(f"the runs used different {what}: " + ", ".join(f"{d}: {v}" for d, v in values.items()))
        return None
    return distinct.pop() if distinct and None not in values.values() else None


def _same(values: list):
    return values[0] if values and all(v == values[0] for v in values) else None


def parse_shard(text) -> tuple[int, int] | None:
    try:
        index, total = (int(v) for v in str(text).split("/"))
    except ValueError:
        return None
    return (index, total) if 1 <= index <= total else None


def shares_complete(sources) -> tuple[bool, list[str]]:
    """Whether the runs hold every item of what they selected at least once (one ran unsharded, or every share I/N
    of some N is there), and the shares missing otherwise. A run that recorded no shard (an older file) counts as
    unsharded here; ``covers_registry`` does not trust it."""
    if any(run.run.get("shard") is None for _, run in sources):
        return True, []
    shares: dict[int, set] = {}
    for _, run in sources:
        parsed = parse_shard(run.run["shard"])
        if parsed:
            shares.setdefault(parsed[1], set()).add(parsed[0])
    if any(found == set(range(1, n + 1)) for n, found in shares.items()):
        return True, []
    return False, [f"{i}/{n}" for n, found in sorted(shares.items()) for i in range(1, n + 1) if i not in found]


def covers_registry(sources) -> tuple[bool, str]:
    """Whether the runs together are known to have run the whole registry (at least once), and if not, why."""
    unknown = [d for d, run in sources if "shard" not in run.run or "selection" not in run.run]
    if unknown:
        return False, f"{', '.join(unknown)} recorded no shard or selection (an older results file)"
    unfinished = [d for d, run in sources if not run.run.get("complete", True) or run.run.get("interrupted")]
    if unfinished:
        return False, f"{', '.join(unfinished)} did not finish"
    selected = [d for d, run in sources if run.run.get("selection")]
    if selected:
        return False, f"{', '.join(selected)} ran a selection of the registry"
    complete, missing = shares_complete(sources)
    return (True, "") if complete else (False, f"shares {', '.join(missing)} are missing")


def _shard(sources) -> str | None:
    """None when the runs hold every share (or a run of the whole); else the shares there, e.g. "1/4,3/4"."""
    if shares_complete(sources)[0]:
        return None
    shares = sorted(
        {p for p in (parse_shard(run.run.get("shard")) for _, run in sources) if p}, key=lambda p: (p[1], p[0])
    )
    return ",".join(f"{i}/{n}" for i, n in shares) or None


def _selection(sources) -> dict:
    values = [run.run.get("selection") or {} for _, run in sources]
    if all(v == values[0] for v in values):
        return values[0]
    return {"sources": {d: v for (d, _), v in zip(sources, values)}}


def _time(text):
    try:
        return datetime.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def _times(sources) -> dict:
    started = [(t, s) for s in (run.run.get("started") for _, run in sources) if (t := _time(s))]
    finished = [(t, s) for s in (run.run.get("finished") for _, run in sources) if (t := _time(s))]
    seconds = [run.run.get("seconds") for _, run in sources]
    first, last = min(started, default=None), max(finished, default=None)
    return {
        "started": first[1] if first else None,
        "finished": last[1] if last else None,
        "seconds": round(sum(s for s in seconds if s is not None), 3) if any(s is not None for s in seconds) else None,
        "wall_seconds": round((last[0] - first[0]).total_seconds(), 3) if first and last else None,
    }


def _worst(statuses: list, stale: bool):
    known = [s for s in statuses if s in EXIT_RANK]
    worst = max(known, key=EXIT_RANK.index, default=None)
    if stale and (worst is None or EXIT_RANK.index(worst) < EXIT_RANK.index(1)):
        return 1  # as the plugin does: a stale entry fails the run
    return worst


def _source_row(directory: str, run: results.Run) -> dict:
    r = run.run
    return {
        "directory": directory,
        "records": len(run.records),
        "items": len({results.record_key(rec) for rec in run.records}),
        "counts": run.counts(),
        **{
            k: r.get(k)
            for k in (
                "registry",
                "shard",
                "selection",
                "divergence_versions",
                "started",
                "finished",
                "seconds",
                "exitstatus",
                "complete",
            )
        },
    }


# --- text -------------------------------------------------------------------------------------


def counts_text(counts: dict) -> str:
    """passed/xfailed/failed/skipped (and any malformed or error) of ``results.Run.counts``."""
    shown = [f"{counts.get(s, 0)} {s}" for s in ("passed", "xfailed", "failed", "skipped")]
    shown += [f"{n} {s}" for s, n in counts.items() if s not in ("passed", "xfailed", "failed", "skipped") and n]
    return ", ".join(shown)


def summary_lines(merged: results.Run, limit: int = 10) -> list[str]:
    """What ``harness report --merge`` prints: the sources, the merged counts, the overlap, stale divergences."""
    info = merged.run["merge"]
    width = max(len(s["directory"]) for s in info["sources"])
    lines = [f"merged {len(info['sources'])} runs:"]
    for s in info["sources"]:
        what = f"shard {s['shard']}" if s.get("shard") else "unknown shard" if "shard" not in s else "whole"
        if s.get("selection"):
            what += ", a selection"
        registry = s.get("registry") or "unknown"
        lines.append(
            f"  {s['directory']:<{width}}  {what}, registry {registry}: {s['records']} records: "
            f"{counts_text(s['counts'])}"
        )
    lines.append(
        f"merged: {len(merged.records)} records ({info['items']} distinct items): {counts_text(merged.counts())}"
    )
    overlap = info["overlap"]
    if overlap:
        disagree = [o for o in overlap if len(set(o["statuses"])) > 1]
        lines.append(
            f"overlap: {len(overlap)} item{'s' * (len(overlap) != 1)} recorded by more than one run (kept "
            f"from each, each counted), {len(disagree)} with different statuses"
        )
        for o in (disagree or overlap)[:limit]:
            lines.append(f"  {o['id']}: " + ", ".join(f"{d} {s}" for d, s in zip(o["sources"], o["statuses"])))
        if len(disagree or overlap) > limit:
            lines.append(f"  ... and {len(disagree or overlap) - limit} more")
    else:
        lines.append("overlap: none (every item from one run)")
    stale = merged.run.get("stale_divergences") or []
    if info["stale_check"] != "ran":
        lines.append(f"stale known divergences: {info['stale_check']}")
    else:
        lines.append(f"stale known divergences (checked on the union): {', '.join(stale) or 'none'}")
    lines += [f"warning: {w}" for w in info["warnings"]]
    return lines
