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
from typing import Any, Callable, Mapping

from optcert.bounds.compact import kept, relu_kept, vectors_kept
from optcert.bounds.interval_batch import interval_layer
from optcert.bounds.relaxation import ReluLayer, allowance
from optcert.bounds.sums import Front, Selection, Sums
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
    """One backward pass: certified lower bounds (B, m) float64 on objective·ẑ_target, and the ν
    used per ReLU layer (`nus`, (B, m, n_j); zero on the neurons compact.py left out)."""

    lower: Any
    kept_nus: dict              # ν per layer over its kept neurons
    keep: Mapping[int, Any]     # layer → kept neuron indices (None: all)
    sizes: list

    @property
    def nus(self) -> dict:
        import torch

        out = {}
        for j, nu in self.kept_nus.items():
            idx = self.keep.get(j)
            if idx is None:
                out[j] = nu
            else:
                full = torch.zeros(nu.shape[:-1] + (self.sizes[j],), dtype=nu.dtype, device=nu.device)
                out[j] = full.index_copy(nu.ndim - 1, idx, nu)
        return out


def relax(lam, layer: ReluLayer, alpha=None, slope: LowerSlope = LowerSlope.ADAPTIVE):
    """Multipliers ν (B, m, n) on ẑ_j from coefficients Λ on z_j: inactive 0, active Λ, unstable
    Λ⁺·α + Λ⁻·u/(u − l). `alpha` (B, m, n) overrides α (clamped to [0, 1])."""
    import torch

    if alpha is None:
        lower = layer.adaptive if slope is LowerSlope.ADAPTIVE else layer.upper_slope
    else:
        lower = torch.where(layer.unstable, alpha.clamp(0.0, 1.0), layer.active.to(lam.dtype))
    return lam * torch.where(lam >= 0, lower, layer.upper_slope)


def _closed_layer(sums: Sums, lam, layer: ReluLayer, j: int, alpha, slope: LowerSlope):
    """ν for relaxation multipliers, ν = Λ s + Λ⁺ (α − s), with the neuron terms
    Σ min(Λ, 0) h = Λ h − Λ⁺ h and the allowance Σ |ν| q ≤ Σ |Λ| c q = 2 Λ⁺ (c q) − Λ (c q)
    (c ≥ the slope used, ≤ 1) in two batched products against [h, c q]: three elementwise passes
    over Λ in all. The products are taken as [h, c q]ᵀ Λᵀ (two long rows rather than two
    narrow columns: several times faster on CPU)."""
    import torch

    pos = torch.relu(lam)
    if alpha is None:
        gap = layer.adaptive_gap if slope is LowerSlope.ADAPTIVE else None
        exact = True
    else:
        gap = torch.where(layer.unstable, alpha.clamp(0.0, 1.0), layer.active.to(lam.dtype)) - layer.upper_slope
        exact = False
    nu = lam * layer.upper_slope
    if gap is not None:
        nu = nu.addcmul_(pos, gap) if not nu.requires_grad else torch.addcmul(nu, pos, gap)
    Vt = vectors_kept(sums.tn, sums.domains, j, sums.keep.get(j), exact)
    a, p = _rows_product(Vt, lam), _rows_product(Vt, pos)
    sums.add(a[..., 0, :] - p[..., 0, :])
    with torch.no_grad():
        sums.allow = sums.allow + (2 * p[..., 1, :] - a[..., 1, :]).detach().double()
    return nu


def _rows_product(Vt, lam):
    """Vt (B, 2, n) times lamᵀ: (B, 2, m), for lam (B, m, n) or (m, n)."""
    import torch

    return torch.matmul(Vt, lam.transpose(-1, -2))


def _neuron_term(lam, nu, layer: ReluLayer):
    """Σ_i min over {l, u, 0} of (Λ_i relu(t) − ν_i t), (B, m), for any multipliers (module doc)."""
    import torch

    at_lo = lam * layer.lo_pos - nu * layer.lo
    at_hi = lam * layer.hi_pos - nu * layer.hi
    return torch.minimum(at_lo, at_hi).clamp(max=0.0).sum(-1)


def backward_bound(tn: TorchNet, domains: DomainBatch, target: int, objective, *,
                   alphas: Mapping[int, Any] | None = None, slope: LowerSlope = LowerSlope.ADAPTIVE,
                   betas: Mapping[int, Any] | None = None, nus: Mapping[int, Any] | None = None,
                   front: Front | None = None, stop: Callable[[], bool] | None = None) -> Pass:
    """Certified lower bounds (B, m), float64, on objective @ ẑ_target per domain and row.

    `domains` must hold bounds for layers 0 .. target-1. `objective` is (m, n_target),
    (B, m, n_target), or a `Selection` (rows ±e_i of chosen neurons). `alphas[j]` (B, m, n_j) are
    optimisable lower slopes (alpha-CROWN); `betas[j]` are added to ν_j (the beta-CROWN hook for
    split constraints; any value is sound); `nus` fixes every ν_j outright (re-evaluating a stored
    certificate). With `front` (forward linear functions of ẑ_s, a chain net) the pass stops
    at layer s: ν_s·ẑ_s is bounded by those functions instead of the layers below (shallower
    back-substitution: cheaper, at most as tight). Differentiable in the slopes, betas, weights
    and domain bounds. `stop()`, asked before each layer's product, True raises `Interrupted`.
    """
    import torch

    fixed = nus if nus is not None else (betas or {})
    end = front.layer if front is not None else 0
    keep = {j: None if j in fixed or j == end else kept(tn, domains, j) for j in range(max(end, 1), target)}
    sums = Sums(tn, domains, target, keep)
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
        lam, layer = sums.lam.pop(j), relu_kept(tn, domains, j, keep[j])
        alpha = None if alphas is None or j not in alphas else alphas[j]
        if alpha is not None and keep[j] is not None:
            alpha = alpha.index_select(-1, keep[j])
        if closed:
            nu = _closed_layer(sums, lam, layer, j, alpha, slope)
        else:
            if nus is not None:
                nu = nus[j].to(lam.dtype)
            else:
                nu = relax(lam, layer, alpha, slope)
                if betas is not None and j in betas:
                    nu = nu + betas[j]
            sums.add(_neuron_term(lam, nu, layer))
        used[j] = nu
        if j == end:
            assert front is not None
            if not closed:
                sums.charge(nu.detach().abs(), allowance(tn, domains, j, True, False))
            sums.front(nu, front)
            break
        if stop is not None and stop():
            raise Interrupted(f"stopped in the pass for layer {target}")
        sums.push(j, nu, closed, charged=closed)
    if 0 in sums.lam:
        sums.box()
    low = sums.lower()
    if low.ndim == 1:
        low = low.expand(domains.size, -1)
    return Pass(low, used, keep, tn.sizes())


def layer_bounds(tn: TorchNet, domains: DomainBatch, k: int, slope: LowerSlope = LowerSlope.ADAPTIVE,
                 stop: Callable[[], bool] | None = None):
    """Certified (lo, hi) on ẑ_k, (B, n_k) float64, from backward passes on every neuron (in
    chunks of `CHUNK` neurons)."""
    import torch

    n = tn.biases[k - 1].shape[0]
    idx = torch.arange(n, device=domains.lower[0].device).expand(domains.size, n)
    lows, highs = [], []
    for part in torch.split(idx, CHUNK, dim=1):
        lower = backward_bound(tn, domains, k, Selection(part, torch.ones_like(part, dtype=torch.bool)),
                               slope=slope, stop=stop).lower
        m = part.shape[1]
        lows.append(lower[:, :m])
        highs.append(-lower[:, m:])
    return torch.cat(lows, dim=1), torch.cat(highs, dim=1)


CHUNK = 1024  # neurons bounded per backward pass (peak memory, and how soon `stop` is heard)


BUCKETS = 4   # groups of domains with similar unstable counts (less padding in the batched pass)


def refine(tn: TorchNet, domains: DomainBatch, k: int, lo, hi, slope: LowerSlope = LowerSlope.ADAPTIVE,
           neurons: Neurons = Neurons.UNSTABLE, front: Front | None = None,
           stop: Callable[[], bool] | None = None):
    """(lo, hi) of layer k, (B, n_k) float64, intersected with CROWN's bounds on the neurons that
    (lo, hi) leave unstable (all neurons for `Neurons.ALL` or the output layer). Large batches
    whose unstable counts vary are bounded in up to `BUCKETS` groups of similar counts, each
    padded only to its own largest count. `front`: stop the passes there (`backward_bound`).
    `stop()`: asked before each product (True raises `Interrupted`)."""
    import torch

    if neurons is Neurons.ALL or k == tn.depth:
        new_lo, new_hi = layer_bounds(tn, domains, k, slope, stop)
        return torch.maximum(new_lo, lo), torch.minimum(new_hi, hi)
    unstable = (lo < 0) & (hi > 0)
    counts = unstable.sum(dim=1)
    B = counts.shape[0]
    if B < 64 or int(counts.max()) <= 4:
        return _refine_group(tn, domains, k, lo, hi, unstable, slope, front, stop)
    order = torch.argsort(counts)
    parts = torch.tensor_split(order, BUCKETS)
    if sum(int(counts[p].max()) * len(p) for p in parts) > 0.7 * int(counts.max()) * B:
        return _refine_group(tn, domains, k, lo, hi, unstable, slope, front, stop)    # little padding to save
    lo, hi = lo.clone(), hi.clone()
    for part in parts:
        if int(counts[part].max()) == 0:
            continue
        new = _refine_group(tn, domains.take(part), k, lo[part], hi[part], unstable[part], slope,
                            None if front is None else front.take(part), stop)
        lo[part], hi[part] = new
    return lo, hi


def _refine_group(tn: TorchNet, domains: DomainBatch, k: int, lo, hi, unstable, slope: LowerSlope,
                  front: Front | None = None, stop: Callable[[], bool] | None = None):
    import torch

    U = int(unstable.sum(dim=1).max()) if unstable.numel() else 0
    if U == 0:
        return lo, hi
    order = torch.sort(unstable.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :U]
    for idx in torch.split(order, CHUNK, dim=1):
        valid, m = torch.gather(unstable, 1, idx), idx.shape[1]
        lower = backward_bound(tn, domains, k, Selection(idx, valid), slope=slope, front=front, stop=stop).lower
        old_lo, old_hi = torch.gather(lo, 1, idx), torch.gather(hi, 1, idx)
        new_lo = torch.where(valid, torch.maximum(lower[:, :m], old_lo), old_lo)
        new_hi = torch.where(valid, torch.minimum(-lower[:, m:], old_hi), old_hi)
        lo, hi = lo.scatter(1, idx, new_lo), hi.scatter(1, idx, new_hi)
    return lo, hi


class Interrupted(Exception):
    """`crown` was asked to stop (its `stop()` returned True) before it finished."""


def crown(tn: TorchNet, domains: DomainBatch, slope: LowerSlope = LowerSlope.ADAPTIVE,
          upto: int | None = None, neurons: Neurons = Neurons.UNSTABLE,
          stop: Callable[[], bool] | None = None) -> DomainBatch:
    """CROWN bounds on every layer 1..upto (default: through the output), layer by layer (module
    doc). Layers that `domains` already holds (given bounds, splits, IBP) are intersected with the
    computed ones, so the result is never looser than what was given. `stop()` is asked before
    each layer; True raises `Interrupted`."""
    import torch

    upto = tn.depth if upto is None else upto
    out = domains.prefix(0)
    for k in range(1, upto + 1):
        if stop is not None and stop():
            raise Interrupted(f"stopped before layer {k}")
        lo, hi = interval_layer(tn, out, k)
        if k <= domains.depth:
            lo, hi = torch.maximum(lo, domains.lower[k]), torch.minimum(hi, domains.upper[k])
        if not tn.input_only(k):
            lo, hi = refine(tn, out, k, lo, hi, slope, neurons, stop=stop)
        out = out.extended(lo, hi)
    return out
