"""Run TensorFlow ops in a long-lived child process, so that an abort is one case's outcome.

Under oneDNN some invalid inputs make TensorFlow abort the whole process
(``Check failed: ...`` then SIGABRT) instead of raising. The harness therefore
calls TensorFlow through ``TFProcess``: one child per harness process, started on
first use, which imports TensorFlow once and then serves op calls over a pipe.
When the child dies, the call returns ``Died`` with the signal and the tail of
the child's stderr, and the next call starts a fresh child. The parent never
imports TensorFlow.

Set ``HARNESS_TF_ISOLATION=0`` to call TensorFlow in-process instead (easier to
debug; an abort then kills the run).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from dataclasses import dataclass
from typing import Union

import numpy as np

ISOLATION_ENV = "HARNESS_TF_ISOLATION"
CALL_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Returned:
    value: np.ndarray


@dataclass(frozen=True)
class Raised:
    error_class: str  # e.g. "InvalidArgumentError", "ValueError"
    message: str


@dataclass(frozen=True)
class Died:
    how: str  # e.g. "SIGABRT", "exit code 1", "timed out after 300 s"
    stderr_tail: str


Result = Union[Returned, Raised, Died]


def _call(op: str, args: tuple, kwargs: dict, mode: str = "eager") -> Result:
    from harness import tf_ops

    try:
        if mode == "eager":
            return Returned(getattr(tf_ops, op)(*args, **kwargs))
        return Returned(tf_ops.call(op, args, kwargs, mode))
    except Exception as exc:  # every TensorFlow error class is an outcome to report
        return Raised(type(exc).__name__, str(exc).strip())


def _serve(read_fd: int, write_fd: int) -> None:
    """The child's loop: run each requested op, send back what happened."""
    from harness import tf_ops

    conn_in, conn_out = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    tf_ops.tf()  # import once, up front
    while True:
        try:
            op, args, kwargs, mode = conn_in.recv()
        except EOFError:
            return
        conn_out.send(_call(op, args, kwargs, mode))


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class TFProcess:
    """A TensorFlow child process that is restarted after it dies."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._send = self._recv = None
        # The children's stdout/stderr: an unlinked temporary file, so nothing is left behind however we exit.
        fd, path = tempfile.mkstemp(prefix="harness-tf-", suffix=".log")
        os.unlink(path)
        self._log = fd

    def _start(self) -> None:
        from harness import tf_ops

        tf_ops.pin_environment()  # the child inherits the environment
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # TensorFlow's C++ "Check failed" lines go to the log, where the parent reads them after a death.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.isolation", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)

    def _stderr_since(self, offset: int) -> str:
        size = os.fstat(self._log).st_size
        text = os.pread(self._log, max(size - offset, 0), offset).decode("utf-8", "replace")
        noise = ("@", "I0000", "W0000", "WARNING: All log messages", "*** Check failure stack trace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(noise)]
        return "\n".join(lines[-4:])

    def call(self, op: str, args: tuple, kwargs: dict, timeout: float = CALL_TIMEOUT_S, mode: str = "eager") -> Result:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        offset = os.fstat(self._log).st_size
        try:
            self._send.send((op, args, kwargs, mode))
            if self._recv.poll(timeout):
                return self._recv.recv()
            self._proc.kill()
            how = f"timed out after {timeout:g} s"
        except (EOFError, BrokenPipeError, ConnectionResetError):
            how = None
        try:
            code = self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._close_pipes()
        self._proc = None
        return Died(how or _describe_exit(code), self._stderr_since(offset))

    def _close_pipes(self) -> None:
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._send = self._recv = None

    def close(self) -> None:
        if self._proc is not None:
            self._close_pipes()  # the child sees EOF and exits
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None
        if self._log is not None:
            os.close(self._log)
            self._log = None


_process: TFProcess | None = None


def call_tensorflow(op: str, args: tuple, kwargs: dict, mode: str = "eager") -> Result:
    """Run ``harness.tf_ops.<op>(*args, **kwargs)`` (``mode``: eager, function or xla; see ``tf_ops.call``),
    isolated unless HARNESS_TF_ISOLATION=0."""
    global _process
    if os.environ.get(ISOLATION_ENV, "1") == "0":
        return _call(op, args, kwargs, mode)
    if _process is None:
        _process = TFProcess()
        atexit.register(_process.close)
    return _process.call(op, args, kwargs, mode=mode)


if __name__ == "__main__":
    # Run the loop from the imported module, so that results pickle as harness.isolation.* classes.
    from harness import isolation

    isolation._serve(int(sys.argv[1]), int(sys.argv[2]))
