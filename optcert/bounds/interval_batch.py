"""Interval bound propagation (IBP; Gowal et al. 2018) in torch, batched over domains, rigorous in
float32 or float64.

Centre/radius form: with c, r the centre and a radius rounded up of each source's box,
ẑ ∈ W c + b ± |W| r. The products are bounded a priori (rounding.py): the error is at most
γ_N (|W| (|c| + r) + |b|) — one extra matrix product with the stacked [r, |c|] — with N covering
the inner dimension, the weights' own rounding to the compute precision and the additions; the
result is formed in float64 and stepped one ulp outward. For a layer that reads only the input
this is exactly CROWN's bound (both are the extremes of an affine map over a box).
"""
from __future__ import annotations

from optcert.bounds.rounding import ETA, gamma, nudge_down, nudge_up
from optcert.bounds.torch_net import DomainBatch, TorchNet


def _source_box(tn: TorchNet, domains: DomainBatch, j: int):
    """(centre, radius rounded up) of z_j's box in the compute precision."""
    import numpy as np
    import torch

    lo, hi = domains.layer(j, tn.precision)
    if j > 0:
        lo, hi = torch.relu(lo), torch.relu(hi)
    c = (lo + hi) / 2
    r = torch.maximum(hi - c, c - lo)
    r = r + (torch.nextafter(r.detach(), torch.full_like(r.detach(), np.inf)) - r.detach())
    return c, r


def interval_layer(tn: TorchNet, domains: DomainBatch, k: int):
    """Certified (lo, hi), (B, n_k) float64, on ẑ_k over the boxes of its sources in `domains`."""
    import torch

    layer = k - 1
    mid = tn.biases[layer].double()
    rad: object = 0.0
    mag = tn.abs_biases[layer].detach()
    n = 2 * len(tn.sources[layer]) + 4
    for j, w, aw in zip(tn.sources[layer], tn.weights[layer], tn.abs_weights(layer)):
        c, r = _source_box(tn, domains, j)
        mid = mid + (c @ w.T).double()
        both = torch.cat([r, c.detach().abs()]) @ aw.T
        B = c.shape[0]
        rad = rad + (r @ aw.T if r.requires_grad else both[:B]).double()
        mag = mag + both[:B].detach() + both[B:]
        n += w.shape[1]
    g = gamma(n, tn.precision.unit_roundoff)
    err = mag.double() * (2 * g * (1 + 4 * g)) + n * ETA[tn.precision] * 4
    return nudge_down(mid - rad - err), nudge_up(mid + rad + err)


def interval_batch(tn: TorchNet, domains: DomainBatch, upto: int | None = None) -> DomainBatch:
    """IBP on layers 1..upto (default all) for every domain; layers `domains` already holds are
    intersected with the computed ones before they are propagated further."""
    import torch

    upto = tn.depth if upto is None else upto
    out = domains.prefix(0)
    for k in range(1, upto + 1):
        lo, hi = interval_layer(tn, out, k)
        if k <= domains.depth:
            lo, hi = torch.maximum(lo, domains.lower[k]), torch.minimum(hi, domains.upper[k])
        out = out.extended(lo, hi)
    return out
