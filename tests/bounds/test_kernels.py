"""The batched bound kernels (issue 14): against the previous implementation (tests/bounds/legacy_crown.py),
against exact rational arithmetic where rounding is all that separates the bound from the truth,
against sampled values, and the batched torch IBP against the numpy reference."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from optcert.bounds import ibp
from optcert.bounds.crown import Neurons, backward_bound, crown
from optcert.bounds.interval_batch import interval_batch
from optcert.bounds.torch_net import DomainBatch, torch_net
from optcert.ir import Network
from optcert.ir import ops as O
from optcert.ir.layered import to_layered
from optcert.precision import Precision
from tests.bounds import legacy_crown
from tests.builders import random_conv_net, random_mlp, random_residual_net


def _nets():
    return [pytest.param(lambda: random_mlp(np.random.default_rng(0), [4, 16, 16, 16, 3]), id="mlp"),
            pytest.param(lambda: random_mlp(np.random.default_rng(1), [30, 40, 40, 5], scale=3.0), id="wide"),
            pytest.param(lambda: random_conv_net(np.random.default_rng(7)), id="conv"),
            pytest.param(lambda: random_residual_net(np.random.default_rng(8)), id="residual")]


def _boxes(rng, n, count, width):
    c = rng.normal(size=(count, n))
    w = width * rng.uniform(0.2, 1.0, size=(count, n))
    return c - w / 2, c + w / 2


@pytest.mark.parametrize("precision", list(Precision))
@pytest.mark.parametrize("make", _nets())
def test_new_kernel_is_sound_and_matches_the_previous_one(make, precision):
    """Every layer contains sampled values; the output bound equals the previous kernel's up to
    the rounding allowance (never below it by more than that, in either precision)."""
    rng = np.random.default_rng(3)
    net = to_layered(make())
    lo, hi = _boxes(rng, net.n_inputs, 6, 0.8)
    tn = torch_net(net, "cpu", precision)
    dom = DomainBatch.from_box(lo, hi)
    for neurons in Neurons:
        new = crown(tn, dom, neurons=neurons)
        old = legacy_crown.crown(torch_net(net), dom)       # the previous kernel, float64
        for b in range(len(lo)):
            x = lo[b] + (hi[b] - lo[b]) * rng.random((3000, lo.shape[1]))
            for k, values in enumerate(net.forward(x), start=1):
                assert np.all(values >= new.lower[k][b].numpy()) and np.all(values <= new.upper[k][b].numpy())
        n_lo, o_lo = new.lower[-1].numpy(), old.lower[-1].numpy()
        n_hi, o_hi = new.upper[-1].numpy(), old.upper[-1].numpy()
        tol = (2e-4 if precision is Precision.FLOAT32 else 1e-10) * (1 + np.abs(o_lo) + np.abs(o_hi))
        assert np.all(n_lo >= o_lo - tol) and np.all(n_hi <= o_hi + tol)
        if neurons is Neurons.ALL:   # every layer at least as tight as before, up to rounding
            for k in range(1, net.sizes().__len__()):
                t = tol.max() * 10
                assert np.all(new.lower[k].numpy() >= old.lower[k].numpy() - t)


def _exact_min(W: list[np.ndarray], b: list[np.ndarray], lo, hi) -> list[Fraction]:
    """Exact minimum of each output of an all-active (hence affine) net over the box, rationally."""
    A = [[Fraction(v) for v in row] for row in W[0]]
    c = [Fraction(v) for v in b[0]]
    for w, bias in zip(W[1:], b[1:]):
        A = [[sum(Fraction(w[i, k]) * A[k][j] for k in range(len(A))) for j in range(len(A[0]))]
             for i in range(w.shape[0])]
        c = [sum(Fraction(w[i, k]) * c[k] for k in range(len(c))) + Fraction(bias[i]) for i in range(w.shape[0])]
    return [c[i] + sum(min(a * Fraction(lo[j]), a * Fraction(hi[j])) for j, a in enumerate(A[i]))
            for i in range(len(A))]


@pytest.mark.parametrize("precision", list(Precision))
@pytest.mark.parametrize("seed", range(3))
def test_rounding_allowance_covers_large_cancelling_terms(precision, seed):
    """All neurons active (positive weights, large biases), so CROWN is exact up to rounding;
    large, cancelling magnitudes make float32 rounding visible. The certified bound must sit below
    the exact rational minimum, and within a small multiple of γ_N·magnitude of it."""
    rng = np.random.default_rng(seed)
    sizes = [6, 40, 40, 3]
    W = [np.abs(rng.normal(size=(sizes[1], sizes[0]))) * 1e3]
    W.append(np.abs(rng.normal(size=(sizes[2], sizes[1]))))
    W.append(rng.normal(size=(sizes[3], sizes[2])) * 7.3)
    b = [np.full(sizes[1], 1e5) + rng.normal(size=sizes[1]), rng.normal(size=sizes[2]) * 1e3,
         rng.normal(size=sizes[3])]
    ops = []
    for w, bias in zip(W, b):
        ops += [O.Affine(w, bias), O.ReLU()]
    net = to_layered(Network.sequential((sizes[0],), ops[:-1]))
    lo = rng.uniform(0.0, 1.0, sizes[0])
    hi = lo + rng.uniform(0.0, 0.1, sizes[0])
    exact = _exact_min(W, b, lo, hi)
    out = crown(torch_net(net, "cpu", precision), DomainBatch.from_box(lo, hi)).lower[-1][0].numpy()
    scale = np.abs(W[2]) @ (np.abs(W[1]) @ (np.abs(W[0]) @ hi + b[0]) + np.abs(b[1]))
    for i, e in enumerate(exact):
        assert Fraction(float(out[i])) <= e, (i, out[i], float(e))
        assert float(e) - out[i] <= (1e-3 if precision is Precision.FLOAT32 else 1e-11) * scale[i]


def test_batched_ibp_matches_the_numpy_reference():
    rng = np.random.default_rng(4)
    net = to_layered(random_residual_net(rng))
    lo, hi = _boxes(rng, net.n_inputs, 5, 1.0)
    out = interval_batch(torch_net(net), DomainBatch.from_box(lo, hi)).to_bounds()
    for b in range(len(lo)):
        ref = ibp(net, lo[b], hi[b])
        for k in range(len(ref.lower)):
            assert np.all(out[b].lower[k] <= ref.lower[k] + 1e-9 * (1 + np.abs(ref.lower[k])))
            assert np.allclose(out[b].lower[k], ref.lower[k], rtol=1e-9, atol=1e-9)
            assert np.allclose(out[b].upper[k], ref.upper[k], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("precision", list(Precision))
def test_unstable_only_equals_all_neurons_on_the_output(precision):
    rng = np.random.default_rng(5)
    net = to_layered(random_mlp(rng, [5, 30, 30, 30, 4]))
    lo, hi = _boxes(rng, 5, 8, 0.5)
    tn, dom = torch_net(net, "cpu", precision), DomainBatch.from_box(lo, hi)
    a, b = crown(tn, dom, neurons=Neurons.UNSTABLE), crown(tn, dom, neurons=Neurons.ALL)
    tol = 1e-4 if precision is Precision.FLOAT32 else 1e-10
    assert np.allclose(a.lower[-1].numpy(), b.lower[-1].numpy(), rtol=tol, atol=tol)


def test_bounds_are_differentiable_in_weights_and_slopes():
    """Certified training differentiates through the kernels: gradients reach weights and alphas."""
    import torch

    from optcert.bounds.alpha_crown import initial_alphas

    rng = np.random.default_rng(6)
    net = to_layered(random_mlp(rng, [3, 8, 8, 2]))
    tn = torch_net(net)
    w = tn.weights[1][0].clone().requires_grad_(True)
    tn2 = type(tn)(tn.net, (tn.weights[0], (w,), tn.weights[2]), tn.biases, tn.abs_biases, tn.colmax,
                   tn.sources, tn.precision, tn.device)
    lo, hi = _boxes(rng, 3, 2, 1.0)
    dom = crown(tn2, DomainBatch.from_box(lo, hi), upto=2)
    alphas = initial_alphas(dom, 3, 2, tn2)
    low = backward_bound(tn2, dom, 3, np.eye(2), alphas=alphas).lower
    gw, ga = torch.autograd.grad(low.sum(), [w, alphas[1]], allow_unused=True)
    assert gw is not None and torch.isfinite(gw).all() and gw.abs().sum() > 0
    assert ga is not None and torch.isfinite(ga).all()
