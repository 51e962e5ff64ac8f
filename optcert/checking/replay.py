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
from optcert.checking.interval import ibp
from optcert.checking.net import CheckNet
from optcert.spec.problem import Case

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


def output_pass(net: CheckNet, case: Case, lower: list, upper: list, rule=None) -> tuple[np.ndarray, ...]:
    """(lo, hi, scale) of every margin over B domains, by CROWN's ν (or `rule`), in chunks."""
    rule = rule or adaptive()
    m = case.spec.rows
    weights = np.concatenate([np.eye(m), -np.eye(m)])
    B = lower[0].shape[0]
    low, scale = np.empty((B, 2 * m)), np.empty((B, 2 * m))
    for a in range(0, B, OUTPUT_CHUNK):
        sl = slice(a, min(B, a + OUTPUT_CHUNK))
        low[sl], scale[sl] = margin_bound(net, [x[sl] for x in lower], [x[sl] for x in upper], case.spec.C,
                                          case.spec.d, weights, rule)
    return low[:, :m], -low[:, m:], scale.max(axis=1)


def root(net: CheckNet, case: Case) -> Domain:
    """The case box with IBP everywhere (the root's given bounds), refined like any domain."""
    lo0, hi0 = case.box.lo[None], case.box.hi[None]
    L = net.depth
    given = ibp(net, lo0, hi0, upto=L - 1)
    out_lo, out_hi, scale = output_pass(net, case, given[0], given[1], zero_rule)
    start = Domain(given[0], given[1], out_lo[0], out_hi[0], -np.inf, float(scale[0]))
    return refine([start], 1, net, case)[0]


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


def refine(domains: list[Domain], start: int, net: CheckNet, case: Case) -> list[Domain]:
    """Each domain's ReLU layers from `start` on re-derived (intersected with what it holds), its
    margins by CROWN, emptiness noted; layers below `start` are taken as they are."""
    lo0 = np.concatenate([d.lower[0] for d in domains])
    hi0 = np.concatenate([d.upper[0] for d in domains])
    L = net.depth
    given = ([np.concatenate([d.lower[k] for d in domains]) for k in range(L)],
             [np.concatenate([d.upper[k] for d in domains]) for k in range(L)])
    lower, upper = intermediate(net, Recipe.CROWN_UNSTABLE, lo0, hi0, given, start)
    empty = np.zeros(len(domains), dtype=bool)
    for lo, hi in zip(lower, upper):
        empty |= np.any(lo > hi, axis=1)
    out_lo, out_hi, scale = output_pass(net, case, lower, upper)
    result = []
    for b, d in enumerate(domains):
        o_lo, o_hi = np.maximum(d.out_lo, out_lo[b]), np.minimum(d.out_hi, out_hi[b])
        result.append(Domain([x[b:b + 1] for x in lower], [x[b:b + 1] for x in upper], o_lo, o_hi, d.key,
                             max(d.scale, float(scale[b])), bool(empty[b] or np.any(o_lo > o_hi))))
    return result
