"""CROWN / Fast-Lin linear bound propagation in torch, batched over domains and spec rows.

Backward linear relaxation (Zhang et al. 2018, "Efficient neural network robustness
certification with general activation functions" — CROWN, adaptive lower slope; Weng et al. 2018,
"Towards fast computation of certified robustness for ReLU networks" — Fast-Lin, parallel slope).

**Sound under floating point by construction.** Every backward pass is evaluated as a Lagrangian
dual bound (Wong & Kolter 2018; Dvijotham et al. 2018): for *any* multipliers ν_j on the ReLU
layers' pre-activations, with Λ_j = Σ_k ν_k W_kj the coefficients that reach z_j,

    m(x) = Λ_0 x + Σ_j Σ_i (Λ_ji relu(ẑ_ji) − ν_ji ẑ_ji) + Σ_k ν_k·b_k,

so min m ≥ min_box Λ_0 x + Σ_ji min_{t∈[l_ji, u_ji]} (Λ_ji relu(t) − ν_ji t) + Σ_k ν_k·b_k.
CROWN's relaxation only *chooses* ν (ν = Λ⁺·α + Λ⁻·u/(u−l) on unstable neurons); the bound above
is valid whatever ν is, so rounding in ν is harmless. For that choice the 1-D minimum is 0 where
Λ ≥ 0 and Λ·u(−l)/(u−l) (the triangle height) where Λ < 0, so the neuron terms are one
matrix–vector product; with other multipliers (betas, given ν) each minimum is taken over the
endpoints {l, u} and 0 (a superset of the minimisers, so never above the true minimum).

The input box is centred, x = c + δ with |δ| ≤ r: a layer reading the input contributes
ν_k·(W_k0 c + b_k) (the centre's value taken in float64) and the box term is −|Λ_0| r, so the
compute-precision rounding only ever multiplies the radius. Rounding in Λ, in the terms and in
the sums is bounded a priori per matrix product (rounding.py): pushing ν_k through layer k adds
|ν_k|·q_k to an allowance (relaxation.py: γ_n-weighted |W_kj| u⁺_j, |W_k0| r, |b_k|, |ĉ_k| and the
layer's own max(|l|, |u|)), one matrix–vector product per layer; the bound is the float64 sum of
the parts less the allowance, stepped one ulp down. float32 bounds are therefore rigorous too (assuming IEEE
round-to-nearest; TF32 is switched off on CUDA), looser by about γ_N relative.

`crown` bounds every layer: a layer that reads only the input by interval arithmetic (exact for
an affine map of a box), every other layer by interval arithmetic first and then one backward
pass for the neurons it leaves unstable (or all, `Neurons.ALL`), intersected with what is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from optcert.bounds.interval_batch import interval_layer
from optcert.bounds.relaxation import (
    ReluLayer,
    allowance,
    centre_value,
    input_centre,
    layer_vectors,
    relu_layer,
)
from optcert.bounds.rounding import ETA, U64, nudge_down
from optcert.bounds.torch_net import DomainBatch, TorchNet


class LowerSlope(Enum):
    """Lower ReLU relaxation z ≥ α ẑ on unstable neurons."""

    ADAPTIVE = "adaptive"   # CROWN: α = 1 if u ≥ −l else 0
    PARALLEL = "parallel"   # Fast-Lin: α = u/(u − l), parallel to the upper line


class Neurons(Enum):
    """Which neurons of an intermediate layer get a backward pass after interval arithmetic."""

    UNSTABLE = "unstable"   # those interval arithmetic leaves unstable (stable ones keep its interval)
    ALL = "all"             # every neuron, both sides (tightest intervals on stable neurons too)


@dataclass
class Pass:
    """One backward pass: certified lower bounds (B, m) float64 on objective·ẑ_target, the ν used."""

    lower: Any
    nus: dict


@dataclass(frozen=True)
class Selection:
    """Objective rows [e_idx; −e_idx] per domain: idx (B, U) neuron indices of the target layer,
    `valid` (B, U) False on padding rows (their bound is meaningless)."""

    idx: Any
    valid: Any


def relax(lam, layer: ReluLayer, alpha=None, slope: LowerSlope = LowerSlope.ADAPTIVE):
    """Multipliers ν (B, m, n) on ẑ_j from coefficients Λ on z_j: inactive 0, active Λ, unstable
    Λ⁺·α + Λ⁻·u/(u − l). `alpha` (B, m, n) overrides α (clamped to [0, 1])."""
    import torch

    if alpha is None:
        lower = layer.adaptive if slope is LowerSlope.ADAPTIVE else layer.upper_slope
    else:
        lower = torch.where(layer.unstable, alpha.clamp(0.0, 1.0), layer.active.to(lam.dtype))
    return lam * torch.where(lam >= 0, lower, layer.upper_slope)


class _Sums:
    """The bound's parts as float64 (B, m) sums, and the allowance (B, m) for their rounding."""

    def __init__(self, tn: TorchNet, domains: DomainBatch, target: int):
        self.tn, self.domains, self.target = tn, domains, target
        self.lam: dict[int, Any] = {}
        self.total: Any = 0.0
        self.allow: Any = 0.0

    def add(self, part) -> None:
        self.total = self.total + part.double()

    def charge(self, absnu, q) -> None:
        """allowance += |ν| · q (a matrix–vector product per domain)."""
        import torch

        with torch.no_grad():
            if absnu.ndim == 2:   # one objective for every domain: (m, n) · (B, n)ᵀ
                self.allow = self.allow + (q @ absnu.T).double()
            else:
                self.allow = self.allow + torch.bmm(absnu, q[..., None])[..., 0].double()

    def push(self, k: int, nu, closed: bool = True, charged: bool = False) -> None:
        """Send ν_k (B, m, n_k) — or (m, n_k) shared by every domain — through layer k."""
        import torch

        layer = k - 1
        for j, w in zip(self.tn.sources[layer], self.tn.weights[layer]):
            contrib = nu @ w
            self.lam[j] = self.lam[j] + contrib if j in self.lam else contrib
        if 0 in self.tn.sources[layer]:       # the input is centred: ν_k · (W_k0 c + b_k)
            centre = centre_value(self.tn, self.domains, k).to(nu.dtype)
            self.add(centre @ nu.T if nu.ndim == 2 else torch.bmm(nu, centre[..., None])[..., 0])
        else:
            self.add(nu @ self.tn.biases[layer])
        if not charged:
            self.charge(nu.detach().abs(), allowance(self.tn, self.domains, k, k != self.target, closed))

    def select(self, sel: Selection, closed: bool) -> None:
        """Push the rows [e_idx; −e_idx] of the target layer: rows of W gathered, not multiplied."""
        import torch

        layer, valid = self.target - 1, sel.valid.to(self.tn.precision.torch())
        for j, w in zip(self.tn.sources[layer], self.tn.weights[layer]):
            rows = w[sel.idx] * valid[..., None]
            self.lam[j] = torch.cat([rows, -rows], dim=1)
        if 0 in self.tn.sources[layer]:
            bias = torch.gather(centre_value(self.tn, self.domains, self.target), 1, sel.idx) * valid
        else:
            bias = self.tn.biases[layer][sel.idx] * valid
        self.add(torch.cat([bias, -bias], dim=1))
        q = torch.gather(allowance(self.tn, self.domains, self.target, False, closed), 1, sel.idx) * valid
        self.allow = self.allow + torch.cat([q, q], dim=1).double()

    def box(self) -> None:
        """min over the centred input box of Λ_0 (x − c) = −|Λ_0| r (the centre went in at push)."""
        import torch

        lam = self.lam.pop(0)
        r = input_centre(self.tn, self.domains)[1]
        if lam.ndim == 2:
            self.add(-(r @ lam.abs().T))
        else:
            self.add(-torch.bmm(lam.abs(), r[..., None])[..., 0])

    def lower(self):
        """Total less the allowance and the underflow term, one ulp down."""
        sizes = self.tn.sizes()
        ops = 8 * sum(sizes) * max(sizes) * (len(sizes) + 2)
        slack = self.allow * (1 + 16 * len(sizes) * U64) + ops * ETA[self.tn.precision]
        return nudge_down(self.total - slack)


def _closed_layer(sums: _Sums, lam, layer: ReluLayer, j: int, alpha, slope: LowerSlope):
    """ν for relaxation multipliers, ν = Λ s + Λ⁺ (α − s), with the neuron terms
    Σ min(Λ, 0) h = Λ h − Λ⁺ h and the allowance Σ |ν| q ≤ Σ |Λ| c q = 2 Λ⁺ (c q) − Λ (c q)
    (c ≥ the slope used, ≤ 1) in two batched products against [h, c q]: three elementwise passes
    over Λ in all."""
    import torch

    pos = torch.relu(lam)
    if alpha is None:
        nu = torch.addcmul(lam * layer.upper_slope, pos,
                           layer.adaptive_gap if slope is LowerSlope.ADAPTIVE else torch.zeros_like(layer.adaptive_gap))
        V = layer_vectors(sums.tn, sums.domains, j, exact_slopes=True)
    else:
        lower = torch.where(layer.unstable, alpha.clamp(0.0, 1.0), layer.active.to(lam.dtype))
        nu = torch.addcmul(lam * layer.upper_slope, pos, lower - layer.upper_slope)
        V = layer_vectors(sums.tn, sums.domains, j, exact_slopes=False)
    a, p = torch.matmul(lam, V), torch.matmul(pos, V)
    sums.add(a[..., 0] - p[..., 0])
    with torch.no_grad():
        sums.allow = sums.allow + (2 * p[..., 1] - a[..., 1]).detach().double()
    return nu


def _neuron_term(lam, nu, layer: ReluLayer):
    """Σ_i min over {l, u, 0} of (Λ_i relu(t) − ν_i t), (B, m), for any multipliers (module doc)."""
    import torch

    at_lo = lam * layer.lo_pos - nu * layer.lo
    at_hi = lam * layer.hi_pos - nu * layer.hi
    return torch.minimum(at_lo, at_hi).clamp(max=0.0).sum(-1)


def backward_bound(tn: TorchNet, domains: DomainBatch, target: int, objective, *,
                   alphas: Mapping[int, Any] | None = None, slope: LowerSlope = LowerSlope.ADAPTIVE,
                   betas: Mapping[int, Any] | None = None, nus: Mapping[int, Any] | None = None) -> Pass:
    """Certified lower bounds (B, m), float64, on objective @ ẑ_target per domain and row.

    `domains` must hold bounds for layers 0 .. target-1. `objective` is (m, n_target),
    (B, m, n_target), or a `Selection` (rows ±e_i of chosen neurons). `alphas[j]` (B, m, n_j) are
    optimisable lower slopes (alpha-CROWN); `betas[j]` are added to ν_j (the beta-CROWN hook for
    split constraints; any value is sound); `nus` fixes every ν_j outright (re-evaluating a stored
    certificate). Differentiable in the slopes, betas, weights and domain bounds.
    """
    import torch

    sums = _Sums(tn, domains, target)
    closed = nus is None and not betas
    if isinstance(objective, Selection):
        sums.select(objective, closed)
    else:
        obj = torch.as_tensor(objective, dtype=tn.precision.torch(), device=tn.device)
        sums.push(target, obj, closed)
    used = {}
    for j in range(target - 1, 0, -1):
        if j not in sums.lam:
            continue
        lam, layer = sums.lam.pop(j), relu_layer(tn, domains, j)
        if closed:
            nu = _closed_layer(sums, lam, layer, j, None if alphas is None else alphas.get(j), slope)
        else:
            if nus is not None:
                nu = nus[j].to(lam.dtype)
            else:
                nu = relax(lam, layer, None if alphas is None else alphas.get(j), slope)
                if betas is not None and j in betas:
                    nu = nu + betas[j]
            sums.add(_neuron_term(lam, nu, layer))
        used[j] = nu
        sums.push(j, nu, closed, charged=closed)
    if 0 in sums.lam:
        sums.box()
    low = sums.lower()
    if low.ndim == 1:
        low = low.expand(domains.size, -1)
    return Pass(low, used)


def layer_bounds(tn: TorchNet, domains: DomainBatch, k: int, slope: LowerSlope = LowerSlope.ADAPTIVE):
    """Certified (lo, hi) on ẑ_k, (B, n_k) float64, from one backward pass on every neuron."""
    import torch

    n = tn.biases[k - 1].shape[0]
    idx = torch.arange(n, device=domains.lower[0].device).expand(domains.size, n)
    lower = backward_bound(tn, domains, k, Selection(idx, torch.ones_like(idx, dtype=torch.bool)),
                           slope=slope).lower
    return lower[:, :n], -lower[:, n:]


BUCKETS = 4   # groups of domains with similar unstable counts (less padding in the batched pass)


def refine(tn: TorchNet, domains: DomainBatch, k: int, lo, hi, slope: LowerSlope = LowerSlope.ADAPTIVE,
           neurons: Neurons = Neurons.UNSTABLE):
    """(lo, hi) of layer k, (B, n_k) float64, intersected with CROWN's bounds on the neurons that
    (lo, hi) leave unstable (all neurons for `Neurons.ALL` or the output layer). Large batches
    whose unstable counts vary are bounded in up to `BUCKETS` groups of similar counts, each
    padded only to its own largest count."""
    import torch

    if neurons is Neurons.ALL or k == tn.depth:
        new_lo, new_hi = layer_bounds(tn, domains, k, slope)
        return torch.maximum(new_lo, lo), torch.minimum(new_hi, hi)
    unstable = (lo < 0) & (hi > 0)
    counts = unstable.sum(dim=1)
    B = counts.shape[0]
    if B < 64 or int(counts.max()) <= 4:
        return _refine_group(tn, domains, k, lo, hi, unstable, slope)
    order = torch.argsort(counts)
    parts = torch.tensor_split(order, BUCKETS)
    if sum(int(counts[p].max()) * len(p) for p in parts) > 0.7 * int(counts.max()) * B:
        return _refine_group(tn, domains, k, lo, hi, unstable, slope)    # little padding to save
    lo, hi = lo.clone(), hi.clone()
    for part in parts:
        if int(counts[part].max()) == 0:
            continue
        new = _refine_group(tn, domains.take(part), k, lo[part], hi[part], unstable[part], slope)
        lo[part], hi[part] = new
    return lo, hi


def _refine_group(tn: TorchNet, domains: DomainBatch, k: int, lo, hi, unstable, slope: LowerSlope):
    import torch

    U = int(unstable.sum(dim=1).max()) if unstable.numel() else 0
    if U == 0:
        return lo, hi
    idx = torch.sort(unstable.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :U]
    valid = torch.gather(unstable, 1, idx)
    lower = backward_bound(tn, domains, k, Selection(idx, valid), slope=slope).lower
    old_lo, old_hi = torch.gather(lo, 1, idx), torch.gather(hi, 1, idx)
    new_lo = torch.where(valid, torch.maximum(lower[:, :U], old_lo), old_lo)
    new_hi = torch.where(valid, torch.minimum(-lower[:, U:], old_hi), old_hi)
    return lo.scatter(1, idx, new_lo), hi.scatter(1, idx, new_hi)


def crown(tn: TorchNet, domains: DomainBatch, slope: LowerSlope = LowerSlope.ADAPTIVE,
          upto: int | None = None, neurons: Neurons = Neurons.UNSTABLE) -> DomainBatch:
    """CROWN bounds on every layer 1..upto (default: through the output), layer by layer (module
    doc). Layers that `domains` already holds (given bounds, splits, IBP) are intersected with the
    computed ones, so the result is never looser than what was given."""
    import torch

    upto = tn.depth if upto is None else upto
    out = domains.prefix(0)
    for k in range(1, upto + 1):
        lo, hi = interval_layer(tn, out, k)
        if k <= domains.depth:
            lo, hi = torch.maximum(lo, domains.lower[k]), torch.minimum(hi, domains.upper[k])
        if not tn.input_only(k):
            lo, hi = refine(tn, out, k, lo, hi, slope, neurons)
        out = out.extended(lo, hi)
    return out
