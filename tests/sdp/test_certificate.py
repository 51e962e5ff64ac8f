"""The QCQP lowering and the SDP certificate: rank-one feasibility of real network points,
soundness against brute force for solver, perturbed and garbage multipliers, tightness."""
from __future__ import annotations

import math

import numpy as np
import pytest

from optcert.certificates.sdp import certify, lambda_min_lower
from optcert.lowerings.quadratic import network_point, relu_qcqp
from tests.sdp.conftest import cvxpy_sdp, make_instance


def _slack(model) -> np.ndarray:
    return np.zeros(model.m) if model.row_slack is None else model.row_slack


def test_real_network_points_are_feasible_rank_one_points(instance):
    net, bounds, lowered, _ = instance
    model = lowered.form
    rng = np.random.default_rng(0)
    lo, hi = bounds.lower[0], bounds.upper[0]
    for x in lo + (hi - lo) * rng.random((300, lo.size)):
        pre = net.forward(x[None])
        w = np.r_[1.0, network_point(lowered, net, x)]
        P = np.outer(w, w)
        g = model.constraints @ model.values(P)
        t = _slack(model)
        assert np.all(np.abs(g[model.equality]) <= t[model.equality] + 1e-9)
        assert np.all(g[~model.equality] <= t[~model.equality] + 1e-9)
        assert model.objective @ model.values(P) == pytest.approx(pre[-1][0, 0], abs=1e-9)
        v = w[1:]
        centred = np.diag(P)[1:] - 2 * model.center * v + model.center ** 2
        assert np.all(centred <= model.radius2 + 1e-12)


def test_certificate_from_solver_duals_is_tight_and_below_the_truth(instance):
    _, _, lowered, truth = instance
    value, y = cvxpy_sdp(lowered.form)
    cert = certify(lowered.form, y, value)
    assert cert.bound <= truth + 1e-12
    assert cert.bound <= value + 1e-6 * (1 + abs(value))
    assert cert.bound >= value - 1e-5 * (1 + abs(value))


@pytest.mark.parametrize("seed", range(8))
def test_perturbed_and_garbage_multipliers_never_exceed_the_truth(seed):
    _, _, lowered, truth = make_instance(seed)
    model = lowered.form
    _, y = cvxpy_sdp(model)
    rng = np.random.default_rng(seed)
    trials = [y * (1 + 0.1 * rng.normal(size=y.size)), y + 0.01 * rng.normal(size=y.size), -y,
              rng.normal(size=y.size) * 10, np.zeros_like(y), np.full_like(y, np.nan), y * 1e6]
    for trial in trials:
        for lam in (None, truth + 1.0, truth + 100.0, -truth):
            cert = certify(model, trial, lam)
            assert not math.isnan(cert.bound) and cert.bound <= truth + 1e-9


def test_without_hidden_boxes_a_non_psd_slack_certifies_nothing():
    _, _, lowered, truth = make_instance(1, hidden_boxes=False)
    assert lowered.form.center is None
    cert = certify(lowered.form, np.zeros(lowered.form.m), 0.0)
    assert cert.bound == -math.inf or cert.bound <= truth


def test_lambda_min_lower_is_below_the_exact_eigenvalue():
    rng = np.random.default_rng(3)
    for n in (1, 5, 40):
        A = rng.normal(size=(n, n))
        A = A + A.T
        exact = np.linalg.eigvalsh(A)[0]
        low = lambda_min_lower(A)
        assert low <= exact and low >= exact - 1e-9 * (1 + abs(exact))
    assert lambda_min_lower(np.array([[np.nan]])) == -math.inf


def test_singular_psd_matrix_gets_a_tiny_negative_bound():
    v = np.arange(1.0, 6.0)
    low = lambda_min_lower(np.outer(v, v))
    assert -1e-9 <= low <= 0.0


def test_bad_bounds_raise_a_lowering_error():
    from optcert.errors import LoweringError

    net, bounds, _, _ = make_instance(0)
    broken = bounds.with_layer(1, bounds.lower[1], bounds.upper[1] * np.nan)
    with pytest.raises(LoweringError, match="layer 1"):
        relu_qcqp(net, broken, 0)


def test_rank_one_secular_minimum_matches_dense_eigenvalues():
    """The λ search's O(n) λ_min(S − λE₀₀) (secular equation) agrees with LAPACK, including a
    matrix whose first basis vector misses the smallest eigenvector."""
    from optcert.certificates.sdp import RankOneMin

    rng = np.random.default_rng(3)
    mats = [(lambda A: A + A.T)(rng.normal(size=(n, n))) for n in (1, 4, 40)]
    mats.append(np.diag([5.0, 1.0, 2.0]))
    for S in mats:
        eig = RankOneMin(S)
        for lam in (-30.0, -1.0, -1e-4, 0.0, 1e-4, 1.0, 30.0):
            D = S.copy()
            D[0, 0] -= lam
            ref = np.linalg.eigvalsh(D)[0]
            assert abs(eig(lam) - ref) <= 1e-9 * (1 + abs(ref))


@pytest.mark.parametrize("seed", range(6))
def test_triangle_cuts_keep_network_points_and_beat_the_lp(seed):
    """With `triangle`, real network points stay feasible (cuts are rounding-safe), and the SDP's
    value lies between the LP triangle bound (over the same bounds) and the exact minimum."""
    from optcert.lowerings import Objective, lower_lp
    from optcert.solve.linear import solve_bound

    net, bounds, plain, truth = make_instance(seed)
    cut = relu_qcqp(net, bounds, 0, True, triangle=True)
    model = cut.form
    assert model.m > plain.form.m or not np.any((bounds.lower[1] < 0) & (bounds.upper[1] > 0))
    rng = np.random.default_rng(seed)
    lo, hi = bounds.lower[0], bounds.upper[0]
    for x in np.r_[lo + (hi - lo) * rng.random((300, lo.size)), lo[None], hi[None]]:
        w = np.r_[1.0, network_point(cut, net, x)]
        g = model.constraints @ model.values(np.outer(w, w))
        t = _slack(model)
        assert np.all(np.abs(g[model.equality]) <= t[model.equality] + 1e-9)
        assert np.all(g[~model.equality] <= t[~model.equality] + 1e-12)
    value, y = cvxpy_sdp(model)
    lp = solve_bound(lower_lp(net, bounds, Objective((0,))).form, "highs").value
    plain_value, _ = cvxpy_sdp(plain.form)
    assert value >= lp - 1e-5 * (1 + abs(lp)) and value >= plain_value - 1e-6 * (1 + abs(plain_value))
    assert certify(model, y, value).bound <= truth + 1e-12


@pytest.mark.parametrize("seed", range(8))
def test_primal_shortcut_and_quick_certify_never_exceed_the_truth(seed):
    """`certify(primal=...)` and `quick_certify` take λ at a claimed primal value: a claim far above
    the truth (a lying solver) or perturbed multipliers must never certify above the truth, and with
    the solver's own value and multipliers the shortcut is as tight as the full λ search."""
    from optcert.certificates.sdp import quick_certify

    _, _, lowered, truth = make_instance(seed)
    model = lowered.form
    value, y = cvxpy_sdp(model)
    rng = np.random.default_rng(seed)
    for trial in (y, y * (1 + 0.1 * rng.normal(size=y.size)), rng.normal(size=y.size) * 10, np.zeros_like(y)):
        for claim in (value, truth + 1.0, truth + 100.0, value - 1.0, math.inf):
            assert certify(model, trial, value, primal=claim).bound <= truth + 1e-9
            for proof in (False, True):
                quick = quick_certify(model, trial, claim, proof)
                assert quick is None or quick.bound <= truth + 1e-9
    full = certify(model, y, value)
    assert certify(model, y, value, primal=value).bound >= full.bound - 2e-5 * (1 + abs(value))
