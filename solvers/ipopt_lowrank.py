"""Rank-r Burer–Monteiro backend ("ipopt-lowrank"): the interior-point method IPOPT (Wächter &
Biegler 2006) with exact first and second derivatives (solvers/bm_derivatives.py), through
`cyipopt` — the PyPI wheel `cyipopt-wheels` bundles IPOPT 3.14 with MUMPS and OpenBLAS, so
`pip install optcert[ipopt]` needs no system library. Chiu & Zhang (2023) solve the same
factorised problem with Knitro's interior point and the exact Hessian; IPOPT is the well-kept,
licence-free equivalent. MUMPS runs with the AMD fill-reducing ordering (measured: 109 → 14 CPU-s of
linear algebra on one row of the 784-100-100 net) and the bundled BLAS with `Limits.threads`
threads (default 1: two threads inflated wall time 5× on the 2-core machines).

Problem: min ⟨C, UUᵀ⟩ s.t. ⟨Q_i, UUᵀ⟩ = 0 / ≤ 0, U = [e₀ᵀ; W]. Output as torch-lowrank's:
`x` = U row-major, `row_duals` = IPOPT's constraint multipliers λ (Lagrangian f + λᵀg, λ ≥ 0 on
≤ rows, the model's convention), `objective` = ⟨C, UUᵀ⟩, `bound` None (certify from y elsewhere),
stats max_violation, iterations, rank. OPTIMAL = a KKT point of the BM problem (global for the SDP
only when S(y) ⪰ 0, which the caller checks). A time limit stops it between iterations.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from optcert.errors import InvalidOptionError
from optcert.forms import Limits, LowRankSDP, QuadraticModel, Solution, SolveStatus
from optcert.options import build_options
from solvers.base import LicenceFreeBackend, refusal
from solvers.bm_derivatives import BmDerivatives

NAME = "ipopt-lowrank"
_INF = 1e20
_ORDERINGS = {"amd": 0, "amf": 2, "scotch": 3, "pord": 4, "metis": 5, "qamd": 6, "auto": 7}
_STATUS = {0: SolveStatus.OPTIMAL, 1: SolveStatus.OPTIMAL, 2: SolveStatus.INFEASIBLE,
           -1: SolveStatus.ITERATION_LIMIT, -4: SolveStatus.TIME_LIMIT, -5: SolveStatus.TIME_LIMIT,
           5: SolveStatus.TIME_LIMIT}


@dataclass(frozen=True)
class IpoptOptions:
    """`tolerance`: IPOPT's scaled KKT tolerance (`tol`); `max_iterations`; `ordering`: MUMPS
    fill-reducing ordering (amd | amf | scotch | pord | metis | qamd | auto); `mu_strategy`:
    monotone | adaptive; `noise`: scale of the random start of the extra columns when none given;
    `monitor_every`: iterations between calls of the caller's monitor."""

    tolerance: float = 1e-8
    max_iterations: int = 3000
    ordering: str = "amd"
    mu_strategy: str = "monotone"
    noise: float = 1e-1
    seed: int = 0
    monitor_every: int = 5

    def __post_init__(self):
        if not (0 < self.tolerance < 1) or min(self.max_iterations, self.monitor_every) < 1 or not self.noise >= 0:
            raise InvalidOptionError(f"{NAME}: need 0 < tolerance < 1, max_iterations and monitor_every ≥ 1, "
                                     "noise ≥ 0")
        if self.ordering not in _ORDERINGS:
            raise InvalidOptionError(f"{NAME}: option 'ordering' must be one of {', '.join(_ORDERINGS)}, "
                                     f"got {self.ordering!r}")
        if self.mu_strategy not in ("monotone", "adaptive"):
            raise InvalidOptionError(f"{NAME}: option 'mu_strategy' must be monotone or adaptive")


class _Nlp:
    """cyipopt's problem object over `BmDerivatives`, with a wall-clock stop and an optional
    `monitor(multipliers, objective) -> stop?` consulted every `every` iterations once μ ≤ 1e-2."""

    def __init__(self, d: BmDerivatives, deadline: float, monitor=None, every: int = 5):
        self.d, self.deadline, self.iterations = d, deadline, 0
        self.monitor, self.every, self.problem, self.stopped = monitor, every, None, False

    def objective(self, w):
        return self.d.objective(w)

    def gradient(self, w):
        return self.d.gradient(w)

    def constraints(self, w):
        return self.d.constraints(w)

    def jacobian(self, w):
        return self.d.jacobian(w)

    def jacobianstructure(self):
        return self.d.jac_rows, self.d.jac_cols

    def hessian(self, w, lam, sigma):
        return self.d.hessian(sigma, lam)

    def hessianstructure(self):
        return self.d.hess_rows, self.d.hess_cols

    def intermediate(self, *args):
        self.iterations, mu = int(args[1]), float(args[5])
        if self.monitor is not None and self.problem is not None and mu <= 1e-2 and self.iterations % self.every == 0:
            if self.monitor(np.array(self.problem.get_current_iterate(scaled=False)["mult_g"]), float(args[2])):
                self.stopped = True
                return False
        return time.perf_counter() < self.deadline


def start_factor(model: QuadraticModel, rank: int, init: np.ndarray | None, noise: float, seed: int) -> np.ndarray:
    """W (n × rank) from `init` (U with row 0 = e₀; a narrower U is padded with noise columns) or the
    boxes' centre plus noise."""
    rng = np.random.default_rng(seed)
    W = noise * rng.standard_normal((model.n, rank))
    if init is None:
        if model.center is not None:
            W[:, 0] += model.center
        return W
    U = np.asarray(init, dtype=np.float64)
    if U.shape[0] != model.n + 1 or U.shape[1] > rank or not np.all(np.isfinite(U)):
        raise ValueError(f"init must be finite with {model.n + 1} rows and at most {rank} columns")
    W[:, :U.shape[1]] = U[1:]
    return W


class IpoptLowRankBackend(LicenceFreeBackend):
    """Burer–Monteiro factorised SDPs (`LowRankSDP`) by IPOPT; see the module docstring."""

    name = NAME
    forms = ("lowrank",)
    package = "cyipopt (pip install optcert[ipopt])"
    form_type = LowRankSDP

    def version(self) -> str:
        import cyipopt

        return str(getattr(cyipopt, "__version__", "?"))

    def solve(self, form: LowRankSDP, limits: Limits = Limits(), raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form` from its `init`; `raw` holds `IpoptOptions` fields."""
        refused = refusal(self, form)
        if refused is not None:
            return refused
        return self.solve_model(form.model, form.model.objective, form.rank, form.init, limits,
                                build_options(IpoptOptions, raw))

    def solve_model(self, model: QuadraticModel, objective: np.ndarray, rank: int, init: np.ndarray | None = None,
                    limits: Limits = Limits(), options: IpoptOptions = IpoptOptions(),
                    duals: np.ndarray | None = None, monitor=None) -> Solution:
        """One BM problem (constraints of `model`, `objective` over its slots) at `rank`, started at
        `init` and, when given, at multipliers `duals`. `monitor(y, objective) -> bool` sees the
        current multipliers every few late iterations; True stops the solve (status CUTOFF: the caller has what
        it needed, e.g. a certificate). Failures and limits come back as Solutions."""
        start = time.perf_counter()
        try:
            import cyipopt  # noqa: F401  (its BLAS must be loaded before the limit is set)
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=int(limits.threads or 1)):
                return self._run(model, objective, rank, init, limits, options, duals, start, monitor)
        except Exception as err:  # a solver failure is a status, never a crash
            return Solution(SolveStatus.ERROR, NAME, time.perf_counter() - start,
                            message=f"{NAME} failed: {type(err).__name__}: {err}")

    def _run(self, model, objective, rank, init, limits: Limits, opts: IpoptOptions, duals, start: float,
             monitor=None):
        import cyipopt

        d = BmDerivatives(model, objective, rank)
        W0 = start_factor(model, rank, init, opts.noise, opts.seed)
        deadline = start + limits.time_limit if limits.time_limit is not None else math.inf
        nlp = _Nlp(d, deadline, monitor, opts.monitor_every)
        cu = np.zeros(model.m)
        cl = np.where(model.equality, 0.0, -_INF)
        problem = cyipopt.Problem(n=W0.size, m=model.m, problem_obj=nlp, lb=np.full(W0.size, -_INF),
                                  ub=np.full(W0.size, _INF), cl=cl, cu=cu)
        nlp.problem = problem
        for key, value in self._settings(limits, opts, duals is not None, deadline).items():
            problem.add_option(key, value)
        kwargs = {} if duals is None else {"lagrange": np.asarray(duals, dtype=np.float64)}
        w, info = problem.solve(W0.reshape(-1), **kwargs)
        U = d.factor(w)
        g = d.constraints(w)
        viol = float(np.max(np.where(model.equality, np.abs(g), np.maximum(g, 0.0)), initial=0.0))
        status = SolveStatus.CUTOFF if nlp.stopped else _STATUS.get(int(info["status"]), SolveStatus.NUMERICAL)
        if status is SolveStatus.NUMERICAL and time.perf_counter() >= deadline:
            status = SolveStatus.TIME_LIMIT
        stats = {"max_violation": viol, "iterations": float(nlp.iterations), "rank": float(rank),
                 "ipopt_status": float(info["status"])}
        return Solution(status, NAME, time.perf_counter() - start, float(d.c @ d.slots(U)), None, U.reshape(-1),
                        np.asarray(info["mult_g"], dtype=np.float64), None,
                        str(info.get("status_msg", b"")), stats)

    @staticmethod
    def _settings(limits: Limits, opts: IpoptOptions, warm: bool, deadline: float) -> dict:
        settings: dict[str, Any] = {
            "tol": opts.tolerance, "max_iter": opts.max_iterations, "hessian_approximation": "exact",
            "linear_solver": "mumps", "mumps_pivot_order": _ORDERINGS[opts.ordering],
            "mu_strategy": opts.mu_strategy, "print_level": 5 if limits.verbose else 0, "sb": "yes"}
        if math.isfinite(deadline):
            settings["max_wall_time"] = max(1e-3, deadline - time.perf_counter())
        if warm:
            settings.update({"warm_start_init_point": "yes", "mu_init": 1e-4})
        return settings


BACKEND = IpoptLowRankBackend()
