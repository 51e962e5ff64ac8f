"""Small SDP instances shared by the SDP tests: a random net, its IBP bounds, the exact minimum."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.bounds import ibp
from optcert.ir.layered import to_layered
from optcert.lowerings.quadratic import relu_qcqp
from tests.builders import random_mlp, random_residual_net
from tests.oracle import brute_force


def make_instance(seed: int, hidden_boxes: bool = True):
    rng = np.random.default_rng(seed)
    net = to_layered(random_residual_net(rng, n=3) if seed % 4 == 3 else random_mlp(rng, [3, 5, 4, 2]))
    c = rng.normal(size=3)
    bounds = ibp(net, c - 0.6, c + 0.6)
    lowered = relu_qcqp(net, bounds, 0, hidden_boxes)
    return net, bounds, lowered, brute_force(net, bounds, (0,))


def cvxpy_sdp(model):
    """The same SDP through cvxpy (an independent formulation): (value, multipliers y)."""
    import cvxpy as cp

    N = model.n + 1
    P = cp.Variable((N, N), symmetric=True)
    vals = cp.hstack([P[i, j] for i, j in zip(model.slot_row, model.slot_col)])
    g = model.constraints @ vals
    eq, ineq = np.flatnonzero(model.equality), np.flatnonzero(~model.equality)
    cons = [P >> 0, P[0, 0] == 1, g[eq] == 0, g[ineq] <= 0]
    problem = cp.Problem(cp.Minimize(model.objective @ vals), cons)
    problem.solve(solver="CLARABEL")
    y = np.zeros(model.m)
    y[eq], y[ineq] = cons[2].dual_value, cons[3].dual_value
    return problem.value, y


@pytest.fixture(params=range(6), ids=lambda s: f"seed{s}")
def instance(request):
    return make_instance(request.param)
