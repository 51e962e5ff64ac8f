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
from typing import Any, Mapping

import numpy as np

from optcert.bounds.torch_net import DomainBatch, TorchNet
from optcert.precision import Precision


class LowerSlope(Enum):
    """Lower ReLU relaxation z ≥ α ẑ on unstable neurons."""

    ADAPTIVE = "adaptive"   # CROWN: α = 1 if u ≥ −l else 0
    PARALLEL = "parallel"   # Fast-Lin: α = u/(u − l), parallel to the upper line


@dataclass
class Pass:
    """One backward pass: certified lower bounds (B, m) on objective·ẑ_target, and the ν used."""

    lower: Any
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


def _gamma(n: int, u: float) -> float:
    """γ_n = n u / (1 − n u) (Higham 2002, §3.1)."""
    return n * u / (1 - n * u)


class _Accumulator:
    """Λ_j (coefficients reaching z_j) with elementwise bounds e_j on their rounding error, and
    the bound's constant part as float64 sums with an error allowance (see module doc).

    `total`: Σ of float64 parts; `absparts`: Σ |summands| (for the float64 summation error);
    `slack`: bound on errors made in the compute precision.
    """

    def __init__(self, tn: TorchNet, shape):
        import torch

        self.tn, self.u = tn, tn.precision.unit_roundoff
        self.tight = tn.precision is Precision.FLOAT32  # |ν|@|W| instead of ‖ν‖₁·max|W|: 2× work, 30× tighter
        self.lam: dict[int, Any] = {}
        self.err: dict[int, Any] = {}
        zeros = torch.zeros(shape, dtype=torch.float64, device=tn.device)
        self.total, self.absparts, self.slack = zeros, zeros.clone(), zeros.clone()

    def add(self, terms, slack) -> None:
        """Add Σ_last-axis `terms` (compute precision, each exact up to `slack` in total)."""
        terms = terms.double()
        self.total = self.total + terms.sum(-1)
        self.absparts = self.absparts + terms.abs().sum(-1)
        self.slack = self.slack + slack

    def push(self, k: int, nu) -> None:
        """Send ν_k (B, m, n_k) through layer k's affine map to its sources."""
        layer = k - 1
        g = _gamma(nu.shape[-1] + self.tn.depth + 2, self.u) * (1 + 4 * self.u)
        absnu = nu.abs()
        for j, w, cmax, aw in zip(self.tn.sources[layer], self.tn.weights[layer], self.tn.colmax[layer],
                                  self.tn.abs_weights(layer)):
            contrib = nu @ w
            self.lam[j] = self.lam[j] + contrib if j in self.lam else contrib
            e = (absnu @ aw if self.tight else absnu.sum(-1, keepdim=True) * cmax) * g
            self.err[j] = self.err[j] + e if j in self.err else e
        bias = (nu @ self.tn.biases[layer])[..., None]
        self.add(bias, (absnu @ self.tn.abs_biases[layer]).double() * g)

    def neurons(self, j: int, nu, lo, hi) -> None:
        """Add Σ_i min_{t ∈ {l, u, clamp(0)}} (λ relu(t) − ν t) for ReLU layer j, with λ the
        lowest value Λ_j may have (relu(t) ≥ 0, so the worst case)."""
        import torch

        lam, err = self.lam.pop(j), self.err.pop(j)
        lam_low = torch.nextafter(lam - err, torch.full_like(lam, -np.inf))
        zero = torch.clamp(torch.zeros_like(lo), lo, hi)
        vals = [lam_low * torch.relu(t) - nu * t for t in (lo, hi, zero)]
        term = torch.minimum(torch.minimum(vals[0], vals[1]), vals[2])
        mag = (lam_low.abs() * torch.relu(hi)).double() + (nu.abs() * torch.maximum(lo.abs(), hi.abs())).double()
        self.add(term, _gamma(3, self.u) * mag.sum(-1))

    def box(self, lo, hi) -> None:
        """Add min over the input box of Λ_0 x, less |e_0| |x|."""
        import torch

        lam, err = self.lam.pop(0), self.err.pop(0)
        xmax = torch.maximum(lo.abs(), hi.abs())
        self.add(torch.minimum(lam * lo, lam * hi), self.u * (lam.abs() * xmax).double().sum(-1))
        self.add(-(err.double() * xmax.double()), 0.0)

    def lower(self):
        """The certified lower bound: total less every allowance, one ulp down."""
        import torch

        u64 = 2.0 ** -53
        g = _gamma(2 * (sum(self.tn.net.sizes()) + 8), u64)
        low = self.total - self.slack * (1 + 8 * u64) - self.absparts * (2 * g) - 1e-290
        return torch.nextafter(low, torch.full_like(low, -np.inf))


def backward_bound(tn: TorchNet, domains: DomainBatch, target: int, objective, *,
                   alphas: Mapping[int, Any] | None = None, slope: LowerSlope = LowerSlope.ADAPTIVE,
                   betas: Mapping[int, Any] | None = None, nus: Mapping[int, Any] | None = None) -> Pass:
    """Certified lower bounds (B, m), float64, on objective @ ẑ_target per domain and row.

    `domains` must hold bounds for layers 0 .. target-1. `objective` is (m, n_target) or
    (B, m, n_target). `alphas[j]` (B, m, n_j) are optimisable lower slopes (alpha-CROWN);
    `betas[j]` are added to ν_j (the beta-CROWN hook for split constraints; any value is sound);
    `nus` fixes every ν_j outright (re-evaluating a stored certificate).
    """
    import torch

    dt = tn.precision.torch()
    obj = torch.as_tensor(objective, dtype=dt, device=tn.device)
    obj = obj.expand(domains.size, *obj.shape[-2:]) if obj.ndim == 2 else obj
    acc = _Accumulator(tn, obj.shape[:2])
    acc.push(target, obj)
    used = {}
    for j in range(target - 1, 0, -1):
        if j not in acc.lam:
            continue
        lo, hi = (t[:, None, :] for t in domains.layer(j, tn.precision))
        if nus is not None:
            nu = nus[j].to(dt)
        else:
            nu = relax(acc.lam[j], lo, hi, None if alphas is None else alphas.get(j), slope)
            if betas is not None and j in betas:
                nu = nu + betas[j]
        used[j] = nu
        acc.neurons(j, nu, lo, hi)
        acc.push(j, nu)
    if 0 in acc.lam:
        acc.box(*(t[:, None, :] for t in domains.layer(0, tn.precision)))
    return Pass(acc.lower(), used)


def layer_bounds(tn: TorchNet, domains: DomainBatch, k: int, slope: LowerSlope = LowerSlope.ADAPTIVE):
    """Certified (lo, hi) on ẑ_k, (B, n_k) float64, from one backward pass with objective [I; −I]."""
    import torch

    n = tn.biases[k - 1].shape[0]
    eye = torch.eye(n, dtype=tn.precision.torch(), device=tn.device)
    lower = backward_bound(tn, domains, k, torch.cat([eye, -eye]), slope=slope).lower
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
