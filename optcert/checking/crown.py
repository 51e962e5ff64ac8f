"""The checker's own intermediate bounds: CROWN layer by layer (Zhang et al. 2018; Fast-Lin with
`parallel`, Weng et al. 2018), batched over domains, every bound a rigorous dual bound (dual.py).

A certificate names the recipe its engine used (`Recipe`), and the checker re-derives the bounds
by that recipe from the input box and the split constraints alone — nothing about intermediate
bounds is stored, so nothing there can be tampered with:

* `ibp`: interval propagation only;
* `crown` / `fastlin`: layer by layer, interval arithmetic over the layers so far intersected
  with IBP over the box, then every neuron by a backward pass (what `compute_bounds(…, CROWN)`
  with `neurons=all` gives the LP/SDP tightening);
* `crown-unstable`: layer by layer, interval arithmetic over the layers so far intersected with
  the given bounds (IBP over the box, or a branch-and-bound parent's with the split applied), then
  a backward pass only for the neurons that leaves unstable, from the first layer a split can
  change (what the `bnb` coordinator does per domain, and the `crown`/`alpha-crown` engines).
"""
from __future__ import annotations

from enum import Enum

import numpy as np

from optcert.checking.dual import Pass, adaptive
from optcert.checking.interval import affine, ibp
from optcert.checking.net import CheckNet

CHUNK = 1 << 22   # elements of a (domains, rows, width) array per backward pass


class Recipe(Enum):
    IBP = "ibp"
    CROWN = "crown"
    FASTLIN = "fastlin"
    CROWN_UNSTABLE = "crown-unstable"


def neuron_bounds(net: CheckNet, lower: list, upper: list, k: int, idx: np.ndarray, valid: np.ndarray,
                  parallel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Certified (lo, hi), each (B, S), on ẑ_k[idx] (idx, valid: (B, S); invalid entries are
    padding) from one backward pass with objective rows ±e_idx."""
    B, S = idx.shape
    out_lo, out_hi = np.empty((B, S)), np.empty((B, S))
    width = max(net.sizes()[: k + 1])
    step = max(1, CHUNK // max(1, 2 * S * width))
    layer = net.layer(k)
    for a in range(0, B, step):
        sl = slice(a, min(B, a + step))
        sel, ok = idx[sl], valid[sl].astype(np.float64)
        p = Pass(net, [x[sl] for x in lower[:k]], [x[sl] for x in upper[:k]], (sel.shape[0], 2 * S))
        for j, w in zip(layer.sources, layer.weights):
            rows = w[sel] * ok[..., None]
            p.accumulate(j, np.concatenate([rows, -rows], axis=1), 0.0)
        b = layer.bias[sel] * ok
        p.add(np.concatenate([b, -b], axis=1), 0.0)
        p.run(k, adaptive(parallel))
        low, _ = p.result()
        out_lo[sl], out_hi[sl] = low[:, :S], -low[:, S:]
    return out_lo, out_hi


def _selection(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(idx, valid) (B, S) listing each row's True positions first, S = most per row (≥ 1)."""
    S = max(1, int(mask.sum(axis=1).max(initial=0)))
    order = np.argsort(~mask, axis=1, kind="stable")[:, :S]
    return order, np.take_along_axis(mask, order, axis=1)


def refine(net: CheckNet, lower: list, upper: list, k: int, lo: np.ndarray, hi: np.ndarray,
           neurons: np.ndarray, parallel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of layer k intersected with CROWN's bounds on the neurons `neurons` (B, n_k)."""
    if not neurons.any():
        return lo, hi
    idx, valid = _selection(neurons)
    new_lo, new_hi = neuron_bounds(net, lower, upper, k, idx, valid, parallel)
    lo, hi = lo.copy(), hi.copy()
    rows = np.broadcast_to(np.arange(lo.shape[0])[:, None], idx.shape)
    r, c = rows[valid], idx[valid]
    lo[r, c] = np.maximum(lo[r, c], new_lo[valid])
    hi[r, c] = np.minimum(hi[r, c], new_hi[valid])
    return lo, hi


def intermediate(net: CheckNet, recipe: Recipe, lo0: np.ndarray, hi0: np.ndarray,
                 given: tuple[list, list] | None = None, start: int = 1) -> tuple[list, list]:
    """Bounds on layers 0..L−1 (each (B, n_k)) over boxes lo0, hi0 (B, n_0) by `recipe` (module
    doc). `given` (lower, upper lists over layers 0..L−1) are intersected with, and kept below
    `start`; without it, IBP over the box is."""
    L = net.depth
    if given is None:
        given = ibp(net, lo0, hi0, upto=L - 1)
    if recipe is Recipe.IBP:
        return list(given[0][:L]), list(given[1][:L])
    lower, upper = [np.asarray(lo0, dtype=np.float64)], [np.asarray(hi0, dtype=np.float64)]
    parallel = recipe is Recipe.FASTLIN
    for k in range(1, L):
        glo, ghi = given[0][k], given[1][k]
        if k < start:
            lo, hi = glo, ghi
            lower.append(lo)
            upper.append(hi)
            continue
        ilo, ihi = affine(net, k, lower, upper)       # interval arithmetic over the layers so far
        glo, ghi = np.maximum(glo, ilo), np.minimum(ghi, ihi)
        if recipe is Recipe.CROWN_UNSTABLE:
            lo, hi = refine(net, lower, upper, k, glo, ghi, (glo < 0) & (ghi > 0))
        else:
            lo, hi = refine(net, lower, upper, k, glo, ghi, np.ones(glo.shape, dtype=bool), parallel)
        lower.append(lo)
        upper.append(hi)
    return lower, upper
