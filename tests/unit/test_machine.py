"""harness.tf.machine: the CPU's deciding features, oneDNN's ISA levels and caps, the cache directory (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import MACHINES

from harness.tf import machine
from harness.tf.machine import Cpu, MachineError

ZEN4_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl \
avx512_bf16 avx512vbmi avx512_vnni

processor\t: 1
vendor_id\t: AuthenticAMD
flags\t\t: fpu
"""
GRAVITON_CPUINFO = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm sve sve2 i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd4f
"""


def test_cpuinfo_gives_the_model_and_only_the_deciding_features_of_the_first_processor():
    cpu = machine.parse_cpuinfo(ZEN4_CPUINFO, "x86_64")
    assert cpu == Cpu(
        "x86_64",
        "AuthenticAMD",
        "AMD EPYC",
        (
            "sse4_1",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512dq",
            "avx512bw",
            "avx512vl",
            "avx512_vnni",
            "avx512_bf16",
        ),
    )
    assert cpu.has("avx512_bf16") and not cpu.has("avx512_fp16") and not cpu.has("amx_bf16")


def test_arm_cpuinfo_names_its_features_line_and_implementer():
    cpu = machine.parse_cpuinfo(GRAVITON_CPUINFO, "aarch64")
    assert cpu.vendor == "implementer 0x41" and cpu.model == "part 0xd4f"
    assert cpu.flags == ("asimd", "asimdhp", "fphp", "i8mm", "bf16", "sve", "sve2")
    assert machine.cpu_isa_level(cpu) is None and machine.caps_below(cpu) == ()


def test_a_cpuinfo_without_features_is_an_error_naming_the_file():
    with pytest.raises(MachineError, match=r"^/proc/cpuinfo: no 'flags' or 'Features' line"):
        machine.parse_cpuinfo("processor\t: 0\nmodel name\t: Mystery\n", "x86_64")


def test_sysctl_output_on_a_mac():
    text = "machdep.cpu.brand_string: Apple M2\nhw.optional.neon: 1\nhw.optional.arm.FEAT_BF16: 1\nhw.optional.arm.FEAT_I8MM: 0\n"
    cpu = machine.parse_sysctl(text, "arm64")
    assert cpu == Cpu("arm64", "Apple", "Apple M2", ("asimd", "bf16"))


def test_this_machine_is_readable():
    cpu = machine.read_cpu()
    assert cpu.arch and cpu.flags, "the deciding features of this very CPU"


@pytest.mark.parametrize(
    "name, level, below",
    [
        ("amd-epyc-zen4", "avx512_core_bf16", ("SSE41", "AVX", "AVX2", "AVX512_CORE", "AVX512_CORE_VNNI")),
        (
            "intel-sapphire-rapids",
            "avx512_core_amx",
            ("SSE41", "AVX", "AVX2", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_FP16"),
        ),
    ],
)
def test_isa_level_and_the_caps_below_it_follow_onednns_rules(name, level, below):
    record = json.loads((MACHINES / f"{name}.json").read_text())
    cpu = Cpu.from_record({"arch": record["machine"], "flags": record["cpu_flags"]})
    assert machine.cpu_isa_level(cpu) == level == record["cpu_isa_level"]
    assert machine.caps_below(cpu) == below


def test_avx512_needs_all_four_core_subsets_and_avx2_needs_fma():
    assert machine.cpu_isa_level(Cpu("x86_64", "?", "?", ("sse4_1", "avx", "avx2", "fma", "avx512f"))) == "avx2"
    assert machine.cpu_isa_level(Cpu("x86_64", "?", "?", ("sse4_1", "avx", "avx2"))) == "avx"
    assert machine.cpu_isa_level(Cpu("x86_64", "?", "?", ("sse4_1", "avx", "avx2", "fma", "avx_vnni"))) == "avx2_vnni"


@pytest.mark.parametrize(
    "text, isa",
    [
        ("Intel SSE4.1", "sse41"),
        ("Intel AVX", "avx"),
        ("Intel AVX2", "avx2"),
        ("Intel AVX2 with Intel DL Boost", "avx2_vnni"),
        ("Intel AVX2 with Intel DL Boost, float16 and bfloat16 support (preview support)", "avx2_vnni_2"),
        ("Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions", "avx512_core"),
        ("Intel AVX-512 with Intel DL Boost", "avx512_core_vnni"),
        ("Intel AVX-512 with Intel DL Boost and bfloat16 support", "avx512_core_bf16"),
        ("Intel AVX-512 with float16, Intel DL Boost and bfloat16 support ", "avx512_core_fp16"),
        (
            "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and Intel AMX with bfloat16 and 8-bit integer "
            "support",
            "avx512_core_amx",
        ),
        (
            "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and Intel AMX with bfloat16, 8-bit integer and "
            "float16 support",
            "avx512_core_amx_fp16",
        ),
        ("", None),
        ("Something else", None),
    ],
)
def test_onednn_isa_lines_name_their_level(text, isa):
    # the texts oneDNN's verbose mode prints (cpu_isa_traits.cpp, get_isa_info)
    assert machine.normalize_isa(text) == isa


def test_the_cap_is_validated_and_read_in_upper_case():
    assert machine.isa_cap({}, "x86_64") is None
    assert machine.isa_cap({"ONEDNN_MAX_CPU_ISA": "avx2"}, "x86_64") == "AVX2"  # oneDNN itself ignores case
    assert machine.isa_cap({"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, "x86_64") == "AVX512_CORE"
    assert machine.isa_cap({"ONEDNN_MAX_CPU_ISA": "SVE_256"}, "aarch64") == "SVE_256"
    with pytest.raises(
        MachineError,
        match=r"^ONEDNN_MAX_CPU_ISA='AVX3': not a oneDNN ISA on x86_64; expected one "
        r"of SSE41, AVX, AVX2, .*DEFAULT$",
    ):
        machine.isa_cap({"ONEDNN_MAX_CPU_ISA": "AVX3"}, "x86_64")
    with pytest.raises(MachineError, match="not a oneDNN ISA on aarch64"):
        machine.isa_cap({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "aarch64")
    with pytest.raises(MachineError, match="disagree: ONEDNN_MAX_CPU_ISA='AVX2', DNNL_MAX_CPU_ISA='SSE41'"):
        machine.isa_cap({"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "SSE41"}, "x86_64")


def test_the_cache_directory_honours_the_override_and_xdg(tmp_path):
    assert machine.cache_dir({"HARNESS_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert machine.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "tf-conv-harness"
    assert machine.cache_dir({}) == Path.home() / ".cache" / "tf-conv-harness"


def test_the_isa_derived_from_the_features_and_the_cap_is_the_one_onednn_reported_on_every_recorded_machine():
    from harness.tf.environment import load_recorded

    for path in sorted(MACHINES.glob("*.json")):
        env = load_recorded(path)
        if env.onednn:
            assert machine.effective_isa(env.cpu, env.isa_cap) == env.onednn_isa, path.name
    zen4 = load_recorded(MACHINES / "amd-epyc-zen4.json").cpu
    assert machine.effective_isa(zen4, "AVX512_CORE_AMX") == "avx512_core_bf16"  # a cap above the CPU: no effect
    assert machine.effective_isa(zen4, "AVX2_VNNI") == "avx2"  # not on the AVX-512 branch: the highest below both
    assert machine.effective_isa(zen4, "DEFAULT") == machine.effective_isa(zen4, None) == "avx512_core_bf16"
