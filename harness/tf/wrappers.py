"""Thin eager wrappers over ``tf.nn``: NumPy in, NumPy out, same signatures.

This is the only module in the harness that imports TensorFlow, and it does so
lazily (on the first call), after pinning the process-wide settings TensorFlow
reads at import time:

* ``TF_ENABLE_ONEDNN_OPTS``: oneDNN mode, default "1" (TensorFlow's own CPU
  default), overridable from the environment. Results and error behaviour
  differ between the modes, so the harness always sets it explicitly.
* ``TF_CPP_MIN_LOG_LEVEL``: default "2" (C++ warnings and info off).
* ``HARNESS_TF_INTRA_OP_THREADS`` / ``HARNESS_TF_INTER_OP_THREADS``: TensorFlow's
  thread pools, default 1 each, because pytest-xdist already runs one worker
  per core.

``settings()`` reports all of this without importing TensorFlow, for reports.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import cache

import numpy as np

from harness.tf import versions

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
INTRA_ENV = "HARNESS_TF_INTRA_OP_THREADS"
INTER_ENV = "HARNESS_TF_INTER_OP_THREADS"


def pin_environment() -> None:
    """Set the variables TensorFlow reads at import, keeping any value the user set."""
    os.environ.setdefault(ONEDNN_ENV, "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault(INTRA_ENV, "1")
    os.environ.setdefault(INTER_ENV, "1")


def settings() -> dict[str, str]:
    """What TensorFlow runs with, read without importing it (for reports): the server's interpreter
    (``versions.server_python()``), the TensorFlow and NumPy installed there, and this process's NumPy."""
    pin_environment()
    server = versions.installed()
    return {
        "tensorflow": server["tensorflow"],
        "onednn": os.environ[ONEDNN_ENV],
        "intra_op_threads": os.environ[INTRA_ENV],
        "inter_op_threads": os.environ[INTER_ENV],
        "numpy": np.__version__,
        "tensorflow_python": versions.server_python(),
        "tensorflow_numpy": server["numpy"] or "not installed",
    }


@cache
def tf():
    """The ``tensorflow`` module, imported once with logging quiet and threads pinned."""
    pin_environment()

    import tensorflow

    tensorflow.get_logger().setLevel(logging.ERROR)
    # tf.nn.depthwise_conv2d warns (and computes a wrong result) for strides > 1 with
    # dilations > 1; the harness reports that as a divergence, not as a warning.
    warnings.filterwarnings("ignore", module=r"tensorflow\..*")
    tensorflow.config.threading.set_intra_op_parallelism_threads(int(os.environ[INTRA_ENV]))
    tensorflow.config.threading.set_inter_op_parallelism_threads(int(os.environ[INTER_ENV]))
    return tensorflow


def numpy_dtypes() -> dict[str, np.dtype]:
    """TensorFlow's own NumPy types for the dtypes NumPy does not have: ml_dtypes' from TensorFlow 2.14 on, its own
    before (arrays received for TensorFlow must be of these)."""
    return {"bfloat16": np.dtype(tf().bfloat16.as_numpy_dtype)}


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy type TensorFlow uses for a dtype name (``harness.conv.dtypes.DTYPES``)."""
    return np.dtype(tf().as_dtype(name).as_numpy_dtype)


def _optional_list(value) -> list | None:
    """A list argument of a tf.raw_ops op, or None (the op's default)."""
    return None if value is None else list(value)


def _np(t) -> np.ndarray:
    return t.numpy()


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None):
    """``tf.nn.conv2d`` on NumPy arrays."""
    return _np(tf().nn.conv2d(input, filters, strides, padding, data_format=data_format, dilations=dilations))


def depthwise_conv2d(input, filter, strides, padding, data_format=None, dilations=None):
    """``tf.nn.depthwise_conv2d`` on NumPy arrays."""
    return _np(tf().nn.depthwise_conv2d(input, filter, strides, padding, data_format=data_format, dilations=dilations))


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NHWC", dilations=None):
    """``tf.nn.conv2d_transpose`` on NumPy arrays."""
    return _np(
        tf().nn.conv2d_transpose(
            input, filters, output_shape, strides, padding=padding, data_format=data_format, dilations=dilations
        )
    )


def atrous_conv2d(value, filters, rate, padding):
    """``tf.nn.atrous_conv2d`` on NumPy arrays."""
    return _np(tf().nn.atrous_conv2d(value, filters, rate, padding))


def separable_conv2d(input, depthwise_filter, pointwise_filter, strides, padding, data_format=None, dilations=None):
    """``tf.nn.separable_conv2d`` on NumPy arrays."""
    return _np(
        tf().nn.separable_conv2d(
            input, depthwise_filter, pointwise_filter, strides, padding, data_format=data_format, dilations=dilations
        )
    )


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None):
    """``tf.nn.conv1d`` on NumPy arrays."""
    return _np(tf().nn.conv1d(input, filters, stride, padding, data_format=data_format, dilations=dilations))


def conv1d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NWC", dilations=None):
    """``tf.nn.conv1d_transpose`` on NumPy arrays."""
    return _np(
        tf().nn.conv1d_transpose(
            input, filters, output_shape, strides, padding=padding, data_format=data_format, dilations=dilations
        )
    )


def conv3d(input, filters, strides, padding, data_format="NDHWC", dilations=None):
    """``tf.nn.conv3d`` on NumPy arrays."""
    return _np(tf().nn.conv3d(input, filters, strides, padding, data_format=data_format, dilations=dilations))


def conv3d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NDHWC", dilations=None):
    """``tf.nn.conv3d_transpose`` on NumPy arrays."""
    return _np(
        tf().nn.conv3d_transpose(
            input, filters, output_shape, strides, padding=padding, data_format=data_format, dilations=dilations
        )
    )


def atrous_conv2d_transpose(value, filters, output_shape, rate, padding):
    """``tf.nn.atrous_conv2d_transpose`` on NumPy arrays."""
    return _np(tf().nn.atrous_conv2d_transpose(value, filters, output_shape, rate, padding))


def _convolution(input, filters, strides=None, padding="VALID", data_format=None, dilations=None):
    """``tf.nn.convolution`` on NumPy arrays (the ops ``convolution_1d`` ... ``convolution_3d``)."""
    return _np(
        tf().nn.convolution(
            input, filters, strides=strides, padding=padding, data_format=data_format, dilations=dilations
        )
    )


def _conv_transpose(input, filters, output_shape, strides, padding="SAME", data_format=None, dilations=None):
    """``tf.nn.conv_transpose`` on NumPy arrays (the ops ``conv_transpose_1d`` ... ``conv_transpose_3d``)."""
    return _np(
        tf().nn.conv_transpose(
            input, filters, output_shape, strides, padding=padding, data_format=data_format, dilations=dilations
        )
    )


convolution_1d = convolution_2d = convolution_3d = _convolution
conv_transpose_1d = conv_transpose_2d = conv_transpose_3d = _conv_transpose

# The tf.nn function of each op whose name is not the function's own (one op per number of spatial axes).
NN_FUNCTIONS = {
    **{f"convolution_{n}d": "convolution" for n in (1, 2, 3)},
    **{f"conv_transpose_{n}d": "conv_transpose" for n in (1, 2, 3)},
}


def nn_function(op: str):
    """The ``tf.nn`` function of op ``op`` (``NN_FUNCTIONS``, else the function of that name); None if none."""
    name = NN_FUNCTIONS.get(op, op) if isinstance(op, str) and not op.startswith("_") else None
    fn = getattr(tf().nn, name, None) if name else None
    return fn if callable(fn) else None


# --- execution modes ----------------------------------------------------------------------

MODES = ("eager", "function", "xla")


def call(op: str, args: tuple, kwargs: dict, mode: str = "eager") -> np.ndarray:
    """``tf.nn.<op>(*args, **kwargs)`` eagerly, inside a ``tf.function``, or compiled by XLA (``jit_compile=True``).

    Graph modes trace a new function per call: the attributes are Python values fixed at trace time, exactly as
    a model's layer passes them, and each case has its own shapes anyway.
    """
    if mode == "eager":
        return globals()[op](*args, **kwargs)
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    nn_op = nn_function(op)
    if nn_op is None:
        raise ValueError(f"call: argument 'op'={op!r} is not a tf.nn function")
    traced = tf().function(lambda *tensors: nn_op(*tensors, **kwargs), jit_compile=(mode == "xla"), autograph=False)
    return _np(traced(*(tf().constant(a) for a in args)))


# --- gradients ----------------------------------------------------------------------------


def conv2d_backprop_input(
    input_sizes,
    filter,
    out_backprop,
    strides,
    padding,
    use_cudnn_on_gpu=True,
    explicit_paddings=(),
    data_format="NHWC",
    dilations=(1, 1, 1, 1),
):
    """``tf.raw_ops.Conv2DBackpropInput`` on NumPy arrays."""
    return _np(
        tf().raw_ops.Conv2DBackpropInput(
            input_sizes=input_sizes,
            filter=filter,
            out_backprop=out_backprop,
            strides=list(strides),
            padding=padding,
            use_cudnn_on_gpu=use_cudnn_on_gpu,
            explicit_paddings=list(explicit_paddings),
            data_format=data_format,
            dilations=_optional_list(dilations),
        )
    )


def conv2d_backprop_filter(
    input,
    filter_sizes,
    out_backprop,
    strides,
    padding,
    use_cudnn_on_gpu=True,
    explicit_paddings=(),
    data_format="NHWC",
    dilations=(1, 1, 1, 1),
):
    """``tf.raw_ops.Conv2DBackpropFilter`` on NumPy arrays."""
    return _np(
        tf().raw_ops.Conv2DBackpropFilter(
            input=input,
            filter_sizes=filter_sizes,
            out_backprop=out_backprop,
            strides=list(strides),
            padding=padding,
            use_cudnn_on_gpu=use_cudnn_on_gpu,
            explicit_paddings=list(explicit_paddings),
            data_format=data_format,
            dilations=_optional_list(dilations),
        )
    )


def depthwise_conv2d_native_backprop_input(
    input_sizes,
    filter,
    out_backprop,
    strides,
    padding,
    explicit_paddings=(),
    data_format="NHWC",
    dilations=(1, 1, 1, 1),
):
    """``tf.raw_ops.DepthwiseConv2dNativeBackpropInput`` on NumPy arrays."""
    return _np(
        tf().raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=input_sizes,
            filter=filter,
            out_backprop=out_backprop,
            strides=list(strides),
            padding=padding,
            explicit_paddings=list(explicit_paddings),
            data_format=data_format,
            dilations=_optional_list(dilations),
        )
    )


def depthwise_conv2d_native_backprop_filter(
    input,
    filter_sizes,
    out_backprop,
    strides,
    padding,
    explicit_paddings=(),
    data_format="NHWC",
    dilations=(1, 1, 1, 1),
):
    """``tf.raw_ops.DepthwiseConv2dNativeBackpropFilter`` on NumPy arrays."""
    return _np(
        tf().raw_ops.DepthwiseConv2dNativeBackpropFilter(
            input=input,
            filter_sizes=filter_sizes,
            out_backprop=out_backprop,
            strides=list(strides),
            padding=padding,
            explicit_paddings=list(explicit_paddings),
            data_format=data_format,
            dilations=_optional_list(dilations),
        )
    )


def conv3d_backprop_input_v2(
    input_sizes, filter, out_backprop, strides, padding, data_format="NDHWC", dilations=(1, 1, 1, 1, 1)
):
    """``tf.raw_ops.Conv3DBackpropInputV2`` on NumPy arrays."""
    return _np(
        tf().raw_ops.Conv3DBackpropInputV2(
            input_sizes=input_sizes,
            filter=filter,
            out_backprop=out_backprop,
            strides=list(strides),
            padding=padding,
            data_format=data_format,
            dilations=_optional_list(dilations),
        )
    )


def conv3d_backprop_filter_v2(
    input, filter_sizes, out_backprop, strides, padding, data_format="NDHWC", dilations=(1, 1, 1, 1, 1)
):
    """``tf.raw_ops.Conv3DBackpropFilterV2`` on NumPy arrays."""
    return _np(
        tf().raw_ops.Conv3DBackpropFilterV2(
            input=input,
            filter_sizes=filter_sizes,
            out_backprop=out_backprop,
            strides=list(strides),
            padding=padding,
            data_format=data_format,
            dilations=_optional_list(dilations),
        )
    )


# The raw backprop ops that take the operand itself in place of its sizes: the 2-D V2 ops (tf.raw_ops' 2-D
# attributes) and the deprecated 3-D V1 ones (strides, padding, dilations; NDHWC only).
def _v2_op(raw_op: str):
    def wrapper(
        input,
        filter,
        out_backprop,
        strides,
        padding,
        use_cudnn_on_gpu=True,
        explicit_paddings=(),
        data_format="NHWC",
        dilations=(1, 1, 1, 1),
    ):
        return _np(
            getattr(tf().raw_ops, raw_op)(
                input=input,
                filter=filter,
                out_backprop=out_backprop,
                strides=list(strides),
                padding=padding,
                use_cudnn_on_gpu=use_cudnn_on_gpu,
                explicit_paddings=list(explicit_paddings),
                data_format=data_format,
                dilations=_optional_list(dilations),
            )
        )

    wrapper.__doc__ = f"``tf.raw_ops.{raw_op}`` on NumPy arrays."
    return wrapper


def _v1_3d_op(raw_op: str):
    def wrapper(input, filter, out_backprop, strides, padding, dilations=(1, 1, 1, 1, 1)):
        return _np(
            getattr(tf().raw_ops, raw_op)(
                input=input,
                filter=filter,
                out_backprop=out_backprop,
                strides=list(strides),
                padding=padding,
                dilations=_optional_list(dilations),
            )
        )

    wrapper.__doc__ = f"``tf.raw_ops.{raw_op}`` on NumPy arrays."
    return wrapper


conv2d_backprop_input_v2 = _v2_op("Conv2DBackpropInputV2")
conv2d_backprop_filter_v2 = _v2_op("Conv2DBackpropFilterV2")
conv3d_backprop_input = _v1_3d_op("Conv3DBackpropInput")
conv3d_backprop_filter = _v1_3d_op("Conv3DBackpropFilter")


def depthwise_conv2d_backprop_input(
    input_sizes, filter, out_backprop, strides, padding, data_format="NHWC", dilations=None
):
    """``tf.nn.depthwise_conv2d_backprop_input`` on NumPy arrays."""
    return _np(
        tf().nn.depthwise_conv2d_backprop_input(
            input_sizes, filter, out_backprop, strides, padding, data_format=data_format, dilations=dilations
        )
    )


def depthwise_conv2d_backprop_filter(
    input, filter_sizes, out_backprop, strides, padding, data_format="NHWC", dilations=None
):
    """``tf.nn.depthwise_conv2d_backprop_filter`` on NumPy arrays."""
    return _np(
        tf().nn.depthwise_conv2d_backprop_filter(
            input, filter_sizes, out_backprop, strides, padding, data_format=data_format, dilations=dilations
        )
    )


def _raw_conv(
    input,
    filter,
    strides,
    padding,
    explicit_paddings=(),
    data_format="CHANNELS_LAST",
    dilations=(),
    batch_dims=1,
    groups=1,
):
    """``tf.raw_ops.Conv`` on NumPy arrays (the ops ``raw_conv_2d`` and ``raw_conv_3d``)."""
    return _np(
        tf().raw_ops.Conv(
            input=input,
            filter=filter,
            strides=list(strides),
            padding=padding,
            explicit_paddings=list(explicit_paddings),
            data_format=data_format,
            dilations=_optional_list(dilations),
            batch_dims=batch_dims,
            groups=groups,
        )
    )


raw_conv_2d = raw_conv_3d = _raw_conv


def fused_resize_and_pad_conv2d(input, size, paddings, filter, mode, strides, padding, resize_align_corners=False):
    """``tf.raw_ops.FusedResizeAndPadConv2D`` on NumPy arrays (size and paddings as lists: int32 tensors)."""
    return _np(
        tf().raw_ops.FusedResizeAndPadConv2D(
            input=input,
            size=size,
            paddings=paddings,
            filter=filter,
            mode=mode,
            strides=list(strides),
            padding=padding,
            resize_align_corners=resize_align_corners,
        )
    )


def fused_pad_conv2d(input, paddings, filter, mode, strides, padding):
    """``tf.raw_ops.FusedPadConv2D`` on NumPy arrays (paddings as a list: an int32 tensor)."""
    return _np(
        tf().raw_ops.FusedPadConv2D(
            input=input,
            paddings=paddings,
            filter=filter,
            mode=mode,
            strides=list(strides),
            padding=padding,
        )
    )


def gradients(op, operands, attrs, out_backprop) -> tuple:
    """TensorFlow's gradients of ``tf.nn.<op>(*operands, **attrs)`` w.r.t. every operand, for output gradient ``out_backprop``.

    operands: NumPy arrays in the op's positional order (as ``harness.ops.OPS[op].operands``);
    out_backprop: an array of the op's output shape. Runs the op under ``tf.GradientTape``
    watching every operand and returns ``tape.gradient(y, operands, output_gradients=out_backprop)``
    as a tuple of NumPy arrays (zeros for an operand the output does not depend on).
    """
    t = tf()
    fn = nn_function(op)
    if fn is None:
        raise ValueError(f"gradients: argument 'op'={op!r} is not a tf.nn function")
    tensors = [t.constant(a) for a in operands]
    with t.GradientTape() as tape:
        for v in tensors:
            tape.watch(v)
        y = fn(*tensors, **attrs)
    grads = tape.gradient(
        y, tensors, output_gradients=t.constant(out_backprop), unconnected_gradients=t.UnconnectedGradients.ZERO
    )
    return tuple(_np(g) for g in grads)
