"""torch-lowrank's ball projection and Newton–CG inner steps (solvers/torch_bm_data.py,
solvers/torch_inner.py): exact Hessian-vector products against finite differences, ball detection,
iterates that stay inside every ball, and both inner methods against cvxpy's SDP optimum."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cvxpy")

from optcert.forms import Limits, LowRankSDP, SolveStatus  # noqa: E402
from solvers.torch_bm_data import BmData  # noqa: E402
from solvers.torch_lowrank import BACKEND, solve_batch  # noqa: E402
from tests.solvers.test_torch_lowrank import MODELS, box_qcqp, maxcut, rank_for, sdp_optimum, slack_min_eig  # noqa: E402


def _ball_rows(model):
    return np.flatnonzero(~model.equality)[:model.n]   # box_qcqp: v_i² − v_i ≤ 0 first, then linear rows


@pytest.mark.parametrize("balls", [True, False])
def test_hessian_vector_products_match_finite_differences(balls):
    model = box_qcqp(10, 4, 1)
    R, r = 2, 4
    data = BmData(model, r, R, torch.float64, "cpu", balls)
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(R, model.n, r, generator=gen, dtype=torch.float64)
    C = torch.as_tensor(np.stack([model.objective, -model.objective])[:, data.perm])
    y = torch.randn(R, data.M.shape[0], generator=gen, dtype=torch.float64)
    rho = torch.tensor([10.0, 3.0], dtype=torch.float64)
    _, G, _, w = data.evaluate(W, C, y, rho)
    D = torch.randn(W.shape, generator=gen, dtype=torch.float64)
    h = 1e-6
    fd = (data.evaluate(W + h * D, C, y, rho)[1] - data.evaluate(W - h * D, C, y, rho)[1]) / (2 * h)
    exact = data.hessian(W, C, w, rho)(D)
    assert torch.allclose(fd, exact, rtol=1e-6, atol=1e-6)
    diag = data.diagonal(W, C, w, rho)
    assert diag.shape == W.shape and bool((diag >= 0).all())


def test_balls_are_found_with_their_centres_and_radii():
    model = box_qcqp(6, 3, 0)
    data = BmData(model, 3, 1, torch.float64, "cpu", True)
    assert data.balls.rows.tolist() == _ball_rows(model).tolist()
    assert torch.allclose(data.balls.c, torch.full((6,), 0.5, dtype=torch.float64))
    assert torch.allclose(data.balls.rad, torch.full((6,), 0.5, dtype=torch.float64))
    assert data.M.shape[0] == model.m - 6   # the balls leave the penalty
    assert BmData(maxcut(5, 0), 3, 1, torch.float64, "cpu", True).balls.count == 0   # equalities only


@pytest.mark.parametrize("inner", ["newton", "lbfgs"])
def test_iterates_stay_inside_every_ball(inner):
    model = box_qcqp(10, 4, 1)
    r = rank_for(model)
    init = np.zeros((model.n + 1, r))
    init[0, 0], init[1:, 1] = 1.0, 3.0   # far outside the unit-interval boxes
    for raw in ({"outer_iterations": 1, "inner_iterations": 2}, {}):
        sol = BACKEND.solve(LowRankSDP(model, r, init=init), raw={"inner": inner, **raw})
        U = sol.x.reshape(model.n + 1, r)
        g = model.constraints @ model.values(U @ U.T)
        assert np.all(g[_ball_rows(model)] <= 1e-12)
        assert np.all(sol.row_duals[_ball_rows(model)] >= 0)
    assert sol.status is SolveStatus.OPTIMAL and sol.stats["projected_rows"] == model.n


@pytest.mark.parametrize("inner", ["newton", "lbfgs"])
@pytest.mark.parametrize("name", list(MODELS))
def test_both_inner_methods_reach_the_sdp_optimum(name, inner):
    model = MODELS[name]()
    r = rank_for(model)
    sol = BACKEND.solve(LowRankSDP(model, r), raw={"inner": inner})
    assert sol.status is SolveStatus.OPTIMAL, sol.message
    ref = sdp_optimum(model)
    assert abs(sol.objective - ref) <= 1e-4 * max(1.0, abs(ref))
    assert slack_min_eig(model, model.objective, sol.row_duals, sol.objective) >= -1e-4
    if inner == "newton":
        assert sol.stats["cg_iterations"] >= sol.stats["inner_iterations"] > 0


def test_newton_batch_equals_one_at_a_time():
    model = box_qcqp(6, 3, 0)
    r = rank_for(model)
    objectives = np.stack([model.objective, -model.objective])
    batch = solve_batch(model, objectives, r, options={"inner": "newton"})
    for c, together in zip(objectives, batch):
        alone = BACKEND.solve(LowRankSDP(model.with_objective(c), r), raw={"inner": "newton"})
        assert together.status is alone.status is SolveStatus.OPTIMAL
        assert together.objective == pytest.approx(alone.objective, rel=1e-7, abs=1e-7)


def test_newton_respects_the_time_limit():
    sol = BACKEND.solve(LowRankSDP(box_qcqp(40, 10, 2), 8), Limits(time_limit=0.0), raw={"inner": "newton"})
    assert sol.status is SolveStatus.TIME_LIMIT and np.all(np.isfinite(sol.x))
