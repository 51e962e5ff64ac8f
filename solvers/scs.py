"""SCS adapter (`scs.SCS(data, cone, **settings).solve()`, no modelling layer): the licence-free
default for ConicPrograms.

SCS 3.x's standard form is forms.py's: min cᵀx s.t. Ax + s = b, s ∈ K with cones in the order
zero ("z"), nonnegative ("l"), PSD ("s", lower triangle column by column, off-diagonals ×√2 —
verified in tests/solvers/test_conic_conformance.py), and its dual y ∈ K* with Aᵀy + c = 0,
dual objective −bᵀy. So A, b, c and the returned x, y pass through unchanged.

Defaults: eps_abs = eps_rel = 1e-7 (SCS's own 1e-4 is too coarse, see SOLVERS.md), verbose off,
`Limits.time_limit` → `time_limit_secs`. `raw` holds native SCS settings (they override these).
Status: solved → OPTIMAL; "solved (inaccurate …)" → TIME_LIMIT / ITERATION_LIMIT when SCS says
it stopped at time_limit_secs / max_iters, else NUMERICAL — x and y are still returned so that a
certificate can be computed from them, but `bound` is None. infeasible → INFEASIBLE (row_duals =
SCS's certificate), unbounded → UNBOUNDED; the inaccurate infeasible/unbounded claims → the limit
that stopped SCS, else NUMERICAL; indeterminate → NUMERICAL; failed / interrupted → ERROR.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from optcert.errors import InvalidOptionError
from optcert.forms import ConicProgram, Limits, Solution, SolveStatus
from solvers.base import LicenceFreeBackend, refusal
from solvers.psd_vec import conic_solution

DEFAULTS: dict[str, Any] = {"eps_abs": 1e-7, "eps_rel": 1e-7, "verbose": False}


def _scs():
    import scs  # lazy: imported only when a conic solve asks for it

    return scs


def _settings(limits: Limits, raw: Mapping[str, Any]) -> dict[str, Any]:
    """SCS keyword settings from defaults, `Limits` and `raw` (raw wins)."""
    settings = {**DEFAULTS, "verbose": bool(limits.verbose)}
    if limits.time_limit is not None:
        settings["time_limit_secs"] = float(limits.time_limit)
    settings.update(raw)
    return settings


def _validate(scs, raw: Mapping[str, Any]) -> None:
    """Try each native setting on a 1×1 problem; an unknown key or bad value → InvalidOptionError."""
    data = {"A": sp.csc_matrix(np.ones((1, 1))), "b": np.ones(1), "c": np.zeros(1)}
    for key, value in raw.items():
        try:
            scs.SCS(data, {"z": 1}, **{"verbose": False, str(key): value})
        except (TypeError, ValueError) as err:
            raise InvalidOptionError(f"scs: setting {key!r}={value!r} rejected: {err}") from None


def _cone(form: ConicProgram) -> dict[str, Any]:
    return {"z": form.zero, "l": form.nonneg, "s": [n for n in form.psd if n > 0]}


def _status(scs, info: Mapping[str, Any]) -> tuple[SolveStatus, bool]:
    """(status, keep x/y as a point?) from SCS's status_val and status text."""
    code, text = int(info["status_val"]), str(info["status"])
    if code == scs.SOLVED:
        return SolveStatus.OPTIMAL, True
    if code in (scs.INFEASIBLE, scs.UNBOUNDED):
        return (SolveStatus.INFEASIBLE if code == scs.INFEASIBLE else SolveStatus.UNBOUNDED), True
    point = code == scs.SOLVED_INACCURATE
    if code in (scs.SOLVED_INACCURATE, scs.INFEASIBLE_INACCURATE, scs.UNBOUNDED_INACCURATE):
        if "time_limit" in text:
            return SolveStatus.TIME_LIMIT, point
        if "max_iters" in text:
            return SolveStatus.ITERATION_LIMIT, point
        return SolveStatus.NUMERICAL, point
    if code == scs.INDETERMINATE:
        return SolveStatus.NUMERICAL, False
    return SolveStatus.ERROR, False  # failed, interrupted, unfinished


def _stats(info: Mapping[str, Any]) -> dict[str, float]:
    """SCS's own diagnostics (its residuals are scaled differently from psd_vec.kkt_residuals)."""
    keys = {"iter": "iterations", "res_pri": "scs_res_pri", "res_dual": "scs_res_dual",
            "gap": "scs_gap", "setup_time": "setup_ms", "solve_time": "solve_ms"}
    return {name: float(info[key]) for key, name in keys.items() if key in info}


class ScsBackend(LicenceFreeBackend):
    """ConicPrograms through SCS; see the module docstring for conventions."""

    name = "scs"
    forms = ("conic",)

    package = "scs"
    form_type = ConicProgram

    def version(self) -> str:
        return str(_scs().__version__)

    def solve(self, form: ConicProgram, limits: Limits = Limits(),
              raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form`; unknown `raw` keys raise InvalidOptionError, solver trouble is a Solution."""
        start = time.perf_counter()
        refused = refusal(self, form)
        if refused is not None:
            return refused
        scs = _scs()
        _validate(scs, dict(raw or {}))
        try:
            data = {"A": form.A, "b": form.b, "c": form.c}
            result = scs.SCS(data, _cone(form), **_settings(limits, dict(raw or {}))).solve()
        except Exception as err:  # a solver failure is a status, never a crash
            return Solution(SolveStatus.ERROR, self.name, time.perf_counter() - start,
                            message=f"SCS failed: {err}")
        info = result["info"]
        solve_status, point = _status(scs, info)
        x, y = (result["x"], result["y"]) if point else (None, None)
        return conic_solution(self.name, form, solve_status, x, y, time.perf_counter() - start,
                              f"SCS: {info['status']}", _stats(info))


BACKEND = ScsBackend()
