"""NumPy reference kernels with the signatures of ``tf.nn``.

Each public function takes and returns NumPy arrays in exactly the layouts,
argument names, defaults and output dtype of its ``tf.nn`` namesake (TensorFlow
2.x). They are written from the definition of the operation, never by calling
TensorFlow (this module does not import it):

    out[n, o_1, ..., o_k, c] = sum over taps t and input channels i of
        x_padded[n, o_1 * s_1 + t_1 * d_1, ..., i] * w[t_1, ..., i, c]

that is a *correlation* (no kernel flip), with TensorFlow's padding rules from
``harness.padding``. Sums are accumulated in float64 (int64 for int32) and the
result is cast to the input dtype once, so the reference is as exact as the
input dtype allows.

Vectorized: the only Python loop is over kernel taps; each tap is one matrix
product over the whole batch, every output pixel and every channel.

Invalid arguments raise ``ValueError`` naming the op, the argument and its value.
"""

from __future__ import annotations

import numpy as np

from harness import layouts
from harness.dtypes import DTYPES, accumulator
from harness.padding import Window, normalize_padding, normalize_window_arg, transpose_output_sizes, window, windows

__all__ = [
    "conv2d",
    "depthwise_conv2d",
    "conv2d_transpose",
    "atrous_conv2d",
    "separable_conv2d",
    "conv1d",
]


# --- argument checks ----------------------------------------------------------------------

def _array(op: str, arg: str, value, rank: int, like: np.ndarray | None = None) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as exc:  # ragged nested lists, objects ...
        raise ValueError(f"{op}: argument '{arg}' is not an array: {exc}") from None
    if a.dtype not in DTYPES.values():
        raise ValueError(f"{op}: argument '{arg}' has dtype {a.dtype}; supported: {', '.join(DTYPES)}")
    if a.ndim != rank:
        raise ValueError(f"{op}: argument '{arg}' must have rank {rank}, got rank {a.ndim} with shape {list(a.shape)}")
    if like is not None and a.dtype != like.dtype:
        raise ValueError(f"{op}: argument '{arg}' has dtype {a.dtype} but the input has dtype {like.dtype}")
    return a


def _data_format(op: str, value, allowed: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise ValueError(f"{op}: argument 'data_format'={value!r} must be one of {', '.join(allowed)}")
    return value


def _match(op: str, arg: str, what: str, got: int, want: int, shapes: str) -> None:
    if got != want:
        raise ValueError(f"{op}: argument '{arg}' has {what}={got} but it must be {want} ({shapes})")


def _channels_last(fmt: str) -> str:
    return fmt.replace("C", "") + "C"


def _data_and_filter(op, data_arg, data, fmt, filter_arg, filt, filter_layout):
    """Check the data and filter arrays and that the filter's I axis matches the data's channels.

    Returns (data as given, data channels-last, filter)."""
    x = _array(op, data_arg, data, len(fmt))
    w = _array(op, filter_arg, filt, len(filter_layout), like=x)
    x_last = layouts.convert(x, fmt, _channels_last(fmt))
    axis = filter_layout.index("I")
    _match(op, filter_arg, f"in_channels (axis {axis})", w.shape[axis], x_last.shape[-1],
           f"{filter_arg} {list(w.shape)} {filter_layout}, {data_arg} {list(x.shape)} {fmt}")
    return x, x_last, w


def _window_args(op, fmt, strides, dilations, padding, *, stride_arg="strides", lengths=(1, 2, 4),
                 dilation_lengths=None, allow_int=True, allow_explicit=True):
    """Normalized (strides, dilations, padding), in the forms tf.nn accepts for this op."""
    strides = normalize_window_arg(op, stride_arg, strides, fmt, allowed_lengths=lengths, allow_int=allow_int)
    dilations = normalize_window_arg(op, "dilations", dilations, fmt, allowed_lengths=dilation_lengths or lengths,
                                     allow_int=allow_int, default=1)
    return strides, dilations, normalize_padding(op, padding, fmt, allow_explicit=allow_explicit)


def _cast(acc: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # float64 -> float16/bfloat16/float32 rounds to nearest once; int64 -> int32 wraps like TF.
    return acc.astype(dtype)


# --- the three cores: correlation, depthwise correlation, transposed correlation ----------

def _tap_slices(taps: tuple[int, ...], wins: tuple[Window, ...]) -> tuple[slice, ...]:
    """The strided slice of the padded input that tap ``taps`` reads for every output pixel."""
    return tuple(
        slice(t * w.dilation, t * w.dilation + (w.out - 1) * w.stride + 1, w.stride) for t, w in zip(taps, wins)
    )


def _pad(x_nsc: np.ndarray, wins: tuple[Window, ...], acc: np.dtype) -> np.ndarray:
    pads = [(0, 0)] + [(w.pad_before, w.pad_after) for w in wins] + [(0, 0)]
    return np.pad(x_nsc.astype(acc), pads)


def _correlate(x_nsc: np.ndarray, w_sio: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """Channels-last correlation. x: [N, *spatial, I], w: [*kernel, I, O] -> [N, *out, O] in the accumulator dtype."""
    acc = accumulator(x_nsc.dtype)
    out = np.zeros((x_nsc.shape[0], *(w.out for w in wins), w_sio.shape[-1]), acc)
    if out.size == 0:
        return out
    x_pad = _pad(x_nsc, wins, acc)
    w_acc = w_sio.astype(acc)
    for taps in np.ndindex(*w_sio.shape[:-2]):
        out += x_pad[(slice(None), *_tap_slices(taps, wins))] @ w_acc[taps]
    return out


def _depthwise(x_nsc: np.ndarray, w_sim: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """Channels-last depthwise correlation. x: [N, *spatial, C], w: [*kernel, C, M] -> [N, *out, C*M].

    Output channel ``c * M + m`` is input channel c correlated with w[..., c, m]
    (channel-major), as TensorFlow orders it.
    """
    acc = accumulator(x_nsc.dtype)
    channels, multiplier = w_sim.shape[-2:]
    out = np.zeros((x_nsc.shape[0], *(w.out for w in wins), channels, multiplier), acc)
    if out.size:
        x_pad = _pad(x_nsc, wins, acc)
        w_acc = w_sim.astype(acc)
        for taps in np.ndindex(*w_sim.shape[:-2]):
            out += x_pad[(slice(None), *_tap_slices(taps, wins))][..., :, None] * w_acc[taps]
    return out.reshape(out.shape[:-2] + (channels * multiplier,))


def _correlate_transpose(y_nsc: np.ndarray, w_soi: np.ndarray, wins: tuple[Window, ...]) -> np.ndarray:
    """The adjoint of ``_correlate``: scatter each input pixel through the kernel.

    y: [N, *in, I] (the forward convolution's output), w: [*kernel, O, I]
    (TensorFlow's transpose filter) -> [N, *out, O] where ``out`` are the window
    sizes (the forward convolution's input sizes).
    """
    acc = accumulator(y_nsc.dtype)
    padded = [w.size + w.pad_before + w.pad_after for w in wins]
    out_pad = np.zeros((y_nsc.shape[0], *padded, w_soi.shape[-2]), acc)
    if y_nsc.size and w_soi.size:
        y_acc = y_nsc.astype(acc)
        w_acc = w_soi.astype(acc)
        for taps in np.ndindex(*w_soi.shape[:-2]):
            out_pad[(slice(None), *_tap_slices(taps, wins))] += y_acc @ w_acc[taps].T
    crop = tuple(slice(w.pad_before, w.pad_before + w.size) for w in wins)
    return out_pad[(slice(None), *crop)]


# --- public ops ---------------------------------------------------------------------------

def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None):
    """``tf.nn.conv2d``: 2-D cross-correlation.

    input: [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW); filters: HWIO [kh, kw, C, O].
    strides, dilations: int or list of length 1, 2 or 4. padding: "SAME", "VALID" or
    4 [before, after] pairs in data_format order. Returns [N, H', W', O] (or NCHW).
    """
    op = "conv2d"
    fmt = _data_format(op, data_format, ("NHWC", "NCHW"), "NHWC")
    x, x_nhwc, w_hwio = _data_and_filter(op, "input", input, fmt, "filters", filters, "HWIO")
    strides, dilations, pad = _window_args(op, fmt, strides, dilations, padding)
    wins = windows(op, x_nhwc.shape[1:3], w_hwio.shape[:2], strides, dilations, pad)
    y_nhwc = _cast(_correlate(x_nhwc, w_hwio, wins), x.dtype)
    return layouts.convert(y_nhwc, "NHWC", fmt)


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None):
    """``tf.nn.conv1d``: 1-D cross-correlation.

    input: [N, W, C] (NWC) or [N, C, W] (NCW); filters: [kw, C, O].
    stride, dilations: int or list of length 1 or 3. padding: "SAME" or "VALID"
    (tf.nn.conv1d takes no explicit padding). Returns [N, W', O] (or NCW).
    """
    op = "conv1d"
    fmt = _data_format(op, data_format, ("NWC", "NCW"), "NWC")
    x, x_nwc, w_wio = _data_and_filter(op, "input", input, fmt, "filters", filters, "WIO")
    strides, dilations, pad = _window_args(op, fmt, stride, dilations, padding, stride_arg="stride",
                                           lengths=(1, 3), allow_explicit=False)
    wins = windows(op, x_nwc.shape[1:2], w_wio.shape[:1], strides, dilations, pad)
    y_nwc = _cast(_correlate(x_nwc, w_wio, wins), x.dtype)
    return layouts.convert(y_nwc, "NWC", fmt)


def atrous_conv2d(value, filters, rate, padding):
    """``tf.nn.atrous_conv2d``: conv2d with dilation ``rate`` and stride 1, NHWC only.

    value: [N, H, W, C]; filters: HWIO; rate: positive int (or one per spatial axis);
    padding: "SAME", "VALID" or 4 [before, after] pairs.
    """
    op = "atrous_conv2d"
    x_nhwc, _, w_hwio = _data_and_filter(op, "value", value, "NHWC", "filters", filters, "HWIO")
    rates = normalize_window_arg(op, "rate", rate, "NHWC", allowed_lengths=(1, 2))
    pad = normalize_padding(op, padding, "NHWC")
    wins = windows(op, x_nhwc.shape[1:3], w_hwio.shape[:2], (1, 1), rates, pad)
    return _cast(_correlate(x_nhwc, w_hwio, wins), x_nhwc.dtype)


def _depthwise_args(op, filter_arg, input, filter, strides, padding, data_format, dilations):
    fmt = _data_format(op, data_format, ("NHWC", "NCHW"), "NHWC")
    x, x_nhwc, w_hwim = _data_and_filter(op, "input", input, fmt, filter_arg, filter, "HWIM")
    # tf.nn.depthwise_conv2d requires a 4-long strides list and takes 2 dilations.
    strides, dilations, pad = _window_args(op, fmt, strides, dilations, padding, lengths=(4,),
                                           dilation_lengths=(2,), allow_int=False)
    wins = windows(op, x_nhwc.shape[1:3], w_hwim.shape[:2], strides, dilations, pad)
    return fmt, x, x_nhwc, w_hwim, wins


def depthwise_conv2d(input, filter, strides, padding, data_format=None, dilations=None):
    """``tf.nn.depthwise_conv2d``: each input channel correlated with its own filters.

    input: NHWC or NCHW; filter: [kh, kw, C, M] (HWIM, M = channel multiplier);
    strides: list of 4; dilations: list of 2. Output channel ``c * M + m``
    (channel-major): [N, H', W', C*M] (or NCHW).
    """
    op = "depthwise_conv2d"
    fmt, x, x_nhwc, w_hwim, wins = _depthwise_args(op, "filter", input, filter, strides, padding, data_format, dilations)
    y_nhwc = _cast(_depthwise(x_nhwc, w_hwim, wins), x.dtype)
    return layouts.convert(y_nhwc, "NHWC", fmt)


def separable_conv2d(input, depthwise_filter, pointwise_filter, strides, padding, data_format=None, dilations=None):
    """``tf.nn.separable_conv2d``: depthwise_conv2d, then a 1x1 conv2d mixing channels.

    depthwise_filter: [kh, kw, C, M]; pointwise_filter: [1, 1, C*M, O].
    strides and padding apply to the depthwise step; the pointwise step is 1x1,
    stride 1. Returns [N, H', W', O] (or NCHW). Both steps accumulate in float64
    with no intermediate rounding.
    """
    op = "separable_conv2d"
    fmt, x, x_nhwc, w_hwim, wins = _depthwise_args(op, "depthwise_filter", input, depthwise_filter, strides, padding, data_format, dilations)
    w_pw = _array(op, "pointwise_filter", pointwise_filter, 4, like=x)
    channels = w_hwim.shape[2] * w_hwim.shape[3]
    if w_pw.shape[:3] != (1, 1, channels):
        raise ValueError(
            f"{op}: argument 'pointwise_filter' has shape {list(w_pw.shape)}; it must be [1, 1, {channels}, out_channels] "
            f"(in_channels * channel_multiplier = {w_hwim.shape[2]} * {w_hwim.shape[3]})"
        )
    y_nhwc = _cast(_depthwise(x_nhwc, w_hwim, wins) @ w_pw[0, 0].astype(accumulator(x.dtype)), x.dtype)
    return layouts.convert(y_nhwc, "NHWC", fmt)


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NHWC", dilations=None):
    """``tf.nn.conv2d_transpose``: the gradient of conv2d with respect to its input.

    input: [N, H, W, I] (NHWC) or NCHW; filters: [kh, kw, O, I] (``[h, w, out, in]``);
    output_shape: 4 values in data_format order, or the 2 spatial sizes. It must be
    a shape that conv2d (same filters, strides, padding, dilations) maps back onto
    ``input``'s spatial shape; ``harness.padding.transpose_output_sizes`` lists them.
    Returns an array of ``output_shape``.
    """
    op = "conv2d_transpose"
    fmt = _data_format(op, data_format, ("NHWC", "NCHW"), "NHWC")
    x, y_nhwc, w_hwoi = _data_and_filter(op, "input", input, fmt, "filters", filters, "HWOI")
    strides, dilations, pad = _window_args(op, fmt, strides, dilations, padding)
    out_hw = _transpose_output_hw(op, output_shape, fmt, y_nhwc.shape, w_hwoi.shape[2])
    pads = [pad] * 2 if isinstance(pad, str) else list(pad)
    wins = []
    for axis, (m, n, k, s, d, p) in enumerate(zip(out_hw, y_nhwc.shape[1:3], w_hwoi.shape[:2], strides, dilations, pads)):
        accepted = transpose_output_sizes(n, k, s, d, p)
        if m not in accepted:
            raise ValueError(
                f"{op}: argument 'output_shape'={_as_list(output_shape)} is unreachable: a conv2d of an input of "
                f"{'height' if axis == 0 else 'width'} {m} with kernel {k}, stride {s}, dilation {d}, padding {p!r} "
                f"does not give {n}; accepted: {_describe(accepted)}"
            )
        wins.append(window(op, m, k, s, d, p))
    out_nhwc = _cast(_correlate_transpose(y_nhwc, w_hwoi, tuple(wins)), x.dtype)
    return layouts.convert(out_nhwc, "NHWC", fmt)


def _as_list(value):
    return np.asarray(value).tolist()


def _describe(sizes: range) -> str:
    return "none" if not sizes else f"{sizes.start}..{sizes.stop - 1}" if len(sizes) > 1 else str(sizes.start)


def _transpose_output_hw(op, output_shape, fmt, in_nhwc_shape, out_channels) -> tuple[int, int]:
    try:
        values = [int(v) for v in np.asarray(output_shape).reshape(-1)]
        if any(float(v) != float(o) for v, o in zip(values, np.asarray(output_shape).reshape(-1))):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{op}: argument 'output_shape'={output_shape!r} must be a list of ints") from None
    if np.ndim(output_shape) != 1 or len(values) not in (2, 4):
        raise ValueError(f"{op}: argument 'output_shape'={_as_list(output_shape)} must have 4 values ({fmt}) or 2 (height, width)")
    if len(values) == 2:
        return values[0], values[1]
    shape = dict(zip(fmt, values))
    if shape["N"] != in_nhwc_shape[0]:
        raise ValueError(f"{op}: argument 'output_shape'={values} has batch {shape['N']} but the input has batch {in_nhwc_shape[0]}")
    if shape["C"] != out_channels:
        raise ValueError(
            f"{op}: argument 'output_shape'={values} has {shape['C']} channels but filters have out_channels={out_channels} (axis 2)"
        )
    return shape["H"], shape["W"]
