"""Rigorous upper bounds on spectral norms ‖W‖₂ = σ_max(W) in float64.

Power iteration only *estimates* σ_max (from below). A proof: G̃ = fl(W Wᵀ) (the smaller Gram
matrix) differs from G = W Wᵀ entrywise by at most γ_k (|W||W|ᵀ) (k = inner dimension; Higham
2002, §3.5), so λ_max(G) ≤ λ_max(G̃) + ‖G − G̃‖_F (Weyl), and λ_max(G̃) = −λ_min(−G̃) is bounded
by Rump's shifted-Cholesky test (`certificates.sdp.lambda_min_lower`, Rump 2006). σ_max ≤ √ of
that, with the square root rounded up. Two cheaper bounds are valid too and are taken when smaller:
the Frobenius norm ‖W‖_F and √(‖W‖₁‖W‖_∞), each computed with upward-safe error allowances.
"""
from __future__ import annotations

import math

import numpy as np

from optcert.certificates.sdp import lambda_min_lower

_U = 2.0 ** -53


def _gamma(n: int) -> float:
    return n * _U / (1 - n * _U)


def _up(x: float) -> float:
    return float(np.nextafter(x, np.inf))


def sqrt_up(x: float) -> float:
    """An upper bound on √x (IEEE √ is correctly rounded, so one ulp up suffices); x ≥ 0."""
    return _up(math.sqrt(max(x, 0.0)))


def sum_squares_up(v: np.ndarray) -> float:
    """An upper bound on Σ v_i² (float64 summation error γ_{n+1} of the sum itself)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    s = float(np.dot(v, v))
    return _up(s * (1 + _gamma(v.size + 2)) + 1e-300)


def norm2_up(v: np.ndarray) -> float:
    """An upper bound on ‖v‖₂."""
    return sqrt_up(sum_squares_up(v))


def gram_bound(W: np.ndarray) -> float:
    """Upper bound on σ_max(W)² from the smaller Gram matrix (module doc); inf if not finite."""
    W = np.asarray(W, dtype=np.float64)
    A = W if W.shape[0] <= W.shape[1] else W.T
    k = A.shape[1]
    G = A @ A.T
    absA = np.abs(A)
    E = (absA @ absA.T) * (_gamma(k + 2) * (1 + 4 * _U))
    err = _up(math.sqrt(float(np.sum(E * E))) * (1 + _gamma(E.size + 2)) + 1e-300)
    low = lambda_min_lower(-G)
    if not math.isfinite(low):
        return math.inf
    return _up((-low + err) * (1 + 4 * _U))


def norm_one_inf_bound(W: np.ndarray) -> float:
    """Upper bound on ‖W‖₁·‖W‖_∞ (max column sum × max row sum of |W|), ≥ σ_max(W)²."""
    absW = np.abs(np.asarray(W, dtype=np.float64))
    g = 1 + _gamma(max(absW.shape) + 2)
    return _up(float(absW.sum(axis=0).max()) * g * float(absW.sum(axis=1).max()) * g * (1 + 2 * _U))


def spectral_norm_upper(W: np.ndarray) -> float:
    """A rigorous upper bound on ‖W‖₂ (the least of the Gram, Frobenius and Hölder bounds)."""
    W = np.asarray(W, dtype=np.float64)
    if W.size == 0:
        return 0.0
    if not np.all(np.isfinite(W)):
        return math.inf
    squared = min(gram_bound(W), sum_squares_up(W), norm_one_inf_bound(W))
    return sqrt_up(squared)


def power_iteration(W: np.ndarray, iterations: int = 100, seed: int = 0) -> float:
    """σ_max(W) estimate from below (not a bound): ‖W v‖ for the power-iteration vector v."""
    W = np.asarray(W, dtype=np.float64)
    v: np.ndarray = np.random.default_rng(seed).standard_normal((W.shape[1],))
    for _ in range(iterations):
        v = W.T @ (W @ v)
        size = float(np.linalg.norm(v))
        if size == 0:
            return 0.0
        v /= size
    return float(np.linalg.norm(W @ v))
