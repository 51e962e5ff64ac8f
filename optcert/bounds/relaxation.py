"""Per-layer data the backward pass reads, computed once per domain batch and cached on it.

`relu_layer`: a ReLU layer's bounds in the compute precision (outward-rounded) with CROWN's
triangle relaxation — upper slope u/(u − l), adaptive lower slope (Zhang et al. 2018), and the
triangle height u(−l)/(u − l) that the relaxation loses on an unstable neuron whose coefficient is
negative. `allowance`: the vector q_k that turns |ν_k| into the rounding-error allowance of pushing
ν_k through layer k (see crown.py and rounding.py), q_k = C γ_{N_k} (Σ_j |W_kj| s_j + |b_k| + w_k),
with s_j the largest value z_j can take in magnitude and w_k = max(|l_k|, |u_k|).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optcert.bounds.rounding import gamma
from optcert.bounds.torch_net import DomainBatch, TorchNet

# Error terms per pushed layer: matrix product (1), neuron term evaluation (2), its sum (1),
# input-box term (3), weights and biases rounded to the compute precision (1).
ALLOWANCE_FACTOR = 8.0


@dataclass(frozen=True)
class ReluLayer:
    """Tensors (B, 1, n) in the compute precision, except `height` (B, n, 1)."""

    lo: Any
    hi: Any
    lo_pos: Any
    hi_pos: Any
    unstable: Any
    active: Any
    upper_slope: Any
    adaptive: Any
    height: Any


def relu_layer(tn: TorchNet, domains: DomainBatch, j: int) -> ReluLayer:
    """The relaxation data of ReLU layer j of `domains` (cached on the batch)."""
    return domains.cached(("relu", j, tn.precision), lambda: _relu_layer(tn, domains, j))


def _relu_layer(tn: TorchNet, domains: DomainBatch, j: int) -> ReluLayer:
    import torch

    lo, hi = (t[:, None, :] for t in domains.layer(j, tn.precision))
    dt = lo.dtype
    unstable = (lo < 0) & (hi > 0)
    active = lo >= 0
    width = torch.where(unstable, hi - lo, torch.ones_like(hi))
    upper_slope = torch.where(unstable, hi / width, active.to(dt))
    adaptive = torch.where(unstable, (hi >= -lo).to(dt), active.to(dt))
    height = torch.where(unstable, hi * -lo / width, torch.zeros_like(hi))
    return ReluLayer(lo, hi, torch.relu(lo), torch.relu(hi), unstable, active, upper_slope, adaptive,
                     height.transpose(1, 2).contiguous())


def source_magnitude(tn: TorchNet, domains: DomainBatch, j: int):
    """s_j (B, n_j): the largest |z_j| over the domain (the input box for j = 0), compute precision."""
    import torch

    lo, hi = domains.layer(j, tn.precision)
    return torch.maximum(lo.abs(), hi.abs()).detach() if j == 0 else torch.relu(hi).detach()


def allowance(tn: TorchNet, domains: DomainBatch, k: int, own: bool):
    """q_k (B, n_k): rounding allowance per unit of |ν_k| (module doc); `own` adds w_k (layer k is
    a ReLU layer whose neuron term the pass evaluates)."""
    return domains.cached(("allow", k, tn.precision, id(tn), own), lambda: _allowance(tn, domains, k, own))


def _allowance(tn: TorchNet, domains: DomainBatch, k: int, own: bool):
    import torch

    with torch.no_grad():
        layer = k - 1
        q = tn.abs_biases[layer].detach().expand(domains.size, -1).clone()
        n = tn.biases[layer].shape[0] + len(tn.sources[layer]) + 2 * tn.depth + 8
        for j, aw in zip(tn.sources[layer], tn.abs_weights(layer)):
            q = q + source_magnitude(tn, domains, j) @ aw.T
            n += aw.shape[1]
        if own:
            lo, hi = domains.layer(k, tn.precision)
            q = q + torch.maximum(lo.abs(), hi.abs()).detach()
        u = tn.precision.unit_roundoff
        return q * (ALLOWANCE_FACTOR * gamma(n, u) * (1 + 8 * gamma(n, u)))
