"""MOSEK adapter (Optimizer API, affine conic constraints) for ConicPrograms — optional.

`available()` is true only if mosek imports AND a tiny probe solve succeeds (cached): without a
licence every solve raises error 1008, and MOSEK has no size-limited mode (SOLVERS.md). Users
bring their own licence (MOSEKLM_LICENSE_FILE); none is shipped.

Model: free variables x, objective c·x + c0, and one ACC block F x + g ∈ D with F = −A, g = b, so
F x + g is forms.py's slack s; D = RZERO(zero) × RPLUS(nonneg) × SVEC_PSD(n(n+1)/2) per block.
MOSEK's svec PSD domain is forms.py's convention (lower triangle column by column, √2-scaled), and
its conic dual — max −gᵀy + c0 s.t. Fᵀy = c, y ∈ D* — gives y ∈ K* with Aᵀy + c = 0: both pass
through unchanged (per the MOSEK docs). Status: interior solution OPTIMAL → OPTIMAL;
PRIM_INFEAS_CER → INFEASIBLE (row_duals = the certificate); DUAL_INFEAS_CER → UNBOUNDED; otherwise
TIME_LIMIT / ITERATION_LIMIT from the termination code, else NUMERICAL (x, y kept, bound None).

UNTESTED here: no licence on these machines, so only the unavailable path and model building are
exercised; the solve path follows the documented API and the conformance suite runs on it as soon
as a licence is present.
"""
from __future__ import annotations

import sys
import time
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from optcert.errors import InvalidOptionError
from optcert.forms import ConicProgram, Limits, Solution, SolveStatus
from solvers.base import Availability, refusal
from solvers.psd_vec import conic_solution, tri_len


def _mosek():
    import mosek  # lazy: optional dependency

    return mosek


def _is_licence_error(err: Exception) -> bool:
    return "licen" in str(getattr(err, "errno", "")).lower() or "licen" in str(err).lower()


def _build(mk, task, form: ConicProgram) -> None:
    """Load `form` into `task`: free x, objective, F = −A, g = b, one ACC per cone."""
    n, m = form.c.size, form.A.shape[0]
    task.appendvars(n)
    task.putvarboundsliceconst(0, n, mk.boundkey.fr, -np.inf, np.inf)
    task.putcslice(0, n, form.c)
    task.putcfix(form.c0)
    task.putobjsense(mk.objsense.minimize)
    task.appendafes(m)
    coo = form.A.tocoo()
    task.putafefentrylist(coo.row.astype(np.int64), coo.col.astype(np.int32), -coo.data)
    task.putafegslice(0, m, form.b)
    blocks = [(task.appendrzerodomain(form.zero), form.zero)] if form.zero else []
    blocks += [(task.appendrplusdomain(form.nonneg), form.nonneg)] if form.nonneg else []
    blocks += [(task.appendsvecpsdconedomain(tri_len(k)), tri_len(k)) for k in form.psd if k > 0]
    start = 0
    for domain, size in blocks:
        task.appendaccseq(domain, start, None)
        start += size


def _set_params(mk, task, limits: Limits, raw: Mapping[str, Any]) -> None:
    """Limits and native parameters (generic names, e.g. "MSK_DPAR_OPTIMIZER_MAX_TIME")."""
    if limits.verbose:
        task.set_Stream(mk.streamtype.log, sys.stdout.write)
    if limits.time_limit is not None:
        task.putdouparam(mk.dparam.optimizer_max_time, float(limits.time_limit))
    if limits.threads is not None:
        task.putintparam(mk.iparam.num_threads, int(limits.threads))
    for key, value in raw.items():
        try:
            task.putparam(str(key), str(value))
        except mk.Error as err:
            raise InvalidOptionError(f"mosek: parameter {key!r}={value!r} rejected: {err}") from None


def _status(mk, task, trm) -> tuple[SolveStatus, bool]:
    """(status, keep x/y?) from the interior solution status and the termination code."""
    solsta = task.getsolsta(mk.soltype.itr)
    if solsta == mk.solsta.optimal:
        return SolveStatus.OPTIMAL, True
    if solsta == mk.solsta.prim_infeas_cer:
        return SolveStatus.INFEASIBLE, True
    if solsta == mk.solsta.dual_infeas_cer:
        return SolveStatus.UNBOUNDED, False
    limits = {mk.rescode.trm_max_time: SolveStatus.TIME_LIMIT,
              mk.rescode.trm_max_iterations: SolveStatus.ITERATION_LIMIT}
    return limits.get(trm, SolveStatus.NUMERICAL), True


class MosekBackend:
    """ConicPrograms through MOSEK (needs a licence); see the module docstring."""

    name = "mosek"
    forms = ("conic",)

    @cached_property
    def _availability(self) -> Availability:
        try:
            mk = _mosek()
            version = ".".join(map(str, mk.Env.getversion()))
        except Exception as err:
            return Availability(self.name, False, reason=f"mosek not installed ({err})", forms=self.forms)
        try:
            probe = ConicProgram(np.ones(1), np.array([[-1.0]]), -np.ones(1), nonneg=1)  # min x, x ≥ 1
            with mk.Task() as task:
                _build(mk, task, probe)
                task.optimize()
                if task.getsolsta(mk.soltype.itr) != mk.solsta.optimal:
                    raise RuntimeError("probe solve (min x s.t. x ≥ 1) not optimal")
        except Exception as err:
            what = "no licence" if _is_licence_error(err) else "probe solve failed"
            return Availability(self.name, False, version, f"mosek: {what} ({str(err).strip()})", self.forms)
        return Availability(self.name, True, version=version, forms=self.forms)

    def available(self) -> Availability:
        """Installed and licensed (a probe solve succeeded)? Cached; never raises."""
        return self._availability

    def fits(self, form) -> Availability:
        """Any ConicProgram fits a licensed MOSEK; other forms do not."""
        status = self.available()
        if status.available and not isinstance(form, ConicProgram):
            return Availability(self.name, False, status.version, f"cannot solve {type(form).__name__}",
                                self.forms)
        return status

    def solve(self, form: ConicProgram, limits: Limits = Limits(),
              raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form`; unknown `raw` keys raise InvalidOptionError, solver trouble is a Solution."""
        start = time.perf_counter()
        refused = refusal(self, form)
        if refused is not None:
            return refused
        mk = _mosek()
        with mk.Task() as task:
            _set_params(mk, task, limits, dict(raw or {}))
            try:
                _build(mk, task, form)
                trm = task.optimize()
                solve_status, point = _status(mk, task, trm)
                x = task.getxx(mk.soltype.itr) if point and solve_status != SolveStatus.INFEASIBLE else None
                y = task.getaccdotys(mk.soltype.itr) if point else None
                stats = {"iterations": float(task.getintinf(mk.iinfitem.intpnt_iter))}
            except Exception as err:  # a solver failure is a status, never a crash
                bad = SolveStatus.UNAVAILABLE if _is_licence_error(err) else SolveStatus.ERROR
                return Solution(bad, self.name, time.perf_counter() - start, message=f"MOSEK failed: {err}")
        return conic_solution(self.name, form, solve_status, x, y, time.perf_counter() - start,
                              f"MOSEK: {trm}", stats)


BACKEND = MosekBackend()
