"""FSB-style ReLU branching (filtered smart branching; De Palma et al. 2021, "Improved branch and
bound for neural network verification via Lagrangian decomposition", §5; the kFSB of
alpha-beta-CROWN): per domain, a few candidate neurons pass a cheap filter (the best BaBSR scores
and the widest triangles, `branching.top_candidates`); each candidate's two children are then
bounded by one batched CROWN pass on the output with the parent's intermediate bounds (valid for the
children, which are subsets), only the split neuron's interval changed, and — when the parent was
bounded by alpha-beta-CROWN — the parent's optimised slopes and betas for that row, as kFSB does
(with plain CROWN slopes the ranking was worse: mnistfc 256x4 prop_8_0.03 at 30 s −0.33 against
−0.25, 256x2 prop_6_0.03 proved in 9.4 against 6.3 s); the candidate whose worse child has the best
bound is chosen.

The look-ahead bounds only rank candidates: they are never used as certified bounds of a domain
(they are, in fact, valid CROWN bounds of the children, but the children are bounded properly
when they are popped).
"""
from __future__ import annotations

import numpy as np

from optcert.bounds.crown import backward_bound
from optcert.bounds.torch_net import DomainBatch
from optcert.search.branching import Decision, top_candidates

CANDIDATES = 3   # per filter (BaBSR, widest): up to 2 × CANDIDATES neurons per domain


def _child_batch(inner: DomainBatch, owners: list[int], picks: list[Decision]) -> DomainBatch:
    """For each (domain owners[c], neuron picks[c]): its inactive child then its active child."""
    import torch

    idx = torch.as_tensor(np.repeat(owners, 2), dtype=torch.long)
    lower = [t[idx].clone() for t in inner.lower]
    upper = [t[idx].clone() for t in inner.upper]
    for c, d in enumerate(picks):
        upper[d.layer][2 * c, d.index] = min(float(upper[d.layer][2 * c, d.index]), 0.0)
        lower[d.layer][2 * c + 1, d.index] = max(float(lower[d.layer][2 * c + 1, d.index]), 0.0)
    return DomainBatch(tuple(lower), tuple(upper))


def fsb_decisions(ctx, inner: DomainBatch, bounds: list, nus: dict[int, np.ndarray],
                  weights: np.ndarray, focus: np.ndarray) -> list[Decision | None]:
    """One decision per domain (None: nothing left to split). `inner` holds the domains' bounds on
    layers 0..L−1, `bounds` their numpy `Bounds` (None if empty), `nus[j]` (B, m, n_j) CROWN's
    multipliers, `weights` (B, m) the rows that matter (branching.row_weights) and `focus` (B,) the
    row whose children's bound ranks the candidates (the worst open row; ANY: the best row)."""
    import torch

    owners, picks, rows = [], [], []
    decisions: list[Decision | None] = [None] * len(bounds)
    for b, bd in enumerate(bounds):
        if bd is None:
            continue
        cands = top_candidates(bd, {j: v[b] for j, v in nus.items()}, weights[b], CANDIDATES)
        if len(cands) == 1:
            decisions[b] = cands[0]
        elif cands:
            owners += [b] * len(cands)
            picks += cands
            rows += [int(focus[b])] * len(cands)
    if not picks:
        return decisions
    kids = _child_batch(inner, owners, picks)
    row_idx = torch.as_tensor(np.repeat(rows, 2), dtype=torch.long)
    objective = ctx.eye[row_idx][:, None, :]
    alphas = betas = None
    if ctx.last_multipliers is not None:     # the parent's optimised slopes and betas (kFSB)
        own = torch.as_tensor(np.repeat(owners, 2), dtype=torch.long)
        alphas, betas = ({j: t[own, row_idx][:, None, :] for j, t in part.items()} for part in ctx.last_multipliers)
    low = backward_bound(ctx.tn, kids, ctx.tn.depth, objective, alphas=alphas,
                         betas=betas).lower[:, 0].detach().cpu().numpy()
    score = np.minimum(low[0::2], low[1::2])
    best: dict[int, tuple[float, Decision]] = {}
    for b, d, s in zip(owners, picks, score):
        if b not in best or s > best[b][0]:
            best[b] = (float(s), d)
    for b, (_, d) in best.items():
        decisions[b] = d
    return decisions
