"""Inner solves of the torch backend (solvers/torch_lowrank.py): minimise the augmented Lagrangian ψ
over W for R problems at once, each on its own, over the product of the balls kept by projection
(solvers/torch_bm_data.py; none when they are penalised).

Both methods take a descent direction D for the reduced gradient Gr (the gradient with its radial
part removed on active spheres), then search along the projected arc W(t) = Π(W + tD): per problem,
t = 1, ½, … until ψ(W(t)) ≤ ψ(W) + 10⁻⁴⟨G, W(t) − W⟩ + 4ε|ψ(W)| (Armijo along the projection arc,
Bertsekas 1982; Hager–Zhang's rounding slack).
- "newton": truncated Newton–CG (Nocedal & Wright alg. 7.1) on the exact Hessian-vector products
  of ψ, restricted to the tangent spaces of the active spheres (plus their curvature μI); CG stops
  at relative residual η = min(½, √‖Gr‖∞) (superlinear forcing), after `cg_iterations`, or at a
  direction p of negative curvature κ = pᵀHp/‖p‖² < 0: then the iterate so far plus the downhill unit
  direction along p times |κ| (Royer & Wright 2018, "Complexity analysis of second-order line-search
  algorithms for smooth nonconvex optimization"); λ ÷4 after a full step, ×4 after one below ¼.
- "lbfgs": compact-form batched L-BFGS (Byrd, Nocedal & Schnabel 1994; N&W eq. 7.24) on Gr.
  torch.optim.LBFGS treats a batch as one vector (shared curvature pairs and step length) and cannot
  stop per problem or look at the clock inside a step; ours keeps the R problems independent.
"""
from __future__ import annotations

import math
import time

from solvers.torch_bm_data import Balls, lazy_torch

DAMPING = 1.0          # starting Levenberg–Marquardt term λ (scaled units); ×4 / ÷4 per step
DAMPING_MIN = 1e-10
STALL, STALL_STEPS = 1e-12, 5   # a stall: this many steps in a row lowering ψ by ≤ STALL·(1 + |ψ|)
ETA = 0.5                       # CG forcing term: relative residual min(ETA, √‖Gr‖∞)


def dot(a, b):
    """Per-problem inner products of (R, n, r) batches."""
    return (a * b).flatten(1).sum(1)


class Batch:
    """Iterates W (R,n,r) and their last evaluation: ψ, ∇ψ, reduced gradient, ball μ (and active
    mask, offsets), g, w."""

    def __init__(self, W, m: int, nb: int):
        torch = lazy_torch()
        R = W.shape[0]
        self.W, self.G, self.Gr = W, torch.zeros_like(W), torch.zeros_like(W)
        self.psi = torch.full((R,), math.nan, dtype=W.dtype, device=W.device)
        self.g, self.w = (torch.zeros(R, m, dtype=W.dtype, device=W.device) for _ in range(2))
        self.mu = torch.zeros(R, nb, dtype=W.dtype, device=W.device)
        self.on = torch.zeros(R, nb, dtype=torch.bool, device=W.device)
        self.d = torch.zeros(R, nb, W.shape[2], dtype=W.dtype, device=W.device)
        self.gap = torch.zeros(R, nb, dtype=W.dtype, device=W.device)
        self.damping = torch.full((R,), DAMPING, dtype=W.dtype, device=W.device)

    def put(self, idx, W, values, balls: Balls) -> None:
        psi, G, g, w = values
        self.W[idx], self.psi[idx], self.G[idx], self.g[idx], self.w[idx] = W, psi, G, g, w
        if balls.count:
            self.Gr[idx], self.mu[idx], self.on[idx], self.d[idx], self.gap[idx] = balls.reduce(W, G)
        else:
            self.Gr[idx] = G


def _armijo(fn, balls: Balls, st: Batch, idx, D, deadline: float):
    """Per-problem backtracking along the projected arc (module doc); accepted points go into `st`.
    Returns the mask of problems that moved."""
    torch = lazy_torch()
    R = idx.numel()
    t, ok = torch.ones(R, dtype=D.dtype, device=D.device), torch.zeros(R, dtype=torch.bool, device=D.device)
    W0, psi0, G0 = st.W[idx], st.psi[idx], st.G[idx]
    slack = 4 * torch.finfo(D.dtype).eps * psi0.abs()
    pend = torch.arange(R, device=idx.device)
    for _ in range(40):
        Wc = balls.project(W0[pend] + t[pend, None, None] * D[pend])
        values = fn(idx[pend], Wc)
        good = values[0] <= psi0[pend] + 1e-4 * dot(G0[pend], Wc - W0[pend]) + slack[pend]
        st.put(idx[pend[good]], Wc[good], tuple(v[good] for v in values), balls)
        ok[pend[good]] = True
        pend = pend[~good]
        if pend.numel() == 0 or time.perf_counter() > deadline:
            break
        t[pend] *= 0.5
    return ok, t


def _cg(product, Gr, maxit: int, precondition):
    """Truncated preconditioned CG on (reduced Hessian) D = −Gr per problem (module doc);
    `precondition` maps a residual to M⁻¹r (in the same tangent space). Returns (D, iterations,
    negative curvature met)."""
    torch = lazy_torch()
    x, r = torch.zeros_like(Gr), -Gr
    z = precondition(r)
    p, rz, rr = z.clone(), dot(r, z), dot(r, r)
    eta = Gr.flatten(1).abs().amax(1).sqrt().clamp_max(ETA)
    tol2 = (eta * eta) * rr
    live = rr > 0
    its = 0
    curved = torch.zeros(Gr.shape[0], dtype=torch.bool, device=Gr.device)
    for k in range(maxit):
        if not bool(live.any()):
            break
        its = k + 1
        Hp = product(p)
        pHp = dot(p, Hp)
        pp = dot(p, p)
        neg = live & ~(pHp > 1e-14 * pp)
        curved |= neg
        if bool(neg.any()):   # negative curvature: add the unit direction along p scaled by |κ|, downhill
            kappa = (pHp / pp.clamp_min(1e-300)).abs()
            sign = torch.where(dot(Gr, p) > 0, -1.0, 1.0).to(Gr.dtype)
            step = (sign * kappa / pp.clamp_min(1e-300).sqrt())[:, None, None] * p
            x[neg] += step[neg]
        live &= ~neg
        alpha = torch.where(live, rz / pHp.where(live, torch.ones_like(pHp)), torch.zeros_like(rz))
        x += alpha[:, None, None] * p
        r -= alpha[:, None, None] * Hp
        rr = dot(r, r)
        live &= rr > tol2
        z = precondition(r)
        rz_new = dot(r, z)
        beta = torch.where(live, rz_new / rz.where(rz != 0, torch.ones_like(rz)), torch.zeros_like(rz))
        p = z + beta[:, None, None] * p
        rz = rz_new
    return x, its, curved


def _newton_direction(data, C, rho, st: Batch, loc, opts):
    """Damped Newton–CG direction for the problems `loc` (indices into the batch): preconditioned CG
    on (reduced Hessian + λI) D = −Gr, λ = `st.damping`, Jacobi preconditioner (BmData.diagonal),
    tangent on the ε-active spheres. A ball row on its sphere that is not active but that D would
    push outwards joins the tangent set and D is recomputed (at most twice more): projection would
    clip it at first order. Returns (D, CG iterations, negative curvature met)."""
    torch = lazy_torch()
    balls = data.balls
    W, w, on, d, mu = st.W[loc], st.w[loc], st.on[loc], st.d[loc], st.mu[loc]
    full, lam = data.hessian(W, C[loc], w, rho[loc]), st.damping[loc][:, None, None]
    diag = data.diagonal(W, C[loc], w, rho[loc]) + lam
    if balls.count:
        diag[:, balls.var] += mu[..., None]
        edge = (d * d).sum(2).sqrt() >= balls.rad * (1 - 1e-9)
    total, curved = 0, torch.zeros(loc.numel(), dtype=torch.bool, device=loc.device)
    for _ in range(3):
        system = _System(full, lam, diag, balls, on, d, mu)
        D, its, bent = _cg(system.product, system.tangent(st.Gr[loc]), opts.cg_iterations, system.precondition)
        total, curved = total + its, curved | bent
        if not balls.count:
            break
        out = edge & ~on & ((D[:, balls.var] * d).sum(2) > 0)
        if not bool(out.any()):
            break
        on = on | out
    return D, total, curved


class _System:
    """The damped reduced Newton system on the tangent set `on`: products and preconditioner."""

    def __init__(self, full, lam, diag, balls: Balls, on, d, mu):
        self.full, self.lam, self.diag, self.balls, self.on, self.d, self.mu = full, lam, diag, balls, on, d, mu

    def tangent(self, X):
        return Balls.tangent(self.balls.var, X, self.on, self.d) if self.balls.count else X

    def product(self, D):
        out = self.tangent(self.full(D) + self.lam * D)
        if self.balls.count:
            out[:, self.balls.var] += self.mu[..., None] * D[:, self.balls.var]
        return out

    def precondition(self, r):
        return self.tangent(r / self.diag)


def _lbfgs_direction(G, Sh, Yh, gamma):
    """−H·G, H the L-BFGS inverse Hessian in compact form (Byrd, Nocedal & Schnabel 1994; N&W eq. 7.24):
    H = γI + [S γY] [[R⁻ᵀ(D + γYᵀY)R⁻¹, −R⁻ᵀ], [−R⁻¹, 0]] [Sᵀ; γYᵀ], R = triu(SᵀY), D = diag(SᵀY).
    Batched; Sh, Yh (R,mem,N) hold the pairs oldest first, empty slots are zero (and get R_ii = 1)."""
    torch = lazy_torch()
    g = G.flatten(1)[:, :, None]
    SY, YY = Sh @ Yh.transpose(1, 2), Yh @ Yh.transpose(1, 2)
    Dg = torch.diagonal(SY, dim1=1, dim2=2)
    Rm = torch.triu(SY) + torch.diag_embed((Dg == 0).to(SY.dtype))
    a, b, gam = Sh @ g, Yh @ g, gamma[:, None, None]
    ra = torch.linalg.solve_triangular(Rm, a, upper=True)
    p = torch.linalg.solve_triangular(Rm.transpose(1, 2), Dg[..., None] * ra + gam * (YY @ ra - b), upper=False)
    return -(gam * g + Sh.transpose(1, 2) @ p - gam * (Yh.transpose(1, 2) @ ra)).view_as(G)


def inner_solve(data, fn, C, rho, st: Batch, idx, omega, opts, deadline: float):
    """`opts.inner` on ψ for problems `idx` until ‖Gr‖∞ ≤ ω (per problem), `inner_iterations`, a
    failed line search, a stall (`STALL_STEPS` steps in a row that lower ψ by ≤ `STALL`·(1 + |ψ|)) or the
    deadline. Updates `st`; returns (iterations, CG iterations, stalled, timed out)."""
    torch = lazy_torch()
    balls = data.balls
    st.put(idx, st.W[idx], fn(idx, st.W[idx]), balls)
    R, nvar, mem = idx.numel(), st.W[0].numel(), opts.memory
    newton = opts.inner == "newton"
    if not newton:
        Sh, Yh = (torch.zeros(R, mem, nvar, dtype=st.W.dtype, device=st.W.device) for _ in range(2))
        gamma = 1.0 / st.Gr[idx].flatten(1).norm(dim=1).clamp_min(1.0)
    live, iters = torch.isfinite(st.psi[idx]), torch.zeros(R, dtype=torch.long, device=idx.device)
    stall, stalled = torch.zeros_like(iters), torch.zeros_like(live)
    cg_total = 0
    for _ in range(opts.inner_iterations):
        if time.perf_counter() > deadline:
            return iters, cg_total, stalled, True
        live &= st.Gr[idx].flatten(1).abs().amax(1) > omega
        loc = live.nonzero().flatten()
        if loc.numel() == 0:
            break
        G0, W0 = st.Gr[idx[loc]], st.W[idx[loc]]
        if newton:
            D, its, curved = _newton_direction(data, C, rho, st, idx[loc], opts)
            cg_total += its
        else:
            D = _lbfgs_direction(G0, Sh[loc], Yh[loc], gamma[loc])
            if balls.count:
                D = Balls.tangent(balls.var, D, st.on[idx[loc]], st.d[idx[loc]])
        if balls.count:
            D = balls.snap(D, st.on[idx[loc]], st.d[idx[loc]], st.gap[idx[loc]])
        bad = ~(dot(D, G0) < 0)  # not a descent direction: a (reduced) gradient step, forget the pairs
        D[bad] = -G0[bad] * (1.0 if newton else gamma[loc[bad], None, None])
        if not newton:
            Sh[loc[bad]], Yh[loc[bad]] = 0.0, 0.0
        before = st.psi[idx[loc]].clone()
        ok, t = _armijo(fn, balls, st, idx[loc], D, deadline)
        flat = (before - st.psi[idx[loc]]) <= STALL * (1 + before.abs())
        stall[loc] = torch.where(flat, stall[loc] + 1, torch.zeros_like(stall[loc]))
        stalled[loc] |= stall[loc] >= STALL_STEPS
        live[loc[stall[loc] >= STALL_STEPS]] = False
        if newton:   # Levenberg–Marquardt: trust the model more after full steps, less after short ones
            lam = st.damping[idx[loc]]
            lam = torch.where(t >= 1, lam / 4, torch.where(t < 0.25, lam * 4, lam))
            st.damping[idx[loc]] = lam.clamp(DAMPING_MIN, 1e10)
        iters[loc] += 1
        live[loc[~ok]] = False
        if not newton:
            s, yv = (st.W[idx[loc]] - W0).flatten(1), (st.Gr[idx[loc]] - G0).flatten(1)
            sy = (s * yv).sum(1)
            use = ok & (sy > 1e-10 * s.norm(dim=1) * yv.norm(dim=1))
            u = loc[use]
            Sh[u] = torch.cat([Sh[u, 1:], s[use, None]], 1)
            Yh[u] = torch.cat([Yh[u, 1:], yv[use, None]], 1)
            gamma[u] = sy[use] / yv[use].pow(2).sum(1)
    return iters, cg_total, stalled, False
