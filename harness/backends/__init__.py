"""Backends: implementations of the tf.nn ops that the harness cross-validates against TensorFlow.

``harness.backends.base`` says what a backend is (``Backend``: what it implements, in which conventions) and does
every translation between those conventions and TensorFlow's; this module holds the built-in backends and
``resolve``, which finds a backend by name, ``module:function`` or declaration file
(``harness.backends.declared``). The optional adapters (``torch_nn``, ``jax_lax``, ``onnx_runtime``) are imported
only when asked for.

Built in: ``reference``, ``textbook``, ``tensorflow`` (eager, the oracle), ``tensorflow-function``,
``tensorflow-xla``; optional, when their packages are installed: ``torch``, ``jax``, ``onnxruntime``, and LiteRT's
interpreter paths for the quantized cases, ``litert`` (XNNPACK), ``litert-builtin`` and ``litert-ref``
(``harness.check.quantized.PATHS``); TFLite's float32 kernels, ``tflite-float`` (tf.lite) and ``litert-float``
(``harness.backends.tflite_float``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness import ops
from harness.backends import declared
from harness.backends.base import (
    BUILTIN,
    CONVENTIONS,
    ORACLE,
    ORIENTATIONS,
    Backend,
    BackendError,
    NotCovered,
    explicit_backend,
    explicit_layout,
    filter_layout,
    run,
)
from harness.registry.quantization import SCHEMES, TFLITE_OPS
from harness.tf.isolation import Died, Raised, call_tensorflow

__all__ = [
    "BUILTIN",
    "CONVENTIONS",
    "ORACLE",
    "ORIENTATIONS",
    "Backend",
    "BackendError",
    "NotCovered",
    "EXTRAS",
    "TensorFlowError",
    "explicit_backend",
    "explicit_layout",
    "filter_layout",
    "resolve",
    "run",
]


# --- built-in and user backends -------------------------------------------------------------


def _reference() -> Backend:
    return Backend(
        "reference",
        {op: spec.reference for op, spec in ops.OPS.items()},
        description="the NumPy reference (harness/conv/reference.py)",
    )


def _textbook() -> Backend:
    def formulations(op):
        def run_first(*operands, **attrs):
            spec = ops.get(op)
            if any(np.size(a) == 0 for a in operands):  # as in the default check: nothing for the documents' loops
                raise NotCovered("an empty operand: the documents' formulations compute nothing")
            arrays = {o.name: a for o, a in zip(spec.operands, operands)}
            reasons = []
            for f in spec.textbook:
                try:
                    return f.run(arrays, attrs)
                except ops.NotApplicable as why:
                    reasons.append(f"{f.name}: {why}")
            raise NotCovered("; ".join(reasons) or f"no textbook formulation of {op}")

        return run_first

    return Backend(
        "textbook",
        {op: formulations(op) for op, spec in ops.OPS.items() if spec.textbook},
        description="the seed documents' formulations (harness/conv/textbook.py), first that applies",
    )


class TensorFlowError(Exception):
    """TensorFlow raised (or its process died) in a graph mode: ``behaviour`` says which, as the runner words it."""

    def __init__(self, behaviour: str, detail: str):
        super().__init__(f"{behaviour}: {detail}")
        self.behaviour, self.detail = behaviour, detail


def _tensorflow(mode: str) -> Backend:
    def make(op):
        def in_mode(*args, **kwargs):
            result = call_tensorflow(op, args, kwargs, mode=mode)
            if isinstance(result, Raised):
                raise TensorFlowError(
                    f"raises {result.error_class}", result.message.splitlines()[0][:300] if result.message else ""
                )
            if isinstance(result, Died):
                raise TensorFlowError("aborts", f"the TensorFlow process died ({result.how})")
            return result.value

        return in_mode

    name = {"eager": "tensorflow", "function": "tensorflow-function", "xla": "tensorflow-xla"}[mode]
    what = {
        "eager": "tf.nn eagerly (the oracle)",
        "function": "tf.nn inside tf.function",
        "xla": "tf.nn inside tf.function(jit_compile=True)",
    }[mode]
    return Backend(name, {op: make(op) for op in ops.OPS}, description=what)


def _unavailable(name: str, exc: ImportError, extra: str) -> Backend:
    """A backend whose package is missing: it says which extra installs it."""
    return Backend(
        name, {}, unavailable=f"{name} is not installed ({exc.name or exc}): pip install -e '.[{extra}]'", extra=extra
    )


def _optional(module: str, name: str, extra: str, *args: str) -> Backend:
    """An adapter in ``harness.backends.<module>`` whose ``backend(*args)`` needs an optional package."""
    try:
        adapter = importlib.import_module(f"harness.backends.{module}")
        return adapter.backend(*args)
    except ImportError as exc:
        return _unavailable(name, exc, extra)


def _litert_version() -> str:
    from importlib import metadata

    return metadata.version("ai-edge-litert")


def _litert(resolver: str) -> Backend:
    """LiteRT's interpreter (``ai-edge-litert``) under one op resolver: it runs the quantized cases' models only
    (``harness.check.quantized``), each checked bit for bit against the integer reference."""
    name = "litert" if resolver == "auto" else f"litert-{resolver}"
    try:
        importlib.import_module("ai_edge_litert.interpreter")
    except ImportError as exc:
        return _unavailable(name, exc, "litert")

    def models_only(*args, **kwargs):
        raise NotCovered(f"{name} runs the quantized cases' models only")

    what = {"auto": "XNNPACK, the default", "builtin": "the optimized kernels", "ref": "the reference kernels"}
    return Backend(
        name,
        {op: models_only for op in TFLITE_OPS},
        dtypes=tuple(SCHEMES),
        description=f"LiteRT's interpreter (ai-edge-litert {_litert_version()}), {what[resolver]}: the quantized cases, "
        "bit for bit",
        extra="litert",
    )


_FACTORIES: dict[str, Callable[[], Backend]] = {
    "reference": _reference,
    "textbook": _textbook,
    "tensorflow": lambda: _tensorflow("eager"),
    "tensorflow-function": lambda: _tensorflow("function"),
    "tensorflow-xla": lambda: _tensorflow("xla"),
    "torch": lambda: _optional("torch_nn", "torch", "torch"),
    "jax": lambda: _optional("jax_lax", "jax", "jax"),
    "onnxruntime": lambda: _optional("onnx_runtime", "onnxruntime", "onnxruntime"),
    "litert": lambda: _litert("auto"),
    "litert-builtin": lambda: _litert("builtin"),
    "litert-ref": lambda: _litert("ref"),
    "tflite-float": lambda: _optional("tflite_float", "tflite-float", "tf"),
    "litert-float": lambda: _optional("tflite_float", "litert-float", "litert", "litert"),
}
EXTRAS = {  # backend -> pyproject extra
    "torch": "torch",
    "jax": "jax",
    "onnxruntime": "onnxruntime",
    **{name: "litert" for name in ("litert", "litert-builtin", "litert-ref", "litert-float")},
}


def resolve(spec: str, root: Path | None = None) -> Backend:
    """A backend by name (``BUILTIN``), ``module:function`` (a user's tf.nn-style function named after its op, or
    ``module:function=op``), or the path of a declaration file (``.yaml``/``.yml``/``.toml``)."""
    if spec in _FACTORIES:
        return _FACTORIES[spec]()
    if spec.endswith((".yaml", ".yml", ".toml")):
        return declared.load(Path(spec) if root is None or Path(spec).is_absolute() else Path(root) / spec)
    if ":" in spec:
        return declared.from_function(spec)
    raise BackendError(
        f"--backend {spec!r}: not a backend; give one of {', '.join(BUILTIN)}, module:function "
        f"or a declaration file (.yaml/.toml)"
    )
