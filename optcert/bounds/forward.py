"""Forward-mode linear bounds (symbolic intervals) for nets with few inputs, batched, rigorous.

Every pre-activation is enclosed between two linear functions of the input offset δ = x − c
(c the box centre, |δ| ≤ r), ẑ_k ∈ [L_k(δ) − e_k, U_k(δ) + e_k] (ReluVal / Neurify, Wang et al.
2018; the forward mode of auto_LiRPA, Xu et al. 2020). Through a ReLU the upper function becomes
s (U − l) on unstable neurons (s = u/(u − l), rounded up: any line through (l, 0) at least that
steep lies above the ReLU on [l, u]) and the lower one α L with α ∈ {0, 1} (CROWN's adaptive
choice, exact in floating point); through W both are recombined with W⁺ and W⁻ in one matrix
product per layer, [L' U'] = [L U] [[W⁺ W⁻]; [W⁻ W⁺]]ᵀ, so a domain costs
O(Σ n_k n_{k−1} (n_0 + 1)) — far less than a backward pass per layer when n_0 is small.

Rounding: e_k carries an a-priori bound of every error so far — the product's γ_N times the same
product in absolute values applied to the magnitudes M = |A| r + |a| of the functions (a
matrix–vector product), the relaxation's own rounding, the weights' rounding to the compute
precision — so the concretised bounds a − |A| r − e, formed in float64 and stepped outward, are
certified in float32 as in float64. Each layer is also intersected with interval arithmetic over
the bounds so far (interval_batch.py), so it is never looser than IBP.
"""
from __future__ import annotations

from optcert.bounds.interval_batch import interval_layer
from optcert.bounds.relaxation import centre_value, input_centre
from optcert.bounds.rounding import gamma, nudge_down, nudge_up, to_precision_outward
from optcert.bounds.torch_net import DomainBatch, TorchNet
from optcert.precision import Precision


def _stacked_weights(tn: TorchNet, layer: int):
    """[[W⁺ W⁻]; [W⁻ W⁺]]ᵀ (2n_j, 2n_k) for the single source of layer `layer` (cached)."""
    import torch

    key = ("fwd", layer)
    if key not in tn._abs:
        w = tn.weights[layer][0]
        pos, neg = w.clamp(min=0), w.clamp(max=0)
        tn._abs[key] = torch.cat([torch.cat([pos, neg], 1), torch.cat([neg, pos], 1)], 0).T.contiguous()
    return tn._abs[key]


def _abs64(tn: TorchNet, layer: int, W):
    key = ("fwd-abs", layer)
    if key not in tn._abs:
        tn._abs[key] = W.abs().double()
    return tn._abs[key]


def precision_of(dt) -> Precision:
    import torch

    return Precision.FLOAT32 if dt == torch.float32 else Precision.FLOAT64


def supported(tn: TorchNet) -> bool:
    """Forward mode here handles chains whose first layer alone reads the input."""
    return tn.net.is_chain()


class ForwardState:
    """The linear functions [L | U] of ẑ_k (B, n_0 + 1, 2 n_k) with their errors e (B, 2 n_k) float64."""

    def __init__(self, tn: TorchNet, domains: DomainBatch):
        import torch

        self.tn, self.k = tn, 1
        self.dt, self.u = tn.precision.torch(), tn.precision.unit_roundoff
        c, self.r = input_centre(tn, domains)
        B, n0 = c.shape
        # layer 1: A = W_1 (up to the weights' rounding), a = ĉ_1 (float64, rounded once)
        w1, aw1 = tn.weights[0][0], tn.abs_weights(0)[0]
        a64 = centre_value(tn, domains, 1).detach()
        T = torch.cat([w1.T.expand(B, n0, -1), a64.to(self.dt)[:, None, :]], dim=1)
        self.T = torch.cat([T, T], dim=2)
        err = (a64 - a64.to(self.dt).double()).abs() + (self.r @ aw1.T).double() * (2 * self.u) + \
            (c.abs().double() @ aw1.T.double() + tn.abs_biases[0].double()) * gamma(n0 + 4, 2.0 ** -53)
        self.e = torch.cat([err, err], dim=1)
        self.M = None

    def bounds(self):
        """Certified (lo, hi) float64 of ẑ_k."""
        lo, hi, self.M = _concretise(self.T, self.e, self.r, self.u)
        return lo, hi

    def advance(self, lo, hi) -> None:
        """Move to ẑ_{k+1}, relaxing layer k's ReLUs with its final bounds (lo, hi)."""
        if self.M is None:
            self.bounds()
        T, e, M = _relu(self.T, self.e, self.M, lo, hi, self.r, self.u, self.dt)
        self.T, self.e = _affine(self.tn, self.k, T, e, M, self.u)
        self.k, self.M = self.k + 1, None


def forward_bounds(tn: TorchNet, domains: DomainBatch, upto: int | None = None,
                   intervals: bool = False) -> DomainBatch:
    """Certified bounds on layers 1..upto (default: the last ReLU layer) of every domain, from the
    forward linear functions, intersected with any layer `domains` already holds and, with
    `intervals`, with interval arithmetic too. Requires `supported(tn)`."""
    import torch

    upto = tn.depth - 1 if upto is None else upto
    state = ForwardState(tn, domains)
    out = domains.prefix(0)
    for k in range(1, upto + 1):
        lo, hi = state.bounds()
        if intervals or k == 1:
            ilo, ihi = interval_layer(tn, out, k)
            lo, hi = torch.maximum(lo, ilo), torch.minimum(hi, ihi)
        if k <= domains.depth:
            lo, hi = torch.maximum(lo, domains.lower[k]), torch.minimum(hi, domains.upper[k])
        out = out.extended(lo, hi)
        if k < upto:
            state.advance(lo, hi)
    return out


def _concretise(T, e, r, u: float):
    """Certified (lo, hi) float64 from [L | U] over |δ| ≤ r, less/plus e and the rounding, and the
    functions' magnitudes M = |A| r + |a| (B, 2n)."""
    import torch

    n0, n = r.shape[1], T.shape[2] // 2
    spread = torch.bmm(r[:, None, :], T[:, :n0].abs())[:, 0]                  # |A| r
    M = spread + T[:, n0].abs()
    slack = M.double() * gamma(n0 + 4, u) + e
    low = T[:, n0, :n].double() - spread[:, :n].double() - slack[:, :n]
    high = T[:, n0, n:].double() + spread[:, n:].double() + slack[:, n:]
    return nudge_down(low), nudge_up(high), M


def _relu(T, e, M, lo, hi, r, u: float, dt):
    """[L | U] of z = relu(ẑ) from those of ẑ: lower α L (α ∈ {0, 1}), upper s (U − ℓ); the
    errors e and magnitudes M (each allowed for its rounding) follow."""
    import numpy as np
    import torch

    n0, n = r.shape[1], lo.shape[1]
    lo_c, _ = to_precision_outward(lo, hi, precision_of(dt))                   # ℓ ≤ l
    unstable = (lo < 0) & (hi > 0)
    active = lo >= 0
    width = torch.nextafter(hi - lo, torch.full_like(lo, -np.inf)).clamp(min=1e-300)   # ≤ u − l
    s64 = torch.nextafter(hi / width, torch.full_like(lo, np.inf))                       # ≥ u/(u − l)
    s = s64.to(dt)
    s = torch.where(s.double() < s64, torch.nextafter(s, torch.full_like(s, np.inf)), s)
    s = torch.where(unstable, s, active.to(dt))
    alpha = torch.where(unstable, (hi >= -lo).to(dt), active.to(dt))
    shift = torch.where(unstable, lo_c, torch.zeros_like(lo_c))                # ℓ
    scale = torch.cat([alpha, s], dim=1)
    out = T * scale[:, None, :]
    out[:, n0, n:] -= s * shift
    up_mag = s * (M[:, n:] + shift.abs())
    e_out = e * scale.double()
    e_out[:, n:] += (3 * u) * up_mag.double()
    M_out = torch.cat([alpha * M[:, :n], up_mag * (1 + 4 * u)], dim=1)
    return out, e_out, M_out


def _affine(tn: TorchNet, k: int, T, e, M, u: float):
    """[L' | U'] of ẑ_{k+1} = W z + b from [L | U] of z: one matrix product (module doc)."""
    import torch

    n0 = T.shape[1] - 1
    W = _stacked_weights(tn, k)                                                # (2n_k, 2n_{k+1})
    out = T @ W
    b = tn.biases[k]
    out[:, n0] += torch.cat([b, b])
    aw = tn.abs_weights(k)[0]
    n_in = aw.shape[1]
    g = gamma(2 * n_in + 4, u)
    ew = e @ _abs64(tn, k, W)                                                  # W⁺ e_L + |W⁻| e_U, …
    extra = ((M[:, :n_in] + M[:, n_in:]) @ aw.T + tn.abs_biases[k]).double() * (g * (1 + 8 * g))
    return out, ew * (1 + 4 * g) + torch.cat([extra, extra], dim=1)
