"""SDP engines: `sdp` (the full SDP relaxation, Raghunathan et al. 2018, solved by a conic
backend) and `bm` (its rank-r Burer–Monteiro restriction, Chiu & Zhang 2023, solved locally in
torch). Both bound every spec row separately (an ANY case takes the best row, valid since
min_x max_i m_i ≥ max_i min_x m_i) and prove only from `sdp_certificate.certify`, which turns
whatever multipliers the solver returned into a rigorous bound. The certificate of each row
records the local primal value (an estimate of the SDP optimum), the certified bound, their
difference, λ, the trace bound and the multipliers, so the bound can be re-checked offline.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..bounds.progressive import Tightening
from ..certify import EngineOutput
from ..compiled import CompiledCase
from ..errors import InvalidOptionError
from ..forms import Limits, SolveStatus
from ..lowerings.quadratic import relu_qcqp
from ..lowerings.sdp_full import lower_sdp, multipliers, primal_matrix
from ..sdp_certificate import certify
from ..spec import VerificationProblem
from .common import decided, empty_output, tightened

_MAX_STORED_MULTIPLIERS = 20_000


@dataclass(frozen=True)
class SdpOptions:
    """`bounds`: intermediate bounds (they shape the boxes and drop inactive neurons);
    `backend`: scs | clarabel | mosek; `hidden_boxes`: quadratic boxes on every hidden layer
    (needed for a finite trace bound, hence for any certificate whose dual slack is not PSD)."""

    bounds: Tightening = Tightening.CROWN
    backend: str = "scs"
    hidden_boxes: bool = True

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
                                  "hidden_boxes": options.hidden_boxes})
    for cc in compiled:
        bounds = tightened(cc, options.bounds, "highs", deadline, out.certificate)
        out.lower[cc.index] = np.maximum(out.lower[cc.index], bounds.lower[-1])
        for row in range(cc.case.spec.rows):
            if time.monotonic() > deadline:
                out.reason, out.timed_out = "time limit reached", True
                return out
            if decided(out, cc, (row,)):
                continue
            lowered = relu_qcqp(cc.net, bounds, row, options.hidden_boxes)
            conic = lower_sdp(lowered.form)
            solution = backend.solve(conic.form, Limits(time_limit=_remaining(deadline)))
            entry = {"case": cc.index, "row": row, "status": solution.status.value,
                     "seconds": round(solution.seconds, 3), "primal": solution.objective, "message": solution.message}
            if solution.row_duals is not None:
                y = multipliers(conic, solution.row_duals)
                lam = solution.bound if solution.bound is not None else solution.objective
                entry.update(_certify(out, cc, row, lowered.form, y, lam, solution.objective))
            if solution.x is not None and solution.status is not SolveStatus.ERROR:
                P = primal_matrix(conic, solution.x)
                out.candidates.append((cc.index, P[0, 1:1 + cc.net.n_inputs] / max(P[0, 0], 1e-300)))
            out.certificate.setdefault("rows", []).append(entry)
    return out


def _certify(out: EngineOutput, cc: CompiledCase, row: int, model, y, lam, primal) -> dict:
    """Certify row `row` from multipliers y; fold the bound into `out`; the certificate entry."""
    t = time.perf_counter()
    cert = certify(model, y, lam)
    out.lower[cc.index][row] = max(out.lower[cc.index][row], cert.bound)
    entry = {**cert.as_dict(), "certify_seconds": round(time.perf_counter() - t, 3)}
    if primal is not None and math.isfinite(cert.bound):
        entry["gap"] = primal - cert.bound
    if y.size <= _MAX_STORED_MULTIPLIERS:
        entry["multipliers"] = [float(v) for v in y]
    return entry


def _remaining(deadline: float) -> float | None:
    return max(1e-3, deadline - time.monotonic()) if math.isfinite(deadline) else None
