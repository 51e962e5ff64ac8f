"""Per-layer data the backward pass reads, computed once per domain batch and cached on it.

`relu_layer`: a ReLU layer's bounds in the compute precision (outward-rounded) with CROWN's
triangle relaxation — upper slope u/(u − l), adaptive lower slope (Zhang et al. 2018), and the
triangle height u(−l)/(u − l) that the relaxation loses on an unstable neuron whose coefficient is
negative. `allowance`: the vector q_k that turns |ν_k| into the rounding-error allowance of pushing
ν_k through layer k (see crown.py and rounding.py): γ(n_k)·|W_kj| u⁺_j per ReLU source, γ·|W_k0| r
for the input (whose box is centred: the compute-precision weights only multiply x − c, the
centre's value ĉ_k = W_k0 c + b_k is taken in float64), γ·|b_k|, γ·|ĉ_k| and, for the layer's own
neuron terms, γ·max(|l_k|, |u_k|).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optcert.bounds.rounding import gamma
from optcert.bounds.torch_net import DomainBatch, TorchNet


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
    adaptive_gap: Any   # adaptive − upper_slope
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
                     adaptive - upper_slope, height.transpose(1, 2).contiguous())


def layer_vectors(tn: TorchNet, domains: DomainBatch, j: int, exact_slopes: bool):
    """[h, c q_j] (B, n_j, 2): triangle heights and the allowance per unit |Λ_j| of ReLU layer j,
    c = max(adaptive α, upper slope) when the CROWN slopes are used (`exact_slopes`), else 1 on
    every neuron that is not inactive (any α ∈ [0, 1])."""
    def make():
        import torch

        layer = relu_layer(tn, domains, j)
        if exact_slopes:
            c = torch.maximum(layer.adaptive, layer.upper_slope)[:, 0]
        else:
            c = (layer.hi > 0).to(layer.hi.dtype)[:, 0]
        q = allowance(tn, domains, j, True, True)
        return torch.stack([layer.height[..., 0], (c * q).detach()], dim=2)
    return domains.cached(("vectors", j, tn.precision, id(tn), exact_slopes), make)


def input_centre(tn: TorchNet, domains: DomainBatch):
    """(c, r): the input box as centre c and radius r rounded up, compute precision, (B, n_0)."""
    return domains.cached(("centre", 0, tn.precision), lambda: _input_centre(tn, domains))


def _input_centre(tn: TorchNet, domains: DomainBatch):
    import numpy as np
    import torch

    lo, hi = (t.detach() for t in domains.layer(0, tn.precision))
    c = (lo + hi) / 2
    r = torch.maximum(hi - c, c - lo)
    return c, torch.nextafter(r, torch.full_like(r, np.inf))


def centre_value(tn: TorchNet, domains: DomainBatch, k: int):
    """ĉ_k (B, n_k) float64: the input part of layer k at the box centre plus its bias,
    Σ_{j=0} W_kj c + b_k, from the network's float64 weights (so that the compute-precision
    weights only ever multiply the small x − c). Differentiable."""
    def make():
        weights, bias = tn.exact_affine(k - 1)
        c = input_centre(tn, domains)[0].double()
        return bias + sum(c @ w.T for w in weights)
    return domains.cached(("cvalue", k, tn.precision, id(tn)), make)


def allowance(tn: TorchNet, domains: DomainBatch, k: int, own: bool, closed: bool = True):
    """q_k (B, n_k): rounding allowance per unit of |ν_k| (module doc; crown.py derives each
    term); `own` adds layer k's own neuron term (a ReLU layer the pass relaxes); `closed`: the
    sources' neuron terms are in closed form (only unstable neurons round), else general."""
    return domains.cached(("allow", k, tn.precision, id(tn), own, closed),
                          lambda: _allowance(tn, domains, k, own, closed))


def _allowance(tn: TorchNet, domains: DomainBatch, k: int, own: bool, closed: bool):
    import torch

    u, layer, sizes = tn.precision.unit_roundoff, k - 1, tn.sizes()
    srcs = tn.sources[layer]
    g_mm = gamma(sizes[k] + len(srcs) + 4, u)          # Λ_j = ν_k W_kj, the weights' own rounding
    with torch.no_grad():
        q = torch.zeros((domains.size, sizes[k]), dtype=tn.precision.torch(), device=tn.biases[layer].device)
        reads_input = 0 in srcs
        if reads_input:
            c, r = input_centre(tn, domains)
            centre = centre_value(tn, domains, k).detach()
            q = q + (centre.abs() * gamma(sizes[k] + 3, u)).to(q.dtype)
            q = q + (c.abs() @ tn.abs_weights(layer)[srcs.index(0)].T + tn.abs_biases[layer]) * \
                (gamma(sizes[0] + len(srcs) + 4, 2.0 ** -53) * 2)
        else:
            q = q + tn.abs_biases[layer] * g_mm
        for j, aw in zip(srcs, tn.abs_weights(layer)):
            if j == 0:
                q = q + (r @ aw.T) * (g_mm + gamma(sizes[0] + 4, u) * (1 + g_mm))
            else:
                up = torch.relu(domains.layer(j, tn.precision)[1].detach())
                rounds = torch.where(relu_layer(tn, domains, j).unstable[:, 0], up, 0.0) if closed else up
                q = q + (up @ aw.T) * g_mm + (rounds @ aw.T) * (gamma(sizes[j] + 10, u) * (1 + g_mm))
        if own:
            lo, hi = domains.layer(k, tn.precision)
            q = q + torch.maximum(lo.abs(), hi.abs()).detach() * gamma(sizes[k] + 3, u)
        return q * (1 + 16 * gamma(max(sizes) + 4, u))
