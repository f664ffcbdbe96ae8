"""Mutation testing of the NumPy reference package with mutmut, the registry (``cases/``) as the killing suite.

``make mutation`` (``python -m harness.selftest.mutmut_run``) asks mutmut for every mutant of ``TARGETS`` (the
reference, padding, layouts and dtypes modules: mutmut's operators, each mutant one small change inside one
function, switched on at run time by mutmut's trampolines) and runs the registry against each:

1. mutmut writes the mutated modules into a copy of the ``harness`` package under ``OUT/tree``; a worker process
   imports that copy;
2. the *baseline*: every registry item (every case at every dtype, and every gradient item) runs once unmutated.
   It records TensorFlow's answers (``HARNESS_TF_RECORD``: a mutant changes the reference, never TensorFlow) and,
   under coverage.py with one context per item, which reference lines each item runs. An item that fails here
   cannot kill anything and is left out (listed in the report);
3. each mutant runs in a forked child, ``--jobs`` at a time, over the items that run the statement it changes only
   (per-line test selection), the last item that killed a mutant of the same function first; the first failing
   item kills it. A mutant whose statement no item runs is ``not_reached``. A child over its time limit is a kill
   (``timeout``), as in mutmut;
4. results go to ``OUT/results.jsonl`` as they come: a run interrupted and started again skips every mutant already
   judged (for the same function source); ``--rejudge-survivors`` judges the survivors again (after new cases),
   ``--rerun`` starts over;
5. ``OUT/report.md`` and ``OUT/summary.json``: mutants generated, killed, survived, equivalent, not reached. A
   survivor is either killed by a new case, or listed in ``selftest/mutation_equivalents.yaml`` with the change it
   makes and a one-line reason. The run fails when a survivor is not listed, when a listed entry no longer
   matches its mutant, or when fewer than ``TARGET_SCORE`` of the non-equivalent mutants are killed.

``--sample N --seed S`` judges a fixed random subset of N mutants (the equivalent ones left out) in full.

``make test`` checks a fixed sample without the baseline's cost: ``--write-sample N --seed S`` (after a full run)
writes ``selftest/mutation_sample.yaml``, N killed mutants drawn with seed S and the item that killed each;
``--check-sample`` (``tests/tensorflow/test_mutation_sample.py``) runs each of those mutants against its item alone
and fails unless every one is still killed, or when an entry's mutant no longer exists with the same change. A
case removed or weakened, or a reference edit that a case no longer notices, fails CI that way; ``make mutation``
then says which mutants survive.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

import yaml

TARGETS = ("harness/conv/reference.py", "harness/conv/padding.py", "harness/conv/layouts.py", "harness/conv/dtypes.py")
EQUIVALENTS = Path("selftest") / "mutation_equivalents.yaml"
SAMPLE = Path("selftest") / "mutation_sample.yaml"
# Items whose kills depend on the CPU: cases/tolerance.yaml kills by TensorFlow rounding away part of an exact sum,
# which another CPU's kernel may not do. The sample make test checks everywhere draws no mutant they killed.
CPU_DEPENDENT_KILLERS = ("cases/tolerance.yaml::",)
TARGET_SCORE = 0.95
MUTANT_MARK = "__mutmut_"


# --- mutants: what mutmut generates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    name: str  # e.g. harness.conv.dtypes.x_accumulator__mutmut_3 (what mutmut's trampolines switch on)
    function: str  # e.g. harness.conv.dtypes.x_accumulator (what the baseline records as called)
    file: str
    change: str  # the mutated lines, stripped, joined by " | "
    diff: str  # unified diff of the function against the original
    function_hash: str
    lines: tuple[int, ...] = ()  # the changed statements' first lines in the mutated module (the __mutmut_orig copy)
    original_lines: tuple[int, ...] = ()  # the same lines in the original module


def _module(target: str) -> str:
    return target[:-3].replace("/", ".")


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _functions(code: str) -> dict[str, Function]:
    return {
        node.name: node
        for node in ast.walk(ast.parse(code))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _body(lines: list[str], node: Function) -> list[str]:
    """A function's body lines (its ``def`` left out: a mutant's name differs from the original's)."""
    return lines[node.body[0].lineno - 1 : node.end_lineno]


def _signature(lines: list[str], node: Function, name: str, mangled: str) -> list[str]:
    """A function's ``def`` lines, its (mutant's) name replaced by the original's."""
    return [ln.replace(name, mangled) for ln in lines[node.lineno - 1 : node.body[0].lineno - 1]]


def _end_line(node: ast.stmt) -> int:
    """``node.end_lineno``, which ``ast.parse`` always sets."""
    if node.end_lineno is None:
        raise ValueError(f"{type(node).__name__} at line {node.lineno} has no end line (not from ast.parse)")
    return node.end_lineno


def _statement_start(node: Function, line: int) -> int:
    """The first line of the innermost statement of ``node`` that holds ``line`` (where line coverage counts it)."""
    best: ast.stmt = node
    for child in ast.walk(node):
        if isinstance(child, ast.stmt) and child.lineno <= line <= _end_line(child) and child.lineno >= best.lineno:
            best = child
    return best.lineno


def _original_name(mangled: str) -> str:
    """mutmut's mangled name -> the function's own: x_conv2d -> conv2d, xǁArgFormsǁspellings -> spellings."""
    return mangled.rsplit("ǁ", 1)[-1] if "ǁ" in mangled else mangled[2:]


@functools.cache
def _no_cover(source: str) -> frozenset[int]:
    """The lines coverage.py leaves out (``# pragma: no cover`` and the blocks under it): no mutants there."""
    from coverage.parser import PythonParser

    parser = PythonParser(text=source, exclude=r"#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(cover|COVER)")
    parser.parse_source()
    return frozenset(parser.excluded)


def _function_lines(source: str, names: set[str]) -> set[int]:
    """The lines of the top-level functions and methods of ``source`` that mutmut mangles to one of ``names``
    (``x_conv2d``, ``xǁArgFormsǁspellings``), decorators included."""
    lines: set[int] = set()
    tree = ast.parse(source)
    for node in tree.body:
        defs = [(f"x_{node.name}", node)] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []
        if isinstance(node, ast.ClassDef):
            defs = [(f"xǁ{node.name}ǁ{f.name}", f) for f in node.body if isinstance(f, ast.FunctionDef)]
        for mangled, fn in defs:
            if mangled in names:
                first = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
                lines.update(range(first, _end_line(fn) + 1))
    return lines


def generate(root: Path, tree: Path, functions: set[str] | None = None) -> list[Mutant]:
    """mutmut's mutants of ``TARGETS``: the mutated modules are written into ``tree`` (a copy of the package).
    ``functions`` (e.g. ``harness.conv.padding.x_window``) limits them to those functions' mutants, numbered as in
    the full set (mutmut numbers a function's mutants within it); None: every function."""
    from mutmut.mutation.file_mutation import mutate_file_contents

    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(root / "harness", tree / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    mutants = []
    for target in TARGETS:
        source = (root / target).read_text(encoding="utf-8")
        module = _module(target)
        covered = None
        if functions is not None:
            covered = _function_lines(source, {f.rsplit(".", 1)[1] for f in functions if f.startswith(module + ".")})
        mutated = mutate_file_contents(target, source, covered_lines=covered)
        (tree / target).write_text(mutated.code, encoding="utf-8")
        code_lines, generated = mutated.code.splitlines(), _functions(mutated.code)
        originals = _functions(source)
        for name in mutated.mutant_names:
            mangled = name.rsplit(MUTANT_MARK, 1)[0].rsplit(".", 1)[-1]
            short = name.rsplit(".", 1)[-1]
            orig_node, mutant_node = generated[f"{mangled}{MUTANT_MARK}orig"], generated[short]
            original, changed = _body(code_lines, orig_node), _body(code_lines, mutant_node)
            in_signature = original == changed  # a default value: compare the signatures, named alike
            if in_signature:
                original = _signature(code_lines, orig_node, orig_node.name, mangled)
                changed = _signature(code_lines, mutant_node, mutant_node.name, mangled)
            diff = "\n".join(difflib.unified_diff(original, changed, "original", "mutant", n=1, lineterm=""))
            change = " | ".join(ln[1:].strip() for ln in diff.splitlines()[2:] if ln.startswith("+"))
            lines: tuple[int, ...] = ()
            original_lines: tuple[int, ...] = ()
            own = originals.get(_original_name(mangled))
            if in_signature:  # every statement may read the default; coverage exclusions see the def line
                original_lines = (own.lineno,) if own is not None else ()
            elif len(original) == len(changed):  # the usual case: one expression replaced in place
                offsets = [i for i, (a, b) in enumerate(zip(original, changed)) if a != b]
                lines = tuple(sorted({_statement_start(orig_node, orig_node.body[0].lineno + i) for i in offsets}))
                if own is not None and offsets:
                    original_lines = tuple(own.body[0].lineno + i for i in offsets)
            if not lines:  # the change is in the signature (a default value), or moved lines: the whole function
                lines = tuple(
                    sorted({n.lineno for n in ast.walk(orig_node) if isinstance(n, ast.stmt)} - {orig_node.lineno})
                )
                if not original_lines and own is not None:
                    original_lines = tuple(range(own.lineno, _end_line(own) + 1))
            mutants.append(
                Mutant(
                    f"{module}.{short}",
                    f"{module}.{mangled}",
                    target,
                    change,
                    diff,
                    mutated.hash_by_function_name.get(mangled, ""),
                    lines,
                    original_lines,
                )
            )
    return mutants


# --- equivalents: survivors that no case can kill ------------------------------------------------------------

# The kinds of triaged survivor: ``equivalent`` computes the same as the original on everything the registry can
# reach; ``oracle`` changes only how tight the tolerance bound is, within a margin TensorFlow's errors never come near
# (only a wrong implementation could notice it). An oracle survivor stays in the score's denominator.
KINDS = ("equivalent", "oracle")


@dataclass(frozen=True)
class Equivalent:
    mutant: str
    change: str
    reason: str
    kind: str = "equivalent"


def load_equivalents(path: Path) -> list[Equivalent]:
    """``selftest/mutation_equivalents.yaml``: ``{mutant, change, reason}`` entries, and ``kind`` (one of ``KINDS``)
    where it is not ``equivalent`` (ValueError naming the entry)."""
    if not path.exists():
        return []
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = doc.get("equivalents") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a mapping with a list 'equivalents'")
    out = []
    for i, raw in enumerate(entries):
        fields = {"mutant", "change", "reason"}
        if (
            not isinstance(raw, dict)
            or not fields <= set(raw) <= fields | {"kind"}
            or not all(isinstance(v, str) and v.strip() for v in raw.values())
        ):
            raise ValueError(
                f"{path}: equivalents[{i}]: must be {{mutant, change, reason}} (and kind), non-empty strings"
            )
        if raw.get("kind", "equivalent") not in KINDS:
            raise ValueError(f"{path}: equivalents[{i}]: kind {raw['kind']!r} is not one of {', '.join(KINDS)}")
        out.append(
            Equivalent(raw["mutant"], raw["change"].strip(), raw["reason"].strip(), raw.get("kind", "equivalent"))
        )
    return out


# --- the worker: runs inside the mutated package ---------------------------------------------------------------


def _items(root: Path, files: set[str] | None = None):
    """Every registry item: (id, check, case, dtype), error contracts, gradient items and reference self-check items
    included, in file order; only those of ``files`` (paths relative to ``root``) when given."""
    from harness.check import self_checks
    from harness.registry.cases import Case
    from harness.registry.loader import load_file

    items = []
    for path in sorted((root / "cases").rglob("*.yaml")):
        if files is not None and path.relative_to(root).as_posix() not in files:
            continue
        for case in load_file(path, root):
            if not isinstance(case, Case):
                continue
            items += [(f"{case.id}[{dt}]", "forward", case, dt) for dt in case.dtypes]
            items += [(f"{case.id}[{dt}:gradients]", "gradients", case, dt) for dt in case.gradient_dtypes]
            if self_checks.applies(case):
                dt, check = self_checks.DTYPE, self_checks.CHECK
                items.append((f"{case.id}[{dt}:{check}]", check, case, dt))
    return items


def _run_item(item, known, env) -> bool:
    """True when the item fails (kills the active mutant); an exception out of the harness is a failure too."""
    from harness.check.runner import run_case, run_gradients
    from harness.check.self_checks import CHECK, run_self_checks

    _, check, case, dtype = item
    try:
        if check == "forward":
            return run_case(case, dtype, known, env, diagnose=False).status == "failed"
        if check == CHECK:
            return run_self_checks(case, env.memory).status == "failed"
        return run_gradients(case, dtype, known, env).status == "failed"
    except Exception:
        return True


def _worker(args) -> int:
    from harness.registry import divergences
    from harness.tf.environment import Environment

    root, out = Path(args.root), Path(args.out)
    todo = json.loads((out / "todo.json").read_text(encoding="utf-8"))
    known, errors = divergences.load(root / "cases" / "known_divergences.yaml", root, scope=None)
    env = Environment.current()
    answers = out / "tf-answers"
    if todo and all("items" in m for m in todo):  # --check-sample: each mutant against its own items only
        files = {i.split("::", 1)[0] for m in todo for i in m["items"]}
        return _targeted(todo, _items(root, files), known, env, answers, args.jobs)
    items = _items(root)

    # The baseline: unmutated, recording TensorFlow's answers and, per item, the reference lines it runs.
    import coverage

    tree_files = {t: str((Path(args.tree) / t).resolve()) for t in TARGETS}
    cov = coverage.Coverage(data_file=None, branch=False, include=list(tree_files.values()))
    started = time.perf_counter()
    cov.start()
    broken, seconds = _baseline(
        items, range(len(items)), known, env, answers, before_each=lambda k: cov.switch_context(str(k))
    )
    cov.stop()
    failing = {k for k, item in enumerate(items) if item[0] in broken}
    data = cov.get_data()
    by_line = {}  # (target, line) -> items that ran it
    for target, path in tree_files.items():
        for line, contexts in (data.contexts_by_lineno(path) or {}).items():
            by_line[target, line] = sorted({int(c) for c in contexts if c.isdigit()} - failing)
    _emit(
        {
            "event": "baseline",
            "items": len(items),
            "broken": broken,
            "seconds": round(time.perf_counter() - started, 1),
            "lines": len(by_line),
        }
    )

    candidates = {
        m["name"]: sorted({k for line in m["lines"] for k in by_line.get((m["file"], line), ())}) for m in todo
    }
    return _judge(todo, candidates, items, seconds, known, env, args.jobs)


def _targeted(todo: list[dict], items, known, env, answers: Path, jobs: int) -> int:
    """``--check-sample``: a baseline of only the items the todo names (recording TensorFlow's answers; no
    coverage), then each mutant against its own items."""
    index = {item[0]: k for k, item in enumerate(items)}
    wanted = sorted({index[i] for m in todo for i in m["items"] if i in index})
    started = time.perf_counter()
    broken, seconds = _baseline(items, wanted, known, env, answers)
    _emit(
        {
            "event": "baseline",
            "items": len(wanted),
            "broken": broken,
            "seconds": round(time.perf_counter() - started, 1),
            "lines": 0,
        }
    )
    candidates = {m["name"]: [index[i] for i in m["items"] if i in index and i not in broken] for m in todo}
    return _judge(todo, candidates, items, seconds, known, env, jobs)


def _baseline(items, indices, known, env, answers: Path, before_each=None) -> tuple[list[str], dict[int, float]]:
    """Run ``items[k]`` for every k in ``indices`` unmutated, recording TensorFlow's answers in ``answers``; later
    calls replay them (a mutant changes the reference, never TensorFlow). Returns (ids of the items that fail
    unmutated, seconds per item)."""
    from mutmut.mutation.trampoline import set_mutant_under_test

    from harness.tf.isolation import RECORD_ENV, REPLAY_ENV

    os.environ[RECORD_ENV] = str(answers)
    set_mutant_under_test("")
    broken, seconds = [], {}
    for k in indices:
        if before_each is not None:
            before_each(k)
        t0 = time.perf_counter()
        if _run_item(items[k], known, env):
            broken.append(items[k][0])
        seconds[k] = time.perf_counter() - t0
    del os.environ[RECORD_ENV]
    os.environ[REPLAY_ENV] = str(answers)
    return broken, seconds


def _judge(todo: list[dict], candidates: dict[str, list[int]], items, seconds: dict, known, env, jobs: int) -> int:
    """Each mutant in a forked child, ``jobs`` at a time, over its candidate items until one fails."""
    from mutmut.mutation.trampoline import set_mutant_under_test

    last_killer: dict[str, int] = {}
    running: dict[int, tuple] = {}  # pid -> (mutant, read fd, started, limit)
    queue = list(todo)
    while queue or running:
        while queue and len(running) < jobs:
            m = queue.pop(0)
            mine = candidates[m["name"]]
            if not mine:
                _emit({"event": "result", "mutant": m["name"], "status": "not_reached", "killer": None, "seconds": 0})
                continue
            first = last_killer.get(m["function"])
            order = ([first] if first in mine else []) + [k for k in mine if k != first]
            limit = 60.0 + 10.0 * sum(seconds.get(k, 0.0) for k in mine)
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: this mutant against its items, until one fails
                os.close(read)
                set_mutant_under_test(m["name"])
                killer = next((k for k in order if _run_item(items[k], known, env)), -1)
                os.write(write, str(killer).encode())
                os._exit(0)
            os.close(write)
            running[pid] = (m, read, time.perf_counter(), limit)
        ready, _, _ = select.select([r for _, r, _, _ in running.values()], [], [], 1.0)
        for pid, (m, read, t0, limit) in list(running.items()):
            elapsed = time.perf_counter() - t0
            if read in ready:
                text = os.read(read, 64).decode() or "-2"
                os.waitpid(pid, 0)
                killer = int(text)
                status = "killed" if killer >= 0 else "survived" if killer == -1 else "crashed"
                if killer >= 0:
                    last_killer[m["function"]] = killer
            elif elapsed > limit:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                killer, status = -3, "timeout"
            else:
                continue
            os.close(read)
            del running[pid]
            _emit(
                {
                    "event": "result",
                    "mutant": m["name"],
                    "status": status,
                    "killer": items[killer][0] if killer >= 0 else None,
                    "seconds": round(elapsed, 2),
                }
            )
    return 0


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# --- the driver ---------------------------------------------------------------------------------------------------


def _load_results(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by an interruption
            continue
        out[rec["mutant"]] = rec
    return out


def excluded_by_coverage(m: Mutant, exclusions, root: Path) -> bool:
    """Whether every line the mutant changes is one the registry cannot reach by design (an entry of
    selftest/coverage_exclusions.yaml, with its reason, or a ``# pragma: no cover`` block)."""
    from harness.selftest.coverage import Miss

    if not m.original_lines:
        return False
    text = (root / m.file).read_text(encoding="utf-8")
    source, no_cover = text.splitlines(), _no_cover(text)
    return all(
        n in no_cover or any(e.covers(Miss(m.file, n, source[n - 1].strip())) for e in exclusions)
        for n in m.original_lines
    )


def _triage_key(mutant: str, change: str) -> tuple[str, str]:
    """What identifies a triaged mutant across runs: its function and its change. mutmut numbers a function's mutants
    in order, so an edit elsewhere in the function renumbers them; the change is the mutation itself."""
    return mutant.rsplit("__mutmut_", 1)[0], change.strip()


def matched(mutants: list[Mutant], equivalents: list[Equivalent]) -> dict[str, Equivalent]:
    """The listed equivalent of each mutant that has one (same function, same change), by mutant name."""
    by_key = {_triage_key(e.mutant, e.change): e for e in equivalents}
    return {m.name: by_key[key] for m in mutants if (key := _triage_key(m.name, m.change)) in by_key}


def summarize(
    mutants: list[Mutant], results: dict[str, dict], equivalents: list[Equivalent], unreachable: Set[str] = frozenset()
) -> dict:
    """Counts, the score and the problems (untriaged survivors, stale equivalents) of a set of judged mutants.
    ``unreachable``: mutants of lines the coverage exclusions list (logic no case can reach by design: a survivor
    there is counted apart, as excluded, with the exclusion's reason)."""
    by_name = {m.name: m for m in mutants}
    listed = matched(mutants, equivalents)
    present = {_triage_key(m.name, m.change) for m in mutants}
    stale = [e for e in equivalents if _triage_key(e.mutant, e.change) not in present]
    judged = {name: r for name, r in results.items() if name in by_name}
    counts = {
        s: 0 for s in ("killed", "timeout", "survived", "equivalent", "oracle", "not_reached", "excluded", "crashed")
    }
    untriaged = []
    for name, r in judged.items():
        status = r["status"]
        if name in listed:
            status = listed[name].kind if status in ("survived", "not_reached") else status
        elif status in ("survived", "not_reached") and name in unreachable:
            status = "excluded"
        counts[status] = counts.get(status, 0) + 1
        if status in ("survived", "not_reached"):
            untriaged.append(name)
    killed = counts["killed"] + counts["timeout"] + counts["crashed"]  # a crash is noticed: a kill, as in mutmut
    relevant = len(judged) - counts["equivalent"] - counts["excluded"]
    return {
        "generated": len(mutants),
        "judged": len(judged),
        **counts,
        "score": killed / relevant if relevant else 1.0,
        "untriaged": sorted(untriaged),
        "stale_equivalents": [e.mutant for e in stale],
    }


def write_report(out: Path, mutants: list[Mutant], results: dict, summary: dict, baseline: dict | None) -> Path:
    by_name = {m.name: m for m in mutants}
    lines = [
        "# Mutation testing of the reference package (cases/ as the killing suite)",
        "",
        f"mutmut's mutants of {', '.join(TARGETS)}.",
        "",
        "| generated | judged | killed | timeout | survived | equivalent | oracle | not reached | excluded | score |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {summary['generated']} | {summary['judged']} | {summary['killed']} | {summary['timeout']} | "
        f"{summary['survived']} | {summary['equivalent']} | {summary['oracle']} | {summary['not_reached']} | "
        f"{summary['excluded']} | {100 * summary['score']:.1f}% |",
        "",
        "Score: killed (or timed out) over judged, less the equivalent ones and those *excluded*: mutants of "
        "lines that selftest/coverage_exclusions.yaml lists as unreachable from a case, with its reason. "
        "*oracle*: survivors listed as changing only the tolerance bound's tightness; they count against the "
        "score.",
        "",
    ]
    if baseline:
        lines += [
            f"Baseline: {baseline['items']} items in {baseline['seconds']} s; items failing unmutated (left "
            f"out): {len(baseline['broken'])}",
            "",
        ]
        lines += [f"- {b}" for b in baseline["broken"]]
    per_file: dict[str, list] = {}
    for name, r in results.items():
        if name in by_name:
            per_file.setdefault(by_name[name].file, []).append(r["status"])
    lines += ["", "| file | judged | killed or timeout | survived or not reached |", "|---|---|---|---|"]
    for f, statuses in sorted(per_file.items()):
        lines.append(
            f"| {f} | {len(statuses)} | {sum(s in ('killed', 'timeout') for s in statuses)} | "
            f"{sum(s in ('survived', 'not_reached') for s in statuses)} |"
        )
    if summary["untriaged"]:
        lines += [
            "",
            "## Survivors not triaged",
            "",
            f"Kill each with a case, or list it in {EQUIVALENTS} with its change and a reason.",
            "",
        ]
        for name in summary["untriaged"]:
            m = by_name[name]
            lines += [
                f"### {name} ({results[name]['status']})",
                "",
                f"change: `{m.change}`",
                "",
                "```diff",
                m.diff,
                "```",
                "",
            ]
    if summary["stale_equivalents"]:
        lines += ["", "## Stale equivalents", ""] + [
            f"- {n}: no such mutant, or its change differs" for n in summary["stale_equivalents"]
        ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _todo(m: Mutant, items: list[str] | None = None) -> dict:
    """A mutant as the worker takes it; ``items``: judge it against these item ids only (no baseline coverage)."""
    return {
        "name": m.name,
        "function": m.function,
        "file": m.file,
        "lines": list(m.lines),
        **({"items": items} if items is not None else {}),
    }


def _run_worker(
    root: Path,
    out: Path,
    todo: list[dict],
    jobs: int,
    results_path: Path,
    results: dict,
    mutants: list[Mutant],
    t0: float,
) -> tuple[dict | None, bool]:
    """Judge ``todo`` in a worker importing the mutated tree; results are appended to ``results_path`` and
    ``results`` as they come. Returns (the baseline record, whether the worker failed)."""
    (out / "todo.json").write_text(json.dumps(todo), encoding="utf-8")
    if not todo:
        return None, False
    hashes = {m.name: m.function_hash for m in mutants}
    changes = {m.name: m.change for m in mutants}
    from harness.registry import loader

    worker_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(out / "tree"), os.environ.get("PYTHONPATH", "")]),
        loader.CACHE_ENV: "off",  # every mutant's parse runs the mutated code, as it always did
    }
    cmd = [
        sys.executable,
        "-P",
        "-m",
        "harness.selftest.mutmut_run",
        "--worker",
        "--root",
        str(root),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--tree",
        str(out / "tree"),
    ]
    baseline, done = None, 0
    with (
        subprocess.Popen(cmd, cwd=root, env=worker_env, stdout=subprocess.PIPE, text=True) as proc,
        results_path.open("a", encoding="utf-8") as sink,
    ):
        if proc.stdout is None:  # stdout=PIPE
            raise RuntimeError("the mutmut worker's output is not piped")
        for line in proc.stdout:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                print(line, end="")
                continue
            if rec.pop("event") == "baseline":
                baseline = rec
                print(
                    f"baseline: {rec['items']} items in {rec['seconds']} s, {len(rec['broken'])} failing "
                    f"unmutated (left out); {rec['lines']} reference lines reached",
                    flush=True,
                )
                continue
            rec["hash"] = hashes[rec["mutant"]]
            rec["change"] = changes[rec["mutant"]]
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
            results[rec["mutant"]] = rec
            done += 1
            if rec["status"] not in ("killed", "timeout") or done % 50 == 0:
                elapsed = time.perf_counter() - t0
                print(
                    f"[{done}/{len(todo)} {elapsed:.0f} s] {rec['mutant']}: {rec['status']}"
                    + (f" by {rec['killer']}" if rec.get("killer") else ""),
                    flush=True,
                )
    if proc.returncode:
        print(f"mutation: the worker failed (exit {proc.returncode})", file=sys.stderr)
    return baseline, bool(proc.returncode)


# --- the fixed sample that make test checks -------------------------------------------------------------------------


def load_sample(path: Path) -> list[dict]:
    """``selftest/mutation_sample.yaml``: ``{mutant, change, killer}`` entries (ValueError naming the entry)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = doc.get("sample") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a mapping with a list 'sample'")
    for i, e in enumerate(entries):
        if not (
            isinstance(e, dict)
            and set(e) == {"mutant", "change", "killer"}
            and all(isinstance(v, str) and v for v in e.values())
        ):
            raise ValueError(f"{path}: sample[{i}]: must be {{mutant, change, killer}}, three non-empty strings")
    return entries


def write_sample(path: Path, results: dict, mutants: list[Mutant], size: int, seed: int, run: str = "full") -> int:
    """Draw ``size`` killed mutants (with ``seed``; at least one of every module) and write them with their
    killers to ``path``; ``run`` says
    which run judged them ("full", or a sampled run's description)."""
    by_name = {m.name: m for m in mutants}
    killed = sorted(
        n
        for n, r in results.items()
        if n in by_name
        and r["status"] == "killed"
        and r.get("killer")
        and not r["killer"].startswith(CPU_DEPENDENT_KILLERS)
    )
    # one of every module first (a module whose mutants all went unsampled would go unchecked), then any
    rng = random.Random(seed)
    modules = sorted({n.rsplit(".", 1)[0] for n in killed})
    first = [rng.choice([n for n in killed if n.rsplit(".", 1)[0] == m]) for m in modules][:size]
    rest = [n for n in killed if n not in first]
    chosen = sorted(first + rng.sample(rest, min(size - len(first), len(rest))))
    doc = {"sample": [{"mutant": n, "change": by_name[n].change, "killer": results[n]["killer"]} for n in chosen]}
    header = (
        f"# A fixed sample of {len(chosen)} mutants the registry kills (seed {seed}), each with the item that killed\n"
        f"# it in the {run} run: make test runs each against its item alone (python -m harness.selftest.mutmut_run\n"
        '# --check-sample). Rewritten by: make mutation MUTATION_ARGS="--write-sample N --seed S" (after a full run,\n'
        "# or with --sample M: drawn from the M mutants that run judged).\n"
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120), encoding="utf-8")
    return len(chosen)


def check_sample(path: Path, root: Path, out: Path, mutants: list[Mutant], jobs: int, t0: float) -> int:
    """Run each mutant of the sample at ``path`` against its recorded killer; 0 when every one is still killed."""
    entries = load_sample(path)
    by_name = {m.name: m for m in mutants}
    stale = [e["mutant"] for e in entries if e["mutant"] not in by_name or by_name[e["mutant"]].change != e["change"]]
    live = [e for e in entries if e["mutant"] not in stale]
    results_path = out / "sample-check.jsonl"
    if results_path.exists():
        results_path.unlink()
    results: dict = {}
    _, failed = _run_worker(
        root, out, [_todo(by_name[e["mutant"]], [e["killer"]]) for e in live], jobs, results_path, results, mutants, t0
    )
    if failed:
        return 2
    alive = [
        f"{e['mutant']} (by {e['killer']}: {results.get(e['mutant'], {}).get('status', 'not judged')})"
        for e in live
        if results.get(e["mutant"], {}).get("status") not in ("killed", "timeout", "crashed")
    ]
    print(
        f"sample: {len(live) - len(alive)} of {len(entries)} mutants killed by their recorded item "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    for name in stale:
        print(
            f"mutation sample: {name}: no such mutant, or its change differs (the reference changed): rewrite "
            f"{path} after a full run"
        )
    for line in alive:
        print(f"mutation sample: survived: {line}; run make mutation to see what kills it now")
    return 1 if stale or alive else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.selftest.mutmut_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports") / "mutation")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--sample", type=int, default=0, help="judge N mutants drawn with --seed (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="judge only mutants whose name contains this text")
    parser.add_argument("--rerun", action="store_true", help="forget earlier results")
    parser.add_argument(
        "--rejudge-survivors",
        action="store_true",
        help="judge again the mutants that survived before (after adding cases)",
    )
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS)
    parser.add_argument(
        "--skip-listed",
        action="store_true",
        help="do not judge the mutants listed as equivalent (each costs a full run of the items that reach it); "
        "they are counted as listed",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from the results so far, judging nothing (e.g. while a run goes on)",
    )
    parser.add_argument(
        "--write-sample",
        type=int,
        default=0,
        metavar="N",
        help=f"after the run, write {SAMPLE}: N killed mutants drawn with --seed, and their killers",
    )
    parser.add_argument(
        "--check-sample",
        action="store_true",
        help=f"run each mutant of {SAMPLE} against the item that killed it (what make test does)",
    )
    parser.add_argument("--sample-file", type=Path, default=SAMPLE, help=f"the sample --check-sample runs ({SAMPLE})")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=".", help=argparse.SUPPRESS)
    parser.add_argument("--tree", default=".", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    root, out = Path.cwd(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    equivalents = load_equivalents(args.equivalents)
    t0 = time.perf_counter()
    # --check-sample needs only the sampled mutants' functions (a full generation takes 20-40 s)
    functions = (
        {e["mutant"].split(MUTANT_MARK, 1)[0] for e in load_sample(args.sample_file)} if args.check_sample else None
    )
    mutants = generate(root, out / ("tree-report" if args.report_only else "tree"), functions)
    print(f"mutmut: {len(mutants)} mutants of {len(TARGETS)} modules in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.check_sample:
        return check_sample(args.sample_file, root, out, mutants, args.jobs, t0)
    results_path = out / ("results.jsonl" if not args.sample else f"sample-{args.seed}-{args.sample}.jsonl")
    if args.rerun and results_path.exists():
        results_path.unlink()
    hashes = {m.name: m.function_hash for m in mutants}
    changes = {m.name: m.change for m in mutants}
    # A result stands for the same mutant only if its function's source and its change are the same (mutmut numbers
    # the mutants of a function in order: an edit renumbers them).
    results = {
        n: r
        for n, r in _load_results(results_path).items()
        if r.get("hash") == hashes.get(n) and r.get("change", changes.get(n)) == changes.get(n)
    }
    listed_names = set(matched(mutants, equivalents))
    if args.rejudge_survivors:  # (a listed equivalent stays judged: no case can kill it)
        results = {
            n: r for n, r in results.items() if r["status"] not in ("survived", "not_reached") or n in listed_names
        }
    pool = [m for m in mutants if args.only in m.name]
    if args.sample:
        pool = random.Random(args.seed).sample(
            sorted((m for m in pool if m.name not in listed_names), key=lambda m: m.name), min(args.sample, len(pool))
        )
    todo = [] if args.report_only else [m for m in pool if m.name not in results]
    if args.skip_listed:
        # A listed survivor was judged and triaged by hand in an earlier run; what it would cost is a full run.
        skipped = [m for m in todo if m.name in listed_names]
        todo = [m for m in todo if m.name not in listed_names]
        results.update({m.name: {"mutant": m.name, "status": "survived", "listed_unjudged": True} for m in skipped})
        print(f"not judged (listed in {args.equivalents}): {len(skipped)}", flush=True)
    print(f"to judge: {len(todo)} (already judged: {len(pool) - len(todo)})", flush=True)
    baseline, failed = _run_worker(root, out, [_todo(m) for m in todo], args.jobs, results_path, results, mutants, t0)
    if failed:
        return 2
    judged = {m.name: results[m.name] for m in pool if m.name in results}
    from harness.selftest.coverage import EXCLUSIONS, load_exclusions

    exclusions = load_exclusions(root / EXCLUSIONS, root)
    unreachable = {m.name for m in pool if excluded_by_coverage(m, exclusions, root)}
    summary = summarize(pool if args.sample or args.only else mutants, judged, equivalents, unreachable)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    report = write_report(out, mutants, judged, summary, baseline)
    print(
        f"\nmutants: {summary['generated']} generated, {summary['judged']} judged: {summary['killed']} killed, "
        f"{summary['timeout']} timed out, {summary['survived']} survived, {summary['equivalent']} equivalent, "
        f"{summary['oracle']} oracle, "
        f"{summary['not_reached']} not reached, {summary['excluded']} excluded; score {100 * summary['score']:.1f}% "
        f"(target {100 * TARGET_SCORE:.0f}%); {summary['seconds']} s; report {report}"
    )
    problems = []
    if summary["untriaged"]:
        problems.append(
            f"{len(summary['untriaged'])} survivor(s) not triaged (kill with a case, or list in "
            f"{args.equivalents} with a reason): " + ", ".join(summary["untriaged"][:20])
        )
    if summary["stale_equivalents"] and not (args.sample or args.only):
        problems.append(f"stale entries in {args.equivalents}: {', '.join(summary['stale_equivalents'])}")
    if summary["score"] < TARGET_SCORE:
        problems.append(f"score {100 * summary['score']:.1f}% is below {100 * TARGET_SCORE:.0f}%")
    if args.write_sample and not args.only:
        run = f"sampled ({args.sample} mutants, seed {args.seed})" if args.sample else "full"
        n = write_sample(root / SAMPLE, judged, mutants, args.write_sample, args.seed, run)
        print(f"wrote {SAMPLE}: {n} killed mutants (seed {args.seed})")
    for p in problems:
        print(f"mutation: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
