"""ipopt-lowrank (Burer–Monteiro by IPOPT with exact derivatives): derivatives against finite
differences, optimum and multipliers against cvxpy's SDP optimum, sign convention, limits, options,
and an honest "unavailable" when cyipopt is missing."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.errors import InvalidOptionError
from optcert.forms import Limits, LowRankSDP, SolveStatus
from solvers.bm_derivatives import BmDerivatives
from tests.solvers.test_torch_lowrank import MODELS, box_qcqp, rank_for, sdp_optimum, slack_min_eig

cyipopt = pytest.importorskip("cyipopt")

from solvers.ipopt_lowrank import BACKEND, IpoptOptions  # noqa: E402


@pytest.mark.parametrize("name", list(MODELS))
def test_derivatives_match_finite_differences(name):
    model = MODELS[name]()
    r = 3
    d = BmDerivatives(model, model.objective, r)
    rng = np.random.default_rng(1)
    w = rng.standard_normal(model.n * r)
    lam = rng.standard_normal(model.m)
    h = 1e-6
    J = np.zeros((model.m, w.size))
    J[d.jac_rows, d.jac_cols] = d.jacobian(w)
    H = np.zeros((w.size, w.size))
    np.add.at(H, (d.hess_rows, d.hess_cols), d.hessian(0.7, lam))
    H = H + np.tril(H, -1).T
    lagrangian_grad = lambda v: 0.7 * d.gradient(v) + J_at(v).T @ lam  # noqa: E731

    def J_at(v):
        out = np.zeros((model.m, v.size))
        out[d.jac_rows, d.jac_cols] = d.jacobian(v)
        return out

    for i in range(w.size):
        e = np.zeros(w.size)
        e[i] = h
        assert d.gradient(w)[i] == pytest.approx((d.objective(w + e) - d.objective(w - e)) / (2 * h), abs=1e-5)
        assert np.allclose(J[:, i], (d.constraints(w + e) - d.constraints(w - e)) / (2 * h), atol=1e-5)
        assert np.allclose(H[:, i], (lagrangian_grad(w + e) - lagrangian_grad(w - e)) / (2 * h), atol=1e-4)


@pytest.mark.parametrize("name", list(MODELS))
def test_reaches_the_sdp_optimum_with_a_near_certificate(name):
    model = MODELS[name]()
    r = rank_for(model)
    sol = BACKEND.solve(LowRankSDP(model, r))
    assert sol.status is SolveStatus.OPTIMAL, sol.message
    ref = sdp_optimum(model)
    assert abs(sol.objective - ref) <= 1e-5 * max(1.0, abs(ref))
    y = sol.row_duals
    assert y.shape == (model.m,) and np.all(y[~model.equality] >= -1e-9)   # f + yᵀg, y ≥ 0 on ≤ rows
    assert slack_min_eig(model, model.objective, y, sol.objective) >= -1e-5
    U = sol.x.reshape(model.n + 1, r)
    assert np.array_equal(U[0], np.eye(1, r)[0])
    assert sol.objective == pytest.approx(model.objective @ model.values(U @ U.T), abs=1e-10)


def test_time_limit_is_a_status_and_options_are_checked():
    model = box_qcqp(10, 4, 1)
    sol = BACKEND.solve(LowRankSDP(model, 3), Limits(time_limit=1e-6))
    assert sol.status is SolveStatus.TIME_LIMIT and sol.row_duals is not None
    with pytest.raises(InvalidOptionError, match="ordering"):
        BACKEND.solve(LowRankSDP(model, 3), raw={"ordering": "best"})
    with pytest.raises(InvalidOptionError):
        IpoptOptions(tolerance=0.0)


def test_missing_cyipopt_is_reported_unavailable(monkeypatch):
    import builtins

    from solvers.ipopt_lowrank import IpoptLowRankBackend

    real = builtins.__import__

    def no_cyipopt(name, *args, **kwargs):
        if name == "cyipopt":
            raise ImportError("No module named 'cyipopt'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cyipopt)
    status = IpoptLowRankBackend().available()
    assert not status.available and "cyipopt" in status.reason
    sol = IpoptLowRankBackend().solve(LowRankSDP(box_qcqp(4, 1, 0), 2))
    assert sol.status is SolveStatus.UNAVAILABLE


def test_monitor_sees_late_multipliers_and_can_stop_the_solve():
    model = box_qcqp(10, 4, 1)
    seen = []

    def monitor(y, objective):
        seen.append((y.copy(), objective))
        return len(seen) >= 2

    sol = BACKEND.solve_model(model, model.objective, 3, options=IpoptOptions(monitor_every=1), monitor=monitor)
    assert sol.status is SolveStatus.CUTOFF and len(seen) == 2
    assert all(y.shape == (model.m,) and np.isfinite(obj) for y, obj in seen)
    assert sol.row_duals is not None
    full = BACKEND.solve_model(model, model.objective, 3)
    assert full.status is SolveStatus.OPTIMAL and full.stats["iterations"] > sol.stats["iterations"]
