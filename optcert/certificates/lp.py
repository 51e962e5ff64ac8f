"""Rigorous LP/MILP lower bounds from any dual vector (Neumaier & Shcherbina 2004, Math. Prog. 99).

For any y, every x with row_lo ≤ Ax ≤ row_hi and col_lo ≤ x ≤ col_hi satisfies
c·x = yᵀ(Ax) + rᵀx with r = c − Aᵀy, hence (with y sign-projected so that y_i > 0 only where
row_lo_i is finite and y_i < 0 only where row_hi_i is finite)

    c·x + c0 ≥ Σ_i (y_i > 0 ? y_i row_lo_i : y_i row_hi_i) + Σ_j min_{x_j ∈ box} r_j x_j + c0.

Integrality only shrinks the feasible set, so the same number bounds the MILP. The bound is
exact for the optimal duals of a boxed LP, and −inf when a column bound is infinite where r_j
needs it. On such columns the float enclosure below is first clipped to the exact sign of r_j,
computed in rational arithmetic (fractions) — so r_j = 0 exactly costs nothing.

Floating point (u = 2⁻⁵³, η = 2⁻¹⁰⁷⁴ covers underflow; n = most nonzeros in a column of A):
* r̃ = fl(c − fl(Aᵀy)). By Higham (2002, §3.1), |fl(Aᵀy) − Aᵀy| ≤ γ_n |A|ᵀ|y| + nη with
  γ_n = nu/(1 − nu), and the subtraction adds ≤ 2u|r̃|. The computed s̃ = fl(|A|ᵀ|y|)
  underestimates |A|ᵀ|y| by at most a factor 1 − γ_n, so e = (2(n+2)u s̃ + 4u|r̃| + (n+2)η)(1 + 2⁻²⁰)
  encloses r ∈ [r̃ − e, r̃ + e] (the last factor absorbs the rounding of e itself); the interval
  ends are stepped outward one ulp.
* Each term T_k is one rounded product, so T_k ≥ T̃_k − 2u|T̃_k| − η; for a column the worst case
  over [r̃ − e, r̃ + e] × [col_lo, col_hi] is the least of its four corners (0·∞ := 0).
* The terms are summed with math.fsum (correctly rounded: error ≤ u|Σ T̃|), the margin
  (2u Σ|T̃| + 2u|value| + Nη)(1 + 2⁻²⁰) is subtracted, and the result is stepped one ulp down.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from optcert.forms import LinearProgram

U = 2.0 ** -53
ETA = 2.0 ** -1074
_SAFE = 1.0 + 2.0 ** -20


@dataclass(frozen=True, eq=False)
class LpBoundCertificate:
    """What an offline re-check needs: the bound, its float value and margins, and the y used."""

    bound: float  # rigorous lower bound on min c·x + c0 (−inf if none can be given)
    value: float  # fsum of the rounded terms, before the summation/product margin
    sum_margin: float  # margin subtracted for product and summation rounding
    max_r_error: float  # max_j e_j, the radius of the enclosure of r = c − Aᵀy
    y: np.ndarray  # the sign-projected dual vector the bound was computed from


def _project(lp: LinearProgram, row_duals) -> np.ndarray:
    """y with non-finite entries and entries of the wrong sign for the row's finite sides set to 0."""
    y = np.asarray(row_duals, dtype=np.float64).reshape(-1)
    if y.size != lp.n_rows:
        raise ValueError(f"row_duals has {y.size} entries for {lp.n_rows} rows")
    y = np.where(np.isfinite(y), y, 0.0)
    y = np.where((y > 0) & ~np.isfinite(lp.row_lo), 0.0, y)
    return np.where((y < 0) & ~np.isfinite(lp.row_hi), 0.0, y)


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise a·b with 0·(±inf) = 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where((a == 0) | (b == 0), 0.0, a * b)


def _residual_enclosure(lp: LinearProgram, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval [r_lo, r_hi] ∋ c − Aᵀy, exact (zero width) on columns no nonzero y_i touches."""
    A = lp.A
    pattern = abs(A).astype(bool).astype(np.float64)
    touched = (pattern.T @ (y != 0).astype(np.float64)) > 0
    n = int(np.diff(A.tocsc().indptr).max(initial=0)) + 2
    with np.errstate(over="ignore", invalid="ignore"):
        r = lp.c - A.T @ y
        s = abs(A).T @ np.abs(y)
        e = (2.0 * n * U * s + 4.0 * U * np.abs(r) + n * ETA) * _SAFE
    e = np.where(touched, e, 0.0)
    r_lo = np.where(e > 0, np.nextafter(r - e, -np.inf), r)
    r_hi = np.where(e > 0, np.nextafter(r + e, np.inf), r)
    return _clip_to_exact_sign(lp, y, r_lo, r_hi)


def _clip_to_exact_sign(lp: LinearProgram, y: np.ndarray, r_lo: np.ndarray, r_hi: np.ndarray):
    """Clip [r_lo, r_hi] to the exact sign of c_j − A_jᵀy where the float interval would reach an
    infinite column bound; the sign comes from exact rational arithmetic over column j's nonzeros."""
    risky = ((r_lo < 0) & ~np.isfinite(lp.col_hi)) | ((r_hi > 0) & ~np.isfinite(lp.col_lo))
    risky &= np.isfinite(r_lo) & np.isfinite(r_hi) & np.isfinite(lp.c)
    A = lp.A.tocsc()
    for j in np.flatnonzero(risky):
        rows, vals = A.indices[A.indptr[j]:A.indptr[j + 1]], A.data[A.indptr[j]:A.indptr[j + 1]]
        if not np.all(np.isfinite(vals)):
            continue
        exact = Fraction(lp.c[j]) - sum(Fraction(a) * Fraction(y[i]) for i, a in zip(rows, vals) if y[i])
        r_lo[j] = max(r_lo[j], 0.0) if exact >= 0 else r_lo[j]
        r_hi[j] = min(r_hi[j], 0.0) if exact <= 0 else r_hi[j]
    return r_lo, r_hi


def lp_bound_certificate(lp: LinearProgram, row_duals) -> LpBoundCertificate:
    """Rigorous lower bound on min c·x + c0 over the LP (or MILP) `lp` from any `row_duals`."""
    y = _project(lp, row_duals)
    r_lo, r_hi = _residual_enclosure(lp, y)
    side = np.where(y > 0, lp.row_lo, np.where(y < 0, lp.row_hi, 0.0))
    corners = [_mul(r, b) for r in (r_lo, r_hi) for b in (lp.col_lo, lp.col_hi)]
    terms = np.concatenate([_mul(y, side), np.minimum.reduce(corners), [lp.c0]])
    max_e = float(np.max(r_hi - r_lo, initial=0.0)) / 2.0
    if not np.all(np.isfinite(terms)):
        return LpBoundCertificate(-math.inf, -math.inf, math.inf, max_e, y)
    try:
        value = math.fsum(terms)
        margin = (2.0 * U * math.fsum(np.abs(terms)) + 2.0 * U * abs(value) + terms.size * ETA) * _SAFE
    except OverflowError:
        return LpBoundCertificate(-math.inf, -math.inf, math.inf, max_e, y)
    bound = float(np.nextafter(value - margin, -np.inf))
    if math.isnan(bound):
        bound = -math.inf
    return LpBoundCertificate(bound, value, margin, max_e, y)


def certified_lp_bound(lp: LinearProgram, row_duals) -> float:
    """A rigorous lower bound on min c·x + c0 over `lp` (float; −inf when none follows from y)."""
    return lp_bound_certificate(lp, row_duals).bound
