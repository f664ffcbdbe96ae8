"""Property-based search: draw legal configurations of every op and look for disagreements.

The property: for every configuration the reference accepts, ``run_case`` passes,
unless the configuration meets the condition of a known divergence
(``cases/known_divergences.yaml``), in which case the example is rejected, by
exactly the conditions the registry itself uses (``Outcome.applicable``), never by
exclusion code of its own.

Each drawn configuration is a plain dict in the registry's case schema::

    {name: conv2d_<hash>, op: conv2d, attrs: {strides: 1, padding: VALID},
     inputs: {input:   {layout: NHWC, generate: {dist: normal, shape: [1, 1, 1, 1], seed: 0}},
              filters: {layout: HWIO, generate: {dist: normal, shape: [1, 1, 1, 1], seed: 0}}},
     dtypes: [float32], tags: [found]}

and the case under test is ``harness.registry.cases.parse_case`` of that dict, so what is
tested is exactly what a failure prints: the outcome's report, then the dict as a
``cases:`` document ready to paste into a file under ``cases/``.

Every choice is drawn simplest first (batch 1, size 1, kernel 1, stride 1, no
dilation, VALID, NHWC / NWC, float32, seed 0), so Hypothesis shrinks a failure
towards the smallest configuration that still fails.

Command line (``make fuzz``)::

    python -m harness.selftest.search [--minutes M] [--max-examples N] [--op OP ...] [--seed S] [--save DIR]

searches each op in turn, sharing the time budget, and writes each shrunk failure
to ``DIR/<op>_<hash>.yaml`` (a valid registry file). Exit status: 0 nothing found,
1 a failure was found, 2 wrong usage.

No TensorFlow here: ``run_case`` calls it through ``harness.tf.isolation``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from harness import ops
from harness.check.runner import Outcome, run_case
from harness.conv.padding import transpose_output_sizes, window
from harness.registry import divergences, error_inputs
from harness.registry.cases import DIVERGENCES_FILE, Case, parse_case
from harness.registry.divergences import Divergence
from harness.tf.environment import Environment, describe

ROOT = Path(__file__).resolve().parents[2]  # the repository (harness/selftest/search.py)
FOUND_DIR = "cases/found"  # where `make fuzz` saves failures; also the file name a drawn case is parsed under
FOUND_TAG = "found"

# Size limits of a drawn configuration (every range starts at its simplest value).
BATCH_MAX = 2
SPATIAL_MAX = 9
CHANNELS_MAX = 4
KERNEL_MAX = 5
STRIDE_MAX = 3
DILATION_MAX = 3
PAD_MAX = 3
MULTIPLIER_MAX = 3  # depthwise channel multiplier
OUT_CHANNELS_MAX = 4  # output channels, and the separable pointwise width
SEED_MAX = 2**31 - 1

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")  # simplest first

# Spellings of a strides / dilations value, for spatial values v (one per spatial axis):
#   omitted: the argument is left out (only when every v is 1 and the argument has a default)
#   int:     v            one:  [v]          (both only when every v is equal)
#   spatial: [v_h, v_w]   full: [1, v_h, v_w, 1] in data_format order (batch and channel entries 1)
SPELLINGS = ("omitted", "int", "one", "spatial", "full")
INVALID_SHARE = 0.25  # the share of drawn configurations that are malformed (in quarters)
DEFAULT_CHUNK = 100  # examples per Hypothesis run in the command-line search (the budget is checked between runs)
DEFAULT_MINUTES = 5.0


@dataclass(frozen=True)
class Choices:
    """How a configuration of one op is drawn: its argument forms (``OpSpec.forms``), simplest spelling first, and
    the dtypes. ``stride_arg`` is None for an op without a stride argument (atrous_conv2d)."""

    stride_arg: str | None
    stride_spellings: tuple[str, ...]
    dilation_arg: str
    dilation_spellings: tuple[str, ...]
    explicit_padding: bool
    dtypes: tuple[str, ...]
    output_shape_spatial: bool = True  # a transposed op's output_shape may be the spatial sizes alone
    stride_with_dilation: bool = True  # False: strides > 1 are drawn only without dilations > 1 (tf.nn.convolution)


def choices(op: str, env: Environment | None = None) -> Choices:
    """The ``Choices`` of ``op``, from its spec; int32 is drawn only where TensorFlow has a kernel for it here
    (``env``'s measured kernel paths; without ``env``, floats only)."""
    spec = ops.get(op)
    forms, fmt = spec.forms, spec.formats[0]
    int32 = env is not None and env.has_kernels(spec.tf_kernels, "int32") is True
    return Choices(
        forms.stride_arg,
        forms.spellings("stride", fmt, optional=forms.stride_default is not None) if forms.stride_arg else (),
        forms.dilation_arg,
        forms.spellings("dilation", fmt, optional=forms.dilation_arg not in spec.required),
        forms.explicit_padding,
        FLOAT_DTYPES + (("int32",) if int32 else ()),
        forms.output_shape_spatial,
        forms.stride_with_dilation,
    )


_OMIT = object()  # a spelled value meaning "leave the argument out"


def spell(values: Sequence[int], fmt: str, spelling: str):
    """The ``strides`` / ``dilations`` value for spatial ``values`` (H, W order) in one spelling.

    Returns ``_OMIT`` for "omitted". Raises ValueError when the spelling cannot express the values.
    """
    values = [int(v) for v in values]
    same = len(set(values)) == 1
    if spelling == "omitted" and all(v == 1 for v in values):
        return _OMIT
    if spelling == "int" and same:
        return values[0]
    if spelling == "one" and same:
        return [values[0]]
    if spelling == "spatial":
        return list(values)
    if spelling == "full":
        spatial = iter(values)
        return [1 if c in "NC" else next(spatial) for c in fmt]
    raise ValueError(f"spell: argument 'spelling'={spelling!r} cannot express {values} (known: {', '.join(SPELLINGS)})")


def _can_spell(values: Sequence[int], spelling: str) -> bool:
    try:
        spell(values, "N" + "H" * len(values) + "C", spelling)
    except ValueError:
        return False
    return True


def _fits(op: str, size: int, kernel: int, stride: int, dilation: int, pad) -> bool:
    """Whether the reference's window arithmetic accepts this axis (the dilated kernel fits the padded input)."""
    try:
        window(op, size, kernel, stride, dilation, pad)
    except ValueError:
        return False
    return True


def _fitting_kernel(op: str, size: int, kernel: int, stride: int, dilation: int, pad) -> int:
    """The largest kernel up to ``kernel`` whose dilated extent fits the padded input (kernel 1 always does)."""
    return max(k for k in range(1, kernel + 1) if _fits(op, size, k, stride, dilation, pad))


def _reachable_pads(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]) -> tuple[int, int]:
    """``pads``, reduced (the larger side first) until some non-empty transposed-convolution output size maps onto
    ``size`` (an empty output is legal, but the search looks for wrong values).

    (0, 0) always qualifies: VALID reaches every input size.
    """
    before, after = pads
    while not any(transpose_output_sizes(size, kernel, stride, dilation, (before, after))):
        before, after = (before - 1, after) if before >= after else (before, after - 1)
    return before, after


def _spelling(draw, spellings: Sequence[str], values: Sequence[int]) -> str:
    """A spelling of ``values``: the drawn one if it can express them, else the next one that can.

    Always one draw from a fixed range, so that shrinking compares configurations with the same
    number of choices (Hypothesis prefers fewer choices before smaller ones).
    """
    i = draw(st.integers(0, len(spellings) - 1))
    return next(s for s in (*spellings[i:], *spellings[:i]) if _can_spell(values, s))


def _shape(layout: str, sizes: dict[str, int]) -> list[int]:
    return [sizes[c] for c in layout]


def case_name(op: str, content: dict) -> str:
    """``<op>_<8 hex digits>``: a hash of everything but the name, so equal configurations share a name."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return f"{op}_{digest}"


def found_file(config: dict) -> str:
    """The registry file a drawn configuration belongs in: ``cases/found/<name>.yaml``."""
    return f"{FOUND_DIR}/{config['name']}.yaml"


@st.composite
def configs(draw, op: str, env: Environment | None = None) -> dict:
    """A legal configuration of ``op`` as a case dict in the registry's schema (see the module docstring).

    Shapes: batch 1-2, spatial 1-9, channels 1-4, kernels 1-5; strides 1-3, dilations 1-3 in
    every spelling the reference accepts; VALID, SAME or explicit pairs (0-3 each side) where the op
    takes them; NHWC / NCHW (NWC / NCW); one dtype. Kernels (and, for conv2d_transpose, explicit
    pads and the output_shape) are drawn only among the values the padding module accepts, so every
    configuration is legal without filtering.
    """
    spec = ops.get(op)
    forms = choices(spec.name, env)
    transpose = spec.kind == "transposed"
    dtype = draw(st.sampled_from(forms.dtypes))
    fmt = draw(st.sampled_from(spec.formats))
    axes = [c for c in fmt if c not in "NC"]  # spatial letters, H before W
    batch = draw(st.integers(1, BATCH_MAX))
    channels = draw(st.integers(1, CHANNELS_MAX))
    sizes = [draw(st.integers(1, SPATIAL_MAX)) for _ in axes]
    strides = [draw(st.integers(1, STRIDE_MAX)) if forms.stride_arg else 1 for _ in axes]
    dilations = [draw(st.integers(1, DILATION_MAX)) for _ in axes]
    if not forms.stride_with_dilation and max(strides) > 1:
        dilations = [1] * len(axes)
    if not {"spatial", "full"} & set(forms.dilation_spellings):  # one value for every axis (a rate)
        dilations = [dilations[0]] * len(axes)
    padding_kind = draw(st.sampled_from(("VALID", "SAME", "explicit") if forms.explicit_padding else ("VALID", "SAME")))

    if transpose:
        # The input is the forward convolution's output: any kernel, then pads for which some output size maps onto it.
        kernels = [draw(st.integers(1, KERNEL_MAX)) for _ in axes]
        if padding_kind == "explicit":
            pads = [
                _reachable_pads(n, k, s, d, (draw(st.integers(0, PAD_MAX)), draw(st.integers(0, PAD_MAX))))
                for n, k, s, d in zip(sizes, kernels, strides, dilations)
            ]
        else:
            pads = [padding_kind] * len(axes)
    else:
        pads = (
            [(draw(st.integers(0, PAD_MAX)), draw(st.integers(0, PAD_MAX))) for _ in axes]
            if padding_kind == "explicit"
            else [padding_kind] * len(axes)
        )
        kernels = [
            _fitting_kernel(spec.name, n, draw(st.integers(1, KERNEL_MAX)), s, d, p)
            for n, s, d, p in zip(sizes, strides, dilations, pads)
        ]
    if padding_kind == "explicit":
        pad_of = dict(zip(axes, pads))
        padding = [list(pad_of.get(c, (0, 0))) for c in fmt]  # one pair per dimension, in data_format order
    else:
        padding = padding_kind

    attrs: dict = {}
    if transpose:
        out_sizes = []
        for n, k, s, d, p in zip(sizes, kernels, strides, dilations, pads):
            accepted = [v for v in transpose_output_sizes(n, k, s, d, p) if v]  # at most `stride` sizes
            out_sizes.append(accepted[min(draw(st.integers(0, STRIDE_MAX - 1)), len(accepted) - 1)])
    if forms.stride_arg:
        stride_value = spell(strides, fmt, _spelling(draw, forms.stride_spellings, strides))
    dilation_value = spell(dilations, fmt, _spelling(draw, forms.dilation_spellings, dilations))

    letters = {"N": batch, "C": channels, **dict(zip(axes, sizes)), **{"k" + a: k for a, k in zip(axes, kernels)}}
    out_channels = draw(st.integers(1, OUT_CHANNELS_MAX)) if any("O" in o.layout for o in spec.operands) else None
    multiplier = draw(st.integers(1, MULTIPLIER_MAX)) if any("M" in o.layout for o in spec.operands) else None
    for name in spec.attrs:  # signature order
        if name == "output_shape":
            full = {"N": batch, "C": out_channels, **dict(zip(axes, out_sizes))}
            spellings = ("full", "spatial") if forms.output_shape_spatial else ("full",)
            attrs[name] = _shape(fmt, full) if draw(st.sampled_from(spellings)) == "full" else out_sizes
        elif name == forms.stride_arg and stride_value is not _OMIT:
            attrs[name] = stride_value
        elif name == "padding":
            attrs[name] = padding
        elif name == "data_format" and fmt != spec.formats[0]:
            attrs[name] = fmt
        elif name == forms.dilation_arg and dilation_value is not _OMIT:
            attrs[name] = dilation_value

    inputs = {}
    shape: Sequence[int | None]  # None: O or M of an op without them, never in an operand's layout
    for operand in spec.operands:
        if operand.kind == "data":
            layout, shape = fmt, _shape(fmt, letters)
        elif operand.name == "pointwise_filter":  # [1, 1, in_channels * multiplier, width]
            layout, shape = operand.layout, [1, 1, channels * multiplier, out_channels]
        else:
            sizes_of = {
                "D": letters.get("kD"),
                "H": letters.get("kH"),
                "W": letters.get("kW"),
                "I": channels,
                "O": out_channels,
                "M": multiplier,
            }
            layout, shape = operand.layout, [sizes_of[c] for c in operand.layout]
        generate = {
            "dist": "integers" if dtype == "int32" else "normal",
            "shape": shape,
            "seed": draw(st.integers(0, SEED_MAX)),
        }
        inputs[operand.name] = {"layout": layout, "generate": generate}

    content = {"op": spec.name, "attrs": attrs, "inputs": inputs, "dtypes": [dtype], "tags": [FOUND_TAG]}
    config = {"name": case_name(spec.name, content), **content}
    shapes = {name: tuple(t["generate"]["shape"]) for name, t in inputs.items()}
    if not ops.kernel_fits(spec, shapes, attrs):  # a bug in this strategy, not a finding
        raise AssertionError(f"configs({op!r}) drew an illegal configuration: {config}")
    return config


@st.composite
def invalid_configs(
    draw, op: str, env: Environment | None = None, classes: Sequence[str] = error_inputs.CLASSES
) -> dict:
    """A drawn configuration made malformed by one of its generated error inputs (``harness.registry.error_inputs``:
    a wrong rank, an empty axis, a kernel beyond the input, ...), with ``reference_decides``: the reference's
    ValueError makes it an error contract that TensorFlow must meet with an error, its value a value case."""
    base = draw(configs(op, env))
    spec = ops.get(op)
    items = [item for cls in classes for item in error_inputs.GENERATORS[cls](spec, base)]
    item = draw(st.sampled_from(items))
    content = {k: v for k, v in item.case.items() if k != "name"}
    content.update(reference_decides=True, tags=[FOUND_TAG, "error", item.cls])
    return {"name": case_name(spec.name, content), **content}


def drawn_configs(
    op: str,
    env: Environment | None = None,
    invalid_share: float = INVALID_SHARE,
    invalid_classes: Sequence[str] = error_inputs.CLASSES,
):
    """``configs(op)``, and with probability ``invalid_share`` (in quarters) an ``invalid_configs(op)`` of
    ``invalid_classes`` instead. A failure shrinks towards a valid configuration when one fails as well."""
    quarters = round(invalid_share * 4)
    if quarters <= 0:
        return configs(op, env)
    return st.integers(0, 3).flatmap(
        lambda k: invalid_configs(op, env, invalid_classes) if k >= 4 - quarters else configs(op, env)
    )


# --- the property -------------------------------------------------------------------------


def found_document(config: dict, origin: str, env: Environment) -> dict:
    """The ``cases:`` document of one configuration, with a description saying where it was found."""
    mode = "on" if env.onednn else "off"
    where = f" on {env.cpu.model}" if env.cpu else ""
    isa = f", oneDNN ISA {env.onednn_isa}" if env.onednn_isa else ""
    cap = f" (ONEDNN_MAX_CPU_ISA={env.isa_cap})" if env.isa_cap else ""
    description = (
        f"Found by the property search ({origin}) with TensorFlow {env.tensorflow_version}, "
        f"oneDNN {mode}{where}{isa}{cap}."
    )
    return {
        "cases": [
            {"name": config["name"], "description": description, **{k: v for k, v in config.items() if k != "name"}}
        ]
    }


def to_yaml(document: dict) -> str:
    """YAML text that ``yaml.safe_load`` reads back to ``document`` (lists of numbers inline)."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)


PASTE_HINT = "Paste this case into a file under cases/ (e.g. {file}) to keep it as a regression case:"


class CaseFailure(AssertionError):
    """The property failed for one configuration.

    ``str()`` is the outcome's report, then the case as a ready-to-paste ``cases:`` YAML document.
    """

    def __init__(self, headline: str, config: dict, document: dict, outcome: Outcome | None = None):
        self.config, self.document, self.outcome = config, document, outcome
        self.yaml = to_yaml(document)
        super().__init__(f"{headline}\n\n{PASTE_HINT.format(file=found_file(config))}\n\n{self.yaml}")


class CaseCrash(CaseFailure):
    """``run_case`` itself raised (e.g. a reference bug other than ValueError): a failure of its own kind."""


@dataclass
class Tally:
    """What one search saw, per distinct configuration (the name is a content hash)."""

    run: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    divergences: Counter = field(default_factory=Counter)  # known divergence id -> configurations it excluded

    def record(self, config: dict, outcome: Outcome | None) -> None:
        name = config["name"]
        if name in self.run:
            return
        self.run.add(name)
        if outcome is None or (outcome.status == "failed" and not outcome.applicable):
            self.failed.add(name)
        elif outcome.applicable:
            self.rejected.add(name)
            self.divergences.update(outcome.applicable)


def check(
    config: dict, known: Sequence[Divergence], env: Environment, *, origin: str, tally: Tally | None = None
) -> Outcome:
    """The property for one drawn configuration.

    Rejects the example (``hypothesis.reject``) when a known divergence applies, raises
    ``CaseFailure`` when the case fails, and returns the outcome otherwise.
    """
    case: Case = parse_case(found_file(config), config, 0)
    try:
        outcome = run_case(case, case.dtypes[0], known, env)
    except Exception as exc:  # run_case reports ValueError itself; anything else is a bug worth a case
        if tally is not None:
            tally.record(config, None)
        headline = f"{case.id}[{case.dtypes[0]}]: run_case raised {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        raise CaseCrash(headline, config, found_document(config, origin, env)) from exc
    if tally is not None:
        tally.record(config, outcome)
    if outcome.applicable:
        reject()  # the registry's own conditions: this configuration is a known divergence
    if outcome.status == "failed":
        raise CaseFailure(outcome.report(), config, found_document(config, origin, env), outcome)
    return outcome


def property_test(
    op: str,
    known: Sequence[Divergence],
    env: Environment,
    *,
    origin: str,
    tally: Tally | None = None,
    invalid_share: float = INVALID_SHARE,
    invalid_classes: Sequence[str] = error_inputs.CLASSES,
) -> Callable[[], None]:
    """A Hypothesis test of ``check`` over ``drawn_configs(op)`` (a share of them malformed); apply ``settings`` /
    ``seed`` to it, then call it."""
    strategy = drawn_configs(ops.get(op).name, env, invalid_share, invalid_classes)

    @given(strategy)
    def search_op(config: dict) -> None:
        check(config, known, env, origin=origin, tally=tally)

    search_op.__name__ = search_op.__qualname__ = f"search_{op}"
    return search_op


def search_settings(max_examples: int, *, derandomize: bool) -> settings:
    """Hypothesis settings for the search: no example database (failures are saved as YAML), no deadline.

    filter_too_much is suppressed because rejections are known divergences, an expected outcome
    that the summary counts, not a strategy that filters. No explain phase: it re-runs a shrunk
    failure hundreds of times (each a TensorFlow call) to annotate it, and the printed case is the answer.
    """
    return settings(
        max_examples=max_examples,
        derandomize=derandomize,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
        print_blob=False,
    )


# --- the command line ---------------------------------------------------------------------


@dataclass
class OpResult:
    op: str
    tally: Tally
    seconds: float
    failures: list[CaseFailure] = field(default_factory=list)


def _chunk_seed(run_seed: int, op: str, chunk: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{run_seed}/{op}/{chunk}".encode()).digest()[:8], "big")


def _failures_of(exc: BaseException) -> list[CaseFailure]:
    if isinstance(exc, CaseFailure):
        return [exc]
    group = getattr(exc, "exceptions", None)
    if isinstance(group, tuple):  # an exception group: Hypothesis found distinct failures
        return [f for e in group for f in _failures_of(e)]
    return []


def search_op(
    op: str,
    known: Sequence[Divergence],
    env: Environment,
    *,
    origin: str,
    run_seed: int,
    seconds: float | None,
    max_examples: int | None,
    chunk: int = DEFAULT_CHUNK,
    invalid_share: float = INVALID_SHARE,
) -> OpResult:
    """Search one op until the time or example budget is spent or a failure is found (then shrunk)."""
    start, tally, index, remaining = time.monotonic(), Tally(), 0, max_examples
    while (remaining is None or remaining > 0) and (seconds is None or time.monotonic() - start < seconds):
        # Each run is a fresh Hypothesis run of n examples that reach a verdict (rejected ones come on top).
        n = chunk if remaining is None else min(chunk, remaining)
        test = property_test(op, known, env, origin=origin, tally=tally, invalid_share=invalid_share)
        run = seed(_chunk_seed(run_seed, op, index))(
            settings(search_settings(n, derandomize=False), verbosity=Verbosity.quiet)(test)
        )
        index += 1
        remaining = None if remaining is None else remaining - n
        try:
            run()
        except Unsatisfiable:  # every example of this chunk was a known divergence
            continue
        except Exception as exc:
            failures = _failures_of(exc)
            if not failures:
                raise
            return OpResult(op, tally, time.monotonic() - start, failures)
    return OpResult(op, tally, time.monotonic() - start)


def save(failure: CaseFailure, directory: Path) -> Path:
    """Write the failure's case document to ``directory/<name>.yaml`` (a registry file); returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{failure.config['name']}.yaml"
    header = (
        "# Written by `make fuzz` (python -m harness.selftest.search): a configuration on which the reference and\n"
        "# TensorFlow (or a textbook formulation) disagree. See cases/found/README.md for what to do with it.\n"
    )
    path.write_text(header + failure.yaml, encoding="utf-8")
    return path


def _positive(kind: type, what: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}")
        return value

    return parse


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value not in (0.0, 0.25, 0.5, 0.75, 1.0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of 0, 0.25, 0.5, 0.75, 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.selftest.search",
        description="Property-based search for configurations on which TensorFlow and the reference disagree.",
    )
    parser.add_argument(
        "--minutes",
        type=_positive(float, "number of minutes"),
        help=f"time budget shared by the ops (default {DEFAULT_MINUTES:g} unless --max-examples is given)",
    )
    parser.add_argument(
        "--max-examples",
        type=_positive(int, "integer"),
        help="Hypothesis examples per op (those rejected as known divergences come on top)",
    )
    parser.add_argument(
        "--op",
        action="extend",
        nargs="+",
        choices=list(ops.OPS),
        metavar="OP",
        help=f"ops to search (default: all of {', '.join(ops.OPS)})",
    )
    parser.add_argument(
        "--invalid-share",
        type=_share,
        default=INVALID_SHARE,
        help=f"the share of drawn configurations made malformed (0, 0.25, 0.5, 0.75 or 1; default {INVALID_SHARE})",
    )
    parser.add_argument("--seed", type=int, help="seed of the search (default: random; printed, to re-run)")
    parser.add_argument("--save", type=Path, metavar="DIR", help="write each failure to DIR/<op>_<hash>.yaml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.save is not None and args.save.exists() and not args.save.is_dir():
        parser.error(f"argument --save: {str(args.save)!r} exists and is not a directory")
    known, errors = divergences.load(ROOT / "cases" / DIVERGENCES_FILE, ROOT)
    if errors:
        print(
            f"error: cannot read the known divergences ({len(errors)} bad entries); first: {errors[0]}", file=sys.stderr
        )
        return 2
    minutes = args.minutes if args.minutes is not None else (None if args.max_examples else DEFAULT_MINUTES)
    op_names = list(dict.fromkeys(args.op or ops.OPS))
    run_seed = (
        args.seed
        if args.seed is not None
        else int.from_bytes(hashlib.sha256(str(time.time_ns()).encode()).digest()[:4], "big")
    )
    env = Environment.current()
    origin = f"python -m harness.selftest.search --seed {run_seed}, {datetime.date.today().isoformat()}"
    print("\n".join(describe(env)))
    print(
        f"property search: TensorFlow {env.tensorflow_version}  oneDNN={'on' if env.onednn else 'off'}  "
        f"seed={run_seed}  budget={f'{minutes:g} min' if minutes else 'none'}  "
        f"max-examples={args.max_examples or 'none'}  invalid-share={args.invalid_share:g}  ops={' '.join(op_names)}",
        flush=True,
    )

    deadline = None if minutes is None else time.monotonic() + minutes * 60
    results: list[OpResult] = []
    for i, op in enumerate(op_names):
        # Each op gets an equal share of what is left, so time an op does not use goes to the next ones.
        share = None if deadline is None else max(0.0, deadline - time.monotonic()) / (len(op_names) - i)
        result = search_op(
            op,
            known,
            env,
            origin=origin,
            run_seed=run_seed,
            seconds=share,
            max_examples=args.max_examples,
            invalid_share=args.invalid_share,
        )
        results.append(result)
        t = result.tally
        print(
            f"{op}: {len(t.run)} configurations, {len(t.rejected)} rejected as known divergences, "
            f"{len(result.failures)} failure(s) ({result.seconds:.1f} s)",
            flush=True,
        )
        for failure in result.failures:
            print(f"\nFAILED {op}:\n{failure}", flush=True)
            if args.save is not None:
                print(f"saved: {save(failure, args.save)}", flush=True)

    print(f"\n{'op':<20}{'examples':>10}{'rejected':>10}{'failures':>10}")
    for r in results:
        print(f"{r.op:<20}{len(r.tally.run):>10}{len(r.tally.rejected):>10}{len(r.failures):>10}")
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.tally.divergences)
    print(
        f"{'total':<20}{sum(len(r.tally.run) for r in results):>10}"
        f"{sum(len(r.tally.rejected) for r in results):>10}{sum(len(r.failures) for r in results):>10}"
    )
    if total:
        print("known divergences excluded (cases/known_divergences.yaml):")
        for did, n in sorted(total.items()):
            print(f"  {did:<50}{n:>6}")
    failed = sum(len(r.failures) for r in results)
    print(f"{failed} failure(s); re-run with --seed {run_seed}" if failed else "no failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
