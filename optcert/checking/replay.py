"""Re-deriving the bounds of branch-and-bound domains, a batch at a time (tree.py walks the tree).

A domain is its input box, bounds on every ReLU layer and the interval of its output margins, all
re-derived by the checker (recipe `crown-unstable`, crown.py) from its parent's with its split
applied. Its own row bounds come from CROWN's ν (dual.py) and from the dual items stored at it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optcert.checking.counterexample import zero_rule
from optcert.checking.crown import Recipe, intermediate
from optcert.checking.dual import adaptive, margin_bound
from optcert.checking.forward import forward_given, supported
from optcert.checking.interval import affine, ibp
from optcert.checking.net import CheckNet
from optcert.spec.problem import Case, Combine

OUTPUT_CHUNK = 256   # domains per output pass


@dataclass
class Domain:
    """Re-derived bounds of one node: layers 0..L−1, the margins' interval (lo, hi) along the path,
    the best row bounds and case bound (ANY) along the path, the largest scale met, emptiness."""

    lower: list
    upper: list
    out_lo: np.ndarray
    out_hi: np.ndarray
    key: float
    scale: float
    empty: bool = False


def _pairs(m: int) -> np.ndarray:
    """Every average (e_i + e_j)/2 of two rows (an ANY case: a positive bound on one proves
    max(r_i, r_j) > 0 where neither row alone may be positive; what the input-split search bounds)."""
    i, j = np.triu_indices(m, 1)
    both = np.zeros((len(i), m))
    both[np.arange(len(i)), i] = 0.5
    both[np.arange(len(i)), j] = 0.5
    return both


def output_pass(net: CheckNet, case: Case, lower: list, upper: list, rule=None,
                pairs: bool = False) -> tuple[np.ndarray, ...]:
    """(lo, hi, scale, key) of every margin over B domains, by CROWN's ν (or `rule`), in chunks;
    key (B,): with `pairs` on an ANY case the best bound on a pairwise average of rows, else −inf."""
    rule = rule or adaptive()
    m = case.spec.rows
    extra = _pairs(m) if pairs and case.combine is Combine.ANY and m > 1 else np.zeros((0, m))
    weights = np.concatenate([np.eye(m), -np.eye(m), extra])
    B = lower[0].shape[0]
    if extra.shape[0] and len(lower) == net.depth:      # averages need the output layer's bounds
        out = affine(net, net.depth, lower, upper)
        lower, upper = [*lower, out[0]], [*upper, out[1]]
    low, scale = np.empty((B, weights.shape[0])), np.empty((B, weights.shape[0]))
    for a in range(0, B, OUTPUT_CHUNK):
        sl = slice(a, min(B, a + OUTPUT_CHUNK))
        low[sl], scale[sl] = margin_bound(net, [x[sl] for x in lower], [x[sl] for x in upper], case.spec.C,
                                          case.spec.d, weights, rule)
    key = low[:, 2 * m:].max(axis=1) if extra.shape[0] else np.full(B, -np.inf)
    return low[:, :m], -low[:, m:2 * m], scale.max(axis=1), key


def root(net: CheckNet, case: Case, forward: bool = False) -> Domain:
    """The case box with IBP everywhere (the root's given bounds), refined like any domain."""
    lo0, hi0 = case.box.lo[None], case.box.hi[None]
    L = net.depth
    given = ibp(net, lo0, hi0, upto=L - 1)
    out_lo, out_hi, scale, _ = output_pass(net, case, given[0], given[1], zero_rule)
    start = Domain(given[0], given[1], out_lo[0], out_hi[0], -np.inf, float(scale[0]))
    return refine([start], 1, net, case, forward)[0]


def child(parent: Domain, layer: int, index: int, point: float, side: int) -> Domain:
    """The parent's bounds with the split applied (no re-derivation yet)."""
    lower, upper = [a.copy() for a in parent.lower], [a.copy() for a in parent.upper]
    if layer == 0:
        (upper if side == 0 else lower)[0][0, index] = point
    elif side == 0:
        upper[layer][0, index] = min(upper[layer][0, index], 0.0)
    else:
        lower[layer][0, index] = max(lower[layer][0, index], 0.0)
    return Domain(lower, upper, parent.out_lo.copy(), parent.out_hi.copy(), parent.key, parent.scale)


def refine(domains: list[Domain], start: int, net: CheckNet, case: Case, forward: bool = False) -> list[Domain]:
    """Each domain's ReLU layers from `start` on re-derived (intersected with what it holds), its
    margins by CROWN, emptiness noted; layers below `start` are taken as they are. With `forward`
    (input-split trees, whose leaves state only least bounds) every layer is first tightened by the
    checker's forward-mode bounds (forward.py) where the net is a chain."""
    lo0 = np.concatenate([d.lower[0] for d in domains])
    hi0 = np.concatenate([d.upper[0] for d in domains])
    L = net.depth
    given = ([np.concatenate([d.lower[k] for d in domains]) for k in range(L)],
             [np.concatenate([d.upper[k] for d in domains]) for k in range(L)])
    if forward and supported(net):
        given = forward_given(net, *given)
    lower, upper = intermediate(net, Recipe.CROWN_UNSTABLE, lo0, hi0, given, start)
    empty = np.zeros(len(domains), dtype=bool)
    for lo, hi in zip(lower, upper):
        empty |= np.any(lo > hi, axis=1)
    out_lo, out_hi, scale, key = output_pass(net, case, lower, upper, pairs=forward)
    result = []
    for b, d in enumerate(domains):
        o_lo, o_hi = np.maximum(d.out_lo, out_lo[b]), np.minimum(d.out_hi, out_hi[b])
        result.append(Domain([x[b:b + 1] for x in lower], [x[b:b + 1] for x in upper], o_lo, o_hi,
                             max(d.key, float(key[b])),
                             max(d.scale, float(scale[b])), bool(empty[b] or np.any(o_lo > o_hi))))
    return result
