"""Differentiable bounds for certified *training* (float32 torch, gradients flow to the weights).

These are training signals, not certificates: no outward rounding, and nothing here decides a
verdict (verification always goes through optcert's certified kernels and `certify.py`). They are
written here, not taken from `optcert.bounds`, because those kernels are built for rigour on fixed
numpy weights (rounding bookkeeping, float64) and take no gradient through the weights.

* IBP (Gowal et al. 2018, "On the effectiveness of interval bound propagation for training
  verifiably robust models"): centre/radius interval arithmetic layer by layer.
* CROWN-IBP (Zhang et al. 2020, "Towards stable and efficient training of verifiably robust neural
  networks"): IBP bounds on the hidden layers, one CROWN backward pass (adaptive lower slope) from
  the margin matrix to the input for the output bound.
* Tightness terms (Zhu et al. 2020, "Improving the tightness of convex relaxation bounds for training
  certifiably robust classifiers" — the issue cites it as Lyu et al.): the relaxation's optimum is a
  point x* of the input box pushed through the relaxed network (each unstable ReLU on the line the
  backward pass chose). The relaxation is tight iff that point is feasible for the real network;
  `tightness_terms` returns (a) the output-bound difference m(x*) − bound ≥ 0 (the real margin at
  x* minus the relaxed optimum) and (b) the optimal-pre-activation term: how far the chosen lines
  are from relu at the relaxed-optimal pre-activations, over unstable neurons, relative to u − l.

Margins are m_j = f_y − f_j for every class j (row y is identically zero), so the robust loss is
cross-entropy of −lower(m) (Wong & Kolter 2018; Gowal et al. 2018).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def margin_matrix(y, classes: int):
    """C (B, K, K) with rows e_y − e_j: C f = (f_y − f_j)_j; row y is zero."""
    import torch

    eye = torch.eye(classes, dtype=torch.float32, device=y.device)
    return eye[y][:, None, :] - eye[None, :, :]


def weights(layers) -> list[tuple[Any, Any]]:
    """(W, b) of each nn.Linear."""
    return [(layer.weight, layer.bias) for layer in layers]


def ibp_hidden(wb, lo, hi) -> list[tuple[Any, Any]]:
    """IBP bounds (l, u), each (B, n_k), on the pre-activations of every hidden layer."""
    import torch

    out = []
    mid, rad = (hi + lo) / 2, (hi - lo) / 2
    for W, b in wb[:-1]:
        c, r = mid @ W.T + b, rad @ W.abs().T
        out.append((c - r, c + r))
        l, u = torch.relu(c - r), torch.relu(c + r)
        mid, rad = (u + l) / 2, (u - l) / 2
    return out


def ibp_margins(wb, lo, hi, C, hidden=None):
    """IBP lower bounds (B, K) on C f(x) over the box; `hidden` (ibp_hidden) is reused if given."""
    import torch

    hidden = ibp_hidden(wb, lo, hi) if hidden is None else hidden
    if hidden:
        l, u = (torch.relu(t) for t in hidden[-1])
    else:
        l, u = lo, hi
    W, b = wb[-1]
    Wc, bc = C @ W, C @ b                       # (B, K, n), (B, K)
    mid, rad = (u + l)[:, None, :] / 2, (u - l)[:, None, :] / 2
    return (Wc * mid).sum(-1) + bc - (Wc.abs() * rad).sum(-1)


@dataclass
class CrownPass:
    """A CROWN backward pass: `lower` (B, K) bounds, the optimal input corner `x_star` (B, K, n0)
    and, per hidden layer, the coefficients Λ that reached its ReLU outputs (B, K, n_k)."""

    lower: Any
    x_star: Any
    lams: list


def crown_margins(wb, lo, hi, C, hidden) -> CrownPass:
    """CROWN-IBP lower bounds on C f(x) over the box [lo, hi] given hidden-layer bounds `hidden`."""
    import torch

    W, b = wb[-1]
    lam, const = C @ W, C @ b
    lams: list = [None] * len(hidden)
    for k in range(len(hidden) - 1, -1, -1):
        l, u = (t[:, None, :] for t in hidden[k])
        lams[k] = lam
        nu, shift = _relax(lam, l, u)
        const = const + shift
        Wk, bk = wb[k]
        lam, const = nu @ Wk, const + nu @ bk
    lo3, hi3 = lo[:, None, :], hi[:, None, :]
    lower = const + torch.minimum(lam * lo3, lam * hi3).sum(-1)
    x_star = torch.where(lam >= 0, lo3, hi3).detach()
    return CrownPass(lower, x_star, lams)


def _relax(lam, l, u):
    """ν on ẑ for coefficients Λ on relu(ẑ): lower line α ẑ where Λ ≥ 0 (α = 1 if u ≥ −l else 0),
    upper line s (ẑ − l) where Λ < 0 (s = u / (u − l)); and the constant the upper line adds."""
    import torch

    unstable = (l < 0) & (u > 0)
    active = (l >= 0).to(lam.dtype)
    s = torch.where(unstable, u / torch.where(unstable, u - l, torch.ones_like(u)), active)
    alpha = torch.where(unstable, (u >= -l).to(lam.dtype), active)
    pos, neg = lam.clamp(min=0), lam.clamp(max=0)
    nu = pos * alpha + neg * s
    shift = torch.where(unstable, -neg * s * l, torch.zeros_like(lam)).sum(-1)
    return nu, shift


def relaxed_forward(wb, x_star, hidden, lams):
    """The relaxed network at x*: each unstable ReLU on the line its Λ chose. Returns the output
    (B, K, n_out) and, per hidden layer, (ẑ*, chosen line value, unstable mask, u − l)."""
    import torch

    z, parts = x_star, []
    for k, (W, b) in enumerate(wb[:-1]):
        pre = z @ W.T + b
        l, u = (t[:, None, :] for t in hidden[k])
        unstable = (l < 0) & (u > 0)
        width = torch.where(unstable, u - l, torch.ones_like(u))
        upper = u * (pre - l) / width
        lower = torch.where(u >= -l, pre, torch.zeros_like(pre))
        line = torch.where(lams[k] >= 0, lower, upper)
        z = torch.where(unstable, line, torch.where(l >= 0, pre, torch.zeros_like(pre)))
        parts.append((pre, line, unstable, width))
    W, b = wb[-1]
    return z @ W.T + b, parts


def tightness_terms(model, wb, C, y, hidden, cp: CrownPass):
    """(output-bound difference, optimal-pre-activation term), each a mean over the margin rows
    j ≠ y of the batch (module doc). Both are ≥ 0 and zero when the relaxation is tight at x*."""
    import torch

    B, K, n0 = cp.x_star.shape
    rows = C.abs().sum(-1) > 0                                          # (B, K): j ≠ y
    real_margin = (C * model(cp.x_star.reshape(B * K, n0)).reshape(B, K, -1)).sum(-1)   # row j at its own x*
    difference = ((real_margin - cp.lower) * rows).sum() / rows.sum().clamp(min=1)
    _, parts = relaxed_forward(wb, cp.x_star, hidden, cp.lams)
    total = torch.zeros((), dtype=cp.lower.dtype)
    count = torch.zeros((), dtype=cp.lower.dtype)
    for pre, line, unstable, width in parts:
        mask = unstable & rows[..., None]
        total = total + ((line - torch.relu(pre)).abs() / width * mask).sum()
        count = count + mask.sum()
    return difference, total / count.clamp(min=1)
