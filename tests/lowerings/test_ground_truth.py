"""Ground truth: the big-M MILP optimum equals brute-force enumeration of linear regions; the
LP triangle is below it; samples never beat it. Solved with scipy's HiGHS (`milp`, `linprog`)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import Bounds as Box
from scipy.optimize import LinearConstraint, milp

from optcert.bounds import ibp
from optcert.ir.layered import to_layered
from optcert.lowerings import Objective, Sense, lower_lp, lower_milp, pre_activation_objectives
from tests.builders import random_mlp, random_residual_net
from tests.oracle import brute_force


def solve(form, c=None):
    """(optimum, x) of a LinearProgram (c overrides its objective), with a tight MIP gap."""
    c = form.c if c is None else c
    res = milp(c, integrality=form.integer.astype(int), bounds=Box(form.col_lo, form.col_hi),
               constraints=LinearConstraint(form.A, form.row_lo, form.row_hi),
               options={"mip_rel_gap": 1e-12})
    assert res.status == 0, res.message
    return res.fun + (form.c0 if c is form.c else 0.0), res.x


def cases():
    for seed in range(3):
        yield f"mlp-2-4-3-2-s{seed}", seed, lambda rng: random_mlp(rng, [2, 4, 3, 2])
        yield f"mlp-3-5-5-2-s{seed}", seed, lambda rng: random_mlp(rng, [3, 5, 5, 2])
        yield f"residual-s{seed}", seed, lambda rng: random_residual_net(rng, n=3, width=4, out=2)


@pytest.fixture(params=list(cases()), ids=lambda p: p[0])
def problem(request):
    _, seed, build = request.param
    rng = np.random.default_rng(100 + seed)
    net = to_layered(build(rng))
    C, d = rng.normal(size=(3, net.output.size)), rng.normal(size=3) * 0.1
    folded = net.with_spec(C, d)
    centre = rng.uniform(-0.5, 0.5, size=net.n_inputs)
    lo, hi = centre - 1.0, centre + 1.0
    return folded, ibp(folded, lo, hi), rng


@pytest.mark.parametrize("rows", [(0,), (1,), (0, 1, 2)], ids=["row0", "row1", "max3"])
def test_milp_matches_brute_force_and_lp_is_below(problem, rows):
    net, bounds, rng = problem
    milp_low = lower_milp(net, bounds, Objective(rows))
    opt, sol = solve(milp_low.form)
    truth = brute_force(net, bounds, rows)
    assert abs(opt - truth) <= 1e-6
    x = sol[milp_low.columns["x"]]
    pre = net.forward(x[None])
    assert abs(pre[-1][0, list(rows)].max() - opt) <= 1e-6
    for k, cols in milp_low.info["layers"].items():     # the solution maps back to the network
        z = np.where(cols.z >= 0, sol[np.maximum(cols.z, 0)], 0.0)
        np.testing.assert_allclose(z, np.maximum(pre[k - 1][0], 0), atol=1e-6)
    lp_opt, _ = solve(lower_lp(net, bounds, Objective(rows)).form)
    relaxed_opt, _ = solve(milp_low.form.relaxed())
    assert lp_opt <= opt + 1e-9
    assert abs(lp_opt - relaxed_opt) <= 1e-6  # big-M relaxation projects onto the triangle
    samples = rng.uniform(bounds.lower[0], bounds.upper[0], size=(2000, net.n_inputs))
    sampled = net.forward(samples)[-1][:, list(rows)].max(axis=1).min()
    assert sampled >= opt - 1e-9


def test_maximise_is_minus_min_of_negation(problem):
    net, bounds, _ = problem
    up = lower_milp(net, bounds, Objective((0,), sense=Sense.MAXIMIZE))
    opt, _ = solve(up.form)
    neg = net.with_spec(-np.eye(net.output.size), np.zeros(net.output.size))
    neg_bounds = ibp(neg, bounds.lower[0], bounds.upper[0])
    assert abs(up.info["sign"] * opt - (-brute_force(neg, neg_bounds, (0,)))) <= 1e-6


def test_prefix_bounds_tighten_soundly(problem):
    net, bounds, rng = problem
    k = 2
    milp_low, lp_low = lower_milp(net, bounds, upto=k), lower_lp(net, bounds, upto=k)
    G, g0 = pre_activation_objectives(milp_low, net, k)
    Gl, _ = pre_activation_objectives(lp_low, net, k)
    samples = rng.uniform(bounds.lower[0], bounds.upper[0], size=(2000, net.n_inputs))
    sampled = net.forward(samples)[k - 1]
    for i in range(G.shape[0]):
        for sign in (1.0, -1.0):
            exact = sign * (solve(milp_low.form, sign * G[i].toarray()[0])[0] + sign * g0[i])
            relaxed = sign * (solve(lp_low.form, sign * Gl[i].toarray()[0])[0] + sign * g0[i])
            if sign > 0:
                assert bounds.lower[k][i] - 1e-9 <= relaxed <= exact + 1e-9 <= sampled[:, i].min() + 2e-9
            else:
                assert bounds.upper[k][i] + 1e-9 >= relaxed >= exact - 1e-9 >= sampled[:, i].max() - 2e-9
