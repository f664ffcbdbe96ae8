"""The ``harness`` command (also ``python -m harness``): run, list, show, reproduce, scaffold and compare cases.

Subcommands::

    harness verify  [FILES] [--op OP] [--dtype DT] [--tag TAG] [-n N] [--onednn 0|1] [--onednn-isa CAP] [--full]
                    [--tensorflow VERSION] [--reports DIR] [--cases DIR]
                    [--shipped cases|divergences|none] [--shard I/N] [--memory-budget SIZE] [-- PYTEST_ARGS]
    harness init    [DIR] [--install CMD] [--force]
    harness machine [--json] [--record FILE] [--refresh] [--caps-below] [--onednn 0|1] [--onednn-isa CAP]
    harness list    [FILES] [--op OP] [--dtype DT] [--tag TAG] [--ids]
    harness show    CASE_ID [--dtype DT]
    harness repro   CASE_ID [--dtype DT] [-o FILE]
    harness new     OP [--name NAME] [--shape OPERAND=DIMS] [--attr KEY=VALUE] [--strides ..] [--padding ..] ...
    harness compare A B [C ...] [--growth F] [--limit N] [--json]    (results.json files or their directories)
    harness backends [SPEC ...] [--install]
    harness export  --npz DIR [FILES] [--op OP] [--dtype DT] [--tag TAG]
    harness check-npz DIR [--reports DIR] [--rounding R]
    harness report  DIR
    harness report  --merge DIR [DIR ...] [--out DIR] [--allow-different-registries]
    harness matrix  [--versions V,V,..] [--nightly] [--onednn 1,0] [--out DIR] [--rerun] [--suggest] [--clean]
    harness matrix  --merge DIR [DIR ...] [--out DIR] [--allow-different-registries] [--fail-on-new]

``compare`` with three or more runs prints one table across them, then each consecutive pair as two runs do;
``report --merge`` makes one run of several (the shares of ``make verify SHARD=I/N``, runs from other machines),
checks they ran the same registry, and runs the stale-divergence check on the union.

A CASE_ID is what pytest and the reports print: ``cases/seeds.yaml::conv2d_same_2x5x5[float32]``; the file
part, the ``[dtype]`` part or both may be left out when the rest is unambiguous.

Wrong use prints ``harness: error: ...`` and exits with 2; no subcommand prints a traceback for it.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from harness import atomic, backends, exchange, ops, starter
from harness.check.budget import OverBudget
from harness.check.runner import REFERENCE, run_case
from harness.conv import layouts
from harness.conv.dtypes import DTYPES
from harness.conv.quantized import ROUNDINGS
from harness.registry import divergences, location, scaffold
from harness.registry.cases import Case, CaseError, operand_array, operand_shape, split_case_id
from harness.registry.loader import load_file
from harness.registry.quantization import SCHEMES
from harness.reports import compare, merge, report, repro, results
from harness.tf import environment, machine, versions

CASES_DIR = location.FOLDER
MERGED_REPORTS = "reports/merged"  # where `harness report --merge` writes by default


class UsageError(Exception):
    """Wrong use of the command: the message is printed as ``harness: error: ...`` and the exit status is 2."""


# --- finding cases -------------------------------------------------------------------------


def repository_root(start: Path | None = None) -> Path:
    """The directory the user's cases are named from: the nearest of the current directory and its parents that
    holds a ``cases/`` folder, else the current directory (where only the shipped registry is read)."""
    start = (start or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        if (directory / CASES_DIR).is_dir():
            return directory
    return start


def registry_at(root: Path) -> location.Registry:
    """The shipped registry and, when ``root`` has one, the user's ``cases/`` folder beside it."""
    try:
        return location.registry(root, location.default_folders(root), shipped="cases")
    except location.RegistryError as exc:
        raise UsageError(str(exc)) from None


def case_files(reg: location.Registry, files: Sequence[str] = ()) -> list[Path]:
    """The case files named (files or directories), default every case file of the registry."""
    if not files:
        return reg.files()
    paths = []
    for name in files:
        path = Path(name)
        if path.is_dir():
            paths += location.case_files_under(path)
        elif path.is_file():
            paths.append(path)
        else:
            raise UsageError(f"no such case file or directory: {name}")
    return paths


def file_root(reg: location.Registry, root: Path, path: Path) -> Path:
    """The directory ``path``'s case ids are named from: its registry folder's root, else ``root``."""
    folder = reg.folder_of(path)
    return folder.root if folder is not None else root


def load_entries(root: Path, files: Sequence[str] = ()) -> list[Case | CaseError]:
    reg = registry_at(root)
    return [entry for path in case_files(reg, files) for entry in load_file(path, file_root(reg, root, path))]


def known_divergences(root: Path) -> list[divergences.Divergence]:
    """The forward known divergences that apply to cases run from ``root``: the shipped ones and the user's."""
    return divergences.load_registry(registry_at(root), "forward")[0]


# What a case runs at: an array dtype, or a quantized case's scheme (harness.registry.quantization).
CASE_DTYPES = (*DTYPES, *SCHEMES)


def find_case(case_id: str, root: Path) -> tuple[Case, str | None]:
    """The case a CASE_ID names, and its dtype when the id gives one; UsageError when none or several match."""
    file, name, dtype = split_case_id(case_id)
    if not name:
        raise UsageError(f"CASE_ID {case_id!r} has no case name (expected FILE::NAME[DTYPE], NAME[DTYPE] or NAME)")
    if dtype is not None and dtype not in CASE_DTYPES:
        raise UsageError(f"CASE_ID {case_id!r}: unknown dtype {dtype!r}; expected one of {', '.join(CASE_DTYPES)}")
    if file is not None:
        # the user's file of that name, else the shipped registry's (cases/seeds.yaml from any directory)
        candidates = [Path(file)] if Path(file).is_absolute() else [root / file, location.shipped_root() / file]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise UsageError(f"CASE_ID {case_id!r}: no such case file {file}")
        entries = load_file(path, file_root(registry_at(root), root, path))
    else:
        entries = load_entries(root)
    matches = [e for e in entries if isinstance(e, Case) and e.name == name]
    bad = [e for e in entries if isinstance(e, CaseError) and e.case == name]
    if not matches:
        if bad:
            raise UsageError(f"case {case_id!r} is malformed: {bad[0]}")
        close = sorted({e.id for e in entries if isinstance(e, Case) and name.lower() in e.name.lower()})[:10]
        hint = ("; did you mean: " + ", ".join(close)) if close else "; `harness list` prints every case id"
        raise UsageError(f"no case {case_id!r}{hint}")
    if len(matches) > 1:
        raise UsageError(f"case name {name!r} is in several files; give the file: " + ", ".join(m.id for m in matches))
    case = matches[0]
    if dtype is not None and dtype not in case.dtypes:
        raise UsageError(f"case {case.id} does not run at {dtype}; its dtypes are {', '.join(case.dtypes)}")
    return case, dtype


def pick_dtype(case: Case, from_id: str | None, option: str | None) -> str:
    if from_id and option and from_id != option:
        raise UsageError(f"--dtype {option} contradicts the CASE_ID's [{from_id}]")
    dtype = option or from_id or case.dtypes[0]
    if dtype not in case.dtypes:
        raise UsageError(f"--dtype {dtype}: case {case.id} runs at {', '.join(case.dtypes)}")
    return dtype


def _check_filters(args) -> None:
    for dt in args.dtype:
        if dt not in CASE_DTYPES:
            raise UsageError(f"--dtype {dt}: unknown dtype; expected one of {', '.join(CASE_DTYPES)}")
    for op in args.op:
        if op not in ops.OPS:
            raise UsageError(f"--op {op}: unknown op; expected one of {', '.join(ops.OPS)}")


# --- verify ---------------------------------------------------------------------------------


def set_tensorflow_mode(args) -> None:
    """--tensorflow, --onednn and --onednn-isa: the server's interpreter (``harness.tf.versions``, installed first
    when needed) and the variables TensorFlow and oneDNN read at start-up, set before any TensorFlow process starts
    (a bad cap or version is a one-line error, and nothing starts)."""
    spec = getattr(args, "tensorflow", None)
    if spec is not None:
        try:
            os.environ[versions.PYTHON_ENV] = versions.ensure(spec)
        except versions.VersionError as exc:
            raise UsageError(str(exc)) from None
    if getattr(args, "onednn", None) is not None:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = args.onednn
    cap = getattr(args, "onednn_isa", None)
    if cap is not None:
        try:
            value = machine.isa_cap({"ONEDNN_MAX_CPU_ISA": cap})
        except machine.MachineError as exc:
            raise UsageError(f"--onednn-isa {cap}: {str(exc).split(': ', 1)[1]}") from None
        os.environ.pop("DNNL_MAX_CPU_ISA", None)
        if value is None or value == "DEFAULT":
            os.environ.pop("ONEDNN_MAX_CPU_ISA", None)
        else:
            os.environ["ONEDNN_MAX_CPU_ISA"] = value


def _memory_size(text: str) -> str:
    """--memory-budget's value, checked (argparse prints the error with the option's name)."""
    try:
        machine.parse_size(text, "--memory-budget")
    except machine.MachineError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--memory-budget=")) from None
    return text


def cmd_init(args) -> int:
    """Write the starter (harness.starter) and say what to run next."""
    try:
        made = starter.init(Path(args.directory), install=args.install, force=args.force)
    except starter.StarterError as exc:
        raise UsageError(str(exc)) from None
    for name in made.written:
        print(f"wrote {Path(args.directory) / name}")
    if made.config_elsewhere:
        print(
            f"{made.config_elsewhere} configures pytest already: add these lines to its pytest section\n"
            f"{made.ini_lines}",
            end="",
        )
    print(
        "next: pytest   (your cases, checked against TensorFlow and kernel/my_conv.py; TensorFlow's known "
        "divergences come out xfailed)"
    )
    return 0


def cmd_verify(args) -> int:
    """Run the cases through pytest (the same plugin as `make verify`) with a progress bar and reports."""
    import pytest

    _check_filters(args)
    root = repository_root()
    mine = [*location.default_folders(root), *args.cases]
    # Without --shipped, the pytest configuration decides (divergences in a user's repository), except where there
    # is no folder of the user's: then the shipped cases are what there is to run.
    shipped = args.shipped or ("cases" if not mine else None)
    try:
        reg = location.registry(root, mine, shipped=shipped or "divergences")
    except location.RegistryError as exc:
        raise UsageError(str(exc)) from None
    files = [str(p) for p in (args.files or [f.path for f in reg.collected])]
    for f in files:
        if not Path(f).exists():
            raise UsageError(f"no such case file or directory: {f}")
    set_tensorflow_mode(args)
    for spec in args.backend:
        ensure_backend(spec, root)
    if args.full:
        os.environ["HARNESS_SWEEP"] = "full"
    reports = Path(args.reports)
    # Option values as --name=value: pytest takes every existing path among its arguments for a test path when it
    # looks for its configuration file, and an existing --reports directory elsewhere would hide pyproject.toml.
    argv = [
        *files,
        f"--rootdir={root}",
        "-p",
        "harness.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        "--progress",
        f"--reports={reports}",
        f"--junitxml={reports / 'junit.xml'}",
        *([f"--shipped={reg.shipped_mode}"] if shipped else []),
        *(f"--cases={f.path}" for f in reg.user),
    ]
    if args.workers != "0":
        argv += ["-n", args.workers]
    if args.shard:
        argv += [f"--shard={args.shard}"]
    if args.memory_budget is not None:
        argv += [f"--memory-budget={args.memory_budget}"]
    for flag, values in (("--op", args.op), ("--dtype", args.dtype), ("--tag", args.tag), ("--backend", args.backend)):
        for value in values:
            argv += [f"{flag}={value}"]
    argv += args.pytest_args
    code = pytest.main(argv)
    return int(code)


def ensure_backend(spec: str, root: Path) -> None:
    """Resolve a backend spec; install its pip extra into this environment when its package is missing."""

    try:
        backend = backends.resolve(spec, root)
    except backends.BackendError as exc:
        raise UsageError(str(exc)) from None
    if backend.unavailable and backend.extra:
        target = f"{root}[{backend.extra}]"
        print(f"harness: {backend.unavailable.split(':')[0]}; installing: pip install -e '{target}'", file=sys.stderr)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", target])
        if done.returncode != 0:
            raise UsageError(f"--backend {spec}: pip install -e '{target}' failed (exit status {done.returncode})")
        importlib.invalidate_caches()
        if backends.resolve(spec, root).unavailable:
            raise UsageError(
                f"--backend {spec}: still unavailable after installing: {backends.resolve(spec, root).unavailable}"
            )


def cmd_backends(args) -> int:
    """List backends (built-in, or the given specs): what each implements and whether it can run here."""

    root = repository_root()
    specs = args.specs or list(backends.BUILTIN)
    for spec in specs:
        if args.install:
            ensure_backend(spec, root)
    for spec in specs:
        try:
            b = backends.resolve(spec, root)
        except backends.BackendError as exc:
            raise UsageError(str(exc)) from None
        state = f"unavailable: {b.unavailable}" if b.unavailable else "available"
        print(f"{b.name:<22}{state}")
        if not b.unavailable:
            print(f"{'':<22}ops: {', '.join(b.ops)}")
            print(
                f"{'':<22}convention {b.convention}, data {b.data_format or 'as the case'}, "
                f"{b.orientation} kernels, dtypes {', '.join(b.dtypes)}"
            )
        if b.description:
            print(f"{'':<22}{b.description}")
    return 0


# --- list -----------------------------------------------------------------------------------


def cmd_list(args) -> int:
    _check_filters(args)
    root = repository_root()
    entries = load_entries(root, args.files)
    shown, malformed = 0, 0
    rows = []
    for entry in entries:
        if isinstance(entry, CaseError):
            malformed += 1
            rows.append((f"{entry.file}::{entry.case or '<file>'}", "MALFORMED", "", str(entry)))
            continue
        if args.op and entry.op not in args.op:
            continue
        dtypes = [d for d in entry.dtypes if not args.dtype or d in args.dtype]
        if not dtypes or (args.tag and not set(args.tag) & set(entry.tags)):
            continue
        shown += 1
        if args.ids:
            print("\n".join(f"{entry.id}[{d}]" for d in dtypes))
            continue
        kind = "error contract" if entry.expect_error else ""
        rows.append((entry.id, entry.op, ",".join(dtypes), " ".join(entry.tags + ((kind,) if kind else ()))))
    if not args.ids:
        width = min(max((len(r[0]) for r in rows), default=10), 72)
        print(f"{'case':<{width}}  {'op':<18}{'dtypes':<34}tags")
        for case_id, op, dtypes_text, tags in rows:
            print(f"{case_id:<{width}}  {op:<18}{dtypes_text:<34}{tags}")
    print(f"{shown} cases" + (f", {malformed} malformed" if malformed else ""), file=sys.stderr)
    return 1 if malformed else 0


# --- show -----------------------------------------------------------------------------------

MAX_PLANES = 8  # planes printed per array by `harness show`


def _array_text(a: np.ndarray, layout: str, indent: str = "    ") -> str:
    """An array as its H×W planes (W only for 1-D layouts), one per index of the other axes, labelled."""

    a = np.asarray(a)
    if a.dtype.kind not in "fiu":  # bfloat16 prints as raw bytes otherwise
        a = a.astype(np.float64)
    spatial = [i for i, letter in enumerate(layout) if letter in layouts.spatial(layout)]
    others = [i for i, letter in enumerate(layout) if letter not in layouts.spatial(layout)]
    planes = np.transpose(a, others + spatial)
    lines = []
    index_sets = list(itertools.product(*(range(a.shape[i]) for i in others)))
    with np.printoptions(precision=6, suppress=True, linewidth=110, threshold=400, edgeitems=4):
        for index in index_sets[:MAX_PLANES]:
            label = ", ".join(f"{layout[i]}={v}" for i, v in zip(others, index))
            lines.append(f"{indent}[{label}]" if label else indent.rstrip())
            lines += [indent + "  " + line for line in np.array2string(planes[index]).splitlines()]
    if len(index_sets) > MAX_PLANES:
        lines.append(f"{indent}... {len(index_sets) - MAX_PLANES} more planes")
    if not index_sets or a.size == 0:
        lines.append(f"{indent}(empty: shape {list(a.shape)})")
    return "\n".join(lines)


def conversion_lines(case: Case) -> list[str]:
    """How each operand goes from the layout written in the case to the layout the op takes."""

    spec = ops.get(case.op)
    fmt = spec.data_format(case.attrs)
    lines = []
    for operand in spec.operands:
        t = case.inputs[operand.name]
        target = operand.op_layout(fmt)
        shape = list(operand_shape(case, operand.name))
        if t.raw:
            lines.append(f"{operand.name}: {list(t.shape)} passed as written (raw: no layout conversion)")
            continue
        step = "unchanged" if t.layout == target else f"layouts.convert(x, {t.layout!r}, {target!r})"
        line = f"{operand.name}: given {t.layout} {list(t.shape)} -> {target} {shape}  [{step}]"
        if t.kernel == "convolution":
            line += f", then layouts.rotate_180(w, {target!r}) (written for true convolution; the op correlates)"
        lines.append(line)
    if case.expected is not None:
        lines.append(
            f"expected: given {case.expected.layout} {list(case.expected.shape)} -> {fmt} "
            f"[layouts.convert(y, {case.expected.layout!r}, {fmt!r})]"
        )
    lines.append(f"output: {fmt} (data_format), compared in that layout")
    return lines


def cmd_show(args) -> int:

    root = repository_root()
    set_tensorflow_mode(args)
    case, id_dtype = find_case(args.case_id, root)
    dtype = pick_dtype(case, id_dtype, args.dtype)
    spec = ops.get(case.op)
    print(f"{case.id}[{dtype}]   op {case.op}" + (f"   sweep {case.sweep}" if case.sweep else ""))
    if case.description:
        print(f"  {case.description.strip()}")
    print(f"attrs (as written): {case.attrs}")
    print("\nlayout and rotation conversions")
    for line in conversion_lines(case):
        print(f"  {line}")
    print(
        "\ninputs, as the op receives them"
        + (" (real values, quantized as the report says)" if case.quantization else "")
    )
    values_dtype = "float64" if case.quantization else dtype  # a quantized case's scheme is not an array dtype
    for operand in spec.operands:
        a = operand_array(case, operand.name, values_dtype)
        layout = operand.op_layout(spec.data_format(case.attrs))
        print(f"  {operand.name} {layout} {list(a.shape)} {values_dtype}")
        print(_array_text(a, layout if len(layout) == a.ndim else "N" * a.ndim))
    if spec.textbook:
        print("\ntextbook formulations compared with the reference")
        for f in spec.textbook:
            print(f"  {f.name}: {f.doc.splitlines()[0] if f.doc else ''}")
    outcome = run_case(case, dtype, known_divergences(root), keep_outputs=True)
    print(f"\nattrs (as passed): {outcome.attrs or case.attrs}")
    out = outcome.outputs
    fmt = spec.data_format(outcome.attrs or case.attrs)
    if REFERENCE in out:
        print(f"\nreference output {fmt} {list(out[REFERENCE].shape)}")
        print(_array_text(out[REFERENCE], fmt))
    for name in [n for n in out if n != REFERENCE]:  # TensorFlow's, or each TFLite path's of a quantized case
        print(f"\n{name} output {fmt} {list(out[name].shape)}")
        print(_array_text(out[name], fmt))
        if REFERENCE in out and out[name].shape == out[REFERENCE].shape:
            diff = out[name].astype(np.float64) - out[REFERENCE].astype(np.float64)
            print(f"\n{name} - reference")
            print(_array_text(diff, fmt))
    print(f"\nstatus: {outcome.status}")
    print(outcome.report())
    return 0 if outcome.status in ("passed", "xfailed") else 1


# --- machine ------------------------------------------------------------------------------


def cmd_machine(args) -> int:
    """What the harness measured about this machine: the CPU, oneDNN's ISA, TensorFlow's kernel paths."""

    set_tensorflow_mode(args)
    if args.caps_below:  # the CPU alone: no TensorFlow
        print("\n".join(machine.caps_below(machine.read_cpu())))
        return 0
    env = environment.Environment.current(refresh=args.refresh)
    record = env.record()
    if args.record:
        atomic.write_atomic(Path(args.record), json.dumps(environment.machine_record(record), indent=1) + "\n")
    if args.json:
        print(json.dumps(record, indent=1))
    else:
        print(f"TensorFlow {env.tensorflow_version}, oneDNN {'on' if env.onednn else 'off'}")
        print("\n".join(environment.describe(env)))
        if env.probe and env.probe.implementations:
            print("  oneDNN implementations (valid SAME calls):")
            for key, impl in sorted(env.probe.implementations.items()):
                print(f"    {key:<46} {impl}")
        failing = {k: v for k, v in (env.probe.runs if env.probe else {}).items() if v not in ("ok", "no kernel")}
        for key, why in sorted(failing.items()):
            print(f"  {key} fails on valid operands: {why}")
        if env.cpu is None:  # Environment.current always reads the CPU
            raise RuntimeError("the measured environment has no CPU record")
        print(f"caps below this CPU's level (ONEDNN_MAX_CPU_ISA): {', '.join(machine.caps_below(env.cpu)) or 'none'}")
        if args.record:
            print(f"recorded: {args.record}")
    return 1 if env.probe is None or env.probe.error else 0


# --- repro / new ----------------------------------------------------------------------------


def cmd_repro(args) -> int:

    root = repository_root()
    set_tensorflow_mode(args)
    case, id_dtype = find_case(args.case_id, root)
    dtype = pick_dtype(case, id_dtype, args.dtype)
    if case.quantization is not None:
        raise UsageError(f"harness repro: {case.id} is a quantized case; run `harness show {case.id}[{dtype}]` instead")
    env = environment.Environment.current()
    finding = ""
    if not args.no_run:
        outcome = run_case(case, dtype, known_divergences(root), env, diagnose=False)
        finding = f"status {outcome.status}; TensorFlow {outcome.tensorflow}"
        if outcome.divergence:
            finding += f"; known divergence {outcome.divergence.id}: {outcome.divergence.summary}"
    text = repro.script(case, dtype, env, finding=finding)
    if args.output:
        atomic.write_atomic(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_new(args) -> int:

    scaffolded = ops.scaffolded()
    if args.op not in scaffolded:
        raise UsageError(f"unknown op {args.op!r}; expected one of {', '.join(scaffolded)}")
    try:
        shape_texts = dict(_key_value(text, "--shape") for text in args.shape)
        shapes = {k: scaffold.parse_shape(v) for k, v in shape_texts.items()}
        attrs = dict(scaffold.parse_attr(text) for text in args.attr)
        for key in ("strides", "stride", "padding", "dilations", "rate", "data_format", "output_shape"):
            value = getattr(args, key)
            if value is not None:
                attrs[key] = scaffold.parse_attr(f"{key}={value}")[1]
        layouts_ = dict(_key_value(text, "--layout") for text in args.layout)
        raw = scaffold.new_case(
            args.op,
            name=args.name,
            shapes=shapes or None,
            attrs=attrs or None,
            dtypes=args.dtypes.split(",") if args.dtypes else None,
            layouts=layouts_ or None,
            tags=args.tags.split(",") if args.tags else None,
        )
        text = scaffold.describe(raw)
    except (scaffold.ScaffoldError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.append:
        _append_case(Path(args.append), text)
        print(f"appended case {raw['name']!r} to {args.append}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _key_value(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"{option} {text!r}: expected NAME=VALUE")
    return key.strip(), value.strip()


def _append_case(path: Path, text: str) -> None:
    """Add a scaffolded case (a ``cases:`` document) to a case file, creating it; the file must stay loadable."""

    new = yaml.safe_load(text)["cases"]
    if path.exists():
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"--append {path}: not valid YAML, not touching it ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("cases", []), list):
            raise UsageError(f"--append {path}: not a case file (a mapping with a 'cases' list)")
        names = {c.get("name") for c in doc.get("cases") or [] if isinstance(c, dict)}
        if new[0]["name"] in names:
            raise UsageError(f"--append {path}: a case named {new[0]['name']!r} is already there; give --name")
        body = path.read_text(encoding="utf-8")
        if "cases" not in doc:
            body = body.rstrip("\n") + "\ncases:\n"
        # keep the file's own text and comments: add the new entry at the end of the cases list
        entry = text.split("cases:\n", 1)[1]
        if doc.get("sweeps") is not None and body.index("sweeps:") > body.index("cases:"):
            raise UsageError(f"--append {path}: its 'sweeps' follow its 'cases'; add the case by hand")
        atomic.write_atomic(path, body.rstrip("\n") + "\n" + entry)
    else:
        atomic.write_atomic(path, text)


# --- the .npz exchange (harness.exchange) ---------------------------------------------------

MAX_LISTED_NPZ = 20  # failures and missing outputs check-npz lists


def cmd_export(args) -> int:
    """``harness export DIR [FILES] [--op] [--dtype] [--tag] [--onednn]``."""

    _check_filters(args)
    root = repository_root()
    entries = load_entries(root, args.files)
    malformed = [e for e in entries if isinstance(e, CaseError)]
    for err in malformed:
        print(f"harness: warning: skipping a malformed case: {err}", file=sys.stderr)
    selected = exchange.select(entries, args.op, args.dtype, args.tag)
    computing = [(c, d) for c, d in selected if c.expect_error is None]
    if not computing:
        raise UsageError(
            "no case that computes a value matches the filters (error contracts are not exported); "
            "`harness list` shows the cases"
        )
    directory = Path(args.directory)
    try:
        path = exchange.export(computing, directory, getattr(args, "onednn", None), root=root)
    except exchange.ExchangeError as exc:
        raise UsageError(str(exc)) from None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    entries_ = manifest["entries"]
    floats = [e for e in entries_ if e.get("kind") != exchange.QUANTIZED]
    known_wrong = sum(e["tensorflow"]["known_wrong"] for e in floats)
    no_tf = sum(not e["tensorflow"]["stored"] for e in floats)
    quantized = len(entries_) - len(floats)
    print(
        f"wrote {len(entries_)} entries to {directory} ({path.name} and one .npz each)"
        + (f"; {len(manifest['skipped'])} skipped" if manifest["skipped"] else "")
    )
    if quantized:
        print(
            f"  {quantized} quantized: each with its .tflite model and the expected integers under every rounding "
            f"({', '.join(ROUNDINGS)})"
        )
    if known_wrong or no_tf:
        print(
            f"  TensorFlow is known to be wrong in {known_wrong} and returned no output in {no_tf}: those are "
            f"checked against the reference"
        )
    for skip in manifest["skipped"][:10]:
        print(f"  skipped {skip['id']}: {skip['reason']}")
    print(
        f"next: write each entry's output as {directory}/<name>{exchange.OUTPUT_SUFFIX}, then: "
        f"harness check-npz {directory}"
    )
    return 0


def cmd_check_npz(args) -> int:
    """``harness check-npz DIR [--reports REPORTS]``: exit 1 when an output fails or no output was written."""

    directory = Path(args.directory)
    reports = Path(args.reports) if getattr(args, "reports", None) else directory / "reports"
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    try:
        records = exchange.check(directory, reports, getattr(args, "rounding", None))
    except exchange.ExchangeError as exc:
        raise UsageError(str(exc)) from None
    counts = {s: sum(r["status"] == s for r in records) for s in ("passed", "failed", "skipped")}
    print(
        f"{directory}: {len(records)} entries: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} without output"
    )
    failed = [r for r in records if r["status"] == "failed"]
    for r in failed[:MAX_LISTED_NPZ]:
        print(f"  FAILED  {r['id']}: {report.first_line(r)}")
        for line in r.get("diagnosis") or ():
            print(f"          suspect: {line}")
    if len(failed) > MAX_LISTED_NPZ:
        print(f"  ... and {len(failed) - MAX_LISTED_NPZ} more failures")
    missing = [r for r in records if r["status"] == "skipped"]
    for r in missing[:MAX_LISTED_NPZ]:
        print(f"  missing {r['id']}: {r.get('skip_reason') or 'no output'}")
    if len(missing) > MAX_LISTED_NPZ:
        print(f"  ... and {len(missing) - MAX_LISTED_NPZ} more without output")
    print(f"reports: {reports / results.RESULTS_JSON}, {reports / report.REPORT_HTML}, {reports / report.SUMMARY_MD}")
    return 1 if failed or counts["passed"] == 0 else 0


# --- compare / report -----------------------------------------------------------------------


def _load_run(name: str) -> results.Run:
    try:
        return results.load(Path(name))
    except results.ResultsError as exc:
        raise UsageError(str(exc)) from None


def cmd_compare(args) -> int:
    """``harness compare A B [C ...]``: two runs as before; three or more as one table, then each consecutive pair
    (``harness.reports.compare``). Exit status 1 when a pair has new failures."""
    if args.growth <= 1:
        raise UsageError(f"--growth {args.growth}: must be greater than 1")
    if len(args.runs) < 2:
        raise UsageError(f"compare needs at least two runs, got {len(args.runs)}")
    runs = [_load_run(name) for name in args.runs]
    if args.json:
        comparison = compare.compare_many(runs, args.runs, growth=args.growth)
        print(json.dumps(comparison, indent=1))
        return 1 if any(pair["new_failures"] for pair in comparison["pairs"]) else 0
    names = compare.column_names(len(runs))
    for name, path, run in zip(names, args.runs, runs):
        print(f"{name}: {path}  ({len(run.records)} records)")
    if len(runs) > 2:
        print()
        print("\n".join(compare.table_lines(compare.compare_many(runs, names, growth=args.growth), names, args.limit)))
    new_failures = False
    for k in range(len(runs) - 1):
        diff = compare.compare_runs(runs[k], runs[k + 1], growth=args.growth)
        new_failures |= bool(diff["new_failures"])
        if len(runs) > 2:
            print(f"\n=== {names[k]} -> {names[k + 1]}: {args.runs[k]} -> {args.runs[k + 1]} ===")
        print()
        print(
            "\n".join(
                compare.pair_lines(
                    diff,
                    runs[k].environment,
                    runs[k + 1].environment,
                    args.growth,
                    args.limit,
                    (names[k], names[k + 1]),
                )
            )
        )
    return 1 if new_failures else 0


def cmd_report(args) -> int:
    """``harness report DIR``: the reports again from DIR's results; ``--merge DIR ...``: several runs as one."""
    if args.merge is not None:
        if args.directory is not None:
            raise UsageError(f"give DIR or --merge DIR [DIR ...], not both (got {args.directory} and --merge)")
        return _merge(args)
    if args.directory is None:
        raise UsageError("give DIR, or --merge DIR [DIR ...]")
    if args.out is not None or args.allow_different_registries:
        raise UsageError("--out and --allow-different-registries go with --merge")
    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    run = _load_run(str(directory))
    if not (directory / results.RESULTS_JSON).exists():  # rebuilt from the stream of a killed run
        atomic.write_atomic(directory / results.RESULTS_JSON, run.to_json())
    for path in report.write_reports(run, directory):
        print(f"wrote {path}")
    return 0


def _merge_inputs(names: Sequence[str], what: str, files_too: bool) -> dict[Path, str]:
    """``--merge``'s inputs, by resolved path: each exists (a directory, or also a file) and none is given twice."""
    seen: dict[Path, str] = {}
    for name in names:
        path = Path(name)
        if not (path.exists() if files_too else path.is_dir()):
            raise UsageError(f"--merge {name}: no such directory{' or file' if files_too else ''}")
        if path.resolve() in seen:
            raise UsageError(f"--merge: {seen[path.resolve()]} and {name} are the same {what}")
        seen[path.resolve()] = name
    return seen


def _merge(args) -> int:
    """``harness report --merge DIR [DIR ...] [--out DIR]`` (``harness.reports.merge``): exit status 1 when the
    merged run fails (a failure in any run, or a stale divergence that only the union shows)."""
    out = Path(args.out or MERGED_REPORTS)
    seen = _merge_inputs(args.merge, "directory", files_too=False)
    if out.resolve() in seen:
        raise UsageError(f"--out {out}: is one of the merged runs; write the merged run elsewhere")
    sources = [(name, _load_run(name)) for name in args.merge]
    try:
        run = merge.merge(sources, allow_different_registries=args.allow_different_registries)
    except merge.MergeError as exc:
        raise UsageError(str(exc)) from None
    run.run["argv"] = results.argv()
    print("\n".join(merge.summary_lines(run)))
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(out / results.RESULTS_JSON, run.to_json())
    for path in [out / results.RESULTS_JSON, *report.write_reports(run, out)]:
        print(f"wrote {path}")
    reasons = report.verdict_reasons(run)
    print(f"verdict: {report.verdict(run).upper()}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    return 1 if reasons else 0


# --- matrix -------------------------------------------------------------------------------


def cmd_matrix(args) -> int:
    """The registry once per TensorFlow version and oneDNN mode, and the divergence atlas (``harness.matrix``)."""
    from harness import matrix
    from harness.reports.atlas import AtlasError

    if args.merge is not None:  # atlases only: anywhere, no cases/ needed
        return _merge_atlases(args)
    if args.allow_different_registries:
        raise UsageError("--allow-different-registries goes with --merge")
    root = repository_root()
    out = Path(args.out or "reports/matrix")
    try:
        if args.clean:
            removed = versions.clean(args.versions.split(",") if args.versions else ())
            for spec, size in removed:
                print(f"removed the TensorFlow {spec} environment ({size / 2**30:.1f} GiB)")
            print(f"{len(removed)} environments removed from {versions.cache_root()}")
            return 0
        if args.suggest:
            print("\n".join(matrix.suggest(out)))
            return 0
        specs = args.versions.split(",") if args.versions else matrix.default_versions(args.nightly)
        if args.versions and args.nightly and "nightly" not in specs:
            specs.append("nightly")
        built = matrix.run(
            specs, args.onednn.split(","), root, out, workers=args.workers, rerun=args.rerun, backends=args.backend
        )
    except (versions.VersionError, AtlasError) as exc:
        raise UsageError(str(exc)) from None
    failed = [c["key"] for c in built["columns"] if c["state"] != "ran"]
    if failed:
        print(f"not run: {', '.join(failed)} (see the atlas's Runs section)")
    print(f"{len(built['new'])} groups of new disagreements; wrote {out / 'atlas.json'} and {out / 'atlas.html'}")
    return 0


def _merge_atlases(args) -> int:
    """``harness matrix --merge DIR [DIR ...] [--out DIR]`` (``harness.matrix.merge``)."""
    from harness import matrix
    from harness.reports.atlas import AtlasError

    mixed = [
        f"--{name}" for name in ("versions", "nightly", "rerun", "suggest", "clean", "backend") if getattr(args, name)
    ]
    if mixed:
        raise UsageError(f"--merge runs nothing: it does not go with {', '.join(mixed)}")
    _merge_inputs(args.merge, "atlas", files_too=True)
    out = Path(args.out or "reports/matrix-merged")
    try:
        built = matrix.merge([Path(name) for name in args.merge], out, args.allow_different_registries)
    except AtlasError as exc:
        raise UsageError(str(exc)) from None
    for warning in built["warnings"]:
        print(f"warning: {warning}")
    ran = sum(c["state"] == "ran" for c in built["columns"])
    print(
        f"merged {len(args.merge)} atlases: {len(built['machines'])} machines ({'; '.join(built['machines'])}), "
        f"{ran} of {len(built['columns'])} columns run, {len(built['divergences'])} entries"
    )
    print(f"wrote {out / 'atlas.json'} and {out / 'atlas.html'}")
    new = built.get("new") or []
    if args.fail_on_new and new:
        print(f"{len(new)} groups of new disagreements (no known divergence explains them):")
        for group in new:
            print(f"  {group.get('key')}")
        return 1
    return 0


# --- the parser -----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: same prefix and status as ours
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILES", help="case files or directories (default: cases/)")
    p.add_argument("--op", action="append", default=[], help="only this op (repeatable): " + ", ".join(ops.OPS))
    p.add_argument("--dtype", action="append", default=[], help="only this dtype (repeatable): " + ", ".join(DTYPES))
    p.add_argument("--tag", action="append", default=[], help="only cases with this tag (repeatable)")


def _tensorflow_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tensorflow",
        metavar="VERSION",
        default=None,
        help="run TensorFlow's side with this version: 2.17 (newest 2.17.x), 2.17.1, nightly, or a path to "
        "a Python interpreter that has TensorFlow; installed once into a cached environment "
        "(default: the TensorFlow installed here)",
    )


def _isa_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--onednn-isa",
        metavar="CAP",
        default=None,
        help="run oneDNN under ONEDNN_MAX_CPU_ISA=CAP (AVX2, AVX512_CORE, ...; DEFAULT: no cap), as on an "
        "older CPU (default: as set)",
    )


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="harness", description="Cross-validate TensorFlow's convolutions against NumPy references.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("verify", help="run cases with a progress bar; write reports")
    _filters(p)
    p.add_argument("-n", dest="workers", default="auto", help="pytest-xdist workers (default auto; 0 = in-process)")
    p.add_argument("--onednn", choices=("0", "1"), default=None, help="TF_ENABLE_ONEDNN_OPTS (default: as set, else 1)")
    _isa_option(p)
    _tensorflow_option(p)
    p.add_argument("--full", action="store_true", help="every combination of every sweep (default: covering sets)")
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="SPEC",
        help="also check this backend against TensorFlow (repeatable): reference, textbook, "
        "tensorflow-function, tensorflow-xla, torch, jax, onnxruntime, module:function or a "
        "declaration file; a missing optional package is installed first",
    )
    p.add_argument("--reports", default="reports", help="report directory (default: reports)")
    p.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="DIR",
        help="also run this folder of your own cases (repeatable; ./cases is read when it exists)",
    )
    p.add_argument(
        "--shipped",
        choices=location.SHIPPED_MODES,
        default=None,
        help="the registry that ships with the harness: cases (run its cases too), divergences (only its known "
        "divergences apply to yours) or none; default: the pytest configuration's harness_shipped (divergences "
        "unless set), or cases where there is no cases/ folder of yours",
    )
    p.add_argument("--shard", metavar="I/N", help="run only the I-th of N balanced shares (a CI matrix of N jobs)")
    p.add_argument(
        "--memory-budget",
        metavar="SIZE",
        type=_memory_size,
        help=f"the memory one case may take at its peak, e.g. 2GiB or 500MB: a case over it fails unallocated "
        f"(default: ${machine.MEMORY_ENV}, else {machine.MEMORY_SHARE:.0%}% of the available memory shared by the "
        f"workers; `harness machine` shows it)",
    )
    p.set_defaults(func=cmd_verify, pytest_args=[])

    p = sub.add_parser(
        "init",
        help="write a starter into your repository: cases, a kernel's backend spec, pytest config and a CI workflow",
    )
    p.add_argument("directory", nargs="?", default=".", help="where (default: the current directory)")
    p.add_argument(
        "--install",
        default=starter.DEFAULT_INSTALL,
        help=f"the CI workflow's command that installs the harness (default: {starter.DEFAULT_INSTALL!r})",
    )
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(func=cmd_init)  # arguments after `--` go to pytest as they are

    p = sub.add_parser("machine", help="this machine's CPU, oneDNN's ISA and TensorFlow's kernel paths, as measured")
    p.add_argument("--json", action="store_true", help="print the environment record (as results.json holds it)")
    p.add_argument("--record", metavar="FILE", help="also write it as a recorded machine (tests/machines/*.json)")
    p.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    p.add_argument(
        "--caps-below",
        action="store_true",
        help="print the ONEDNN_MAX_CPU_ISA caps below this CPU's own level, one per line (no TensorFlow)",
    )
    p.add_argument("--onednn", choices=("0", "1"), default=None, help="TF_ENABLE_ONEDNN_OPTS (default: as set, else 1)")
    _isa_option(p)
    _tensorflow_option(p)
    p.set_defaults(func=cmd_machine)

    p = sub.add_parser("backends", help="the backends, what they implement, and whether they can run here")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="backend names, module:function or declaration files")
    p.add_argument("--install", action="store_true", help="pip-install the extras of those that are missing")
    p.set_defaults(func=cmd_backends)

    p = sub.add_parser("list", help="list case ids, ops, dtypes and tags")
    _filters(p)
    p.add_argument("--ids", action="store_true", help="print only the ids (one per dtype), for scripts")
    p.set_defaults(func=cmd_list)

    for name, func, help_ in (
        ("show", cmd_show, "a case's inputs, conversions, outputs and their difference"),
        ("repro", cmd_repro, "a standalone NumPy + TensorFlow script reproducing a case"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("case_id", metavar="CASE_ID", help="FILE::NAME[DTYPE], NAME[DTYPE] or NAME")
        p.add_argument("--dtype", default=None, choices=DTYPES, help="dtype (default: from the id, else the first)")
        p.add_argument(
            "--onednn", choices=("0", "1"), default=None, help="TF_ENABLE_ONEDNN_OPTS (default: as set, else 1)"
        )
        _tensorflow_option(p)
        p.set_defaults(func=func)
        if name == "repro":
            p.add_argument("-o", "--output", default=None, help="write the script to this file")
            p.add_argument("--no-run", action="store_true", help="do not run the case to state the finding")

    p = sub.add_parser("new", help="scaffold a YAML case (prints it, with the output shape)")
    p.add_argument("op", metavar="OP", help=", ".join(ops.OPS))
    p.add_argument("--name", default=None)
    p.add_argument("--shape", action="append", default=[], metavar="OPERAND=DIMS", help="e.g. input=1,8,8,3")
    p.add_argument("--layout", action="append", default=[], metavar="OPERAND=LAYOUT", help="e.g. filters=OIHW")
    p.add_argument(
        "--attr", action="append", default=[], metavar="KEY=VALUE", help="e.g. padding=[[0,0],[1,1],[1,1],[0,0]]"
    )
    for key in ("strides", "stride", "padding", "dilations", "rate", "data_format", "output_shape"):
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None)
    p.add_argument("--dtypes", default=None, help="comma-separated, e.g. float32,float64")
    p.add_argument("--tags", default=None, help="comma-separated")
    p.add_argument("--append", default=None, metavar="FILE", help="add the case to this case file (created if new)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser(
        "export",
        help="write cases as .npz files (operands, TensorFlow's and the reference's "
        "outputs, bounds) for a kernel outside Python",
    )
    p.add_argument(
        "--npz",
        dest="directory",
        required=True,
        metavar="DIR",
        help="exchange directory (created; an earlier export there is replaced)",
    )
    _filters(p)
    p.add_argument("--onednn", choices=("0", "1"), default=None, help="TF_ENABLE_ONEDNN_OPTS (default: as set, else 1)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "check-npz", help="check the outputs an outside implementation wrote into an export directory; write reports"
    )
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--reports", default=None, help="report directory (default: DIR/reports)")
    p.add_argument(
        "--rounding",
        default=None,
        choices=ROUNDINGS,
        help="quantized entries: require this rounding (default: any; the report says which matched)",
    )
    p.set_defaults(func=cmd_check_npz)

    p = sub.add_parser("compare", help="what changed between two or more runs' results.json (oldest first)")
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="results.json (or its directory) of each run, in order; three or more get one table across "
        "them, then each consecutive pair",
    )
    p.add_argument("--growth", type=float, default=2.0, help="report margins that grew this many times (default 2)")
    p.add_argument("--limit", type=int, default=50, help="rows per section (default 50)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the comparison as JSON: the runs, the per-op table, the items whose status differs "
        "and every consecutive pair's changes",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "report",
        help="(re)write report.html and summary.md from DIR/results.json or results.jsonl; "
        "or merge several runs (--merge) into one",
    )
    p.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        default=None,
        help="a run's report directory, whose reports are written again (without --merge)",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        default=None,
        help="merge these runs' results (e.g. the shares of `make verify SHARD=I/N`, or runs from "
        "several machines) into one results.json and its reports; exit status 1 when the merged run "
        "fails",
    )
    p.add_argument(
        "--out", metavar="DIR", default=None, help=f"with --merge: where to write (default {MERGED_REPORTS})"
    )
    p.add_argument(
        "--allow-different-registries",
        action="store_true",
        help="with --merge: merge runs of different cases/ (with a warning) instead of refusing",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("matrix", help="the registry once per TensorFlow version and oneDNN mode; the divergence atlas")
    p.add_argument(
        "--versions",
        default=None,
        metavar="V,V,...",
        help="TensorFlow versions (2.17, 2.17.1, nightly); default every minor from 2.13 to the installed "
        "one, newest patch each",
    )
    p.add_argument("--nightly", action="store_true", help="also run tf-nightly")
    p.add_argument("--onednn", default="1,0", metavar="MODES", help="oneDNN modes, e.g. 1,0 (default) or 1")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where runs and the atlas go (default: reports/matrix); with --merge, where the merged atlas goes "
        "(default: reports/matrix-merged)",
    )
    p.add_argument("-n", dest="workers", default="auto", help="pytest-xdist workers per run (default auto)")
    p.add_argument("--rerun", action="store_true", help="run combinations already run for this registry again")
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="SPEC",
        help="also check this backend in every run (repeatable), e.g. tensorflow-function and "
        "tensorflow-xla, whose known divergences are TensorFlow's own in graph mode",
    )
    p.add_argument(
        "--suggest",
        action="store_true",
        help="print each known divergence's measured tensorflow_versions range from the atlas; run nothing",
    )
    p.add_argument(
        "--clean",
        action="store_true",
        help="remove the cached TensorFlow environments (those of --versions, or all); run nothing",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        default=None,
        help="merge the atlases of these matrix output directories (or atlas.json files) from several machines "
        "and partial matrices into one (--out); run nothing",
    )
    p.add_argument(
        "--allow-different-registries",
        action="store_true",
        help="with --merge: merge atlases of different cases/ (with a warning) instead of refusing",
    )
    p.add_argument(
        "--fail-on-new",
        action="store_true",
        help="with --merge: exit 1 when the merged atlas has new disagreements (failures no known divergence explains)",
    )
    p.set_defaults(func=cmd_matrix)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    try:
        args = parser().parse_args(argv)
        if extra and args.command != "verify":
            raise UsageError(f"only verify passes arguments after -- (to pytest), got {' '.join(extra)}")
        args.pytest_args = extra
        return args.func(args)
    except (UsageError, machine.MachineError) as exc:  # a bad cap or an unreadable CPU: one line, nothing started
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except OverBudget as exc:  # show / repro / export of a case too large for the machine
        print(f"harness: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `harness list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
