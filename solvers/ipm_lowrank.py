"""Rank-r Burer–Monteiro backend ("ipm-lowrank"): optcert's own primal-dual interior point on the
factorisation, numpy/scipy only, with exact derivatives and a structured Newton step.

Problem (as ipopt-lowrank): min ⟨C, UUᵀ⟩ s.t. ⟨Q_i, UUᵀ⟩ = 0 / ≤ 0, U = [e₀ᵀ; W]. Inequalities get
slacks s > 0 with the barrier −μ Σ log s; each iteration takes one Newton step on the perturbed KKT
conditions with the exact Hessian kron(2Q(σc + Mᵀy), I_r) (solvers/bm_operator.py), solved through
the Schur complement on the separable variables (solvers/bm_schur.py: for a ReLU lowering the
system shrinks from n·r + m to about (#unstable neurons)·(r + 3)), the Hessian regularised until
the inertia is right; fraction-to-the-boundary steps, the filter line search with second-order
corrections and the monotone barrier decrease of IPOPT (Wächter & Biegler 2006, "On the
implementation of an interior-point filter line-search algorithm for large-scale nonlinear
programming"; solvers/ipm_step.py). Chiu & Zhang (2023) solve the same problem with Knitro's
interior point.

Output as ipopt-lowrank's: `x` = U row-major, `row_duals` = y (Lagrangian f + yᵀg, y ≥ 0 on ≤ rows),
`objective` = ⟨C, UUᵀ⟩, `bound` None; stats max_violation, iterations, rank, schur_size,
factorizations. OPTIMAL = a KKT point of the BM problem within `tolerance`; CUTOFF = the monitor
asked to stop; a time or iteration limit is a status.
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
from solvers.ipm_step import Iterate, Newton

NAME = "ipm-lowrank"


@dataclass(frozen=True)
class IpmOptions:
    """`tolerance`: scaled KKT error to stop at; `max_iterations`; `noise`: scale (relative to each
    variable's box radius) of the random start of the extra columns; `mu_init`: first barrier
    parameter; `warm_mu`: barrier parameter when started from multipliers; `monitor_every`:
    iterations between calls of the caller's monitor (once μ ≤ `monitor_mu`)."""

    tolerance: float = 1e-8
    max_iterations: int = 500
    noise: float = 0.1
    seed: int = 0
    mu_init: float = 0.1
    warm_mu: float = 1e-3
    monitor_every: int = 3
    monitor_mu: float = 1e-2

    def __post_init__(self):
        if not (0 < self.tolerance < 1) or min(self.max_iterations, self.monitor_every) < 1 or not self.noise >= 0:
            raise InvalidOptionError(f"{NAME}: need 0 < tolerance < 1, max_iterations and monitor_every ≥ 1, "
                                     "noise ≥ 0")
        if not (0 < self.mu_init and 0 < self.warm_mu and 0 < self.monitor_mu):
            raise InvalidOptionError(f"{NAME}: mu_init, warm_mu and monitor_mu must be positive")


class IpmLowRankBackend(LicenceFreeBackend):
    """Burer–Monteiro factorised SDPs (`LowRankSDP`) by optcert's interior point; module doc."""

    name = NAME
    forms = ("lowrank",)
    package = "scipy"
    form_type = LowRankSDP

    def version(self) -> str:
        import scipy

        return f"optcert (scipy {scipy.__version__})"

    def solve(self, form: LowRankSDP, limits: Limits = Limits(), raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form` from its `init`; `raw` holds `IpmOptions` fields."""
        refused = refusal(self, form)
        if refused is not None:
            return refused
        return self.solve_model(form.model, form.model.objective, form.rank, form.init, limits,
                                build_options(IpmOptions, raw))

    def solve_model(self, model: QuadraticModel, objective: np.ndarray, rank: int, init: np.ndarray | None = None,
                    limits: Limits = Limits(), options: IpmOptions = IpmOptions(),
                    duals: np.ndarray | None = None, monitor=None) -> Solution:
        """One BM problem (constraints of `model`, `objective` over its slots) at `rank`, from `init`
        and, when given, multipliers `duals`; `monitor(y, objective) -> bool` sees the multipliers
        every few late iterations, True stops (CUTOFF). Failures and limits come back as Solutions."""
        from threadpoolctl import threadpool_limits

        start = time.perf_counter()
        try:
            with threadpool_limits(limits=int(limits.threads or 1)):
                return _Run(model, objective, rank, options, limits, monitor, start).run(init, duals)
        except Exception as err:  # a solver failure is a status, never a crash
            return Solution(SolveStatus.ERROR, NAME, time.perf_counter() - start,
                            message=f"{NAME} failed: {type(err).__name__}: {err}")


def start_point(model: QuadraticModel, rank: int, init: np.ndarray | None, noise: float, seed: int) -> np.ndarray:
    """W (n × rank): `init`'s columns (U with row 0 = e₀; the boxes' centre without one), the other
    columns noise scaled by each variable's box radius."""
    rng = np.random.default_rng(seed)
    radius = np.sqrt(model.radius2) if model.radius2 is not None else np.ones(model.n)
    W = noise * radius[:, None] * rng.standard_normal((model.n, rank)) / math.sqrt(rank)
    if init is None:
        W[:, 0] = model.center if model.center is not None else 0.0
        return W
    U = np.asarray(init, dtype=np.float64)
    if U.shape[0] != model.n + 1 or U.shape[1] > rank or not np.all(np.isfinite(U)):
        raise ValueError(f"init must be finite with {model.n + 1} rows and at most {rank} columns")
    W[:, :U.shape[1]] = U[1:]
    return W


class _Run:
    """One interior-point solve (module doc)."""

    KAPPA_EPS, KAPPA_MU, THETA_MU = 10.0, 0.2, 1.5

    def __init__(self, model: QuadraticModel, objective, rank: int, opts: IpmOptions, limits: Limits, monitor,
                 start: float):
        self.model, self.r, self.opts, self.monitor, self.start = model, rank, opts, monitor, start
        self.nt = Newton(model, objective, rank)
        self.ineq = ~model.equality
        self.deadline = start + limits.time_limit if limits.time_limit is not None else math.inf
        self.iterations = 0
        self.verbose = limits.verbose

    def errors(self, x: Iterate, rd, c, mu: float) -> float:
        """Scaled KKT error of the barrier problem with parameter mu (IPOPT's E_μ)."""
        m = max(self.model.m, 1)
        yi = x.y[self.ineq]
        sd = max(100.0, float(np.abs(x.y).sum()) / m) / 100.0
        sc = max(100.0, float(np.abs(yi).sum()) / max(yi.size, 1)) / 100.0
        comp = float(np.abs(x.s * yi - mu).max(initial=0.0))
        return max(float(np.abs(rd).max(initial=0.0)) / sd, float(np.abs(c).max(initial=0.0)), comp / sc)

    def run(self, init, duals) -> Solution:
        x = self.initial(init, duals)
        status, message = SolveStatus.ITERATION_LIMIT, "iteration limit"
        for _ in range(self.opts.max_iterations):
            cur = self.nt.point(x.W, x.s, x.mu)
            h = self.nt.op.weights(x.y)
            rd = self.nt.op.grad(h, cur.U)
            if self.errors(x, rd, cur.c, 0.0) <= self.opts.tolerance:
                status, message = SolveStatus.OPTIMAL, "converged"
                break
            if self.update_mu(x, rd, cur.c):
                cur = self.nt.point(x.W, x.s, x.mu)
            if self.ask_monitor(x, cur.f):
                status, message = SolveStatus.CUTOFF, "stopped by the monitor"
                break
            if time.perf_counter() > self.deadline:
                status, message = SolveStatus.TIME_LIMIT, "time limit"
                break
            failure = self.step(x, cur, h, rd)
            if failure:
                status, message = SolveStatus.NUMERICAL, failure
                break
            self.iterations += 1
        return self.result(x, status, message)

    def initial(self, init, duals) -> Iterate:
        W = start_point(self.model, self.r, init, self.opts.noise, self.opts.seed)
        _, g = self.nt.op.values(self.nt.op.factor(W))
        gi = g[self.ineq]
        y = np.zeros(self.model.m)
        if duals is not None:
            y = np.where(np.isfinite(duals), np.asarray(duals, dtype=np.float64), 0.0)
            mu = self.opts.warm_mu
            s = np.maximum(-gi, mu)
            y[self.ineq] = np.maximum(y[self.ineq], mu / s)
        else:
            mu = self.opts.mu_init
            s = np.maximum(-gi, 1e-2 * np.maximum(1.0, np.abs(gi)))
            y[self.ineq] = 1.0
            y = self.nt.equality_multipliers(self.nt.op.factor(W), y)
        x = Iterate(W, s, y, mu)
        theta = self.nt.point(x.W, x.s, x.mu).theta
        x.theta_max, x.theta_min = 1e4 * max(1.0, theta), 1e-4 * max(1.0, theta)
        return x

    def update_mu(self, x: Iterate, rd, c) -> bool:
        """Monotone barrier decrease (Fiacco–McCormick, IPOPT's rule; the filter is reset); True if μ changed."""
        floor, before = self.opts.tolerance / 10, x.mu
        while x.mu > floor and self.errors(x, rd, c, x.mu) <= self.KAPPA_EPS * x.mu:
            x.mu = max(floor, min(self.KAPPA_MU * x.mu, x.mu ** self.THETA_MU))
        if x.mu != before:
            x.filter = []
        return x.mu != before

    def ask_monitor(self, x: Iterate, f: float) -> bool:
        if self.monitor is None or x.mu > self.opts.monitor_mu or self.iterations % self.opts.monitor_every:
            return False
        return bool(self.monitor(x.y.copy(), f))

    def step(self, x: Iterate, cur, h, rd) -> str:
        """One Newton step with the filter line search; '' or what failed."""
        system = self.nt.factorize(x, cur.U, h)
        if system is None:
            return "no inertia-correcting regularisation found"
        red, sig = system
        d = self.nt.direction(x, cur.U, red, sig, rd, cur.c)
        accepted = self.nt.line_search(x, cur, d, red, sig, rd)
        if accepted is None:
            return "step too short (line search failed)"
        x.W, x.s, d, alpha = accepted
        a_y = self.nt.update_duals(x, d[1], alpha)
        if self.verbose:
            print(f"{self.iterations:4d} f={cur.f: .8e} theta={cur.theta:.2e} |rd|={np.abs(rd).max():.2e} "
                  f"mu={x.mu:.1e} delta={x.delta:.1e} a={alpha:.2e} ay={a_y:.2e}", flush=True)
        return ""

    def result(self, x: Iterate, status: SolveStatus, message: str) -> Solution:
        U = self.nt.op.factor(x.W)
        f, g = self.nt.op.values(U)
        viol = float(np.max(np.where(self.model.equality, np.abs(g), np.maximum(g, 0.0)), initial=0.0))
        st = self.nt.st
        stats = {"max_violation": viol, "iterations": float(self.iterations), "rank": float(self.r),
                 "factorizations": float(self.nt.factorizations), "mu": x.mu,
                 "schur_size": float(st.size(self.r))}
        return Solution(status, NAME, time.perf_counter() - self.start, f, None, U.reshape(-1), x.y.copy(), None,
                        message, stats)


BACKEND = IpmLowRankBackend()
