"""Argument checking of harness/conv/reference.py, plus a few exact values written by hand.

Every invalid argument must raise ValueError (never TypeError, IndexError, ...)
whose message names the argument and contains its value. ``pytest.raises(ValueError)``
lets any other exception type through, which fails the test.
"""

import ml_dtypes
import numpy as np
import pytest
from support import assert_value_error

from harness import ops
from harness.conv import reference
from harness.registry import scaffold

F32 = np.float32


def ramp(*shape, dtype=F32):
    """Small distinct values 1, 2, 3, ... (exact in every supported dtype for small shapes)."""
    return (np.arange(int(np.prod(shape))) % 7 + 1).reshape(shape).astype(dtype)


def base_args(op, dtype=F32):
    """Valid keyword arguments for each op, from its spec (the scaffold's new case on a 5-wide, 2-channel input,
    ramp values); tests override one argument at a time."""
    spec = ops.get(op)
    fmt = spec.formats[0]
    if spec.kind == "transposed":  # stride 2, SAME: a 3-wide, 4-channel input from a 5-wide, 2-channel output
        data, filt, out = {"N": 1, "C": 4, "D": 3, "H": 3, "W": 3}, {"I": 4, "O": 2}, {"N": 1, "C": 2}
        case = scaffold.new_case(
            op,
            shapes={
                spec.data.name: [data[c] for c in fmt],
                spec.filter.name: [filt.get(c, 3) for c in spec.filter.layout],
            },
            attrs={"output_shape": [out.get(c, 5 if spec.forms.stride_arg else 3) for c in fmt]},  # stride 1: 3
        )
    else:
        data = {"N": 1, "C": 2, "D": 5, "H": 5, "W": 5}
        case = scaffold.new_case(op, shapes={spec.data.name: [data[c] for c in fmt]})
    arrays = {name: ramp(*t["generate"]["shape"], dtype=dtype) for name, t in case["inputs"].items()}
    return {**arrays, **case["attrs"]}


ALL_OPS = list(ops.OPS)
INPUT_NAME = {op: ops.get(op).data.name for op in ALL_OPS}
FILTER_NAME = {op: ops.get(op).filter.name for op in ALL_OPS}
STRIDE_NAME = {op: ops.get(op).forms.stride_arg for op in ALL_OPS if ops.get(op).forms.stride_arg}
WITH_DATA_FORMAT = [op for op in ALL_OPS if "data_format" in ops.get(op).attrs]
WITH_DILATIONS = [op for op in ALL_OPS if ops.get(op).forms.dilation_arg == "dilations"]
WITH_EXPLICIT_PADDING = [op for op in ALL_OPS if ops.get(op).forms.explicit_padding]


def fn_name(op):
    """The name the reference's messages give ``op``: its tf.nn (or tf.raw_ops) function's (convolution_2d's is
    convolution)."""
    return ops.get(op).reference.__name__


def call(op, **overrides):
    args = base_args(op)
    args.update(overrides)
    return ops.get(op).reference(**args)


@pytest.mark.parametrize("op", ALL_OPS)
def test_base_arguments_are_valid(op):
    call(op)


# --- ranks ----------------------------------------------------------------------------------


BATCH_AXES_OPS = ("conv1d", "conv2d", "convolution_1d", "convolution_2d", "convolution_3d")


@pytest.mark.parametrize("op", ALL_OPS)
def test_wrong_input_rank(op):
    name = INPUT_NAME[op]
    too_low = base_args(op)[name][0]  # batch axis dropped
    assert_value_error(
        lambda: call(op, **{name: too_low}), fn_name(op), f"'{name}'", f"rank {too_low.ndim}", str(list(too_low.shape))
    )
    too_high = base_args(op)[name][None]
    if op in BATCH_AXES_OPS:  # tf.nn.conv1d / conv2d: leading axes beyond the layout's are batch axes
        assert call(op, **{name: too_high}).shape == (1, *call(op).shape)
        return
    assert_value_error(lambda: call(op, **{name: too_high}), f"'{name}'", str(list(too_high.shape)))


@pytest.mark.parametrize("op", ALL_OPS)
def test_wrong_filter_rank(op):
    name = FILTER_NAME[op]
    bad = base_args(op)[name][..., 0]
    if ops.get(op).reference is reference.convolution:  # the filters' rank says the rank: only 3 to 5 are one
        bad = ramp(*([2] * (2 if op == "convolution_1d" else 6)))
    assert_value_error(
        lambda: call(op, **{name: bad}), fn_name(op), f"'{name}'", f"rank {bad.ndim}", str(list(bad.shape))
    )


def test_separable_pointwise_filter_wrong_rank():
    bad = ramp(1, 4, 3)
    assert_value_error(lambda: call("separable_conv2d", pointwise_filter=bad), "'pointwise_filter'", "[1, 4, 3]")


def test_ragged_input_is_a_value_error():
    assert_value_error(lambda: call("conv2d", input=[[[[1.0]], [[1.0, 2.0]]]]), "'input'")


# --- channels -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
def test_channel_mismatch(op):
    spec = ops.get(op)
    args = base_args(op)
    want = args[spec.data.name].shape[spec.formats[0].index("C")]
    shape = list(args[spec.filter.name].shape)
    shape[spec.filter.layout.index("I")] = want + 1  # the filter's input channels: one more than the input has
    assert_value_error(
        lambda: call(op, **{spec.filter.name: ramp(*shape)}),
        fn_name(op),
        f"'{spec.filter.name}'",
        f"={want + 1}",
        f"must be {want}",
    )


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_grouped_channels_are_a_grouped_convolution(data_format):
    # 4 input channels, filters with in_channels 2: 2 groups, each of 2 output channels reading its own 2 channels
    # (the Conv2D op's semantics), i.e. the concatenation of two ungrouped convolutions, written out here.
    x = ramp(1, 5, 5, 4) if data_format == "NHWC" else ramp(1, 4, 5, 5)
    w_hwio = ramp(3, 3, 2, 4)
    x_nhwc = x if data_format == "NHWC" else np.transpose(x, (0, 2, 3, 1))
    halves = [
        reference.conv2d(x_nhwc[..., 2 * g : 2 * g + 2], w_hwio[..., 2 * g : 2 * g + 2], 1, "SAME") for g in (0, 1)
    ]
    y = reference.conv2d(x, w_hwio, 1, "SAME", data_format=data_format)
    y_nhwc = y if data_format == "NHWC" else np.transpose(y, (0, 2, 3, 1))
    np.testing.assert_array_equal(y_nhwc, np.concatenate(halves, axis=-1))


def test_conv2d_groups_must_divide_the_channels():
    # in_channels 3 do not divide 4 channels; 2 groups do not divide 3 output channels
    assert_value_error(
        lambda: reference.conv2d(ramp(1, 5, 5, 4), ramp(3, 3, 3, 4), 1, "SAME"),
        "'filters'",
        "in_channels (axis 2)=3",
        "must be 4 or divide it",
    )
    assert_value_error(
        lambda: reference.conv2d(ramp(1, 5, 5, 4), ramp(3, 3, 2, 3), 1, "SAME"),
        "'filters'",
        "out_channels (axis 3)=3",
        "2 groups",
    )
    assert_value_error(
        lambda: reference.conv2d(ramp(1, 5, 5, 0), ramp(3, 3, 2, 4), 1, "SAME"),
        "'filters'",
        "in_channels (axis 2)=2",
        "must be 0",
    )


def test_conv2d_nchw_reads_channels_from_axis_1():
    x_nchw = ramp(1, 2, 5, 7)
    w_hwio = ramp(3, 3, 2, 4)
    assert reference.conv2d(x_nchw, w_hwio, 1, "VALID", data_format="NCHW").shape == (1, 4, 3, 5)
    assert_value_error(lambda: reference.conv2d(x_nchw, w_hwio, 1, "VALID"), "'filters'", "must be 7")


# --- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
def test_filter_dtype_mismatch(op):
    name = FILTER_NAME[op]
    bad = base_args(op)[name].astype(np.float64)
    assert_value_error(lambda: call(op, **{name: bad}), fn_name(op), f"'{name}'", "float64", "float32")


def test_separable_pointwise_dtype_mismatch():
    bad = ramp(1, 1, 4, 3, dtype=np.float16)
    assert_value_error(
        lambda: call("separable_conv2d", pointwise_filter=bad), "'pointwise_filter'", "float16", "float32"
    )


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int64, np.complex64, np.complex128, np.bool_], ids=lambda d: np.dtype(d).name
)
def test_unsupported_input_dtype(op, dtype):
    args = base_args(op)
    args = {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    name = INPUT_NAME[op]
    assert_value_error(
        lambda: ops.get(op).reference(**args), fn_name(op), f"'{name}'", np.dtype(dtype).name, "supported"
    )


def test_unsupported_filter_dtype_with_supported_input():
    assert_value_error(lambda: call("conv2d", filters=ramp(3, 3, 2, 4, dtype=np.int8)), "'filters'", "int8")


def test_none_filter_is_a_value_error():
    assert_value_error(lambda: call("conv2d", filters=None), "'filters'")


# --- padding --------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("padding", ["FULL", "same", "valid", "Same"])
def test_bad_padding_name(op, padding):
    message = assert_value_error(lambda: call(op, padding=padding), fn_name(op), "'padding'", repr(padding))
    if padding.upper() in ("SAME", "VALID"):
        assert "case-sensitive" in message


@pytest.mark.parametrize("op", WITH_EXPLICIT_PADDING)
def test_negative_explicit_padding(op):
    padding = [[0, 0], [-1, 0], [0, 0], [0, 0]]
    assert_value_error(lambda: call(op, padding=padding), fn_name(op), "'padding'", repr(padding), "non-negative")


@pytest.mark.parametrize("op", WITH_EXPLICIT_PADDING)
@pytest.mark.parametrize(
    "padding", [[[1, 1], [1, 1]], [[0, 0], [1, 1], [1, 1]], [1, 1, 1, 1]], ids=["2pairs", "3pairs", "flat"]
)
def test_padding_list_of_wrong_length(op, padding):
    assert_value_error(lambda: call(op, padding=padding), fn_name(op), "'padding'", repr(padding))


def test_explicit_padding_on_batch_or_channels():
    padding = [[0, 0], [1, 1], [1, 1], [1, 1]]
    assert_value_error(lambda: call("conv2d", padding=padding), "'padding'", "the C pair")


def test_conv1d_rejects_explicit_padding():
    padding = [[0, 0], [1, 1], [0, 0]]
    assert_value_error(lambda: call("conv1d", padding=padding), "conv1d", "'padding'", repr(padding), "explicit")


@pytest.mark.parametrize("padding", [None, 3])
def test_padding_not_a_name_nor_a_list(padding):
    assert_value_error(lambda: call("conv2d", padding=padding), "'padding'", repr(padding))


# --- strides, dilations, rate ---------------------------------------------------------------


@pytest.mark.parametrize(
    "op, strides",
    [
        ("conv2d", 0),
        ("conv2d", [0]),
        ("conv2d", [1, 0]),
        ("conv2d", [1, 0, 1, 1]),
        ("conv2d", -1),
        ("conv1d", 0),
        ("conv1d", [1, 0, 1]),
        ("depthwise_conv2d", [1, 0, 1, 1]),
        ("separable_conv2d", [1, 1, 0, 1]),
        ("conv2d_transpose", 0),
        ("conv2d_transpose", [1, 0]),
    ],
)
def test_stride_zero_or_negative(op, strides):
    name = STRIDE_NAME[op]
    assert_value_error(lambda: call(op, **{name: strides}), fn_name(op), f"'{name}'", repr(strides), "positive")


@pytest.mark.parametrize(
    "op, dilations",
    [
        ("conv2d", 0),
        ("conv2d", [1, 0]),
        ("conv2d", [1, 1, 0, 1]),
        ("conv1d", 0),
        ("depthwise_conv2d", [0, 1]),
        ("separable_conv2d", [1, 0]),
        ("conv2d_transpose", 0),
    ],
)
def test_dilation_zero(op, dilations):
    assert_value_error(lambda: call(op, dilations=dilations), fn_name(op), "'dilations'", repr(dilations), "positive")


@pytest.mark.parametrize("rate", [0, -2, [1, 0]])
def test_atrous_rate_not_positive(rate):
    assert_value_error(lambda: call("atrous_conv2d", rate=rate), "atrous_conv2d", "'rate'", repr(rate))


@pytest.mark.parametrize("strides", [[2, 1, 1, 1], [1, 1, 1, 2]])
def test_conv2d_strides_on_batch_or_channels(strides):
    assert_value_error(lambda: call("conv2d", strides=strides), "'strides'", repr(strides), "must be 1")


@pytest.mark.parametrize("op", ["depthwise_conv2d", "separable_conv2d"])
@pytest.mark.parametrize("strides", [1, 2, [1, 1], [1]], ids=repr)
def test_depthwise_strides_must_be_a_4_list(op, strides):
    # tf.nn.depthwise_conv2d / separable_conv2d take exactly 4 strides
    assert_value_error(lambda: call(op, strides=strides), fn_name(op), "'strides'", repr(strides), "4")


@pytest.mark.parametrize("op", ["depthwise_conv2d", "separable_conv2d"])
def test_depthwise_dilations_must_be_a_2_list(op):
    assert_value_error(lambda: call(op, dilations=[1, 1, 1, 1]), fn_name(op), "'dilations'", "length 2")


@pytest.mark.parametrize("strides", ["2", True, 2.0, None], ids=repr)
def test_weird_strides_are_value_errors(strides):
    assert_value_error(lambda: call("conv2d", strides=strides), "'strides'", repr(strides))


def test_conv2d_accepts_numpy_array_strides():
    args = base_args("conv2d")
    expected = reference.conv2d(args["input"], args["filters"], [1, 2, 2, 1], "SAME")
    got = reference.conv2d(args["input"], args["filters"], np.array([1, 2, 2, 1]), "SAME")
    np.testing.assert_array_equal(got, expected)


# --- data_format ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", WITH_DATA_FORMAT)
@pytest.mark.parametrize("data_format", ["NWHC", "nhwc", "CHWN", ""])
def test_unknown_data_format(op, data_format):
    assert_value_error(lambda: call(op, data_format=data_format), fn_name(op), "'data_format'", repr(data_format))


@pytest.mark.parametrize(
    "op, data_format", [("conv2d", "NWC"), ("conv2d", "NCW"), ("conv1d", "NHWC"), ("conv1d", "NCHW")]
)
def test_data_format_of_the_wrong_rank(op, data_format):
    assert_value_error(lambda: call(op, data_format=data_format), "'data_format'", repr(data_format))


# --- conv2d_transpose output_shape ----------------------------------------------------------


def test_transpose_unreachable_output_shape_lists_accepted_sizes():
    # SAME, stride 2, 3x3 input: a forward conv gives 3 only for 5 or 6
    message = assert_value_error(
        lambda: call("conv2d_transpose", output_shape=[1, 7, 7, 2]),
        "conv2d_transpose",
        "'output_shape'",
        "[1, 7, 7, 2]",
        "unreachable",
        "accepted: 5..6",
    )
    assert "height 7" in message


def test_transpose_unreachable_width_only():
    message = assert_value_error(
        lambda: call("conv2d_transpose", output_shape=[1, 6, 4, 2]), "unreachable", "accepted: 5..6"
    )
    assert "width 4" in message


def test_transpose_unreachable_single_accepted_size():
    # VALID, stride 1, kernel 3, 3x3 input: only 5 is accepted
    assert_value_error(
        lambda: call("conv2d_transpose", output_shape=[6, 6], strides=1, padding="VALID"),
        "'output_shape'",
        "[6, 6]",
        "unreachable",
        "accepted: 5",
    )


@pytest.mark.parametrize(
    "output_shape, fragment",
    [([2, 5, 5, 2], "batch 2"), ([1, 5, 5, 3], "3 channels"), ([1, 5, 5, 6], "6 channels")],
)
def test_transpose_output_shape_wrong_batch_or_channels(output_shape, fragment):
    assert_value_error(
        lambda: call("conv2d_transpose", output_shape=output_shape), "'output_shape'", str(output_shape), fragment
    )


def test_transpose_output_shape_channels_follow_data_format():
    y_nchw = ramp(1, 4, 3, 3)
    w_hwoi = ramp(3, 3, 2, 4)
    out = reference.conv2d_transpose(y_nchw, w_hwoi, [1, 2, 5, 5], 2, "SAME", data_format="NCHW")
    assert out.shape == (1, 2, 5, 5)
    assert_value_error(
        lambda: reference.conv2d_transpose(y_nchw, w_hwoi, [1, 5, 5, 2], 2, "SAME", data_format="NCHW"),
        "'output_shape'",
        "5 channels",
    )


@pytest.mark.parametrize(
    "output_shape", [[5, 5, 2], [5], [1, 1, 5, 5, 2], [1, 5.5, 5, 2], "abc", None, [[1, 5], [5, 2]]], ids=repr
)
def test_transpose_malformed_output_shape(output_shape):
    assert_value_error(lambda: call("conv2d_transpose", output_shape=output_shape), "'output_shape'")


# --- kernel larger than the input -----------------------------------------------------------


@pytest.mark.parametrize(
    "op, overrides",
    [
        ("conv2d", dict(input=ramp(1, 3, 3, 2), filters=ramp(4, 4, 2, 1), padding="VALID")),
        ("conv2d", dict(input=ramp(1, 3, 3, 2), filters=ramp(2, 2, 2, 1), padding="VALID", dilations=3)),
        ("conv2d", dict(input=ramp(1, 3, 3, 2), filters=ramp(6, 6, 2, 1), padding=[[0, 0], [1, 1], [1, 1], [0, 0]])),
        ("conv1d", dict(input=ramp(1, 3, 2), filters=ramp(4, 2, 1), padding="VALID")),
        ("atrous_conv2d", dict(value=ramp(1, 3, 3, 2), filters=ramp(2, 2, 2, 1), rate=3, padding="VALID")),
        ("depthwise_conv2d", dict(input=ramp(1, 3, 3, 2), filter=ramp(4, 4, 2, 1), padding="VALID")),
    ],
    ids=["conv2d", "conv2d-dilated", "conv2d-explicit", "conv1d", "atrous", "depthwise"],
)
def test_valid_kernel_larger_than_input(op, overrides):
    assert_value_error(lambda: call(op, **overrides), fn_name(op), "effective kernel size", "padded input size")


# --- separable pointwise filter -------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 2, 3), (1, 1, 5, 3), (3, 3, 4, 3), (1, 2, 4, 3)])
def test_separable_pointwise_filter_shape(shape):
    assert_value_error(
        lambda: call("separable_conv2d", pointwise_filter=ramp(*shape)),
        "separable_conv2d",
        "'pointwise_filter'",
        str(list(shape)),
        "[1, 1, 4, out_channels]",
    )


# --- exact values written by hand -----------------------------------------------------------


def test_conv2d_valid_sums_2x2_blocks():
    x_nhwc = np.arange(9, dtype=F32).reshape(1, 3, 3, 1)  # [[0,1,2],[3,4,5],[6,7,8]]
    w_hwio = np.ones((2, 2, 1, 1), F32)
    out = reference.conv2d(x_nhwc, w_hwio, 1, "VALID")
    np.testing.assert_array_equal(out[0, :, :, 0], [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]])


def test_conv2d_same_is_correlation_padded_after():
    # 2x2 input, 2x2 kernel, SAME: one zero row/column after (bottom/right), no flip.
    x_nhwc = np.array([[1, 2], [3, 4]], F32).reshape(1, 2, 2, 1)
    w_hwio = np.array([[1, 10], [100, 1000]], F32).reshape(2, 2, 1, 1)
    out = reference.conv2d(x_nhwc, w_hwio, 1, "SAME")
    expected = [
        [1 * 1 + 2 * 10 + 3 * 100 + 4 * 1000, 2 * 1 + 4 * 100],
        [3 * 1 + 4 * 10, 4 * 1],
    ]
    np.testing.assert_array_equal(out[0, :, :, 0], expected)


def test_conv2d_nchw_matches_hand_values():
    x_nchw = np.array([[1, 2], [3, 4]], F32).reshape(1, 1, 2, 2)
    w_hwio = np.array([[1, 10], [100, 1000]], F32).reshape(2, 2, 1, 1)
    out = reference.conv2d(x_nchw, w_hwio, 1, "SAME", data_format="NCHW")
    assert out.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0], [[4321, 402], [43, 4]])


def test_atrous_conv2d_reads_taps_rate_apart():
    x_nhwc = np.arange(25, dtype=F32).reshape(1, 5, 5, 1)
    x = x_nhwc[0, :, :, 0]
    w_hwio = np.array([[1, 10], [100, 1000]], F32).reshape(2, 2, 1, 1)
    out = reference.atrous_conv2d(x_nhwc, w_hwio, 2, "VALID")
    assert out.shape == (1, 3, 3, 1)
    for i in range(3):
        for j in range(3):
            assert out[0, i, j, 0] == x[i, j] + 10 * x[i, j + 2] + 100 * x[i + 2, j] + 1000 * x[i + 2, j + 2]


def test_conv1d_stride_2_hand_values():
    x_nwc = np.array([1, 2, 3, 4, 5], F32).reshape(1, 5, 1)
    w_wio = np.array([1, 10, 100], F32).reshape(3, 1, 1)
    out = reference.conv1d(x_nwc, w_wio, 2, "VALID")
    np.testing.assert_array_equal(out[0, :, 0], [1 + 20 + 300, 3 + 40 + 500])


def test_depthwise_output_channels_are_channel_major():
    # w[0, 0, c, m] = 10 * c + m + 1 identifies (c, m); output channel c * M + m.
    x_nhwc = np.array([1, 100], F32).reshape(1, 1, 1, 2)
    w_hwim = np.array([[1, 2, 3], [11, 12, 13]], F32).reshape(1, 1, 2, 3)
    out = reference.depthwise_conv2d(x_nhwc, w_hwim, [1, 1, 1, 1], "VALID")
    np.testing.assert_array_equal(out[0, 0, 0], [1, 2, 3, 1100, 1200, 1300])
    out_nchw = reference.depthwise_conv2d(x_nhwc.reshape(1, 2, 1, 1), w_hwim, [1, 1, 1, 1], "VALID", data_format="NCHW")
    np.testing.assert_array_equal(out_nchw[0, :, 0, 0], [1, 2, 3, 1100, 1200, 1300])


def test_separable_pointwise_sees_channel_major_order():
    x_nhwc = np.array([1, 100], F32).reshape(1, 1, 1, 2)
    w_hwim = np.array([[1, 2, 3], [11, 12, 13]], F32).reshape(1, 1, 2, 3)
    # pointwise picks depthwise output channel 4 (c=1, m=1) and channel 2 (c=0, m=2)
    w_pw = np.zeros((1, 1, 6, 2), F32)
    w_pw[0, 0, 4, 0] = 1
    w_pw[0, 0, 2, 1] = 1
    out = reference.separable_conv2d(x_nhwc, w_hwim, w_pw, [1, 1, 1, 1], "VALID")
    np.testing.assert_array_equal(out[0, 0, 0], [1200, 3])


def test_conv2d_transpose_single_pixel_places_unflipped_kernel():
    y_nhwc = np.zeros((1, 3, 3, 1), F32)
    y_nhwc[0, 1, 1, 0] = 1
    k = np.arange(1, 10, dtype=F32).reshape(3, 3)
    w_hwoi = k.reshape(3, 3, 1, 1)
    out = reference.conv2d_transpose(y_nhwc, w_hwoi, [1, 7, 7, 1], 2, "VALID")
    expected = np.zeros((7, 7), F32)
    expected[2:5, 2:5] = k  # input pixel (1, 1) * stride 2 = offset (2, 2)
    np.testing.assert_array_equal(out[0, :, :, 0], expected)


def test_conv2d_transpose_same_crops_pad_before():
    # Forward SAME with n=5, k=3, s=2 pads (1, 1): output pixel (0, 0) of the
    # transposed conv is padded position (1, 1), so pixel (0, 0) of y contributes k[1:, 1:].
    y_nhwc = np.zeros((1, 3, 3, 1), F32)
    y_nhwc[0, 0, 0, 0] = 1
    k = np.arange(1, 10, dtype=F32).reshape(3, 3)
    out = reference.conv2d_transpose(y_nhwc, k.reshape(3, 3, 1, 1), [1, 5, 5, 1], 2, "SAME")
    expected = np.zeros((5, 5), F32)
    expected[0:2, 0:2] = k[1:, 1:]
    np.testing.assert_array_equal(out[0, :, :, 0], expected)


def test_conv2d_transpose_filter_axes_are_h_w_out_in():
    y_nhwc = np.zeros((1, 1, 1, 2), F32)
    y_nhwc[0, 0, 0, 1] = 1  # only input channel 1
    w_hwoi = np.arange(1, 1 + 2 * 2 * 3 * 2, dtype=F32).reshape(2, 2, 3, 2)
    out = reference.conv2d_transpose(y_nhwc, w_hwoi, [1, 2, 2, 3], 1, "VALID")
    np.testing.assert_array_equal(out[0], w_hwoi[:, :, :, 1])


def test_conv2d_transpose_matches_hand_written_scatter():
    rng = np.random.default_rng(0)
    y_nhwc = rng.integers(-3, 4, (2, 3, 4, 2)).astype(np.float64)
    w_hwoi = rng.integers(-3, 4, (3, 2, 3, 2)).astype(np.float64)
    s, d, (pt, pb), (pl, pr) = 2, 1, (1, 0), (2, 1)
    # accepted sizes: height (3-1)*2 + 3 - 1 = 6 .. 7, width (4-1)*2 + 2 - 3 = 5 .. 6
    out_h, out_w = 6, 6
    padded = np.zeros((2, out_h + pt + pb, out_w + pl + pr, 3))
    for n, i, j, c_in in np.ndindex(*y_nhwc.shape):
        for a, b, c_out in np.ndindex(3, 2, 3):
            padded[n, i * s + a * d, j * s + b * d, c_out] += y_nhwc[n, i, j, c_in] * w_hwoi[a, b, c_out, c_in]
    expected = padded[:, pt : pt + out_h, pl : pl + out_w]
    padding = [[0, 0], [pt, pb], [pl, pr], [0, 0]]
    out = reference.conv2d_transpose(y_nhwc, w_hwoi, [2, out_h, out_w, 3], s, padding)
    np.testing.assert_array_equal(out, expected)


# --- dtypes and accumulation ----------------------------------------------------------------

DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.int32]


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_output_dtype_equals_input_dtype(op, dtype):
    args = base_args(op, dtype=dtype)
    out = ops.get(op).reference(**args)
    assert out.dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "dtype, big",
    [(np.float32, 1e8), (np.float16, 2048.0), (ml_dtypes.bfloat16, 256.0)],
    ids=["float32", "float16", "bfloat16"],
)
def test_sums_accumulate_in_float64(dtype, big):
    values = np.array([big, 1, -big], dtype)
    # naive left-to-right summation in the input dtype loses the 1
    naive = values[0]
    for v in values[1:]:
        naive = (naive + v).astype(dtype)
    assert naive == 0
    # sum over channels (one matrix product): 1x1 conv1d over 3 channels
    out = reference.conv1d(values.reshape(1, 1, 3), np.ones((1, 3, 1), dtype), 1, "VALID")
    assert out.dtype == np.dtype(dtype) and out.item() == 1
    # sum over kernel taps (the tap loop): 1x3 kernel over one channel
    out = reference.conv1d(values.reshape(1, 3, 1), np.ones((3, 1, 1), dtype), 1, "VALID")
    assert out.item() == 1
    # sum over channels in conv2d
    out = reference.conv2d(values.reshape(1, 1, 1, 3), np.ones((1, 1, 3, 1), dtype), 1, "VALID")
    assert out.item() == 1


def test_separable_has_no_intermediate_rounding():
    # depthwise channel 0 is 65 * 33 = 2145, not a float16 (spacing 2 above 2048);
    # channel 1 is -2144. The pointwise sum is exactly 1 only if the depthwise
    # result is not rounded to float16 in between (it would give 0 or 2).
    assert float(np.float16(2145)) != 2145.0
    x_nhwc = np.array([65, -2144], np.float16).reshape(1, 1, 1, 2)
    w_dw = np.array([33, 1], np.float16).reshape(1, 1, 2, 1)
    w_pw = np.ones((1, 1, 2, 1), np.float16)
    out = reference.separable_conv2d(x_nhwc, w_dw, w_pw, [1, 1, 1, 1], "VALID")
    assert out.dtype == np.float16 and out.item() == 1
