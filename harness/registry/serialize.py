"""Writing a case back out: any loaded case (sweep-expanded ones too) as a ready-to-paste ``cases:`` document."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import yaml

from harness.registry.cases import DISTRIBUTIONS, TF_KERNEL_KEYS, Case, ExpectError, Generator, TensorSpec


def _plain(value: Any) -> Any:
    """Attribute values as plain YAML types: tuples and arrays become lists, NumPy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _number(v: float) -> int | float:
    """An int where the float64 value is an integer (exactly), the float itself otherwise (repr round-trips)."""
    if np.isfinite(v) and v == int(v) and abs(v) < 2**53 and not (v == 0 and np.signbit(v)):
        return int(v)
    return float(v)


def _literal_list(arr: np.ndarray) -> list | int | float:
    """A float64 literal as nested lists of ints / floats, one level per axis (a number for a 0-d array)."""
    if arr.ndim == 0:  # pragma: no cover - parse_case only makes literals from lists
        return _number(float(arr))
    return [_literal_list(row) if arr.ndim > 1 else _number(float(row)) for row in arr]


def _generator_dict(gen: Generator) -> dict:
    """``{dist, shape, seed, <params that differ from the distribution's defaults>}``; the seed is always explicit
    because the default one depends on the file and case names."""
    defaults, _ = DISTRIBUTIONS[gen.dist]
    params = {k: _plain(v) for k, v in gen.params.items() if k not in defaults or v != defaults[k]}
    return {"dist": gen.dist, "shape": list(gen.shape), "seed": int(gen.seed), **params}


def tensor_to_dict(t: TensorSpec) -> dict:
    """A TensorSpec back in the YAML schema: layout, value or generate, and kernel / raw when not the default."""
    out: dict[str, Any] = {"layout": t.layout}
    if t.kernel != "correlation":
        out["kernel"] = t.kernel
    if t.raw:
        out["raw"] = True
    if t.literal is not None:
        out["value"] = _literal_list(t.literal)
    elif t.generator is not None:
        out["generate"] = _generator_dict(t.generator)
    else:
        raise ValueError(f"TensorSpec (layout {t.layout!r}) has neither a literal nor a generator")
    if t.special is not None:
        out["special"] = t.special.record()
    return out


def _expect_error_dict(e: ExpectError) -> dict:
    modes = set(e.tensorflow.values())
    tf_error = next(iter(modes)) if len(modes) == 1 else {key: e.tensorflow[key] for key in TF_KERNEL_KEYS}
    out: dict[str, Any] = {"reference": e.reference, "tensorflow": tf_error}
    if e.match is not None:
        out["match"] = e.match if isinstance(e.match, str) else list(e.match)
    if e.message is not None:
        out["message"] = e.message
    return out


def case_to_dict(case: Case) -> dict:
    """A parsed case as a raw mapping in the YAML case schema, such that ``parse_case(case.file, d, 0)`` gives
    the same case back (except ``sweep``, which is not a field of the schema).

    Fields equal to their defaults are left out (kernel: correlation, raw: false, empty tags and description,
    default generator parameters); ``dtypes`` and every generator's seed are always written.
    """
    out: dict[str, Any] = {"name": case.name}
    if case.description:
        out["description"] = case.description
    out["op"] = case.op
    out["attrs"] = _plain(case.attrs)
    out["inputs"] = {name: tensor_to_dict(t) for name, t in case.inputs.items()}
    if case.expected is not None:
        out["expected"] = tensor_to_dict(case.expected)
    out["dtypes"] = list(case.dtypes)
    if case.tolerance is not None:
        tol = case.tolerance
        out["tolerance"] = {
            "reason": tol.reason,
            **({"c": _plain(tol.c)} if tol.c is not None else {}),
            **({"atol": float(tol.atol)} if tol.atol else {}),
        }
    if case.tags:
        out["tags"] = list(case.tags)
    if case.expect_error is not None:
        out["expect_error"] = _expect_error_dict(case.expect_error)
    if case.gradients:
        out["gradients"] = list(case.gradients)
    if case.block_bytes is not None:
        out["block_bytes"] = case.block_bytes
    if case.reference_decides:
        out["reference_decides"] = True
    if case.source is not None:
        out["source"] = dataclasses.asdict(case.source)
    if case.quantization is not None:
        out["quantization"] = case.quantization.record()
    return out


class _CaseDumper(yaml.SafeDumper):
    """SafeDumper for case documents: block strings for descriptions, flow style where marked, no aliases."""

    def ignore_aliases(self, data):
        return True


class _FlowList(list):
    """A list written in flow style: ``[1, 2, 2, 1]``."""


class _FlowDict(dict):
    """A mapping written in flow style: ``{dist: normal, shape: [1, 5, 5, 2], seed: 7}``."""


def _str_representer(dumper: yaml.SafeDumper, text: str):
    # Folded (>) for one paragraph ending in a newline (what `description: >` reads as), literal (|) for several
    # lines; PyYAML falls back to quoting when a block style cannot hold the text exactly.
    style = None
    if "\n" in text.rstrip("\n"):
        style = "|"
    elif text.endswith("\n") or len(text) > 80:
        style = ">"
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_CaseDumper.add_representer(str, _str_representer)
_CaseDumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_CaseDumper.add_representer(_FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))

FLOW_WIDTH = 96  # a mapping or list whose flow form is at most this long is written on one line


def _flow_length(node: Any) -> int:
    """About how long ``node`` is in flow style (cheaper than dumping it; only decides the style)."""
    if isinstance(node, dict):
        return 2 + sum(len(str(k)) + 2 + _flow_length(v) + 2 for k, v in node.items())
    if isinstance(node, list):
        return 2 + sum(_flow_length(v) + 2 for v in node)
    return len(node) + 2 * (not node.isidentifier()) if isinstance(node, str) else len(str(node))


def _mark_flow(node: Any, depth: int = 0) -> Any:
    """Mark every list / mapping (below the case level) whose flow form is short, and every list of scalars."""
    if (
        isinstance(node, (list, dict))
        and depth >= 2
        and (
            _flow_length(node) <= FLOW_WIDTH
            or (isinstance(node, list) and not any(isinstance(v, (list, dict)) for v in node))
        )
    ):
        return _FlowList(node) if isinstance(node, list) else _FlowDict(node)
    if isinstance(node, list):
        return [_mark_flow(v, depth + 1) for v in node]
    if isinstance(node, dict):
        return {k: _mark_flow(v, depth + 1) for k, v in node.items()}
    return node


def yaml_text(document: dict) -> str:
    """YAML for a ``cases:`` document, read back by ``yaml.safe_load`` to ``document``.

    Each case is a block mapping; below it, anything whose flow form fits on a line is written inline (attrs,
    operands, generators, shapes), and longer literals are written one innermost row per line.
    """
    return yaml.dump(
        _mark_flow(document),
        Dumper=_CaseDumper,
        sort_keys=False,
        default_flow_style=False,
        width=110,
        allow_unicode=True,
    )


def case_yaml(case: Case) -> str:
    """A ready-to-paste ``cases:`` document holding just ``case``."""
    return yaml_text({"cases": [case_to_dict(case)]})
