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
from collections.abc import Mapping
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
