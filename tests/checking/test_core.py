"""The checker's own arithmetic is sound: its dual bound never exceeds the network's margins for
ANY multipliers, its intermediate bounds contain every sampled pre-activation, its λ_min bound is
below the true one, and it runs without torch."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from optcert.checking.crown import Recipe, intermediate
from optcert.checking.dual import margin_bound, stored
from optcert.checking.net import check_net
from optcert.checking.sdp import lambda_min_lower
from tests.checking.helpers import small_problem


def _samples(problem, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    box = problem.cases[0].box
    x = box.lo + (box.hi - box.lo) * rng.random((n, box.size))
    corners = box.lo + (box.hi - box.lo) * rng.integers(0, 2, (n // 4, box.size))
    return np.vstack([x, corners])


@pytest.mark.parametrize("recipe", list(Recipe))
@pytest.mark.parametrize("seed", range(5))
def test_intermediate_bounds_contain_every_sampled_pre_activation(seed, recipe):
    problem = small_problem(seed, residual=seed == 4, radius=1.0)
    net = check_net(problem.network)
    box = problem.cases[0].box
    lower, upper = intermediate(net, recipe, box.lo[None], box.hi[None])
    pre = net.forward(_samples(problem))
    for k in range(1, net.depth):
        assert np.all(pre[k - 1] >= lower[k][0]) and np.all(pre[k - 1] <= upper[k][0])


@pytest.mark.parametrize("seed", range(6))
def test_the_dual_bound_holds_for_any_multipliers(seed):
    """Random ν (stored on every neuron) and random non-negative weights: the bound on
    Σ w_i m_i is below its value at every sampled input."""
    problem = small_problem(seed, residual=seed % 3 == 2, radius=1.0)
    net = check_net(problem.network)
    case = problem.cases[0]
    lower, upper = intermediate(net, Recipe.CROWN, case.box.lo[None], case.box.hi[None])
    from optcert.checking.interval import affine

    out = affine(net, net.depth, lower, upper)
    lower, upper = lower + [out[0]], upper + [out[1]]
    rng = np.random.default_rng(seed)
    x = _samples(problem, seed=seed)
    margins = case.spec.margins(problem.network.forward(x))
    for trial in range(20):
        nus = {j: (np.ones(n, dtype=bool), rng.normal(size=n) * rng.choice([0.1, 1, 10]))
               for j, n in enumerate(net.sizes()[:-1]) if j >= 1}
        w = rng.random((1, case.spec.rows)) * (trial % 2) + np.eye(case.spec.rows)[trial % case.spec.rows]
        low, _ = margin_bound(net, lower, upper, case.spec.C, case.spec.d, w, stored(nus))
        assert low[0, 0] <= (margins @ w[0]).min()


def test_lambda_min_lower_is_below_the_true_smallest_eigenvalue():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 40, 120):
        for scale in (1e-8, 1.0, 1e6):
            A = rng.normal(size=(n, n)) * scale
            A = (A + A.T) / 2
            true = np.linalg.eigvalsh(A)[0]
            assert lambda_min_lower(A) <= true
    assert lambda_min_lower(np.array([[np.nan]])) == -np.inf


def test_the_checker_runs_without_torch():
    code = ("import sys; import optcert.checking.check, optcert.cli.check; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
