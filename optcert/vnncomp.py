"""VNN-COMP entry point: one (network, property) instance with a wall-clock budget → result file.

`run_instance(onnx_path, vnnlib_path, result_path, timeout)` loads the network and property,
runs the `auto` portfolio on whatever time is left of `timeout`, writes the competition's result
file (`Result.write_vnncomp`: `unsat`, `sat` with the input/output assignment, `timeout` or
`unknown`) and returns the `Result`.

The budget counts from the start of the *process* (as the competition measures it: interpreter
start and `import torch` included), read from /proc on Linux (`process_age`); the engine gets
`engine_budget(timeout, elapsed)` = what is left less a reserve for writing the result, the
interpreter's exit and the engine's last step overrunning its deadline.

A typed error (unreadable file, unsupported operator, bad property, bad option) writes `error`
to the result file and is re-raised, so a caller (the CLI) reports it with its exit code.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

from optcert.errors import InvalidOptionError, OptcertError
from optcert.result import Result

ENGINE = "auto"
RESERVE_SHARE = 0.05     # of the budget, kept for the result file, exit and the engine's overrun
RESERVE_SECONDS = 0.4    # … plus this
MIN_ENGINE = 1e-3


def process_age() -> float:
    """Seconds since this process started (Linux: /proc/self/stat start time against
    /proc/uptime); 0.0 where that cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / ticks)
    except (OSError, ValueError, IndexError, KeyError):
        return 0.0


def process_started() -> float:
    """The time.monotonic() reading at which this process started."""
    return time.monotonic() - process_age()


def engine_budget(timeout: float, elapsed: float) -> float:
    """Seconds the engine may use when `elapsed` seconds of `timeout` are gone (never below
    MIN_ENGINE, so an instance whose loading ate the budget still ends with a result)."""
    reserve = RESERVE_SHARE * timeout + RESERVE_SECONDS
    return max(MIN_ENGINE, timeout - elapsed - reserve)


def run_instance(onnx_path: str | Path, vnnlib_path: str | Path, result_path: str | Path, timeout: float,
                 options: Mapping[str, Any] | None = None, engine: str = ENGINE, threads: int | None = 1,
                 started: float | None = None) -> Result:
    """Verify one instance within `timeout` seconds (see module doc). `threads`: torch threads
    (torch and BLAS, see threads.py; None leaves them as they are). `started`: the
    time.monotonic() at which the budget began (default: this call; the `optcert vnncomp` command
    passes the process start, `process_started()`)."""
    start = started if started is not None else time.monotonic()
    if not (timeout > 0 and math.isfinite(timeout)):
        raise InvalidOptionError(f"timeout must be a positive number of seconds, got {timeout}")
    if threads is not None:
        from optcert.threads import limit_threads

        limit_threads(threads)
    result_path = Path(result_path)
    try:
        from optcert.ir.load import load_network
        from optcert.spec.vnnlib import read_vnnlib
        from optcert.verify import verify

        network = load_network(onnx_path)
        problem = read_vnnlib(vnnlib_path).problem(network, name=Path(vnnlib_path).stem)
        result = verify(problem, engine, engine_budget(timeout, time.monotonic() - start), options)
    except OptcertError:
        result_path.write_text("error\n")
        raise
    result.write_vnncomp(result_path)
    return result
