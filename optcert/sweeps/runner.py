"""Run sweep tasks in a child process with a hard time limit and a memory limit.

`ChildRunner` keeps one child Python process (`sweep_child.main`) and sends it one task at a
time; the child is reused while it behaves (imports are paid once) and is killed — its whole
process group, SIGKILL — when a task overruns `timeout * 1.1 + grace` seconds (TIMEOUT) or its
resident set grows past `memory_mb` (FAILED, checked every 50 ms from /proc). A child that dies
(segfault, os._exit, OOM killer) is a FAILED outcome; the next task starts a fresh child.

A subprocess rather than `multiprocessing`: it works inside daemonic dask workers (which may
not have multiprocessing children) and never re-imports the caller's `__main__`. The child gets
this process's `sys.path`, and OMP_NUM_THREADS=1 unless the environment sets it (torch then uses
one thread per task, the steady choice when tasks already run in parallel).
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from optcert.sweeps.child import receive, send
from optcert.sweeps.store import RunStatus, software_versions
from optcert.sweeps.types import Outcome, Task

STARTUP_SECONDS = 120.0
POLL_SECONDS = 0.05
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def rss_mb(pid: int) -> float:
    """Resident set size of process `pid` in MiB (0 when it cannot be read, e.g. not on Linux)."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def hard_limit(task: Task, grace: float) -> float:
    """Seconds after which `task` is killed: its timeout plus 10 % plus `grace`."""
    return task.timeout * 1.1 + grace


class ChildRunner:
    """One reusable child process that runs tasks under hard limits. Close it when done."""

    def __init__(self, grace: float = 5.0):
        self.grace = grace
        self.versions = software_versions()
        self._proc: subprocess.Popen | None = None

    def _start(self) -> str | None:
        """Start a child; None when it is ready, else why it failed."""
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen([sys.executable, "-c", "from optcert.sweeps.child import main; main()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      start_new_session=True)
        try:
            send(self._fd("stdin"), {"sys_path": list(sys.path)})
        except OSError as err:
            return self._stop(f"worker process could not start: {err}")
        reply, _, why = self._wait(STARTUP_SECONDS, None)
        if reply is None or reply[0] != "hello":
            return self._stop(f"worker process could not start: {why or reply!r}")
        self.versions = reply[1]
        return None

    def _child(self) -> subprocess.Popen:
        assert self._proc is not None, "no child process is running"
        return self._proc

    def _fd(self, which: str) -> int:
        """The file descriptor of the running child's stdin or stdout."""
        pipe = getattr(self._child(), which)
        assert pipe is not None
        return pipe.fileno()

    def _wait(self, limit: float, memory_mb: int | None) -> tuple[Any, RunStatus, str]:
        """(message, DONE, "") with the child's next message, or (None, TIMEOUT/FAILED, why) when it
        overran `limit` seconds, outgrew `memory_mb` or died."""
        fd, start = self._fd("stdout"), time.monotonic()
        while True:
            ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
            if ready:
                message = receive(fd)
                if message is None:
                    return None, RunStatus.FAILED, self._death()
                return message, RunStatus.DONE, ""
            elapsed = time.monotonic() - start
            if elapsed > limit:
                return None, RunStatus.TIMEOUT, f"killed after {elapsed:.1f} s"
            if memory_mb is not None and (rss := rss_mb(self._child().pid)) > memory_mb:
                return None, RunStatus.FAILED, f"memory limit: resident set {rss:.0f} MiB > {memory_mb} MiB"

    def _death(self) -> str:
        code = self._child().wait()
        if code < 0:
            return f"worker process died of signal {signal.Signals(-code).name}"
        return f"worker process exited with code {code}"

    def _stop(self, why: str = "") -> str:
        """Kill the child's process group (if alive) and forget it; returns `why`."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                try:
                    if pipe is not None:
                        pipe.close()
                except OSError:
                    pass
        return why

    def run(self, task: Task) -> Outcome:
        """Run `task` in the child under its limits; never raises for a failing task."""
        if self._proc is not None and self._proc.poll() is not None:
            self._stop()  # died while idle (e.g. its parent thread ended): start a fresh one
        if self._proc is None and (why := self._start()) is not None:
            return Outcome.failed(why)
        start = time.monotonic()
        try:
            send(self._fd("stdin"), (task.function, task.args))
        except OSError as err:
            return Outcome.failed(self._stop(f"worker process gone: {err}"))
        reply, status, why = self._wait(hard_limit(task, self.grace), task.memory_mb)
        seconds = time.monotonic() - start
        if reply is None:
            if status is RunStatus.TIMEOUT:
                why += f" (timeout {task.timeout:g} s + grace)"
            return Outcome(status, None, self._stop(why), seconds, self.versions)
        kind, payload, task_seconds = reply
        if kind == "ok":
            return Outcome(RunStatus.DONE, payload, payload.reason, task_seconds, self.versions)
        return Outcome(RunStatus.FAILED, None, str(payload), task_seconds, self.versions)

    def close(self) -> None:
        """End the child: EOF on its stdin, then SIGKILL if it has not left within a second."""
        if self._proc is not None:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
                self._proc.wait(1.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._stop()

    def __enter__(self) -> "ChildRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
