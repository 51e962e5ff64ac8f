"""SCIP adapter (pyscipopt) for LPs and MILPs.

pyscipopt is imported lazily. Each row becomes one linear constraint lhs ≤ A_i x ≤ rhs (SCIP's
linear constraints are natively two-sided; rows free on both sides are left out). SCIP's duals
refer to its transformed problem, so for a pure LP the adapter switches presolving, heuristics,
separation and propagation off (a `raw` setting may turn them back on, at the price of duals that
may be missing). `getDualSolVal` then gives y in the `optcert.forms` convention (y > 0 on a binding
lower side; verified in tests/solvers), and col_duals are computed as r = c − Aᵀy. If SCIP cannot
report a dual (e.g. the LP was never solved), both duals are None. `threads` is ignored (SCIP's
default solve is single-threaded). MILP `bound` is SCIP's dual bound.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from optcert.errors import InvalidOptionError
from optcert.forms import Limits, LinearProgram, Solution, SolveStatus
from solvers.base import LicenceFreeBackend, refusal

_STATUS = {
    "optimal": SolveStatus.OPTIMAL, "gaplimit": SolveStatus.OPTIMAL,
    "infeasible": SolveStatus.INFEASIBLE, "unbounded": SolveStatus.UNBOUNDED,
    "timelimit": SolveStatus.TIME_LIMIT, "nodelimit": SolveStatus.ITERATION_LIMIT,
    "totalnodelimit": SolveStatus.ITERATION_LIMIT, "stallnodelimit": SolveStatus.ITERATION_LIMIT,
    "sollimit": SolveStatus.ITERATION_LIMIT, "bestsollimit": SolveStatus.ITERATION_LIMIT,
    "restartlimit": SolveStatus.ITERATION_LIMIT, "primallimit": SolveStatus.ITERATION_LIMIT,
    "duallimit": SolveStatus.ITERATION_LIMIT, "memlimit": SolveStatus.ERROR,
    "userinterrupt": SolveStatus.ERROR, "unknown": SolveStatus.ERROR,
}

#: Settings that keep SCIP's LP duals meaningful for the original rows (pure LPs only).
_LP_DUAL_PARAMS = {"propagating/maxrounds": 0, "propagating/maxroundsroot": 0}


def _scip():
    import pyscipopt  # lazy: optional dependency

    return pyscipopt


def _limit_params(limits: Limits) -> dict:
    """Translate `Limits` into SCIP parameter names."""
    params: dict[str, Any] = {}
    if limits.time_limit is not None:
        params["limits/time"] = float(limits.time_limit)
    if limits.node_limit is not None:
        params["limits/nodes"] = int(limits.node_limit)
    if limits.mip_gap is not None:
        params["limits/gap"] = float(limits.mip_gap)
    return params


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _build(ps, model, lp: LinearProgram, zero_cost: bool = False):
    """Variables and one two-sided linear constraint per non-free row; returns (vars, {row: cons})."""
    from pyscipopt.scip import Term

    vtypes = np.where(lp.integer, "I", "C")
    cost = np.zeros(lp.n_cols) if zero_cost else lp.c
    xs = [model.addVar(lb=_finite(lo), ub=_finite(hi), obj=float(c), vtype=str(t))
          for lo, hi, c, t in zip(lp.col_lo, lp.col_hi, cost, vtypes)]
    if not zero_cost and lp.c0 != 0.0:
        model.addObjoffset(lp.c0)
    conss = {}
    A = lp.A
    for i in range(lp.n_rows):
        lo, hi = _finite(lp.row_lo[i]), _finite(lp.row_hi[i])
        if lo is None and hi is None:
            continue
        cols, vals = A.indices[A.indptr[i]:A.indptr[i + 1]], A.data[A.indptr[i]:A.indptr[i + 1]]
        expr = ps.Expr({Term(xs[j]): float(v) for j, v in zip(cols, vals)})
        conss[i] = model.addCons(ps.ExprCons(expr, lhs=lo, rhs=hi))
    return xs, conss


def _trivially_infeasible(lp: LinearProgram) -> str:
    """Why `lp` is infeasible before any solve (crossed bounds, an empty row excluding 0), or ""."""
    if np.any(lp.row_lo > lp.row_hi) or np.any(lp.col_lo > lp.col_hi):
        return "a row or column has lower side > upper side"
    empty = np.diff(lp.A.indptr) == 0
    if np.any(empty & ((lp.row_lo > 0) | (lp.row_hi < 0))):
        return "an empty row excludes 0"
    return ""


class ScipBackend(LicenceFreeBackend):
    """LP and MILP through pyscipopt; see the module docstring for conventions."""

    name = "scip"
    forms = ("lp", "milp")

    package = "pyscipopt"
    form_type = LinearProgram

    def version(self) -> str:
        ps = _scip()
        return f"{ps.__version__} (SCIP {ps.Model().version()})"

    def solve(self, form: LinearProgram, limits: Limits = Limits(),
              raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form`; unknown `raw` keys raise InvalidOptionError, solver trouble is a Solution."""
        start = time.perf_counter()
        refused = refusal(self, form)
        if refused is not None:
            return refused
        ps = _scip()
        params = {**_limit_params(limits), **dict(raw or {})}
        self._configure(ps, ps.Model(), form, params, False)  # validate before any work
        reason = _trivially_infeasible(form)
        if reason:
            return Solution(SolveStatus.INFEASIBLE, self.name, time.perf_counter() - start, message=reason)
        try:
            model, xs, conss = self._run(ps, form, params, limits.verbose)
            return self._read(ps, model, form, xs, conss, params, limits.verbose, start)
        except Exception as err:  # a solver failure is a status, never a crash
            return Solution(SolveStatus.ERROR, self.name, time.perf_counter() - start, message=f"SCIP failed: {err}")

    def _configure(self, ps, model, lp: LinearProgram, params: Mapping[str, Any], verbose: bool) -> None:
        """Output, LP-dual settings and native parameters; unknown names raise InvalidOptionError."""
        if not verbose:
            model.hideOutput()
        if not lp.is_mip:
            off = ps.SCIP_PARAMSETTING.OFF
            model.setPresolve(off)
            model.setHeuristics(off)
            model.setSeparating(off)
            model.setParams(_LP_DUAL_PARAMS)
        known = model.getParams()
        for key, value in params.items():
            if str(key) not in known:
                raise InvalidOptionError(f"scip: unknown parameter {key!r}")
            try:
                model.setParam(str(key), value)
            except Exception as err:
                raise InvalidOptionError(f"scip: parameter {key!r} rejects {value!r}: {err}") from err

    def _run(self, ps, lp: LinearProgram, params, verbose: bool, zero_cost: bool = False):
        model = ps.Model()
        self._configure(ps, model, lp, params, verbose)
        xs, conss = _build(ps, model, lp, zero_cost)
        model.optimize()
        return model, xs, conss

    def _read(self, ps, model, lp: LinearProgram, xs, conss, params, verbose: bool, start: float) -> Solution:
        """Turn a finished model into a Solution (unbounded claims checked by a zero-objective re-solve)."""
        raw_status = model.getStatus()
        message = f"SCIP status {raw_status}"
        if raw_status in ("inforunbd", "unbounded"):
            check = self._run(ps, lp, params, verbose, zero_cost=True)[0].getStatus()
            verdict = {"optimal": SolveStatus.UNBOUNDED, "infeasible": SolveStatus.INFEASIBLE}
            status = verdict.get(check, SolveStatus.ERROR)
            message += f"; zero-objective re-solve: {check}"
        else:
            status = _STATUS.get(raw_status, SolveStatus.ERROR)
        solved = status not in (SolveStatus.INFEASIBLE, SolveStatus.UNBOUNDED, SolveStatus.ERROR)
        has_x = solved and model.getNSols() > 0 and (lp.is_mip or status == SolveStatus.OPTIMAL)
        x = objective = bound = y = r = None
        if has_x:
            best = model.getBestSol()
            x = np.array([model.getSolVal(best, v) for v in xs], dtype=np.float64)
            objective = float(model.getSolObjVal(best))
        if solved and (lp.is_mip or status == SolveStatus.OPTIMAL):
            dual = float(model.getDualbound())
            bound = dual if abs(dual) < model.infinity() else None
        if not lp.is_mip and status == SolveStatus.OPTIMAL:
            y, r = self._duals(model, lp, conss)
        stats = {"nodes": float(model.getNNodes()), "lp_iterations": float(model.getNLPIterations())}
        return Solution(status, self.name, time.perf_counter() - start, objective, bound, x, y, r, message, stats)

    def _duals(self, model, lp: LinearProgram, conss):
        """(y, r = c − Aᵀy) from SCIP's constraint duals, or (None, None) if SCIP has none."""
        try:
            y = np.zeros(lp.n_rows)
            for i, cons in conss.items():
                y[i] = model.getDualSolVal(cons)
        except Exception:
            return None, None
        return y, lp.c - lp.A.T @ y


BACKEND = ScipBackend()
