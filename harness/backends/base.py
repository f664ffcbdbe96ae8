"""What a backend is, and the translations between its conventions and TensorFlow's.

A ``Backend`` declares what it implements and in which conventions; the harness does every translation between
those conventions and TensorFlow's (layouts and kernel rotation through ``harness.conv.layouts``, the window and padding
arithmetic through ``harness.conv.padding``), never the backend. Two calling conventions:

* ``"tf"``: each function has the ``tf.nn`` signature (``conv2d(input, filters, strides, padding, data_format,
  dilations)``...). The harness converts the data to the backend's ``data_format`` (and sets that attribute,
  reordering full-rank ``strides`` / ``dilations`` / explicit padding / ``output_shape``), each filter to the
  declared filter layout, and rotates filters by 180 degrees for a backend that wants convolution kernels.
* ``"explicit"``: the geometry is resolved first; the functions see only explicit numbers::

      conv(x, w, *, strides, dilations, pads, groups)            # conv1d/2d/3d, convolution, atrous (groups: the
                                                                 # data's channels / the filter's in_channels),
                                                                 # depthwise (groups = in_c),
                                                                 # and separable_conv2d (depthwise, then 1x1)
      conv_transpose(x, w, *, strides, dilations, pads, output_size[, groups])   # the transposed ops

  ``x`` is in the backend's ``data_format`` (NCHW, or NCW / NCDHW for 1-D / 3-D), ``w`` in its filter layout (``"OIHW"``; a
  depthwise filter as the grouped weight ``[in_c * multiplier, 1, kh, kw]``, see ``layouts.depthwise_as_grouped``;
  a transposed convolution's as ``"IOHW"`` = [its input channels, its output channels, kh, kw]); ``strides`` and
  ``dilations`` one int per spatial axis; ``pads`` one ``(before, after)`` per spatial axis. For ``conv`` the pads
  are non-negative. For ``conv_transpose`` they are the corresponding forward convolution's, so that
  ``output_size = (n - 1) * stride + (k - 1) * dilation + 1 - before - after``; ``after`` can be negative (the output
  extends past the last input's footprint with zeros, PyTorch's ``output_padding``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from harness import ops
from harness.conv import layouts
from harness.conv.dtypes import DTYPES

CONVENTIONS = ("tf", "explicit")
ORIENTATIONS = ("correlation", "convolution")
BUILTIN = (
    "reference",
    "textbook",
    "tensorflow",
    "tensorflow-function",
    "tensorflow-xla",
    "torch",
    "jax",
    "onnxruntime",
    "litert",
    "litert-builtin",
    "litert-ref",
    "tflite-float",
    "litert-float",
)
ORACLE = "tensorflow"


class NotCovered(Exception):
    """The backend does not implement this case (op, dtype, layout or configuration); the message says why."""


class BackendError(ValueError):
    """A backend that cannot be found or declared wrongly (message names the spec and the field)."""


@dataclass(frozen=True)
class Backend:
    name: str
    ops: Mapping[str, Callable]  # tf.nn op name -> function in ``convention``
    convention: str = "tf"
    data_format: str | None = None  # 2-D data layout its functions take and return; None: whatever the case uses
    filter_layouts: Mapping[str, str] = field(default_factory=dict)  # "op" or "op.operand" -> filter layout
    orientation: str = "correlation"  # "convolution": the harness rotates every filter by 180 degrees first
    dtypes: tuple[str, ...] = tuple(DTYPES)
    description: str = ""
    extra: str | None = None  # the pip extra that installs what it needs
    unavailable: str | None = None  # why it cannot run here (a package is missing), or None

    def covers(self, op: str, dtype: str) -> str | None:
        """None if this backend runs ``op`` at ``dtype``, else why not."""
        if self.unavailable:
            return self.unavailable
        if op not in self.ops:
            return f"{self.name} does not implement {op}"
        if dtype not in self.dtypes:
            return f"{self.name} does not run {dtype} (it runs {', '.join(self.dtypes)})"
        return None


# --- translation --------------------------------------------------------------------------


def rank_format(fmt2d: str, rank: int) -> str:
    """A 2-D layout (NHWC, OIHW...) for an op of ``rank`` axes: 1-D ops drop H, 3-D ops add D before it."""
    if len(fmt2d) == rank:
        return fmt2d
    return fmt2d.replace("H", "DH") if rank > len(fmt2d) else fmt2d.replace("H", "")


def filter_layout(backend: Backend, op: str, operand: ops.Operand) -> str:
    """The layout a convention-tf backend takes ``operand`` of ``op`` in (``op.operand``, ``op``, else TF's)."""
    layout = backend.filter_layouts.get(f"{op}.{operand.name}", backend.filter_layouts.get(op, operand.layout))
    return rank_format(layout, len(operand.layout))


def _filter_in(backend: Backend, op: str, operand: ops.Operand, w: np.ndarray) -> np.ndarray:
    target = filter_layout(backend, op, operand)
    w = layouts.convert(w, operand.layout, target)
    return layouts.rotate_180(w, target) if backend.orientation == "convolution" else w


def _reorder_attrs(op: str, attrs: dict, src: str, dst: str) -> dict:
    """Full-rank per-axis attributes rewritten from data_format ``src`` order to ``dst`` order."""
    out = dict(attrs)
    for key in ("strides", "stride", "dilations", "output_shape"):
        if isinstance(out.get(key), (list, tuple)) and len(out[key]) == len(src):
            out[key] = layouts.convert_axis_list(out[key], src, dst)
    if isinstance(out.get("padding"), (list, tuple)) and len(out["padding"]) == len(src):
        out["padding"] = layouts.convert_axis_list(out["padding"], src, dst)
    if "data_format" in ops.get(op).attrs:
        out["data_format"] = dst
    return out


def _call_tf_convention(backend: Backend, op: str, arrays: Mapping[str, np.ndarray], attrs: dict) -> np.ndarray:
    spec = ops.get(op)
    fmt = spec.data_format(attrs)
    target = fmt if backend.data_format is None else rank_format(backend.data_format, len(fmt))
    if target != fmt and "data_format" not in spec.attrs:
        raise NotCovered(f"{op} has no data_format argument: it takes {fmt} only, {backend.name} takes {target}")
    if target not in spec.formats:
        raise NotCovered(f"{op} does not take data_format {target}")
    args = []
    for operand in spec.operands:
        a = arrays[operand.name]
        if operand.kind == "data":
            args.append(np.ascontiguousarray(layouts.convert(a, fmt, target)))
        else:
            args.append(np.ascontiguousarray(_filter_in(backend, op, operand, a)))
    out = backend.ops[op](*args, **_reorder_attrs(op, attrs, fmt, target))
    return layouts.convert(np.asarray(out), target, fmt)


def _geometry(spec: ops.OpSpec, x_shape: tuple, fmt: str, kernel_sizes, attrs: Mapping):
    """Windows per spatial axis, from attributes the reference accepted."""
    return spec.windows([x_shape[fmt.index(c)] for c in layouts.spatial(fmt)], kernel_sizes, attrs)


def _explicit_args(wins) -> dict:
    return {
        "strides": tuple(w.stride for w in wins),
        "dilations": tuple(w.dilation for w in wins),
        "pads": tuple((w.pad_before, w.pad_after) for w in wins),
    }


def explicit_layout(backend: Backend, spec: ops.OpSpec, role: str, operand: ops.Operand) -> str:
    """The layout a convention-explicit backend takes ``operand`` of ``spec`` in, as the weight of its ``role``
    function ("conv", "grouped": a depthwise filter as a grouped weight, "transposed"): the op's own declaration
    (``op.operand``, ``op``; not for a separable op, whose two filters are a grouped and a plain weight), else the
    role's (``grouped`` falls back to ``conv``), else TensorFlow's layout of that role (HWIO; HWOI)."""
    keys = [] if spec.kind == "separable" else [f"{spec.name}.{operand.name}", spec.name]
    keys += {"conv": ["conv"], "grouped": ["grouped", "conv"], "transposed": ["transposed"]}[role]
    layout = next(
        (backend.filter_layouts[k] for k in keys if k in backend.filter_layouts),
        "HWOI" if role == "transposed" else "HWIO",
    )
    return rank_format(layout, len(operand.layout))


def _weight(backend: Backend, spec: ops.OpSpec, role: str, operand: ops.Operand, w: np.ndarray) -> np.ndarray:
    """``w`` (TensorFlow's layout of ``operand``) as the backend's weight for ``role``, rotated if it convolves."""
    target = explicit_layout(backend, spec, role, operand)
    if role == "grouped":  # [kh, kw, in_c, multiplier] -> the grouped weight [in_c * multiplier, 1, kh, kw]
        w = layouts.rotate_180(w, operand.layout) if backend.orientation == "convolution" else w
        return np.ascontiguousarray(layouts.depthwise_as_grouped(w, target))
    w = layouts.convert(w, operand.layout, target)
    return np.ascontiguousarray(layouts.rotate_180(w, target) if backend.orientation == "convolution" else w)


def _call_explicit(backend: Backend, op: str, arrays: Mapping[str, np.ndarray], attrs: dict) -> np.ndarray:
    """One op through the backend's conv / conv_transpose, chosen by the op's kind (``ops.KINDS``)."""
    spec = ops.get(op)
    fmt = spec.data_format(attrs)
    target = rank_format(backend.data_format or fmt, len(fmt))
    fn = backend.ops[op]
    x = arrays[spec.data.name]
    x_b = np.ascontiguousarray(layouts.convert(x, fmt, target))
    spatial = layouts.spatial(fmt)
    filt = spec.kernel_operand
    w = arrays[filt.name]
    kernel_sizes = [w.shape[filt.layout.index(c)] for c in spatial]

    if spec.kind == "transposed":
        out_shape = list(attrs["output_shape"])
        groups = spec.group_count(x.shape, w.shape, attrs) or 1  # 0 channels: no groups to speak of
        out_sizes = [out_shape[fmt.index(c)] for c in spatial] if len(out_shape) == len(fmt) else out_shape
        fwd_shape = [out_sizes[spatial.index(c)] if c in spatial else x.shape[fmt.index(c)] for c in fmt]
        wins = _geometry(spec, tuple(fwd_shape), fmt, kernel_sizes, attrs)
        pads = []
        for win, n_in in zip(wins, [x.shape[fmt.index(c)] for c in spatial]):
            full = (n_in - 1) * win.stride + win.effective_kernel
            pads.append((win.pad_before, full - win.pad_before - win.size))  # ``after`` < 0: zeros past the footprint
        grouping = {}
        if groups > 1:  # a grouped transposed convolution: only for a conv_transpose that takes groups
            if "groups" not in inspect.signature(fn).parameters:
                raise NotCovered(f"{backend.name}'s conv_transpose takes no groups ({groups} groups here)")
            grouping = {"groups": groups}
        out = fn(
            x_b,
            _weight(backend, spec, "transposed", filt, w),
            strides=tuple(win.stride for win in wins),
            dilations=tuple(win.dilation for win in wins),
            pads=tuple(pads),
            output_size=tuple(out_sizes),
            **grouping,
        )
        return layouts.convert(np.asarray(out), target, fmt)

    wins = _geometry(spec, x.shape, fmt, kernel_sizes, attrs)
    if spec.kind == "conv":  # grouped when the data has a multiple of the filter's in_channels
        groups = spec.group_count(x.shape, w.shape, attrs) or 1  # 0 channels: no groups to speak of
        y = fn(x_b, _weight(backend, spec, "conv", filt, w), groups=groups, **_explicit_args(wins))
    else:  # depthwise, and the first step of separable: a grouped convolution with in_c groups
        y = fn(
            x_b,
            _weight(backend, spec, "grouped", filt, w),
            groups=w.shape[filt.layout.index("I")],
            **_explicit_args(wins),
        )
    if spec.kind == "separable":  # then the pointwise filter: a plain 1x1 convolution
        pointwise = next(o for o in spec.operands if o.kind == "filter" and o is not filt)
        ones = tuple(1 for _ in wins)
        y = fn(
            np.asarray(y),
            _weight(backend, spec, "conv", pointwise, arrays[pointwise.name]),
            strides=ones,
            dilations=ones,
            pads=tuple((0, 0) for _ in wins),
            groups=1,
        )
    return layouts.convert(np.asarray(y), target, fmt)


def explicit_backend(
    name: str,
    conv: Callable,
    conv_transpose: Callable,
    *,
    data_format: str,
    filter_layouts: Mapping[str, str],
    **fields,
) -> Backend:
    """A convention-explicit backend that runs every op in ``ops.OPS`` through the two functions its kind needs
    (``conv`` for conv, depthwise and separable ops; ``conv_transpose`` for transposed ones). ``filter_layouts``
    names the layout of each role ("conv", "transposed", optionally "grouped")."""
    table = {spec.name: conv_transpose if spec.kind == "transposed" else conv for spec in ops.OPS.values()}
    return Backend(
        name, table, convention="explicit", data_format=data_format, filter_layouts=dict(filter_layouts), **fields
    )


def run(backend: Backend, op: str, arrays: Mapping[str, np.ndarray], attrs: dict, dtype: str) -> np.ndarray:
    """``op`` on ``arrays`` (the op's own layouts) by ``backend``: the output in the op's data_format, at ``dtype``.

    Raises NotCovered when the backend does not implement this case; anything else the backend raises propagates.
    """
    why = backend.covers(op, dtype)
    if why:
        raise NotCovered(why)
    spec = ops.get(op)
    if np.ndim(arrays[spec.data.name]) != len(spec.data_format(attrs)):
        raise NotCovered(f"{op} with batch axes beyond {spec.data_format(attrs)}: a backend takes one batch axis")
    if backend.convention == "explicit":
        out = _call_explicit(backend, op, arrays, attrs)
    else:
        out = _call_tf_convention(backend, op, arrays, attrs)
    return np.asarray(out)
