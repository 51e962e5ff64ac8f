"""Solve a `LinearProgram` with a backend and say how far its lower bound can be trusted.

* LP: the bound is recomputed from the solver's row duals (`lp_certificate`, Neumaier &
  Shcherbina 2004) — rigorous, whatever the solver's tolerances were.
* MILP: the solver's proven dual bound (never the incumbent) less `tolerance`·(1 + |bound|) —
  *solver-trusted*: exact branch-and-bound on floating-point LPs, recorded as such. With a cutoff,
  never more than the cutoff (what was pruned there is only known to lie above it).
A time limit, an error or a missing licence gives −inf (no claim) and the solver's own status.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping

import numpy as np

from optcert.certificates.lp import certified_lp_bound
from optcert.forms import Limits, LinearProgram, Solution, SolveStatus


class Trust(Enum):
    RIGOROUS = "rigorous"   # dual re-check with rounding-error bounds
    SOLVER = "solver"       # the solver's proven MILP bound, less a tolerance
    NONE = "none"           # no bound


@dataclass(frozen=True, eq=False)
class LinearBound:
    """A lower bound on min c·x + c0 (−inf when none) with its trust level and the raw solution."""

    value: float
    trust: Trust
    solution: Solution

    def summary(self) -> dict:
        s = self.solution
        return {"bound": self.value, "trust": self.trust.value, "status": s.status.value, "backend": s.backend,
                "objective": s.objective, "solver_bound": s.bound, "seconds": round(s.seconds, 4),
                "message": s.message}


def _limit(time_limit: float | None, deadline: float) -> float | None:
    remaining = deadline - time.monotonic()
    limit = remaining if time_limit is None else min(time_limit, remaining)
    return max(1e-3, limit) if math.isfinite(limit) else None


def solve_bound(form: LinearProgram, backend: str = "highs", time_limit: float | None = None,
                deadline: float = math.inf, tolerance: float = 1e-6, raw: Mapping[str, Any] | None = None,
                cutoff: float | None = None, interrupt: Callable[[], bool] | None = None) -> LinearBound:
    """Solve `form` on `backend` within min(time_limit, deadline) and bound its optimum from below.
    `cutoff` (MILP): only objectives below it matter — a sign-only question is answered much sooner;
    `interrupt` (MILP): polled during the solve where the backend can stop one (`Limits.interrupt`)."""
    from solvers import get

    limits = Limits(time_limit=_limit(time_limit, deadline), cutoff=cutoff if form.is_mip else None,
                    interrupt=interrupt)
    return interpret(form, get(backend).solve(form, limits, raw), tolerance, limits.cutoff)


def interpret(form: LinearProgram, solution: Solution, tolerance: float = 1e-6,
              cutoff: float | None = None) -> LinearBound:
    """The lower bound a solution supports (module doc); CUTOFF proves min ≥ cutoff."""
    if form.is_mip and solution.status is SolveStatus.CUTOFF and cutoff is not None:
        return LinearBound(cutoff - tolerance * (1 + abs(cutoff)), Trust.SOLVER, solution)
    if form.is_mip:
        if solution.status is SolveStatus.INFEASIBLE:
            return LinearBound(math.inf, Trust.SOLVER, solution)
        proven = solution.bound
        if proven is None or not math.isfinite(proven):
            return LinearBound(-math.inf, Trust.NONE, solution)
        if cutoff is not None:   # nodes pruned at the cutoff are only known to lie above it, whatever
            proven = min(proven, cutoff)   # the solver then reports (HiGHS: its incumbent, as "optimal")
        return LinearBound(proven - tolerance * (1 + abs(proven)), Trust.SOLVER, solution)
    if solution.row_duals is None or solution.status is not SolveStatus.OPTIMAL:
        return LinearBound(-math.inf, Trust.NONE, solution)
    return LinearBound(certified_lp_bound(form, solution.row_duals), Trust.RIGOROUS, solution)


class BoundSession:
    """Many objectives over one constraint set, warm-started where the backend keeps a model
    (HiGHS); otherwise each objective is a fresh solve."""

    def __init__(self, form: LinearProgram, backend: str = "highs", tolerance: float = 1e-6,
                 raw: Mapping[str, Any] | None = None):
        from solvers import get

        self.form, self.backend, self.tolerance = form, get(backend), tolerance
        self.raw = dict(raw or {})
        self.session = self.backend.session(form, raw=self.raw) if hasattr(self.backend, "session") else None

    def bound(self, g_row, g0: float, time_limit: float | None = None, deadline: float = math.inf) -> LinearBound:
        """Lower bound on g·x + g0 over the form (g a sparse 1 × n row)."""
        form = objective_form(self.form, g_row, g0)
        limit = _limit(time_limit, deadline)
        if self.session is not None:
            solution = self.session.solve(form.c, form.c0, limit)
        else:
            solution = self.backend.solve(form, Limits(time_limit=limit), self.raw)
        return interpret(form, solution, self.tolerance)


def objective_form(form: LinearProgram, g_row, g0: float) -> LinearProgram:
    """`form` with objective g·x + g0 for a sparse row g (1 × n)."""
    c = np.zeros(form.n_cols)
    c[g_row.indices] = g_row.data
    return form.with_objective(c, float(g0))
