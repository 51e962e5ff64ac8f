"""The full SDP (Raghunathan et al. 2018) of a `QuadraticModel` as a `ConicProgram` in SCS's
standard form: variables x = svec(P) (lower triangle column by column, off-diagonals ×√2), so the
PSD cone rows are s = x; the zero cone holds P_00 = 1 and the equality rows, the nonnegative cone
the inequality rows (s_i = −⟨Q_i, P⟩ ≥ 0). With conic duals y (Aᵀy + c = 0, y ∈ K*), the
constraint rows' duals are exactly the model's multipliers (Lagrangian ⟨C,P⟩ + Σ y_i⟨Q_i,P⟩), so
`multipliers` hands them to `sdp_certificate.certify`. Dense in P: N = n + 1 gives N(N+1)/2
variables (485,605 for a 784-100-100 MLP).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optcert.forms import ConicProgram, Lowered, QuadraticModel

_SQRT2 = np.sqrt(2.0)


def svec_index(row: np.ndarray, col: np.ndarray, N: int) -> np.ndarray:
    """Position of entry (row, col), row ≥ col, in the lower-triangle column-major svec of N×N."""
    return col * N - col * (col - 1) // 2 + (row - col)


def _slot_map(model: QuadraticModel) -> tuple[np.ndarray, np.ndarray]:
    """For each slot: its x column and the factor turning a P entry into that x entry's coefficient."""
    N = model.n + 1
    idx = svec_index(model.slot_col, model.slot_row, N)   # slots are upper (row ≤ col): mirror
    scale = np.where(model.slot_row == model.slot_col, 1.0, 1.0 / _SQRT2)
    return idx, scale


def lower_sdp(model: QuadraticModel) -> Lowered[ConicProgram]:
    """The ConicProgram of `model` (module doc). info: "m" constraint rows, "N" the matrix size."""
    N = model.n + 1
    nx = N * (N + 1) // 2
    idx, scale = _slot_map(model)
    M = sp.csr_matrix(model.constraints)
    eq, ineq = np.flatnonzero(model.equality), np.flatnonzero(~model.equality)
    ordered = sp.vstack([M[eq], M[ineq]]).tocoo()
    rows_c = sp.csr_matrix((ordered.data * scale[ordered.col], (ordered.row + 1, idx[ordered.col])),
                           shape=(1 + model.m, nx))
    one = sp.csr_matrix(([1.0], ([0], [0])), shape=(1 + model.m, nx))
    A = sp.vstack([rows_c + one, -sp.identity(nx, format="csr")]).tocsc()
    b = np.zeros(1 + model.m + nx)
    b[0] = 1.0
    c = np.zeros(nx)
    np.add.at(c, idx, model.objective * scale)
    form = ConicProgram(c, A, b, zero=1 + eq.size, nonneg=ineq.size, psd=(N,))
    return Lowered(form, {"P": slice(0, nx)}, {"m": model.m, "N": N, "order": np.r_[eq, ineq]})


def multipliers(lowered: Lowered[ConicProgram], duals: np.ndarray) -> np.ndarray:
    """The model's constraint multipliers y (model row order) from the conic duals."""
    order = lowered.info["order"]
    y = np.zeros(order.size)
    y[order] = duals[1:1 + order.size]
    return y


def primal_matrix(lowered: Lowered[ConicProgram], x: np.ndarray) -> np.ndarray:
    """P as a dense symmetric matrix from the conic primal x."""
    N = lowered.info["N"]
    r, c = np.tril_indices(N)
    order = np.lexsort((r, c))  # column-major lower triangle
    P = np.zeros((N, N))
    vals = x.copy()
    rr, cc = r[order], c[order]
    vals = np.where(rr == cc, vals, vals / _SQRT2)
    P[rr, cc] = vals
    P[cc, rr] = vals
    return P
