"""Run TensorFlow ops in a long-lived child process, so that an abort is one case's outcome.

Under oneDNN some invalid inputs make TensorFlow abort the whole process
(``Check failed: ...`` then SIGABRT) instead of raising. The harness therefore
calls TensorFlow through ``TFProcess``: one server process per harness process,
started on first use, which serves op calls over a socket. When the server dies,
the call returns ``Died`` with the signal and the tail of the server's stderr, and
the next call gets a fresh server. The parent never imports TensorFlow.

Servers are forked from a *zygote*, a child that imports TensorFlow once and runs
no op: a fresh server then costs a fork (~0.1 s) instead of a TensorFlow import
(~4.5 s of CPU), which matters because the registry holds several cases that
abort. TensorFlow creates its thread pools at the first op, so the fork happens
while the zygote has no TensorFlow threads.

Set ``HARNESS_TF_ISOLATION=0`` to call TensorFlow in-process instead (easier to
debug; an abort then kills the run).

Recorded answers: with ``HARNESS_TF_RECORD=<dir>`` every answer is also stored in that directory (one file per
call, named by a hash of the call); with ``HARNESS_TF_REPLAY=<dir>`` a call stored there is answered from it
without TensorFlow (any other call runs as usual). The mutation run (``harness.selftest.mutmut_run``) records
once and replays in every mutant: a mutant changes the reference, never TensorFlow's answers.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.tf import kernel_probe, quantized_ops, tflite, versions, wire, wrappers

ISOLATION_ENV = "HARNESS_TF_ISOLATION"
RECORD_ENV = "HARNESS_TF_RECORD"
REPLAY_ENV = "HARNESS_TF_REPLAY"
CALL_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Returned:
    value: Any  # an op's output array; a tuple of them (gradients), the probe's record path (SERVER_CALLS)


@dataclass(frozen=True)
class Raised:
    error_class: str  # e.g. "InvalidArgumentError", "ValueError"
    message: str


@dataclass(frozen=True)
class Died:
    how: str  # e.g. "SIGABRT", "exit code 1", "timed out after 300 s"
    stderr_tail: str


Result = Returned | Raised | Died


def result_message(result: Result) -> list:
    """A result as ``harness.tf.wire`` sends it."""
    if isinstance(result, Returned):
        return ["returned", result.value]
    if isinstance(result, Raised):
        return ["raised", result.error_class, result.message]
    return ["died", result.how, result.stderr_tail]


def message_result(message: list) -> Result:
    """The result ``result_message`` made ``message`` from."""
    kind, *rest = message
    return {"returned": Returned, "raised": Raised, "died": Died}[kind](*rest)


# Calls a server answers besides the wrappers: the kernel probe (``harness.tf.environment`` runs it) and TFLite's
# quantized models (``harness.tf.tflite``).
SERVER_CALLS = {"probe": kernel_probe.run, **tflite.SERVER_CALLS, **quantized_ops.SERVER_CALLS}


def _call(op: str, args: tuple, kwargs: dict, mode: str = "eager") -> Result:
    try:
        if mode == "eager":
            return Returned((SERVER_CALLS.get(op) or getattr(wrappers, op))(*args, **kwargs))
        return Returned(wrappers.call(op, args, kwargs, mode))
    except Exception as exc:  # every TensorFlow error class is an outcome to report
        return Raised(type(exc).__name__, str(exc).strip())


def _serve(conn: socket.socket) -> None:
    """A server's loop: run each requested op, send back what happened."""
    dtypes = wrappers.numpy_dtypes()
    while True:
        try:
            op, args, kwargs, mode = wire.receive(conn, dtypes)
        except EOFError:
            return
        wire.send(conn, result_message(_call(op, args, kwargs, mode)))


def _zygote(control: socket.socket) -> None:
    """The zygote's loop. Requests on ``control``: "fork" (answered with the new server's pid and its socket,
    passed as a file descriptor) and "wait PID" (answered with that server's exit code, once it has ended)."""
    wrappers.tf()  # imported once; every server forked from here has it
    while True:
        request = control.recv(64).decode()
        if not request:
            return  # the parent has gone
        if request == "fork":
            ours, theirs = socket.socketpair()
            pid = os.fork()
            if pid == 0:  # the server
                control.close()
                ours.close()
                try:
                    _serve(theirs)
                finally:
                    os._exit(0)
            theirs.close()
            socket.send_fds(control, [str(pid).encode()], [ours.fileno()])
            ours.close()
        elif request.startswith("wait "):
            _, status = os.waitpid(int(request.split()[1]), 0)
            control.sendall(str(os.waitstatus_to_exitcode(status)).encode())


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class TFProcess:
    """A TensorFlow server process, replaced by a fresh fork of the zygote after it dies."""

    def __init__(self) -> None:
        self.owner = os.getpid()  # the process that started it (a fork's copy is not its own)
        self._zygote: subprocess.Popen | None = None
        self._control: socket.socket | None = None  # requests to the zygote
        self._pid = 0  # the server's
        self._conn: socket.socket | None = None  # op calls to the server
        # The children's stdout/stderr: an unlinked temporary file, so nothing is left behind however we exit.
        fd, path = tempfile.mkstemp(prefix="harness-tf-", suffix=".log")
        os.unlink(path)
        self._log: int | None = fd  # None once closed

    def _start(self) -> None:
        """A fresh server, forked from the zygote (started first if there is none)."""
        if self._zygote is None or self._zygote.poll() is not None:
            wrappers.pin_environment()  # the zygote inherits the environment
            if self._control is not None:  # a zygote that died: its socket goes with it
                self._control.close()
            self._control, theirs = socket.socketpair()
            # TensorFlow's C++ "Check failed" lines go to the log, where the parent reads them after a death.
            # The zygote may run another interpreter (``versions.PYTHON_ENV``): it finds the harness on its path.
            path = os.pathsep.join(p for p in (versions.harness_path(), os.environ.get("PYTHONPATH", "")) if p)
            self._zygote = subprocess.Popen(
                [versions.server_python(), "-m", "harness.tf.isolation", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=self._log_fd,
                stderr=self._log_fd,
                env={**os.environ, "PYTHONPATH": path},
            )
            theirs.close()
        control = self._control
        if control is None:  # set with the zygote above
            raise RuntimeError("the TensorFlow zygote has no control socket")
        try:
            control.sendall(b"fork")
            pid, fds, _, _ = socket.recv_fds(control, 64, 1)
        except OSError:  # the zygote died starting (e.g. an import failed in its interpreter)
            fds = []
        if not fds:
            raise RuntimeError(f"the TensorFlow zygote ended: {self._stderr_since(0)}")
        self._pid, self._conn = int(pid), socket.socket(fileno=fds[0])

    def _exit_code(self, pid: int) -> int | None:
        """The server's exit code, from the zygote (its parent); None if the zygote cannot say."""
        if self._control is None:  # no zygote
            return None
        try:
            self._control.sendall(f"wait {pid}".encode())
            return int(self._control.recv(64))
        except (OSError, ValueError):
            return None

    @property
    def _log_fd(self) -> int:
        if self._log is None:
            raise RuntimeError("this TensorFlow process handle is closed")
        return self._log

    def _stderr_since(self, offset: int) -> str:
        size = os.fstat(self._log_fd).st_size
        text = os.pread(self._log_fd, max(size - offset, 0), offset).decode("utf-8", "replace")
        noise = ("@", "I0000", "W0000", "WARNING: All log messages", "*** Check failure stack trace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(noise)]
        return "\n".join(lines[-4:])

    def call(self, op: str, args: tuple, kwargs: dict, timeout: float = CALL_TIMEOUT_S, mode: str = "eager") -> Result:
        if self._conn is None:
            self._start()
        conn = self._conn
        if conn is None:  # _start sets it or raises
            raise RuntimeError("no connection to a TensorFlow server")
        offset = os.fstat(self._log_fd).st_size
        try:
            wire.send(conn, [op, args, kwargs, mode])
            if wire.ready(conn, timeout):
                return message_result(wire.receive(conn))
            os.kill(self._pid, signal.SIGKILL)
            how = f"timed out after {timeout:g} s"
        except (EOFError, OSError):  # the server died (EOF, broken pipe, connection reset)
            how = None
        conn.close()
        self._conn = None
        code = self._exit_code(self._pid)
        return Died(
            how or ("exited (status unknown)" if code is None else _describe_exit(code)), self._stderr_since(offset)
        )

    def retire(self) -> None:
        """End the server (not the zygote): the next call gets a fresh fork, whatever this one's memory holds."""
        if os.getpid() != self.owner or self._conn is None:
            return
        self._conn.close()
        self._conn = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        self._exit_code(self._pid)

    def close(self) -> None:
        if os.getpid() != self.owner:  # a forked copy: the server and zygote are its parent's to end
            return
        if self._conn is not None:
            self._conn.close()  # the server sees EOF and exits
            self._conn = None
        if self._zygote is not None:
            if self._control is not None:  # set with the zygote
                self._control.close()  # the zygote sees EOF and exits
            try:
                self._zygote.wait(5)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
            self._zygote = None
        if self._log is not None:
            os.close(self._log)
            self._log = None


_process: TFProcess | None = None


def restart() -> None:
    """End this process's TensorFlow server and zygote: the next call starts fresh ones, which read the environment
    (``TF_ENABLE_ONEDNN_OPTS``, ``ONEDNN_MAX_CPU_ISA``) anew."""
    global _process
    if _process is not None:
        _process.close()
        _process = None


def retire_server() -> None:
    """Replace this process's TensorFlow server by a fresh fork before the next call: for a call known to abort
    (a known divergence says so), which may corrupt the server's memory without dying and kill a later call."""
    if _process is not None and _process.owner == os.getpid():
        _process.retire()


def answer_key(op: str, args: tuple, kwargs: dict, mode: str = "eager") -> str:
    """The name of a call's recorded answer: a hash of everything the call sends, and of the server's interpreter
    (another TensorFlow answers differently)."""
    request = wire.encode([op, args, sorted(kwargs.items()), mode, versions.server_python()])
    return hashlib.sha256(request).hexdigest()


def _recorded(directory: str, key: str) -> Result | None:
    try:
        return message_result(wire.decode(Path(directory, key).read_bytes()))
    except FileNotFoundError:
        return None


def _record(directory: str, key: str, result: Result) -> None:
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{key}.{os.getpid()}")
    Path(tmp).write_bytes(wire.encode(result_message(result)))
    os.replace(tmp, os.path.join(directory, key))


def call_tensorflow(op: str, args: tuple, kwargs: dict, mode: str = "eager") -> Result:
    """Run ``harness.wrappers.<op>(*args, **kwargs)`` (``mode``: eager, function or xla; see ``wrappers.call``),
    isolated unless HARNESS_TF_ISOLATION=0; answered from HARNESS_TF_REPLAY and stored in HARNESS_TF_RECORD when
    they are set (see the module's docstring)."""
    global _process
    replay, record = os.environ.get(REPLAY_ENV), os.environ.get(RECORD_ENV)
    key = answer_key(op, args, kwargs, mode) if replay or record else ""
    if replay:
        found = _recorded(replay, key)
        if found is not None:
            return found
    if os.environ.get(ISOLATION_ENV, "1") == "0":
        result = _call(op, args, kwargs, mode)
    else:
        if _process is None or _process.owner != os.getpid():  # a forked child never shares its parent's server
            _process = TFProcess()
            atexit.register(_process.close)
        result = _process.call(op, args, kwargs, mode=mode)
    if record:
        _record(record, key, result)
    return result


if __name__ == "__main__":
    _zygote(socket.socket(fileno=int(sys.argv[1])))
