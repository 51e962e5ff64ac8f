"""SDP engines: `sdp` (the full SDP relaxation, Raghunathan et al. 2018, solved by a conic
backend) and `bm` (its rank-r Burer–Monteiro restriction, Chiu & Zhang 2023; engines/bm.py,
re-exported here). Both use the tight lowering (lowerings/quadratic.py), bound every spec row
separately (an ANY case takes the best row, valid since min_x max_i m_i ≥ max_i min_x m_i) and
prove only from `sdp_certificate.certify`, which turns whatever multipliers the solver returned
into a rigorous bound. The certificate of each row
records the local primal value (an estimate of the SDP optimum), the certified bound, their
difference, λ, the trace bound and the multipliers, so the bound can be re-checked offline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from optcert.certify import EngineOutput
from optcert.compiled import CompiledCase
from optcert.engines.bm import BmOptions, run_bm
from optcert.engines.common import decided, empty_output, tightened
from optcert.engines.sdp_rows import certify_row, floors, remaining, start_sources, timed_out
from optcert.errors import InvalidOptionError
from optcert.forms import Limits, SolveStatus
from optcert.lowerings.quadratic import ActiveMode, input_point, relu_qcqp
from optcert.lowerings.sdp_full import lower_sdp, multipliers, primal_matrix
from optcert.solve.progressive import Tightening
from optcert.spec.problem import VerificationProblem

__all__ = ["BmOptions", "SdpOptions", "run_bm", "run_sdp"]


@dataclass(frozen=True)
class SdpOptions:
    """`bounds`: intermediate bounds (they shape the boxes and drop inactive neurons);
    `backend`: scs | clarabel | mosek; `hidden_boxes`: quadratic boxes on every hidden layer
    (needed for a finite trace bound, hence for any certificate whose dual slack is not PSD);
    `triangle`: the LP chord of every unstable neuron as a linear cut (then the SDP is at least
    as tight as the LP over the same bounds; lowerings/quadratic.py); `active`: how stably active
    neurons enter (substitute | lift | equation, lowerings/quadratic.py)."""

    bounds: Tightening = Tightening.CROWN
    backend: str = "scs"
    hidden_boxes: bool = True
    triangle: bool = True
    active: ActiveMode = ActiveMode.SUBSTITUTE

    def __post_init__(self):
        _check_backend(self.backend, "conic")


def _check_backend(name: str, kind: str) -> None:
    from solvers import names

    if name not in names():
        raise InvalidOptionError(f"option 'backend': unknown solver {name!r}; known: {', '.join(names())}")


def run_sdp(problem: VerificationProblem, compiled: list[CompiledCase], options: SdpOptions,
            deadline: float) -> EngineOutput:
    """Full SDP per spec row; bounds certified from the conic duals."""
    from solvers import get

    backend = get(options.backend)
    out = empty_output(compiled, {"method": "full SDP (Raghunathan et al. 2018)", "backend": options.backend,
                                  "hidden_boxes": options.hidden_boxes, "triangle": options.triangle,
                                  "active": options.active.value})
    start_sources(out, compiled)
    for cc in compiled:
        bounds = tightened(cc, options.bounds, "highs", deadline, out.certificate)
        floors(out, cc, bounds, options.bounds, options.triangle, deadline)
        for row in range(cc.case.spec.rows):
            if time.monotonic() > deadline:
                timed_out(out, f"case {cc.index} rows {row}.. not started")
                return out
            if not decided(out, cc, (row,)):
                _sdp_row(out, cc, bounds, row, backend, options, deadline)
    return out


def _sdp_row(out: EngineOutput, cc: CompiledCase, bounds, row: int, backend, options: SdpOptions,
             deadline: float) -> None:
    lowered = relu_qcqp(cc.net, bounds, row, options.hidden_boxes, options.triangle, options.active)
    conic = lower_sdp(lowered.form)
    solution = backend.solve(conic.form, Limits(time_limit=remaining(deadline, 0.9)))
    entry = {"case": cc.index, "row": row, "status": solution.status.value, "N": conic.info["N"],
             "seconds": round(solution.seconds, 3), "primal": solution.objective, "message": solution.message}
    if solution.row_duals is not None:
        y = multipliers(conic, solution.row_duals)
        lam = solution.bound if solution.bound is not None else solution.objective
        entry.update(certify_row(out, cc, row, lowered.form, y, lam, solution.objective,
                                 max(deadline, time.monotonic() + 1.0), "sdp"))
    if solution.x is not None and solution.status is not SolveStatus.ERROR:
        P = primal_matrix(conic, solution.x)
        out.candidates.append((cc.index, input_point(lowered, P[0, 1:] / max(P[0, 0], 1e-300))))
    out.certificate.setdefault("rows", []).append(entry)
    if solution.status is SolveStatus.TIME_LIMIT:
        timed_out(out, f"case {cc.index} row {row}: the SDP solver stopped at its time limit")
