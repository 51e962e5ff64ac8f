"""Forward-mode linear bounds (bounds/forward.py): sound on sampled values in both precisions,
below the exact rational extremes where rounding is all that separates them, never looser than
interval arithmetic when intersected with it, and tight on tiny boxes."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from optcert.bounds.forward import forward_bounds
from optcert.bounds.interval_batch import interval_batch
from optcert.bounds.torch_net import DomainBatch, torch_net
from optcert.ir import Network
from optcert.ir import ops as O
from optcert.ir.layered import to_layered
from optcert.precision import Precision
from tests.builders import random_mlp


@pytest.mark.parametrize("precision", list(Precision))
@pytest.mark.parametrize("sizes,width", [([5, 20, 20, 20, 3], 1.0), ([3, 30, 30, 2], 0.05),
                                         ([6, 12, 12, 12, 12, 4], 3.0)])
def test_forward_bounds_contain_sampled_values(precision, sizes, width):
    rng = np.random.default_rng(len(sizes))
    net = to_layered(random_mlp(rng, sizes))
    c = rng.normal(size=(6, sizes[0]))
    w = width * rng.uniform(0.1, 1.0, size=c.shape)
    lo, hi = c - w / 2, c + w / 2
    tn = torch_net(net, "cpu", precision)
    for intervals in (False, True):
        out = forward_bounds(tn, DomainBatch.from_box(lo, hi), intervals=intervals)
        for b in range(len(lo)):
            x = np.vstack([lo[b] + (hi[b] - lo[b]) * rng.random((4000, sizes[0])), lo[b], hi[b]])
            for k, values in enumerate(net.forward(x)[:-1], start=1):
                assert np.all(values >= out.lower[k][b].numpy()) and np.all(values <= out.upper[k][b].numpy())
    ibp = interval_batch(tn, DomainBatch.from_box(lo, hi), upto=len(sizes) - 2)
    both = forward_bounds(tn, DomainBatch.from_box(lo, hi), intervals=True)
    tol = 1e-5 if precision is Precision.FLOAT32 else 1e-12   # the two round differently
    for k in range(1, len(sizes) - 1):
        scale = tol * (1 + np.abs(ibp.lower[k].numpy()) + np.abs(ibp.upper[k].numpy()))
        assert np.all(both.lower[k].numpy() >= ibp.lower[k].numpy() - scale)
        assert np.all(both.upper[k].numpy() <= ibp.upper[k].numpy() + scale)


@pytest.mark.parametrize("precision", list(Precision))
@pytest.mark.parametrize("seed", range(3))
def test_forward_bounds_cover_exact_extremes_with_large_magnitudes(precision, seed):
    """All neurons active, large cancelling values: layer 2 is affine in x, its exact extremes are
    rational; the certified bounds must enclose them and be within γ_N·magnitude of them."""
    rng = np.random.default_rng(seed)
    W1 = np.abs(rng.normal(size=(30, 4))) * 1e3
    b1 = np.full(30, 1e5) + rng.normal(size=30)
    W2 = rng.normal(size=(20, 30)) * 3.1
    b2 = rng.normal(size=20) * 1e4
    W3 = rng.normal(size=(2, 20))
    net = to_layered(Network.sequential((4,), [O.Affine(W1, b1), O.ReLU(), O.Affine(W2, b2), O.ReLU(),
                                               O.Affine(W3, np.zeros(2))]))
    lo = rng.uniform(0, 1, 4)
    hi = lo + rng.uniform(0, 0.2, 4)
    out = forward_bounds(torch_net(net, "cpu", precision), DomainBatch.from_box(lo, hi))
    A = [[sum(Fraction(W2[i, k]) * Fraction(W1[k, j]) for k in range(30)) for j in range(4)] for i in range(20)]
    c = [sum(Fraction(W2[i, k]) * Fraction(b1[k]) for k in range(30)) + Fraction(b2[i]) for i in range(20)]
    scale = np.abs(W2) @ (np.abs(W1) @ hi + b1) + np.abs(b2)
    tol = 1e-4 if precision is Precision.FLOAT32 else 1e-12
    for i in range(20):
        low = c[i] + sum(min(a * Fraction(lo[j]), a * Fraction(hi[j])) for j, a in enumerate(A[i]))
        high = c[i] + sum(max(a * Fraction(lo[j]), a * Fraction(hi[j])) for j, a in enumerate(A[i]))
        assert Fraction(float(out.lower[2][0, i])) <= low and Fraction(float(out.upper[2][0, i])) >= high
        assert float(low) - float(out.lower[2][0, i]) <= tol * scale[i]
