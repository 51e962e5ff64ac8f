"""`verify(problem, engine, timeout, options) -> Result`: run one engine (see
`engines.registry`) and turn its output into a certified Result. Verdicts come only from
`certify.conclude`.

The time limit is honest: when the engine overruns `timeout` or says it stopped at a limit, the
result has `timed_out` set and its reason says so. Every result carries its provenance
(`optcert.provenance`): the input files come from `problem.meta["inputs"]` ({role: path}) and from
`inputs`, the command line from `command`.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Mapping

from optcert.certify import EngineOutput, conclude
from optcert.checking.evidence import seal
from optcert.compiled import CompiledCase, compile_problem
from optcert.engines.registry import DEFAULT_ENGINE, ENGINES, Engine, engine_from, engine_options
from optcert.errors import InvalidOptionError
from optcert.options import options_dict
from optcert.provenance import provenance
from optcert.result import Result
from optcert.spec.problem import VerificationProblem


def verify(problem: VerificationProblem, engine: Engine | str = DEFAULT_ENGINE, timeout: float = 60.0,
           options: Mapping[str, Any] | Any | None = None,
           compiled: list[CompiledCase] | None = None, *,
           inputs: Mapping[str, str | Path | None] | None = None, command: str | None = None) -> Result:
    """Run `engine` on `problem` within `timeout` seconds and return a certified `Result`."""
    start = time.monotonic()    # before the options: building them may import torch (seconds under load)
    engine = engine_from(engine)
    if isinstance(timeout, bool) or not (timeout > 0):
        raise InvalidOptionError(f"timeout must be a positive number of seconds, got {timeout!r}")
    opts = engine_options(engine, options)
    deadline = start + timeout if math.isfinite(timeout) else math.inf
    timings: dict[str, float] = {}
    if compiled is None:
        compiled = compile_problem(problem)
        timings["compile"] = time.monotonic() - start
    t = time.monotonic()
    try:
        out = ENGINES[engine].run(problem, compiled, opts, deadline)
    except MemoryError:
        out = EngineOutput(lower=[cc.ibp.lower[-1] * 0 - math.inf for cc in compiled],
                           reason="out of memory")
    timings["engine"] = time.monotonic() - t
    if time.monotonic() > deadline:
        out.timed_out = True
        if "time" not in out.reason.lower():
            out.reason = "; ".join(r for r in (out.reason, f"time limit of {timeout:g} s reached") if r)
    t = time.monotonic()
    seal(out.certificate, problem.cases)
    result = conclude(problem, compiled, out, engine.value, options_dict(opts), timings)
    files = {**dict(problem.meta.get("inputs") or {}), **dict(inputs or {})}
    return dataclasses.replace(result, timings={**result.timings, "certify": time.monotonic() - t},
                               provenance=provenance(timeout, files, command))
