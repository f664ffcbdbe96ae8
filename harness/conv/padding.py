"""TensorFlow's window and padding arithmetic, in exactly one place.

Everything that decides how big an output is, how much padding a "SAME"
convolution adds and on which side, which ``output_shape`` a transposed
convolution accepts, and how the ``strides`` / ``dilations`` / ``padding``
arguments of ``tf.nn`` are spelled lives here. The reference kernels, the
textbook formulations and the case loader all call these functions; none of
them repeats the formulas.

Conventions (TensorFlow's, see ``tensorflow/core/framework/kernel_shape_util.cc``):

* effective kernel size ``k_eff = (k - 1) * d + 1``;
* VALID: ``out = ceil((n - k_eff + 1) / s)``, no padding;
* SAME: ``out = ceil(n / s)``, total pad ``max(0, (out - 1) * s + k_eff - n)``,
  ``before = total // 2`` and the odd pixel goes ``after`` (bottom / right);
* explicit: ``out = (n + before + after - k_eff) // s + 1``.

All argument errors are ``ValueError`` naming the op, the argument and its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.conv.layouts import SPATIAL_LETTERS

PADDING_NAMES = ("SAME", "VALID")
# A normalized padding argument: "SAME", "VALID" or one (before, after) pair per spatial axis.
Padding = str | tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Window:
    """One spatial axis of a convolution: input size, kernel, stride, dilation, pads."""

    size: int  # input size n along this axis
    kernel: int  # kernel size k (undilated)
    stride: int
    dilation: int
    pad_before: int
    pad_after: int
    out: int  # output size

    @property
    def effective_kernel(self) -> int:
        return (self.kernel - 1) * self.dilation + 1


def _fail(op: str, arg: str, value: object, why: str) -> ValueError:
    return ValueError(f"{op}: argument '{arg}'={value!r}: {why}")


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1  # TensorFlow's integer attributes are int64
INT32_MAX = (1 << 31) - 1  # its convolution kernels read strides and dilations as int32


def _as_int(op: str, arg: str, value: object, item: Any) -> int:
    if isinstance(item, bool) or not hasattr(item, "__index__"):
        raise _fail(op, arg, value, f"entries must be integers, got {item!r}")
    if not INT64_MIN <= int(item) <= INT64_MAX:
        raise _fail(op, arg, value, f"entries must fit in 64 bits (TensorFlow's int64 attributes), got {item!r}")
    return int(item)


def spatial_axes(data_format: str) -> tuple[int, ...]:
    """Indices of the spatial axes in a data_format string such as NHWC, NCHW, NWC, NCW (``layouts.spatial``)."""
    return tuple(i for i, c in enumerate(data_format) if c in SPATIAL_LETTERS)


def normalize_window_arg(
    op: str,
    arg: str,
    value: Any,
    data_format: str,
    *,
    allowed_lengths: Sequence[int],
    allow_int: bool = True,
    default: int | None = None,
) -> tuple[int, ...]:
    """Turn a ``strides`` / ``dilations`` value of any form tf.nn accepts into spatial ints.

    ``value`` may be an int (if ``allow_int``), or a sequence whose length is in
    ``allowed_lengths``: length 1 (broadcast to every spatial axis), the number of
    spatial axes, or the full rank (then the batch and channel entries must be 1,
    as TensorFlow requires). Returns one positive int per spatial axis, in
    H, W order (or W for 1-D).
    """
    n_spatial = len(spatial_axes(data_format))
    rank = len(data_format)
    if value is None:
        if default is None:
            raise _fail(op, arg, value, "is required")
        return (default,) * n_spatial
    if isinstance(value, str) or isinstance(value, bool):
        raise _fail(op, arg, value, "must be an int or a list of ints")
    if hasattr(value, "__index__") and getattr(value, "ndim", 0) == 0:  # an int, not a NumPy array
        if not allow_int:
            raise _fail(op, arg, value, f"must be a list of length {' or '.join(map(str, allowed_lengths))}, not an int")
        items = [_as_int(op, arg, value, value)] * n_spatial
    else:
        try:
            raw = list(value)
        except TypeError:
            raise _fail(op, arg, value, "must be an int or a list of ints") from None
        if not allowed_lengths:
            raise _fail(op, arg, value, "must be an int, not a list")
        if len(raw) not in allowed_lengths:
            raise _fail(op, arg, value, f"must have length {' or '.join(map(str, allowed_lengths))}, got {len(raw)}")
        ints = [_as_int(op, arg, value, v) for v in raw]
        if len(ints) == 1:
            items = ints * n_spatial
        elif len(ints) == n_spatial:
            items = ints
        elif len(ints) == rank:
            for i, c in enumerate(data_format):
                if c in "NC" and ints[i] != 1:
                    raise _fail(op, arg, value, f"the {c} entry must be 1 (TensorFlow does not stride or dilate batch or channels)")
            items = [ints[i] for i in spatial_axes(data_format)]
        else:  # pragma: no cover - allowed_lengths only admits the three forms above
            raise _fail(op, arg, value, f"unsupported length {len(ints)}")
    for v in items:
        if v <= 0:
            raise _fail(op, arg, value, "every value must be positive")
        if v > INT32_MAX:
            raise _fail(op, arg, value, "every value must fit in int32 (TensorFlow's kernels read it as int32)")
    return tuple(items)


@dataclass(frozen=True)
class ArgForms:
    """The forms ``tf.nn`` accepts for one op's window arguments.

    ``stride_arg`` / ``dilation_arg``: their names (``strides`` or ``stride``; ``dilations`` or ``rate``; no stride
    argument at all: None, the stride is 1); ``*_lengths``: the list lengths accepted (1: one value for every
    spatial axis, the number of spatial axes, or the full rank); ``allow_int``: a plain int is accepted too;
    ``explicit_padding``: padding may be a list of (before, after) pairs besides "SAME" / "VALID";
    ``output_shape_spatial``: a transposed op's output_shape may give the spatial sizes alone (besides the full
    rank). The reference enforces these forms (``window_args``); the property search draws from them.
    """

    stride_arg: str | None = "strides"
    stride_lengths: tuple[int, ...] = (1, 2, 4)
    dilation_arg: str = "dilations"
    dilation_lengths: tuple[int, ...] = (1, 2, 4)
    allow_int: bool = True
    explicit_padding: bool = True
    output_shape_spatial: bool = True
    dilation_default: int | None = 1  # None: the dilation argument is required (atrous_conv2d's rate)
    stride_default: int | None = None  # the stride when the argument is None (tf.nn.convolution's: 1)
    stride_with_dilation: bool = True  # False: a stride > 1 and a dilation > 1 together are refused (tf.nn.convolution)

    def window_args(self, op: str, data_format: str, strides: Any, dilations: Any, padding: Any
                    ) -> tuple[tuple[int, ...], tuple[int, ...], Padding]:
        """(strides, dilations, padding) normalized from arguments in exactly the forms tf.nn accepts (ValueError
        naming the argument otherwise): one int per spatial axis, and "SAME", "VALID" or (before, after) per axis."""
        n = len(spatial_axes(data_format))
        if self.stride_arg is None:
            stride_values = (1,) * n
        else:
            stride_values = normalize_window_arg(op, self.stride_arg, strides, data_format,
                                                 allowed_lengths=self.stride_lengths, allow_int=self.allow_int,
                                                 default=self.stride_default)
        dilation_values = normalize_window_arg(op, self.dilation_arg, dilations, data_format,
                                               allowed_lengths=self.dilation_lengths, allow_int=self.allow_int,
                                               default=self.dilation_default)
        if not self.stride_with_dilation and max(stride_values) > 1 and max(dilation_values) > 1:
            raise ValueError(f"{op}: arguments '{self.stride_arg}'={strides!r} and '{self.dilation_arg}'={dilations!r}: "
                             f"a stride > 1 cannot be combined with a dilation > 1")
        return stride_values, dilation_values, normalize_padding(op, padding, data_format,
                                                                  allow_explicit=self.explicit_padding)

    def window_attrs(self, op: str, attrs: Mapping[str, Any], data_format: str
                     ) -> tuple[tuple[int, ...], tuple[int, ...], Padding]:
        """(strides, dilations, padding) normalized from an op's keyword attributes (read by this op's argument
        names; padding defaults to SAME), in any form tf.nn takes for some op: for attributes the reference has
        accepted, and for reading an error contract's attributes as far as they go (ValueError where they do not)."""
        rank = len(data_format)
        lengths = (1, rank - 2, rank)
        if self.stride_arg is None:
            strides = (1,) * (rank - 2)
        else:
            strides = normalize_window_arg(op, self.stride_arg, attrs.get(self.stride_arg), data_format,
                                           allowed_lengths=lengths, default=1)
        dilation = attrs.get(self.dilation_arg)
        if isinstance(dilation, (list, tuple)) and not dilation and 0 in self.dilation_lengths:
            dilation = None  # tf.raw_ops.Conv: [] is its default, all 1
        dilations = normalize_window_arg(op, self.dilation_arg, dilation, data_format, allowed_lengths=lengths,
                                         default=1)
        return strides, dilations, normalize_padding(op, attrs.get("padding", "SAME"), data_format)

    def spellings(self, arg: str, data_format: str, optional: bool) -> tuple[str, ...]:
        """How a value of the stride (``arg="stride"``) or dilation argument may be spelled, simplest first:
        ``omitted`` (when ``optional``), ``int``, ``one`` ([v]), ``spatial`` (one per spatial axis), ``full``
        (the full rank, batch and channel entries 1)."""
        lengths = self.stride_lengths if arg == "stride" else self.dilation_lengths
        n = len(spatial_axes(data_format))
        forms = (("omitted", optional), ("int", self.allow_int), ("one", 1 in lengths),
                 ("spatial", n in lengths and n != 1), ("full", len(data_format) in lengths))
        return tuple(name for name, ok in forms if ok)


def normalize_padding(op: str, padding: Any, data_format: str, *, allow_explicit: bool = True,
                      arg: str = "padding") -> Padding:
    """Validate ``padding``: returns "SAME", "VALID", or a tuple of (before, after) per spatial axis.

    Explicit padding is a list with one [before, after] pair per dimension of the
    data, in ``data_format`` order (so 4 pairs for NHWC / NCHW); the batch and
    channel pairs must be [0, 0]. Names are case-sensitive, as in TensorFlow.
    ``arg`` is the argument named in errors (``explicit_paddings`` for the raw ops).
    """
    if isinstance(padding, str):
        if padding not in PADDING_NAMES:
            hint = " (padding names are case-sensitive)" if padding.upper() in PADDING_NAMES else ""
            if not allow_explicit:
                hint = hint or " (this op takes no explicit padding)"
                raise _fail(op, arg, padding, f"must be 'SAME' or 'VALID'{hint}")
            raise _fail(op, arg, padding, f"must be 'SAME', 'VALID' or a list of [before, after] pairs{hint}")
        return padding
    if not allow_explicit:
        raise _fail(op, arg, padding, "must be 'SAME' or 'VALID' (this op takes no explicit padding)")
    try:
        pairs = [list(p) for p in padding]
    except TypeError:
        raise _fail(op, arg, padding, "must be 'SAME', 'VALID' or a list of [before, after] pairs") from None
    rank = len(data_format)
    if len(pairs) != rank:
        raise _fail(op, arg, padding, f"an explicit padding list needs {rank} [before, after] pairs for {data_format}, got {len(pairs)}")
    out = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise _fail(op, arg, padding, f"entry {i} must be a [before, after] pair, got {pair!r}")
        before, after = (_as_int(op, arg, padding, v) for v in pair)
        if before < 0 or after < 0:
            raise _fail(op, arg, padding, "explicit padding must be non-negative")
        if data_format[i] in "NC":
            if before or after:
                raise _fail(op, arg, padding, f"the {data_format[i]} pair must be [0, 0]")
        else:
            out.append((before, after))
    return tuple(out)


RAW_PADDING_NAMES = ("SAME", "VALID", "EXPLICIT")


def normalize_raw_padding(op: str, padding: Any, explicit_paddings: Any, data_format: str) -> Padding:
    """Validate the ``tf.raw_ops`` form of padding: returns "SAME", "VALID" or (before, after) per spatial axis.

    ``padding`` is "SAME", "VALID" or "EXPLICIT"; ``explicit_paddings`` is a flat
    list of 2 * rank ints, [before, after] for every dimension in ``data_format``
    order, given exactly when ``padding`` is "EXPLICIT" (TensorFlow's Eigen kernels
    reject a non-empty list with "SAME" / "VALID"; the batch and channel pairs must be 0).
    """
    if not isinstance(padding, str) or padding not in RAW_PADDING_NAMES:
        hint = " (padding names are case-sensitive)" if isinstance(padding, str) and padding.upper() in RAW_PADDING_NAMES else ""
        raise _fail(op, "padding", padding, f"must be 'SAME', 'VALID' or 'EXPLICIT'{hint}")
    if isinstance(explicit_paddings, str):
        raise _fail(op, "explicit_paddings", explicit_paddings, "must be a list of ints")
    try:
        flat = list(explicit_paddings)
    except TypeError:
        raise _fail(op, "explicit_paddings", explicit_paddings, "must be a list of ints") from None
    if padding != "EXPLICIT":
        if flat:
            raise _fail(op, "explicit_paddings", explicit_paddings, f"must be empty unless padding is 'EXPLICIT' (padding={padding!r})")
        return padding
    rank = len(data_format)
    if len(flat) != 2 * rank:
        raise _fail(op, "explicit_paddings", explicit_paddings,
                    f"with padding 'EXPLICIT' it must hold {2 * rank} ints, [before, after] for each of {data_format}; got {len(flat)}")
    return normalize_padding(op, [flat[i:i + 2] for i in range(0, 2 * rank, 2)], data_format, arg="explicit_paddings")


def raw_op_window_args(strides: Sequence[int], dilations: Sequence[int], padding: Padding, data_format: str
                       ) -> tuple[list[int], list[int], str, list[int]]:
    """The ``tf.raw_ops`` spelling of normalized window arguments: the inverse of the normalizers.

    ``strides`` / ``dilations``: one int per spatial axis; ``padding``: "SAME", "VALID"
    or (before, after) per spatial axis. Returns (strides, dilations, padding,
    explicit_paddings) with full-rank lists in ``data_format`` order.
    """
    axes = spatial_axes(data_format)

    def full(values: Sequence[Any], fill: Any) -> list[Any]:
        out = [fill] * len(data_format)
        for axis, v in zip(axes, values):
            out[axis] = v
        return out

    if isinstance(padding, str):
        return full(strides, 1), full(dilations, 1), padding, []
    pairs = full(padding, (0, 0))
    return full(strides, 1), full(dilations, 1), "EXPLICIT", [int(v) for pair in pairs for v in pair]


def require_taps(op: str, kernel: int) -> None:
    """ValueError unless a filter's spatial size ``kernel`` gives a window at least one tap."""
    if kernel < 1:
        raise ValueError(f"{op}: the filter has no tap along a spatial axis (kernel size {kernel}): every window "
                         f"needs at least one; a filter's spatial sizes must be positive")


def window(op: str, size: int, kernel: int, stride: int, dilation: int, padding: Any) -> Window:
    """The window arithmetic for one spatial axis.

    ``padding`` is "SAME", "VALID" or a (before, after) pair (already normalized).
    Raises ValueError if the (dilated) kernel does not fit in the padded input.
    """
    require_taps(op, kernel)
    k_eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        total = max(0, (out - 1) * stride + k_eff - size)
        before, after = total // 2, total - total // 2
    else:
        before, after = (0, 0) if padding == "VALID" else padding
        padded = size + before + after
        if k_eff > padded:
            raise ValueError(
                f"{op}: the filter's effective kernel size {k_eff} (kernel {kernel}, dilation {dilation}) is larger than "
                f"the padded input size {padded} (input {size}, argument 'padding' gives {padding!r})"
            )
        out = (padded - k_eff) // stride + 1
    return Window(size, kernel, stride, dilation, before, after, out)


def windows(op: str, sizes: Sequence[int], kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
            padding: Padding) -> tuple[Window, ...]:
    """``window`` for every spatial axis; ``padding`` is normalized (name or pairs)."""
    pads = [padding] * len(sizes) if isinstance(padding, str) else list(padding)
    return tuple(window(op, n, k, s, d, p) for n, k, s, d, p in zip(sizes, kernels, strides, dilations, pads))


def transpose_output_sizes(size: int, kernel: int, stride: int, dilation: int, padding: Any) -> range:
    """Every output size a transposed convolution accepts along one axis.

    ``conv2d_transpose`` is the gradient of ``conv2d`` with respect to its input,
    so an output size ``m`` is accepted exactly when a forward convolution of an
    input of size ``m`` (same kernel, stride, dilation, padding) yields ``size``.
    That set is a run of at most ``stride`` consecutive integers.
    """
    k_eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        # ceil(m / s) == size
        lo, hi = (size - 1) * stride + 1, size * stride
    else:
        before, after = (0, 0) if padding == "VALID" else padding
        # (m + before + after - k_eff) // s + 1 == size, with m + before + after >= k_eff
        lo = (size - 1) * stride + k_eff - before - after
        hi = lo + stride - 1
        lo = max(lo, k_eff - before - after)
    lo = max(lo, 0)
    if hi < lo:  # e.g. VALID onto an empty input: no window fits in fewer than k_eff padded pixels
        return range(0)
    return range(lo, hi + 1)
