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
import itertools
import json
import os
import random
import zlib
from dataclasses import dataclass
from typing import Any

from harness import ops
from harness.registry.cases import Case, CaseError, expand_symbolic, operand_shape, parse_case

SWEEP_ENV = "HARNESS_SWEEP"  # "pairwise" (default): sweeps with cover: pairwise run a covering set; "full": every combination
COVERS = ("all", "pairwise")


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
                    raise CaseError(file, sweep, f"{fld}[{i}]", "a 'set' choice is {label: str, set: {dotted.path: value}}")
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


def expand(file: str, raw: Any, index: int, defaults: dict | None = None) -> list[Case | CaseError]:
    """All cases of one sweep (malformed ones as CaseError); never raises."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        return [CaseError(file, f"sweep #{index}", "name", "a sweep is a mapping with a name, a case template and a grid")]
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
            if not isinstance(rule, dict) or not isinstance(rule.get("when"), dict) or not isinstance(rule.get("reason"), str):
                raise CaseError(file, sweep, f"exclude[{i}]", "must be {when: {axis: label or [labels]}, reason: str}")
            for axis, want in rule["when"].items():
                if axis not in axes:
                    raise CaseError(file, sweep, f"exclude[{i}].when.{axis}", f"no grid axis {axis!r}")
                known = [c.label for c in axes[axis]]
                for label in _labels(want):
                    if label not in known:
                        raise CaseError(file, sweep, f"exclude[{i}].when.{axis}", f"no choice labelled {label!r}; labels: {known}")
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
    for combo in itertools.product(*axes.values()):
        labels = {axis: choice.label for axis, choice in zip(axes, combo)}
        if _excluded(labels, rules):
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
            continue  # a kernel larger than its padded input: cases/errors.yaml holds those contracts
        built.append((combo, parsed))

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
    return out


def _fits(case: Case) -> bool:
    spec = ops.get(case.op)
    return ops.kernel_fits(spec, {o.name: operand_shape(case, o.name) for o in spec.operands}, case.attrs)
