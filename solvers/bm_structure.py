"""Which variables and rows of a Burer–Monteiro problem the structured Newton step
(solvers/bm_schur.py) eliminates, keeps or condenses, and the index maps that build its blocks.

X is a set of variables no quadratic slot couples to each other (a greedy independent set of the
graph of off-diagonal slots used by a row or the objective; in a ReLU lowering: the free inputs,
which meet only their own box and the first layers); Z is the rest. Rows:
  K  inequality rows condensed into the Hessian (JᵀΣJ with Σ = y/s): those touching one variable
     of X only (its box: KX) and those touching no X variable (KZ);
  R  the rows kept in the reduced system: equality rows (E) and the other inequality rows (C),
     ordered as `order` = linear-in-X rows first (their X-Jacobian is a constant in component 0:
     every X slot is (0, x)), then the rest ("quadratic").
"""
from __future__ import annotations

import numpy as np
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


def ends(M: sp.csr_matrix, a: np.ndarray, b: np.ndarray):
    """(row, at, other, value): ∂g_row/∂U_at gains value·U_other, for every nonzero of M."""
    coo = M.tocoo()
    rows, at, other, val = (np.r_[coo.row, coo.row], np.r_[a[coo.col], b[coo.col]],
                            np.r_[b[coo.col], a[coo.col]], np.r_[coo.data, coo.data])
    keep = at > 0
    return rows[keep], at[keep], other[keep], val[keep]


def block_map(e, rows: np.ndarray, var_pos: np.ndarray, nv: int, N: int) -> sp.csr_matrix:
    """Sparse E with (E U).reshape(len(rows), nv, r) = the Jacobian of `rows` over the variables whose
    position var_pos[P index] ≥ 0 (each row's own position is its place in `rows`)."""
    erow, at, other, val = e
    row_pos = np.full(int(erow.max(initial=-1)) + 1, -1)
    row_pos[rows] = np.arange(rows.size)
    rp = row_pos[erow] if erow.size else erow
    keep = (rp >= 0) & (var_pos[at] >= 0)
    return sp.csr_matrix((val[keep], (rp[keep] * nv + var_pos[at[keep]], other[keep])), shape=(rows.size * nv, N))


class Structure:
    """The partition of variables and rows (module doc) and the maps that build the blocks."""

    def __init__(self, model: QuadraticModel, objective: np.ndarray, M: sp.csr_matrix):
        N = model.n + 1
        a, b = model.slot_row.astype(np.int64), model.slot_col.astype(np.int64)
        self.X = separable(model, objective)
        inx = np.zeros(N, dtype=bool)
        inx[self.X] = True
        self.Z = np.flatnonzero(~inx[1:]) + 1
        self.xpos, self.zpos = np.full(N, -1), np.full(N, -1)
        self.xpos[self.X], self.zpos[self.Z] = np.arange(self.X.size), np.arange(self.Z.size)
        e = ends(M, a, b)
        self._classify(model, M, e, N)
        nx, nz = self.X.size, self.Z.size
        self.map_kx = self._local_map(e, N)
        self.map_rx = block_map(e, self.order, self.xpos, nx, N)
        self.map_q = block_map(e, self.order[self.n_lin:], self.xpos, nx, N)
        self.map_rz = block_map(e, self.order, self.zpos, nz, N)
        self.map_kz = block_map(e, self.KZ, self.zpos, nz, N)
        U0 = np.zeros((N, 1))
        U0[0, 0] = 1.0
        self.J0 = (block_map(e, self.order[:self.n_lin], self.xpos, nx, N) @ U0).reshape(self.n_lin, nx)
        self._hess_index(a, b)

    def _classify(self, model: QuadraticModel, M: sp.csr_matrix, e, N: int) -> None:
        erow, at, other, _ = e
        m = M.shape[0]
        touch = sp.csr_matrix((np.ones(erow.size), (erow, at)), shape=(m, N))
        touch.sum_duplicates()
        nvars = np.diff(touch.indptr)
        nx = np.bincount(erow[self.xpos[at] >= 0], minlength=m) if erow.size else np.zeros(m, np.int64)
        nx_vars = np.asarray((touch[:, self.X] != 0).sum(axis=1)).ravel() if self.X.size else np.zeros(m)
        eq = model.equality
        local_x = ~eq & (nvars == 1) & (nx_vars == 1)
        self.E = np.flatnonzero(eq)
        self.C = np.flatnonzero(~eq & (nx_vars >= 1) & ~local_x)
        self.KX = np.flatnonzero(local_x)
        self.KZ = np.flatnonzero(~eq & (nx_vars == 0))
        self.kx_var = touch[self.KX].indices[touch[self.KX].indptr[:-1]] if self.KX.size else np.zeros(0, np.int64)
        quad_x = np.bincount(erow[(self.xpos[at] >= 0) & (other > 0)], minlength=m) if erow.size else nx
        R = np.r_[self.E, self.C]
        lin = quad_x[R] == 0
        self.order = np.r_[R[lin], R[~lin]]
        self.n_lin = int(lin.sum())
        self.order_eq = eq[self.order]

    def _local_map(self, e, N: int) -> sp.csr_matrix:
        """Sparse L with (L U) = each KX row's gradient over its one variable (|KX| × r)."""
        erow, at, other, val = e
        pos = np.full(int(erow.max(initial=-1)) + 1, -1)
        pos[self.KX] = np.arange(self.KX.size)
        rp = pos[erow] if erow.size else erow
        keep = rp >= 0
        return sp.csr_matrix((val[keep], (rp[keep], other[keep])), shape=(self.KX.size, N))

    def _hess_index(self, a: np.ndarray, b: np.ndarray) -> None:
        """Slot → entry maps for 2Q(h) restricted to xx (diagonal), zx and zz."""
        nz, nx = self.Z.size, self.X.size
        quad = a >= 1
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
        self.hzz = (np.r_[s, s[off]], np.r_[i * nz + j, (j * nz + i)[off]],
                    np.r_[np.where(off, 1.0, 2.0), np.ones(int(off.sum()))])

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

    def size(self, r: int) -> int:
        """Order of the reduced system at rank r."""
        return self.Z.size * r + self.order.size
