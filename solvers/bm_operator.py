"""Matrix-free evaluations of the Burer–Monteiro restriction of a `QuadraticModel` (numpy, float64):
the quantities a Newton-type method needs at a factor U = [e₀ᵀ; W] ((n+1) × r), exact.

With slot values p_s = U_a·U_b (slot s = (a, b)) and Q(h) the symmetric (n+1)×(n+1) matrix of slot
coefficients h (`QuadraticModel.dense`):
  h·p = ⟨Q(h), UUᵀ⟩,   ∇_W (h·p) = 2 Q(h) U (rows 1..n),   ∇²_W (h·p) = kron(2 Q(h)₁₁, I_r),
so the gradient of the Lagrangian f + yᵀg is 2 Q(c + Mᵀy) U and the transposed Jacobian acts as
Jᵀv = 2 Q(Mᵀv) U; the Jacobian acts on a direction ΔW by dp_s = U_a·ΔU_b + U_b·ΔU_a, Jv = M dp.
`Q(h)` is a sparse matrix whose pattern is fixed once (only its values follow h).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optcert.forms import QuadraticModel


class BmOperator:
    """Slots, objective, constraints, gradients and Jacobian products of one model (module doc).
    `c` and `M` may be rescaled copies of the model's objective and rows."""

    def __init__(self, model: QuadraticModel, objective: np.ndarray, rows: sp.csr_matrix | None = None):
        self.n = model.n
        self.a = model.slot_row.astype(np.int64)
        self.b = model.slot_col.astype(np.int64)
        self.c = np.asarray(objective, dtype=np.float64)
        self.M = sp.csr_matrix(model.constraints if rows is None else rows)
        self.Mt = self.M.T.tocsr()
        off = self.a != self.b
        rr = np.r_[self.a, self.b[off]]
        cc = np.r_[self.b, self.a[off]]
        self._src = np.r_[np.arange(self.a.size), np.flatnonzero(off)]
        self._scale = np.r_[np.where(off, 0.5, 1.0), np.full(int(off.sum()), 0.5)]
        pattern = sp.csr_matrix((np.arange(rr.size, dtype=np.float64) + 1, (rr, cc)), shape=(self.n + 1,) * 2)
        self._order = pattern.data.astype(np.int64) - 1      # csr position → entry of (rr, cc)
        self._indptr, self._indices = pattern.indptr, pattern.indices

    def q_matrix(self, h: np.ndarray) -> sp.csr_matrix:
        """Q(h) as a sparse symmetric matrix (fixed pattern)."""
        data = (h[self._src] * self._scale)[self._order]
        return sp.csr_matrix((data, self._indices, self._indptr), shape=(self.n + 1,) * 2)

    @staticmethod
    def factor(W: np.ndarray) -> np.ndarray:
        U = np.empty((W.shape[0] + 1, W.shape[1]))
        U[0] = 0.0
        U[0, 0] = 1.0
        U[1:] = W
        return U

    def slots(self, U: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", U[self.a], U[self.b])

    def values(self, U: np.ndarray) -> tuple[float, np.ndarray]:
        """(f, g) at U."""
        p = self.slots(U)
        return float(self.c @ p), self.M @ p

    def weights(self, y: np.ndarray, sigma: float = 1.0) -> np.ndarray:
        """h = σc + Mᵀy: the slot coefficients of the Lagrangian."""
        return sigma * self.c + self.Mt @ y

    def grad(self, h: np.ndarray, U: np.ndarray) -> np.ndarray:
        """∇_W (h·p) = 2 Q(h) U without row 0 (n × r)."""
        return 2.0 * (self.q_matrix(h) @ U)[1:]

    def jvp(self, U: np.ndarray, dW: np.ndarray) -> np.ndarray:
        """J(W)·ΔW = M dp with dp_s = U_a·ΔU_b + U_b·ΔU_a (ΔU = [0; ΔW])."""
        dU = np.zeros_like(U)
        dU[1:] = dW
        dp = np.einsum("ij,ij->i", U[self.a], dU[self.b]) + np.einsum("ij,ij->i", U[self.b], dU[self.a])
        return self.M @ dp

    def vjp(self, U: np.ndarray, v: np.ndarray) -> np.ndarray:
        """J(W)ᵀ v = 2 Q(Mᵀv) U without row 0."""
        return self.grad(self.Mt @ v, U)

    def curvature(self, h: np.ndarray, dW: np.ndarray) -> float:
        """ΔWᵀ ∇²(h·p) ΔW = 2 ⟨ΔW, Q(h)₁₁ ΔW⟩."""
        dU = np.zeros((dW.shape[0] + 1, dW.shape[1]))
        dU[1:] = dW
        return float(2.0 * np.sum(dU * (self.q_matrix(h) @ dU)))


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
