"""Intermediate bounds re-optimised on the domains that stay open longest (ReLU-split BaB).

CROWN bounds every intermediate layer with fixed (adaptive) lower slopes; alpha-CROWN on the
intermediate layers (Xu et al. 2021, "Fast and complete", §3.1: optimising the slopes of the
layers below each intermediate layer's unstable neurons) tightens them, which stabilises neurons
and tightens every later relaxation — but costs a few backward passes per layer. So it is spent
only where the tree stays deep: on domains with at least `depth` split neurons (each split is one
level of the tree), layer by layer from layer 2 (layer 1 is affine in the input: exact already),
each layer using the already tightened layers below it. Every bound is a certified alpha-CROWN
bound over valid lower-layer bounds (bounds/alpha_crown.py), intersected with the CROWN one.
"""
from __future__ import annotations

import time

from optcert.bounds.alpha_crown import AlphaSettings, optimise
from optcert.bounds.torch_net import DomainBatch

ITERATIONS = 5
SETTINGS = AlphaSettings(ITERATIONS, 0.1)


def split_counts(batch: DomainBatch, depth: int):
    """Per domain, the number of split ReLUs (lo = 0 or hi = 0 exactly) on layers 1..depth−1."""
    count = 0
    for k in range(1, depth):
        count = count + ((batch.lower[k] == 0) | (batch.upper[k] == 0)).sum(dim=1)
    return count


def refine_deep(ctx, inner: DomainBatch, min_splits: int, deadline: float,
                settings: AlphaSettings = SETTINGS) -> tuple[DomainBatch, int]:
    """`inner` (layers 0..L−1) with the unstable neurons of layers 2..L−1 re-bounded by alpha-CROWN
    on the domains with ≥ `min_splits` splits; and how many domains that was."""
    import torch

    L = ctx.tn.depth
    deep = torch.nonzero(split_counts(inner, L) >= min_splits).flatten()
    if deep.numel() == 0 or L < 3:
        return inner, 0
    lower, upper = list(inner.lower), list(inner.upper)
    for k in range(2, L):
        if time.monotonic() > deadline:
            break
        lo, hi = lower[k][deep], upper[k][deep]
        unstable = (lo < 0) & (hi > 0)
        U = int(unstable.sum(dim=1).max())
        if U == 0:
            continue
        idx = torch.argsort((~unstable).to(torch.int8), dim=1, stable=True)[:, :U]
        valid = torch.gather(unstable, 1, idx)
        sel = torch.nn.functional.one_hot(idx, lo.shape[1]).to(ctx.tn.precision.torch()) * valid[..., None]
        prefix = DomainBatch(tuple(t[deep] for t in lower[:k]), tuple(t[deep] for t in upper[:k]))
        best = optimise(ctx.tn, prefix, k, torch.cat([sel, -sel], dim=1), settings, deadline)
        old_lo, old_hi = torch.gather(lo, 1, idx), torch.gather(hi, 1, idx)
        new_lo = torch.where(valid, torch.maximum(best[:, :U], old_lo), old_lo)
        new_hi = torch.where(valid, torch.minimum(-best[:, U:], old_hi), old_hi)
        lower[k] = lower[k].index_copy(0, deep, lo.scatter(1, idx, new_lo))
        upper[k] = upper[k].index_copy(0, deep, hi.scatter(1, idx, new_hi))
    return DomainBatch(tuple(lower), tuple(upper)), int(deep.numel())
