"""The Newton system of an interior point on the Burer–Monteiro factorisation, reduced by a Schur
complement on the separable variables (numpy/scipy, dense, float64).

Structure. X is a set of variables no quadratic slot couples to each other (greedy independent set
of the graph of off-diagonal slots; in a ReLU lowering: the free inputs, which meet only their own
box and the first layer). Z is the rest. Rows are sorted into
  K  inequality rows condensed into the Hessian (Σ = y/s): those touching one variable only
     (a box) and those touching no X variable;
  E  equality rows, kept;   C  inequality rows touching X and some other variable, kept.
With the Hessian of the Lagrangian kron(2Q(h), I_r) (solvers/bm_operator.py), the X×X block D is
block diagonal in r×r blocks (one per separable variable: 2Q(h)_xx I + its boxes' JᵀΣJ), so the
augmented system [D Bᵀ; B A] over (ΔX | ΔZ, Δy_E, Δy_C) is solved through the Schur complement
A − B D⁻¹ Bᵀ of size |Z|·r + |E| + |C| — for a 784-input MLP about (#unstable neurons)·(r + 3),
instead of the (n·r + m) of the full system. The Schur complement is factorised by dense LDLᵀ
(Bunch–Kaufman), whose inertia drives the Hessian regularisation (Wächter & Biegler 2006, §3.1).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from optcert.forms import QuadraticModel


def separable(model: QuadraticModel, objective: np.ndarray) -> np.ndarray:
    """Greedy independent set (P indices, ascending) of the graph whose edges are the off-diagonal
    quadratic slots (a, b ≥ 1) some row or the objective uses."""
    used = np.asarray(abs(model.constraints).sum(axis=0)).ravel() + np.abs(objective)
    a, b = model.slot_row, model.slot_col
    edge = (used > 0) & (a >= 1) & (a != b)
    nbr = sp.csr_matrix((np.ones(2 * int(edge.sum())), (np.r_[a[edge], b[edge]], np.r_[b[edge], a[edge]])),
                        shape=(model.n + 1,) * 2)
    taken = np.zeros(model.n + 1, dtype=bool)
    for v in range(1, model.n + 1):
        if not taken[nbr.indices[nbr.indptr[v]:nbr.indptr[v + 1]]].any():
            taken[v] = True
    return np.flatnonzero(taken)


def _ends(M: sp.csr_matrix, a: np.ndarray, b: np.ndarray):
    """(row, at, other, value): ∂g_row/∂U_at gains value·U_other, for every nonzero of M."""
    coo = M.tocoo()
    rows, at, other, val = (np.r_[coo.row, coo.row], np.r_[a[coo.col], b[coo.col]],
                            np.r_[b[coo.col], a[coo.col]], np.r_[coo.data, coo.data])
    keep = at > 0
    return rows[keep], at[keep], other[keep], val[keep]


def _block_map(ends, rows: np.ndarray, var_pos: np.ndarray, nv: int, N: int) -> sp.csr_matrix:
    """Sparse E with (E U).reshape(len(rows), nv, r) = the Jacobian of `rows` over the variables whose
    position var_pos[P index] ≥ 0."""
    erow, at, other, val = ends
    row_pos = np.full(int(erow.max(initial=-1)) + 1, -1)
    row_pos[rows] = np.arange(rows.size)
    rp = row_pos[erow] if erow.size else erow
    keep = (rp >= 0) & (var_pos[at] >= 0)
    return sp.csr_matrix((val[keep], (rp[keep] * nv + var_pos[at[keep]], other[keep])), shape=(rows.size * nv, N))


class Structure:
    """The partition of variables and rows (module doc) and the index maps that build the blocks."""

    def __init__(self, model: QuadraticModel, objective: np.ndarray, M: sp.csr_matrix):
        N = model.n + 1
        a, b = model.slot_row.astype(np.int64), model.slot_col.astype(np.int64)
        self.X = separable(model, objective)
        inx = np.zeros(N, dtype=bool)
        inx[self.X] = True
        inx[0] = False
        self.Z = np.flatnonzero(~inx[1:]) + 1
        self.xpos, self.zpos = np.full(N, -1), np.full(N, -1)
        self.xpos[self.X], self.zpos[self.Z] = np.arange(self.X.size), np.arange(self.Z.size)
        ends = _ends(M, a, b)
        touch = sp.csr_matrix((np.ones(ends[0].size), (ends[0], ends[1])), shape=(M.shape[0], N))
        touch.sum_duplicates()
        nvars = np.diff(touch.indptr)
        nx = np.asarray(touch[:, self.X].astype(bool).sum(axis=1)).ravel() if self.X.size else np.zeros(M.shape[0])
        eq = model.equality
        local_x = ~eq & (nvars == 1) & (nx == 1)
        self.E = np.flatnonzero(eq)
        self.C = np.flatnonzero(~eq & (nx >= 1) & ~local_x)
        self.KX = np.flatnonzero(local_x)
        self.KZ = np.flatnonzero(~eq & (nx == 0))
        self.kx_var = touch[self.KX].indices[touch[self.KX].indptr[:-1]] if self.KX.size else np.zeros(0, np.int64)
        nx_, nz = self.X.size, self.Z.size
        self.map_kx = self._local_map(ends, N)
        self.map_rx = _block_map(ends, np.r_[self.E, self.C], self.xpos, nx_, N)
        self.map_rz = _block_map(ends, np.r_[self.E, self.C], self.zpos, nz, N)
        self.map_kz = _block_map(ends, self.KZ, self.zpos, nz, N)
        quad = (a >= 1)
        self._hess_index(a, b, quad)

    def _local_map(self, ends, N: int) -> sp.csr_matrix:
        """Sparse L with (L U) = each local row's gradient over its one variable (|KX| × r)."""
        erow, at, other, val = ends
        pos = np.full(int(erow.max(initial=-1)) + 1, -1)
        pos[self.KX] = np.arange(self.KX.size)
        rp = pos[erow] if erow.size else erow
        keep = rp >= 0
        return sp.csr_matrix((val[keep], (rp[keep], other[keep])), shape=(self.KX.size, N))

    def _hess_index(self, a: np.ndarray, b: np.ndarray, quad: np.ndarray) -> None:
        """Slot → entry maps for 2Q(h) restricted to xx (diagonal), zx and zz."""
        nz, nx = self.Z.size, self.X.size
        xa, xb, za, zb = self.xpos[a], self.xpos[b], self.zpos[a], self.zpos[b]
        diag_x = quad & (a == b) & (xa >= 0)
        self.hxx = (np.flatnonzero(diag_x), xa[diag_x])
        zx1 = quad & (za >= 0) & (xb >= 0)
        zx2 = quad & (xa >= 0) & (zb >= 0)
        self.hzx = (np.r_[np.flatnonzero(zx1), np.flatnonzero(zx2)],
                    np.r_[za[zx1] * nx + xb[zx1], zb[zx2] * nx + xa[zx2]])
        zz = quad & (za >= 0) & (zb >= 0)
        s, i, j = np.flatnonzero(zz), za[zz], zb[zz]
        off = i != j
        self.hzz = (np.r_[s, s[off]], np.r_[i * nz + j, (j * nz + i)[off]], np.r_[np.where(off, 1.0, 2.0),
                                                                                 np.ones(int(off.sum()))])

    def hessian_blocks(self, h: np.ndarray):
        """(diag of 2Q(h)_XX, 2Q(h)_ZX, 2Q(h)_ZZ) as dense arrays."""
        nx, nz = self.X.size, self.Z.size
        s, pos = self.hxx
        hxx = np.bincount(pos, weights=2.0 * h[s], minlength=nx)
        s, pos = self.hzx
        hzx = np.bincount(pos, weights=h[s], minlength=nz * nx).reshape(nz, nx)
        s, pos, f = self.hzz
        hzz = np.bincount(pos, weights=f * h[s], minlength=nz * nz).reshape(nz, nz)
        return hxx, hzx, hzz


def inertia(ldu: np.ndarray, ipiv: np.ndarray, tiny: float) -> tuple[int, int, int]:
    """(positive, negative, zero) eigenvalue counts of a matrix from its Bunch–Kaufman factor
    (LAPACK dsytrf, lower: ipiv[k] = ipiv[k+1] < 0 marks a 2×2 block), by Sylvester's law."""
    d = np.diag(ldu)
    sub = np.diag(ldu, -1)
    starts = []
    i, n = 0, d.size
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
    """The Newton matrix at one point, reduced to its Schur complement (module doc). The Hessian is
    regularised by δ_x on the X blocks (needed only where D is not positive definite; each new δ_x
    recomputes the Schur complement) and δ on the Z block (cheap: only the LDLᵀ is redone); the
    caller raises them until the inertia is (|Z|·r, |E|+|C|, 0)."""

    def __init__(self, st: Structure, U: np.ndarray, h: np.ndarray, sig_kx: np.ndarray, sig_kz: np.ndarray,
                 sig_c: np.ndarray):
        r = U.shape[1]
        self.st, self.r = st, r
        nx, nz = st.X.size, st.Z.size
        hxx, hzx, hzz = st.hessian_blocks(h)
        D = hxx[:, None, None] * np.eye(r)[None]
        if st.KX.size:
            J_kx = st.map_kx @ U
            np.add.at(D, st.xpos[st.kx_var], sig_kx[:, None, None] * J_kx[:, :, None] * J_kx[:, None, :])
        self.e, self.V = np.linalg.eigh(D)
        mR = st.E.size + st.C.size
        J_rx = (st.map_rx @ U).reshape(mR, nx * r)
        self.B = np.vstack([np.einsum("zx,kl->zkxl", hzx, np.eye(r)).reshape(nz * r, nx * r), J_rx])
        nzr = nz * r
        A = np.zeros((nzr + mR, nzr + mR))
        A[:nzr, :nzr] = np.kron(hzz, np.eye(r))
        if st.KZ.size:
            J_kz = (st.map_kz @ U).reshape(st.KZ.size, nzr)
            A[:nzr, :nzr] += J_kz.T @ (sig_kz[:, None] * J_kz)
        J_rz = (st.map_rz @ U).reshape(mR, nzr)
        A[:nzr, nzr:] = J_rz.T
        A[nzr:, :nzr] = J_rz
        A[nzr:, nzr:][np.diag_indices(mR)] = np.r_[np.zeros(st.E.size), -1.0 / sig_c]
        self.A, self.nzr, self.nR = A, nzr, nzr + mR
        self.schur = A
        self.Dinv = np.zeros((nx, r, r))
        self.delta_x = -1.0
        self.factor: tuple | None = None

    @property
    def d_min(self) -> float:
        """λ_min of the X blocks D (+inf without X)."""
        return float(self.e.min(initial=np.inf))

    def safe_shift(self) -> float:
        """The least δ_x ≥ 0 making every X block safely invertible: λ_min(D_x) + δ_x ≥
        1e-8·max(‖B_x‖², 1e-4), B_x its columns of B (so B D⁻¹ Bᵀ stays within 1e8 of B's scale)."""
        nx = self.st.X.size
        if not nx:
            return 0.0
        col2 = (self.B.reshape(self.B.shape[0], nx, self.r) ** 2).sum(axis=(0, 2))
        need = 1e-8 * np.maximum(col2, 1e-4) - self.e.min(axis=1)
        return float(max(0.0, need.max()))

    def reduce(self, delta_x: float) -> None:
        """The Schur complement A − B (D + δ_x I)⁻¹ Bᵀ (needs D + δ_x I ≻ 0)."""
        if delta_x == self.delta_x:
            return
        nx, r = self.st.X.size, self.r
        e = self.e + delta_x
        self.Dinv = np.matmul(self.V / e[:, None, :], np.transpose(self.V, (0, 2, 1)))
        self.schur = self.A
        if nx:
            G = np.matmul(self.B.reshape(-1, nx, r).transpose(1, 0, 2), self.V / np.sqrt(e)[:, None, :])
            G = G.transpose(1, 0, 2).reshape(self.B.shape[0], nx * r)
            self.schur = self.A - G @ G.T
        self.delta_x = delta_x

    def factorize(self, delta: float, delta_c: float = 0.0) -> tuple[int, int, int]:
        """LDLᵀ of the Schur complement with δ on the Z block and −δ_c on the equality rows, after
        a symmetric scaling by each row's largest entry (a congruence: same inertia, so that a pivot
        counts as zero relative to its own row); its inertia."""
        from scipy.linalg.lapack import dsytrf

        S = self.schur.copy()
        S[np.arange(self.nzr), np.arange(self.nzr)] += delta
        eq = self.nzr + np.arange(self.st.E.size)
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

    def solve(self, bx: np.ndarray, bR: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ΔX (|X| × r), (ΔZ flat, Δy_E, Δy_C)) for right-hand sides (bx, bR), after `factorize`."""
        from scipy.linalg.lapack import dsytrs

        assert self.factor is not None
        ldu, ipiv, scale = self.factor
        t = np.matmul(self.Dinv, bx[:, :, None])[:, :, 0]
        rhs = bR - self.B @ t.reshape(-1) if bx.size else bR.copy()
        dR, info = dsytrs(ldu, ipiv, rhs * scale, lower=1)
        if info != 0:
            raise la.LinAlgError(f"dsytrs failed ({info})")
        dR = dR * scale
        if not bx.size:
            return bx.copy(), dR
        dx = np.matmul(self.Dinv, (bx - (self.B.T @ dR).reshape(bx.shape))[:, :, None])[:, :, 0]
        return dx, dR
