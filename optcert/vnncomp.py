"""VNN-COMP entry point: one (network, property) instance with a wall-clock budget → result file.

`run_instance(onnx_path, vnnlib_path, result_path, timeout)` loads the network and property,
runs the `bnb` engine on whatever time is left of `timeout` (loading counts, as in the
competition), writes the competition's result file (`Result.write_vnncomp`: `unsat`, `sat` with
the input/output assignment, `timeout` or `unknown`) and returns the `Result`.

A typed error (unreadable file, unsupported operator, bad property, bad option) writes `error`
to the result file and is re-raised, so a caller (the CLI) reports it with its exit code.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

from optcert.errors import InvalidOptionError, OptcertError
from optcert.result import Result

ENGINE = "bnb"
SETUP_RESERVE = 0.08   # fraction of the budget left for process start, writing the result and slack


def run_instance(onnx_path: str | Path, vnnlib_path: str | Path, result_path: str | Path, timeout: float,
                 options: Mapping[str, Any] | None = None, engine: str = ENGINE, threads: int | None = 1) -> Result:
    """Verify one instance within `timeout` seconds (see module doc). `threads`: torch threads
    (torch and BLAS, see threads.py; None leaves them as they are)."""
    start = time.monotonic()
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
        remaining = timeout * (1 - SETUP_RESERVE) - (time.monotonic() - start)
        result = verify(problem, engine, max(remaining, 1e-3), options)
    except OptcertError:
        result_path.write_text("error\n")
        raise
    result.write_vnncomp(result_path)
    return result
