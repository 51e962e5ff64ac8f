"""Pieces the relaxation engines share: tightened bounds per case, empty outputs, decided rows."""
from __future__ import annotations

import math
import time
from typing import Any, Mapping

import numpy as np

from optcert.certify import EngineOutput
from optcert.compiled import CompiledCase
from optcert.solve.progressive import Tightening, tighten

TIGHTEN_SHARE = 0.8   # of an engine's time left, the most its per-neuron tightening may take


def tightened(cc: CompiledCase, level: Tightening, backend: str, deadline: float, certificate: dict,
              neuron_time_limit: float = 2.0, raw: Mapping[str, Any] | None = None,
              layer_time_limit: float | None = None):
    """`cc`'s bounds tightened up to `level` (per-neuron solves on `backend` with native
    parameters `raw`, at most `layer_time_limit` seconds of them per layer); logged in `certificate`.
    Of a finite budget the tightening takes at most TIGHTEN_SHARE, so that the engine's own
    solves still run over whatever bounds it reached."""
    now = time.monotonic()
    until = now + TIGHTEN_SHARE * (deadline - now) if math.isfinite(deadline) else deadline
    bounds, report = tighten(cc.net, cc.ibp, level, backend, neuron_time_limit=neuron_time_limit,
                             deadline=until, raw=raw, layer_time_limit=layer_time_limit)
    certificate.setdefault("tightening", []).append(
        {"case": cc.index, "level": level.value, "seconds": report.seconds, "solves": report.solves,
         "unstable": report.unstable, "solver_trusted": report.solver_trusted,
         "skipped": report.skipped, **({"stopped": report.stopped} if report.stopped else {})})
    return bounds


def empty_output(compiled: list[CompiledCase], certificate: dict) -> EngineOutput:
    """No bound yet on any row (−inf) and no direct case bound."""
    return EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf) for cc in compiled],
                        case_lower=[None] * len(compiled), certificate=certificate)


def decided(out: EngineOutput, cc: CompiledCase, clause: tuple[int, ...]) -> bool:
    """Is the clause already certified safe (some row of it has a positive lower bound)?"""
    return bool(out.lower[cc.index][list(clause)].max() > 0)


def lp_floor(out: EngineOutput, cc: CompiledCase, bounds, deadline: float) -> None:
    """Raise every row's lower bound to the certified LP-triangle bound (Ehlers 2017) over `bounds`.

    The SDP with the LP-chord cuts (lowerings/quadratic.py) contains the LP's constraints, so its
    optimum is at least the LP's: the SDP/BM engines report the better of the two certificates,
    and never less than the LP they could get for a fraction of a second."""
    from optcert.engines.lp_evidence import floor_item
    from optcert.lowerings import Objective, lower_lp
    from optcert.solve.linear import solve_bound

    for row in range(cc.case.spec.rows):
        if decided(out, cc, (row,)):
            continue
        lowered = lower_lp(cc.net, bounds, Objective((row,)))
        result = solve_bound(lowered.form, "highs", deadline=deadline)
        if np.isfinite(result.value):
            out.lower[cc.index][row] = max(out.lower[cc.index][row], result.value)
        floor_item(out, cc, bounds, lowered, result, row)
