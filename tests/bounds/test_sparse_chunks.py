"""Sparse weights (convolutions, pooling windows) in the backward pass, neurons bounded in chunks,
and passes that stop when asked: the same certified bounds, sound on sampled inputs."""
from __future__ import annotations

import numpy as np
import pytest

import optcert.bounds.crown as crown_mod
import optcert.bounds.torch_net as tn_mod
from optcert.bounds import BoundMethod, BoundSettings, compute_bounds, ibp
from optcert.bounds.crown import Interrupted
from optcert.ir import Network
from optcert.ir import ops as O
from optcert.ir.layered import to_layered
from optcert.precision import Precision
from optcert.solve.progressive import ResumableTightening, Tightening


def _pooled_conv_net(seed: int = 0):
    """conv → ReLU → 2×2 max-pool (ReLUs and Selects) → conv → ReLU → affine: sparse layer weights."""
    rng = np.random.default_rng(seed)
    from optcert.ir import decompose as D

    nodes = {"x": (O.Input((1, 8, 8)), [])}
    order = ["x"]

    def add(label, op, srcs):
        nodes[label] = (op, list(srcs))
        order.append(label)
        return label
    h = add("c1", O.Conv2d(rng.normal(size=(3, 1, 3, 3)) / 3, rng.normal(size=3) * 0.3, padding=(1, 1, 1, 1)), ["x"])
    h = add("r1", O.ReLU(), [h])
    h, _ = D.max_pool(add, "mp", h, (3, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0))
    h = add("c2", O.Conv2d(rng.normal(size=(4, 3, 3, 3)) / 5, rng.normal(size=4) * 0.3, padding=(1, 1, 1, 1)), [h])
    h = add("r2", O.ReLU(), [h])
    h = add("flat", O.Flatten(), [h])
    add("out", O.Affine(rng.normal(size=(3, 64)) / 8, rng.normal(size=3) * 0.3), [h])
    return Network.from_nodes([(name, nodes[name][0], nodes[name][1]) for name in order])


def _bounds(net, lo, hi, precision=Precision.FLOAT64):
    given = ibp(net, lo, hi)
    return compute_bounds(net, [given], BoundMethod.CROWN, BoundSettings(precision=precision))[0]


@pytest.mark.parametrize("precision", list(Precision))
def test_sparse_products_and_chunks_give_the_same_sound_bounds(monkeypatch, precision):
    net = to_layered(_pooled_conv_net())
    rng = np.random.default_rng(1)
    c = rng.uniform(0, 1, size=net.n_inputs)
    lo, hi = c - 0.1, c + 0.1
    monkeypatch.setattr(tn_mod, "SPARSE_MIN_ENTRIES", 10 ** 12)        # dense products only
    dense = _bounds(net, lo, hi, precision)
    tn_mod.torch_net.cache_clear()
    monkeypatch.setattr(tn_mod, "SPARSE_MIN_ENTRIES", 0)               # every sparse weight as sparse
    monkeypatch.setattr(tn_mod, "SPARSE_MAX_DENSITY", 0.5)
    monkeypatch.setattr(crown_mod, "CHUNK", 7)                         # many small chunks
    sparse = _bounds(net, lo, hi, precision)
    tn_mod.torch_net.cache_clear()
    assert any(w is not None for k in range(len(net.layers)) for w in
               (tn_mod.torch_net(net, "cpu", precision).sparse_weight(k, s) for s in range(len(net.layers[k].sources))))
    tol = 1e-9 if precision is Precision.FLOAT64 else 1e-4
    pre = net.forward(lo + (hi - lo) * rng.random((4000, lo.size)))
    for k, values in enumerate(pre, start=1):
        np.testing.assert_allclose(sparse.lower[k], dense.lower[k], atol=tol * (1 + np.abs(dense.lower[k]).max()))
        np.testing.assert_allclose(sparse.upper[k], dense.upper[k], atol=tol * (1 + np.abs(dense.upper[k]).max()))
        assert np.all(values >= sparse.lower[k]) and np.all(values <= sparse.upper[k])
    tn_mod.torch_net.cache_clear()


def test_a_bound_pass_stops_when_asked():
    net = to_layered(_pooled_conv_net())
    lo, hi = np.full(64, 0.2), np.full(64, 0.6)
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 3
    with pytest.raises(Interrupted):
        compute_bounds(net, [ibp(net, lo, hi)], BoundMethod.CROWN, stop=stop)


def test_an_interrupted_tightening_resumes_to_the_same_bounds():
    """Interrupting its CROWN passes pauses the tightening (valid bounds so far); resumed, it ends
    where an uninterrupted run ends."""
    net = to_layered(_pooled_conv_net(2))
    lo, hi = np.full(64, 0.3), np.full(64, 0.5)
    given = ibp(net, lo, hi)
    plain = ResumableTightening(net, given, Tightening.LP)
    assert plain.advance(np.inf)
    paused = ResumableTightening(net, given, Tightening.LP)
    paused.interrupt = lambda: True
    import time

    assert not paused.advance(time.monotonic() + 0.5)
    for k in range(1, len(net.layers) + 1):   # still valid: never tighter than the finished run's
        assert np.all(paused.bounds.lower[k] <= plain.bounds.lower[k] + 1e-9)
    paused.interrupt = None
    assert paused.advance(np.inf)
    for k in range(1, len(net.layers) + 1):
        np.testing.assert_allclose(paused.bounds.lower[k], plain.bounds.lower[k], atol=1e-7)
        np.testing.assert_allclose(paused.bounds.upper[k], plain.bounds.upper[k], atol=1e-7)


def test_forward_through_sparse_weights_matches_and_differentiates(monkeypatch):
    """The attack's forward pass (TorchNet.forward) through sparse weights: same values, gradients flow."""
    import torch

    net = to_layered(_pooled_conv_net(1))
    monkeypatch.setattr(tn_mod, "SPARSE_MIN_ENTRIES", 0)
    monkeypatch.setattr(tn_mod, "SPARSE_MAX_DENSITY", 0.5)
    tn_mod.torch_net.cache_clear()
    tn = tn_mod.torch_net(net, "cpu", Precision.FLOAT64)
    assert any(tn.sparse_csr(k, s) is not None for k in range(tn.depth) for s in range(len(tn.sources[k])))
    x = torch.tensor(np.random.default_rng(5).uniform(size=(6, 64)), requires_grad=True)
    out = tn.forward(x)[-1]
    np.testing.assert_allclose(out.detach().numpy(), net.forward(x.detach().numpy())[-1], atol=1e-12)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    tn_mod.torch_net.cache_clear()
