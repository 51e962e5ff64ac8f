"""What the conic adapters (scs, clarabel, mosek) share: PSD-block vectorisation, cone
residuals, and turning a solver's (status, x, y) into a `Solution`.

Conventions (n×n symmetric X, t = n(n+1)/2 entries, off-diagonals scaled by √2 so that
⟨svec X, svec Y⟩ = tr(XY)):

* "lower" — `optcert.forms.ConicProgram`, SCS 3.x and MOSEK's svec PSD domain: the lower
  triangle column by column, X₀₀, √2X₁₀, …, √2X_{n−1,0}, X₁₁, √2X₂₁, ….
* "upper" — Clarabel's `PSDTriangleConeT`: the upper triangle column by column,
  X₀₀, √2X₀₁, X₁₁, √2X₀₂, √2X₁₂, X₂₂, ….

Both hold the same numbers with the same scaling in a different order, so converting is a pure
row permutation; it is an isometry of the cone, hence the duals convert by the same permutation.
"""
from __future__ import annotations

import numpy as np

from optcert.forms import ConicProgram, Solution, SolveStatus

SQRT2 = np.sqrt(2.0)


def tri_len(n: int) -> int:
    """Number of entries in the svec of an n×n matrix."""
    return n * (n + 1) // 2


def _lower_entries(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the lower triangle in column-by-column order."""
    cols, rows = np.triu_indices(n)  # row-major upper triangle, transposed
    return rows, cols


def svec(X: np.ndarray) -> np.ndarray:
    """The forms.py ("lower") svec of a symmetric matrix."""
    X = np.asarray(X, dtype=np.float64)
    rows, cols = _lower_entries(X.shape[0])
    return X[rows, cols] * np.where(rows == cols, 1.0, SQRT2)


def smat(v: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose forms.py ("lower") svec is `v` (inverse of `svec`)."""
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    n = int(round((np.sqrt(8 * v.size + 1) - 1) / 2))
    if tri_len(n) != v.size:
        raise ValueError(f"{v.size} is not a triangular number")
    rows, cols = _lower_entries(n)
    X = np.zeros((n, n))
    X[rows, cols] = v / np.where(rows == cols, 1.0, SQRT2)
    X[cols, rows] = X[rows, cols]
    return X


def lower_to_upper(n: int) -> np.ndarray:
    """Permutation p with upper_svec(X) = lower_svec(X)[p] for an n×n block."""
    index = np.zeros((n, n), dtype=np.int64)
    rows, cols = _lower_entries(n)
    index[rows, cols] = np.arange(tri_len(n))
    # upper, column by column, is the lower triangle row by row (X symmetric)
    r, c = np.tril_indices(n)
    return index[r, c]


def psd_slices(form) -> list[slice]:
    """Row slices of a ConicProgram's PSD blocks, in order."""
    start, out = form.zero + form.nonneg, []
    for n in form.psd:
        out.append(slice(start, start + tri_len(n)))
        start += tri_len(n)
    return out


def row_permutation(form) -> np.ndarray:
    """Permutation p of a ConicProgram's rows to the "upper" convention: solver rows = rows[p].

    Zero and nonnegative rows are fixed; a solver vector v maps back by `out[p] = v`."""
    parts = [np.arange(form.zero + form.nonneg)]
    for n, block in zip(form.psd, psd_slices(form)):
        parts.append(block.start + lower_to_upper(n))
    return np.concatenate(parts).astype(np.int64)


def cone_violation(form, v: np.ndarray, dual: bool = False) -> float:
    """How far `v` is from K (dual=False) or from K* (dual=True), as a max-norm (0 = inside).

    K = {0}^zero × R₊^nonneg × PSD blocks; K* differs only in that its first part is free.
    PSD parts use dense float64 eigenvalues: a diagnostic, not a rigorous bound."""
    v = np.asarray(v, dtype=np.float64)
    worst = 0.0 if dual or form.zero == 0 else float(np.max(np.abs(v[:form.zero])))
    if form.nonneg:
        worst = max(worst, float(-np.min(v[form.zero:form.zero + form.nonneg])))
    for n, block in zip(form.psd, psd_slices(form)):
        if n:
            worst = max(worst, float(-np.linalg.eigvalsh(smat(v[block]))[0]))
    return max(worst, 0.0)


def kkt_residuals(form, x: np.ndarray | None, y: np.ndarray | None) -> dict[str, float]:
    """Solver-independent residuals of (x, y) in the forms.py convention (max-norms):
    primal (b − Ax ∉ K), dual (‖Aᵀy + c‖ and y ∉ K*) and |primal − dual objective|."""
    out: dict[str, float] = {}
    if x is not None:
        out["primal_residual"] = cone_violation(form, form.b - form.A @ x)
    if y is not None:
        stationarity = float(np.max(np.abs(form.A.T @ y + form.c), initial=0.0))
        out["dual_residual"] = max(stationarity, cone_violation(form, y, dual=True))
    if x is not None and y is not None:
        out["gap"] = abs(float(form.c @ x + form.b @ y))
    return out


def finite_or_none(values) -> np.ndarray | None:
    """`values` as a float64 array, or None if absent, empty of meaning (any NaN/inf)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    return arr if np.all(np.isfinite(arr)) else None


def conic_solution(backend: str, form: ConicProgram, status: SolveStatus, x, y, seconds: float,
                   message: str = "", stats: dict | None = None) -> Solution:
    """A Solution in the forms.py convention from a point x and duals y (forms.py row order).

    `objective` = c·x + c0 at any finite x; `bound` = −bᵀy + c0 only when OPTIMAL (otherwise
    the dual value goes to stats["dual_objective"], unproven). For INFEASIBLE, `row_duals` holds
    the solver's Farkas certificate (y ∈ K*, Aᵀy ≈ 0, bᵀy < 0) and `x` is None; for UNBOUNDED
    both are None (the primal ray is not a point)."""
    stats = dict(stats or {})
    x, y = finite_or_none(x), finite_or_none(y)
    if status in (SolveStatus.INFEASIBLE, SolveStatus.UNBOUNDED):
        x = None
        y = y if status == SolveStatus.INFEASIBLE else None
        return Solution(status, backend, seconds, x=x, row_duals=y, message=message, stats=stats)
    objective = float(form.c @ x) + form.c0 if x is not None else None
    dual_value = -float(form.b @ y) + form.c0 if y is not None else None
    if dual_value is not None:
        stats["dual_objective"] = dual_value
    stats.update(kkt_residuals(form, x, y))
    bound = dual_value if status == SolveStatus.OPTIMAL else None
    return Solution(status, backend, seconds, objective, bound, x, y, None, message, stats)
