"""Plausible convolution bugs, applied to the reference in-process, to prove the registry catches them.

Each ``Mutant`` is one convention broken the way people break it: a context
manager that patches ``harness.conv.reference`` (or the op registry's reference entry)
for the duration of a ``with`` block. Nothing on disk changes.

Two uses:

* the failure diagnosis (``harness.check.diagnose``): when an implementation disagrees
  with the reference, the reference is re-run under each ``suspect`` mutant, and a
  match names the convention the implementation got wrong;
* the mutation self-test (``harness.selftest.mutation``, ``make mutants``): every case
  runs under every mutant; a mutant no case kills means the registry cannot tell that
  convention from its plausible mistake (add a case).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from unittest import mock

import ml_dtypes
import numpy as np

from harness import ops
from harness.conv import layouts, reference
from harness.conv.dtypes import accumulator as _accumulator
from harness.conv.padding import ArgForms


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str  # what the broken implementation does
    convention: str  # the convention it breaks, as a failure message names it
    apply: Callable[[], AbstractContextManager]
    suspect: bool = False  # tried by harness.check.diagnose when an implementation disagrees
    dtype: str | None = None  # the dtype it shows in, when it shows in one only (None: the run's dtype)


# --- building blocks ----------------------------------------------------------------------


def _transposed(spec: ops.OpSpec) -> bool:
    return spec.kind == "transposed"


@contextmanager
def _patch_reference(select: Callable[[ops.OpSpec], bool], wrap: Callable[[Callable, ops.OpSpec], Callable]):
    """Replace the reference of the ops ``select`` picks by ``wrap(reference, spec)`` in the op registry."""
    specs = {name: spec for name, spec in ops.OPS.items() if select(spec)}
    replaced = {name: dataclasses.replace(spec, reference=wrap(spec.reference, spec)) for name, spec in specs.items()}
    with mock.patch.dict(ops.OPS, replaced):
        yield


@contextmanager
def _patch_windows(change: Callable):
    """Patch the window arithmetic the reference uses: ``change(op, size, kernel, stride, dilation, padding) -> Window``.

    ``change`` receives the real ``window`` as its first argument.
    """
    real = reference.window  # type: ignore[attr-defined]  # the reference's own binding, which this patches

    def window(op, size, kernel, stride, dilation, padding):
        return change(real, op, size, kernel, stride, dilation, padding)

    def windows(op, sizes, kernels, strides, dilations, padding):
        pads = [padding] * len(sizes) if isinstance(padding, str) else list(padding)
        return tuple(window(op, *axis) for axis in zip(sizes, kernels, strides, dilations, pads))

    with mock.patch.object(reference, "window", window), mock.patch.object(reference, "windows", windows):
        yield


def _filters_of(spec: ops.OpSpec):
    return [(i, o) for i, o in enumerate(spec.operands) if o.kind == "filter"]


def _swap_hw(a: np.ndarray, layout: str) -> np.ndarray:
    return np.swapaxes(a, layout.index("H"), layout.index("W"))


# --- the mutants --------------------------------------------------------------------------


def _kernel_rotated():
    def wrap(ref, spec):
        def mutated(*args, **attrs):
            rotated = list(args)
            for i, operand in _filters_of(spec):
                rotated[i] = layouts.rotate_180(rotated[i], operand.layout)
            return ref(*rotated, **attrs)

        return mutated

    return _patch_reference(lambda spec: True, wrap)


def _transpose_without_rotation():
    def wrap(ref, spec):
        def transposed(input, filters, *args, **kwargs):
            # Zero insertion then correlation with the kernel as given: the documents' 180-degree rotation dropped.
            return ref(input, layouts.rotate_180(filters, spec.filter.layout), *args, **kwargs)

        return transposed

    return _patch_reference(_transposed, wrap)


def _hw_swapped():
    """The data's H and W axes read the wrong way round (the kernel, strides and padding are not)."""

    def wrap(ref, spec):
        def mutated(*args, **attrs):
            fmt = spec.data_format(attrs)
            if "H" not in fmt:
                return ref(*args, **attrs)
            swapped = [_swap_hw(a, fmt) if o.kind == "data" else a for a, o in zip(args, spec.operands)]
            shape = attrs.get("output_shape")
            if shape is not None and not isinstance(shape, str):
                shape = list(shape)
                h, w = (fmt.index("H"), fmt.index("W")) if len(shape) == 4 else (0, 1)
                shape[h], shape[w] = shape[w], shape[h]
                attrs = {**attrs, "output_shape": shape}
            return _swap_hw(ref(*swapped, **attrs), fmt)

        return mutated

    return _patch_reference(lambda spec: True, wrap)


def _same_odd_pad_first():
    def change(real, op, size, kernel, stride, dilation, padding):
        win = real(op, size, kernel, stride, dilation, padding)
        return (
            dataclasses.replace(win, pad_before=win.pad_after, pad_after=win.pad_before) if padding == "SAME" else win
        )

    return _patch_windows(change)


def _same_symmetric():
    """SAME as PyTorch users often write it: ``padding = k_eff // 2`` on both sides."""

    def change(real, op, size, kernel, stride, dilation, padding):
        if padding != "SAME":
            return real(op, size, kernel, stride, dilation, padding)
        half = ((kernel - 1) * dilation + 1) // 2
        return real(op, size, kernel, stride, dilation, (half, half))

    return _patch_windows(change)


def _valid_off_by_one():
    def change(real, op, size, kernel, stride, dilation, padding):
        win = real(op, size, kernel, stride, dilation, padding)
        return dataclasses.replace(win, out=max(win.out - 1, 0)) if padding == "VALID" else win  # forgot the "+ 1"

    return _patch_windows(change)


def _dilation_as_stride():
    def change(real, op, size, kernel, stride, dilation, padding):
        return real(op, size, kernel, stride * dilation, 1, padding)

    return _patch_windows(change)


def _explicit_pads(reorder: Callable[[tuple], tuple]):
    """The reference reads its explicit padding reordered (``ArgForms.window_args`` is the reference's own
    argument check: nothing else calls it)."""
    real = ArgForms.window_args

    def window_args(self, op, data_format, strides, dilations, padding):
        strides, dilations, pads = real(self, op, data_format, strides, dilations, padding)
        return strides, dilations, pads if isinstance(pads, str) else reorder(pads)

    return mock.patch.object(ArgForms, "window_args", window_args)


def _explicit_pads_onnx_order():
    # Read [[top, bottom], [left, right]] as ONNX's [top, left, bottom, right].
    def onnx_order(pads):
        flat = [p for pair in pads for p in pair]
        return tuple((flat[i], flat[i + len(pads)]) for i in range(len(pads)))

    return _explicit_pads(onnx_order)


def _explicit_pads_swapped():
    return _explicit_pads(lambda pads: tuple((after, before) for before, after in pads))


def _depthwise_multiplier_major():
    real = reference._depthwise

    def depthwise(x_nsc, w_sim, wins):
        out = real(x_nsc, w_sim, wins)
        channels, multiplier = w_sim.shape[-2:]
        split = out.reshape(out.shape[:-1] + (channels, multiplier))
        return np.swapaxes(split, -1, -2).reshape(out.shape)  # m * C + c instead of c * M + m

    return mock.patch.object(reference, "_depthwise", depthwise)


def _groups_interleaved():
    real = reference._correlate

    def correlate(x_nsc, w_sio, wins, groups=1):
        if groups > 1:  # group g reads channels g, g + G, g + 2G ... instead of the block [g * I, (g + 1) * I)
            channels = x_nsc.shape[-1]
            x_nsc = x_nsc[..., np.arange(channels).reshape(channels // groups, groups).T.reshape(-1)]
        return real(x_nsc, w_sio, wins, groups)

    return mock.patch.object(reference, "_correlate", correlate)


def _transpose_filter_in_out_swapped():
    def wrap(ref, spec):
        def transposed(input, filters, *args, **kwargs):
            # The [*kernel, out, in] buffer read as if it were laid out [*kernel, in, out].
            *kernel, out_c, in_c = np.shape(filters)
            return ref(input, np.swapaxes(np.reshape(filters, (*kernel, in_c, out_c)), -2, -1), *args, **kwargs)

        return transposed

    return _patch_reference(_transposed, wrap)


def _transpose_crop_wrong_side():
    real = reference._correlate_transpose

    def correlate_transpose(y_nsc, w_soi, wins, groups=1):
        swapped = tuple(dataclasses.replace(w, pad_before=w.pad_after, pad_after=w.pad_before) for w in wins)
        return real(y_nsc, w_soi, swapped, groups)  # the full result is cropped by pad_after at the top / left

    return mock.patch.object(reference, "_correlate_transpose", correlate_transpose)


def _accumulate_float16():
    def accumulator(dtype):
        acc = _accumulator(dtype)
        return np.dtype(np.float16) if acc == np.float64 else acc

    return mock.patch.object(reference, "accumulator", accumulator)


def _nchw_as_nhwc():
    def wrap(ref, spec):
        def mutated(*args, **attrs):
            fmt = spec.data_format(attrs)
            if fmt.index("C") == 1:  # channels-first data handed over as if channels-last
                attrs = {**attrs, "data_format": layouts.channels_last(fmt)}
            return ref(*args, **attrs)

        return mutated

    return _patch_reference(lambda spec: len(spec.formats) > 1, wrap)


def _separable_pointwise_first():
    def wrap(ref, spec):
        def separable_conv2d(
            input, depthwise_filter, pointwise_filter, strides, padding, data_format=None, dilations=None
        ):
            fmt = data_format or "NHWC"
            mixed = reference.conv2d(input, pointwise_filter, 1, "VALID", data_format=fmt)
            return reference.depthwise_conv2d(
                mixed, depthwise_filter, strides, padding, data_format=fmt, dilations=dilations
            )

        return separable_conv2d

    return _patch_reference(lambda spec: spec.kind == "separable", wrap)


def _pointwise_guard_reads_one_axis():
    """The 1x1 fast path taken when the first spatial axis is unpadded, whatever the others' padding."""

    def is_pointwise(wins):
        return all(w.kernel == 1 and w.stride == 1 for w in wins) and wins[0].pad_before == wins[0].pad_after == 0

    return mock.patch.object(reference, "_is_pointwise", is_pointwise)


def _transpose_gradient_channels_first_pads():
    """The transposed ops' gradient rule reads channels-first explicit padding with its spatial pairs reversed."""

    def wrap(rule, spec):
        def mutated(spec_, arrays, attrs, dy):
            fmt, pad = spec_.data_format(attrs), attrs.get("padding")
            if fmt.index("C") == 1 and not isinstance(pad, str) and pad is not None:
                pad = [*pad[:2], *reversed(pad[2:])]
                attrs = {**attrs, "padding": pad}
            return rule(spec_, arrays, attrs, dy)

        return mutated

    specs = {name: spec for name, spec in ops.OPS.items() if _transposed(spec)}
    replaced = {name: dataclasses.replace(spec, gradient=wrap(spec.gradient, spec)) for name, spec in specs.items()}
    return mock.patch.dict(ops.OPS, replaced)


def _bfloat16_truncated():
    real = reference._cast

    def cast(acc, dtype):
        if np.dtype(dtype) != np.dtype(ml_dtypes.bfloat16):
            return real(acc, dtype)
        # float32's upper 16 bits: rounds toward zero (as TensorFlow's bfloat16 conversion once did)
        bits = np.asarray(acc, np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
        return bits.view(np.float32).astype(dtype)

    return mock.patch.object(reference, "_cast", cast)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "transpose_no_rotation",
        "conv2d_transpose correlates the zero-inserted input with the unrotated kernel",
        "the transposed convolution's 180-degree kernel rotation",
        _transpose_without_rotation,
    ),
    Mutant(
        "kernel_rotated",
        "the kernel is rotated 180 degrees (a true convolution instead of a correlation)",
        "correlation, not convolution: tf.nn does not flip the kernel",
        _kernel_rotated,
        suspect=True,
    ),
    Mutant(
        "hw_swapped",
        "the data's H and W axes are read the wrong way round",
        "the order of the spatial axes (H before W)",
        _hw_swapped,
        suspect=True,
    ),
    Mutant(
        "same_odd_pad_top_left",
        "SAME puts the odd padding pixel at the top / left",
        "SAME's odd padding pixel goes at the bottom / right",
        _same_odd_pad_first,
        suspect=True,
    ),
    Mutant(
        "same_symmetric_k_div_2",
        "SAME pads k_eff // 2 on both sides, as PyTorch code often does",
        "SAME's padding total is computed from the output size: (out - 1) * s + k_eff - n",
        _same_symmetric,
        suspect=True,
    ),
    Mutant(
        "valid_size_off_by_one",
        "VALID's output size misses the + 1: (n - k_eff) // s",
        "VALID's output size (n - k_eff) // s + 1",
        _valid_off_by_one,
    ),
    Mutant(
        "dilation_as_stride",
        "the dilation strides the output instead of spreading the kernel taps",
        "dilation spreads the kernel taps; stride spaces the output pixels",
        _dilation_as_stride,
    ),
    Mutant(
        "explicit_pads_onnx_order",
        "explicit pads read in ONNX order [top, left, bottom, right]",
        "explicit padding is one [before, after] pair per axis, in data_format order",
        _explicit_pads_onnx_order,
        suspect=True,
    ),
    Mutant(
        "explicit_pads_swapped",
        "each explicit [before, after] pair read as [after, before]",
        "explicit padding is one [before, after] pair per axis, in data_format order",
        _explicit_pads_swapped,
        suspect=True,
    ),
    Mutant(
        "depthwise_multiplier_major",
        "depthwise output channel m * C + c instead of c * M + m",
        "depthwise output channels are channel-major: c * multiplier + m",
        _depthwise_multiplier_major,
        suspect=True,
    ),
    Mutant(
        "groups_interleaved",
        "a grouped convolution's group g reads input channels g, g + G, g + 2G ... instead of a block",
        "group g reads the block of input channels [g * I, (g + 1) * I) (I: the filter's in_channels)",
        _groups_interleaved,
    ),
    Mutant(
        "transpose_filter_in_out_swapped",
        "conv2d_transpose reads its [h, w, out, in] filter as [h, w, in, out]",
        "conv2d_transpose's filter layout [h, w, out_channels, in_channels]",
        _transpose_filter_in_out_swapped,
        suspect=True,
    ),
    Mutant(
        "transpose_crop_wrong_side",
        "conv2d_transpose crops the full result from the wrong side",
        "conv2d_transpose crops pad_before (the forward convolution's top / left padding) from the top / left",
        _transpose_crop_wrong_side,
        suspect=True,
    ),
    Mutant(
        "accumulate_float16",
        "sums accumulate in float16",
        "accumulation precision (the reference sums in float64)",
        _accumulate_float16,
    ),
    Mutant(
        "nchw_as_nhwc",
        "channels-first data is handled as channels-last",
        "data_format: NCHW puts channels on axis 1",
        _nchw_as_nhwc,
    ),
    Mutant(
        "separable_pointwise_first",
        "separable_conv2d applies the 1x1 pointwise filter before the depthwise one",
        "separable_conv2d is depthwise first, then pointwise",
        _separable_pointwise_first,
    ),
    Mutant(
        "pointwise_guard_reads_one_axis",
        "the 1x1 fast path is taken when the first spatial axis is unpadded, whatever the other axes' padding",
        "every spatial axis's padding, on both sides",
        _pointwise_guard_reads_one_axis,
    ),
    Mutant(
        "transpose_gradient_channels_first_pads",
        "the transposed ops' gradient rule reads channels-first explicit padding with its spatial pairs reversed",
        "explicit padding is one [before, after] pair per axis, in data_format order (gradients too)",
        _transpose_gradient_channels_first_pads,
    ),
    Mutant(
        "bfloat16_truncated",
        "bfloat16 results are rounded toward zero (float32's upper half) instead of to nearest",
        "one rounding to nearest, ties to even, of the exact sum",
        _bfloat16_truncated,
        dtype="bfloat16",
    ),
)


def get(name: str) -> Mutant:
    for mutant in MUTANTS:
        if mutant.name == name:
            return mutant
    raise ValueError(f"unknown mutant {name!r}; known: {', '.join(m.name for m in MUTANTS)}")


def suspects() -> tuple[Mutant, ...]:
    return tuple(m for m in MUTANTS if m.suspect)
