"""Sweeps: a grid of attribute and shape choices expanded into cases.

A sweep is a case template plus a ``grid``::

    sweeps:
      - name: conv2d_grid
        op: conv2d
        inputs:
          input:   {layout: NHWC, generate: {dist: normal, shape: [1, 6, 7, 3]}}
          filters: {layout: HWIO, generate: {dist: normal, shape: [3, 3, 3, 4]}}
        grid:
          padding: [SAME, VALID, {label: asym, value: [[0, 0], [1, 2], [0, 1], [0, 0]]}]
          strides: [1, 2]
          shapes:
            - {label: b2, set: {inputs.input.generate.shape: [2, 5, 4, 3]}}
        exclude:
          - {when: {strides: 2, padding: asym}, reason: "why this combination is left out"}

Each grid axis is a list of choices. A plain value sets ``attrs.<axis>``; a mapping
with ``value`` does the same under an explicit ``label``; a mapping with ``set``
assigns dotted fields of the template (its ``label`` is required). Every
combination becomes a case named ``<sweep>/<axis>=<label>/...`` so ids are stable
whatever else is added to the grid later. Generators without a ``seed`` get one
derived from the expanded case's name.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import ops
from harness.registry.cases import Case, CaseError, expand_symbolic, operand_shape, parse_case

SWEEP_ENV = (
    "HARNESS_SWEEP"  # "pairwise" (default): sweeps with cover: pairwise run a covering set; "full": every combination
)
COVERS = ("all", "pairwise")
LOCK_FILE = "sweeps.lock"  # in cases/: every sweep's size, for its YAML (see ``Size``)


@dataclass(frozen=True)
class Size:
    """How a sweep's grid expands: ``combinations`` in the grid, ``excluded`` by its rules, ``dropped`` as invalid
    geometry (``drop_invalid_geometry``), ``kept`` (before a pairwise cut and symbolic expansion).

    cases/sweeps.lock records each sweep's size with a fingerprint of its YAML. The same YAML must always give the
    same size: when it does not, something other than the sweep (the harness) changed which configurations are
    dropped, and the loader reports it as an error of the sweep instead of running fewer cases.
    """

    combinations: int
    excluded: int
    dropped: int
    kept: int

    def as_dict(self) -> dict:
        return {
            "combinations": self.combinations,
            "excluded": self.excluded,
            "dropped": self.dropped,
            "kept": self.kept,
        }


def fingerprint(raw: Any, defaults: dict | None) -> str:
    """A hash of a sweep's YAML (and its file's defaults): what its size is recorded against."""
    text = json.dumps({"sweep": raw, "defaults": defaults or {}}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Choice:
    label: str
    assignments: tuple[tuple[str, Any], ...]  # (dotted path, value)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _choices(file: str, sweep: str, axis: str, values: Any) -> list[Choice]:
    fld = f"grid.{axis}"
    if not isinstance(values, list) or not values:
        raise CaseError(file, sweep, fld, "must be a non-empty list of choices")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, dict):
            if "set" in v:
                if not isinstance(v.get("label"), str) or not isinstance(v["set"], dict) or set(v) - {"label", "set"}:
                    raise CaseError(
                        file, sweep, f"{fld}[{i}]", "a 'set' choice is {label: str, set: {dotted.path: value}}"
                    )
                out.append(Choice(v["label"], tuple(v["set"].items())))
            elif "value" in v:
                if set(v) - {"label", "value"}:
                    raise CaseError(file, sweep, f"{fld}[{i}]", "a 'value' choice is {label: str, value: ...}")
                out.append(Choice(str(v.get("label", _label(v["value"]))), ((f"attrs.{axis}", v["value"]),)))
            else:
                raise CaseError(file, sweep, f"{fld}[{i}]", "a mapping choice needs 'value' or 'set'")
        else:
            out.append(Choice(_label(v), ((f"attrs.{axis}", v),)))
    labels = [c.label for c in out]
    if len(set(labels)) != len(labels):
        raise CaseError(file, sweep, fld, f"choice labels must be distinct, got {labels}")
    return out


def _assign(target: dict, path: str, value: Any, file: str, sweep: str) -> None:
    keys = path.split(".")
    node = target
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise CaseError(file, sweep, path, f"cannot set {path!r}: {key!r} is not a mapping in the template")
    node[keys[-1]] = copy.deepcopy(value)


def _labels(want: Any) -> list[str]:
    """An exclusion's label or list of labels, as strings."""
    return [_label(w) for w in want] if isinstance(want, list) else [_label(want)]


def _excluded(combo: dict[str, str], rules: list[dict]) -> bool:
    """True if every axis named in some rule's ``when`` has one of the rule's labels."""
    return any(all(combo[axis] in _labels(want) for axis, want in rule["when"].items()) for rule in rules)


def _pairs(combo: tuple[int, ...]) -> set:
    """Every (axis, choice) and every pair of them in one combination."""
    singles = {((i, v),) for i, v in enumerate(combo)}
    return singles | {((i, combo[i]), (j, combo[j])) for i, j in itertools.combinations(range(len(combo)), 2)}


def covering_subset(combos: list[tuple[int, ...]], seed: int) -> list[int]:
    """Indices of a subset of ``combos`` in which every pair of choices that occurs in ``combos`` occurs.

    A deterministic greedy construction (AETG-style): repeatedly take the smallest uncovered
    pair and, among up to 64 combinations containing it, the one covering most uncovered pairs.
    Pairs that no allowed combination contains (excluded ones) are not required.
    """
    pair_sets = [_pairs(c) for c in combos]
    uncovered = set().union(*pair_sets) if pair_sets else set()
    rng = random.Random(seed)
    chosen: list[int] = []
    while uncovered:
        target = min(uncovered)
        candidates = [k for k, pairs in enumerate(pair_sets) if target in pairs]
        if len(candidates) > 64:
            candidates = rng.sample(candidates, 64)
        best = max(candidates, key=lambda k: (len(pair_sets[k] & uncovered), -k))
        chosen.append(best)
        uncovered -= pair_sets[best]
    return sorted(chosen)


def sweep_mode() -> str:
    mode = os.environ.get(SWEEP_ENV, "pairwise")
    if mode not in ("pairwise", "full"):
        raise ValueError(f"{SWEEP_ENV}={mode!r}: expected 'pairwise' or 'full'")
    return mode


def expand(
    file: str, raw: Any, index: int, defaults: dict | None = None, locked: dict | None = None, sizes: dict | None = None
) -> list[Case | CaseError]:
    """All cases of one sweep (malformed ones as CaseError); never raises.

    ``locked``: the sweep's entry in cases/sweeps.lock; when it was recorded for this YAML and the sweep now expands
    to another size, a CaseError says so (after the cases). ``sizes``: receives the sweep's ``Size`` by name."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        return [
            CaseError(file, f"sweep #{index}", "name", "a sweep is a mapping with a name, a case template and a grid")
        ]
    sweep = raw["name"]
    try:
        grid = raw.get("grid")
        if not isinstance(grid, dict) or not grid:
            raise CaseError(file, sweep, "grid", "missing field: a mapping of axis -> list of choices")
        axes = {axis: _choices(file, sweep, axis, values) for axis, values in grid.items()}
        rules = raw.get("exclude") or []
        if not isinstance(rules, list):
            raise CaseError(file, sweep, "exclude", "must be a list of {when: {axis: label}, reason: str}")
        for i, rule in enumerate(rules):
            if (
                not isinstance(rule, dict)
                or not isinstance(rule.get("when"), dict)
                or not isinstance(rule.get("reason"), str)
            ):
                raise CaseError(file, sweep, f"exclude[{i}]", "must be {when: {axis: label or [labels]}, reason: str}")
            for axis, want in rule["when"].items():
                if axis not in axes:
                    raise CaseError(file, sweep, f"exclude[{i}].when.{axis}", f"no grid axis {axis!r}")
                known = [c.label for c in axes[axis]]
                for label in _labels(want):
                    if label not in known:
                        raise CaseError(
                            file, sweep, f"exclude[{i}].when.{axis}", f"no choice labelled {label!r}; labels: {known}"
                        )
    except CaseError as err:
        return [err]

    cover = raw.get("cover", "all")
    if cover not in COVERS:
        return [CaseError(file, sweep, "cover", f"must be one of {', '.join(COVERS)}, got {cover!r}")]
    drop_invalid = raw.get("drop_invalid_geometry", False)
    if not isinstance(drop_invalid, bool):
        return [CaseError(file, sweep, "drop_invalid_geometry", "must be true or false")]
    template = {k: v for k, v in raw.items() if k not in ("grid", "exclude", "cover", "drop_invalid_geometry")}

    built: list[tuple[tuple, Case | CaseError]] = []
    combinations = excluded = dropped = 0
    for combo in itertools.product(*axes.values()):
        combinations += 1
        labels = {axis: choice.label for axis, choice in zip(axes, combo)}
        if _excluded(labels, rules):
            excluded += 1
            continue
        name = sweep + "".join(f"/{axis}={label}" for axis, label in labels.items())
        case = copy.deepcopy(template)
        case["name"] = name
        try:
            for choice in combo:
                for path, value in choice.assignments:
                    _assign(case, path, value, file, name)
            parsed = parse_case(file, case, index, defaults, sweep=sweep)
        except CaseError as err:
            built.append((combo, err))
            continue
        if drop_invalid and not _fits(parsed):
            dropped += 1
            continue  # a kernel larger than its padded input: cases/errors.yaml holds those contracts
        built.append((combo, parsed))
    size = Size(combinations, excluded, dropped, len(built))
    if sizes is not None:
        sizes[sweep] = size
    drift = []
    if (
        locked
        and locked.get("yaml") == fingerprint(raw, defaults)
        and {k: locked.get(k) for k in size.as_dict()} != size.as_dict()
    ):
        was = ", ".join(f"{k} {locked.get(k)}" for k in size.as_dict())
        now = ", ".join(f"{k} {v}" for k, v in size.as_dict().items())
        drift.append(
            CaseError(
                file,
                sweep,
                "drop_invalid_geometry",
                f"the same YAML now expands to {now}; cases/{LOCK_FILE} recorded {was}. The harness "
                f"changed which configurations it keeps: find out why (python -m "
                f"harness.registry.sweeps --lock records the new size once it is right)",
            )
        )

    if cover == "pairwise" and sweep_mode() == "pairwise":
        index_of = [{id(c): i for i, c in enumerate(choices)} for choices in axes.values()]
        as_indices = [tuple(index_of[a][id(c)] for a, c in enumerate(combo)) for combo, _ in built]
        built = [built[k] for k in covering_subset(as_indices, zlib.crc32(f"{file}/{sweep}".encode()))]
    out: list[Case | CaseError] = []
    for _, entry in built:
        try:
            out.extend(expand_symbolic(entry) if isinstance(entry, Case) else [entry])
        except CaseError as err:
            out.append(err)
    return out + drift


def _fits(case: Case) -> bool:
    spec = ops.get(case.op)
    return ops.kernel_fits(spec, {o.name: operand_shape(case, o.name) for o in spec.operands}, case.attrs)


def lock(root: Path) -> dict:
    """Every sweep's ``Size`` and YAML fingerprint under ``root``/cases, as cases/sweeps.lock holds them."""
    import yaml

    entries = {}
    for path in sorted((root / "cases").rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict):
            continue
        file = str(path.relative_to(root))
        defaults = doc.get("defaults") or {}
        for i, raw in enumerate(doc.get("sweeps") or []):
            sizes: dict = {}
            expand(file, raw, i, defaults, sizes=sizes)
            for name, size in sizes.items():
                entries[f"{file}::{name}"] = {"yaml": fingerprint(raw, defaults), **size.as_dict()}
    return entries


def main(argv: list[str] | None = None) -> int:
    import argparse

    import yaml

    parser = argparse.ArgumentParser(
        prog="python -m harness.registry.sweeps",
        description="Record (--lock) or check every sweep's size in cases/sweeps.lock.",
    )
    parser.add_argument("--lock", action="store_true", help="write cases/sweeps.lock")
    parser.add_argument("--root", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    entries = lock(args.root)
    path = args.root / "cases" / LOCK_FILE
    if args.lock:
        header = (
            "# Every sweep's size for its YAML (harness/registry/sweeps.py, Size). Written by\n"
            "# `python -m harness.registry.sweeps --lock` after a sweep is added or edited; the loader fails a sweep\n"
            "# whose unchanged YAML expands to another size.\n"
        )
        path.write_text(header + yaml.safe_dump(entries, sort_keys=True), encoding="utf-8")
        print(
            f"{path}: {len(entries)} sweeps, {sum(e['dropped'] for e in entries.values())} configurations dropped "
            f"as invalid geometry"
        )
        return 0
    recorded = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    stale = sorted(k for k in set(entries) | set(recorded or {}) if (recorded or {}).get(k) != entries.get(k))
    for k in stale:
        print(f"{k}: recorded {(recorded or {}).get(k)}, now {entries.get(k)}")
    print(f"{len(entries)} sweeps; {len(stale)} differ from {path}" + (" (run with --lock)" if stale else ""))
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
