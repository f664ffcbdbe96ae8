"""The bytes between the harness and a TensorFlow server: a JSON header, then the arrays' raw bytes.

The server may run another interpreter with another NumPy (a TensorFlow before 2.18 needs NumPy 1.x, the harness
runs NumPy 2), and a NumPy 2 pickle does not load under NumPy 1 ("No module named 'numpy._core'"). So nothing
crosses as a pickle: a message is

    8 bytes: the header's length (big-endian)  |  the header (UTF-8 JSON)  |  each array's bytes, in order

The header is ``{"value": ..., "arrays": [[dtype name, shape], ...]}``. ``value`` is the message with every array
replaced by ``{"$a": i}`` (the i-th array), a NumPy scalar by ``{"$s": i}``, a tuple by ``{"$t": [...]}`` and a
dict by ``{"$d": [[key, value], ...]}``; lists, strings, numbers, booleans and None are themselves. Arrays cross
C-ordered in the machine's byte order; a dtype is named as NumPy names it (``bfloat16`` and the other ml_dtypes
types by their ml_dtypes names).

``encode``/``decode`` turn a value into bytes and back; ``send``/``receive`` frame it on a socket. No TensorFlow.
"""

from __future__ import annotations

import json
import select
import socket
import struct
from collections.abc import Mapping

import numpy as np

_LENGTH = struct.Struct(">Q")


class WireError(ValueError):
    """A value that cannot cross (an object array, a set, a class instance), or bytes that are not a message."""


def _dtype(name: str, dtypes: Mapping[str, np.dtype] | None = None) -> np.dtype:
    if dtypes and name in dtypes:
        return np.dtype(dtypes[name])
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes  # bfloat16, float8_*: TensorFlow depends on it, so both sides have it

        return np.dtype(getattr(ml_dtypes, name))


def _flatten(value, arrays: list[np.ndarray]):
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise WireError(f"an object array cannot cross to TensorFlow's process: {value!r:.80}")
        if not value.dtype.isnative:
            value = value.astype(value.dtype.newbyteorder("="))
        arrays.append(np.ascontiguousarray(value))
        return {"$a": len(arrays) - 1}
    if isinstance(value, np.generic):
        arrays.append(np.asarray(value))
        return {"$s": len(arrays) - 1}
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"$t": [_flatten(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_flatten(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"$d": [[_flatten(k, arrays), _flatten(v, arrays)] for k, v in value.items()]}
    raise WireError(f"a {type(value).__name__} cannot cross to TensorFlow's process: {value!r:.80}")


def _rebuild(value, arrays: list[np.ndarray]):
    if isinstance(value, list):
        return [_rebuild(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    ((tag, inner),) = value.items()
    if tag == "$a":
        return arrays[inner]
    if tag == "$s":
        return arrays[inner][()]
    if tag == "$t":
        return tuple(_rebuild(v, arrays) for v in inner)
    if tag == "$d":
        return {_rebuild(k, arrays): _rebuild(v, arrays) for k, v in inner}
    raise WireError(f"not a message: unknown tag {tag!r}")


def encode(value) -> bytes:
    """``value`` as one message (see the module docstring); deterministic, so its hash names a call."""
    arrays: list[np.ndarray] = []
    flat = _flatten(value, arrays)
    header = json.dumps(
        {"value": flat, "arrays": [[a.dtype.name, list(a.shape)] for a in arrays]}, separators=(",", ":")
    ).encode()
    return b"".join([_LENGTH.pack(len(header)), header, *(a.tobytes() for a in arrays)])


def _parse_header(header: bytes, dtypes=None) -> tuple[object, list[tuple[np.dtype, tuple]]]:
    try:
        obj = json.loads(header)
        specs = [(_dtype(name, dtypes), tuple(shape)) for name, shape in obj["arrays"]]
        return obj["value"], specs
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WireError(f"not a message: {exc}") from None


def _nbytes(dtype: np.dtype, shape: tuple) -> int:
    return dtype.itemsize * int(np.prod(shape, dtype=np.int64))


def decode(data: bytes, dtypes: Mapping[str, np.dtype] | None = None):
    """The value ``encode`` made ``data`` from. ``dtypes``: NumPy types to use for some dtype names (a TensorFlow
    before 2.14 has its own bfloat16 type, not ml_dtypes')."""
    if len(data) < _LENGTH.size:
        raise WireError(f"not a message: {len(data)} bytes")
    (length,), start = _LENGTH.unpack_from(data), _LENGTH.size
    value, specs = _parse_header(data[start : start + length], dtypes)
    offset, arrays = start + length, []
    for dtype, shape in specs:
        size = _nbytes(dtype, shape)
        if offset + size > len(data):
            raise WireError("not a message: it ends inside an array")
        arrays.append(np.frombuffer(data, dtype, count=size // dtype.itemsize, offset=offset).reshape(shape).copy())
        offset += size
    return _rebuild(value, arrays)


def _read(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("the other side closed the connection")
        got += n
    return bytes(buffer)


def send(sock: socket.socket, value) -> None:
    sock.sendall(encode(value))


def receive(sock: socket.socket, dtypes: Mapping[str, np.dtype] | None = None):
    """The next message on ``sock`` (``dtypes`` as for ``decode``); EOFError when the other side has closed it."""
    prefix = _read(sock, _LENGTH.size)
    header = _read(sock, _LENGTH.unpack(prefix)[0])
    _, specs = _parse_header(header, dtypes)
    body = _read(sock, sum(_nbytes(d, s) for d, s in specs))
    return decode(prefix + header + body, dtypes)


def ready(sock: socket.socket, timeout: float) -> bool:
    """Whether a message (or the end of the connection) arrives on ``sock`` within ``timeout`` seconds."""
    return bool(select.select([sock], [], [], timeout)[0])
