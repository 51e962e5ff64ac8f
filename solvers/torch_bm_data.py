"""The torch backend's model on the device (solvers/torch_lowrank.py): value, gradient and exact
Hessian-vector products of the augmented Lagrangian of a Burer–Monteiro problem, R problems at once,
and the ball rows it keeps feasible by projection instead of penalising them.

Slots p_s = U_a·U_b (U = [e₀ᵀ; W]), rows g = M p (M row-scaled, the penalised rows only), objective C·p.
With h = C + Mᵀw (w the shifted multipliers of the augmented Lagrangian ψ) and Q(h) the symmetric slot
matrix, ∇_W ψ = 2Q(h)U and, for a direction D (ΔU = [0; D]),
  ∇²_W ψ [D] = 2Q(h)ΔU + 2Q(Mᵀ(ρ·1_act ⊙ M dp))U,   dp_s = U_a·ΔU_b + ΔU_a·U_b,
1_act marking the rows whose w moves with g (equalities, and inequalities with w > 0): the exact
Hessian of ψ wherever it is twice differentiable (Nocedal & Wright §17.3). In the ⊗I_r form of the
issue: kron(H(c + Mᵀw), I_r) plus the Gauss–Newton term of the penalty.

Balls. A row α‖U_v‖² + βU_v0 + γ ≤ 0 over one variable v (α > 0) says that row v of U lies in the ball
of centre c·e₀ (c = −β/2α) and radius √(c² − γ/α) — the lowering's box rows v² − s v + p ≤ 0 on every
variable. Each variable's first such row is enforced by exact projection (scaling its row of U towards
the centre) and left out of the penalty; its multiplier comes from the first-order condition on the
sphere: y = −⟨G_v, d_v⟩ / (2α‖d_v‖²) with d_v = U_v − c·e₀ when the row is on the sphere and the
gradient G of ψ points outwards (y ≥ 0), else 0 — the projected-gradient / active-set treatment of
simple convex constraints (Bertsekas 1982, "Projected Newton methods for optimization problems with
simple constraints"). Tangent steps on active spheres see the extra curvature y·2α I.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp


def lazy_torch():
    """torch, imported on first use (`import optcert` must not import torch); shared by the torch
    backend's modules."""
    import torch

    return torch


def cols(x):
    """(R, k) → (k, R) contiguous (a plain reshape when R = 1: torch's spmm is slow on (1, k) strides)."""
    return x.reshape(-1, 1) if x.shape[0] == 1 else x.T.contiguous()


def find_balls(M: sp.csr_matrix, a: np.ndarray, b: np.ndarray, equality: np.ndarray):
    """Ball rows of the (column-permuted, row-scaled) M with slots (a, b): (rows, variable P index,
    α, centre, radius²), at most one row per variable (its first)."""
    coo = M.tocoo()
    m = M.shape[0]
    sa, sb = a[coo.col], b[coo.col]
    top = np.maximum(sa, sb)
    mixed = np.bincount(coo.row, weights=((np.minimum(sa, sb) >= 1) & (sa != sb)).astype(float), minlength=m) > 0
    vmax = np.zeros(m, np.int64)
    np.maximum.at(vmax, coo.row, top)
    vmin = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(vmin, coo.row, np.where(top > 0, top, np.iinfo(np.int64).max))
    alpha, beta, gamma = (np.bincount(coo.row, weights=coo.data * sel, minlength=m)
                          for sel in ((sa == sb) & (sa > 0), (sa == 0) & (sb > 0), top == 0))
    cand = ~equality & ~mixed & (vmax > 0) & (vmax == vmin) & (alpha > 0)
    safe = np.where(alpha > 0, alpha, 1.0)
    centre = -beta / (2 * safe)
    radius2 = centre * centre - gamma / safe
    cand &= radius2 > 0
    rows = np.flatnonzero(cand)
    _, first = np.unique(vmax[rows], return_index=True)
    rows = rows[np.sort(first)]
    return rows, vmax[rows], alpha[rows], centre[rows], radius2[rows]


class Balls:
    """Projection onto the product of balls, multipliers and tangent spaces (module doc)."""

    def __init__(self, found, dtype, device):
        torch = lazy_torch()
        rows, var, alpha, centre, radius2 = found
        self.rows = rows
        as_t = lambda x: torch.as_tensor(x, dtype=dtype, device=device)  # noqa: E731
        self.var = torch.as_tensor(var - 1, dtype=torch.long, device=device)   # row of W
        self.alpha, self.c, self.rad = as_t(alpha), as_t(centre), as_t(np.sqrt(radius2))
        self.count = int(rows.size)

    def offset(self, W):
        """d = U_v − c·e₀ for the ball variables, (R, nb, r)."""
        d = W[:, self.var].clone()
        d[..., 0] -= self.c
        return d

    def project(self, W):
        """W with every ball row scaled into its ball (a copy)."""
        if self.count == 0:
            return W
        d = self.offset(W)
        scale = (self.rad / d.norm(dim=2).clamp_min(1e-300)).clamp_max(1.0)
        d *= scale[..., None]
        d[..., 0] += self.c
        out = W.clone()
        out[:, self.var] = d
        return out

    def reduce(self, W, G):
        """(reduced gradient, μ = y·2α (R, nb), ε-active mask, d, gap = radius − ‖d‖ ≥ 0): a ball is
        ε-active when the gradient points outwards and ‖d‖ ≥ radius − ε, ε = min(radius/10,
        ‖W − Π(W − G)‖∞) (Bertsekas 1982); on those the radial part of the gradient is removed."""
        d = self.offset(W)
        dd = (d * d).sum(2)
        gd = (G[:, self.var] * d).sum(2)
        pg = (W - self.project(W - G)).flatten(1).abs().amax(1)
        eps = lazy_torch().minimum(0.1 * self.rad[None], pg[:, None])
        norm = dd.sqrt()
        on = (norm >= self.rad - eps) & (gd < 0)
        mu = (-gd / dd.clamp_min(1e-300)).where(on, gd.new_zeros(()))
        Gr = G.clone()
        Gr[:, self.var] += mu[..., None] * d
        return Gr, mu, on, d, (self.rad - norm).clamp_min(0.0).where(on, gd.new_zeros(()))

    def snap(self, D, on, d, gap):
        """D plus the radial move that puts the ε-active rows on their spheres at step 1."""
        out = D.clone()
        out[:, self.var] += (gap / (d * d).sum(2).sqrt().clamp_min(1e-300))[..., None] * d
        return out

    @staticmethod
    def tangent(var, D, on, d):
        """D without its radial component on the active spheres."""
        Dv = D[:, var]
        dd = (d * d).sum(2).clamp_min(1e-300)
        coef = ((Dv * d).sum(2) / dd).where(on, Dv.new_zeros(()))
        out = D.clone()
        out[:, var] = Dv - coef[..., None] * d
        return out

    def multipliers(self, mu):
        """Scaled-unit multipliers y of the ball rows from μ."""
        return mu / (2 * self.alpha)


class BmData:
    """The model on the device: row-scaled CSR M and Mᵀ of the penalised rows, R-block slot patterns
    (slots in CSR order), the balls when `balls`."""

    def __init__(self, model, rank: int, R: int, dtype, device: str, balls: bool):
        torch = lazy_torch()
        self.n, self.rank, self.S = model.n, rank, model.n_slots
        self.dt, self.dev = dtype, torch.device(device)
        self.ix = torch.int32 if R * (max(self.S, model.n) + 2) < 2 ** 31 else torch.int64
        self.perm = np.lexsort((model.slot_col, model.slot_row))
        a, b = model.slot_row[self.perm], model.slot_col[self.perm]
        self.row_scale = np.maximum(abs(model.constraints).max(axis=1).toarray().ravel(), 1e-300)
        M = (sp.diags(1.0 / self.row_scale) @ model.constraints[:, self.perm]).tocsr()
        empty = (np.zeros(0, np.int64),) * 2 + (np.zeros(0),) * 3
        self.balls = Balls(find_balls(M, a, b, model.equality) if balls else empty, self.dt, self.dev)
        keep = np.ones(model.m, bool)
        keep[self.balls.rows] = False
        self.pen = np.flatnonzero(keep)
        M = M[self.pen]
        self.M, self.Mt = (self._csr(X.indptr, X.indices, X.data, X.shape) for X in (M, M.T.tocsr()))
        self.eq = torch.as_tensor(model.equality[self.pen], device=self.dev)
        self.e0 = torch.eye(1, rank, dtype=self.dt, device=self.dev)
        tperm = np.lexsort((a, b))  # the transposed (lower) pattern of the same slots
        self.up, self.low = self._tiled(a, b, R), self._tiled(b[tperm], a[tperm], R)
        self.tperm = (torch.as_tensor(tperm)[None] + self.S * torch.arange(R)[:, None]).reshape(-1).to(self.dev)
        self.zero = torch.zeros(R * self.S, dtype=self.dt, device=self.dev)
        self._jacobian_pattern(M, a, b)

    def _jacobian_pattern(self, M, a, b) -> None:
        """Index maps for the Gauss–Newton diagonal: every nonzero (i, s = (a, b)) of M adds
        M_is·U_b to ∂g_i/∂U_a and M_is·U_a to ∂g_i/∂U_b (pairs (i, variable) numbered once)."""
        torch = lazy_torch()
        coo = M.tocoo()
        rows, at, other = np.r_[coo.row, coo.row], np.r_[a[coo.col], b[coo.col]], np.r_[b[coo.col], a[coo.col]]
        val, keep = np.r_[coo.data, coo.data], np.r_[a[coo.col], b[coo.col]] > 0
        pairs, pos = np.unique(rows[keep] * (self.n + 1) + at[keep], return_inverse=True)
        as_l = lambda x: torch.as_tensor(x, dtype=torch.long, device=self.dev)  # noqa: E731
        self.j_pos, self.j_other, self.j_val = as_l(pos), as_l(other[keep]), torch.as_tensor(val[keep], dtype=self.dt,
                                                                                              device=self.dev)
        self.j_row, self.j_var = as_l(pairs // (self.n + 1)), as_l(pairs % (self.n + 1))
        self.diag_slot = as_l(np.flatnonzero((a == b) & (a > 0)))
        self.diag_var = as_l(a[(a == b) & (a > 0)])

    def _csr(self, crow, col, values, shape):
        torch = lazy_torch()
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore")
            return torch.sparse_csr_tensor(torch.as_tensor(crow, dtype=self.ix, device=self.dev),
                                           torch.as_tensor(col, dtype=self.ix, device=self.dev),
                                           torch.as_tensor(values, dtype=self.dt, device=self.dev), shape)

    def _tiled(self, i, j, R: int):
        """CSR indices of the block-diagonal matrix of R copies of the (row-sorted) pattern (i, j)."""
        torch, N = lazy_torch(), self.n + 1
        k = torch.arange(R, dtype=torch.int64)[:, None]
        crow = torch.as_tensor(np.searchsorted(i, np.arange(N + 1)))
        crow = torch.cat([(crow[:-1] + i.size * k).reshape(-1), torch.tensor([R * i.size])])
        return crow.to(self.dev, self.ix), (torch.as_tensor(j) + N * k).reshape(-1).to(self.dev, self.ix)

    def _block(self, pattern, values, R: int):
        """The R-block sparse matrix with `pattern` (a prefix of the tiled one) and `values`."""
        N = self.n + 1
        return self._csr(pattern[0][:R * N + 1], pattern[1][:R * self.S], values, (R * N, R * N))

    def _factor(self, W):
        R, r = W.shape[0], self.rank
        return lazy_torch().cat([self.e0.expand(R, 1, r), W], 1).reshape(R * (self.n + 1), r)

    def _slots(self, X, Y, R: int):
        """(R, S) values X_a·Y_b over the slots (a, b)."""
        torch = lazy_torch()
        pattern = self._block(self.up, self.zero[:R * self.S], R)
        return torch.sparse.sampled_addmm(pattern, X, Y.T, beta=0.0).values().view(R, self.S)

    def _qmul(self, h, X, R: int):
        """2Q(h)X for slot coefficients h (R, S) flattened, X (R(n+1), r): (H + Hᵀ)X, diagonal twice."""
        return self._block(self.up, h, R) @ X + self._block(self.low, h[self.tperm[:R * self.S]], R) @ X

    def evaluate(self, W, C, y, rho):
        """For W (R,n,r), C (R,S), y (R,m), ρ (R,): ψ (R,), ∇_W ψ (R,n,r), g (R,m), w (R,m)."""
        torch = lazy_torch()
        R, N, r = W.shape[0], self.n + 1, self.rank
        U = self._factor(W)
        p = self._slots(U, U, R)
        g = (self.M @ cols(p)).T
        shifted = y + rho[:, None] * g
        w = torch.where(self.eq, shifted, shifted.clamp_min(0.0))
        psi = (C * p).sum(1) + (w * w - y * y).sum(1) / (2 * rho)
        h = (C + (self.Mt @ cols(w)).T).reshape(-1)  # ∂ψ/∂p
        return psi, self._qmul(h, U, R).view(R, N, r)[:, 1:], g, w

    def diagonal(self, W, C, w, rho):
        """|diag ∇²_W ψ| estimate (R,n,r) for Jacobi preconditioning: |2h_vv| plus the Gauss–Newton
        diagonal ρ Σ_i act_i (∂g_i/∂U_vk)² (the exact diagonal up to the sign of the h term)."""
        torch = lazy_torch()
        R, N, r = W.shape[0], self.n + 1, self.rank
        U = torch.cat([self.e0.expand(R, 1, r), W], 1)
        h = C + (self.Mt @ cols(w)).T
        J = torch.zeros(R, self.j_row.numel(), r, dtype=W.dtype, device=W.device)
        J.index_add_(1, self.j_pos, self.j_val[None, :, None] * U[:, self.j_other])
        act = (self.eq | (w > 0)).to(W.dtype) * rho[:, None]
        out = torch.zeros(R, N, r, dtype=W.dtype, device=W.device)
        out.index_add_(1, self.j_var, act[:, self.j_row, None] * J * J)
        out.index_add_(1, self.diag_var, (2 * h[:, self.diag_slot].abs())[..., None].expand(-1, -1, r))
        return out[:, 1:]

    def hessian(self, W, C, w, rho):
        """D ↦ ∇²_W ψ [D] at W (module doc) for the batch of W, given its w (R,m) and ρ (R,)."""
        torch = lazy_torch()
        R, N, r = W.shape[0], self.n + 1, self.rank
        U = self._factor(W)
        h = (C + (self.Mt @ cols(w)).T).reshape(-1)
        Hup, Hlow = self._block(self.up, h, R), self._block(self.low, h[self.tperm[:R * self.S]], R)
        act = (self.eq | (w > 0)).to(W.dtype) * rho[:, None]
        zero = torch.zeros(R, 1, r, dtype=W.dtype, device=W.device)

        def product(D):
            dU = torch.cat([zero, D], 1).reshape(R * N, r)
            dp = self._slots(U, dU, R) + self._slots(dU, U, R)
            dw = act * (self.M @ cols(dp)).T
            hd = (self.Mt @ cols(dw)).T.reshape(-1)
            return (Hup @ dU + Hlow @ dU + self._qmul(hd, U, R)).view(R, N, r)[:, 1:]

        return product
