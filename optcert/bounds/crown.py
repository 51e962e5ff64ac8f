"""CROWN / Fast-Lin linear bound propagation in torch, batched over domains and spec rows.

Backward linear relaxation (Zhang et al. 2018, "Efficient neural network robustness
certification with general activation functions" — CROWN, adaptive lower slope; Weng et al. 2018,
"Towards fast computation of certified robustness for ReLU networks" — Fast-Lin, parallel slope).

**Sound under floating point by construction.** Every backward pass is evaluated as a Lagrangian
dual bound (Wong & Kolter 2018; Dvijotham et al. 2018): for *any* multipliers ν_j on the ReLU
layers' pre-activations, with Λ_j = Σ_k ν_k W_kj the coefficients that reach z_j,

    m(x) = Λ_0 x + Σ_j Σ_i (Λ_ji relu(ẑ_ji) − ν_ji ẑ_ji) + Σ_k ν_k·b_k,

so min m ≥ min_box Λ_0 x + Σ_ji min_{t∈[l_ji, u_ji]} (Λ_ji relu(t) − ν_ji t) + Σ_k ν_k·b_k, each
1-D minimum taken exactly over the endpoints {l, u, 0}. CROWN's relaxation only *chooses* ν
(ν = Λ⁺·α + Λ⁻·u/(u−l) on unstable neurons); the bound above is never looser than CROWN's and
is valid whatever ν is, so rounding in ν is harmless. Rounding in Λ and in the final sums is
bounded a priori, |fl(Σ a_i b_i) − Σ a_i b_i| ≤ γ_N Σ|a_i b_i| (Higham 2002, §3.1), with the
precision's own unit roundoff (float32: 2⁻²⁴, float64: 2⁻⁵³): Λ is lowered by γ_N ‖ν‖₁ max|W|
per column and the total by γ_N × (sum of absolute values of all terms), then stepped one ulp
down. So float32 bounds are rigorous too, just looser by about 1e-4 relative (γ_N at N ≈ 2000),
assuming IEEE round-to-nearest arithmetic (TF32 is switched off on CUDA).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Mapping

import numpy as np

from ..precision import Precision
from .torch_net import DomainBatch, TorchNet


class LowerSlope(Enum):
    """Lower ReLU relaxation z ≥ α ẑ on unstable neurons."""

    ADAPTIVE = "adaptive"   # CROWN: α = 1 if u ≥ −l else 0
    PARALLEL = "parallel"   # Fast-Lin: α = u/(u − l), parallel to the upper line


@dataclass
class Pass:
    """One backward pass: certified lower bounds (B, m) on objective·ẑ_target, and the ν used."""

    lower: object
    nus: dict


def relax(lam, lo, hi, alpha=None, slope: LowerSlope = LowerSlope.ADAPTIVE):
    """Multipliers ν on ẑ_j from coefficients Λ (B, m, n) on z_j = relu(ẑ_j), via the linear
    relaxation: inactive 0, active Λ, unstable Λ⁺·α + Λ⁻·u/(u − l). `alpha` (B, m, n) overrides α."""
    import torch

    active = lo >= 0
    unstable = (lo < 0) & (hi > 0)
    upper_slope = torch.where(unstable, hi / torch.where(unstable, hi - lo, torch.ones_like(hi)),
                              active.to(lam.dtype))
    if alpha is None:
        alpha = (hi >= -lo).to(lam.dtype) if slope is LowerSlope.ADAPTIVE else upper_slope
    alpha = torch.where(unstable, alpha, active.to(lam.dtype))
    return torch.where(lam >= 0, lam * alpha, lam * upper_slope)


def _neuron_terms(lam_low, nu, lo, hi):
    """Σ_i min_{t ∈ {l, u, clamp(0)}} (λ relu(t) − ν t) and Σ_i of the terms' magnitudes."""
    import torch

    zero = torch.clamp(torch.zeros_like(lo), lo, hi)
    vals = [lam_low * torch.relu(t) - nu * t for t in (lo, hi, zero)]
    term = torch.minimum(torch.minimum(vals[0], vals[1]), vals[2]).sum(-1)
    mag = (lam_low.abs() * torch.relu(hi) + nu.abs() * torch.maximum(lo.abs(), hi.abs())).sum(-1)
    return term, mag


class _Accumulator:
    """Λ_j (coefficients reaching z_j) with a bound on their rounding error, plus the constant."""

    def __init__(self, tn: TorchNet, shape):
        import torch

        self.tn = tn
        self.lam: dict[int, object] = {}
        self.err: dict[int, object] = {}
        self.const = torch.zeros(shape, dtype=tn.precision.torch(), device=tn.device)
        self.mag = torch.zeros_like(self.const)

    def push(self, k: int, nu) -> None:
        """Send ν_k (B, m, n_k) through layer k's affine map to its sources."""
        layer = k - 1
        nu_norm = nu.abs().sum(-1, keepdim=True)
        for j, w, cmax in zip(self.tn.sources[layer], self.tn.weights[layer], self.tn.colmax[layer]):
            contrib = nu @ w
            self.lam[j] = self.lam[j] + contrib if j in self.lam else contrib
            e = nu_norm * cmax
            self.err[j] = self.err[j] + e if j in self.err else e
        self.const = self.const + nu @ self.tn.biases[layer]
        self.mag = self.mag + nu.abs() @ self.tn.abs_biases[layer]

    def pop(self, j: int):
        """(Λ_j, a lower bound on the exact Λ_j) — Λ_j lowered by its rounding-error bound."""
        import torch

        lam, err = self.lam.pop(j), self.err.pop(j)
        low = lam - err * (self.tn.gamma * (1 + 2 * self.tn.gamma))
        return lam, torch.nextafter(low, torch.full_like(low, -np.inf))


def backward_bound(tn: TorchNet, domains: DomainBatch, target: int, objective, *,
                   alphas: Mapping[int, object] | None = None, slope: LowerSlope = LowerSlope.ADAPTIVE,
                   betas: Mapping[int, object] | None = None, nus: Mapping[int, object] | None = None) -> Pass:
    """Certified lower bounds on objective @ ẑ_target for every domain and objective row.

    `domains` must hold bounds for layers 0 .. target-1. `objective` is (m, n_target) or
    (B, m, n_target). `alphas[j]` (B, m, n_j) are optimisable lower slopes (alpha-CROWN);
    `betas[j]` are added to ν_j (the beta-CROWN hook for split constraints; any value is sound);
    `nus` fixes every ν_j outright (re-evaluating a stored certificate).
    """
    import torch

    dt = tn.precision.torch()
    obj = torch.as_tensor(objective, dtype=dt, device=tn.device)
    batch = domains.size
    obj = obj.expand(batch, *obj.shape[-2:]) if obj.ndim == 2 else obj
    acc = _Accumulator(tn, obj.shape[:2])
    acc.push(target, obj)
    used = {}
    for j in range(target - 1, 0, -1):
        if j not in acc.lam:
            continue
        lam, lam_low = acc.pop(j)
        lo, hi = (t[:, None, :] for t in domains.layer(j, tn.precision))
        if nus is not None:
            nu = nus[j].to(dt)
        else:
            nu = relax(lam, lo, hi, None if alphas is None else alphas.get(j), slope)
            if betas is not None and j in betas:
                nu = nu + betas[j]
        used[j] = nu
        term, mag = _neuron_terms(lam_low, nu, lo, hi)
        acc.const, acc.mag = acc.const + term, acc.mag + mag
        acc.push(j, nu)
    total, mag = acc.const, acc.mag
    if 0 in acc.lam:
        _, lam_low = acc.pop(0)
        lo, hi = (t[:, None, :] for t in domains.layer(0, tn.precision))
        total = total + torch.minimum(lam_low * lo, lam_low * hi).sum(-1)
        mag = mag + (lam_low.abs() * torch.maximum(lo.abs(), hi.abs())).sum(-1)
    g = tn.gamma
    lower = total - mag * (g * (1 + 2 * g)) - 1e-290
    return Pass(torch.nextafter(lower, torch.full_like(lower, -np.inf)), used)


def layer_bounds(tn: TorchNet, domains: DomainBatch, k: int, slope: LowerSlope = LowerSlope.ADAPTIVE):
    """Certified (lo, hi) on ẑ_k, (B, n_k) float64, from one backward pass with objective [I; −I]."""
    import torch

    n = tn.biases[k - 1].shape[0]
    eye = torch.eye(n, dtype=tn.precision.torch(), device=tn.device)
    lower = backward_bound(tn, domains, k, torch.cat([eye, -eye]), slope=slope).lower.double()
    return lower[:, :n], -lower[:, n:]


def crown(tn: TorchNet, domains: DomainBatch, slope: LowerSlope = LowerSlope.ADAPTIVE,
          upto: int | None = None) -> DomainBatch:
    """CROWN bounds on every layer 1..upto (default: through the output), layer by layer.

    Layers that `domains` already holds (given bounds, splits, IBP) are intersected with the
    computed ones, so the result is never looser than what was given.
    """
    import torch

    upto = tn.depth if upto is None else upto
    out = DomainBatch(domains.lower[:1], domains.upper[:1])
    for k in range(1, upto + 1):
        lo, hi = layer_bounds(tn, out, k, slope)
        if k <= domains.depth:
            lo = torch.maximum(lo, domains.lower[k])
            hi = torch.minimum(hi, domains.upper[k])
        out = out.extended(lo, hi)
    return out
