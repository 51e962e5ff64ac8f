"""The torch passes of the `crown` and `alpha-crown` engines that also hand back their multipliers
(for the certificate: optcert.checking.evidence), built from the public kernels of
optcert.bounds (crown.backward_bound, alpha_crown.initial_alphas, adam.Adam).

`case_pass` gives, for one case, the intermediate bounds (CROWN, or Fast-Lin with the parallel
slope, intersected with IBP — what `compute_bounds` gives) and the output rows' certified lower
bounds with the ν of the pass that gave each: CROWN's, or with `alpha` the best of the
projected-Adam iterates on the lower slopes (Xu et al. 2021), row by row, exactly as
`alpha_crown.optimise` (which keeps only the bounds).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from optcert.bounds.adam import Adam
from optcert.bounds.alpha_crown import initial_alphas
from optcert.bounds.crown import LowerSlope, Neurons, backward_bound, crown
from optcert.bounds.layer_bounds import Bounds
from optcert.bounds.torch_net import DomainBatch, torch_net
from optcert.precision import Precision


@dataclass(frozen=True)
class CasePass:
    """`inner`: bounds on layers 0..L−1; `lower` (m,): certified bounds on the folded outputs;
    `nus[j]` (m, n_j): the multipliers that gave them (float64 numpy)."""

    inner: Bounds
    lower: np.ndarray
    nus: dict[int, np.ndarray]


def case_pass(net, given: Bounds, slope: LowerSlope, device: str, precision: Precision,
              alpha: tuple[int, float] | None = None, deadline: float = float("inf")) -> CasePass:
    """CROWN (or alpha-CROWN with `alpha` = (iterations, lr)) on the output rows of `net` (module doc)."""
    import torch

    tn = torch_net(net, device, precision)
    L = tn.depth
    # the checker recipes `fastlin` and `crown-unstable`
    neurons = Neurons.ALL if slope is LowerSlope.PARALLEL else Neurons.UNSTABLE
    inner = crown(tn, DomainBatch.from_bounds([given], device), slope, upto=L - 1, neurons=neurons)
    m = tn.biases[-1].shape[0]
    eye = torch.eye(m, dtype=precision.torch(), device=tn.device)
    if alpha is None:
        p = backward_bound(tn, inner, L, eye, slope=slope)
        lower, nus = p.lower.detach(), {j: v.detach() for j, v in p.nus.items()}
    else:
        lower, nus = _alpha(tn, inner, eye, alpha, deadline)
    return CasePass(inner.to_bounds()[0], lower[0].double().cpu().numpy(),
                    {j: v[0].double().cpu().numpy() for j, v in nus.items()})


def _alpha(tn, inner: DomainBatch, eye, settings: tuple[int, float], deadline: float):
    """Best certified bound per row over the Adam iterates, and that iterate's ν."""
    import torch

    iterations, lr = settings
    L = tn.depth
    alphas = initial_alphas(inner, L, eye.shape[0], tn)
    params = list(alphas.values())
    opt = Adam([(a, lr) for a in params]) if params else None
    best, best_nus = None, {}
    for it in range(iterations + 1):
        p = backward_bound(tn, inner, L, eye, alphas=alphas, slope=LowerSlope.ADAPTIVE)
        low = p.lower.detach()
        if best is None:
            best, best_nus = low, {j: v.detach().clone() for j, v in p.nus.items()}
        else:
            better = low > best
            best = torch.where(better, low, best)
            best_nus = {j: torch.where(better[..., None], p.nus[j].detach(), best_nus[j]) for j in best_nus}
        if opt is None or it == iterations or time.monotonic() > deadline:
            break
        opt.step(torch.autograd.grad(-p.lower.sum(), params))
        with torch.no_grad():
            for a in params:
                a.clamp_(0.0, 1.0)
    assert best is not None
    return best, best_nus
