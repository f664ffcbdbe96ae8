"""The op table: one ``OpSpec`` per ``tf.nn`` op the harness covers.

Adding an op
------------
1. The reference: a function named after the op in ``harness/conv/reference.py``, with ``tf.nn``'s signature,
   written from the op's definition (accumulate in float64), validating its arguments with ``ValueError``s that
   name the argument and its value, and an ``ArgForms`` constant saying which forms its window arguments take.
2. The TensorFlow wrapper: a function of the same name in ``harness/tf/wrappers.py`` (NumPy in, NumPy out).
3. The spec: one ``OpSpec`` entry below. ``kind`` tells the backends how a plain convolution implements it;
   ``tf_kernels`` names the TensorFlow kernels it runs (``harness.tf.kernel_probe.KERNELS``); ``defaults`` are
   the attributes ``harness new`` starts from; ``gradient`` its reference gradient rule, if it has one.
4. Its cases: a sweep in ``cases/sweeps/`` (and any known divergence TensorFlow shows, in
   ``cases/known_divergences.yaml``).

Nothing else changes: the loader, runner, plugin, reports, backends, property search, scaffold and documentation
read the op from this table. ``make test`` then runs it everywhere (``tests/unit/test_ops.py`` checks each entry is
complete).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import harness.ops.gradient_rules as gradient_rules
import harness.ops.pairings as pairings
from harness.conv import reference
from harness.ops.pairings import formulation
from harness.ops.spec import Operand, OpSpec
from harness.ops.symbolic import (
    SPATIAL_OUTPUT_SHAPES,
    SYMBOLIC_OUTPUT_SHAPES,
    expand_output_shape,
    resolve_output_shape,
)

_DEPTHWISE_GRADIENT = ("DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter")


def _space_to_batch_padding(attrs: Mapping[str, Any]) -> str:
    """depthwise / separable: tf.nn dilates through space_to_batch, which pads itself and calls the kernel with VALID;
    only an undilated call passes explicit padding on."""
    if isinstance(attrs.get("padding", "SAME"), str):
        return "named"
    try:
        dilated = any(int(v) > 1 for v in np.asarray(attrs.get("dilations", 1)).reshape(-1))
    except (TypeError, ValueError):
        dilated = False
    return "named" if dilated else "explicit"


_CONV3D_GRADIENT = ("Conv3DBackpropInputV2", "Conv3DBackpropFilterV2")
_CONV_RELATIONS = ("layout_invariance", "input_channel_sum", "output_channel_stack", "groups_are_concatenated")
# The kernels of a convolution over 1, 2 or 3 spatial axes (1-D: conv2d on a height-1 image) and of its gradient.
_RANK_KERNELS = {1: ("Conv2D",), 2: ("Conv2D",), 3: ("Conv3D",)}
_RANK_GRADIENT_KERNELS = {
    1: ("Conv2DBackpropInput", "Conv2DBackpropFilter"),
    2: ("Conv2DBackpropInput", "Conv2DBackpropFilter"),
    3: _CONV3D_GRADIENT,
}
_RANK_RAW_BACKPROP = {
    1: {},
    2: {"input": "conv2d_backprop_input", "filters": "conv2d_backprop_filter"},
    3: {"input": "conv3d_backprop_input_v2", "filters": "conv3d_backprop_filter_v2"},
}


def _convolution(n: int) -> OpSpec:
    """``tf.nn.convolution`` on data of ``n`` spatial axes (the op ``convolution_<n>d``)."""
    fmt = reference.RANKS[n]
    return OpSpec(
        f"convolution_{n}d",
        (Operand("input", "data", fmt[0]), Operand("filters", "filter", reference.filter_layout(n))),
        ("strides", "padding", "data_format", "dilations"),
        (),
        fmt,
        reference.convolution,
        kind="conv",
        forms=reference.CONVOLUTION_FORMS[n],
        defaults={"padding": "SAME"},
        gradient={1: gradient_rules.conv1d, 2: gradient_rules.conv2d, 3: gradient_rules.conv3d}[n],
        raw_backprop=_RANK_RAW_BACKPROP[n],
        # the channel relations are conv1d's, conv2d's and conv3d's own: the same reference, the same kernels
        relations=("layout_invariance", "groups_are_concatenated"),
        tf_kernels=_RANK_KERNELS[n],
        tf_gradient_kernels=_RANK_GRADIENT_KERNELS[n],
        api="tf.nn.convolution",
        doc=f"tf.nn.convolution on data with {n} spatial axis{'es' if n > 1 else ''}",
    )


def _conv_transpose(n: int) -> OpSpec:
    """``tf.nn.conv_transpose`` with an ``output_shape`` of ``n`` spatial axes (the op ``conv_transpose_<n>d``)."""
    fmt = reference.RANKS[n]
    return OpSpec(
        f"conv_transpose_{n}d",
        (Operand("input", "data", fmt[0]), Operand("filters", "filter", reference.filter_layout(n, transposed=True))),
        ("output_shape", "strides", "padding", "data_format", "dilations"),
        ("output_shape", "strides"),
        fmt,
        reference.conv_transpose,
        kind="transposed",
        forms=reference.CONV_TRANSPOSE_FORMS[n],
        defaults={"strides": 2, "padding": "SAME"},
        gradient=gradient_rules.transposed,
        relations=("layout_invariance",),
        tf_kernels=("Conv3DBackpropInputV2",) if n == 3 else ("Conv2DBackpropInput",),
        tf_gradient_kernels=(_RANK_KERNELS[n][0], _RANK_GRADIENT_KERNELS[n][1]),
        resolve=resolve_output_shape,
        expand=expand_output_shape,
        symbolic={"output_shape": SYMBOLIC_OUTPUT_SHAPES},
        api="tf.nn.conv_transpose",
        doc=f"tf.nn.conv_transpose with an output of {n} spatial axis{'es' if n > 1 else ''}",
    )


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec(
            "conv2d",
            (Operand("input", "data", "NHWC"), Operand("filters", "filter", "HWIO")),
            ("strides", "padding", "data_format", "dilations"),
            ("strides", "padding"),
            ("NHWC", "NCHW"),
            reference.conv2d,
            kind="conv",
            forms=reference.CONV2D_FORMS,
            defaults={"strides": 1, "padding": "SAME"},
            textbook=(
                formulation("correlate", pairings.correlate),
                formulation("correlate_centered", pairings.correlate_centered),
                formulation("matmul_1x1", pairings.matmul_1x1),
            ),
            gradient=gradient_rules.conv2d,
            raw_backprop={"input": "conv2d_backprop_input", "filters": "conv2d_backprop_filter"},
            relations=(
                "layout_invariance",
                "convolution_is_rotated_correlation",
                "one_by_one_is_matmul",
                "input_channel_sum",
                "output_channel_stack",
                "groups_are_concatenated",
                "dilation_is_zero_inserted_kernel",
                "explicit_padding_is_np_pad",
                "same_is_explicit",
            ),
        ),
        OpSpec(
            "depthwise_conv2d",
            (Operand("input", "data", "NHWC"), Operand("filter", "filter", "HWIM")),
            ("strides", "padding", "data_format", "dilations"),
            ("strides", "padding"),
            ("NHWC", "NCHW"),
            reference.depthwise_conv2d,
            kind="depthwise",
            forms=reference.DEPTHWISE_FORMS,
            defaults={"strides": [1, 1, 1, 1], "padding": "SAME"},  # tf.nn takes a 4-list only
            textbook=(formulation("depthwise_apart", pairings.depthwise_apart),),
            gradient=gradient_rules.depthwise_conv2d,
            raw_backprop={
                "input": "depthwise_conv2d_native_backprop_input",
                "filter": "depthwise_conv2d_native_backprop_filter",
            },
            relations=(
                "layout_invariance",
                "depthwise_is_per_channel_conv2d",
                "explicit_padding_is_np_pad",
                "same_is_explicit",
            ),
            tf_kernels=("DepthwiseConv2dNative",),
            tf_gradient_kernels=_DEPTHWISE_GRADIENT,
            kernel_padding=_space_to_batch_padding,
        ),
        OpSpec(
            "conv2d_transpose",
            (Operand("input", "data", "NHWC"), Operand("filters", "filter", "HWOI")),
            ("output_shape", "strides", "padding", "data_format", "dilations"),
            ("output_shape", "strides"),
            ("NHWC", "NCHW"),
            reference.conv2d_transpose,
            kind="transposed",
            forms=reference.TRANSPOSE_FORMS,
            defaults={"strides": 2, "padding": "SAME"},
            textbook=(formulation("zero_insertion", pairings.zero_insertion),),
            gradient=gradient_rules.transposed,
            relations=("layout_invariance", "transpose_is_zero_insertion"),
            tf_kernels=("Conv2DBackpropInput",),
            tf_gradient_kernels=("Conv2D", "Conv2DBackpropFilter"),
            resolve=resolve_output_shape,
            expand=expand_output_shape,
            symbolic={"output_shape": SYMBOLIC_OUTPUT_SHAPES + SPATIAL_OUTPUT_SHAPES},
        ),
        OpSpec(
            "atrous_conv2d",
            (Operand("value", "data", "NHWC"), Operand("filters", "filter", "HWIO")),
            ("rate", "padding"),
            ("rate", "padding"),
            ("NHWC",),
            reference.atrous_conv2d,
            kind="conv",
            forms=reference.ATROUS_FORMS,
            defaults={"rate": 2, "padding": "SAME"},
            textbook=(formulation("scipy_dilated_convolve", pairings.scipy_dilated_convolve),),
            gradient=gradient_rules.conv2d,
            relations=("atrous_is_dilated_conv2d", "atrous_is_zero_inserted_kernel", "explicit_padding_is_np_pad"),
            kernel_padding=lambda attrs: "named",  # rate > 1: space_to_batch, then VALID; rate 1 takes names only
        ),
        OpSpec(
            "separable_conv2d",
            (
                Operand("input", "data", "NHWC"),
                Operand("depthwise_filter", "filter", "HWIM"),
                Operand("pointwise_filter", "filter", "HWIO"),
            ),
            ("strides", "padding", "data_format", "dilations"),
            ("strides", "padding"),
            ("NHWC", "NCHW"),
            reference.separable_conv2d,
            kind="separable",
            forms=reference.DEPTHWISE_FORMS,
            defaults={"strides": [1, 1, 1, 1], "padding": "SAME"},
            textbook=(formulation("depthwise_then_matmul", pairings.depthwise_then_matmul),),
            gradient=gradient_rules.separable_conv2d,
            relations=(
                "layout_invariance",
                "separable_is_depthwise_then_pointwise",
                "explicit_padding_is_np_pad",
                "same_is_explicit",
            ),
            tf_kernels=("DepthwiseConv2dNative", "Conv2D"),
            tf_gradient_kernels=_DEPTHWISE_GRADIENT + ("Conv2DBackpropInput", "Conv2DBackpropFilter"),
            kernel_padding=_space_to_batch_padding,
        ),
        OpSpec(
            "conv1d",
            (Operand("input", "data", "NWC"), Operand("filters", "filter", "WIO")),
            ("stride", "padding", "data_format", "dilations"),
            ("stride", "padding"),
            ("NWC", "NCW"),
            reference.conv1d,
            kind="conv",
            forms=reference.CONV1D_FORMS,
            defaults={"stride": 1, "padding": "SAME"},
            textbook=(formulation("correlate_height_1", pairings.correlate_height_1),),
            gradient=gradient_rules.conv1d,
            relations=(
                "layout_invariance",
                "input_channel_sum",
                "output_channel_stack",
                "groups_are_concatenated",
                "conv1d_is_conv2d_height_1",
            ),
        ),
        OpSpec(
            "conv1d_transpose",
            (Operand("input", "data", "NWC"), Operand("filters", "filter", "WOI")),
            ("output_shape", "strides", "padding", "data_format", "dilations"),
            ("output_shape", "strides"),
            ("NWC", "NCW"),
            reference.conv1d_transpose,
            kind="transposed",
            forms=reference.CONV1D_TRANSPOSE_FORMS,
            defaults={"strides": 2, "padding": "SAME"},
            gradient=gradient_rules.transposed,
            relations=("layout_invariance",),
            tf_kernels=("Conv2DBackpropInput",),
            tf_gradient_kernels=("Conv2D", "Conv2DBackpropFilter"),
            resolve=resolve_output_shape,
            expand=expand_output_shape,
            symbolic={"output_shape": SYMBOLIC_OUTPUT_SHAPES},
        ),
        OpSpec(
            "conv3d",
            (Operand("input", "data", "NDHWC"), Operand("filters", "filter", "DHWIO")),
            ("strides", "padding", "data_format", "dilations"),
            ("strides", "padding"),
            ("NDHWC", "NCDHW"),
            reference.conv3d,
            kind="conv",
            forms=reference.CONV3D_FORMS,
            defaults={"strides": [1, 1, 1, 1, 1], "padding": "SAME"},  # tf.nn.conv3d takes 5-lists only
            gradient=gradient_rules.conv3d,
            raw_backprop={"input": "conv3d_backprop_input_v2", "filters": "conv3d_backprop_filter_v2"},
            relations=_CONV_RELATIONS,
            tf_kernels=("Conv3D",),
            tf_gradient_kernels=_CONV3D_GRADIENT,
        ),
        OpSpec(
            "conv3d_transpose",
            (Operand("input", "data", "NDHWC"), Operand("filters", "filter", "DHWOI")),
            ("output_shape", "strides", "padding", "data_format", "dilations"),
            ("output_shape", "strides"),
            ("NDHWC", "NCDHW"),
            reference.conv3d_transpose,
            kind="transposed",
            forms=reference.CONV3D_TRANSPOSE_FORMS,
            defaults={"strides": 2, "padding": "SAME"},
            gradient=gradient_rules.transposed,
            relations=("layout_invariance",),
            tf_kernels=("Conv3DBackpropInputV2",),
            tf_gradient_kernels=("Conv3D", "Conv3DBackpropFilterV2"),
            resolve=resolve_output_shape,
            expand=expand_output_shape,
            symbolic={"output_shape": SYMBOLIC_OUTPUT_SHAPES},
        ),
        OpSpec(
            "atrous_conv2d_transpose",
            (Operand("value", "data", "NHWC"), Operand("filters", "filter", "HWOI")),
            ("output_shape", "rate", "padding"),
            ("output_shape", "rate", "padding"),
            ("NHWC",),
            reference.atrous_conv2d_transpose,
            kind="transposed",
            forms=reference.ATROUS_TRANSPOSE_FORMS,
            defaults={"rate": 2, "padding": "SAME"},
            gradient=gradient_rules.transposed,
            tf_kernels=("Conv2DBackpropInput",),
            tf_gradient_kernels=("Conv2D", "Conv2DBackpropFilter"),
            kernel_padding=lambda attrs: "named",  # rate > 1: space_to_batch, then VALID; rate 1 takes names only
            resolve=resolve_output_shape,
            expand=expand_output_shape,
            symbolic={"output_shape": SYMBOLIC_OUTPUT_SHAPES},
        ),
        *(_convolution(n) for n in reference.RANKS),
        *(_conv_transpose(n) for n in reference.RANKS),
    )
}


def _raw_padding(attrs: Mapping[str, Any]) -> str:
    return "explicit" if attrs.get("padding") == "EXPLICIT" else "named"


def _raw(
    name: str,
    api: str,
    operands: tuple[Operand, ...],
    sizes: str,
    positional: tuple[str, ...],
    kernels: tuple[str, ...],
    extra: tuple[str, ...] = (),
    output_layout: str = "",
    rank: int = 2,
    explicit: str = "explicit_paddings",
    forms: Any = reference.RAW_FORMS,
    gradient_of: tuple[str, str] | None = None,
    data_format: bool = True,
) -> OpSpec:
    """A backprop op: ``sizes`` (input_sizes / filter_sizes; "" where the op takes that operand itself and reads
    only its shape) and the window attributes in tf.raw_ops' forms (``rank`` spatial axes; ``explicit``: the
    attribute that carries explicit padding, "" for none: tf.raw_ops' 3-D ops take names only, tf.nn's depthwise
    backprops take the pairs in ``padding`` itself; ``data_format``: False for an op fixed to channels-last)."""
    fmt = reference.RANKS[rank] if data_format else reference.RANKS[rank][:1]
    sized = (sizes,) if sizes else ()
    return OpSpec(
        name,
        operands,
        (
            *sized,
            "strides",
            "padding",
            *extra,
            *((explicit,) if explicit else ()),
            *(("data_format",) if data_format else ()),
            "dilations",
        ),
        (*sized, "strides", "padding"),
        fmt,
        getattr(reference, name),
        kind="backprop",
        forms=forms,
        defaults={"strides": [1] * len(fmt[0]), "padding": "SAME"},
        tf_kernels=kernels,
        tf_gradient_kernels=(),
        kernel_padding=_raw_padding if explicit == "explicit_paddings" else None,
        positional=positional,
        api=api if api.startswith("tf.") else f"tf.raw_ops.{api}",
        output_layout=output_layout,
        gradient_of=gradient_of,
    )


def _shape_operand_op(name: str, api: str, n: int, wrt: str) -> OpSpec:
    """A backprop op of conv2d / conv3d (``n`` spatial axes) that takes its input, filter and out_backprop, reading
    only the shape of the one whose gradient (``wrt``) it computes: tf.raw_ops' 2-D V2 ops, or the 3-D V1 ops
    (NDHWC only, padding names only)."""
    fmt, w_layout = reference.RANKS[n][0], reference.filter_layout(n)
    return _raw(
        name,
        api,
        (Operand("input", "data", fmt), Operand("filter", "filter", w_layout), Operand("out_backprop", "data", fmt)),
        "",
        (),
        (),
        extra=("use_cudnn_on_gpu",) if n == 2 else (),
        output_layout=w_layout if wrt == "filters" else "",
        rank=n,
        explicit="explicit_paddings" if n == 2 else "",
        forms=reference.RAW_FORMS if n == 2 else reference.CONV3D_FORMS,
        gradient_of=(f"conv{n}d", wrt),
        data_format=n == 2,
    )


def _raw_conv(n: int) -> OpSpec:
    """``tf.raw_ops.Conv`` on data of ``n`` spatial axes (the op ``raw_conv_<n>d``; batch_dims 1 in the registry)."""
    fmt = reference.RANKS[n]
    return OpSpec(
        f"raw_conv_{n}d",
        (Operand("input", "data", fmt[0]), Operand("filter", "filter", reference.filter_layout(n))),
        ("strides", "padding", "explicit_paddings", "data_format", "dilations", "batch_dims", "groups"),
        ("strides", "padding"),
        fmt,
        reference.conv,
        kind="conv",
        forms=reference.RAW_CONV_FORMS[n],
        defaults={"strides": [1] * (n + 2), "padding": "VALID"},
        tf_kernels=("Conv",),  # Eigen's in both oneDNN modes (no _Mkl variant), as the probe measures
        tf_gradient_kernels=(),
        kernel_padding=_raw_padding,
        api="tf.raw_ops.Conv",
        format_names={fmt[0]: "CHANNELS_LAST", fmt[1]: "CHANNELS_FIRST"},
        doc=f"tf.raw_ops.Conv on data with {n} spatial axes",
    )


def _fused(name: str, api: str, resize: bool) -> OpSpec:
    """tf.raw_ops.FusedResizeAndPadConv2D (``resize``) or FusedPadConv2D: conv2d of the resized, mirror-padded input,
    NHWC only, no dilations; size and paddings are tensors in TensorFlow, attributes here."""
    sized = ("size",) if resize else ()
    return OpSpec(
        name,
        (Operand("input", "data", "NHWC"), Operand("filter", "filter", "HWIO")),
        (*sized, "paddings", "mode", "strides", "padding", *(("resize_align_corners",) if resize else ())),
        (*sized, "paddings", "mode", "strides", "padding"),
        ("NHWC",),
        getattr(reference, name),
        kind="fused",
        forms=reference.FUSED_FORMS,
        defaults={
            **({"size": [6, 6]} if resize else {}),
            "paddings": [[0, 0], [1, 1], [1, 1], [0, 0]],
            "mode": "REFLECT",
            "strides": [1, 1, 1, 1],
            "padding": "SAME",
        },
        tf_kernels=(),  # Eigen's in both oneDNN modes (no _Mkl variant): results are bit-identical across modes
        tf_gradient_kernels=(),
        positional=("input", *sized, "paddings", "filter"),
        api=f"tf.raw_ops.{api}",
        rounding=reference.fused_resize_and_pad_conv2d_rounding if resize else None,
        doc=f"tf.raw_ops.{api}",
    )


# The raw ops: the backprop ops (OpSpec.raw_backprop), which gradient cases call with valid arguments,
# tf.raw_ops.Conv, and the fused resize / pad convolutions. Cases of their own in the registry check their values and their argument checks. No backend
# implements them, and nothing generic that iterates the tf.nn ops (OPS) sees them; ``get`` finds them.
RAW_OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        _raw(
            "conv2d_backprop_input",
            "Conv2DBackpropInput",
            (Operand("filter", "filter", "HWIO"), Operand("out_backprop", "data", "NHWC")),
            "input_sizes",
            ("input_sizes", "filter", "out_backprop"),
            ("Conv2DBackpropInput",),
            extra=("use_cudnn_on_gpu",),
            gradient_of=("conv2d", "input"),
        ),
        _raw(
            "conv2d_backprop_filter",
            "Conv2DBackpropFilter",
            (Operand("input", "data", "NHWC"), Operand("out_backprop", "data", "NHWC")),
            "filter_sizes",
            ("input", "filter_sizes", "out_backprop"),
            ("Conv2DBackpropFilter",),
            extra=("use_cudnn_on_gpu",),
            output_layout="HWIO",
            gradient_of=("conv2d", "filters"),
        ),
        _raw(
            "depthwise_conv2d_native_backprop_input",
            "DepthwiseConv2dNativeBackpropInput",
            (Operand("filter", "filter", "HWIM"), Operand("out_backprop", "data", "NHWC")),
            "input_sizes",
            ("input_sizes", "filter", "out_backprop"),
            ("DepthwiseConv2dNativeBackpropInput",),
            gradient_of=("depthwise_conv2d", "input"),
        ),
        _raw(
            "depthwise_conv2d_native_backprop_filter",
            "DepthwiseConv2dNativeBackpropFilter",
            (Operand("input", "data", "NHWC"), Operand("out_backprop", "data", "NHWC")),
            "filter_sizes",
            ("input", "filter_sizes", "out_backprop"),
            ("DepthwiseConv2dNativeBackpropFilter",),
            output_layout="HWIM",
            gradient_of=("depthwise_conv2d", "filter"),
        ),
        _raw(
            "conv3d_backprop_input_v2",
            "Conv3DBackpropInputV2",
            (Operand("filter", "filter", "DHWIO"), Operand("out_backprop", "data", "NDHWC")),
            "input_sizes",
            ("input_sizes", "filter", "out_backprop"),
            ("Conv3DBackpropInputV2",),
            rank=3,
            explicit="",
            forms=reference.CONV3D_FORMS,
            gradient_of=("conv3d", "input"),
        ),
        _raw(
            "conv3d_backprop_filter_v2",
            "Conv3DBackpropFilterV2",
            (Operand("input", "data", "NDHWC"), Operand("out_backprop", "data", "NDHWC")),
            "filter_sizes",
            ("input", "filter_sizes", "out_backprop"),
            ("Conv3DBackpropFilterV2",),
            output_layout="DHWIO",
            rank=3,
            explicit="",
            forms=reference.CONV3D_FORMS,
            gradient_of=("conv3d", "filters"),
        ),
        _raw(
            "depthwise_conv2d_backprop_input",
            "tf.nn.depthwise_conv2d_backprop_input",
            (Operand("filter", "filter", "HWIM"), Operand("out_backprop", "data", "NHWC")),
            "input_sizes",
            ("input_sizes", "filter", "out_backprop"),
            ("DepthwiseConv2dNativeBackpropInput",),
            explicit="",
            forms=reference.DEPTHWISE_BACKPROP_FORMS,
            gradient_of=("depthwise_conv2d", "input"),
        ),
        _raw(
            "depthwise_conv2d_backprop_filter",
            "tf.nn.depthwise_conv2d_backprop_filter",
            (Operand("input", "data", "NHWC"), Operand("out_backprop", "data", "NHWC")),
            "filter_sizes",
            ("input", "filter_sizes", "out_backprop"),
            ("DepthwiseConv2dNativeBackpropFilter",),
            output_layout="HWIM",
            explicit="",
            forms=reference.DEPTHWISE_BACKPROP_FORMS,
            gradient_of=("depthwise_conv2d", "filter"),
        ),
        # The ops that take the operand itself in place of its sizes (only its shape is read). TensorFlow's own
        # gradients never call them: the 2-D V2 ops have no kernel, the 3-D V1 ops were removed at GraphDef 10.
        _shape_operand_op("conv2d_backprop_input_v2", "Conv2DBackpropInputV2", 2, "input"),
        _shape_operand_op("conv2d_backprop_filter_v2", "Conv2DBackpropFilterV2", 2, "filters"),
        _shape_operand_op("conv3d_backprop_input", "Conv3DBackpropInput", 3, "input"),
        _shape_operand_op("conv3d_backprop_filter", "Conv3DBackpropFilter", 3, "filters"),
        *(_raw_conv(n) for n in (2, 3)),
        _fused("fused_resize_and_pad_conv2d", "FusedResizeAndPadConv2D", resize=True),
        _fused("fused_pad_conv2d", "FusedPadConv2D", resize=False),
    )
}


def scaffolded() -> list[str]:
    """The ops ``harness new`` writes a case for: the tf.nn ops, and the raw ops whose operands are a data and a filter
    (not the backprops, whose operands must come from a forward call: their cases start from one)."""
    return [*OPS, *(name for name, spec in RAW_OPS.items() if spec.kind != "backprop")]


def get(name: str) -> OpSpec:
    """The spec of a tf.nn op (``OPS``) or a raw op (``RAW_OPS``)."""
    try:
        return OPS[name] if name in OPS else RAW_OPS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join([*OPS, *RAW_OPS])}") from None


def kernel_fits(spec: OpSpec, shapes: Mapping[str, tuple[Any, ...]], attrs: Mapping[str, Any]) -> bool:
    """Whether every dilated kernel fits its padded input: padded size >= (k - 1) * d + 1 on every spatial axis.

    Computed from the attributes as written, on purpose without ``harness.conv.padding`` (the code under test): the
    sweeps drop the configurations that do not fit (``drop_invalid_geometry``), and a bug in the window arithmetic
    must make cases fail, never vanish. Transposed convolutions always fit (their output_shape decides the
    geometry), and so do raw backprop ops (their sizes attribute does) and the fused ops (not drawn by sweeps: their
    hand-written cases say what they expect). Attributes it cannot read count as fitting:
    the reference then rejects the case, loudly.
    """
    if spec.kind in ("transposed", "backprop", "fused"):
        return True
    fmt = spec.data_format(attrs)
    spatial = [i for i, c in enumerate(fmt) if c not in "NC"]
    x_shape, w_shape = shapes[spec.data.name], shapes[spec.kernel_operand.name]
    padding = attrs.get("padding", "SAME")
    try:
        dilations = _per_spatial_axis(attrs.get(spec.forms.dilation_arg), fmt)
        for j, axis in enumerate(spatial):
            k_eff = (w_shape[spec.kernel_operand.layout.index(fmt[axis])] - 1) * dilations[j] + 1
            if padding == "SAME":
                continue
            if padding == "EXPLICIT":  # tf.raw_ops: a flat [before, after] per axis
                before, after = attrs["explicit_paddings"][2 * axis : 2 * axis + 2]
            else:
                before, after = (0, 0) if padding == "VALID" else padding[axis]
            if x_shape[axis] + before + after < k_eff:
                return False
    except (TypeError, ValueError, IndexError, KeyError):
        return True
    return True


def _per_spatial_axis(value: Any, fmt: str) -> list[int]:
    """A dilations / rate value as written (None, an int, or a list of 1, one per spatial axis, or the full rank)."""
    n = len(fmt) - 2
    if value is None or (isinstance(value, (list, tuple)) and not value):  # [] is tf.raw_ops.Conv's default
        return [1] * n
    if isinstance(value, int):
        return [value] * n
    values = [int(v) for v in value]
    if len(values) == len(fmt):
        return [v for v, c in zip(values, fmt) if c not in "NC"]
    if len(values) in (1, n):
        return values * (n // len(values))
    raise ValueError(value)
