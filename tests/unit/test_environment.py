"""harness.tf.environment: the measured environment, its cache, its record, and a probe that fails or dies.

The probe's own answers on this machine are checked by tests/unit/test_machines.py (against recorded machines) and by
the registry; here the bookkeeping around it runs with TensorFlow replaced, except for the last test.
"""

from __future__ import annotations

import json

import pytest
from support import MACHINES

from harness.tf import environment, isolation, kernel_probe, machine
from harness.tf.environment import Environment, Probe, load_recorded

ZEN4 = load_recorded(MACHINES / "amd-epyc-zen4.json")


def test_a_record_reads_back_to_the_same_environment():
    again = Environment.from_record(ZEN4.record())
    assert (again.cpu, again.isa_cap, again.onednn, again.tensorflow_version) == (
        ZEN4.cpu,
        ZEN4.isa_cap,
        ZEN4.onednn,
        ZEN4.tensorflow_version,
    )
    assert again.probe.paths == ZEN4.probe.paths and again.onednn_isa == "avx512_core_bf16"


def test_unknown_facts_are_none_never_a_guess():
    bare = Environment("2.21.0", True)
    assert bare.eigen(("Conv2D",), "float32", "named") is None and bare.onednn_isa is None
    assert all(v is None for v in bare.facts().values())
    assert ZEN4.eigen(("DepthwiseConv2dNative",), "int32", "named") is None  # no kernel for the dtype
    assert ZEN4.eigen(("DepthwiseConv2dNative", "Conv2D"), "float16", "named") is True  # any Eigen kernel
    assert ZEN4.facts()["cpu.avx512_bf16"] is True and ZEN4.facts()["cpu.amx_bf16"] is False


def test_the_cache_key_changes_with_everything_the_answer_depends_on():
    cpu = ZEN4.cpu
    key = environment.probe_key("2.21.0", True, cpu, None, ())
    assert key == environment.probe_key("2.21.0", True, cpu, None, ())
    others = {
        environment.probe_key("2.20.0", True, cpu, None, ()),
        environment.probe_key("2.21.0", False, cpu, None, ()),
        environment.probe_key("2.21.0", True, cpu, "AVX2", ()),
        environment.probe_key("2.21.0", True, _cpu_without(cpu, "avx512_bf16"), None, ()),
        environment.probe_key("2.21.0", True, cpu, None, (("ONEDNN_DEFAULT_FPMATH_MODE", "BF16"),)),
    }
    assert key not in others and len(others) == 5


def _cpu_without(cpu: machine.Cpu, flag: str) -> machine.Cpu:
    return machine.Cpu(cpu.arch, cpu.vendor, cpu.model, tuple(f for f in cpu.flags if f != flag))


def test_the_description_names_the_cpu_the_isa_and_each_dtypes_paths():
    text = "\n".join(environment.describe(ZEN4))
    assert text.startswith(
        "machine: AMD EPYC (AuthenticAMD, x86_64), CPU ISA level avx512_core_bf16; oneDNN v3.7.3 uses avx512_core_bf16"
    )
    assert "    float16   eigen\n" in text
    assert (
        "    float32   onednn; eigen: Conv; eigen for explicit padding: Conv2DBackpropInput, Conv2DBackpropFilter, "
        "DepthwiseConv2dNativeBackpropInput, DepthwiseConv2dNativeBackpropFilter"
    ) in text
    assert "kernel paths: not measured (no probe)" in "\n".join(environment.describe(Environment("2.21.0", True)))


def _fake_server(script):
    """A stand-in for the probe's TensorFlow server: each call appends the next batch of lines to the probe's file and
    returns the next result."""
    calls = []

    def call(op, args, kwargs):
        out, skip = args
        lines, result = script[len(calls)]
        calls.append(list(skip))
        with open(out, "a") as f:
            f.writelines(json.dumps(obj) + "\n" for obj in lines)
        return result

    return call, calls


def _answer(item, **fields):
    return [{"start": item}, {"item": item, **fields}]


def test_an_item_that_kills_the_probe_is_recorded_and_the_probe_resumes_after_it():
    items = kernel_probe.items()
    paths = [i for i in items if i.startswith("path/")]
    runs = [i for i in items if i.startswith("run/")]
    first = [line for i in paths for line in _answer(i, path="onednn")] + _answer(runs[0], runs="ok")
    killer = runs[1]
    rest = [line for i in runs[2:] for line in _answer(i, runs="ok")] + [
        {"item": "onednn", "version": "v3.7.3", "isa_text": "Intel AVX2"},
        {"item": "tensorflow", "version": "2.21.0"},
    ]
    call, calls = _fake_server(
        [
            (first + [{"start": killer}], isolation.Died("SIGSEGV", "Segmentation fault")),
            (rest, isolation.Returned("done")),
        ]
    )
    probe = environment.measure(call)
    assert probe.error is None  # a valid call that kills TensorFlow is a fact, not a failed probe
    assert probe.runs[killer.split("/", 1)[1]] == "aborts (SIGSEGV: Segmentation fault)"
    assert killer in calls[1] and runs[0] in calls[1]  # resumed after the killer, nothing done twice
    assert probe.onednn_isa == "avx2" and probe.tensorflow == "2.21.0"


def test_a_probe_that_cannot_start_tensorflow_leaves_every_fact_unknown():
    def broken(op, args, kwargs):
        raise RuntimeError("the TensorFlow zygote ended: ImportError: no tensorflow")

    probe = environment.measure(broken)
    assert probe.error == "TensorFlow could not be started: the TensorFlow zygote ended: ImportError: no tensorflow"
    env = Environment("2.21.0", True, ZEN4.cpu, None, probe)
    assert env.eigen(("Conv2D",), "float64", "named") is None and env.onednn_isa is None


def test_a_kernel_path_the_probe_could_not_measure_is_an_error():
    lines = [line for i in kernel_probe.items()[1:] for line in _answer(i, path="eigen", runs="ok")]
    call, _ = _fake_server([(lines, isolation.Returned("done"))])
    probe = environment.measure(call)
    assert probe.error == f"1 kernel path(s) could not be measured, e.g. {kernel_probe.items()[0].split('/', 1)[1]}"


def test_a_run_measures_once_per_environment_and_a_failed_probe_is_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    measured = []

    def fake_measure():
        measured.append(1)
        return Probe(dict(ZEN4.probe.paths), tensorflow="2.21.0", error=None if len(measured) > 1 else "boom")

    monkeypatch.setattr(environment, "measure", fake_measure)
    environment._current.cache_clear()
    try:
        assert Environment.current().probe.error == "boom"
        assert list((tmp_path / "probes").glob("*.json")) == []  # measured again next time
        Environment.current(refresh=True)
        (cached,) = (tmp_path / "probes").glob("*.json")
        environment._current.cache_clear()
        again = Environment.current()
        assert len(measured) == 2 and again.probe.source == "cache" and again.probe.paths == ZEN4.probe.paths
        assert json.loads(cached.read_text())["paths"] == ZEN4.probe.paths
    finally:
        environment._current.cache_clear()


@pytest.mark.tensorflow
def test_the_probe_here_measures_every_item():
    env = Environment.current()  # the real probe (cached once a run has measured it)
    assert env.probe is not None and env.probe.error is None, env.probe
    assert set(env.probe.paths) == {i.split("/", 1)[1] for i in kernel_probe.items() if i.startswith("path/")}
    assert set(env.probe.paths.values()) <= set(kernel_probe.PATHS) - {"unknown"}
    assert env.kernel_path("Conv2D", "float64", "named") == "eigen"  # no oneDNN float64 kernel anywhere
    # subnormal flushing, per kernel, float dtype and padding kind: True, False, or what came out instead
    assert set(env.probe.flushes) == {i.split("/", 1)[1] for i in kernel_probe.items() if i.startswith("flush/")}
    assert all(
        set(f) == {"inputs", "results"} and all(isinstance(v, (bool, str)) for v in f.values())
        for f in env.probe.flushes.values()
    )
    if env.onednn and env.probe.onednn_version:  # oneDNN ran here: float32 is its dtype on every CPU
        assert env.probe.onednn_isa_text
        assert env.kernel_path("Conv2D", "float32", "named") == "onednn"


@pytest.mark.parametrize("bad", ["AVX3", "avx-512"])
def test_a_bad_cap_stops_current_before_anything_starts(monkeypatch, bad):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", bad)
    with pytest.raises(machine.MachineError, match=f"ONEDNN_MAX_CPU_ISA='{bad}'"):
        Environment.current()
