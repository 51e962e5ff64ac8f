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

from optcert.certificates.sdp import certify
from optcert.certify import EngineOutput
from optcert.compiled import CompiledCase
from optcert.engines.common import decided, empty_output, lp_floor, tightened
from optcert.errors import InvalidOptionError
from optcert.forms import Limits, SolveStatus
from optcert.lowerings.quadratic import relu_qcqp
from optcert.lowerings.sdp_full import lower_sdp, multipliers, primal_matrix
from optcert.precision import Precision
from optcert.solve.progressive import Tightening
from optcert.spec.problem import VerificationProblem

_MAX_STORED_MULTIPLIERS = 20_000


@dataclass(frozen=True)
class SdpOptions:
    """`bounds`: intermediate bounds (they shape the boxes and drop inactive neurons);
    `backend`: scs | clarabel | mosek; `hidden_boxes`: quadratic boxes on every hidden layer
    (needed for a finite trace bound, hence for any certificate whose dual slack is not PSD);
    `triangle`: the LP chord of every unstable neuron as a linear cut (then the SDP is at least
    as tight as the LP over the same bounds; lowerings/quadratic.py)."""

    bounds: Tightening = Tightening.CROWN
    backend: str = "scs"
    hidden_boxes: bool = True
    triangle: bool = True

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
                                  "hidden_boxes": options.hidden_boxes, "triangle": options.triangle})
    for cc in compiled:
        bounds = tightened(cc, options.bounds, "highs", deadline, out.certificate)
        out.lower[cc.index] = np.maximum(out.lower[cc.index], bounds.lower[-1])
        if options.triangle:
            lp_floor(out, cc, bounds, deadline)
        for row in range(cc.case.spec.rows):
            if time.monotonic() > deadline:
                out.reason, out.timed_out = "time limit reached", True
                return out
            if decided(out, cc, (row,)):
                continue
            lowered = relu_qcqp(cc.net, bounds, row, options.hidden_boxes, options.triangle)
            conic = lower_sdp(lowered.form)
            solution = backend.solve(conic.form, Limits(time_limit=_remaining(deadline, 0.9)))
            entry = {"case": cc.index, "row": row, "status": solution.status.value,
                     "seconds": round(solution.seconds, 3), "primal": solution.objective, "message": solution.message}
            if solution.row_duals is not None:
                y = multipliers(conic, solution.row_duals)
                lam = solution.bound if solution.bound is not None else solution.objective
                entry.update(_certify(out, cc, row, lowered.form, y, lam, solution.objective, deadline))
            if solution.x is not None and solution.status is not SolveStatus.ERROR:
                P = primal_matrix(conic, solution.x)
                out.candidates.append((cc.index, P[0, 1:1 + cc.net.n_inputs] / max(P[0, 0], 1e-300)))
            out.certificate.setdefault("rows", []).append(entry)
    return out


def _certify(out: EngineOutput, cc: CompiledCase, row: int, model, y, lam, primal, deadline: float) -> dict:
    """Certify row `row` from multipliers y; fold the bound into `out`; the certificate entry."""
    t = time.perf_counter()
    cert = certify(model, y, lam, deadline=deadline)
    out.lower[cc.index][row] = max(out.lower[cc.index][row], cert.bound)
    entry = {**cert.as_dict(), "certify_seconds": round(time.perf_counter() - t, 3)}
    if primal is not None and math.isfinite(cert.bound):
        entry["gap"] = primal - cert.bound
    if y.size <= _MAX_STORED_MULTIPLIERS:
        entry["multipliers"] = [float(v) for v in y]
    return entry


def _remaining(deadline: float, share: float = 1.0) -> float | None:
    """`share` of the time left (the rest is kept for the certificate), or None without a deadline."""
    return max(1e-3, share * (deadline - time.monotonic())) if math.isfinite(deadline) else None


@dataclass(frozen=True)
class BmOptions:
    """Rank-r Burer–Monteiro: `rank` to start at and `max_rank` for the Riemannian staircase
    (0 = L+1 and L+6 for a net of L affine layers, as Chiu & Zhang); the staircase stops once
    primal − certified ≤ `gap`·(1 + |primal|). `attack`: warm-start at the PGD point of each row.
    `triangle`: LP-chord cuts as in `SdpOptions`."""

    bounds: Tightening = Tightening.CROWN
    rank: int = 0          # starting rank r of the factorisation (0 = L+1 for L affine layers)
    max_rank: int = 0      # last rank of the staircase (0 = L+6)
    hidden_boxes: bool = True
    triangle: bool = True
    gap: float = 1e-3      # stop raising the rank once primal − certified ≤ gap·(1 + |primal|)
    tolerance: float = 1e-7
    attack: bool = True
    device: str = "cpu"
    precision: Precision = Precision.FLOAT64

    def __post_init__(self):
        from optcert.precision import check_device

        check_device(self.device)
        if self.rank < 0 or self.max_rank < 0 or (self.rank and self.max_rank and self.max_rank < self.rank):
            raise InvalidOptionError(f"options 'rank'/'max_rank' must be ≥ 0 with max_rank ≥ rank, "
                                     f"got {self.rank}/{self.max_rank}")
        if not (0 < self.gap and 0 < self.tolerance < 1):
            raise InvalidOptionError("options 'gap' and 'tolerance' must be positive (tolerance < 1)")


def run_bm(problem: VerificationProblem, compiled: list[CompiledCase], options: BmOptions,
           deadline: float) -> EngineOutput:
    """BM per spec row, all rows of a case in one batched solve, then the staircase per row."""
    out = empty_output(compiled, {"method": "rank-r Burer–Monteiro SDP (Chiu & Zhang 2023)",
                                  "backend": "torch-lowrank", "hidden_boxes": options.hidden_boxes,
                                  "triangle": options.triangle})
    for cc in compiled:
        bounds = tightened(cc, options.bounds, "highs", deadline, out.certificate)
        out.lower[cc.index] = np.maximum(out.lower[cc.index], bounds.lower[-1])
        if options.triangle:
            lp_floor(out, cc, bounds, deadline)
        starts = _attack_points(problem, cc, out, options, deadline)
        rows = [r for r in range(cc.case.spec.rows) if not decided(out, cc, (r,))]
        if rows and time.monotonic() < deadline:
            _bm_case(out, cc, bounds, rows, starts, options, deadline)
        if time.monotonic() > deadline:
            out.reason, out.timed_out = "time limit reached", True
            break
    return out


def _attack_points(problem, cc: CompiledCase, out: EngineOutput, options: BmOptions, deadline: float) -> dict:
    """Best PGD input per row (the warm starts); every one is also a candidate counterexample."""
    from optcert.search.attack import AttackOptions, pgd_case

    if not options.attack:
        return {}
    stop = time.monotonic() + max(0.0, (deadline - time.monotonic()) / 10) if math.isfinite(deadline) else math.inf
    starts = {}
    for found in pgd_case(cc, AttackOptions(every_clause=True, device=options.device), stop):
        out.candidates.append((cc.index, found.x))
        for row in found.clause:
            starts[row] = found.x
    return starts


def _bm_case(out: EngineOutput, cc: CompiledCase, bounds, rows: list[int], starts: dict, options: BmOptions,
             deadline: float) -> None:
    from optcert.lowerings.sdp_lowrank import lower_lowrank
    from solvers.torch_lowrank import BACKEND, LowRankOptions

    depth = len(cc.net.layers)
    rank = options.rank or depth + 1
    max_rank = max(options.max_rank or depth + 6, rank)
    lowered = [relu_qcqp(cc.net, bounds, r, options.hidden_boxes, options.triangle) for r in rows]
    model = lowered[0].form
    centre = cc.case.box.center
    init = np.stack([lower_lowrank(lw, cc.net, starts.get(r, centre), rank).form.start()
                     for lw, r in zip(lowered, rows)])
    settings = LowRankOptions(device=options.device, precision=options.precision, tolerance=options.tolerance)
    objectives = np.stack([lw.form.objective for lw in lowered])
    solutions = BACKEND.solve_batch(model, objectives, rank, init, Limits(time_limit=_remaining(deadline, 0.8)),
                                    settings)
    for lw, row, solution in zip(lowered, rows, solutions):
        _staircase(out, cc, lw, row, solution, rank, max_rank, settings, options.gap, deadline)


def _staircase(out: EngineOutput, cc: CompiledCase, lowered, row: int, solution, rank: int, max_rank: int,
               settings, gap: float, deadline: float) -> None:
    """Certify; while the certificate is loose, add a column along the slack's most negative
    eigenvector and re-solve from there (Boumal et al. 2016)."""
    from optcert.forms import LowRankSDP
    from optcert.lowerings.sdp_lowrank import add_direction
    from solvers.torch_lowrank import BACKEND, unflatten

    model = lowered.form
    while True:
        entry = {"case": cc.index, "row": row, "rank": rank, "status": solution.status.value,
                 "seconds": round(solution.seconds, 3), "primal": solution.objective, "message": solution.message,
                 "max_violation": solution.stats.get("max_violation")}
        U = unflatten(solution, model.n, rank) if solution.x is not None else None
        if U is not None:
            out.candidates.append((cc.index, U[1:1 + cc.net.n_inputs, 0]))
        if solution.row_duals is None or time.monotonic() > deadline:
            entry["note"] = "not certified" + (" (time limit)" if solution.row_duals is not None else "")
            out.certificate.setdefault("rows", []).append(entry)
            return
        entry.update(_certify(out, cc, row, model, solution.row_duals, solution.objective, solution.objective,
                              deadline))
        out.certificate.setdefault("rows", []).append(entry)
        loose = entry.get("gap", math.inf) > gap * (1 + abs(solution.objective or 0.0))
        if not loose or rank >= max_rank or U is None or time.monotonic() > deadline:
            return
        direction = _negative_direction(model, solution.row_duals, entry["lambda"])
        rank += 1
        form = LowRankSDP(model, rank, add_direction(U, direction))
        solution = BACKEND.solve_batch(model, model.objective[None], rank, form.start()[None],
                                       Limits(time_limit=_remaining(deadline, 0.8)), settings,
                                       duals=solution.row_duals)[0]


def _negative_direction(model, y, lam: float) -> np.ndarray:
    """Eigenvector of the smallest eigenvalue of S(y) − λE₀₀ (where the rank should grow)."""
    from scipy.linalg import eigh

    from optcert.certificates.sdp import project, slack_matrix

    S, _ = slack_matrix(model, project(model, y))
    S[0, 0] -= lam
    return eigh(S, subset_by_index=[0, 0], driver="evr")[1][:, 0]
