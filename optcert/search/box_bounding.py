"""Bounding of input boxes for the batched input-split search (search/input_split.py).

`bound_boxes` bounds the folded outputs over B boxes in one call: hidden layers by forward-mode
linear bounds intersected with interval arithmetic (bounds/forward.py), then CROWN on the
neurons they leave unstable (`Mode.HYBRID`), or by CROWN alone (`Mode.CROWN`, any net) or the
forward bounds alone (`Mode.FORWARD`); then one backward CROWN pass on the output rows (and, for
ANY cases, on every pairwise average of rows), in the net's compute precision with rigorous
rounding. It also returns the smear scores that choose the next split and candidate inputs (box
centres, minimisers of the linear lower bounds).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from optcert.bounds.crown import backward_bound, crown, refine
from optcert.bounds.forward import ForwardState, forward_bounds
from optcert.bounds.interval_batch import interval_layer
from optcert.bounds.torch_net import DomainBatch, TorchNet


class Mode(Enum):
    """How the hidden layers are bounded."""

    FORWARD = "forward"   # forward linear bounds ∩ interval arithmetic
    HYBRID = "hybrid"     # those, then CROWN on the neurons they leave unstable (from layer 3 on:
                          # after an exact first layer, forward mode gives CROWN's layer-2 bounds)
    CROWN = "crown"       # interval arithmetic, then CROWN on the neurons it leaves unstable


@dataclass
class Bounded:
    """Certified per-row lower bounds (B, m) float64, the best certified lower bound (B,) on a
    pairwise average of rows (−inf without pairs), smear scores (B, n_0), candidate inputs."""

    rows: Any
    pairs: Any
    smear: Any
    candidates: Any
    hidden: Any = None   # (lower, upper) (B, Σ n_k) float64: the hidden layers' bounds


def objective(m: int, pairs: bool):
    """Rows e_i, and with `pairs` every average (e_i + e_j)/2: for an ANY case a positive bound on
    an average proves max(r_i, r_j) > 0 where neither row alone may be positive."""
    rows = [np.eye(m)]
    if pairs and m > 1:
        i, j = np.triu_indices(m, 1)
        both = np.zeros((len(i), m))
        both[np.arange(len(i)), i] = 0.5
        both[np.arange(len(i)), j] = 0.5
        rows.append(both)
    return np.vstack(rows)


def bound_boxes(tn: TorchNet, lo, hi, mode: Mode, weights, pairs: bool = False, given=None) -> Bounded:
    """Bound the folded outputs over each box [lo, hi] (B, n_0) float64 tensors (module doc).
    `weights` (B, m): which rows the smear serves; `given` (lower, upper) (B, Σ n_k): bounds on the
    hidden layers known to hold in the boxes (a parent's), intersected with the computed ones."""
    import torch

    L, B = tn.depth, lo.shape[0]
    m = tn.biases[-1].shape[0]
    with torch.no_grad():
        boxes = DomainBatch.from_box(lo, hi)
        sizes = tn.sizes()[1:L]
        if given is not None:
            glo, ghi = (torch.split(g, sizes, dim=1) for g in given)
            boxes = DomainBatch(boxes.lower + tuple(glo), boxes.upper + tuple(ghi))
        inner = _hidden_bounds(tn, boxes, mode)
        hidden = (torch.cat(inner.lower[1:L], dim=1), torch.cat(inner.upper[1:L], dim=1))
        p = backward_bound(tn, inner, L, objective(m, pairs))
        lam0 = p.nus[1][:, :m] @ tn.weights[0][0] if 1 in p.nus else tn.weights[-1][0].expand(B, -1, -1)
        lam0 = lam0.double()
        width = hi - lo
        smear = torch.bmm(weights[:, None, :], lam0.abs())[:, 0] * width
        rows = p.lower[:, :m]
        worst = torch.argmin(torch.where(weights > 0, rows, torch.inf), dim=1)
        coef = lam0[torch.arange(B), worst]
        xstar = torch.where(coef > 0, lo, hi)
        combined = p.lower[:, m:].max(dim=1).values if p.lower.shape[1] > m else torch.full((B,), -torch.inf)
    return Bounded(rows, combined, smear, torch.cat([(lo + hi) / 2, xstar]), hidden)


def _hidden_bounds(tn: TorchNet, boxes: DomainBatch, mode: Mode) -> DomainBatch:
    """Certified bounds on every ReLU layer of the boxes (see `Mode`)."""
    import torch

    L = tn.depth
    if mode is Mode.FORWARD:
        return forward_bounds(tn, boxes, intervals=True)
    if mode is Mode.CROWN:
        return crown(tn, boxes, upto=L - 1)
    state, out = ForwardState(tn, boxes), boxes.prefix(0)
    for k in range(1, L):
        lo, hi = state.bounds()
        ilo, ihi = interval_layer(tn, out, k)
        lo, hi = torch.maximum(lo, ilo), torch.minimum(hi, ihi)
        if k <= boxes.depth:                                    # the parent's bounds hold in a sub-box
            lo, hi = torch.maximum(lo, boxes.lower[k]), torch.minimum(hi, boxes.upper[k])
        if k > 2:                                               # layer 2: forward is CROWN already
            lo, hi = refine(tn, out, k, lo, hi)
        out = out.extended(lo, hi)
        if k < L - 1:
            state.advance(lo, hi)
    return out
