"""Branch coverage of the NumPy reference package by the registry alone (``make coverage``).

``python -m harness.selftest.coverage`` runs ``pytest cases`` (the registry and nothing else) under coverage.py with
branch coverage of ``TARGETS``: the reference, padding, layouts and dtypes modules. It writes the HTML report to
``reports/coverage/html/`` and the JSON one beside it, prints each module's line and branch coverage, and checks
every line and branch the registry does not reach against ``selftest/coverage_exclusions.yaml``:

* an unreached line or branch that no exclusion lists fails the check (add a case that reaches it, or an exclusion
  saying why no case can);
* an exclusion that lists something the registry now reaches, or nothing at all, fails too (it is stale).

Exclusions name source text, not line numbers, so that they survive edits around them::

    exclusions:
      - file: harness/conv/reference.py
        line: "except Exception as exc:  # ragged nested lists, objects ..."   # the line, stripped
        reason: "np.asarray raises only for objects YAML cannot express"
      - file: harness/conv/padding.py
        line: "if step < 1:"
        to: "exit"                     # one branch: from that line to the line with this text (or "exit")
        reason: ...

A ``line`` entry covers the line and every branch into or out of it. Text that occurs on several lines of a file
matches all of them. An entry may name whole functions instead (``functions: [chw_to_hwc, hwc_to_chw]``): every
line and branch inside them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.registry import loader

TARGETS = ("harness/conv/reference.py", "harness/conv/padding.py", "harness/conv/layouts.py", "harness/conv/dtypes.py")
EXCLUSIONS = Path("selftest") / "coverage_exclusions.yaml"
EXIT = "exit"


@dataclass(frozen=True)
class Miss:
    """A line (``to`` is None) or a branch (from ``line`` to ``to``; ``to_text`` "exit" for leaving the function)
    that the registry does not reach."""

    file: str
    line: int
    text: str
    to: int | None = None
    to_text: str | None = None

    def describe(self) -> str:
        if self.to is None:
            return f"{self.file}:{self.line}: line never runs: {self.text}"
        where = "exit" if self.to_text == EXIT else f"line {self.to} ({self.to_text})"
        return f"{self.file}:{self.line}: branch never taken: {self.text}  ->  {where}"


@dataclass(frozen=True)
class Exclusion:
    file: str
    line: str | None
    reason: str
    to: str | None = None
    functions: tuple[str, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()  # the named functions' first and last lines

    def covers(self, miss: Miss) -> bool:
        if miss.file != self.file:
            return False
        if self.functions:
            return any(lo <= miss.line <= hi for lo, hi in self.spans)
        if self.to is None:
            return self.line in (miss.text, miss.to_text)
        return miss.to is not None and (miss.text, miss.to_text) == (self.line, self.to)

    def describe(self) -> str:
        if self.functions:
            return f"{self.file}: functions {', '.join(self.functions)}"
        return f"{self.file}: {self.line!r}" + (f" -> {self.to!r}" if self.to else "")


def function_spans(source: str) -> dict[str, tuple[int, int]]:
    """Every function (and method) of a module: name -> (first line, last line), decorators excluded."""
    spans: dict[str, tuple[int, int]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.end_lineno is None:  # ast.parse sets it
                raise ValueError(f"function {node.name} at line {node.lineno} has no end line")
            spans[node.name] = (node.lineno, node.end_lineno)
    return spans


class ExclusionError(ValueError):
    """A malformed exclusion file (the message names the file, the entry and the field)."""


def load_exclusions(path: Path, root: Path) -> list[Exclusion]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExclusionError(f"{path}: cannot read: {exc}") from None
    entries = doc.get("exclusions") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ExclusionError(f"{path}: expected a mapping with a list 'exclusions'")
    out = []
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict):
            raise ExclusionError(f"{path}: exclusions[{i}]: must be a mapping {{file, line, reason}}")
        where = f"{path}: exclusions[{i}]"
        unknown = set(raw) - {"file", "line", "to", "functions", "reason"}
        if unknown:
            raise ExclusionError(f"{where}: field {sorted(unknown)[0]!r}: unknown field")
        for key in ("file", "reason"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise ExclusionError(f"{where}: field {key!r}: missing (a non-empty string)")
        if raw["file"] not in TARGETS:
            raise ExclusionError(f"{where}: field 'file': {raw['file']!r} is not one of {', '.join(TARGETS)}")
        if ("line" in raw) == ("functions" in raw):
            raise ExclusionError(f"{where}: field 'line': give exactly one of 'line' (a line's text) or 'functions'")
        if "functions" in raw:
            names = raw["functions"]
            spans = function_spans((root / raw["file"]).read_text(encoding="utf-8"))
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise ExclusionError(f"{where}: field 'functions': must be a non-empty list of function names")
            for name in names:
                if name not in spans:
                    raise ExclusionError(f"{where}: field 'functions': {raw['file']} has no function {name!r}")
            out.append(
                Exclusion(
                    raw["file"],
                    None,
                    raw["reason"].strip(),
                    functions=tuple(names),
                    spans=tuple(spans[n] for n in names),
                )
            )
            continue
        if not isinstance(raw["line"], str) or not raw["line"].strip():
            raise ExclusionError(f"{where}: field 'line': must be a line's text")
        if "to" in raw and not isinstance(raw["to"], str):
            raise ExclusionError(f"{where}: field 'to': must be a line's text or {EXIT!r}")
        out.append(
            Exclusion(
                raw["file"], raw["line"].strip(), raw["reason"].strip(), raw["to"].strip() if "to" in raw else None
            )
        )
    return out


def misses(report: dict, root: Path) -> list[Miss]:
    """Every line and branch of ``TARGETS`` that coverage.py's JSON ``report`` says never ran. A branch out of a
    line that never ran is left out (the line's miss says it)."""
    files = {str(Path(name)).replace(os.sep, "/"): data for name, data in report["files"].items()}
    out = []
    for target in TARGETS:
        data = files.get(target)
        source = (root / target).read_text(encoding="utf-8").splitlines()

        def text(n: int) -> str:
            return EXIT if n < 0 else source[n - 1].strip()  # noqa: B023 (called in this iteration only)

        if data is None:  # never imported: every line is a miss
            out += [Miss(target, n, text(n)) for n in range(1, len(source) + 1) if text(n)]
            continue
        missing = set(data["missing_lines"])
        out += [Miss(target, n, text(n)) for n in sorted(missing)]
        out += [Miss(target, a, text(a), b, text(b)) for a, b in data.get("missing_branches", []) if a not in missing]
    return out


def check(found: list[Miss], exclusions: list[Exclusion]) -> tuple[list[Miss], list[Exclusion]]:
    """(misses no exclusion covers, exclusions that cover no miss). An excluded branch excludes its target line
    too, when that line never runs (it runs only through the branch)."""
    targets = {
        (m.file, m.to)
        for m in found
        if m.to is not None and m.to > 0
        for e in exclusions
        if e.to is not None and e.covers(m)
    }
    unlisted = [
        m
        for m in found
        if not any(e.covers(m) for e in exclusions) and not (m.to is None and (m.file, m.line) in targets)
    ]
    stale = [e for e in exclusions if not any(e.covers(m) for m in found)]
    return unlisted, stale


def summary(report: dict) -> list[str]:
    files = {str(Path(name)).replace(os.sep, "/"): data["summary"] for name, data in report["files"].items()}
    lines = [f"{'module':<28}{'lines':>14}{'branches':>16}"]
    for target in TARGETS:
        s = files.get(target)
        if s is None:
            lines.append(f"{target:<28}{'not imported':>30}")
            continue
        ran = s["covered_lines"]
        lines.append(
            f"{target:<28}{ran:>6}/{s['num_statements']:<5} {_pct(ran, s['num_statements']):>4}"
            f"{s['covered_branches']:>6}/{s['num_branches']:<5} "
            f"{_pct(s['covered_branches'], s['num_branches']):>4}"
        )
    return lines


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def measure(root: Path, out: Path, pytest_args: list[str]) -> dict:
    """Run the registry under coverage.py; write out/html/ and out/coverage.json; return the JSON report."""
    out.mkdir(parents=True, exist_ok=True)
    rc = out / "coveragerc"
    # Measured from each interpreter's start (coverage run, and patch = subprocess for the pytest-xdist workers): the
    # harness's pytest plugin is an entry point that imports the reference package before pytest-cov would start.
    rc.write_text(
        "[run]\nbranch = True\nparallel = True\npatch = subprocess\nsource = harness.conv\ndata_file = "
        + str(out / ".coverage")
        + "\n[report]\ninclude =\n"
        + "".join(f"    */{t}\n" for t in TARGETS)
        + "\n[html]\ndirectory = "
        + str(out / "html")
        + "\n",
        encoding="utf-8",
    )
    for old in out.glob(".coverage*"):
        old.unlink()
    coverage = [sys.executable, "-m", "coverage"]
    cmd = [
        *coverage,
        "run",
        f"--rcfile={rc}",
        "-m",
        "pytest",
        "cases",
        "-q",
        "-p",
        "no:hypothesispytest",
        "--junitxml",
        str(out / "junit.xml"),
        *pytest_args,
    ]
    print("$", " ".join(cmd), flush=True)
    # parsing runs reference code (symbolic attributes): no parsed registry from the disk cache
    run = subprocess.run(cmd, cwd=root, env={**os.environ, loader.CACHE_ENV: "off"})
    for step in (["combine", "-q"], ["json", "-q", "-o", str(out / "coverage.json")], ["html", "-q"]):
        subprocess.run([*coverage, *step, f"--rcfile={rc}"], cwd=root, check=True)
    if run.returncode not in (0, 1):
        raise SystemExit(f"coverage: the registry run failed to start (pytest exit {run.returncode})")
    if run.returncode == 1:
        print("coverage: some registry items failed (see above); coverage is measured all the same", flush=True)
    return json.loads((out / "coverage.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.selftest.coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports") / "coverage", help="where the reports go")
    parser.add_argument("--exclusions", type=Path, default=EXCLUSIONS)
    parser.add_argument("--reuse", action="store_true", help="check OUT/coverage.json from an earlier run, no run")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (default: -n auto)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        exclusions = load_exclusions(args.exclusions, root)
    except ExclusionError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.reuse:
        report = json.loads((args.out / "coverage.json").read_text(encoding="utf-8"))
    else:
        report = measure(root, args.out, args.pytest_args or ["-n", "auto"])
    found = misses(report, root)
    unlisted, stale = check(found, exclusions)
    print("\nbranch coverage of the reference package by cases/ alone:")
    for line in summary(report):
        print("  " + line)
    print(
        f"unreached and excluded ({args.exclusions}): {len(found) - len(unlisted)} of {len(found)} "
        f"({len(exclusions)} exclusions); HTML report: {args.out / 'html' / 'index.html'}"
    )
    for m in unlisted:
        print(f"NOT REACHED  {m.describe()}")
    for e in stale:
        print(f"STALE EXCLUSION  {e.describe()}: the registry reaches it now (or it names nothing); remove it")
    if unlisted or stale:
        print(
            f"coverage: {len(unlisted)} unreached line(s)/branch(es) not excluded, {len(stale)} stale "
            f"exclusion(s): add cases that reach them, or exclusions with a reason"
        )
        return 1
    print("coverage: every line and branch the registry does not reach is excluded with a reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
