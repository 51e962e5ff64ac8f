"""alpha-CROWN: the lower ReLU slopes optimised per spec row by projected Adam.

Xu et al. 2021, "Fast and complete: enabling complete neural network verification with rapid
and massively parallel incomplete verifiers". Each objective row gets its own slopes α ∈ [0, 1]
on every unstable neuron; the bound is maximised by gradient ascent, starting from CROWN's
adaptive slopes, and the best bound seen per row is kept — every iterate's bound is a certified
dual bound (see crown.py), so the result is never worse than CROWN. Intermediate-layer bounds
are the caller's (CROWN or better); they are not re-optimised here.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from optcert.bounds.adam import Adam
from optcert.bounds.crown import LowerSlope, backward_bound
from optcert.bounds.torch_net import DomainBatch, TorchNet


@dataclass(frozen=True)
class AlphaSettings:
    iterations: int = 20
    lr: float = 0.1


def initial_alphas(domains: DomainBatch, target: int, rows: int, tn: TorchNet) -> dict[int, Any]:
    """CROWN's adaptive slopes (1 if u ≥ −l else 0), one copy per objective row: (B, m, n_j)."""
    alphas = {}
    for j in range(1, target):
        lo, hi = domains.layer(j, tn.precision)
        a = (hi >= -lo).to(tn.precision.torch())[:, None, :].expand(-1, rows, -1).clone()
        alphas[j] = a.requires_grad_(True)
    return alphas


def optimise(tn: TorchNet, domains: DomainBatch, target: int, objective, settings: AlphaSettings,
             deadline: float = float("inf"), betas: Mapping[int, Any] | None = None):
    """Best certified lower bounds (B, m) on objective @ ẑ_target over the Adam iterates."""
    import torch

    dt = tn.precision.torch()
    obj = torch.as_tensor(objective, dtype=dt, device=tn.device)
    alphas = initial_alphas(domains, target, obj.shape[-2], tn)
    params = list(alphas.values()) + ([b for b in betas.values() if b.requires_grad] if betas else [])
    best = None
    opt = Adam([(p, settings.lr) for p in params]) if params else None
    for it in range(settings.iterations + 1):
        bound = backward_bound(tn, domains, target, obj, alphas=alphas, betas=betas,
                               slope=LowerSlope.ADAPTIVE).lower
        detached = bound.detach()
        best = detached if best is None else torch.maximum(best, detached)
        if opt is None or it == settings.iterations or time.monotonic() > deadline:
            break
        opt.step(torch.autograd.grad(-bound.sum(), params))
        with torch.no_grad():
            for a in alphas.values():
                a.clamp_(0.0, 1.0)
    assert best is not None
    return best.double()
