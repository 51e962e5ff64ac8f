"""The `bm` engine on the torch backend (solvers/torch_lowrank.py): all open rows of a case in one
batched augmented-Lagrangian solve (the GPU path), then the rank staircase per row; every rank's
multipliers are certified and the best bound kept (engines/bm.py has the method) — at every outer
iteration of the augmented Lagrangian too, so a time limit keeps the best multipliers seen, and a row
stops once they certify its iterate's value within `gap`."""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from optcert.certify import EngineOutput
from optcert.compiled import CompiledCase
from optcert.engines.sdp_rows import certify_row, negative_direction, remaining, timed_out
from optcert.forms import Limits, SolveStatus
from optcert.lowerings.quadratic import input_point, relu_qcqp


def torch_case(out: EngineOutput, cc: CompiledCase, bounds, rows: list[int], starts: dict, options,
               deadline: float) -> None:
    """Batched first rank for `rows`, then each row's staircase."""
    from optcert.lowerings.sdp_lowrank import lower_lowrank
    from solvers.torch_lowrank import BACKEND, LowRankOptions

    depth = len(cc.net.layers)
    rank = options.rank or depth + 1
    max_rank = max(options.max_rank or depth + 6, rank)
    lowered = [relu_qcqp(cc.net, bounds, r, options.hidden_boxes, options.triangle, options.active) for r in rows]
    model = lowered[0].form
    if len(rows) > 1 and any(not (np.array_equal(lw.form.slot_row, model.slot_row)
                                  and np.array_equal(lw.form.slot_col, model.slot_col)) for lw in lowered):
        for r in rows:   # objectives reaching different slots: one solve per row
            torch_case(out, cc, bounds, [r], starts, options, deadline)
        return
    centre = cc.case.box.center
    init = np.stack([lower_lowrank(lw, cc.net, starts.get(r, centre), rank).form.start()
                     for lw, r in zip(lowered, rows)])
    settings = LowRankOptions(device=options.device, precision=options.precision, tolerance=options.tolerance)
    objectives = np.stack([lw.form.objective for lw in lowered])
    solutions = BACKEND.solve_batch(model, objectives, rank, init, Limits(time_limit=remaining(deadline, 0.8)),
                                    settings, monitors=[_Monitor(out, cc, r, lw.form, options.gap)
                                              for lw, r in zip(lowered, rows)])
    for lw, row, solution in zip(lowered, rows, solutions):
        _staircase(out, cc, lw, row, solution, rank, max_rank, settings, options.gap, deadline)


def _staircase(out: EngineOutput, cc: CompiledCase, lowered, row: int, solution, rank: int, max_rank: int,
               settings, gap: float, deadline: float) -> None:
    """Certify; while the certificate is loose, add a column along the slack's most negative
    eigenvector and re-solve from there (Boumal et al. 2016)."""
    from optcert.lowerings.sdp_lowrank import add_direction
    from solvers.torch_lowrank import BACKEND, unflatten

    model = lowered.form
    while True:
        entry: dict[str, Any] = {"case": cc.index, "row": row, "rank": rank, "status": solution.status.value,
                 "seconds": round(solution.seconds, 3), "primal": solution.objective, "message": solution.message,
                 "max_violation": solution.stats.get("max_violation")}
        U = unflatten(solution, model.n, rank) if solution.x is not None else None
        if U is not None:
            out.candidates.append((cc.index, input_point(lowered, U[1:, 0])))
        if solution.row_duals is None:
            out.certificate.setdefault("rows", []).append({**entry, "note": "no multipliers"})
            return
        entry.update(certify_row(out, cc, row, model, solution.row_duals, solution.objective, solution.objective,
                                 max(deadline, time.monotonic() + 1.0), "bm"))
        out.certificate.setdefault("rows", []).append(entry)
        if solution.status is SolveStatus.TIME_LIMIT or time.monotonic() > deadline:
            timed_out(out, f"case {cc.index} row {row} stopped at rank {rank}")
            return
        loose = entry.get("gap", math.inf) > gap * (1 + abs(solution.objective or 0.0))
        if out.lower[cc.index][row] > 0 or not loose or rank >= max_rank or U is None:
            return
        direction = negative_direction(model, solution.row_duals, entry["lambda"])
        rank += 1
        U = add_direction(U, direction)
        solution = BACKEND.solve_batch(model, model.objective[None], rank, U[None],
                                       Limits(time_limit=remaining(deadline, 0.8)), settings,
                                       duals=solution.row_duals, monitors=[_Monitor(out, cc, row, model, gap)])[0]


class _Monitor:
    """After each outer iteration: certify the multipliers (certificates/sdp.certify, a short λ
    search) and keep the best bound as the row's; True (stop this rank) once the bound is within
    `gap`·(1 + |primal|) of the iterate's value, as the staircase's own test."""

    def __init__(self, out: EngineOutput, cc: CompiledCase, row: int, model, gap: float):
        self.out, self.cc, self.row, self.model, self.gap = out, cc, row, model, gap

    def __call__(self, y: np.ndarray, objective: float) -> bool:
        from optcert.certificates.sdp import certify
        from optcert.engines.sdp_rows import raise_row

        cert = certify(self.model, y, objective, deadline=time.monotonic() + 2.0, primal=objective)
        raise_row(self.out, self.cc, self.row, cert.bound, "bm")
        return bool(objective - cert.bound <= self.gap * (1 + abs(objective)))
