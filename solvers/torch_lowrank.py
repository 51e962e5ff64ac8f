"""Rank-r Burer–Monteiro backend ("torch-lowrank"): augmented Lagrangian + batched L-BFGS in torch.

Solves the `LowRankSDP` restriction of a `QuadraticModel` (Burer & Monteiro 2003; Chiu & Zhang 2023):
  min ⟨C, UUᵀ⟩  s.t.  g_i(U) = ⟨Q_i, UUᵀ⟩ = 0 (equality) / ≤ 0,  U = [e₀ᵀ; W],  W ∈ R^{n×r} free.
Outer loop: augmented Lagrangian (Conn, Gould & Toint 1991; Nocedal & Wright §17.3–17.4) with
ψ = f + Σ_i (w_i² − y_i²)/(2ρ), w = y + ρg (equality rows) or max(0, y + ρg) (inequality rows); after
each inner solve y ← w, and ρ ×= `rho_growth` when an inner solve that reached its tolerance ω left the
violation above 1/4 of the previous one, or any solve left it above the previous one; ω ↓ 10× per solve.
Inner solves: our own batched L-BFGS (compact form, Byrd–Nocedal–Schnabel 1994) with per-problem Armijo
backtracking. torch.optim.LBFGS treats a batch as one vector (shared curvature pairs and step length, so
a batch would not equal one-at-a-time and one hard problem would hold the rest back) and cannot stop per
problem or look at the clock inside a step; ours keeps the R problems independent, freezes those done
and checks `Limits.time_limit` at every evaluation.
Evaluation, R problems at once as block-diagonal sparse patterns: slot values p_s = U_a·U_b by
torch.sparse.sampled_addmm (the fused gather of rows U[slot_row], U[slot_col] and row-wise dot), g = M p
(CSR spmm, batch as columns), ∇_U = (H + Hᵀ)U with H the slot matrix of h = c + Mᵀw (two CSR spmm).
Rows of M are scaled to unit ∞-norm and c to unit ∞-norm per problem (tolerances are in these units).

Output (`Solution`): `x` = U flattened row-major ((n+1)·r values, row 0 = e₀; see `unflatten`);
`row_duals` = y (length m, original scale) for the Lagrangian ⟨C,P⟩ + Σ_i y_i⟨Q_i,P⟩, y_i ≥ 0 on
inequality rows; `objective` = ⟨C, UUᵀ⟩ in float64; `bound` = None (certify from y elsewhere); `stats`:
max_violation (max_i |g_i| / ‖q_i‖∞, inequality rows only their positive part, float64), outer and
inner iterations, rank, rho (scaled units) and grad_norm (‖∇_W L(W, y)‖∞, scaled units).
OPTIMAL means a first-order KKT point of the BM problem within the tolerances, not a global optimum
(that needs S(y) ⪰ 0, which the caller checks — and raises r along its negative eigenvector if not).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from optcert.errors import InvalidOptionError
from optcert.forms import Limits, LowRankSDP, QuadraticModel, Solution, SolveStatus
from optcert.options import build_options
from optcert.precision import Precision, check_device
from solvers.base import LicenceFreeBackend, refusal

NAME = "torch-lowrank"
RHO_MAX = 1e10


def _torch():
    import torch  # lazy: `import optcert` must not import torch

    return torch


@dataclass(frozen=True)
class LowRankOptions:
    """Typed options (also accepted through `raw`, validated). Tolerances are in scaled units."""

    device: str = "cpu"
    precision: Precision = Precision.FLOAT64
    outer_iterations: int = 60
    inner_iterations: int = 2000
    tolerance: float = 1e-7
    grad_tolerance: float = 1e-6
    rho: float = 100.0
    rho_growth: float = 5.0
    memory: int = 10
    seed: int = 0

    def __post_init__(self):
        lowest = {"outer_iterations": 1, "inner_iterations": 1, "memory": 1, "tolerance": 0.0,
                  "grad_tolerance": 0.0, "rho": 0.0, "rho_growth": 1.0}  # ints: ≥, floats: >
        for key, low in lowest.items():
            value, strict = getattr(self, key), isinstance(low, float)
            if not (math.isfinite(value) and (value > low if strict else value >= low)):
                bound = f"{'>' if strict else '≥'} {low}"
                raise InvalidOptionError(f"{NAME}: option {key!r} must be {bound}, got {value!r}")
        check_device(self.device)


def unflatten(solution: Solution, n: int, rank: int) -> np.ndarray:
    """The factor U ((n+1) × rank, row 0 = e₀) stored row-major in `solution.x`."""
    return np.asarray(solution.x, dtype=np.float64).reshape(n + 1, rank)


def _cols(x):
    """(R, k) → (k, R) contiguous (a plain reshape when R = 1: torch's spmm is slow on (1, k) strides)."""
    return x.reshape(-1, 1) if x.shape[0] == 1 else x.T.contiguous()


class _Data:
    """The model on the device: row-scaled CSR M and Mᵀ, R-block slot patterns (slots in CSR order)."""

    def __init__(self, model: QuadraticModel, rank: int, R: int, opts: LowRankOptions):
        import scipy.sparse as sp

        torch = _torch()
        self.n, self.rank, self.S = model.n, rank, model.n_slots
        self.dt, self.dev = opts.precision.torch(), torch.device(opts.device)
        self.ix = torch.int32 if R * (max(self.S, model.n) + 2) < 2 ** 31 else torch.int64
        self.perm = np.lexsort((model.slot_col, model.slot_row))
        a, b = model.slot_row[self.perm], model.slot_col[self.perm]
        self.row_scale = np.maximum(abs(model.constraints).max(axis=1).toarray().ravel(), 1e-300)
        M = (sp.diags(1.0 / self.row_scale) @ model.constraints[:, self.perm]).tocsr()
        self.M, self.Mt = (self._csr(X.indptr, X.indices, X.data, X.shape) for X in (M, M.T.tocsr()))
        self.eq = torch.as_tensor(model.equality, device=self.dev)
        self.e0 = torch.eye(1, rank, dtype=self.dt, device=self.dev)
        tperm = np.lexsort((a, b))  # the transposed (lower) pattern of the same slots
        self.up, self.low = self._tiled(a, b, R), self._tiled(b[tperm], a[tperm], R)
        self.tperm = (torch.as_tensor(tperm)[None] + self.S * torch.arange(R)[:, None]).reshape(-1).to(self.dev)
        self.zero = torch.zeros(R * self.S, dtype=self.dt, device=self.dev)

    def _csr(self, crow, col, values, shape):
        torch = _torch()
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore")
            return torch.sparse_csr_tensor(torch.as_tensor(crow, dtype=self.ix, device=self.dev),
                                           torch.as_tensor(col, dtype=self.ix, device=self.dev),
                                           torch.as_tensor(values, dtype=self.dt, device=self.dev), shape)

    def _tiled(self, i, j, R: int):
        """CSR indices of the block-diagonal matrix of R copies of the (row-sorted) pattern (i, j)."""
        torch, N = _torch(), self.n + 1
        k = torch.arange(R, dtype=torch.int64)[:, None]
        crow = torch.as_tensor(np.searchsorted(i, np.arange(N + 1)))
        crow = torch.cat([(crow[:-1] + i.size * k).reshape(-1), torch.tensor([R * i.size])])
        return crow.to(self.dev, self.ix), (torch.as_tensor(j) + N * k).reshape(-1).to(self.dev, self.ix)

    def _block(self, pattern, values, R: int):
        """The R-block sparse matrix with `pattern` (a prefix of the tiled one) and `values`."""
        N = self.n + 1
        return self._csr(pattern[0][:R * N + 1], pattern[1][:R * self.S], values, (R * N, R * N))

    def evaluate(self, W, C, y, rho):
        """For W (R,n,r), C (R,S), y (R,m), ρ (R,): ψ (R,), ∇_W ψ (R,n,r), g (R,m), w (R,m)."""
        torch = _torch()
        R, N, r = W.shape[0], self.n + 1, self.rank
        U = torch.cat([self.e0.expand(R, 1, r), W], 1).reshape(R * N, r)
        pattern = self._block(self.up, self.zero[:R * self.S], R)
        p = torch.sparse.sampled_addmm(pattern, U, U.T, beta=0.0).values().view(R, self.S)
        g = (self.M @ _cols(p)).T
        shifted = y + rho[:, None] * g
        w = torch.where(self.eq, shifted, shifted.clamp_min(0.0))
        psi = (C * p).sum(1) + (w * w - y * y).sum(1) / (2 * rho)
        h = (C + (self.Mt @ _cols(w)).T).reshape(-1)  # ∂ψ/∂p; ∇_U = (H + Hᵀ)U, diagonal twice
        G = self._block(self.up, h, R) @ U + self._block(self.low, h[self.tperm[:R * self.S]], R) @ U
        return psi, G.view(R, N, r)[:, 1:], g, w


class _Batch:
    """Iterates W (R,n,r) and their last evaluation ψ, ∇ψ, g, w (leading batch dimension R)."""

    def __init__(self, W, m: int):
        torch = _torch()
        R = W.shape[0]
        self.W, self.G = W, torch.zeros_like(W)
        self.psi = torch.full((R,), math.nan, dtype=W.dtype, device=W.device)
        self.g, self.w = (torch.zeros(R, m, dtype=W.dtype, device=W.device) for _ in range(2))

    def put(self, idx, W, values) -> None:
        self.W[idx] = W
        self.psi[idx], self.G[idx], self.g[idx], self.w[idx] = values


def _direction(G, Sh, Yh, gamma):
    """−H·G, H the L-BFGS inverse Hessian in compact form (Byrd, Nocedal & Schnabel 1994; N&W eq. 7.24):
    H = γI + [S γY] [[R⁻ᵀ(D + γYᵀY)R⁻¹, −R⁻ᵀ], [−R⁻¹, 0]] [Sᵀ; γYᵀ], R = triu(SᵀY), D = diag(SᵀY).
    Batched; Sh, Yh (R,mem,N) hold the pairs oldest first, empty slots are zero (and get R_ii = 1)."""
    torch = _torch()
    g = G.flatten(1)[:, :, None]
    SY, YY = Sh @ Yh.transpose(1, 2), Yh @ Yh.transpose(1, 2)
    D = torch.diagonal(SY, dim1=1, dim2=2)
    Rm = torch.triu(SY) + torch.diag_embed((D == 0).to(SY.dtype))
    a, b, gam = Sh @ g, Yh @ g, gamma[:, None, None]
    ra = torch.linalg.solve_triangular(Rm, a, upper=True)
    p = torch.linalg.solve_triangular(Rm.transpose(1, 2), D[..., None] * ra + gam * (YY @ ra - b), upper=False)
    return -(gam * g + Sh.transpose(1, 2) @ p - gam * (Yh.transpose(1, 2) @ ra)).view_as(G)


def _armijo(fn, st: _Batch, idx, D, slope, deadline: float):
    """Per-problem backtracking t = 1, ½, … until ψ(W + tD) ≤ ψ(W) + 10⁻⁴ t·slope + 4ε|ψ(W)|
    (N&W alg. 3.1 with Hager–Zhang's rounding slack); accepted points go into `st`. Returns the mask."""
    torch = _torch()
    t, ok = torch.ones_like(slope), torch.zeros(slope.shape, dtype=torch.bool, device=slope.device)
    W0, psi0 = st.W[idx], st.psi[idx]
    slack = 4 * torch.finfo(slope.dtype).eps * psi0.abs()
    pend = torch.arange(idx.numel(), device=idx.device)
    for _ in range(40):
        Wc = W0[pend] + t[pend, None, None] * D[pend]
        values = fn(idx[pend], Wc)
        good = values[0] <= psi0[pend] + 1e-4 * t[pend] * slope[pend] + slack[pend]
        st.put(idx[pend[good]], Wc[good], tuple(v[good] for v in values))
        ok[pend[good]] = True
        pend = pend[~good]
        if pend.numel() == 0 or time.perf_counter() > deadline:
            break
        t[pend] *= 0.5
    return ok


def _lbfgs(fn, st: _Batch, idx, omega, opts: LowRankOptions, deadline: float):
    """Batched L-BFGS on ψ for problems `idx` until ‖∇ψ‖∞ ≤ ω (per problem), `inner_iterations`,
    a failed line search or the deadline. Updates `st`; returns (iterations per problem, timed out)."""
    torch = _torch()
    st.put(idx, st.W[idx], fn(idx, st.W[idx]))
    R, nvar, mem = idx.numel(), st.W[0].numel(), opts.memory
    Sh, Yh = (torch.zeros(R, mem, nvar, dtype=st.W.dtype, device=st.W.device) for _ in range(2))
    gamma = 1.0 / st.G[idx].flatten(1).norm(dim=1).clamp_min(1.0)
    live, iters = torch.isfinite(st.psi[idx]), torch.zeros(R, dtype=torch.long, device=idx.device)
    for _ in range(opts.inner_iterations):
        if time.perf_counter() > deadline:
            return iters, True
        live &= st.G[idx].flatten(1).abs().amax(1) > omega
        loc = live.nonzero().flatten()
        if loc.numel() == 0:
            break
        G0, W0 = st.G[idx[loc]], st.W[idx[loc]]
        D = _direction(G0, Sh[loc], Yh[loc], gamma[loc])
        slope = (D * G0).flatten(1).sum(1)
        bad = ~(slope < 0)  # not a descent direction: forget the pairs, take a gradient step
        D[bad], Sh[loc[bad]], Yh[loc[bad]] = -gamma[loc[bad], None, None] * G0[bad], 0.0, 0.0
        slope[bad] = -(gamma[loc[bad]] * G0[bad].flatten(1).pow(2).sum(1))
        ok = _armijo(fn, st, idx[loc], D, slope, deadline)
        iters[loc] += 1
        live[loc[~ok]] = False
        s, yv = (st.W[idx[loc]] - W0).flatten(1), (st.G[idx[loc]] - G0).flatten(1)
        sy = (s * yv).sum(1)
        use = ok & (sy > 1e-10 * s.norm(dim=1) * yv.norm(dim=1))
        u = loc[use]
        Sh[u] = torch.cat([Sh[u, 1:], s[use, None]], 1)
        Yh[u] = torch.cat([Yh[u, 1:], yv[use, None]], 1)
        gamma[u] = sy[use] / yv[use].pow(2).sum(1)
    return iters, False


def _classify(status: list, idx, psi, viol, gn, timed: bool, opts: LowRankOptions) -> None:
    """Mark the problems in `idx` that are done: NUMERICAL, OPTIMAL, or TIME_LIMIT when `timed`."""
    for j, i in enumerate(idx.tolist()):
        if not (math.isfinite(psi[j]) and math.isfinite(gn[j])):
            status[i] = SolveStatus.NUMERICAL
        elif viol[j] <= opts.tolerance and gn[j] <= opts.grad_tolerance:
            status[i] = SolveStatus.OPTIMAL
        elif timed:
            status[i] = SolveStatus.TIME_LIMIT


def _alm(data: _Data, C, W, y, opts: LowRankOptions, deadline: float, verbose: bool):
    """Augmented-Lagrangian outer loop over the R problems with scaled objectives C (R,S) from W (R,n,r)
    and multipliers y (R,m). Returns the final `_Batch`, y, ρ (R,), statuses, outer and inner counts."""
    torch = _torch()
    R, m = C.shape[0], data.M.shape[0]
    st = _Batch(W, m)
    status: list[SolveStatus | None] = [None] * R
    rho = torch.full((R,), opts.rho, dtype=W.dtype, device=W.device)
    omega = torch.full_like(rho, max(1e-2, opts.grad_tolerance))
    prev, outer, inner = torch.full_like(rho, math.inf), np.zeros(R, int), np.zeros(R, int)
    fn = lambda sel, Wc: data.evaluate(Wc, C[sel], y[sel], rho[sel])  # noqa: E731
    for k in range(opts.outer_iterations):
        idx = torch.tensor([i for i in range(R) if status[i] is None], dtype=torch.long, device=W.device)
        if idx.numel() == 0:
            break
        its, timed = _lbfgs(fn, st, idx, omega[idx], opts, deadline)
        inner[idx.cpu().numpy()] += its.cpu().numpy()
        outer[idx.cpu().numpy()] += 1
        y[idx] = st.w[idx]
        g = st.g[idx].abs().where(data.eq, st.g[idx].clamp_min(0.0))
        viol, gn = g.amax(1) if g.shape[1] else g.new_zeros(len(idx)), st.G[idx].flatten(1).abs().amax(1)
        _classify(status, idx, st.psi[idx], viol, gn, timed, opts)
        solved = gn <= omega[idx]  # an inexact inner solve only says something when nothing improved
        grow = idx[((solved & (viol > 0.25 * prev[idx])) | (viol > prev[idx])) & (viol > opts.tolerance)]
        rho[grow] = (rho[grow] * opts.rho_growth).clamp_max(RHO_MAX)
        prev[idx] = viol
        omega[idx] = torch.where(solved, (omega[idx] * 0.1).clamp_min(opts.grad_tolerance), omega[idx])
        if verbose:
            print(f"{NAME}: outer {k}: {idx.numel()} active, max violation {float(viol.max()):.2e}, "
                  f"max |grad| {float(gn.max()):.2e}, max rho {float(rho.max()):.1e}")
        if timed:
            break
    final = [s or SolveStatus.ITERATION_LIMIT for s in status]
    return st, y, rho, final, outer, inner


def _start(model: QuadraticModel, rank: int, init, R: int, seed: int) -> np.ndarray:
    """Starting free rows W (R,n,r). Without `init`: v = the boxes' centre (0 without boxes) plus seeded
    0.1·N(0,1) noise in every column. `init` ((n+1,r) or (R,n+1,r)) is reflected (Householder: UUᵀ
    unchanged) so that row 0 is ‖U₀‖e₀, then divided by ‖U₀‖ so that P₀₀ = 1."""
    if init is None:
        W = 0.1 * np.random.default_rng(seed).standard_normal((model.n, rank))
        if model.center is not None:
            W[:, 0] += model.center
        return np.broadcast_to(W, (R, model.n, rank)).copy()
    U = np.array(np.broadcast_to(init, (R, model.n + 1, rank)) if np.ndim(init) == 2 else init, dtype=np.float64)
    if U.shape != (R, model.n + 1, rank) or not np.all(np.isfinite(U)):
        raise ValueError(f"init must be finite with shape {(model.n + 1, rank)} or {(R, model.n + 1, rank)}")
    for u in U:
        v, nrm = u[0].copy(), float(np.linalg.norm(u[0]))
        v[0] -= nrm
        u -= 2.0 * np.outer(u @ v, v) / (v @ v) if v @ v > 0 else 0.0
        u /= nrm if nrm > 0 else 1.0
    return U[:, 1:]


def _report(model, objectives, data: _Data, U, y, rho, status, outer, inner, scale, gn, seconds):
    """One Solution per problem, values re-evaluated in float64 in the original scale."""
    out = []
    for i in range(U.shape[0]):
        p = (U[i][model.slot_row] * U[i][model.slot_col]).sum(1)
        g = model.constraints @ p / data.row_scale
        viol = float(np.max(np.where(model.equality, abs(g), np.maximum(g, 0)), initial=0.0))
        stats = {"max_violation": viol, "outer_iterations": float(outer[i]), "inner_iterations": float(inner[i]),
                 "rank": float(U.shape[2]), "rho": float(rho[i]), "grad_norm": float(gn[i])}
        out.append(Solution(status[i], NAME, seconds, float(objectives[i] @ p), None, U[i].reshape(-1),
                            y[i] * scale[i] / data.row_scale, None, status[i].value, stats))
    return out


class TorchLowRankBackend(LicenceFreeBackend):
    """Burer–Monteiro factorised SDPs (`LowRankSDP`) in torch; see the module docstring."""

    name = NAME
    forms = ("lowrank",)

    package = "torch"
    form_type = LowRankSDP

    def version(self) -> str:
        return str(_torch().__version__)

    def solve(self, form: LowRankSDP, limits: Limits = Limits(), raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form`; `raw` holds `LowRankOptions` fields (bad ones raise InvalidOptionError)."""
        refused = refusal(self, form)
        if refused is not None:
            return refused
        options = build_options(LowRankOptions, raw)
        return self.solve_batch(form.model, form.model.objective[None], form.rank, form.init, limits, options)[0]

    def solve_batch(self, model: QuadraticModel, objectives: np.ndarray, rank: int, init: np.ndarray | None = None,
                    limits: Limits = Limits(), options: LowRankOptions | Mapping[str, Any] | None = None,
                    duals: np.ndarray | None = None) -> list[Solution]:
        """Solve R problems sharing `model`'s constraints, objectives (R × n_slots), at once. `init`: a
        start U ((n+1) × rank, or one per problem); `duals`: starting multipliers y ((m,) or (R, m), as
        in `row_duals`, e.g. from a lower rank of the staircase). Bad options raise InvalidOptionError,
        bad shapes ValueError; solver failures and limits come back as Solutions."""
        start = time.perf_counter()
        opts = options if isinstance(options, LowRankOptions) else build_options(LowRankOptions, options)
        objectives = np.atleast_2d(np.asarray(objectives, dtype=np.float64))
        R = objectives.shape[0]
        y0 = np.zeros((R, model.m)) if duals is None else np.broadcast_to(np.asarray(duals, np.float64), (R, model.m))
        if objectives.shape[1] != model.n_slots or rank < 1 or not np.all(np.isfinite(y0)):
            raise ValueError(f"objectives must be R × {model.n_slots}, rank ≥ 1 and duals finite")
        y0 = np.where(model.equality, y0, np.maximum(y0, 0.0))
        W0, torch = _start(model, rank, init, R, opts.seed), _torch()
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(int(limits.threads or threads))
            return self._run(model, objectives, rank, W0, y0, limits, opts, start)
        except Exception as err:  # a solver failure is a status, never a crash
            return [Solution(SolveStatus.ERROR, self.name, time.perf_counter() - start,
                             message=f"{NAME} failed: {type(err).__name__}: {err}")] * R
        finally:
            torch.set_num_threads(threads)

    def _run(self, model, objectives, rank, W0, y0, limits: Limits, opts: LowRankOptions, start: float):
        torch = _torch()
        data = _Data(model, rank, objectives.shape[0], opts)
        scale = np.abs(objectives).max(axis=1, initial=0.0)
        scale = np.where(scale > 0, scale, 1.0)
        C = torch.as_tensor(objectives[:, data.perm] / scale[:, None], dtype=data.dt, device=data.dev)
        W = torch.as_tensor(W0, dtype=data.dt, device=data.dev)
        deadline = start + limits.time_limit if limits.time_limit is not None else math.inf
        y = torch.as_tensor(y0 * data.row_scale / scale[:, None], dtype=data.dt, device=data.dev)
        st, y, rho, status, outer, inner = _alm(data, C, W, y, opts, deadline, limits.verbose)
        U = np.concatenate([np.broadcast_to(np.eye(1, rank), (len(W0), 1, rank)), st.W.double().cpu().numpy()], 1)
        gn = st.G.flatten(1).abs().amax(1).double().cpu().numpy()
        return _report(model, objectives, data, U, y.double().cpu().numpy(), rho.double().cpu().numpy(),
                       status, outer, inner, scale, gn, time.perf_counter() - start)


BACKEND = TorchLowRankBackend()
solve_batch = BACKEND.solve_batch
