"""The `lipschitz` engine and the rigorous spectral-norm bounds: never below the truth (SVD,
autograd gradient norms, finite differences, brute force, attacks, the exact MILP margin)."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.certificates.spectral import gram_bound, norm2_up, power_iteration, spectral_norm_upper
from optcert.compiled import compile_problem
from optcert.engines.lipschitz import certified_l2_radius, lipschitz_bounds, pair_lipschitz
from optcert.ir.layered import to_layered
from optcert.result import Verdict
from optcert.spec.problem import Box, Case, LinearSpec, VerificationProblem, robustness_problem
from optcert.verify import verify
from tests.builders import instance_params, instances, random_conv_net, random_mlp, random_residual_net, shared_problem
from tests.oracle import brute_force


@pytest.mark.parametrize("seed", range(8))
def test_spectral_bound_is_above_the_svd_and_tight(seed):
    rng = np.random.default_rng(seed)
    shape = [(30, 50), (50, 30), (1, 40), (40, 1), (25, 25)][seed % 5]
    scale = [1e-8, 1.0, 1e6, 3.0][seed % 4]
    W = rng.normal(size=shape) * scale
    if seed % 3 == 0:
        W = W[:, :1] @ rng.normal(size=(1, shape[1]))   # rank one: Frobenius bound is exact too
    true = np.linalg.svd(W, compute_uv=False)[0]
    bound = spectral_norm_upper(W)
    assert bound >= true
    assert bound <= true * (1 + 1e-9)
    assert np.sqrt(gram_bound(W)) >= true
    assert power_iteration(W) <= bound


def test_spectral_bound_edge_cases():
    assert spectral_norm_upper(np.zeros((3, 4))) >= 0
    assert spectral_norm_upper(np.array([[np.inf, 0.0]])) == np.inf
    assert norm2_up(np.array([3.0, 4.0])) >= 5.0


def _torch_forward(layered):
    """f(x) of a LayeredNet in torch float64 (differentiable in x)."""
    import torch

    layers = [([torch.tensor(np.array(w)) for w in layer.weights], torch.tensor(np.array(layer.bias)), layer.sources)
              for layer in layered.layers]

    def forward(x):
        z = [x]
        for k, (ws, b, src) in enumerate(layers):
            h = b + sum(z[j] @ w.T for j, w in zip(src, ws))
            z.append(torch.relu(h) if k < len(layers) - 1 else h)
        return z[-1]
    return forward


def _gradients(net, xs: np.ndarray, row: np.ndarray) -> np.ndarray:
    """‖∇_x (row · f(x))‖₂ at each x, by torch autograd in float64."""
    import torch

    x = torch.tensor(xs, requires_grad=True)
    out = _torch_forward(to_layered(net))(x) @ torch.tensor(row)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return grad.norm(dim=1).numpy()


@pytest.mark.parametrize("seed", range(5))
def test_lipschitz_bound_is_above_gradient_norms_and_difference_quotients(seed):
    rng = np.random.default_rng(seed)
    net = [random_mlp(rng, [6, 12, 12, 4], scale=2.0), random_residual_net(rng, n=6, out=4)][seed % 2]
    layered = to_layered(net)
    for label in range(4):
        L = pair_lipschitz(layered, label)
        xs = rng.normal(size=(400, 6)) * 2
        for j in range(4):
            if j == label:
                continue
            row = np.zeros(4)
            row[label], row[j] = 1.0, -1.0
            assert np.all(_gradients(net, xs, row) <= L[j])
            ys = xs + rng.normal(size=xs.shape) * 0.3
            diff = np.abs((net.forward(xs) - net.forward(ys)) @ row)
            assert np.all(diff <= L[j] * np.linalg.norm(xs - ys, axis=1) * (1 + 1e-12))


def test_lipschitz_bounds_on_a_conv_net_cover_the_gradients():
    rng = np.random.default_rng(3)
    net = random_conv_net(rng)
    L = lipschitz_bounds(to_layered(net).with_spec(np.eye(3), np.zeros(3))).rows
    xs = rng.normal(size=(200, 25))
    for r in range(3):
        assert np.all(_gradients(net, xs, np.eye(3)[r]) <= L[r])


def _problem(seed: int, radius: float):
    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [3, 6, 5, 3]) if seed % 3 else random_residual_net(rng, n=3, out=3)
    c = rng.normal(size=3)
    spec = LinearSpec(rng.normal(size=(2, 3)), rng.normal(size=2) + 1.0)
    return VerificationProblem(net, (Case(Box(c - radius, c + radius), spec),), name=f"lip{seed}")


@pytest.mark.parametrize("seed", range(12))
def test_lipschitz_lower_bounds_never_exceed_the_exact_minimum(seed):
    problem = _problem(seed, [0.01, 0.1, 0.4][seed % 3])
    cc = compile_problem(problem)[0]
    result = verify(problem, "lipschitz", 30)
    truth = [brute_force(cc.net, cc.ibp, (i,)) for i in range(2)]
    assert all(low <= t + 1e-9 for low, t in zip(result.cases[0].lower, truth))
    if result.verdict is Verdict.PROVED:
        assert min(truth) > 0
        assert verify(problem, "attack", 30).verdict is not Verdict.FALSIFIED
    assert result.verdict is not Verdict.FALSIFIED


@pytest.mark.parametrize("seed", range(4))
def test_lipschitz_never_contradicts_the_exact_milp(seed):
    rng = np.random.default_rng(100 + seed)
    net = random_mlp(rng, [8, 10, 3], scale=0.5)
    x = rng.uniform(0.2, 0.8, size=8)
    label = int(np.argmax(net.forward(x[None])[0]))
    for eps in (0.001, 0.01, 0.05):
        problem = robustness_problem(net, x, label, eps)
        lip = verify(problem, "lipschitz", 30)
        exact = verify(problem, "milp", 60, {"exact": True})
        assert lip.bound <= exact.upper + 1e-9
        if lip.verdict is Verdict.PROVED:
            assert exact.verdict is Verdict.PROVED


@pytest.mark.parametrize("seed", range(4))
def test_certified_l2_radius_survives_attacks(seed):
    """No point within the certified L2 radius (random directions, and L2 PGD on every margin)
    changes the class."""
    import torch

    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [10, 16, 16, 4], scale=0.7)
    layered = to_layered(net)
    x = rng.normal(size=10)
    label = int(np.argmax(net.forward(x[None])[0]))
    radius = certified_l2_radius(layered, x, label)
    assert radius > 0
    dirs = rng.normal(size=(2000, 10))
    points = x + dirs / np.linalg.norm(dirs, axis=1, keepdims=True) * radius
    assert np.all(net.forward(points).argmax(1) == label)
    forward = _torch_forward(layered)
    for j in (k for k in range(4) if k != label):
        delta = torch.zeros(1, 10, dtype=torch.float64, requires_grad=True)
        for _ in range(100):
            out = forward(torch.tensor(x[None]) + delta)[0]
            (grad,) = torch.autograd.grad(out[label] - out[j], delta)
            with torch.no_grad():
                delta -= 0.05 * radius * grad / grad.norm().clamp(min=1e-12)
                delta *= torch.clamp(radius / delta.norm().clamp(min=1e-12), max=1.0)
        y = net.forward((x + delta.detach().numpy()[0])[None])[0]
        assert y[label] > y[j]
    assert certified_l2_radius(layered, x, (label + 1) % 4) == 0.0


SAT = [r for fam in ("acasxu", "mnistfc") for r in instances(fam) if r["expected"] == "sat"][:6]


@pytest.mark.parametrize("row", instance_params(SAT))
def test_lipschitz_never_proves_a_shared_sat_instance(row):
    assert verify(shared_problem(row), "lipschitz", 60).verdict is Verdict.UNKNOWN
