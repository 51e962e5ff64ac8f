"""Gurobi adapter (gurobipy matrix API) for LPs and MILPs.

gurobipy is imported lazily. The wheel's bundled licence is size-limited (≤ 2000 variables and
≤ 2000 constraints); a probe solve of a 2001-variable model at first use tells whether a full
licence is present, and only then is the limit lifted. A too-large problem is reported by `fits`
and comes back from `solve` as an UNAVAILABLE Solution (as does GurobiError 10010).

Rows: row_lo ≤ A_i x ≤ row_hi is one "=" constraint if lo = hi, one ">" / "<" constraint if only
one side is finite, nothing if neither is, and — for a proper range — two constraints ("> lo" and
"< hi"), so ranged rows count twice against the licence. Gurobi's Pi (minimisation: ≥ 0 on ">"
rows, ≤ 0 on "<" rows) and RC = c − Aᵀπ already match `optcert.forms` (verified in
tests/solvers); a split row's dual is the sum of its two Pi. MILP `bound` is ObjBound.
Gurobi's UNBOUNDED only means an improving ray exists (it reports it for infeasible models with
presolve off), so UNBOUNDED and INF_OR_UNBD are settled by a zero-objective feasibility re-solve.
"""
from __future__ import annotations

import time
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from optcert.errors import InvalidOptionError
from optcert.forms import Limits, LinearProgram, Solution, SolveStatus
from solvers.base import Availability, refusal

SIZE_LIMIT = 2000


def _gp():
    import gurobipy  # lazy: optional dependency

    return gurobipy


def _status_map(GRB) -> dict:
    return {
        GRB.OPTIMAL: SolveStatus.OPTIMAL, GRB.INFEASIBLE: SolveStatus.INFEASIBLE, GRB.CUTOFF: SolveStatus.CUTOFF,
        GRB.UNBOUNDED: SolveStatus.UNBOUNDED, GRB.TIME_LIMIT: SolveStatus.TIME_LIMIT,
        GRB.ITERATION_LIMIT: SolveStatus.ITERATION_LIMIT, GRB.NODE_LIMIT: SolveStatus.ITERATION_LIMIT,
        GRB.SOLUTION_LIMIT: SolveStatus.ITERATION_LIMIT, GRB.WORK_LIMIT: SolveStatus.TIME_LIMIT,
        GRB.NUMERIC: SolveStatus.NUMERICAL, GRB.SUBOPTIMAL: SolveStatus.NUMERICAL,
    }


_STATUS_NAMES = {2: "OPTIMAL", 3: "INFEASIBLE", 4: "INF_OR_UNBD", 5: "UNBOUNDED", 6: "CUTOFF",
                 7: "ITERATION_LIMIT", 8: "NODE_LIMIT", 9: "TIME_LIMIT", 10: "SOLUTION_LIMIT",
                 11: "INTERRUPTED", 12: "NUMERIC", 13: "SUBOPTIMAL", 16: "WORK_LIMIT", 17: "MEM_LIMIT"}


def _check_unbounded(gp, model, x, message: str) -> tuple[SolveStatus, str]:
    """Gurobi's UNBOUNDED says nothing about feasibility (nor INF_OR_UNBD): re-solve with a zero
    objective; feasible ⇒ UNBOUNDED, infeasible ⇒ INFEASIBLE, anything else ⇒ ERROR."""
    x.Obj = np.zeros(x.shape)
    model.ObjCon = 0.0
    model.optimize()
    check = _STATUS_NAMES.get(model.Status, model.Status)
    verdict = {gp.GRB.OPTIMAL: SolveStatus.UNBOUNDED, gp.GRB.INFEASIBLE: SolveStatus.INFEASIBLE}
    return verdict.get(model.Status, SolveStatus.ERROR), f"{message}; zero-objective re-solve: {check}"


def _row_blocks(lp: LinearProgram) -> list[tuple[np.ndarray, str, np.ndarray]]:
    """(row indices, sense, rhs) blocks that express the two-sided rows as Gurobi constraints."""
    lo_ok, hi_ok = np.isfinite(lp.row_lo), np.isfinite(lp.row_hi)
    eq = lo_ok & hi_ok & (lp.row_lo == lp.row_hi)
    ge, le = lo_ok & ~eq, hi_ok & ~eq
    return [(np.flatnonzero(mask), sense, rhs[mask])
            for mask, sense, rhs in ((eq, "=", lp.row_lo), (ge, ">", lp.row_lo), (le, "<", lp.row_hi))]


def _n_constraints(lp: LinearProgram) -> int:
    return sum(idx.size for idx, _, _ in _row_blocks(lp))


def _attr(model, name: str) -> float | None:
    """A finite float model attribute, or None when Gurobi has none (e.g. no bound after an error)."""
    try:
        value = float(model.getAttr(name))
    except Exception:
        return None
    return value if np.isfinite(value) else None


def _limit_params(limits: Limits) -> dict:
    """Translate `Limits` into Gurobi parameter names."""
    params: dict[str, Any] = {"OutputFlag": int(bool(limits.verbose))}
    if limits.time_limit is not None:
        params["TimeLimit"] = float(limits.time_limit)
    if limits.node_limit is not None:
        params["NodeLimit"] = float(limits.node_limit)
    if limits.mip_gap is not None:
        params["MIPGap"] = float(limits.mip_gap)
    if limits.threads is not None:
        params["Threads"] = int(limits.threads)
    if limits.cutoff is not None:
        params["Cutoff"] = float(limits.cutoff)
    return params


class GurobiBackend:
    """LP and MILP through gurobipy; see the module docstring for conventions."""

    name = "gurobi"
    forms = ("lp", "milp")

    @cached_property
    def _probe(self) -> tuple[Availability, bool]:
        """(availability, restricted?) from starting an environment and a 2001-variable probe."""
        try:
            gp = _gp()
            version = ".".join(map(str, gp.gurobi.version()))
        except Exception as err:
            return Availability(self.name, False, reason=f"gurobipy not installed ({err})", forms=self.forms), True
        try:
            with gp.Model(env=self._env) as probe:
                probe.addMVar(SIZE_LIMIT + 1)
                probe.optimize()
            restricted = False
        except Exception as err:
            if getattr(err, "errno", None) != 10010:
                return Availability(self.name, False, version, f"no usable licence ({err})", self.forms), True
            restricted = True
        reason = f"size-limited licence ({SIZE_LIMIT} vars/rows)" if restricted else ""
        return Availability(self.name, True, version, reason, self.forms), restricted

    @cached_property
    def _env(self):
        gp = _gp()
        env = gp.Env(empty=True)
        env.setParam("OutputFlag", 0)
        env.start()
        return env

    def available(self) -> Availability:
        """Installed and licensed (possibly size-limited)? Cached; never raises."""
        return self._probe[0]

    def fits(self, form) -> Availability:
        """Available, a LinearProgram, and within the licence's size limit when it is restricted."""
        status, restricted = self._probe
        if not status.available:
            return status
        if not isinstance(form, LinearProgram):
            return Availability(self.name, False, status.version, f"cannot solve {type(form).__name__}", self.forms)
        n, m = form.n_cols, _n_constraints(form)
        if restricted and (n > SIZE_LIMIT or m > SIZE_LIMIT):
            reason = f"too large for this licence ({n} vars, {m} rows; limit {SIZE_LIMIT})"
            return Availability(self.name, False, status.version, reason, self.forms)
        return status

    def solve(self, form: LinearProgram, limits: Limits = Limits(),
              raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form`; unknown `raw` keys raise InvalidOptionError, solver trouble is a Solution."""
        start = time.perf_counter()
        refused = refusal(self, form)
        if refused is not None:
            return refused
        gp = _gp()
        model = gp.Model(env=self._env)
        try:
            self._set_params(model, {**_limit_params(limits), **dict(raw or {})})
            x, blocks = self._build(gp, model, form)
            model.optimize()
            return self._read(gp, model, form, x, blocks, start)
        except gp.GurobiError as err:
            kind = SolveStatus.UNAVAILABLE if err.errno == 10010 else SolveStatus.ERROR
            return Solution(kind, self.name, time.perf_counter() - start, message=f"Gurobi: {err}")
        finally:
            model.dispose()

    def _set_params(self, model, params: Mapping[str, Any]) -> None:
        """Set native parameters; unknown names and rejected values raise InvalidOptionError."""
        gp = _gp()
        for key, value in params.items():
            if model.getParamInfo(str(key)) is None:
                raise InvalidOptionError(f"gurobi: unknown parameter {key!r}")
            try:
                model.setParam(str(key), value)
            except (gp.GurobiError, TypeError, ValueError) as err:
                raise InvalidOptionError(f"gurobi: parameter {key!r} rejects {value!r}: {err}") from err

    def _build(self, gp, model, lp: LinearProgram):
        """Variables and constraint blocks for `lp` (bulk matrix calls)."""
        vtype = np.where(lp.integer, gp.GRB.INTEGER, gp.GRB.CONTINUOUS)
        x = model.addMVar(lp.n_cols, lb=lp.col_lo, ub=lp.col_hi, obj=lp.c, vtype=vtype)
        model.ObjCon = lp.c0
        blocks = []
        for rows, sense, rhs in _row_blocks(lp):
            if rows.size:
                blocks.append((rows, model.addMConstr(lp.A[rows], x, sense, rhs)))
        return x, blocks

    def _read(self, gp, model, lp: LinearProgram, x, blocks, start: float) -> Solution:
        """Turn a finished model into a Solution (unbounded claims are checked for feasibility)."""
        GRB = gp.GRB
        message = f"Gurobi status {_STATUS_NAMES.get(model.Status, model.Status)}"
        if model.Status in (GRB.INF_OR_UNBD, GRB.UNBOUNDED):
            status, message = _check_unbounded(gp, model, x, message)
        else:
            status = _status_map(GRB).get(model.Status, SolveStatus.ERROR)
        has_x = model.SolCount > 0 and status not in (SolveStatus.UNBOUNDED, SolveStatus.INFEASIBLE)
        if not lp.is_mip and status != SolveStatus.OPTIMAL:
            has_x = False
        values = np.asarray(x.X, dtype=np.float64) if has_x else None
        objective = float(model.ObjVal) if has_x else None
        bound, y, r = None, None, None
        if lp.is_mip and status not in (SolveStatus.INFEASIBLE, SolveStatus.UNBOUNDED, SolveStatus.ERROR):
            bound = _attr(model, "ObjBound")
        elif not lp.is_mip and status == SolveStatus.OPTIMAL:
            bound = _attr(model, "ObjBound")
            y = np.zeros(lp.n_rows)
            for rows, constrs in blocks:
                np.add.at(y, rows, np.asarray(constrs.Pi, dtype=np.float64))
            r = np.asarray(x.RC, dtype=np.float64)
        stats = {"nodes": float(model.NodeCount), "simplex_iterations": float(model.IterCount)}
        return Solution(status, self.name, time.perf_counter() - start, objective, bound, values, y, r,
                        message, stats)


BACKEND = GurobiBackend()
