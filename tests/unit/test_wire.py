"""harness.tf.wire: what crosses to a TensorFlow server comes back as it went, with no pickle."""

import math
import socket
import threading

import ml_dtypes
import numpy as np
import pytest

from harness.tf import isolation, wire


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, np.generic):
        return type(a) is type(b) and a.tobytes() == b.tobytes()
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


CALLS = [
    (
        "conv2d",
        (
            np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4),
            np.ones((1, 1, 4, 2), np.float32),
            [1, 2],
            [[0, 0], [1, 1], [2, 0], [0, 0]],
        ),
        {"data_format": "NHWC", "dilations": None},
    ),
    ("conv2d", (np.array([[1.5, -0.0]], ml_dtypes.bfloat16), np.zeros((0, 3), np.float16)), {}),
    (
        "gradients",
        (
            "conv2d",
            (np.ones((1, 3, 3, 1), np.float64),),
            {"strides": 1, "padding": "SAME"},
            np.full((1, 3, 3, 1), np.nan),
        ),
        {},
    ),
    ("probe", ("/tmp/out.jsonl", ["path/Conv2D/float32/named"]), {}),
    (
        "x",
        (np.int32(7), np.float64(2.5), True, None, float("inf"), float("nan"), "VALID", (1, (2, [3]))),
        {"k": {1: "int key", "s": b"".decode()}},
    ),
]


@pytest.mark.parametrize("op,args,kwargs", CALLS, ids=[c[0] + str(i) for i, c in enumerate(CALLS)])
def test_a_call_round_trips_exactly(op, args, kwargs):
    message = [op, args, kwargs, "eager"]
    assert _same(message, wire.decode(wire.encode(message)))


def test_nothing_crosses_as_a_pickle():
    data = wire.encode(["conv2d", (np.ones((2, 2), np.float32),), {}])
    assert b"\x80\x04" not in data[:12] and b"numpy" not in data  # a pickle would name numpy._core
    assert b'"float32"' in data


def test_encoding_is_deterministic_so_it_can_name_a_recorded_answer():
    a = ["conv2d", (np.arange(6.0).reshape(2, 3),), {"padding": "SAME"}]
    b = ["conv2d", (np.arange(6.0).reshape(2, 3).copy(order="F"),), {"padding": "SAME"}]
    assert wire.encode(a) == wire.encode(b)


def test_a_big_endian_array_arrives_in_the_machines_order():
    value = np.arange(4, dtype=">f4")
    back = wire.decode(wire.encode(value))
    assert back.dtype.isnative and back.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_dtype_mapping_gives_the_servers_own_type():

    back = wire.decode(wire.encode(np.ones(3, ml_dtypes.bfloat16)), {"bfloat16": np.dtype(np.uint16)})
    assert back.dtype == np.uint16 and back.tolist() == [0x3F80] * 3


@pytest.mark.parametrize("value", [object(), {1, 2}, np.array([object()]), b"bytes"])
def test_what_cannot_cross_is_refused_by_name(value):
    with pytest.raises(wire.WireError, match="cannot cross"):
        wire.encode(value)


@pytest.mark.parametrize(
    "data", [b"", b"\x00" * 8 + b"", b"\x00\x00\x00\x00\x00\x00\x00\x02{}", wire.encode(np.ones(4))[:-3]]
)
def test_bytes_that_are_not_a_message_are_refused(data):
    with pytest.raises(wire.WireError, match="not a message"):
        wire.decode(data)


def test_results_round_trip_through_their_messages():
    for result in (
        isolation.Returned(np.eye(2, dtype=np.float16)),
        isolation.Raised("ValueError", "bad: 'x'"),
        isolation.Died("SIGABRT", "Check failed: 1 == 2"),
    ):
        back = isolation.message_result(wire.decode(wire.encode(isolation.result_message(result))))
        assert type(back) is type(result)
        assert _same(list(vars(back).values()), list(vars(result).values()))


def test_messages_are_framed_on_a_socket():
    ours, theirs = socket.socketpair()
    big = np.random.default_rng(0).standard_normal((64, 64, 32))  # larger than a socket buffer
    sender = threading.Thread(target=lambda: [wire.send(theirs, [big, i]) for i in range(3)] and theirs.close())
    sender.start()
    got = [wire.receive(ours) for _ in range(3)]
    sender.join()
    assert all(_same([big, i], g) for i, g in enumerate(got))
    assert wire.ready(ours, 1.0)
    with pytest.raises(EOFError):
        wire.receive(ours)
