"""Exact derivatives of the Burer–Monteiro restriction of a `QuadraticModel` (numpy, float64).

With U = [e₀ᵀ; W] ((n+1) × r) and the slot values p_s = U_a·U_b (slot s = (a, b), a ≤ b):
  f(W) = c·p,   g(W) = M p,
  ∂p_s/∂U_a = U_b, ∂p_s/∂U_b = U_a (2U_a when a = b), so ∇f and the Jacobian of g are sparse
  with a constant pattern: constraint row i touches the rows of U its slots name;
  ∇²(σf + λᵀg) = kron(H, I_r) over W, H the symmetric slot matrix of h = σc + Mᵀλ
  (H_ab = h_s off the diagonal, 2h_s on it) — constant sparsity as well.
Used by the interior-point backend (solvers/ipopt_lowrank.py). Variables are W row-major:
entry (a, k) of U (a ≥ 1) is variable (a − 1)·r + k.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optcert.forms import QuadraticModel


class BmDerivatives:
    """f, ∇f, g, the Jacobian (values in `jac_rows`/`jac_cols` order) and the Hessian of the
    Lagrangian (lower triangle, values in `hess_rows`/`hess_cols` order) at a flat W."""

    def __init__(self, model: QuadraticModel, objective: np.ndarray, rank: int):
        self.n, self.r, self.m = model.n, rank, model.m
        self.a, self.b = model.slot_row.astype(np.int64), model.slot_col.astype(np.int64)
        self.c = np.asarray(objective, dtype=np.float64)
        self.M = sp.csr_matrix(model.constraints)
        self.Mt = self.M.T.tocsr()
        coo = self.M.tocoo()
        ends_i = np.r_[coo.row, coo.row]
        ends_at = np.r_[self.a[coo.col], self.b[coo.col]]
        self.ends_other = np.r_[self.b[coo.col], self.a[coo.col]]
        self.ends_val = np.r_[coo.data, coo.data]
        keep = ends_at > 0
        ends_i, ends_at = ends_i[keep], ends_at[keep]
        self.ends_other, self.ends_val = self.ends_other[keep], self.ends_val[keep]
        pairs, self.ends_pos = np.unique(ends_i * (self.n + 1) + ends_at, return_inverse=True)
        self.npairs = pairs.size
        k = np.arange(rank)
        self.jac_rows = np.repeat(pairs // (self.n + 1), rank)
        self.jac_cols = ((pairs % (self.n + 1) - 1)[:, None] * rank + k[None, :]).reshape(-1)
        quad = np.flatnonzero(self.a > 0)
        self.quad = quad
        self.hess_rows = ((self.b[quad] - 1)[:, None] * rank + k[None, :]).reshape(-1)
        self.hess_cols = ((self.a[quad] - 1)[:, None] * rank + k[None, :]).reshape(-1)
        self.hess_factor = np.where(self.a[quad] == self.b[quad], 2.0, 1.0)

    def factor(self, w: np.ndarray) -> np.ndarray:
        U = np.empty((self.n + 1, self.r))
        U[0] = 0.0
        U[0, 0] = 1.0
        U[1:] = np.asarray(w, dtype=np.float64).reshape(self.n, self.r)
        return U

    def slots(self, U: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", U[self.a], U[self.b])

    def objective(self, w: np.ndarray) -> float:
        return float(self.c @ self.slots(self.factor(w)))

    def gradient(self, w: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """∇_W of h·p (h = the objective when None)."""
        U = self.factor(w)
        h = self.c if h is None else h
        G = np.zeros_like(U)
        np.add.at(G, self.a, h[:, None] * U[self.b])
        np.add.at(G, self.b, h[:, None] * U[self.a])
        return G[1:].reshape(-1)

    def constraints(self, w: np.ndarray) -> np.ndarray:
        return self.M @ self.slots(self.factor(w))

    def jacobian(self, w: np.ndarray) -> np.ndarray:
        U = self.factor(w)
        J = np.empty((self.npairs, self.r))
        for k in range(self.r):
            J[:, k] = np.bincount(self.ends_pos, weights=self.ends_val * U[self.ends_other, k],
                                  minlength=self.npairs)
        return J.reshape(-1)

    def hessian(self, sigma: float, lam: np.ndarray) -> np.ndarray:
        h = sigma * self.c + self.Mt @ np.asarray(lam, dtype=np.float64)
        return np.repeat(h[self.quad] * self.hess_factor, self.r)
