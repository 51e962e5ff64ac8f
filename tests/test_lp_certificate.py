"""Soundness and tightness of the rigorous LP bound (optcert.certificates.lp).

The oracle is the exact rational Lagrangian value at the projected y (fractions.Fraction): it is a
valid lower bound on the LP, and the certified float bound must never exceed it.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from optcert.certificates.lp import certified_lp_bound, lp_bound_certificate
from optcert.forms import LinearProgram

INF = np.inf


def _exact_lagrangian(lp: LinearProgram, y: np.ndarray) -> float | Fraction:
    """Σ y_i·side_i + Σ min_box r_j x_j + c0 in exact rational arithmetic (y already projected)."""
    A = lp.A.toarray()
    total = Fraction(lp.c0)
    for i, yi in enumerate(y):
        if yi != 0:
            total += Fraction(yi) * Fraction(lp.row_lo[i] if yi > 0 else lp.row_hi[i])
    for j in range(lp.n_cols):
        r = Fraction(lp.c[j]) - sum(Fraction(A[i, j]) * Fraction(y[i]) for i in range(lp.n_rows) if A[i, j] and y[i])
        if r == 0:
            continue
        side = lp.col_lo[j] if r > 0 else lp.col_hi[j]
        if not np.isfinite(side):
            return -math.inf
        total += r * Fraction(side)
    return total


def _random_lp(rng, m: int, n: int, scale: float = 1.0, boxed: bool = True) -> LinearProgram:
    """A feasible LP around a random point x0, with all kinds of rows (one-sided, ranged, equal, free)."""
    A = rng.normal(size=(m, n)) * scale * (rng.random((m, n)) < 0.7)
    x0 = rng.uniform(-1, 1, n)
    act = A @ x0
    kind = rng.integers(0, 5, m)
    lo = np.where(np.isin(kind, (0, 2)), act - rng.random(m), np.where(kind == 3, act, -INF))
    hi = np.where(np.isin(kind, (1, 2)), act + rng.random(m), np.where(kind == 3, act, INF))
    col_lo = x0 - rng.uniform(0.5, 2, n)
    col_hi = x0 + rng.uniform(0.5, 2, n)
    if not boxed:
        col_lo[rng.random(n) < 0.3] = -INF
        col_hi[rng.random(n) < 0.3] = INF
    return LinearProgram(rng.normal(size=n) * scale, sp.csr_matrix(A), lo, hi, col_lo, col_hi, c0=rng.normal())


def _highs_solve(lp: LinearProgram):
    from solvers.highs import BACKEND

    status = BACKEND.available()
    if not status.available:
        pytest.skip(f"highs unavailable: {status.reason}")
    return BACKEND.solve(lp)


def test_hand_example_is_exact_and_below():
    lp = LinearProgram([1, 2], sp.csr_matrix([[1.0, 1.0], [1.0, -1.0]]), [1, -INF], [INF, 0.5], [0, 0], [10, 10], c0=3)
    bound = certified_lp_bound(lp, np.array([1.5, -0.5]))
    assert 4.25 - 1e-12 <= bound <= 4.25


def test_solver_duals_are_tight_and_perturbed_duals_stay_sound():
    rng = np.random.default_rng(7)
    for _trial in range(30):
        lp = _random_lp(rng, int(rng.integers(2, 9)), int(rng.integers(2, 9)))
        sol = _highs_solve(lp)
        assert sol.status.value == "optimal"
        opt = sol.objective
        assert opt - 1e-7 * (1 + abs(opt)) <= certified_lp_bound(lp, sol.row_duals) <= opt + 1e-9 * (1 + abs(opt))
        for noise in (1e-12, 1e-6, 1e-1, 10.0):
            y = sol.row_duals + noise * rng.normal(size=lp.n_rows)
            cert = lp_bound_certificate(lp, y)
            assert cert.bound <= opt + 1e-9 * (1 + abs(opt))
            assert cert.bound <= _exact_lagrangian(lp, cert.y)
        garbage = rng.normal(size=lp.n_rows) * 10 ** rng.uniform(-3, 3)
        assert certified_lp_bound(lp, garbage) <= opt + 1e-9 * (1 + abs(opt))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=int(__import__('os').environ.get('LPCERT_EXAMPLES', 150)), deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1e-8, 1.0, 1e8]), st.booleans(), st.booleans())
def test_never_above_exact_lagrangian(seed, scale, boxed, cancel):
    """The float bound is ≤ the exact rational Lagrangian value, also when r ≈ 0 by cancellation."""
    rng = np.random.default_rng(seed)
    lp = _random_lp(rng, int(rng.integers(1, 6)), int(rng.integers(1, 6)), scale, boxed)
    if cancel:  # y solving Aᵀy ≈ c in float: r̃ is rounding noise, exactly where the margins matter
        y = np.linalg.lstsq(lp.A.toarray().T, lp.c, rcond=None)[0]
    else:
        y = rng.normal(size=lp.n_rows) * 10 ** rng.uniform(-8, 8)
    cert = lp_bound_certificate(lp, y)
    exact = _exact_lagrangian(lp, cert.y)
    assert cert.bound <= exact
    if exact != -math.inf and cert.bound != -math.inf:  # loose only by the documented margins
        box = np.maximum(np.abs(lp.col_lo), np.abs(lp.col_hi)).sum()
        enclosure = 2 * cert.max_r_error * box if cert.max_r_error else 0.0
        slack = 1e-9 * (1 + abs(float(exact))) + 2 * cert.sum_margin + enclosure
        assert cert.bound >= float(exact) - slack


@given(finite, finite, finite)
def test_rounding_cancellation_one_column(a, lo, width):
    """fl(c − a·y) can be 0 while the exact residual is not; the enclosure must cover it."""
    a0 = a if a != 0 else 0.1
    lp = LinearProgram([1.0], sp.csr_matrix([[a0]]), [lo], [lo + abs(width)], [-1e12], [1e12])
    y = np.array([1.0 / a0])
    cert = lp_bound_certificate(lp, y)
    assert cert.bound <= _exact_lagrangian(lp, cert.y)


def test_sign_projection_and_nonfinite_duals():
    lp = LinearProgram([1, 1], sp.csr_matrix([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                       [1, -INF, -INF], [INF, 2, INF], [0, 0], [5, 5])
    cert = lp_bound_certificate(lp, np.array([-1.0, 1.0, np.nan]))  # wrong signs and a NaN
    np.testing.assert_array_equal(cert.y, [0.0, 0.0, 0.0])
    assert cert.bound == pytest.approx(0.0) and cert.bound <= 0.0
    assert certified_lp_bound(lp, np.array([np.inf, -3.0, 0.0])) <= 1.0 - 6.0
    with pytest.raises(ValueError):
        certified_lp_bound(lp, np.zeros(2))


def test_infinite_column_bounds():
    A = sp.csr_matrix([[1.0, 1.0, 0.0]])
    # x0 ∈ [0, ∞) with r0 = 1 − 0.5 > 0 needs only the finite lower side; x2 is free but untouched.
    lp = LinearProgram([1.0, 0.5, 0.0], A, [2], [INF], [0, 0, -INF], [INF, INF, INF])
    bound = certified_lp_bound(lp, np.array([0.5]))
    assert bound == pytest.approx(1.0) and bound <= 1.0
    # r0 < 0 on a column unbounded above: no bound follows.
    assert certified_lp_bound(lp, np.array([2.0])) == -math.inf
    # a free column with nonzero cost and nothing to cancel it.
    assert certified_lp_bound(lp.with_objective(np.array([1.0, 1.0, 1.0])), np.array([1.0])) == -math.inf
    # a free column whose float residual fl(1 − fl(0.1·10)) is 0 but whose exact residual is not: −inf.
    free = LinearProgram([1.0], sp.csr_matrix([[0.1]]), [1], [1], [-INF], [INF])
    assert 1.0 - 0.1 * 10.0 == 0.0
    assert certified_lp_bound(free, np.array([10.0])) == -math.inf
    # a free column whose residual is exactly 0 (checked in rational arithmetic): finite and exact.
    exact = LinearProgram([0.5], sp.csr_matrix([[0.25]]), [1], [1], [-INF], [INF])
    assert certified_lp_bound(exact, np.array([2.0])) == pytest.approx(2.0)
    assert certified_lp_bound(exact, np.array([2.0])) <= 2.0


def test_milp_bound_from_relaxation_duals():
    """Integrality only shrinks the set: the LP relaxation's bound is below the MILP optimum."""
    lp = LinearProgram([-5, -4, -3], sp.csr_matrix([[2.0, 3, 1], [4, 1, 2], [3, 4, 2]]), [-INF] * 3, [5, 11, 8],
                       [0] * 3, [2] * 3, [True] * 3, c0=10)
    relaxed = _highs_solve(lp.relaxed())
    bound = certified_lp_bound(lp, relaxed.row_duals)
    assert bound <= -3.0 and bound == pytest.approx(relaxed.objective, abs=1e-7)


def test_certificate_fields():
    rng = np.random.default_rng(3)
    lp = _random_lp(rng, 4, 5)
    cert = lp_bound_certificate(lp, rng.normal(size=4))
    assert cert.bound == certified_lp_bound(lp, cert.y)
    assert cert.sum_margin > 0 and cert.max_r_error >= 0 and cert.bound < cert.value
