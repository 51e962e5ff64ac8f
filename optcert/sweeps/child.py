"""The child process that runs sweep tasks, and the message framing both sides use.

The parent (`sweep_runner.ChildRunner`) starts `python -c "from optcert.sweeps.child import main; main()"`
with pipes on stdin/stdout. Messages are pickles preceded by an 8-byte length. The child moves
the protocol to private file descriptors first, so whatever a task prints goes to stderr and
cannot corrupt the protocol. Protocol:
  parent → child: {"sys_path": [...]} once, then (function, args) per task;
  child → parent: ("hello", versions_json, pid) once, then ("ok", TaskOutput, seconds) or
  ("error", text, seconds) per task. EOF on stdin ends the child; on Linux so does the death of
  the parent thread that started it (PR_SET_PDEATHSIG), which the parent notices and restarts.
"""
from __future__ import annotations

import importlib
import os
import pickle
import signal
import struct
import sys
import time
import traceback
from typing import Any

_HEADER = struct.Struct("<Q")


def send(fd: int, message: object) -> None:
    """Write one framed pickle to `fd` (raises OSError when the other side is gone)."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd: int) -> Any:
    """Read one framed pickle from `fd`; None at end of file (the other side closed or died)."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    payload = _read_exactly(fd, _HEADER.unpack(header)[0])
    return None if payload is None else pickle.loads(payload)


def _resolve(function: str):
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


def _describe(err: BaseException) -> str:
    """"Type: message (at file:line)" for the innermost frame of `err`."""
    text = "".join(traceback.format_exception_only(type(err), err)).strip()
    frames = traceback.extract_tb(err.__traceback__)
    if frames:
        text += f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"
    return text


def run_task(function: str, args: tuple) -> tuple:
    """Call `function(*args)`; ("ok", output, seconds) or ("error", description, seconds)."""
    from optcert.sweeps.types import TaskOutput

    start = time.perf_counter()
    try:
        output = _resolve(function)(*args)
    except Exception as err:  # a failing task is a record, not a crash
        return "error", _describe(err), time.perf_counter() - start
    seconds = time.perf_counter() - start
    if not isinstance(output, TaskOutput):
        return "error", f"{function} returned {type(output).__name__}, not TaskOutput", seconds
    return "ok", output, seconds


def _reply(fd: int, message: tuple) -> None:
    try:
        send(fd, message)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        send(fd, ("error", f"output cannot be sent back: {type(err).__name__}: {err}", message[2]))


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so a killed sweep leaves no orphan running a long task."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def main() -> None:
    """Serve tasks from the parent until it closes our stdin (or dies)."""
    _die_with_parent()
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    setup = receive(proto_in)
    if setup is None:
        return
    sys.path[:] = list(setup["sys_path"])
    from optcert.sweeps.store import software_versions

    send(proto_out, ("hello", software_versions(), os.getpid()))
    while (message := receive(proto_in)) is not None:
        function, args = message
        _reply(proto_out, run_task(function, args))
