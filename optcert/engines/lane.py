"""The `auto` portfolio's solver lane: its HiGHS arm (the MILP, or the per-neuron LP tightening)
runs in a worker thread beside the search arms, so a machine with two cores runs both at once.

Why a thread suffices: HiGHS releases the GIL while it solves (measured on this 2-core VM: an LP
solve in a worker thread took 0.160 s beside a busy Python loop, 0.158 s alone), and the arm's
own Python work between solves is small. The search arms stay in the calling thread (torch search
arms in two threads contend for the GIL: ACAS Xu 4_9 prop_1's input splitting took 13.7 s of CPU
beside a ReLU-splitting thread against 10.2 s alone). HiGHS runs instances in several user threads
with a task scheduler per thread (ERGO-Code/HiGHS#818); only re-sizing its global scheduler is
unsafe then (HiGHS#3141), which optcert does only when a `threads` limit is asked for, never here.

How it stops: a tightening arm is advanced in short pieces (it pauses solve by solve, losing
nothing), checking the stop flag between them, and its CROWN passes, which may outlast a piece
(4–8 s on a 16,000-ReLU CNN), ask the flag before each layer; a MILP, which would lose its tree if cut short, is
given the case's whole deadline and stopped through HiGHS's interrupt callback
(`Limits.interrupt`) when the portfolio decides. HiGHS polls it in its branch-and-bound loop and
its LP solves, but not everywhere: measured on an ACAS Xu MILP (637 columns, 192 binaries), a stop
asked within the first seconds (presolve, root cuts) took effect in 0.01–0.2 s, one asked during
its sub-MIP heuristics (RINS/RENS) or a root restart 1.0–2.4 s later. `finish` waits for the worker
to end: a worker left inside HiGHS when the interpreter exits aborts the process, and the MILP's
own time limit (the case's deadline) bounds the wait.
Whatever the arm proves or finds is in its `state`, read by the portfolio between its own turns
(numpy arrays replaced whole, so a read never sees half a write); candidate inputs go through the
case's `check`, which serialises its callers. An exception in the worker is a bug, not a result:
`finish` raises it in the calling thread.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

PIECE = 0.25     # seconds: a resumable arm is advanced in pieces this long between stop checks
LAST = 0.1       # seconds: no piece is started with less than this left


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:        # not Linux
        return os.cpu_count() or 1


class SolverLane:
    """One arm (`MilpArm` or `TightenArm`, engines/arms.py) advanced in a worker thread until it
    ends, `deadline` passes, or `finish` is called."""

    def __init__(self, arm: Any, deadline: float):
        self.arm, self.deadline = arm, deadline
        self.stop = threading.Event()
        self.error: BaseException | None = None
        if hasattr(arm, "interrupt"):
            arm.interrupt = self.stop.is_set
        self.tightening = getattr(arm, "tightening", None)   # its bound passes stop on the flag too
        if self.tightening is not None:
            self.tightening.interrupt = self.stop.is_set
        self.thread = threading.Thread(target=self._run, name=f"optcert-{arm.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.arm.name

    def start(self) -> None:
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        try:
            while not self.stop.is_set() and self.deadline - time.monotonic() > LAST:
                until = min(self.deadline, time.monotonic() + PIECE) if self.arm.resumable else self.deadline
                status = self.arm.advance(until)
                if status is not None and status != "timeout":
                    return
        except BaseException as err:     # re-raised by finish() in the calling thread
            self.error = err

    def wait(self, seconds: float) -> None:
        """Block until the worker ends or `seconds` pass."""
        self.thread.join(max(seconds, 0.0))

    def finish(self) -> None:
        """Stop the worker and wait until it has ended (module doc); raise what it raised."""
        self.stop.set()
        if self.thread.ident is not None:
            self.thread.join()
        if self.tightening is not None:          # shared with the portfolio, which may go on with it
            self.tightening.interrupt = None
        if self.error is not None:
            raise self.error
