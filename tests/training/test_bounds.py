"""The differentiable training bounds (IBP, CROWN-IBP, tightness terms): below every sampled
margin, the CROWN pass equal to the relaxed network at its optimal input, gradients flowing."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.training.bounds import (
    crown_margins,
    ibp_hidden,
    ibp_margins,
    margin_matrix,
    relaxed_forward,
    tightness_terms,
    weights,
)
from optcert.training.models import Architecture, build_mlp, linear_layers


def _setup(seed: int, eps: float, classes: int = 10):
    import torch

    model = build_mlp(Architecture((12, 8)), seed).double()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(5, 784, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes, (5,), generator=gen)
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    wb = weights(linear_layers(model))
    C = margin_matrix(y, classes).double()
    return torch, model, x, y, lo, hi, wb, C


@pytest.mark.parametrize("seed", range(4))
def test_bounds_lie_below_sampled_margins(seed):
    torch, model, x, y, lo, hi, wb, C = _setup(seed, [0.01, 0.05, 0.1, 0.3][seed])
    hidden = ibp_hidden(wb, lo, hi)
    low_ibp = ibp_margins(wb, lo, hi, C, hidden)
    cp = crown_margins(wb, lo, hi, C, hidden)
    samples = lo[None] + (hi - lo)[None] * torch.rand(300, *lo.shape, dtype=torch.float64)
    corners = torch.where(torch.rand(300, *lo.shape) < 0.5, lo[None], hi[None])
    for pts in (samples, corners):
        f = model(pts.reshape(-1, 784)).reshape(300, 5, 10)
        margins = torch.einsum("bkj,sbj->sbk", C, f)
        assert torch.all(margins >= low_ibp[None] - 1e-9)
        assert torch.all(margins >= cp.lower[None] - 1e-9)
    assert torch.all(cp.lower[C.abs().sum(-1) == 0] == 0) and torch.all(low_ibp[C.abs().sum(-1) == 0] == 0)


@pytest.mark.parametrize("seed", range(3))
def test_crown_bound_is_the_relaxed_network_at_its_optimum(seed):
    """The backward bound equals the relaxed network evaluated at x* (the relaxation's optimum),
    which is what the tightness terms measure against."""
    torch, model, x, y, lo, hi, wb, C = _setup(seed, 0.08)
    hidden = ibp_hidden(wb, lo, hi)
    cp = crown_margins(wb, lo, hi, C, hidden)
    out, parts = relaxed_forward(wb, cp.x_star, hidden, cp.lams)
    relaxed = (C * out).sum(-1)
    assert torch.allclose(relaxed, cp.lower, atol=1e-9)
    difference, preact = tightness_terms(model, wb, C, y, hidden, cp)
    assert difference >= -1e-9 and preact >= 0
    assert sum(int(p[2].sum()) for p in parts) > 0      # some unstable neurons


def test_tightness_terms_vanish_without_unstable_neurons_and_carry_gradients():
    torch, model, x, y, lo, hi, wb, C = _setup(0, 1e-7)
    hidden = ibp_hidden(wb, lo, hi)
    cp = crown_margins(wb, lo, hi, C, hidden)
    difference, preact = tightness_terms(model, wb, C, y, hidden, cp)
    assert abs(float(difference.detach())) < 1e-6 and float(preact.detach()) == 0.0
    torch2, model2, x2, y2, lo2, hi2, wb2, C2 = _setup(1, 0.1)
    hidden2 = ibp_hidden(wb2, lo2, hi2)
    cp2 = crown_margins(wb2, lo2, hi2, C2, hidden2)
    loss = sum(tightness_terms(model2, wb2, C2, y2, hidden2, cp2)) - cp2.lower.mean()
    loss.backward()
    assert all(p.grad is not None and torch2.isfinite(p.grad).all() for p in model2.parameters())


def test_margin_matrix_rows():
    import torch

    C = margin_matrix(torch.tensor([2]), 4)[0]
    assert C.tolist()[1] == [0.0, -1.0, 1.0, 0.0] and C[2].abs().sum() == 0
    f = torch.tensor([0.1, 0.5, 0.9, -1.0])
    assert torch.allclose(C @ f, f[2] - f)
    assert np.isclose(float((C @ f)[3]), 1.9)
