"""The memory budget: the estimate (``harness.check.budget``) against what the reference really allocates, refusing
a case before anything is allocated, and the budget's value (``harness.tf.machine.memory_budget``)."""

from __future__ import annotations

import dataclasses
import re
import time
import tracemalloc

import pytest
from support import ROOT, registry

from harness import ops
from harness.check import budget, runner
from harness.check.prepare import blocks, prepare
from harness.check.runner import run_case, run_gradients
from harness.conv.dtypes import dtype_of
from harness.conv.tolerance import bound_for, compare
from harness.ops import gradients as reference_gradients
from harness.registry import cases as case_model
from harness.registry import error_inputs
from harness.registry.cases import parse_case
from harness.tf import machine
from harness.tf.environment import Environment
from harness.tf.machine import MemoryBudget

PLENTY = MemoryBudget(1 << 40, "test")
GiB = 1 << 30


def case(op: str, attrs: dict, name: str = "c", file: str = "cases/x.yaml", **inputs) -> case_model.Case:
    """A case of ``op`` whose operands are generated with these shapes (``layout, shape``, or a literal array)."""
    raw = {
        "name": name,
        "op": op,
        "attrs": attrs,
        "inputs": {
            key: {"layout": layout, "generate": {"dist": "normal", "shape": list(shape), "seed": 1}}
            for key, (layout, shape) in inputs.items()
        },
        "dtypes": ["float32"],
    }
    return parse_case(file, raw, 0)


def with_gradients(c: case_model.Case) -> case_model.Case:
    return dataclasses.replace(c, gradients=tuple(c.inputs))


# --- refusing, before anything is allocated ------------------------------------------------------

HUGE = case(
    "conv2d",
    {"strides": 1, "padding": "SAME"},
    name="huge",
    input=("NHWC", (1, 100000, 100000, 64)),
    filters=("HWIO", (3, 3, 64, 64)),
)
MESSAGE = re.compile(
    r"^cases/x\.yaml: case 'huge': array '[^']+' of shape \[[\d, ]+\] (float64|float32) needs \d+\.\d [KMGT]iB, "
    r"over the memory budget of 2\.0 GiB \(test\)$"
)


def test_an_enormous_generated_operand_is_refused_before_anything_is_allocated(monkeypatch):
    def never(self):
        raise AssertionError("the operand was generated")

    monkeypatch.setattr(case_model.Generator, "make", never)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(budget.OverBudget) as refused:
            prepare(HUGE, "float32", MemoryBudget(2 * GiB, "test"))
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(refused.value)
    assert MESSAGE.match(message), message
    assert "\n" not in message
    assert seconds < 0.1  # (under tracemalloc; about a millisecond without)
    assert peak < 1 << 20  # nothing of the operand's 2.3 TiB, not even a float64 copy of a row of it


def test_the_refusal_names_the_largest_array_and_its_size():
    found = budget.estimate(HUGE, "float32", record=True)
    assert found.largest is not None
    # the largest real array of all (maybe before the peak); stand-ins hold several arrays or many small ones
    assert found.largest.nbytes >= max(a.nbytes for a in found.arrays if not a.stand_in) and not found.largest.stand_in
    message = str(budget.OverBudget(HUGE, "float32", found, MemoryBudget(2 * GiB, "test")))
    size = f"{found.largest.nbytes / 2**40:.1f} TiB"
    assert f"array {found.largest.name!r} of shape {list(found.largest.shape)} " in message and size in message
    # the generated float64 values of the input: 1e10 pixels x 64 channels x 8 bytes
    assert found.largest.nbytes >= 1 * 100000 * 100000 * 64 * 8


def test_a_peak_over_the_budget_without_one_array_over_it_says_what_made_the_peak():
    small = case(
        "conv2d", {"strides": 1, "padding": "SAME"}, input=("NHWC", (1, 64, 64, 16)), filters=("HWIO", (3, 3, 16, 16))
    )
    found = budget.estimate(small, "float32", record=True)
    limit = MemoryBudget(found.largest.nbytes + 1, "--memory-budget")
    with pytest.raises(budget.OverBudget) as refused:
        budget.check(small, "float32", limit)
    message = str(refused.value)
    assert message.startswith("cases/x.yaml: case 'c': needs ") and " at its peak (" in message, message
    assert message.endswith(f"over the memory budget of {machine.format_size(limit.bytes)} (--memory-budget)")


def test_run_case_reports_a_refused_case_as_failed_with_the_one_line_error(monkeypatch):
    """A modest case under HARNESS_MEMORY_BUDGET=1MiB: refused before its operands are generated, TensorFlow never
    called, the item fails with the error alone."""
    monkeypatch.setenv(machine.MEMORY_ENV, "1MiB")
    monkeypatch.setattr(case_model.Generator, "make", lambda self: pytest.fail("generated"))
    modest = case(
        "conv2d",
        {"strides": 1, "padding": "SAME"},
        name="huge",
        input=("NHWC", (1, 128, 128, 16)),
        filters=("HWIO", (3, 3, 16, 8)),
    )
    env = Environment("2.21.0", True, memory=machine.memory_budget())
    for outcome in (run_case(modest, "float32", env=env), run_gradients(with_gradients(modest), "float32", env=env)):
        assert outcome.status == "failed"
        assert outcome.tensorflow == budget.NOT_RUN
        (error,) = outcome.errors
        assert error.startswith("cases/x.yaml: case 'huge': ") and error.endswith(
            "over the memory budget of 1.0 MiB (HARNESS_MEMORY_BUDGET)"
        ), error
        assert "array '" in error or " at its peak (" in error


def test_every_case_of_the_registry_fits_a_gigabyte_and_is_estimated_fast():
    """The shipped registry runs on small machines (CI runners): no case needs a GiB. And the estimate runs for
    every item of every run: well under a millisecond each."""
    items = [(c, dt, kind) for c in registry() for kind in ("forward", "gradients")
             for dt in (c.dtypes if kind == "forward" else c.gradient_dtypes)]  # fmt: skip
    start = time.process_time()  # this process's CPU time: the machine may be busy with other work
    peaks = [budget.estimate(c, dt, kind).peak for c, dt, kind in items]
    per_item = (time.process_time() - start) / len(items)
    assert max(peaks) < GiB
    assert per_item < 1e-3, f"{per_item * 1e6:.0f} us per item"


def test_replayed_sub_calls_give_the_same_peak_as_walking_them():
    for c in registry()[::25]:
        for dt in c.gradient_dtypes[:1] or c.dtypes[:1]:
            for kind in ("forward", "gradients") if c.gradients else ("forward",):
                fast, slow = budget.estimate(c, dt, kind), budget.estimate(c, dt, kind, record=True)
                assert (fast.peak, fast.phases) == (slow.peak, slow.phases), c.id


# --- the estimate is an upper bound of what the reference allocates ------------------------------

FORWARD = {
    "conv2d 3x3 SAME": case("conv2d", {"strides": 1, "padding": "SAME"}, input=("NHWC", (2, 40, 40, 16)),
                            filters=("HWIO", (3, 3, 16, 32))),
    "conv2d 7x7 stride 2 NCHW": case("conv2d", {"strides": 2, "padding": "SAME", "data_format": "NCHW"},
                                     input=("NHWC", (1, 96, 96, 3)), filters=("HWIO", (7, 7, 3, 32))),
    "conv2d pointwise NCHW": case("conv2d", {"strides": 1, "padding": "VALID", "data_format": "NCHW"},
                                  input=("NHWC", (2, 32, 32, 64)), filters=("HWIO", (1, 1, 64, 64))),
    "conv2d deep (out channels > pixels)": case("conv2d", {"strides": 1, "padding": "SAME"},
                                                input=("NHWC", (1, 4, 4, 256)), filters=("HWIO", (3, 3, 256, 512))),
    "conv1d dilated": case("conv1d", {"stride": 1, "padding": "VALID", "dilations": 4}, input=("NWC", (4, 2000, 16)),
                           filters=("WIO", (3, 16, 32))),
    "atrous_conv2d": case("atrous_conv2d", {"rate": 3, "padding": "SAME"}, value=("NHWC", (1, 48, 48, 16)),
                          filters=("HWIO", (3, 3, 16, 16))),
    "depthwise stride 1": case("depthwise_conv2d", {"strides": [1, 1, 1, 1], "padding": "SAME"},
                               input=("NHWC", (2, 56, 56, 32)), filter=("HWIM", (3, 3, 32, 2))),
    "depthwise stride 2 NCHW": case("depthwise_conv2d", {"strides": [1, 1, 2, 2], "padding": "SAME",
                                                         "data_format": "NCHW"},
                                    input=("NHWC", (2, 56, 56, 32)), filter=("HWIM", (3, 3, 32, 1))),
    "separable": case("separable_conv2d", {"strides": [1, 1, 1, 1], "padding": "SAME"},
                      input=("NHWC", (1, 40, 40, 24)), depthwise_filter=("HWIM", (3, 3, 24, 2)),
                      pointwise_filter=("HWIO", (1, 1, 48, 32))),
    "conv2d_transpose stride 2": case("conv2d_transpose", {"output_shape": [2, 48, 48, 16], "strides": 2,
                                                           "padding": "SAME"},
                                      input=("NHWC", (2, 24, 24, 64)), filters=("HWOI", (4, 4, 16, 64))),
    "conv2d_transpose NCHW smallest": case("conv2d_transpose", {"output_shape": "smallest", "strides": 3,
                                                                "padding": "VALID", "data_format": "NCHW"},
                                           input=("NHWC", (1, 20, 20, 32)), filters=("HWOI", (5, 5, 8, 32))),
    "conv1d_transpose": case("conv1d_transpose", {"output_shape": "largest", "strides": 2, "padding": "SAME"},
                             input=("NWC", (2, 1000, 32)), filters=("WOI", (5, 16, 32))),
    "conv3d NCDHW": case("conv3d", {"strides": [1, 1, 2, 1, 1], "padding": "SAME", "data_format": "NCDHW"},
                         input=("NDHWC", (1, 8, 16, 16, 8)), filters=("DHWIO", (3, 3, 3, 8, 16))),
    "convolution_3d grouped": case("convolution_3d", {"padding": "VALID"}, input=("NDHWC", (1, 6, 12, 12, 8)),
                                   filters=("DHWIO", (2, 3, 3, 4, 8))),
    "conv_transpose_3d": case("conv_transpose_3d", {"output_shape": "smallest", "strides": 2, "padding": "SAME"},
                              input=("NDHWC", (1, 6, 8, 8, 16)), filters=("DHWOI", (3, 3, 3, 8, 16))),
    "conv3d_transpose tiled 2x2x2/2": case("conv3d_transpose", {"output_shape": [1, 16, 16, 16, 32], "strides": 2,
                                                                "padding": "SAME"},
                                           input=("NDHWC", (1, 8, 8, 8, 64)), filters=("DHWOI", (2, 2, 2, 32, 64))),
    "atrous_conv2d_transpose": case("atrous_conv2d_transpose", {"output_shape": "smallest", "rate": 2,
                                                                "padding": "SAME"},
                                    value=("NHWC", (1, 20, 20, 16)), filters=("HWOI", (3, 3, 8, 16))),
    "raw_conv_2d explicit": case("raw_conv_2d", {"strides": [1, 2, 1, 1], "padding": "EXPLICIT",
                                                 "explicit_paddings": [0, 0, 1, 2, 3, 0, 0, 0]},
                                 input=("NHWC", (2, 30, 30, 8)), filter=("HWIO", (3, 3, 8, 16))),
    "fused_resize_and_pad_conv2d": case("fused_resize_and_pad_conv2d", {"size": [48, 40], "paddings": [[0, 0], [2, 2],
                                                                                                     [1, 1], [0, 0]],
                                                                         "mode": "REFLECT", "strides": [1, 1, 1, 1],
                                                                         "padding": "SAME"},
                                        input=("NHWC", (1, 30, 30, 8)), filter=("HWIO", (3, 3, 8, 16))),
    "fused_pad_conv2d": case("fused_pad_conv2d", {"paddings": [[0, 0], [2, 2], [1, 1], [0, 0]], "mode": "SYMMETRIC",
                                                  "strides": [1, 2, 2, 1], "padding": "VALID"},
                             input=("NHWC", (1, 40, 40, 8)), filter=("HWIO", (3, 3, 8, 16))),
}  # fmt: skip
RAW = {
    "conv2d_backprop_input": case("conv2d_backprop_input", {"input_sizes": [2, 32, 32, 16], "strides": [1, 2, 2, 1],
                                                            "padding": "SAME"},
                                  filter=("HWIO", (3, 3, 16, 32)), out_backprop=("NHWC", (2, 16, 16, 32))),
    "conv2d_backprop_filter": case("conv2d_backprop_filter", {"filter_sizes": [3, 3, 16, 32], "strides": [1, 1, 1, 1],
                                                              "padding": "VALID"},
                                   input=("NHWC", (2, 34, 34, 16)), out_backprop=("NHWC", (2, 32, 32, 32))),
    "depthwise backprop_input stride 2": case("depthwise_conv2d_native_backprop_input",
                                              {"input_sizes": [2, 32, 32, 16], "strides": [1, 2, 2, 1],
                                               "padding": "SAME"},
                                              filter=("HWIM", (3, 3, 16, 2)), out_backprop=("NHWC", (2, 16, 16, 32))),
    "depthwise backprop_filter": case("depthwise_conv2d_native_backprop_filter",
                                      {"filter_sizes": [3, 3, 16, 2], "strides": [1, 1, 1, 1], "padding": "SAME"},
                                      input=("NHWC", (2, 32, 32, 16)), out_backprop=("NHWC", (2, 32, 32, 32))),
    "conv3d_backprop_input_v2": case("conv3d_backprop_input_v2", {"input_sizes": [1, 8, 16, 16, 8],
                                                                  "strides": [1, 1, 2, 2, 1], "padding": "SAME"},
                                     filter=("DHWIO", (3, 3, 3, 8, 16)), out_backprop=("NDHWC", (1, 8, 8, 8, 16))),
    "conv3d_backprop_filter (V1)": case("conv3d_backprop_filter", {"strides": [1, 1, 1, 1, 1], "padding": "VALID"},
                                        input=("NDHWC", (1, 8, 12, 12, 8)), filter=("DHWIO", (3, 3, 3, 8, 16)),
                                        out_backprop=("NDHWC", (1, 6, 10, 10, 16))),
    "conv2d_backprop_input_v2 NCHW": case("conv2d_backprop_input_v2", {"strides": [1, 1, 2, 2], "padding": "SAME",
                                                                       "data_format": "NCHW"},
                                          input=("NHWC", (2, 32, 32, 16)), filter=("HWIO", (3, 3, 16, 32)),
                                          out_backprop=("NHWC", (2, 16, 16, 32))),
    "depthwise_conv2d_backprop_filter (tf.nn)": case("depthwise_conv2d_backprop_filter",
                                                     {"filter_sizes": [3, 3, 16, 2], "strides": [1, 1, 1, 1],
                                                      "padding": [[0, 0], [1, 1], [1, 1], [0, 0]]},
                                                     input=("NHWC", (2, 32, 32, 16)),
                                                     out_backprop=("NHWC", (2, 32, 32, 32))),
}  # fmt: skip
GRADIENTS = {
    name: with_gradients(FORWARD[name])
    for name in (
        "conv2d 3x3 SAME",
        "conv2d 7x7 stride 2 NCHW",
        "conv1d dilated",
        "depthwise stride 1",
        "depthwise stride 2 NCHW",
        "separable",
        "conv2d_transpose stride 2",
        "conv1d_transpose",
        "conv3d NCDHW",
        "conv_transpose_3d",
    )
}


def measured(run) -> int:
    """The most NumPy and Python allocated at once while ``run()`` ran, above what was allocated before."""
    run()  # once first: what a first call imports and caches is not the case's
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def forward_check(c: case_model.Case, dtype: str = "float32") -> None:
    """What a forward item does in this process, besides TensorFlow (which runs in its server)."""
    p = prepare(c, dtype, PLENTY)
    if p.reference is not None:
        bound = p.reference_bound()
        outputs = runner._textbook(p)[0]
        for name, out in {"tensorflow": p.reference.copy(), **outputs}.items():
            compare(name, out, "reference", p.reference, bound)


def gradient_check(c: case_model.Case, dtype: str = "float32") -> None:
    """What a gradient item does in this process, besides TensorFlow."""
    p = prepare(c, dtype, PLENTY, "gradients")
    ref = p.reference_output()
    dy = reference_gradients.output_gradient("dy", ref.shape, ref.dtype)
    with blocks(c):
        want = reference_gradients.gradients(c.op, p.arrays, p.attrs, dy)
    for name in c.gradients:
        function = reference_gradients.gradient_function(c.op, name)
        bound = bound_for(function, {**p.arrays, "out_backprop": dy}, p.attrs, dtype_of(dtype), c.tolerance)
        compare("tensorflow", want[name].copy(), "reference", want[name], bound)
        raw = reference_gradients.raw_backprop(c.op, name, p.arrays, p.attrs, dy)
        if raw is not None:
            with blocks(c):
                raw.reference()
            bound_for(raw.run, raw.operands, raw.kwargs, dtype_of(dtype), c.tolerance)


def in_process(found: budget.Estimate) -> int:
    """The estimate's peak over the steps that run in the harness's process (not TensorFlow's calls)."""
    return max(peak for phase, peak in found.phases.items() if "TensorFlow" not in phase)


@pytest.mark.parametrize("name", [*FORWARD, *RAW])
def test_the_estimate_bounds_what_prepare_and_the_bound_allocate(name):
    c = {**FORWARD, **RAW}[name]
    found = budget.estimate(c, "float32")
    prepared = measured(lambda: prepare(c, "float32", PLENTY))
    whole = measured(lambda: forward_check(c))
    prepare_estimate = max(found.phases["generating the operands"], found.phases["the reference"])
    assert prepared <= prepare_estimate <= 1.5 * prepared + budget.SLACK, (prepared, found.phases)
    # (einsum's copies in the textbook formulations vary with the path it picks: counted at their most)
    assert whole <= in_process(found) <= 2 * whole + budget.SLACK, (whole, found.phases)


@pytest.mark.parametrize("name", GRADIENTS)
def test_the_estimate_bounds_what_the_reference_gradients_allocate(name):
    c = GRADIENTS[name]
    found = budget.estimate(c, "float32", "gradients")
    whole = measured(lambda: gradient_check(c))
    assert whole <= in_process(found) <= 2 * whole + budget.SLACK, (whole, found.phases)


def test_the_estimate_follows_the_blocks_of_a_case_with_block_bytes():
    c = FORWARD["conv2d 3x3 SAME"]
    small = dataclasses.replace(c, block_bytes=4096)
    assert (
        budget.estimate(small, "float32").phases["the reference"]
        < budget.estimate(c, "float32").phases["the reference"]
    )
    assert measured(lambda: forward_check(small)) <= in_process(budget.estimate(small, "float32"))


def test_loading_a_huge_transposed_case_with_every_output_shape_allocates_nothing():
    huge = case(
        "conv2d_transpose",
        {"output_shape": "all", "strides": 2, "padding": "SAME"},
        input=("NHWC", (1, 100000, 100000, 64)),
        filters=("HWOI", (3, 3, 8, 64)),
    )
    tracemalloc.start()
    try:
        variants = case_model.expand_symbolic(huge)  # reads the operands' shapes
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [v.name for v in variants] == ["c/out=199999x199999", "c/out=199999x200000", "c/out=200000x199999",
                                          "c/out=200000x200000"]  # fmt: skip
    assert peak < 1 << 20


def test_an_operand_the_reference_rejects_ends_the_estimate_after_the_operands():
    bad = case(
        "conv2d", {"strides": 1, "padding": "VALID"}, input=("NHWC", (1, 4, 4, 3)), filters=("HWIO", (7, 7, 3, 2))
    )
    found = budget.estimate(bad, "float32")
    assert set(found.phases) <= {"", "generating the operands", "the reference"}
    assert found.peak < budget.SLACK + 64 * 1024


# --- the budget's value -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, size",
    [("2GiB", 2 * GiB), ("500MB", 500 * 10**6), ("1073741824", GiB), ("1.5 GiB", 3 * GiB // 2), ("64kib", 65536),
     (" 2 gb ", 2 * 10**9), ("3TiB", 3 << 40), ("512 B", 512)],
)  # fmt: skip
def test_sizes_as_users_write_them(text, size):
    assert machine.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "2 GB2", "2XB", "-1GiB", "0", "0.0001B", "GiB", "1e9"])
def test_a_bad_size_is_an_error_naming_the_setting_and_its_value(text):
    with pytest.raises(machine.MachineError) as info:
        machine.parse_size(text, "--memory-budget")
    assert str(info.value).startswith(f"--memory-budget={text!r}: ")
    assert "\n" not in str(info.value)


def test_the_first_setting_given_wins_else_the_environment_variable(monkeypatch):
    monkeypatch.setenv(machine.MEMORY_ENV, "3GiB")
    assert machine.memory_budget() == MemoryBudget(3 * GiB, machine.MEMORY_ENV)
    chosen = machine.memory_budget([("--memory-budget", None), (machine.MEMORY_ENV, "3GiB"), ("ini", "1GiB")])
    assert (chosen.bytes, chosen.source) == (3 * GiB, machine.MEMORY_ENV)
    chosen = machine.memory_budget([("--memory-budget", "500MB"), (machine.MEMORY_ENV, "3GiB")])
    assert (chosen.bytes, chosen.source) == (500 * 10**6, "--memory-budget")
    monkeypatch.setenv(machine.MEMORY_ENV, "two gigs")
    with pytest.raises(machine.MachineError, match=r"^HARNESS_MEMORY_BUDGET='two gigs': not a memory size"):
        machine.memory_budget()


def test_the_derived_budget_is_a_share_of_the_available_memory_split_among_the_workers(monkeypatch):
    monkeypatch.delenv(machine.MEMORY_ENV, raising=False)
    monkeypatch.setattr(machine, "_AVAILABLE_AT_START", [(24 * GiB, "MemAvailable")])
    one, two = machine.memory_budget(), machine.memory_budget(lanes=2)
    assert one.bytes == int(24 * GiB * machine.MEMORY_SHARE) and two.bytes == one.bytes // 2
    assert two.source == "derived: 50% of MemAvailable 24.0 GiB / 2 workers"
    assert two.describe() == "6.0 GiB per case (derived: 50% of MemAvailable 24.0 GiB / 2 workers)"


def test_this_machine_s_available_memory_is_read():
    available, where = machine.available_memory()
    assert available > 0 and where
    assert machine.parse_meminfo("MemTotal:  2048 kB\nMemAvailable:    1024 kB\nHugePages_Total: 0\n") == {
        "MemTotal": 2 << 20,
        "MemAvailable": 1 << 20,
        "HugePages_Total": 0,
    }


def test_harness_verify_checks_its_memory_budget_before_running(capsys):
    from harness import cli

    assert cli.parser().parse_args(["verify", "--memory-budget", "4GiB"]).memory_budget == "4GiB"
    assert cli.main(["verify", "--memory-budget", "lots"]) == 2  # before pytest starts
    assert "harness: error: argument --memory-budget: 'lots': not a memory size" in capsys.readouterr().err


def test_the_budget_is_part_of_the_environment_record():
    env = Environment("2.21.0", True, memory=MemoryBudget(2 * GiB, "--memory-budget"))
    record = env.record()
    assert record["memory_budget"] == {"bytes": 2 * GiB, "source": "--memory-budget", "available": None, "lanes": 1}
    assert Environment.from_record(record).memory == env.memory
    assert Environment.from_record({**record, "memory_budget": None}).memory is None


def test_docs_document_the_budget():
    text = (ROOT / "docs" / "running.md").read_text(encoding="utf-8")
    for needle in ("HARNESS_MEMORY_BUDGET", "--memory-budget", "harness_memory_budget", "half of `MemAvailable`"):
        assert needle in text
    assert machine.MEMORY_SHARE == 0.5  # what the docs say


def test_shares_of_one_run_with_their_own_derived_budgets_merge_as_one_environment():
    from harness.reports import merge, results

    env = Environment("2.21.0", True, memory=MemoryBudget(5 * GiB, "derived: ...", 20 * GiB, 2)).record()
    other = {**env, "memory_budget": MemoryBudget(4 * GiB, "derived: ...", 16 * GiB, 2).record()}
    shared, apart = merge.merge_environments([("a", results.Run(env)), ("b", results.Run(other))])
    assert apart is None and shared == env


@pytest.mark.parametrize("op", [*ops.OPS, *ops.RAW_OPS])
def test_every_op_has_a_memory_model_to_the_end_of_its_check(op):
    """The estimate stops where the reference would raise; on a valid case of each op it must walk every step (an
    op the model does not know would stop at the reference, silently estimating too little)."""
    c = parse_case("x.yaml", error_inputs.base_case(op, ["float32"]), 0)
    assert list(budget.estimate(c, "float32").phases)[-1] == "comparing the outputs"
    if ops.get(op).gradient is not None:
        assert list(budget.estimate(with_gradients(c), "float32", "gradients").phases)[-1] == "the raw backprop ops"
