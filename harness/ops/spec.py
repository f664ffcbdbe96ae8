"""``OpSpec``: everything the harness knows about one ``tf.nn`` op, in one record.

Every generic part of the harness reads the op from its spec and nothing else: the case loader (operands, layouts,
attributes, symbolic values), the runner (the reference, the textbook formulations), the divergence features (the
TensorFlow kernels, the kind of convolution), the backends (the kind: how a plain ``conv`` / ``conv_transpose``
implements it), the property search and ``harness new`` (argument forms and defaults), the gradients, the reports
and the documentation. ``harness.ops.table`` holds the specs; adding an op is one entry there (see the guide in
its docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.conv import layouts
from harness.conv.padding import ArgForms, Padding, Window, windows
from harness.conv.tolerance import Bound, Override, bound_for

Arrays = Mapping[str, np.ndarray]
# One of the cases a case with a symbolic attribute stands for: (id suffix, attributes).
Variant = tuple[str, dict[str, Any]]
# A reference gradient rule (harness.ops.gradient_rules): (spec, arrays, attrs, dy) -> {operand: gradient}.
GradientRule = Callable[["OpSpec", Arrays, Mapping[str, Any], np.ndarray], dict[str, np.ndarray]]

# How a backend implements an op from a plain convolution and its transpose (harness.backends.base):
#   conv: one correlation (groups 1); depthwise: a grouped correlation, one group per input channel;
#   separable: depthwise, then a 1x1 correlation; transposed: a transposed convolution;
#   backprop: a raw backprop op (tf.raw_ops), one gradient of conv2d or depthwise_conv2d, which no backend implements;
#   fused: a raw op that resizes and / or mirror-pads its input before a conv2d, which no backend implements.
KINDS = ("conv", "depthwise", "separable", "transposed", "backprop", "fused")

# Attributes whose full-rank values list the data's axes in data_format order (a flat explicit_paddings lists
# [before, after] per axis); shorter values (per spatial axis, or one for all) do not depend on the format.
FORMAT_ORDERED = ("strides", "stride", "dilations", "padding", "output_shape", "input_sizes", "explicit_paddings")


def _reorder(value: Any, src: str, dst: str) -> Any:
    """A per-axis attribute value moved from data layout ``src`` to ``dst`` (values of other lengths unchanged)."""
    if isinstance(value, str) or value is None or np.ndim(value) == 0:
        return value
    if len(value) == 2 * len(src) and np.ndim(value) == 1:  # a flat explicit_paddings
        pairs = _reorder([list(value[i : i + 2]) for i in range(0, len(value), 2)], src, dst)
        return [v for pair in pairs for v in pair]
    if len(value) != len(src):
        return value
    by_letter = dict(zip(src, value))
    return [by_letter[c] for c in dst]


class NotApplicable(Exception):
    """A textbook formulation does not cover this configuration (message says why)."""


@dataclass(frozen=True)
class Operand:
    """One array argument of an op."""

    name: str  # the tf.nn argument name
    kind: str  # "data" or "filter"
    layout: str  # the filter layout the op takes; for data, replaced by data_format

    def op_layout(self, data_format: str) -> str:
        return data_format if self.kind == "data" else self.layout


@dataclass(frozen=True)
class Formulation:
    """A textbook formulation paired with an op: ``run(arrays, attrs) -> output`` or NotApplicable."""

    name: str
    run: Callable[[Arrays, dict[str, Any]], np.ndarray]
    doc: str


@dataclass(frozen=True)
class OpSpec:
    """One ``tf.nn`` op.

    ``operands``: the array arguments in positional order; ``attrs``: the keyword attributes in signature order
    (``required``: those without a default); ``formats``: the data_format values it takes, default first;
    ``reference``: the NumPy reference (``harness.conv.reference``), with tf.nn's signature; ``kind``: one of
    ``KINDS``; ``forms``: the forms its window arguments take (``ArgForms``); ``defaults``: attributes a new case
    starts from (``harness new``); ``textbook``: the seed documents' formulations paired with it; ``gradient``: the
    reference gradient rule, ``(spec, arrays, attrs, dy) -> {operand: gradient}`` (``harness.ops.gradients``);
    ``raw_backprop``: the raw backprop op that gives each operand's gradient, when TensorFlow has one;
    ``relations``: the names of the metamorphic relations that hold for it (``harness.selftest.relations``);
    ``tf_kernels`` / ``tf_gradient_kernels``: the TensorFlow kernels tf.nn runs for it and for its gradient
    (``harness.tf.kernel_probe.KERNELS``; which of them run oneDNN is measured); ``kernel_padding``: the kind of
    padding those kernels receive ("named" or "explicit"), when it is not the case's own; ``resolve`` /
    ``expand`` / ``symbolic``: attribute values that stand for others (``output_shape: smallest``); ``positional``:
    the positional arguments (operands and attributes) when they are not the operands alone (a raw backprop op's
    ``input_sizes, filter, out_backprop``); ``api``: the TensorFlow function (``tf.nn.<name>`` unless given);
    ``output_layout``: the output's layout when it is not the data_format (a filter gradient's); ``gradient_of``: a
    backprop op's forward op and operand; ``rounding``: for an op that rounds before its sums (an interpolated input),
    that rounding's share of the bound (``bound``).
    """

    name: str
    operands: tuple[Operand, ...]
    attrs: tuple[str, ...]
    required: tuple[str, ...]
    formats: tuple[str, ...]
    reference: Callable[..., np.ndarray]
    kind: str = "conv"
    forms: ArgForms = field(default_factory=ArgForms)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    textbook: tuple[Formulation, ...] = ()
    gradient: GradientRule | None = None
    # operand -> the tf.raw_ops backprop op (a function of that name in harness.conv.reference and
    # harness.tf.wrappers) that computes its gradient from the same attributes (``harness.ops.gradients.raw_attrs``)
    raw_backprop: Mapping[str, str] = field(default_factory=dict)
    relations: tuple[str, ...] = ()  # the metamorphic relations checked on its cases (harness.selftest.relations)
    tf_kernels: tuple[str, ...] = ("Conv2D",)
    tf_gradient_kernels: tuple[str, ...] = ("Conv2DBackpropInput", "Conv2DBackpropFilter")
    kernel_padding: Callable[[Mapping[str, Any]], str] | None = None
    resolve: Callable[[OpSpec, Arrays, dict[str, Any]], dict[str, Any]] | None = (
        None  # fills symbolic attributes at run time
    )
    # one case -> its variants
    expand: Callable[[OpSpec, Mapping[str, tuple[int, ...]], dict[str, Any]], list[Variant] | None] | None = None
    symbolic: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # attr -> allowed symbolic values
    positional: tuple[str, ...] = ()
    api: str = ""
    output_layout: str = ""
    # A backprop op: (the forward op, its operand) whose gradient it computes.
    gradient_of: tuple[str, str] | None = None
    # layout -> the data_format value that names it, where the op's names are not layouts (tf.raw_ops.Conv:
    # "CHANNELS_LAST"); ``data_format`` and ``format_value`` translate.
    format_names: Mapping[str, str] = field(default_factory=dict)
    # An op that rounds before its sums: that rounding carried into each output element, in units of u, from the
    # operands' magnitudes (the op's signature; ``harness.conv.tolerance.bound_for``).
    rounding: Callable[..., np.ndarray] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"OpSpec {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    # --- operands and layouts -----------------------------------------------------------

    def data_format(self, attrs: Mapping[str, Any]) -> str:
        """The data's layout (one of ``formats``, or the value given when it names none)."""
        fmt = attrs.get("data_format")
        if fmt is None:
            return self.formats[0]
        return next((layout for layout, name in self.format_names.items() if name == fmt), fmt)

    def format_value(self, layout: str) -> str:
        """The data_format value that selects ``layout`` (``data_format``'s inverse)."""
        return self.format_names.get(layout, layout)

    def output_format(self, attrs: Mapping[str, Any]) -> str:
        """The output's layout: the data_format, or the filter layout of a filter gradient."""
        return self.output_layout or self.data_format(attrs)

    @property
    def function(self) -> str:
        """The TensorFlow function the op is, as a user calls it."""
        return self.api or f"tf.nn.{self.name}"

    def operand(self, name: str) -> Operand:
        return next(o for o in self.operands if o.name == name)

    @property
    def data(self) -> Operand:
        """The data operand."""
        return next(o for o in self.operands if o.kind == "data")

    @property
    def filter(self) -> Operand | None:
        """The (first) filter operand: the one whose spatial size is the kernel's (None for a filter gradient, whose
        kernel is an attribute)."""
        return next((o for o in self.operands if o.kind == "filter"), None)

    @property
    def kernel_operand(self) -> Operand:
        """``filter`` for an op that has one: ValueError naming the op for a filter gradient."""
        if self.filter is None:
            raise ValueError(f"{self.name} has no filter operand (its kernel is an attribute)")
        return self.filter

    @property
    def shape_operand(self) -> str | None:
        """The operand a backprop op takes in place of a sizes attribute, of which it reads only the shape (the
        one whose gradient it computes: tf.raw_ops' Conv2DBackpropInputV2, Conv3DBackpropFilter ...); else None."""
        if self.kind != "backprop" or {"input_sizes", "filter_sizes"} & set(self.attrs):
            return None
        return self.kernel_operand.name if self.output_layout else self.data.name

    @property
    def filter_layout(self) -> str:
        """The layout of the convolution's filter: the filter operand's, or a filter gradient's output layout."""
        return self.filter.layout if self.filter is not None else self.output_layout

    @property
    def rank(self) -> int:
        """The number of axes of the data operand (4 for 2-D convolutions, 3 for 1-D)."""
        return len(self.formats[0])

    # --- grouping -----------------------------------------------------------------------

    def grouping(
        self, data_shape: Sequence[int], filter_shape: Sequence[int], attrs: Mapping[str, Any]
    ) -> tuple[int, int]:
        """(channels, per_group) of a grouped convolution (every kind but depthwise and separable, which group by
        their input channels): the data's channels and the filter's in_channels; for a transposed op, the channels
        of ``output_shape`` (0 when it is malformed; ``per_group`` when it gives the spatial sizes alone) and the
        filter's out_channels."""
        fmt, layout = self.data_format(attrs), self.filter_layout
        if self.kind != "transposed":
            return data_shape[fmt.index("C")], filter_shape[layout.index("I")]
        per_group = filter_shape[layout.index("O")]
        out = attrs.get("output_shape")
        if isinstance(out, (list, tuple)) and len(out) == len(fmt) and isinstance(out[fmt.index("C")], int):
            return out[fmt.index("C")], per_group
        spatial_only = isinstance(out, (list, tuple)) and len(out) == len(layouts.spatial(fmt))
        return (per_group if spatial_only else 0), per_group

    def group_count(self, data_shape: Sequence[int], filter_shape: Sequence[int], attrs: Mapping[str, Any]) -> int:
        """How many groups (``grouping``'s channels over per_group): 1 when they are equal; 0 when the grouping is
        inconsistent (per_group does not divide the channels, or one of them is 0), which the reference rejects."""
        channels, per_group = self.grouping(data_shape, filter_shape, attrs)
        if channels == per_group:
            return 1
        return 0 if not channels or not per_group or channels % per_group else channels // per_group

    # --- attributes ---------------------------------------------------------------------

    def resolved(self, arrays: Arrays, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The attributes as passed to the op: symbolic values (``output_shape: smallest``) filled in."""
        return self.resolve(self, arrays, dict(attrs)) if self.resolve else dict(attrs)

    def variants(self, shapes: Mapping[str, tuple[int, ...]], attrs: Mapping[str, Any]) -> list[Variant] | None:
        """The cases one case with symbolic attributes stands for, from operand shapes; None when it has none."""
        return self.expand(self, shapes, dict(attrs)) if self.expand else None

    def window_attrs(self, attrs: Mapping[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...], Padding]:
        """(strides, dilations, padding), one value per spatial axis, from attributes the reference accepted (by
        this op's own argument names: ``stride`` / ``strides``, ``dilations`` / ``rate``)."""
        return self.forms.window_attrs(self.name, attrs, self.data_format(attrs))

    def windows(self, sizes: Sequence[int], kernels: Sequence[int], attrs: Mapping[str, Any]) -> tuple[Window, ...]:
        """The windows of the spatial axes of ``sizes`` (the input's, for a transposed op the forward input's) and
        ``kernels``, from accepted attributes."""
        return windows(self.name, sizes, kernels, *self.window_attrs(attrs))

    def tf_padding_kind(self, attrs: Mapping[str, Any]) -> str:
        """ "explicit" or "named": the kind of padding ``tf_kernels`` are called with for these attributes."""
        if self.kernel_padding is not None:
            return self.kernel_padding(attrs)
        return "named" if isinstance(attrs.get("padding", "SAME"), str) else "explicit"

    def arguments(self, arrays: Arrays, attrs: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """(positional, keyword) arguments of a call: the operands (or ``positional``) in order, then the other
        attributes by keyword."""
        names = self.positional or tuple(o.name for o in self.operands)
        given = {**attrs, **arrays}
        return tuple(given[n] for n in names), {k: v for k, v in attrs.items() if k not in names}

    def in_format(
        self, arrays: Arrays, attrs: Mapping[str, Any], fmt: str
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The same call with its data in layout ``fmt``: data operands converted, the attributes that list the data's
        axes (``FORMAT_ORDERED``) reordered, ``data_format=fmt``. Its output, converted back from ``fmt`` (unless
        the op has an ``output_layout``), is the original call's."""
        src = self.data_format(attrs)
        moved = {n: layouts.convert(a, src, fmt) if self.operand(n).kind == "data" else a for n, a in arrays.items()}
        reordered = {k: _reorder(v, src, fmt) if k in FORMAT_ORDERED else v for k, v in attrs.items()}
        return moved, {**reordered, "data_format": self.format_value(fmt)}

    def call(self, impl: Callable[..., np.ndarray], arrays: Arrays, attrs: Mapping[str, Any]) -> np.ndarray:
        """Call a tf.nn-style implementation (the op's signature) with ``arguments(arrays, attrs)``."""
        args, kwargs = self.arguments(arrays, attrs)
        return impl(*args, **kwargs)

    def bound(self, arrays: Arrays, attrs: Mapping[str, Any], dtype: Any, override: Override | None = None) -> Bound:
        """The bound around the reference's output for these operands (``harness.conv.tolerance.bound_for``)."""
        rounding = self.by_operands(self.rounding) if self.rounding is not None else None
        return bound_for(self.by_operands(self.reference), arrays, attrs, dtype, override, rounding)

    def by_operands(self, impl: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        """``impl`` as ``f(*operands, **attrs)``, operands in ``operands`` order (as ``bound_for`` calls it)."""
        if not self.positional:
            return impl
        names = [o.name for o in self.operands]
        return lambda *operands, **attrs: self.call(impl, dict(zip(names, operands)), attrs)
