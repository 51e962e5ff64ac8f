"""The Newton system of an interior point on the Burer–Monteiro factorisation, reduced by a Schur
complement on the separable variables X (numpy/scipy, dense, float64; the partition is
solvers/bm_structure.py).

With the Hessian of the Lagrangian kron(2Q(h), I_r) (solvers/bm_operator.py) and the K rows
condensed (JᵀΣJ), the X×X block D is block diagonal in r×r blocks (2Q(h)_xx I + the boxes' JᵀΣJ),
so the augmented system [D Bᵀ; B A] over (ΔX | ΔZ, Δy_R) is solved through S = A − B D⁻¹ Bᵀ, of
order |Z|·r + |R| — for a 784-input MLP about (#unstable neurons)·(r + 3) instead of n·r + m. B is
never formed: its Z rows are kron(2Q(h)_ZX, I_r), its linear rows a constant J₀ in component 0,
only the quadratic rows are dense (|R_q| × |X| × r), so B D⁻¹ Bᵀ costs about
(r(r+1)/2·|Z|² + r|Z||R| + |R_l|² + r|R_q|²)·|X| flops. S is factorised by dense LDLᵀ
(Bunch–Kaufman) after a symmetric scaling; its inertia drives the Hessian regularisation
(Wächter & Biegler 2006, §3.1).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as la

from solvers.bm_structure import Structure


def inertia(ldu: np.ndarray, ipiv: np.ndarray, tiny: float) -> tuple[int, int, int]:
    """(positive, negative, zero) eigenvalue counts of a matrix from its Bunch–Kaufman factor
    (LAPACK dsytrf, lower: ipiv[k] = ipiv[k+1] < 0 marks a 2×2 block), by Sylvester's law."""
    d = np.diag(ldu)
    sub = np.diag(ldu, -1)
    starts, i, n = [], 0, d.size
    negative = set(np.flatnonzero(ipiv < 0).tolist())
    while i < n:
        if i in negative and i + 1 < n:
            starts.append(i)
            i += 2
        else:
            i += 1
    two = np.asarray(starts, dtype=np.int64)
    single = np.ones(n, dtype=bool)
    single[two], single[two + 1] = False, False
    det = d[two] * d[two + 1] - sub[two] ** 2
    both = det >= 0
    tr = d[two] + d[two + 1]
    ds = d[single]
    pos = int((det < 0).sum()) + 2 * int((both & (tr > 0)).sum()) + int((ds > tiny).sum())
    neg = int((det < 0).sum()) + 2 * int((both & (tr <= 0)).sum()) + int((ds < -tiny).sum())
    return pos, neg, int((np.abs(ds) <= tiny).sum())


class Reduced:
    """The Newton matrix at one point (module doc). `reduce(δ)` forms S for the Hessian plus δI
    (needs D + δI ≻ 0: see `safe_shift`), `factorize` adds δ on the Z block and −δ_c on equality
    rows and returns the inertia, `solve` solves the full system. Reduced order: Z (z-major,
    (z, k) ↦ z·r + k), then the R rows in `Structure.order`."""

    def __init__(self, st: Structure, U: np.ndarray, h: np.ndarray, sig_kx: np.ndarray, sig_kz: np.ndarray,
                 sig_r: np.ndarray):
        r = U.shape[1]
        self.st, self.r = st, r
        nx, nz = st.X.size, st.Z.size
        hxx, self.hzx, hzz = st.hessian_blocks(h)
        D = hxx[:, None, None] * np.eye(r)[None]
        if st.KX.size:
            J_kx = st.map_kx @ U
            np.add.at(D, st.xpos[st.kx_var], sig_kx[:, None, None] * J_kx[:, :, None] * J_kx[:, None, :])
        self.e, self.V = np.linalg.eigh(D)
        self.J0 = st.J0
        self.Jq = (st.map_q @ U).reshape(-1, nx, r)
        nzr, mR = nz * r, st.order.size
        A = np.zeros((nzr + mR, nzr + mR))
        A[:nzr, :nzr] = np.kron(hzz, np.eye(r))
        if st.KZ.size:
            J_kz = (st.map_kz @ U).reshape(st.KZ.size, nzr)
            A[:nzr, :nzr] += J_kz.T @ (sig_kz[:, None] * J_kz)
        J_rz = (st.map_rz @ U).reshape(mR, nzr)
        A[:nzr, nzr:] = J_rz.T
        A[nzr:, :nzr] = J_rz
        A[nzr:, nzr:][np.diag_indices(mR)] = np.where(st.order_eq, 0.0, -1.0 / np.where(st.order_eq, 1.0, sig_r))
        self.A, self.nzr, self.nR = A, nzr, nzr + mR
        self.schur = A
        self.Dinv = np.zeros((nx, r, r))
        self.delta_x = -1.0
        self.factor: tuple | None = None

    def safe_shift(self) -> float:
        """The least δ ≥ 0 making every X block safely invertible: λ_min(D_x) + δ ≥ 1e-8·max(‖B_x‖², 1e-4)
        with B_x the columns of B at x (so B D⁻¹ Bᵀ stays within 1e8 of B's scale)."""
        if not self.st.X.size:
            return 0.0
        col2 = self.r * (self.hzx ** 2).sum(axis=0) + (self.J0 ** 2).sum(axis=0) + (self.Jq ** 2).sum(axis=(0, 2))
        need = 1e-8 * np.maximum(col2, 1e-4) - self.e.min(axis=1)
        return float(max(0.0, need.max()))

    def reduce(self, delta_x: float) -> None:
        """S = A − B (D + δ_x I)⁻¹ Bᵀ, block by block (module doc)."""
        if delta_x == self.delta_x:
            return
        nx, r, nzr, nl = self.st.X.size, self.r, self.nzr, self.st.n_lin
        self.Dinv = np.matmul(self.V / (self.e + delta_x)[:, None, :], np.transpose(self.V, (0, 2, 1)))
        self.delta_x = delta_x
        S = self.A.copy()
        if not nx:
            self.schur = S
            return
        Di, hzx, J0, Jq = self.Dinv, self.hzx, self.J0, self.Jq
        Y = np.zeros_like(Jq)                       # Y[i, x] = D_x⁻¹ Jq[i, x]
        for k in range(r):
            for m in range(r):
                Y[:, :, k] += Di[None, :, k, m] * Jq[:, :, m]
        lin, quad = slice(nzr, nzr + nl), slice(nzr + nl, self.nR)
        for k in range(r):
            for m in range(k, r):
                T = (hzx * Di[None, :, k, m]) @ hzx.T
                S[k:nzr:r, m:nzr:r] -= T
                if m != k:
                    S[m:nzr:r, k:nzr:r] -= T
            ZL = (hzx * Di[None, :, k, 0]) @ J0.T
            ZQ = hzx @ Y[:, :, k].T
            S[k:nzr:r, lin] -= ZL
            S[lin, k:nzr:r] -= ZL.T
            S[k:nzr:r, quad] -= ZQ
            S[quad, k:nzr:r] -= ZQ.T
        LQ = J0 @ Y[:, :, 0].T
        S[lin, lin] -= (J0 * Di[None, :, 0, 0]) @ J0.T
        S[lin, quad] -= LQ
        S[quad, lin] -= LQ.T
        S[quad, quad] -= Jq.reshape(Jq.shape[0], nx * r) @ Y.reshape(Y.shape[0], nx * r).T
        self.schur = S

    def factorize(self, delta: float, delta_c: float = 0.0) -> tuple[int, int, int]:
        """LDLᵀ of S with δ on the Z block and −δ_c on the equality rows, after a symmetric scaling
        by each row's largest entry (a congruence: same inertia, and a pivot counts as zero relative
        to its own row); its inertia."""
        from scipy.linalg.lapack import dsytrf

        S = self.schur.copy()
        S[np.arange(self.nzr), np.arange(self.nzr)] += delta
        eq = self.nzr + np.flatnonzero(self.st.order_eq)
        S[eq, eq] -= delta_c
        scale = 1.0 / np.sqrt(np.maximum(np.abs(S).max(axis=1, initial=0.0), 1e-300))
        S *= scale[:, None]
        S *= scale[None, :]
        ldu, ipiv, info = dsytrf(S, lower=1)
        if info < 0:
            raise la.LinAlgError(f"dsytrf failed ({info})")
        self.factor = (ldu, ipiv, scale)
        return inertia(ldu, ipiv, 1e-13)

    def correct(self, counts: tuple[int, int, int]) -> bool:
        return counts == (self.nzr, self.nR - self.nzr, 0)

    def _jq(self) -> np.ndarray:
        return self.Jq.reshape(self.Jq.shape[0], self.st.X.size * self.r)

    def _b(self, t: np.ndarray) -> np.ndarray:
        """B t for t (|X| × r)."""
        return np.r_[(self.hzx @ t).reshape(-1), self.J0 @ t[:, 0], self._jq() @ t.reshape(-1)]

    def _bt(self, v: np.ndarray) -> np.ndarray:
        """Bᵀ v as |X| × r."""
        nzr, nl = self.nzr, self.st.n_lin
        out = self.hzx.T @ v[:nzr].reshape(-1, self.r)
        out[:, 0] += self.J0.T @ v[nzr:nzr + nl]
        out += (self._jq().T @ v[nzr + nl:]).reshape(out.shape)
        return out

    def solve(self, bx: np.ndarray, bR: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ΔX (|X| × r), (ΔZ flat, Δy_R in `order`)) for right-hand sides (bx, bR), after `factorize`."""
        from scipy.linalg.lapack import dsytrs

        assert self.factor is not None
        ldu, ipiv, scale = self.factor
        if not bx.size:
            dR, info = dsytrs(ldu, ipiv, bR * scale, lower=1)
            return bx.copy(), dR * scale
        t = np.matmul(self.Dinv, bx[:, :, None])[:, :, 0]
        dR, info = dsytrs(ldu, ipiv, (bR - self._b(t)) * scale, lower=1)
        if info != 0:
            raise la.LinAlgError(f"dsytrs failed ({info})")
        dR = dR * scale
        dx = np.matmul(self.Dinv, (bx - self._bt(dR))[:, :, None])[:, :, 0]
        return dx, dR
