"""TensorFlow Lite: one-op quantized convolution models, built from given parameters or converted and calibrated by
TFLite's converter, and run by its interpreter under each op resolver.

The three ops are TFLite's ``CONV_2D``, ``DEPTHWISE_CONV_2D`` and ``TRANSPOSE_CONV``, named as the integer reference
names them (``harness.conv.quantized``): ``conv2d``, ``depthwise_conv2d``, ``transpose_conv``. A model's operands and
parameters cross as plain values (``QUANTIZATION_KEYS``), the model itself as a uint8 array (its flatbuffer), so that
the functions here can run in TensorFlow's server process (``harness.tf.isolation.SERVER_CALLS``).

The interpreter takes the model's input as integers and returns its output as integers: nothing is quantized or
dequantized here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from harness.conv.padding import window

# The interpreter's op resolvers (tf.lite.experimental.OpResolverType), by the names the harness uses:
#   auto: the builtin kernels with the default delegate, XNNPACK; builtin: the optimized builtin kernels alone;
#   ref: the reference kernels.
RESOLVERS = {"auto": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "ref": "BUILTIN_REF"}
OPS = ("conv2d", "depthwise_conv2d", "transpose_conv")
BUILTIN_NAMES = {"conv2d": "CONV_2D", "depthwise_conv2d": "DEPTHWISE_CONV_2D", "transpose_conv": "TRANSPOSE_CONV"}
# The parameters of a quantized model (harness.conv.quantized's keyword arguments) and its operands.
QUANTIZATION_KEYS = ("input_scale", "input_zero_point", "filter_scale", "output_scale", "output_zero_point")
ACTIVATION_CODES = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
# The axis of a filter (in TFLite's layout) that holds the output channels, which per-channel scales follow.
CHANNEL_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "transpose_conv": 0}
# The operator versions TFLite's converter writes for per-channel int8 (and 16x8) kernels of these ops.
_VERSIONS = {"conv2d": 3, "depthwise_conv2d": 3, "transpose_conv": 3}


def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def _tensor(
    s: Any,
    name: str,
    shape: list[int],
    dtype: str,
    buffer: int,
    scales: list[float] | None = None,
    zero_points: list[int] | None = None,
    axis: int = 0,
) -> Any:
    t = s.TensorT()
    t.name, t.shape, t.buffer = name, list(shape), buffer
    t.type = {
        "int8": s.TensorType.INT8,
        "int16": s.TensorType.INT16,
        "int32": s.TensorType.INT32,
        "int64": s.TensorType.INT64,
        "float32": s.TensorType.FLOAT32,
    }[dtype]
    if scales is not None:
        q = s.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = list(scales), list(zero_points or [0] * len(scales)), axis
        t.quantization = q
    return t


def build(
    op: str,
    input_shape: list[int],
    filter_q: np.ndarray,
    bias_q: np.ndarray | None,
    params: Mapping[str, Any],
    attrs: Mapping[str, Any],
) -> np.ndarray:
    """A one-op model: ``op`` of a quantized input of ``input_shape`` (int8, or int16 for 16x8) with constant
    ``filter_q`` (int8, TFLite's layout: OHWI, or 1HW(C*M) for depthwise) and ``bias_q`` (int32, int64 for 16x8; None
    for no bias), quantized by ``params`` (``QUANTIZATION_KEYS`` and ``activation``). ``attrs``: strides, padding,
    dilations (not for transpose_conv), depth_multiplier (depthwise), output_shape (transpose_conv). Returns the
    flatbuffer as uint8."""

    s = _schema()
    data = "int16" if params.get("dtype", "int8") == "int16" else "int8"
    channels = filter_q.shape[CHANNEL_AXIS[op]]
    f_scales = np.broadcast_to(np.asarray(params["filter_scale"], np.float64), (channels,)).tolist()
    in_scale, out_scale = float(params["input_scale"]), float(params["output_scale"])
    buffers = [s.BufferT()]  # buffer 0: none (the input's and output's)
    buffer = functools.partial(_buffer, s, buffers)

    tensors = []
    strides = spatial_pair(attrs.get("strides", 1))
    if op == "transpose_conv":
        out_shape = [int(v) for v in attrs["output_shape"]]
        tensors.append(_tensor(s, "output_shape", [4], "int32", buffer(np.array(out_shape, np.int32))))
    tensors.append(
        _tensor(
            s,
            "filter",
            list(filter_q.shape),
            "int8",
            buffer(filter_q.astype(np.int8)),
            f_scales,
            [0] * channels,
            CHANNEL_AXIS[op],
        )
    )
    tensors.append(_tensor(s, "input", input_shape, data, 0, [in_scale], [int(params["input_zero_point"])]))
    if bias_q is not None:
        tensors.append(
            _tensor(
                s,
                "bias",
                [channels],
                bias_q.dtype.name,
                buffer(bias_q),
                [in_scale * f for f in f_scales],
                [0] * channels,
            )
        )
    if op == "transpose_conv":
        output_shape = out_shape
    else:
        kernel, dilations = filter_q.shape[1:3], spatial_pair(attrs.get("dilations", 1))
        spatial = [
            window(op, n, k, st, d, attrs.get("padding", "VALID")).out
            for n, k, st, d in zip(input_shape[1:3], kernel, strides, dilations)
        ]
        output_shape = [input_shape[0], *spatial, channels]
    tensors.append(_tensor(s, "output", output_shape, data, 0, [out_scale], [int(params["output_zero_point"])]))
    names = [t.name for t in tensors]
    if op == "transpose_conv":
        inputs = [names.index("output_shape"), names.index("filter"), names.index("input")]
    else:
        inputs = [names.index("input"), names.index("filter")]
    inputs.append(names.index("bias") if bias_q is not None else -1)

    operator = s.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, inputs, [names.index("output")]
    padding = {"SAME": s.Padding.SAME, "VALID": s.Padding.VALID}[attrs.get("padding", "VALID")]
    activation = ACTIVATION_CODES[params.get("activation", "NONE")]
    if op == "conv2d":
        options, kind, code = s.Conv2DOptionsT(), s.BuiltinOptions.Conv2DOptions, s.BuiltinOperator.CONV_2D
    elif op == "depthwise_conv2d":
        options, kind = s.DepthwiseConv2DOptionsT(), s.BuiltinOptions.DepthwiseConv2DOptions
        code = s.BuiltinOperator.DEPTHWISE_CONV_2D
        options.depthMultiplier = channels // input_shape[3] if input_shape[3] else 1  # 0 channels: TFLite decides
    else:
        options, kind = s.TransposeConvOptionsT(), s.BuiltinOptions.TransposeConvOptions
        code = s.BuiltinOperator.TRANSPOSE_CONV
    options.padding, options.strideH, options.strideW = padding, *strides
    options.fusedActivationFunction = activation
    if op != "transpose_conv":
        options.dilationHFactor, options.dilationWFactor = spatial_pair(attrs.get("dilations", 1))
    operator.builtinOptionsType, operator.builtinOptions = kind, options

    return _finish(s, code, _VERSIONS[op], tensors, operator, buffers, f"one quantized {op}")


# The float32 ops of TFLite, by the tf.nn op of the same geometry.
FLOAT_OPS = ("conv2d", "depthwise_conv2d", "conv2d_transpose", "conv3d", "conv3d_transpose")


def build_float(op: str, input_shape: list[int], filter_tfl: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """A one-op float32 model of ``op`` (``FLOAT_OPS``: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, CONV_3D,
    CONV_3D_TRANSPOSE), no bias, a constant filter in TFLite's layout (OHWI; 1HW(C*M); OHWI; DHWIO; DHWOI).
    ``attrs``: ``strides`` and ``dilations`` (one per spatial axis; no dilations for TRANSPOSE_CONV), ``padding``
    (SAME or VALID), ``output_shape`` for the transposes. Returns the flatbuffer as uint8."""
    s = _schema()
    buffers = [s.BufferT()]  # buffer 0: none (the input's and output's)
    buffer = functools.partial(_buffer, s, buffers)

    transposed = op.endswith("_transpose")
    strides = [int(v) for v in attrs["strides"]]
    dilations = [int(v) for v in attrs.get("dilations") or [1] * len(strides)]
    tensors = []
    if transposed:
        out_shape = [int(v) for v in attrs["output_shape"]]
        tensors.append(_tensor(s, "output_shape", [len(out_shape)], "int32", buffer(np.array(out_shape, np.int32))))
    tensors.append(_tensor(s, "filter", list(filter_tfl.shape), "float32", buffer(filter_tfl.astype(np.float32))))
    tensors.append(_tensor(s, "input", list(input_shape), "float32", 0))
    if not transposed:  # CONV_2D and DEPTHWISE_CONV_2D refuse a missing bias: a zero one, which adds exactly 0
        channels = filter_tfl.shape[-1] if op != "conv2d" else filter_tfl.shape[0]
        tensors.append(_tensor(s, "bias", [channels], "float32", buffer(np.zeros(channels, np.float32))))
    tensors.append(_tensor(s, "output", out_shape if transposed else [], "float32", 0))  # resized at allocation
    operator = s.OperatorT()
    operator.opcodeIndex, operator.outputs = 0, [len(tensors) - 1]
    operator.inputs = [0, 1, 2, -1] if transposed else [1, 0, 2]
    if op in ("conv3d", "conv3d_transpose"):
        options, kind = s.Conv3DOptionsT(), s.BuiltinOptions.Conv3DOptions
        code = s.BuiltinOperator.CONV_3D if op == "conv3d" else s.BuiltinOperator.CONV_3D_TRANSPOSE
        options.strideD, options.strideH, options.strideW = strides
        options.dilationDFactor, options.dilationHFactor, options.dilationWFactor = dilations
    elif op == "conv2d_transpose":
        options, kind = s.TransposeConvOptionsT(), s.BuiltinOptions.TransposeConvOptions
        code = s.BuiltinOperator.TRANSPOSE_CONV
        options.strideH, options.strideW = strides
    else:
        depthwise = op == "depthwise_conv2d"
        options = s.DepthwiseConv2DOptionsT() if depthwise else s.Conv2DOptionsT()
        kind = s.BuiltinOptions.DepthwiseConv2DOptions if depthwise else s.BuiltinOptions.Conv2DOptions
        code = s.BuiltinOperator.DEPTHWISE_CONV_2D if depthwise else s.BuiltinOperator.CONV_2D
        if depthwise:
            options.depthMultiplier = filter_tfl.shape[3] // max(input_shape[3], 1)
        options.strideH, options.strideW = strides
        options.dilationHFactor, options.dilationWFactor = dilations
    options.padding = {"SAME": s.Padding.SAME, "VALID": s.Padding.VALID}[attrs["padding"]]
    operator.builtinOptionsType, operator.builtinOptions = kind, options
    return _finish(s, code, 1, tensors, operator, buffers, f"one float32 {op}")


def _finish(s: Any, code: int, version: int, tensors: list, operator: Any, buffers: list, what: str) -> np.ndarray:
    """The model of one operator (its input without a buffer is the graph's input, its output the graph's), as
    uint8."""
    import flatbuffers

    opcode = s.OperatorCodeT()
    opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), version
    graph = s.SubGraphT()
    graph.tensors, graph.operators, graph.name = tensors, [operator], "main"
    graph.inputs = [next(i for i in operator.inputs if i >= 0 and tensors[i].buffer == 0)]
    graph.outputs = list(operator.outputs)
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [opcode], [graph], buffers
    model.description = f"tf-conv-harness: {what}"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return np.frombuffer(bytes(builder.Output()), np.uint8)


def run_float(
    op: str,
    input: np.ndarray,
    filter_tfl: np.ndarray,
    attrs: Mapping[str, Any],
    resolver: str,
    runtime: str = "tensorflow",
) -> np.ndarray:
    """``build_float``'s model of ``op`` run on ``input`` (float32, channels last) under ``resolver``."""
    return run(build_float(op, list(input.shape), filter_tfl, attrs), input.astype(np.float32), resolver, runtime)


def _buffer(s: Any, buffers: list, array: np.ndarray) -> int:
    """A constant's buffer (little-endian bytes) appended to ``buffers``; its index."""
    b = s.BufferT()
    b.data = np.frombuffer(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes(), np.uint8)
    buffers.append(b)
    return len(buffers) - 1


def spatial_pair(value: Any) -> tuple[int, int]:
    """A strides / dilations value (one int, or [height, width]) as (height, width)."""
    return (int(value), int(value)) if np.ndim(value) == 0 else (int(value[0]), int(value[1]))


def interpreter(model: np.ndarray, resolver: str, runtime: str = "tensorflow", num_threads: int | None = None) -> Any:
    """An interpreter of ``model`` (tf.lite's, or LiteRT's for ``runtime`` "litert") under ``resolver``
    (``RESOLVERS``), its tensors allocated; ``num_threads``: the interpreter's default when None."""
    if runtime == "litert":
        from ai_edge_litert import interpreter as module
    else:
        import tensorflow as tf

        module = tf.lite
    resolvers = module.OpResolverType if runtime == "litert" else module.experimental.OpResolverType
    resolver_type = getattr(resolvers, RESOLVERS[resolver])
    ip = module.Interpreter(
        model_content=bytes(model), experimental_op_resolver_type=resolver_type, num_threads=num_threads
    )
    ip.allocate_tensors()
    return ip


def run(model: np.ndarray, input_q: np.ndarray, resolver: str, runtime: str = "tensorflow") -> np.ndarray:
    """The model's output for ``input_q`` (its input's dtype), under ``resolver``."""
    ip = interpreter(model, resolver, runtime)
    ip.set_tensor(ip.get_input_details()[0]["index"], input_q)
    ip.invoke()
    return np.array(ip.get_tensor(ip.get_output_details()[0]["index"]))


def read(model: np.ndarray) -> dict[str, Any]:
    """What a one-op model holds: its op (``OPS``), ``params`` (``QUANTIZATION_KEYS``, ``activation``, ``dtype``),
    ``attrs`` (strides, padding, dilations or output_shape) and its constant operands ``filter`` and ``bias`` (None
    when it has none), as the integer reference takes them."""
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(bytes(model), 0)
    (graph,) = m.subgraphs
    if len(graph.operators) != 1:
        raise ValueError(f"read: the model has {len(graph.operators)} operators, not one")
    (operator,) = graph.operators
    code = m.operatorCodes[operator.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    op = {
        s.BuiltinOperator.CONV_2D: "conv2d",
        s.BuiltinOperator.DEPTHWISE_CONV_2D: "depthwise_conv2d",
        s.BuiltinOperator.TRANSPOSE_CONV: "transpose_conv",
    }.get(builtin)
    if op is None:
        raise ValueError(f"read: the model's operator is builtin {builtin}, not a quantized convolution")
    types = {
        s.TensorType.INT8: np.int8,
        s.TensorType.INT16: np.int16,
        s.TensorType.INT32: np.int32,
        s.TensorType.INT64: np.int64,
    }

    def constant(index: int) -> np.ndarray | None:
        if index < 0:
            return None
        t = graph.tensors[index]
        raw = m.buffers[t.buffer].data
        return (
            np.frombuffer(np.asarray(raw, np.uint8).tobytes(), np.dtype(types[t.type]).newbyteorder("<"))
            .reshape(t.shape)
            .astype(types[t.type])
        )

    if op == "transpose_conv":
        shape_index, filter_index, input_index, *rest = operator.inputs
        bias_index = rest[0] if rest else -1
    else:
        input_index, filter_index, *rest = operator.inputs
        bias_index = rest[0] if rest else -1
    x_t, w_t, y_t = graph.tensors[input_index], graph.tensors[filter_index], graph.tensors[operator.outputs[0]]
    options = operator.builtinOptions
    activation = {v: k for k, v in ACTIVATION_CODES.items()}.get(options.fusedActivationFunction, "other")
    params = {
        "input_scale": float(x_t.quantization.scale[0]),
        "input_zero_point": int(x_t.quantization.zeroPoint[0]),
        "filter_scale": [float(v) for v in w_t.quantization.scale],
        "output_scale": float(y_t.quantization.scale[0]),
        "output_zero_point": int(y_t.quantization.zeroPoint[0]),
        "activation": activation,
        "dtype": np.dtype(types[x_t.type]).name,
    }
    attrs: dict[str, Any] = {
        "strides": [int(options.strideH), int(options.strideW)],
        "padding": {s.Padding.SAME: "SAME", s.Padding.VALID: "VALID"}[options.padding],
    }
    if op == "transpose_conv":
        attrs["output_shape"] = [int(v) for v in constant(shape_index)]  # type: ignore[union-attr]
    else:
        attrs["dilations"] = [int(options.dilationHFactor), int(options.dilationWFactor)]
    return {
        "op": op,
        "params": params,
        "attrs": attrs,
        "filter": constant(filter_index),
        "bias": constant(bias_index),
        "input_shape": [int(v) for v in x_t.shape],
        "output_shape": [int(v) for v in y_t.shape],
    }


def convert(
    op: str,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
    samples: int = 8,
    seed: int = 0,
    scheme: str = "int8",
    activation: str = "NONE",
) -> np.ndarray:
    """The model TFLite's converter makes of ``op`` (``OPS``) on float operands ``arrays`` (``input``, ``filter`` in
    tf.nn's layouts: HWIO, HWCM for depthwise, HWOI for transpose_conv; ``bias`` optional), full-integer quantized
    (``scheme`` "int8" or "16x8") and calibrated on ``samples`` inputs drawn with ``seed`` (normal, the scale of
    ``arrays["input"]``). Returns the flatbuffer as uint8."""
    import tensorflow as tf

    x = np.asarray(arrays["input"], np.float32)
    w = tf.constant(np.asarray(arrays["filter"], np.float32))
    bias = tf.constant(np.asarray(arrays["bias"], np.float32)) if arrays.get("bias") is not None else None
    strides, dilations, padding = (
        spatial_pair(attrs.get("strides", 1)),
        spatial_pair(attrs.get("dilations", 1)),
        attrs["padding"],
    )

    def body(t: Any) -> Any:
        if op == "conv2d":
            y = tf.nn.conv2d(t, w, strides, padding, dilations=list(dilations))
        elif op == "depthwise_conv2d":
            y = tf.nn.depthwise_conv2d(t, w, [1, *strides, 1], padding, dilations=list(dilations))
        else:
            y = tf.nn.conv2d_transpose(t, w, list(attrs["output_shape"]), strides, padding)
        if bias is not None:
            y = tf.nn.bias_add(y, bias)
        return {
            "NONE": y,
            "RELU": tf.nn.relu(y),
            "RELU6": tf.nn.relu6(y),
            "RELU_N1_TO_1": tf.clip_by_value(y, -1.0, 1.0),
        }[activation]

    fn = tf.function(body, input_signature=[tf.TensorSpec(x.shape, tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(seed)
    spread = float(np.std(x)) or 1.0

    def representative() -> Iterator[list[np.ndarray]]:
        yield [x]
        for _ in range(samples - 1):
            yield [(rng.normal(size=x.shape) * spread).astype(np.float32)]

    converter.representative_dataset = representative
    if scheme == "16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return np.frombuffer(converter.convert(), np.uint8)


# The calls TensorFlow's server process answers for the quantized backends (harness.tf.isolation.SERVER_CALLS).
SERVER_CALLS: dict[str, Callable[..., Any]] = {
    "tflite_run_float": run_float,
    "tflite_build_float": build_float,
    "tflite_build": build,
    "tflite_run": run,
    "tflite_read": read,
    "tflite_convert": convert,
}
