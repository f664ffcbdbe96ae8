"""The machine a run is on: the CPU features that decide TensorFlow's kernels, oneDNN's ISA cap, the cache.

No TensorFlow here. What TensorFlow then *does* on this machine is measured by ``harness.kernel_probe``; this module
only reads what the operating system says and what the user asked for:

* ``read_cpu()``: the CPU's model and the features that TensorFlow's dtype dispatch and oneDNN's kernels test
  (``DECIDING_FLAGS``), from ``/proc/cpuinfo`` (Linux, x86-64 and aarch64) or ``sysctl`` (macOS).
* ``isa_cap()``: the ``ONEDNN_MAX_CPU_ISA`` cap (``DNNL_MAX_CPU_ISA`` is its older name), validated. oneDNN
  ignores a value it does not know, silently, so the harness refuses it instead.
* ``cpu_isa_level(cpu)``: the highest oneDNN ISA the CPU's features allow (oneDNN's own ``mayiuse`` rules), and
  ``caps_below(cpu)``: the caps that make oneDNN use less than that, i.e. what users on older CPUs see.
* ``cache_dir()``: where the harness keeps what it measured once per environment.

Errors are ``MachineError``: one line naming the value, raised before anything starts.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# x86-64 features (Linux /proc/cpuinfo spelling) that TensorFlow's IsDataTypeSupportedByOneDNNOnThisCPU and
# oneDNN's ISA levels test: they decide which dtypes reach oneDNN and which oneDNN kernel (and rounding) runs.
X86_FLAGS = (
    "sse4_1",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx_vnni_int8",
    "avx_ne_convert",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)
# aarch64 features (/proc/cpuinfo "Features") that oneDNN's Arm kernels (ACL) and TensorFlow's aarch64 build test.
ARM_FLAGS = ("asimd", "asimdhp", "fphp", "asimddp", "i8mm", "bf16", "sve", "sve2", "svebf16", "sme")
DECIDING_FLAGS = X86_FLAGS + ARM_FLAGS

# oneDNN's ONEDNN_MAX_CPU_ISA values (its "CPU dispatcher control" guide), lowest first per family.
X86_ISA_CAPS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
)
AARCH64_ISA_CAPS = ("ASIMD", "SVE_128", "SVE_256", "SVE_512")
ISA_CAP_ENVS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # oneDNN reads the first; the second is its old name

# What each x86 oneDNN ISA needs on top of the one it extends (oneDNN's cpu_isa_traits: mayiuse).
_X86_LEVELS = (
    ("sse41", None, ("sse4_1",)),
    ("avx", "sse41", ("avx",)),
    ("avx2", "avx", ("avx2", "fma")),
    ("avx2_vnni", "avx2", ("avx_vnni",)),
    ("avx2_vnni_2", "avx2_vnni", ("avx_vnni_int8", "avx_ne_convert")),
    ("avx512_core", "avx2", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
    ("avx512_core_vnni", "avx512_core", ("avx512_vnni",)),
    ("avx512_core_bf16", "avx512_core_vnni", ("avx512_bf16",)),
    ("avx512_core_fp16", "avx512_core_bf16", ("avx512_fp16",)),
    ("avx512_core_amx", "avx512_core_fp16", ("amx_tile", "amx_int8", "amx_bf16")),
    ("avx512_core_amx_fp16", "avx512_core_amx", ("amx_fp16",)),
)
ISA_LEVELS = tuple(name for name, _, _ in _X86_LEVELS) + tuple(c.lower() for c in AARCH64_ISA_CAPS)

CACHE_ENV = "HARNESS_CACHE_DIR"


class MachineError(ValueError):
    """The machine cannot be read, or a setting about it is wrong: one line, naming the value."""


@dataclass(frozen=True)
class Cpu:
    """The CPU as the operating system describes it: architecture, vendor, model and deciding features."""

    arch: str  # platform.machine(): x86_64, aarch64, arm64
    vendor: str  # GenuineIntel, AuthenticAMD, or an Arm implementer code
    model: str
    flags: tuple[str, ...]  # the DECIDING_FLAGS this CPU has, in DECIDING_FLAGS order

    def has(self, flag: str) -> bool:
        return flag in self.flags

    def record(self) -> dict:
        return {"arch": self.arch, "vendor": self.vendor, "model": self.model, "flags": list(self.flags)}

    @classmethod
    def from_record(cls, rec: Mapping) -> Cpu:
        return cls(
            str(rec.get("arch", "?")),
            str(rec.get("vendor", "?")),
            str(rec.get("model", "?")),
            tuple(f for f in DECIDING_FLAGS if f in set(rec.get("flags") or ())),
        )


def parse_cpuinfo(text: str, arch: str, source: str = "/proc/cpuinfo") -> Cpu:
    """A ``Cpu`` from the text of ``/proc/cpuinfo`` (its first processor); MachineError if it names no features."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough: every core of a machine has the same features
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    flags_text = fields.get("flags", fields.get("features"))
    if flags_text is None:
        raise MachineError(f"{source}: no 'flags' or 'Features' line, so the CPU's features cannot be read")
    have = set(flags_text.split())
    vendor = fields.get("vendor_id") or (
        f"implementer {fields['cpu implementer']}" if "cpu implementer" in fields else "?"
    )
    model = fields.get("model name") or (f"part {fields['cpu part']}" if "cpu part" in fields else "?")
    return Cpu(arch, vendor, model, tuple(f for f in DECIDING_FLAGS if f in have))


_SYSCTL_FLAGS = {  # macOS hw.optional keys -> the /proc/cpuinfo spelling
    "hw.optional.avx1_0": "avx",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.fma": "fma",
    "hw.optional.sse4_1": "sse4_1",
    "hw.optional.avx512f": "avx512f",
    "hw.optional.avx512dq": "avx512dq",
    "hw.optional.avx512bw": "avx512bw",
    "hw.optional.avx512vl": "avx512vl",
    "hw.optional.avx512vnni": "avx512_vnni",
    "hw.optional.neon": "asimd",
    "hw.optional.neon_fp16": "asimdhp",
    "hw.optional.arm.FEAT_FP16": "fphp",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_SME": "sme",
}


def parse_sysctl(text: str, arch: str) -> Cpu:
    """A ``Cpu`` from ``sysctl -a`` output (macOS)."""
    values = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    have = {flag for key, flag in _SYSCTL_FLAGS.items() if values.get(key, "0").strip() == "1"}
    model = values.get("machdep.cpu.brand_string", "?").strip()
    vendor = values.get("machdep.cpu.vendor", "Apple" if arch in ("arm64", "aarch64") else "?").strip()
    return Cpu(arch, vendor, model, tuple(f for f in DECIDING_FLAGS if f in have))


def read_cpu() -> Cpu:
    """This machine's CPU (MachineError when its features cannot be read: the verdicts depend on them)."""
    arch = platform.machine()
    path = Path("/proc/cpuinfo")
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise MachineError(f"{path}: cannot read the CPU's features: {exc.strerror or exc}") from None
        return parse_cpuinfo(text, arch, str(path))
    if platform.system() == "Darwin":
        try:
            text = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, check=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise MachineError(f"sysctl -a: cannot read the CPU's features: {exc}") from None
        return parse_sysctl(text, arch)
    raise MachineError(
        f"cannot read the CPU's features on {platform.system() or 'this system'} (no /proc/cpuinfo, no sysctl)"
    )


# --- oneDNN's ISA ---------------------------------------------------------------------------


def isa_caps(arch: str) -> tuple[str, ...]:
    """The ONEDNN_MAX_CPU_ISA values oneDNN knows on this architecture (DEFAULT: no cap)."""
    return (AARCH64_ISA_CAPS if arch in ("aarch64", "arm64") else X86_ISA_CAPS) + ("DEFAULT",)


def isa_cap(environ: Mapping[str, str] | None = None, arch: str | None = None) -> str | None:
    """The oneDNN ISA cap in force (upper case), None when there is none; MachineError for a value oneDNN does not
    know (it would ignore it silently) or two different values in ONEDNN_MAX_CPU_ISA and DNNL_MAX_CPU_ISA."""
    environ = os.environ if environ is None else environ
    arch = arch or platform.machine()
    given = {name: environ[name].strip() for name in ISA_CAP_ENVS if environ.get(name, "").strip()}
    if not given:
        return None
    known = isa_caps(arch)
    for name, value in given.items():
        if value.upper() not in known:
            raise MachineError(f"{name}={value!r}: not a oneDNN ISA on {arch}; expected one of {', '.join(known)}")
    values = {v.upper() for v in given.values()}
    if len(values) > 1:
        raise MachineError(
            "ONEDNN_MAX_CPU_ISA and DNNL_MAX_CPU_ISA disagree: " + ", ".join(f"{k}={v!r}" for k, v in given.items())
        )
    return values.pop()


def cpu_isa_level(cpu: Cpu) -> str | None:
    """The highest oneDNN x86 ISA this CPU's features allow (what oneDNN uses with no cap); None on other CPUs."""
    reached: dict[str, bool] = {}
    for name, base, needs in _X86_LEVELS:
        reached[name] = (base is None or reached[base]) and all(cpu.has(f) for f in needs)
    best = [name for name, _, _ in _X86_LEVELS if reached[name]]
    # avx2_vnni(_2) and avx512_core are not ordered against each other; the AVX-512 branch is the higher one
    avx512 = [n for n in best if n.startswith("avx512")]
    ranked = avx512 or best
    return ranked[-1] if ranked else None


def caps_below(cpu: Cpu) -> tuple[str, ...]:
    """The ONEDNN_MAX_CPU_ISA values below this CPU's own level that change what oneDNN may use (x86 only): what a
    user on an older CPU gets, testable here."""
    level = cpu_isa_level(cpu)
    if level is None:
        return ()
    chain = _chain(level)  # the levels this one extends, down to sse41
    return tuple(n.upper() for n in _chain_names() if n in chain and n != level)


def _chain(level: str | None) -> list[str]:
    """``level`` and every x86 ISA it extends, highest first."""
    parents = {n: b for n, b, _ in _X86_LEVELS}
    chain: list[str] = []
    while level is not None:
        chain.append(level)
        level = parents[level]
    return chain


def effective_isa(cpu: Cpu, cap: str | None) -> str | None:
    """The x86 ISA a oneDNN build uses on ``cpu`` under ``cap`` (ONEDNN_MAX_CPU_ISA): the highest level the CPU
    reaches that the cap allows. For oneDNNs whose log is not read (PyTorch's); TensorFlow's is measured."""
    level = cpu_isa_level(cpu)
    if level is None or cap is None or cap.lower() not in _chain_names():  # no cap, DEFAULT, or an Arm cap
        return level
    allowed = set(_chain(cap.lower()))
    return next((name for name in _chain(level) if name in allowed), None)


def _chain_names() -> tuple[str, ...]:
    return tuple(name for name, _, _ in _X86_LEVELS)


def normalize_isa(text: str | None) -> str | None:
    """oneDNN's verbose ``isa:`` description (e.g. "Intel AVX-512 with Intel DL Boost and bfloat16 support") as the
    ISA name (``avx512_core_bf16``); None when there is no text or it is not recognised."""
    if not text:
        return None
    t = text.lower()
    if "amx" in t:  # "... and Intel AMX with bfloat16, 8-bit integer and float16 support" names float16 after AMX
        return (
            "avx512_core_amx_fp16"
            if re.search(r"amx with[^.]*\bfloat16", t.replace("bfloat16", "bf"))
            else "avx512_core_amx"
        )
    if "avx-512" in t or "avx10" in t:
        plain = t.replace("bfloat16", "bf")
        if "float16" in plain:
            return "avx512_core_fp16"
        if "bfloat16" in t:
            return "avx512_core_bf16"
        if "dl boost" in t:
            return "avx512_core_vnni"
        return "avx512_core"
    if "avx2" in t:
        if "float16" in t or "bfloat16" in t:
            return "avx2_vnni_2"
        return "avx2_vnni" if "dl boost" in t else "avx2"
    if "avx" in t:
        return "avx"
    if "sse4.1" in t or "sse41" in t:
        return "sse41"
    for cap in AARCH64_ISA_CAPS:
        if cap.lower().replace("_", " ") in t.replace("_", " "):
            return cap.lower()
    return None


# --- the cache ------------------------------------------------------------------------------


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where measured facts are kept: $HARNESS_CACHE_DIR, else $XDG_CACHE_HOME/tf-conv-harness, else
    ~/.cache/tf-conv-harness."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV])
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "tf-conv-harness"


# --- memory ---------------------------------------------------------------------------------

MEMORY_ENV = "HARNESS_MEMORY_BUDGET"
# The share of the memory available at the start of a run that the harness's arrays may take, all lanes together.
# The estimate (``harness.check.budget``) counts the arrays a case allocates in a worker and in its TensorFlow server;
# the other half is left for what it does not count: each worker's interpreter, NumPy and the harness (~0.2 GiB),
# each server's TensorFlow runtime (~0.5 GiB) and the zygote, allocator slack and fragmentation, and whatever else
# the machine runs meanwhile. A case the estimate lets through then still leaves the kernel room before its
# out-of-memory handler picks a process.
MEMORY_SHARE = 0.5
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_size(text: object, what: str = MEMORY_ENV) -> int:
    """A memory size as a user writes it: bytes (``1073741824``) or a number with a unit, decimal (``500MB``,
    ``2GB``) or binary (``2GiB``, ``512MiB``); unit letters in any case. MachineError naming ``what`` and the value
    when it is not a positive size."""
    match = _SIZE.fullmatch(str(text)) if isinstance(text, (str, int)) and not isinstance(text, bool) else None
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise MachineError(
            f"{what}={text!r}: not a memory size; give bytes or a number with a unit "
            f"(KB, MB, GB, TB or KiB, MiB, GiB, TiB), e.g. 2GiB"
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise MachineError(f"{what}={text!r}: the memory budget must be more than 0 bytes")
    return size


def format_size(size: float) -> str:
    """Bytes as people read them: ``12.3 GiB``, ``500.0 MiB``, ``812 B``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


@dataclass(frozen=True)
class MemoryBudget:
    """How many bytes one case may take at its peak (its worker's arrays and its TensorFlow server's together), and
    where that number came from: ``source`` names the setting (``--memory-budget``, ``HARNESS_MEMORY_BUDGET``, the
    ini option) or says how it was derived from the machine; ``available`` is the memory the machine had for the
    run (None when the user set the budget), ``lanes`` the processes sharing it (pytest-xdist workers, each with a
    TensorFlow server)."""

    bytes: int
    source: str
    available: int | None = None
    lanes: int = 1

    def describe(self) -> str:
        return f"{format_size(self.bytes)} per case ({self.source})"

    def record(self) -> dict:
        return {"bytes": self.bytes, "source": self.source, "available": self.available, "lanes": self.lanes}

    @classmethod
    def from_record(cls, rec: Mapping) -> MemoryBudget:
        return cls(
            int(rec["bytes"]), str(rec.get("source", "recorded")), rec.get("available"), int(rec.get("lanes", 1))
        )


_UNLIMITED = 2**60  # cgroup v1 says "no limit" with a number near 2**63


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as {field: bytes} (its values are in KiB)."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[key.strip()] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return fields


def available_memory() -> tuple[int, str]:
    """(bytes, where from): the memory this process's runs may use now. Linux: MemAvailable of ``/proc/meminfo``
    (free memory plus what the kernel can reclaim), lowered to the room left under a cgroup's limit (a container);
    elsewhere the physical memory. MachineError when none of that can be read."""
    found: list[tuple[int, str]] = []
    try:
        info = parse_meminfo(Path("/proc/meminfo").read_text(encoding="utf-8"))
    except OSError:
        info = {}
    if "MemAvailable" in info:
        found.append((info["MemAvailable"], "MemAvailable"))
    elif "MemTotal" in info:
        found.append((info["MemTotal"], "MemTotal"))
    for limit_path, usage_path in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_path)
        if limit is not None and limit < _UNLIMITED:
            found.append((max(0, limit - (_read_int(usage_path) or 0)), "the cgroup's memory limit"))
            break
    if not found:
        try:
            found.append((os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical memory"))
        except (ValueError, OSError, AttributeError):
            pass
    if not found:
        raise MachineError(f"cannot read how much memory this machine has; set {MEMORY_ENV} (e.g. 4GiB)")
    return min(found)


_AVAILABLE_AT_START: list[tuple[int, str]] = []


def memory_budget(
    settings: Sequence[tuple[str, str | None]] | None = None, lanes: int = 1, environ: Mapping[str, str] | None = None
) -> MemoryBudget:
    """The memory budget of one case, and where it comes from: the first of ``settings`` ((name, value) pairs,
    e.g. ``("--memory-budget", "2GiB")``; default: ``$HARNESS_MEMORY_BUDGET``) that has a value, else derived from
    the machine: ``MEMORY_SHARE`` of the memory available when this process first asked (``available_memory``),
    shared by ``lanes`` (the pytest-xdist workers, each with its TensorFlow server). MachineError naming the
    setting and its value for a bad value."""
    environ = os.environ if environ is None else environ
    lanes = max(1, int(lanes))
    for name, value in settings if settings is not None else [(MEMORY_ENV, environ.get(MEMORY_ENV))]:
        if value is not None and str(value).strip():
            return MemoryBudget(parse_size(value, name), name)
    if not _AVAILABLE_AT_START:  # once per process: a run's budget does not follow the machine's load as it goes
        _AVAILABLE_AT_START.append(available_memory())
    available, where = _AVAILABLE_AT_START[0]
    share = int(available * MEMORY_SHARE / lanes)
    per = f" / {lanes} workers" if lanes > 1 else ""
    return MemoryBudget(
        share, f"derived: {MEMORY_SHARE:.0%} of {where} {format_size(available)}{per}", available, lanes
    )
