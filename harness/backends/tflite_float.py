"""TFLite's float32 convolution kernels as backends, in the "explicit" convention (see ``harness.backends``).

``tflite-float`` runs tf.lite's interpreter in TensorFlow's server process, ``litert-float`` LiteRT's interpreter
(``ai-edge-litert``) here; both with the default op resolver (XNNPACK where it takes the op). Each call is a one-op
model (``harness.tf.tflite.build_float``, built in TensorFlow's process) of one of TFLite's five convolutions:

* ``CONV_2D`` (filter OHWI; grouped when the input has a multiple of the filter's in_channels) and
  ``DEPTHWISE_CONV_2D`` (filter [1, kh, kw, C * M]), for conv1d (as a 2-D op one row high), conv2d, depthwise and
  separable convolutions, atrous and tf.nn.convolution;
* ``TRANSPOSE_CONV`` (filter OHWI, O its output channels; no dilations);
* ``CONV_3D`` (DHWIO) and ``CONV_3D_TRANSPOSE`` (DHWOI), without groups.

TFLite pads only SAME or VALID: the harness's explicit pads are turned back into the name that gives them (TensorFlow's
SAME arithmetic, which TFLite shares), and a configuration neither gives (explicit padding) is not covered.
"""

from __future__ import annotations

import numpy as np

from harness.backends.base import Backend, NotCovered, explicit_backend
from harness.tf import tflite
from harness.tf.isolation import Raised, Returned, call_tensorflow

DTYPES = ("float32",)


def _same_pads(size: int, kernel_eff: int, stride: int) -> tuple[int, int]:
    """TensorFlow's (and TFLite's) SAME pads along one axis: out = ceil(size / stride), the odd pixel after."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel_eff - size)
    return total // 2, total - total // 2


def _padding_name(sizes, kernels, strides, dilations, pads) -> str:
    """The padding name whose pads are ``pads`` (VALID: none; SAME: TensorFlow's), else NotCovered."""
    if all(tuple(p) == (0, 0) for p in pads):
        return "VALID"
    same = [_same_pads(n, (k - 1) * d + 1, s) for n, k, s, d in zip(sizes, kernels, strides, dilations)]
    if [tuple(p) for p in pads] == same:
        return "SAME"
    raise NotCovered(f"TFLite pads SAME or VALID only; these pads {list(pads)} are neither")


def _run(runtime: str, op: str, x: np.ndarray, w: np.ndarray, attrs: dict) -> np.ndarray:
    """``op``'s one-op model on ``x``, in tf.lite (TensorFlow's process) or LiteRT (here)."""
    if runtime == "tensorflow":
        result = call_tensorflow("tflite_run_float", (op, x, w, attrs, "auto"), {})
    else:
        result = call_tensorflow("tflite_build_float", (op, list(x.shape), w, attrs), {})
        if isinstance(result, Returned):
            try:
                return tflite.run(result.value, x, "auto", runtime=runtime)
            except Exception as exc:  # the interpreter's error is the backend's outcome
                raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
    if isinstance(result, Raised):
        raise RuntimeError(f"{result.error_class}: {result.message}")
    if not isinstance(result, Returned):
        raise RuntimeError(f"TensorFlow's process died building the model: {result}")
    return np.asarray(result.value)


def _backend(name: str, runtime: str, description: str) -> Backend:
    def conv(x, w, *, strides, dilations, pads, groups):
        """x: channels last [N, *spatial, C]; w: [O, *kernel, C / groups]."""
        if x.ndim == 3:  # 1-D: a 2-D op one row high
            y = conv(
                x[:, None],
                w[:, None],
                strides=(1, *strides),
                dilations=(1, *dilations),
                pads=((0, 0), *pads),
                groups=groups,
            )
            return y[:, 0]
        kernels, channels = w.shape[1:-1], x.shape[-1]
        padding = _padding_name(x.shape[1:-1], kernels, strides, dilations, pads)
        attrs = {"strides": list(strides), "dilations": list(dilations), "padding": padding}
        if x.ndim == 5:
            if groups != 1:
                raise NotCovered(f"TFLite's CONV_3D has no groups ({groups} here)")
            return _run(runtime, "conv3d", x, np.moveaxis(w, 0, -1), attrs)  # ODHWI -> DHWIO
        if (
            groups > 1 and groups == channels and w.shape[-1] == 1
        ):  # depthwise: [C * M, kh, kw, 1] -> [1, kh, kw, C * M]
            return _run(runtime, "depthwise_conv2d", x, np.transpose(w, (3, 1, 2, 0)), attrs)
        return _run(runtime, "conv2d", x, w, attrs)

    def conv_transpose(x, w, *, strides, dilations, pads, output_size):
        """x: channels last [N, *spatial, I]; w: [O, *kernel, I], O its output channels."""
        if x.ndim == 3:
            y = conv_transpose(
                x[:, None],
                w[:, None],
                strides=(1, *strides),
                dilations=(1, *dilations),
                pads=((0, 0), *pads),
                output_size=(1, *output_size),
            )
            return y[:, 0]
        if x.ndim == 4 and any(d != 1 for d in dilations):
            raise NotCovered(f"TFLite's TRANSPOSE_CONV has no dilations ({list(dilations)} here)")
        kernels = w.shape[1:-1]
        effective = [(k - 1) * d + 1 for k, d in zip(kernels, dilations)]
        names = []
        for name in ("SAME", "VALID"):  # the name whose forward pads and input size are these
            fits = all(
                (n_in == -(-m // s) and before == _same_pads(m, k, s)[0])
                if name == "SAME"
                else (before == 0 and n_in == (m - k) // s + 1 and m >= k)
                for n_in, m, k, s, (before, _) in zip(x.shape[1:-1], output_size, effective, strides, pads)
            )
            names += [name] if fits else []
        if not names:
            raise NotCovered(f"TFLite pads SAME or VALID only; these pads {list(pads)} are neither")
        attrs = {
            "strides": list(strides),
            "dilations": list(dilations),
            "padding": names[0],
            "output_shape": [x.shape[0], *output_size, w.shape[0]],
        }
        if x.ndim == 5:  # ODHWI -> DHWOI
            return _run(runtime, "conv3d_transpose", x, np.moveaxis(w, 0, -2), attrs)
        return _run(runtime, "conv2d_transpose", x, w, attrs)

    return explicit_backend(
        name,
        conv,
        conv_transpose,
        data_format="NHWC",
        filter_layouts={"conv": "OHWI", "transposed": "OHWI"},
        dtypes=DTYPES,
        description=description,
        extra="litert" if runtime == "litert" else None,
    )


def backend(runtime: str = "tensorflow") -> Backend:
    """``tflite-float`` (tf.lite) or, for runtime "litert", ``litert-float``."""
    if runtime == "litert":
        from importlib import metadata

        import ai_edge_litert.interpreter  # noqa: F401  (ImportError: the backend is unavailable)

        version = metadata.version("ai-edge-litert")
        return _backend("litert-float", "litert", f"LiteRT's interpreter (ai-edge-litert {version}), float32 kernels")
    return _backend("tflite-float", "tensorflow", "tf.lite's interpreter, float32 TFLite kernels (XNNPACK)")
