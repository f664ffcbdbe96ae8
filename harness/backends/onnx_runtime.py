"""ONNX Runtime as a backend: a one-node ONNX model (``Conv``, or ``ConvTranspose`` for conv2d_transpose) per
configuration, run by ``onnxruntime.InferenceSession`` on the ``CPUExecutionProvider``, in the "explicit" convention.

The harness resolves the geometry and hands over channels-first data (``NCHW``, ``NCW`` for conv1d) and filters in
ONNX's own layouts, so the attributes are the harness's numbers written out:

* ``Conv``: weight ``OIHW`` [out_c, in_c / group, kh, kw]; ``pads = [x1_begin, x2_begin, x1_end, x2_end]``
  (asymmetric pads are fine), ``strides``, ``dilations``, ``group``. depthwise_conv2d (and the depthwise half of
  separable_conv2d) is ``group = in_c`` with the grouped weight [in_c * multiplier, 1, kh, kw].
* ``ConvTranspose``: weight ``IOHW`` [in_c, out_c / group, kh, kw] (its own input channels first), no kernel flip:
  ONNX defines it, like TensorFlow, as the gradient of ``Conv``. Its output size is::

      stride * (n - 1) + output_padding + (k - 1) * dilation + 1 - pads_begin - pads_end

  The harness's (before, after) are the forward convolution's pads; ``after`` < 0 means the output extends past the
  last input's footprint with zeros, which is ONNX's ``output_padding = -after`` (with ``pads_end = 0``).
  ONNX Runtime accepts ``output_padding < stride`` only (it checks ``< max(stride, dilation)`` and then that the
  output size is consistent); TensorFlow's accepted output shapes always give ``-after <= stride - 1``, so that is
  all the harness needs. Anything else (a larger ``-after``, a negative ``before``) is computed without those
  zeros and zero-extended here (``transpose_attributes``).

The ``output_shape`` attribute and ``auto_pad`` are never used: explicit pads say everything and leave ONNX
Runtime no choice of where an odd padding pixel goes.

Opset 17 (``Conv``-11 and ``ConvTranspose``-11 semantics; every ONNX Runtime since 1.14 runs it) with IR version 8.
ONNX Runtime's CPU provider implements ``Conv`` / ``ConvTranspose`` for float32 and float16 only: float64 has no
CPU kernel (``NOT_IMPLEMENTED``), and bfloat16 and int32 are not valid ``Conv`` types at opset 17, so those dtypes
are reported as not covered. Sessions are built once per (op, shapes, dtype, attributes) and kept in a small
cache; each runs single-threaded (``intra_op_num_threads = 1``), because pytest-xdist already runs a worker per core.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from harness.backends.base import Backend, explicit_backend

OPSET = 17
IR_VERSION = 8
DTYPES = ("float16", "float32")
_ELEM_TYPE = {np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.float32): TensorProto.FLOAT}
_CACHE_SIZE = 256
_sessions: dict[tuple, ort.InferenceSession] = {}


def _session(kind: str, x: np.ndarray, w: np.ndarray, attrs: dict) -> ort.InferenceSession:
    key = (
        kind,
        x.shape,
        w.shape,
        x.dtype.str,
        tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in attrs.items())),
    )
    sess = _sessions.get(key)
    if sess is None:
        elem = _ELEM_TYPE[x.dtype]
        node = helper.make_node(kind, ["x", "w"], ["y"], **attrs)
        graph = helper.make_graph(
            [node],
            f"harness_{kind}",
            [
                helper.make_tensor_value_info("x", elem, list(x.shape)),
                helper.make_tensor_value_info("w", elem, list(w.shape)),
            ],
            [helper.make_tensor_value_info("y", elem, [None] * x.ndim)],  # shape: ONNX Runtime infers it
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="tf-conv-harness",
        )
        onnx.checker.check_model(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # fatal only: a failing run raises, with the message
        sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        if len(_sessions) >= _CACHE_SIZE:
            _sessions.pop(next(iter(_sessions)))  # the oldest
        _sessions[key] = sess
    return sess


def _check_dtype(x: np.ndarray, w: np.ndarray) -> None:
    if x.dtype not in _ELEM_TYPE or w.dtype != x.dtype:
        raise TypeError(
            f"onnxruntime backend: dtypes {x.dtype}/{w.dtype}; ONNX Runtime's CPU Conv runs {', '.join(DTYPES)}"
        )


def conv(x, w, *, strides, dilations, pads, groups):
    """ONNX ``Conv``: x [N, C, *spatial], w [O, C / groups, *kernel]; pads one (before, after) per spatial axis."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    _check_dtype(x, w)
    attrs = {
        "kernel_shape": list(w.shape[2:]),
        "strides": list(strides),
        "dilations": list(dilations),
        "pads": [p[0] for p in pads] + [p[1] for p in pads],
        "group": int(groups),
    }
    return _session("Conv", x, w, attrs).run(None, {"x": x, "w": w})[0]


def transpose_attributes(stride: int, before: int, after: int) -> tuple[int, int, int, int, int]:
    """ONNX ``ConvTranspose`` attributes for one axis whose forward convolution pads (before, after).

    Returns (pads_begin, pads_end, output_padding, zeros_before, zeros_after): ONNX Runtime computes with the first
    three, then ``zeros_before`` / ``zeros_after`` zeros are appended on each side (both 0 for every output shape
    TensorFlow accepts). ``output_padding`` is kept below ``stride``, as ONNX Runtime requires.
    """
    pads_begin, zeros_before = (before, 0) if before >= 0 else (0, -before)
    if after >= 0:
        return pads_begin, after, 0, zeros_before, 0
    if -after < stride:
        return pads_begin, 0, -after, zeros_before, 0
    return pads_begin, 0, 0, zeros_before, -after


def conv_transpose(x, w, *, strides, dilations, pads, output_size, groups=1):
    """ONNX ``ConvTranspose``: x [N, I, *spatial], w [I, O / groups, *kernel] -> [N, O, *output_size]."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    _check_dtype(x, w)
    per_axis = [transpose_attributes(s, b, a) for s, (b, a) in zip(strides, pads)]
    attrs = {
        "kernel_shape": list(w.shape[2:]),
        "strides": list(strides),
        "dilations": list(dilations),
        "pads": [p[0] for p in per_axis] + [p[1] for p in per_axis],
        "output_padding": [p[2] for p in per_axis],
        "group": int(groups),
    }
    y = _session("ConvTranspose", x, w, attrs).run(None, {"x": x, "w": w})[0]
    if any(p[3] or p[4] for p in per_axis):
        y = np.pad(y, [(0, 0), (0, 0)] + [(p[3], p[4]) for p in per_axis])
    if tuple(y.shape[2:]) != tuple(output_size):
        raise ValueError(
            f"onnxruntime ConvTranspose: computed spatial shape {list(y.shape[2:])}, expected {list(output_size)}"
        )
    return y


def backend() -> Backend:
    layouts = {
        "conv": "OIHW",  # and a depthwise filter as the grouped weight [in_c * multiplier, 1, kh, kw]
        "transposed": "IOHW",
    }  # [its input channels, its output channels, kh, kw]
    return explicit_backend(
        "onnxruntime",
        conv,
        conv_transpose,
        data_format="NCHW",
        filter_layouts=layouts,
        dtypes=DTYPES,
        description=f"ONNX Runtime {ort.__version__} CPUExecutionProvider, one-node opset-{OPSET} models",
        extra="onnxruntime",
    )
