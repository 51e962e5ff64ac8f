"""The checker's own bisection of an input box (a leaf of a tree that states only its least
bounds, tree.py): where its bounds (forward mode + CROWN, replay.refine) over the whole leaf do not
reach a wanted bound, it bisects
the leaf along its widest input (relative to the case box) and bounds the halves, up to a budget
of boxes. Sound whatever the outcome: the halves cover the leaf, so the least of their bounds is a
bound over the leaf (the same reasoning as an input-split tree, with the checker's own splits)."""
from __future__ import annotations

import math

import numpy as np

from optcert.checking.net import CheckNet
from optcert.checking.replay import Domain, child, refine
from optcert.spec.problem import Case, Combine

BUDGET = 16     # boxes bounded per leaf at most (a check stays within a few times the search)


def leaf_value(case: Case, d: Domain) -> float:
    """The bound a domain gives on the case margin (ANY: its best row or clause bound)."""
    if d.empty:
        return math.inf
    return float(max(d.key, d.out_lo.max()) if case.combine is Combine.ANY else d.out_lo.min())


def bisect_to(net: CheckNet, case: Case, d: Domain, want: float, rows: np.ndarray,
              budget: int = BUDGET) -> tuple[float, np.ndarray]:
    """(case-margin bound, per-row bounds) over the leaf `d`: its own, or the least over a cover by
    bisection whose every box reaches `want` (and `rows` per row), when one is found in `budget`."""
    width = np.where(case.box.hi > case.box.lo, case.box.hi - case.box.lo, 1.0)
    open_, spent = [d], 1
    done: list[Domain] = []
    while open_ and spent + 2 * len(open_) <= budget:
        kids = []
        for p in open_:
            i = int(np.argmax((p.upper[0][0] - p.lower[0][0]) / width))
            point = float(p.lower[0][0, i] + (p.upper[0][0, i] - p.lower[0][0, i]) / 2)
            kids += [child(p, 0, i, point, 0), child(p, 0, i, point, 1)]
        spent += len(kids)
        open_ = []
        for k in refine(kids, 1, net, case, forward=True):
            reached = leaf_value(case, k) >= want and (k.empty or bool(np.all((k.out_lo >= rows) | (rows == -np.inf))))
            (done if reached else open_).append(k)
    if open_:
        return leaf_value(case, d), (np.full(rows.shape, np.inf) if d.empty else d.out_lo)
    value = min(leaf_value(case, k) for k in done)
    own = np.min([np.full(rows.shape, np.inf) if k.empty else k.out_lo for k in done], axis=0)
    return value, own
