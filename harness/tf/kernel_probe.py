"""Ask TensorFlow itself which kernels it runs on this machine (runs inside a TensorFlow server of its own).

TensorFlow sends a convolution to oneDNN only when its own check of the CPU says oneDNN has the dtype
(``IsDataTypeSupportedByOneDNNOnThisCPU``: float16 needs AVX512-FP16 or AMX-FP16, bfloat16 AVX512F), and only for
some paddings (an explicitly padded backprop stays on Eigen). Which kernel runs decides what TensorFlow accepts and
computes, so ``harness.tf.environment`` measures it instead of assuming it, once per environment, through ``run``:

* **kernel paths**: each of ``KERNELS`` × dtype × padding kind ("named": SAME / VALID, "explicit") is called
  eagerly with operands whose channels do not match, which every kernel rejects; TensorFlow's error names the
  function it ran (``{{function_node __wrapped___MklNativeConv2D_device_...}}``): a ``_Mkl`` kernel is oneDNN,
  any other is Eigen. Where the message names none (an older TensorFlow), the kernel that a graph with the same
  call ran is read from ``RunMetadata`` instead. No kernel for the dtype is "none".
* **subnormals**: whether each kernel flushes subnormal inputs (DAZ) and results (FTZ) to zero, per dtype and
  padding kind (``harness.tf.flush_probe``);
* **rounding**: whether each kernel returns the exact sum rounded once where its partial sums are exact in float32,
  per dtype and padding kind (``harness.tf.rounding_probe``).
* **oneDNN**: with ``ONEDNN_VERBOSE=1`` (set here, before this process's first oneDNN primitive), each kernel is
  run on valid operands: oneDNN's own log gives its version, the ISA it uses (its ``isa:`` line, which honours
  ``ONEDNN_MAX_CPU_ISA``) and the implementation each call ran; a call that fails (a cap below what the dtype
  needs) is recorded with its error.

Results are appended to a JSON-lines file, one item at a time, each preceded by a ``start`` line, so that when a
call kills the process the caller knows which one and resumes after it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.conv.dtypes import DTYPES
from harness.tf import flush_probe, rounding_probe, wrappers

KERNELS_3D = ("Conv3D", "Conv3DBackpropInputV2", "Conv3DBackpropFilterV2")
KERNELS = (
    "Conv2D",
    "DepthwiseConv2dNative",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
    "DepthwiseConv2dNativeBackpropInput",
    "DepthwiseConv2dNativeBackpropFilter",
    *KERNELS_3D,
    "Conv",  # tf.raw_ops.Conv (probed in 2-D; its 3-D calls run the same kernel class)
)
PADDINGS = ("named", "explicit")


def paddings(kernel: str) -> tuple[str, ...]:
    """The padding kinds ``kernel`` takes: the 3-D kernels take "SAME" / "VALID" only."""
    return ("named",) if kernel in KERNELS_3D else PADDINGS


PATHS = ("onednn", "eigen", "none", "unknown")

_TAG = re.compile(r"__wrapped__(\w+?)_device_")
_NO_KERNEL = ("No registered", "not in list of allowed values", "allowed=[", "Could not find device for node")


def _operands(kernel: str, dtype: str, valid: bool) -> tuple[dict, dict]:
    """(tensor arguments as NumPy arrays, other arguments) of one call: NHWC, a 4x4 image, a 3x3 kernel, 2 channels
    (NDHWC, a 3x4x4 volume and a 3x3x3 kernel for the 3-D kernels); not ``valid``: 3 input channels against a filter
    for 2, which every kernel rejects (2 of 4 would be grouped)."""
    c = 2 if valid else 3
    dt = wrappers.numpy_dtype(dtype)  # TensorFlow's own type (bfloat16: not ml_dtypes' before 2.14)
    if kernel in KERNELS_3D:
        x3, w3, dy3 = np.ones((1, 3, 4, 4, c), dt), np.ones((3, 3, 3, 2, 2), dt), np.ones((1, 3, 4, 4, 2), dt)
        return {
            "Conv3D": ({"input": x3, "filter": w3}, {}),
            "Conv3DBackpropInputV2": ({"filter": w3, "out_backprop": dy3}, {"input_sizes": [1, 3, 4, 4, c]}),
            "Conv3DBackpropFilterV2": ({"input": x3, "out_backprop": dy3}, {"filter_sizes": [3, 3, 3, 2, 2]}),
        }[kernel]
    x = np.ones((1, 4, 4, c), dt)
    w = np.ones((3, 3, 2, 2), dt)
    w_dw = np.ones((3, 3, 2, 1), dt)
    dy = np.ones((1, 4, 4, 2), dt)
    return {
        "Conv2D": ({"input": x, "filter": w}, {}),
        "Conv": ({"input": x, "filter": w}, {}),
        "DepthwiseConv2dNative": ({"input": x, "filter": w_dw}, {}),
        "Conv2DBackpropInput": ({"filter": w, "out_backprop": dy}, {"input_sizes": [1, 4, 4, c]}),
        "Conv2DBackpropFilter": ({"input": x, "out_backprop": dy}, {"filter_sizes": [3, 3, 2, 2]}),
        "DepthwiseConv2dNativeBackpropInput": ({"filter": w_dw, "out_backprop": dy}, {"input_sizes": [1, 4, 4, c]}),
        "DepthwiseConv2dNativeBackpropFilter": ({"input": x, "out_backprop": dy}, {"filter_sizes": [3, 3, 2, 1]}),
    }[kernel]


def _call(kernel: str, dtype: str, padding: str, valid: bool, tensor: Callable[[str, np.ndarray], Any] | None = None):
    """``tf.raw_ops.<kernel>`` on the probe operands (``tensor`` makes each array a tensor; default tf.constant)."""
    tf = wrappers.tf()
    arrays, sizes = _operands(kernel, dtype, valid)
    tensor = tensor or (lambda name, a: tf.constant(a))
    pads = (
        {"padding": "SAME"}
        if padding == "named"
        else {"padding": "EXPLICIT", "explicit_paddings": [0, 0, 1, 1, 1, 1, 0, 0]}
    )
    rank = 5 if kernel in KERNELS_3D else 4
    return getattr(tf.raw_ops, kernel)(
        **{k: tensor(k, a) for k, a in arrays.items()}, **sizes, strides=[1] * rank, **pads
    )


def _path_of(kernel_name: str) -> str:
    return "onednn" if kernel_name.lstrip("_").startswith("Mkl") else "eigen"


def _graph_kernel(kernel: str, dtype: str, padding: str) -> str | None:
    """The type of the kernel a graph running the call executed (RunMetadata step stats), None if not found."""
    tf = wrappers.tf()
    v1 = tf.compat.v1
    graph, feeds = tf.Graph(), {}
    with graph.as_default():

        def placeholder(name, a):
            p = v1.placeholder(tf.as_dtype(a.dtype), a.shape, name=name)
            feeds[p] = a
            return p

        out = _call(kernel, dtype, padding, True, placeholder)
    with v1.Session(graph=graph) as session:
        meta = v1.RunMetadata()
        session.run(out, feeds, options=v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE), run_metadata=meta)
    for device in meta.step_stats.dev_stats:
        for node in device.node_stats:
            name, _, rest = node.timeline_label.partition(" = ")
            if name == out.op.name and rest:
                return rest.split("(", 1)[0]
    return None


def kernel_path(kernel: str, dtype: str, padding: str) -> dict:
    """Which kernel TensorFlow runs for one call: {path, kernel, method} (see the module docstring)."""
    try:
        _call(kernel, dtype, padding, valid=False)
        message = ""
    except Exception as exc:  # the expected outcome: the kernel rejected the operands
        message = str(exc)
    tag = _TAG.search(message)
    if tag:
        name = tag.group(1)
        name = "_" + name.lstrip("_") if name.lstrip("_").startswith("Mkl") else name
        return {"path": _path_of(name), "kernel": name, "method": "eager error"}
    if any(s in message for s in _NO_KERNEL):
        return {
            "path": "none",
            "kernel": None,
            "method": "eager error",
            "detail": message.strip().splitlines()[0][:200],
        }
    try:
        name = _graph_kernel(kernel, dtype, padding)
    except Exception as exc:
        if any(s in str(exc) for s in _NO_KERNEL):
            return {"path": "none", "kernel": None, "method": "graph"}
        return {
            "path": "unknown",
            "kernel": None,
            "method": "graph",
            "detail": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}",
        }
    if name is None:
        return {"path": "unknown", "kernel": None, "method": "graph", "detail": "no step stats for the node"}
    return {"path": _path_of(name), "kernel": name, "method": "graph"}


def _verbose_since(fd: int, offset: int) -> tuple[list[str], int]:
    size = os.fstat(fd).st_size
    text = os.pread(fd, max(size - offset, 0), offset).decode("utf-8", "replace")
    return [ln for ln in text.splitlines() if ln.startswith(("onednn_verbose", "dnnl_verbose"))], size


def _implementation(lines: list[str]) -> str | None:
    """The implementation of the last convolution primitive executed, from oneDNN verbose lines."""
    found = None
    for line in lines:
        parts = line.split(",")
        if "exec" in parts:
            i = parts.index("exec")
            if len(parts) > i + 3 and parts[i + 2] in ("convolution", "deconvolution"):
                found = parts[i + 3]
    return found


def items() -> list[str]:
    """Every probe item, in the order ``run`` takes them: the kernel paths, the valid runs, subnormal flushing, then
    rounding."""
    paths = [f"path/{k}/{d}/{p}" for k in KERNELS for d in DTYPES for p in paddings(k)]
    runs = [f"run/{k}/{d}" for k in KERNELS for d in DTYPES]
    return (
        paths
        + runs
        + [i for k in KERNELS for i in flush_probe.items((k,), paddings(k))]
        + [i for k in KERNELS for i in rounding_probe.items((k,), paddings(k))]
    )


def run(out_path: str, skip: list | tuple = ()) -> str:
    """Probe every item not in ``skip``, appending JSON lines to ``out_path`` (see the module docstring)."""
    os.environ["ONEDNN_VERBOSE"] = "1"  # read by oneDNN at this process's first primitive (none yet: a fresh fork)
    sys.stdout.flush()
    fd, log = tempfile.mkstemp(prefix="harness-onednn-", suffix=".log")
    os.unlink(log)
    os.dup2(fd, 1)  # oneDNN's verbose lines go to stdout
    offset = 0
    info: dict = {}
    no_kernel: set[tuple[str, str]] = set()  # (kernel, dtype) with no kernel: nothing to run
    with open(out_path, "a", encoding="utf-8") as out:

        def emit(obj: dict) -> None:
            out.write(json.dumps(obj) + "\n")
            out.flush()

        for item in items():
            if item in skip:
                continue
            emit({"start": item})
            kind, kernel, dtype, *rest = item.split("/")
            if kind == "path":
                found = kernel_path(kernel, dtype, rest[0])
                if found["path"] == "none":
                    no_kernel.add((kernel, dtype))
                emit({"item": item, **found})
                continue
            if kind == "flush":
                emit({"item": item, **flush_probe.flush(sys.modules[__name__], kernel, dtype, rest[0])})
                continue
            if kind == "rounding":
                emit({"item": item, **rounding_probe.rounds_once(sys.modules[__name__], kernel, dtype, rest[0])})
                continue
            if (kernel, dtype) in no_kernel:
                emit({"item": item, "runs": "no kernel", "implementation": None})
                continue
            try:
                _call(kernel, dtype, "named", valid=True)
                runs = "ok"
            except Exception as exc:
                text = str(exc).split("}}")[-1].strip()
                runs = f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"
            lines, offset = _verbose_since(fd, offset)
            for line in lines:
                if ",info,oneDNN v" in line:
                    info.setdefault("version", line.split("info,", 1)[1].split(" (")[0].replace("oneDNN ", ""))
                if ",isa:" in line:
                    info.setdefault("isa_text", line.split(",isa:", 1)[1].strip())
            emit({"item": item, "runs": runs, "implementation": _implementation(lines)})
        emit({"item": "onednn", **info})
        emit({"item": "tensorflow", "version": wrappers.tf().__version__, "numpy": np.__version__})
    return "done"
