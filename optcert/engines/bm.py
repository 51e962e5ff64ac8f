"""`bm` engine: the rank-r Burer–Monteiro restriction (Chiu & Zhang 2023) of the tight SDP
relaxation (lowerings/quadratic.py: stably active neurons substituted away, LP-chord cuts, boxes on
every variable), one spec row at a time, each certified by `certificates/sdp.certify` from the
solver's multipliers.

Backends: `ipm-lowrank` (optcert's interior point with the exact Hessian and the Schur-complement
Newton step, numpy/scipy only: the default, `backend=auto` — measured on the seed's net, image 0
targets 2/3/9, interleaved (bench/results/sdp_seed.md, run r3): 3.3–3.8 CPU-s per whole run
against IPOPT's 93–102, certified 2.6986/2.0338/1.6302 against 2.6985/2.0337/1.6299),
`ipopt-lowrank` (IPOPT with MUMPS, `pip install optcert[ipopt]`; the same method with a general
sparse solver) and `torch-lowrank` (augmented Lagrangian in torch with Newton–CG inner steps and
the boxes kept by projection, batched over the rows; any device). The certificate records which ran.

Per row: warm start at the row's PGD point (V ≈ 0), rank r = L+1; while the row is not proved and
primal − certified > `gap`·(1 + |primal|), one more column along the most negative eigenvector of
the dual slack S(y) − λE₀₀ (Riemannian staircase, Boumal, Voroninski & Bandeira 2016) up to
`max_rank`; every rank's multipliers are certified and the best bound is kept. Each row gets its
own time budget: `row_time` seconds, or an even share of what is left.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from optcert.certify import EngineOutput, check_counterexample
from optcert.compiled import CompiledCase
from optcert.engines.common import decided, empty_output, tightened
from optcert.engines.sdp_rows import certify_row, floors, negative_direction, remaining, start_sources, timed_out
from optcert.errors import InvalidOptionError
from optcert.forms import Limits, SolveStatus
from optcert.lowerings.quadratic import ActiveMode, input_point, network_point, relu_qcqp
from optcert.precision import Precision
from optcert.solve.progressive import Tightening
from optcert.spec.problem import VerificationProblem

BACKENDS = ("auto", "ipm-lowrank", "ipopt-lowrank", "torch-lowrank")


@dataclass(frozen=True)
class BmOptions:
    """`bounds`: intermediate bounds (boxes, stable neurons); `backend`: auto (= ipm-lowrank) |
    ipm-lowrank | ipopt-lowrank | torch-lowrank; `rank`/`max_rank`: staircase (0 = L+1 and L+6 for
    L affine layers, as Chiu & Zhang); `gap`: stop raising the rank once primal − certified ≤ gap·(1 + |primal|);
    `active`: substitute | lift | equation (lowerings/quadratic.py); `row_time`: seconds per row
    (0 = an even share of the time left); `tolerance`: torch's violation tolerance;
    `ipm_tolerance`: the interior points' KKT tolerance; `early_stop`: certify the interior point's
    iterates every few late iterations and stop once the row is proved (off: solve every rank to the tolerance, for
    measuring the relaxation's value); `proof_stop`: with early_stop, also stop at a certified bound
    far below the primal value once it proves the row, and end the run once a PGD point re-checks as a
    counterexample (faster verdicts; off: a proved row's bound is the relaxation's value at its rank, and
    every row is bounded, what the gap study reports); `attack`: warm start at each row's PGD point;
    `triangle`/`hidden_boxes` as in `SdpOptions`; `device`/`precision`: torch backend only."""

    bounds: Tightening = Tightening.LP
    backend: str = "auto"
    rank: int = 0
    max_rank: int = 0
    hidden_boxes: bool = True
    triangle: bool = True
    active: ActiveMode = ActiveMode.SUBSTITUTE
    gap: float = 1e-4
    row_time: float = 0.0
    tolerance: float = 1e-7
    ipm_tolerance: float = 1e-8
    early_stop: bool = True
    proof_stop: bool = True
    attack: bool = True
    device: str = "cpu"
    precision: Precision = Precision.FLOAT64

    def __post_init__(self):
        from optcert.precision import check_device

        check_device(self.device)
        if self.rank < 0 or self.max_rank < 0 or (self.rank and self.max_rank and self.max_rank < self.rank):
            raise InvalidOptionError(f"options 'rank'/'max_rank' must be ≥ 0 with max_rank ≥ rank, "
                                     f"got {self.rank}/{self.max_rank}")
        if not (0 < self.gap and 0 < self.tolerance < 1 and 0 < self.ipm_tolerance < 1 and self.row_time >= 0):
            raise InvalidOptionError("options 'gap', 'tolerance', 'ipm_tolerance' must be positive "
                                     "(tolerances < 1) and 'row_time' ≥ 0")
        if self.backend not in BACKENDS:
            raise InvalidOptionError(f"option 'backend' must be one of {', '.join(BACKENDS)}, got {self.backend!r}")


def choose_backend(name: str) -> tuple[str, str]:
    """(backend that will run, note): `auto` is ipm-lowrank (needs only numpy/scipy)."""
    return ("ipm-lowrank" if name == "auto" else name), ""


def run_bm(problem: VerificationProblem, compiled: list[CompiledCase], options: BmOptions,
           deadline: float) -> EngineOutput:
    """BM per spec row (module doc); rows the floors (tightening, LP) already prove are skipped."""
    from solvers import get

    backend, note = choose_backend(options.backend)
    get(backend)   # BackendUnavailableError when asked for explicitly and absent
    out = empty_output(compiled, {"method": "rank-r Burer–Monteiro SDP (Chiu & Zhang 2023)", "backend": backend,
                                  "hidden_boxes": options.hidden_boxes, "triangle": options.triangle,
                                  "active": options.active.value, **({"note": note} if note else {})})
    start_sources(out, compiled)
    for number, cc in enumerate(compiled):
        bounds = tightened(cc, options.bounds, "highs", deadline, out.certificate)
        floors(out, cc, bounds, options.bounds, options.triangle, deadline)
        stop = options.early_stop and options.proof_stop
        starts, falsified = _attack_points(problem, cc, out, options, deadline, recheck=stop)
        if falsified:
            out.certificate["stopped"] = f"counterexample re-checked on case {cc.index} (proof_stop)"
            return out
        rows = [r for r in range(cc.case.spec.rows) if not decided(out, cc, (r,))]
        if rows and time.monotonic() < deadline:
            if backend in ("ipm-lowrank", "ipopt-lowrank"):
                _newton_rows(out, cc, bounds, rows, starts, options, deadline, len(compiled) - number, backend)
            else:
                from optcert.engines.bm_torch import torch_case

                torch_case(out, cc, bounds, rows, starts, options, deadline)
        if time.monotonic() > deadline:
            timed_out(out, f"cases {number + 1}..{len(compiled)} not finished")
            break
    return out


def _attack_points(problem: VerificationProblem, cc: CompiledCase, out: EngineOutput, options: BmOptions,
                   deadline: float, recheck: bool) -> tuple[dict, bool]:
    """Best PGD input per row (the warm starts), every one also a candidate counterexample; and, with
    `recheck`, whether one of them re-checks in float64 as a counterexample."""
    from optcert.search.attack import AttackOptions, pgd_case

    if not options.attack:
        return {}, False
    stop = time.monotonic() + max(0.0, (deadline - time.monotonic()) / 10) if math.isfinite(deadline) else math.inf
    starts, falsified = {}, False
    for found in pgd_case(cc, AttackOptions(every_clause=True, device=options.device), stop):
        out.candidates.append((cc.index, found.x))
        falsified = falsified or (recheck and check_counterexample(problem, cc, found.x) is not None)
        for row in found.clause:
            starts[row] = found.x
    return starts, falsified


def _newton_rows(out: EngineOutput, cc: CompiledCase, bounds, rows: list[int], starts: dict, options: BmOptions,
                 deadline: float, cases_left: int, backend: str) -> None:
    """The rows one after another, each within its own budget."""
    for i, row in enumerate(rows):
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out(out, f"{len(rows) - i} rows of case {cc.index} not started")
            return
        if decided(out, cc, (row,)):
            continue
        budget = left / ((len(rows) - i) * cases_left) if math.isfinite(left) else math.inf
        if options.row_time:
            budget = min(options.row_time, left)
        _newton_row(out, cc, bounds, row, starts.get(row, cc.case.box.center), options,
                    time.monotonic() + budget, deadline, backend)


def _solver(backend: str, options: BmOptions):
    """(backend object, its options) of an interior-point backend."""
    if backend == "ipopt-lowrank":
        from solvers.ipopt_lowrank import BACKEND, IpoptOptions

        return BACKEND, IpoptOptions(tolerance=options.ipm_tolerance)
    from solvers.ipm_lowrank import BACKEND as IPM
    from solvers.ipm_lowrank import IpmOptions

    return IPM, IpmOptions(tolerance=options.ipm_tolerance)


def _newton_row(out: EngineOutput, cc: CompiledCase, bounds, row: int, x0, options: BmOptions,
                row_deadline: float, deadline: float, backend: str) -> None:
    """The staircase on one row (module doc)."""
    from optcert.lowerings.sdp_lowrank import add_direction

    lowered = relu_qcqp(cc.net, bounds, row, options.hidden_boxes, options.triangle, options.active)
    model = lowered.form
    depth = len(cc.net.layers)
    rank = options.rank or depth + 1
    max_rank = max(options.max_rank or depth + 6, rank)
    U = np.zeros((model.n + 1, 1))
    U[0, 0], U[1:, 0] = 1.0, network_point(lowered, cc.net, x0)
    duals = None
    BACKEND, settings = _solver(backend, options)
    monitor = _Monitor(out, cc, row, model, options.proof_stop) if options.early_stop else None
    while True:
        limit = remaining(row_deadline, 0.85)
        solution = BACKEND.solve_model(model, model.objective, rank, U, Limits(time_limit=limit), settings, duals,
                                       monitor)
        entry: dict[str, Any] = {"case": cc.index, "row": row, "rank": rank, "status": solution.status.value,
                 "seconds": round(solution.seconds, 3), "primal": solution.objective, "message": solution.message,
                 "max_violation": solution.stats.get("max_violation"), "iterations": solution.stats.get("iterations")}
        rows_log = out.certificate.setdefault("rows", [])
        if solution.x is not None:
            U = np.asarray(solution.x).reshape(model.n + 1, rank)
            out.candidates.append((cc.index, input_point(lowered, U[1:, 0])))
        if solution.row_duals is None:
            rows_log.append({**entry, "note": "no multipliers"})
            return
        cert_deadline = min(deadline, max(row_deadline, time.monotonic() + 2.0))
        entry.update(certify_row(out, cc, row, model, solution.row_duals, solution.objective, solution.objective,
                                 cert_deadline, "bm"))
        rows_log.append(entry)
        if solution.status is SolveStatus.TIME_LIMIT:
            timed_out(out, f"case {cc.index} row {row} stopped at rank {rank}")
            return
        loose = entry.get("gap", math.inf) > options.gap * (1 + abs(solution.objective or 0.0))
        if decided(out, cc, (row,)) or not loose or rank >= max_rank or time.monotonic() > row_deadline:
            return
        U = add_direction(U, negative_direction(model, solution.row_duals, entry["lambda"]))
        rank, duals = rank + 1, solution.row_duals


class _Monitor:
    """Certifies the interior point's iterates now and then by the cheap shortcut of
    certificates/sdp.quick_certify (only where the primal value is positive, i.e. a proof is in
    reach); keeps every improvement as the row's bound and stops the solve once the row is proved."""

    def __init__(self, out: EngineOutput, cc: CompiledCase, row: int, model, proof: bool):
        self.out, self.cc, self.row, self.model, self.proof, self.checks = out, cc, row, model, proof, 0

    def __call__(self, y: np.ndarray, objective: float) -> bool:
        from optcert.certificates.sdp import quick_certify
        from optcert.engines.sdp_rows import raise_row

        if not objective > 0:
            return False
        self.checks += 1
        cert = quick_certify(self.model, y, objective, self.proof)
        if cert is None:
            return False
        raise_row(self.out, self.cc, self.row, cert.bound, "bm")
        return bool(cert.bound > 0)
