"""Clarabel adapter (`clarabel.DefaultSolver(P, q, A, b, cones, settings)`, P = 0): an accurate
interior-point solver for ConicPrograms (slow beyond n ≈ 60, see SOLVERS.md).

Clarabel's form is forms.py's (min qᵀx s.t. Ax + s = b, s ∈ K; dual z ∈ K* with Aᵀz + q = 0,
dual objective −bᵀz) except that `PSDTriangleConeT(n)` takes the UPPER triangle column by column
(√2-scaled) where forms.py takes the lower one — verified in tests/solvers. The same numbers in
another order: each PSD block's rows of A and b are permuted (psd_vec.row_permutation) on the
way in, and z and s are permuted back on the way out; x is untouched.

Settings: Clarabel's defaults, verbose from `Limits`, `time_limit` and `max_threads` from
`Limits`; `raw` sets any other `DefaultSettings` attribute (unknown names or bad values raise
InvalidOptionError). Status: Solved → OPTIMAL; PrimalInfeasible → INFEASIBLE (row_duals =
Clarabel's certificate); DualInfeasible → UNBOUNDED; MaxTime → TIME_LIMIT; MaxIterations →
ITERATION_LIMIT; AlmostSolved, NumericalError, InsufficientProgress → NUMERICAL — these keep x and
z (for a certificate) but `bound` is None; Almost(Primal|Dual)Infeasible → NUMERICAL without a
point; anything else → ERROR.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from optcert.errors import InvalidOptionError
from optcert.forms import ConicProgram, Limits, Solution, SolveStatus
from solvers.base import LicenceFreeBackend, refusal
from solvers.psd_vec import conic_solution, row_permutation


def _clarabel():
    import clarabel  # lazy: imported only when a conic solve asks for it

    return clarabel


#: Clarabel status name → (SolveStatus, keep x/z as a point?)
_STATUS = {
    "Solved": (SolveStatus.OPTIMAL, True),
    "PrimalInfeasible": (SolveStatus.INFEASIBLE, True),
    "DualInfeasible": (SolveStatus.UNBOUNDED, False),
    "MaxTime": (SolveStatus.TIME_LIMIT, True),
    "MaxIterations": (SolveStatus.ITERATION_LIMIT, True),
    "AlmostSolved": (SolveStatus.NUMERICAL, True),
    "NumericalError": (SolveStatus.NUMERICAL, True),
    "InsufficientProgress": (SolveStatus.NUMERICAL, True),
    "AlmostPrimalInfeasible": (SolveStatus.NUMERICAL, False),
    "AlmostDualInfeasible": (SolveStatus.NUMERICAL, False),
}


def _settings(cl, limits: Limits, raw: Mapping[str, Any]):
    """A DefaultSettings from `Limits` and `raw`; unknown names or bad values → InvalidOptionError."""
    settings = cl.DefaultSettings()
    settings.verbose = bool(limits.verbose)
    if limits.time_limit is not None:
        settings.time_limit = float(limits.time_limit)
    if limits.threads is not None:
        settings.max_threads = int(limits.threads)
    for key, value in raw.items():
        key = str(key)
        if key.startswith("_") or not hasattr(settings, key) or callable(getattr(settings, key)):
            raise InvalidOptionError(f"clarabel: unknown setting {key!r}")
        try:
            setattr(settings, key, value)
        except (TypeError, ValueError, AttributeError, OverflowError) as err:
            raise InvalidOptionError(f"clarabel: setting {key!r}={value!r} rejected: {err}") from None
    return settings


def _cones(cl, form: ConicProgram) -> list:
    cones = [cl.ZeroConeT(form.zero)] if form.zero else []
    cones += [cl.NonnegativeConeT(form.nonneg)] if form.nonneg else []
    return cones + [cl.PSDTriangleConeT(n) for n in form.psd if n > 0]


def _unpermute(values, perm: np.ndarray) -> np.ndarray:
    """Solver-order vector → forms.py row order (out[perm] = values)."""
    out = np.empty(perm.size)
    out[perm] = np.asarray(values, dtype=np.float64)
    return out


class ClarabelBackend(LicenceFreeBackend):
    """ConicPrograms through Clarabel; see the module docstring for conventions."""

    name = "clarabel"
    forms = ("conic",)

    package = "clarabel"
    form_type = ConicProgram

    def version(self) -> str:
        return str(_clarabel().__version__)

    def solve(self, form: ConicProgram, limits: Limits = Limits(),
              raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form`; unknown `raw` keys raise InvalidOptionError, solver trouble is a Solution."""
        start = time.perf_counter()
        refused = refusal(self, form)
        if refused is not None:
            return refused
        cl = _clarabel()
        settings = _settings(cl, limits, dict(raw or {}))
        perm = row_permutation(form)
        try:
            n = form.c.size
            A = sp.csc_matrix(form.A.tocsr()[perm])
            solver = cl.DefaultSolver(sp.csc_matrix((n, n)), form.c, A, form.b[perm], _cones(cl, form),
                                      settings)
            result = solver.solve()
        except Exception as err:  # a solver failure is a status, never a crash
            return Solution(SolveStatus.ERROR, self.name, time.perf_counter() - start,
                            message=f"Clarabel failed: {err}")
        name = str(result.status).split(".")[-1]
        solve_status, point = _STATUS.get(name, (SolveStatus.ERROR, False))
        x, z = (result.x, _unpermute(result.z, perm)) if point else (None, None)
        stats = {"iterations": float(result.iterations), "clarabel_r_prim": float(result.r_prim),
                 "clarabel_r_dual": float(result.r_dual), "solve_s": float(result.solve_time)}
        return conic_solution(self.name, form, solve_status, x, z, time.perf_counter() - start,
                              f"Clarabel: {name}", stats)


BACKEND = ClarabelBackend()
