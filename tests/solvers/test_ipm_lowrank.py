"""ipm-lowrank (optcert's interior point on the Burer–Monteiro factorisation, Schur-complement
Newton step): optimum and multipliers against cvxpy's SDP optimum, the rigorous certificate from
optcert's own code, sign convention, limits and failures as statuses, options, the monitor, and its
place in the registry."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.certificates.sdp import certify
from optcert.errors import InvalidOptionError
from optcert.forms import Limits, LowRankSDP, SolveStatus
from solvers.ipm_lowrank import BACKEND, IpmOptions
from tests.solvers.test_torch_lowrank import MODELS, box_qcqp, rank_for, sdp_optimum, slack_min_eig

pytest.importorskip("cvxpy")


@pytest.mark.parametrize("name", list(MODELS))
def test_reaches_the_sdp_optimum_with_a_near_certificate(name):
    model = MODELS[name]()
    r = rank_for(model)
    sol = BACKEND.solve(LowRankSDP(model, r))
    assert sol.status is SolveStatus.OPTIMAL, sol.message
    assert sol.bound is None   # the solver claims no bound; certificates/sdp.py makes one
    ref = sdp_optimum(model)
    assert abs(sol.objective - ref) <= 1e-5 * max(1.0, abs(ref))
    y = sol.row_duals
    assert y.shape == (model.m,) and np.all(y[~model.equality] >= -1e-9)   # f + yᵀg, y ≥ 0 on ≤ rows
    assert slack_min_eig(model, model.objective, y, sol.objective) >= -1e-5
    U = sol.x.reshape(model.n + 1, r)
    assert np.array_equal(U[0], np.eye(1, r)[0])
    assert sol.objective == pytest.approx(model.objective @ model.values(U @ U.T), abs=1e-10)
    assert sol.stats["max_violation"] <= 1e-6 and sol.stats["schur_size"] >= 1


@pytest.mark.parametrize("name", ["qcqp6", "qcqp10"])
def test_certificate_from_its_multipliers_never_exceeds_the_optimum(name):
    # these models carry no boxes (no trace bound), so a slack a hair below PSD certifies nothing;
    # the tight case is the golden reduced instance (tests/sdp/test_tight_lowering.py)
    model = MODELS[name]()
    sol = BACKEND.solve(LowRankSDP(model, rank_for(model)))
    ref = sdp_optimum(model)
    cert = certify(model, sol.row_duals, sol.objective, primal=sol.objective)
    assert cert.bound <= ref + 1e-6 * max(1.0, abs(ref))
    assert cert.lambda_min_lower >= -1e-6 * max(1.0, abs(ref))   # the slack is PSD up to the tolerance


def test_garbage_multipliers_certify_nothing_above_the_optimum():
    model = MODELS["qcqp10"]()
    ref = sdp_optimum(model)
    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.normal(size=model.m) * 3
        assert certify(model, y, ref + 1.0, primal=ref + 1.0).bound <= ref + 1e-9


def test_a_larger_rank_from_the_last_multipliers_reaches_the_same_value():
    model = MODELS["qcqp10"]()
    r = rank_for(model)
    first = BACKEND.solve_model(model, model.objective, r)
    U = first.x.reshape(model.n + 1, r)
    again = BACKEND.solve_model(model, model.objective, r + 1, U, duals=first.row_duals)
    assert again.status is SolveStatus.OPTIMAL and again.objective == pytest.approx(first.objective, abs=1e-6)


def test_time_limit_is_a_status_and_options_are_checked():
    model = box_qcqp(10, 4, 1)
    sol = BACKEND.solve(LowRankSDP(model, 3), Limits(time_limit=1e-9))
    assert sol.status is SolveStatus.TIME_LIMIT and sol.row_duals is not None and sol.x is not None
    capped = BACKEND.solve(LowRankSDP(model, 3), raw={"max_iterations": 2})
    assert capped.status is SolveStatus.ITERATION_LIMIT and capped.stats["iterations"] == 2
    with pytest.raises(InvalidOptionError, match="ordering"):
        BACKEND.solve(LowRankSDP(model, 3), raw={"ordering": "best"})
    for bad in ({"tolerance": 0.0}, {"max_iterations": 0}, {"noise": -1.0}, {"mu_init": 0.0}):
        with pytest.raises(InvalidOptionError):
            IpmOptions(**bad)


def test_a_failure_inside_the_solver_is_an_error_status(monkeypatch):
    from solvers import ipm_step

    def broken(*args, **kwargs):
        raise FloatingPointError("factorisation blew up (test)")

    monkeypatch.setattr(ipm_step.Newton, "factorize", broken)
    sol = BACKEND.solve(LowRankSDP(box_qcqp(6, 3, 0), 3))
    assert sol.status is SolveStatus.ERROR and "blew up" in sol.message
    bad_init = BACKEND.solve(LowRankSDP(box_qcqp(6, 3, 0), 3, np.full((7, 3), np.nan)))
    assert bad_init.status is SolveStatus.ERROR


def test_monitor_sees_late_multipliers_and_can_stop_the_solve():
    model = box_qcqp(10, 4, 1)
    seen = []

    def monitor(y, objective):
        seen.append((y.copy(), objective))
        return len(seen) >= 2

    options = IpmOptions(monitor_every=1, monitor_mu=1.0)
    sol = BACKEND.solve_model(model, model.objective, 3, options=options, monitor=monitor)
    assert sol.status is SolveStatus.CUTOFF and len(seen) == 2
    assert all(y.shape == (model.m,) and np.isfinite(obj) for y, obj in seen)
    assert sol.row_duals is not None
    full = BACKEND.solve_model(model, model.objective, 3)
    assert full.status is SolveStatus.OPTIMAL and full.stats["iterations"] > sol.stats["iterations"]


def test_registered_licence_free_and_listed():
    import solvers
    from optcert.cli import main

    assert "ipm-lowrank" in solvers.names() and solvers.available()["ipm-lowrank"].available
    assert solvers.get("ipm-lowrank") is BACKEND and BACKEND.forms == ("lowrank",)
    assert main(["solvers"]) == 0
