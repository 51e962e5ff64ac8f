"""Ground truth for small networks: the exact minimum by enumerating activation patterns."""
from __future__ import annotations

from itertools import product

import numpy as np
from scipy.optimize import linprog


def brute_force(net, bounds, rows) -> float:
    """min over the box of max_{i ∈ rows} output_i: one LP per feasible activation pattern."""
    lo, hi = bounds.lower[0], bounds.upper[0]
    n = lo.size
    best = [np.inf]

    def region_lp(A_ub, b_ub, out_rows):
        # variables (x, t): min t s.t. m_i(x) − t ≤ 0, region rows, x in box
        M, c = out_rows
        A = np.vstack([np.hstack([M, -np.ones((len(c), 1))]), np.hstack([A_ub, np.zeros((len(A_ub), 1))])])
        b = np.concatenate([-c, b_ub])
        res = linprog(np.r_[np.zeros(n), 1.0], A_ub=A, b_ub=b, bounds=list(zip(lo, hi)) + [(None, None)])
        return res.fun if res.status == 0 else None

    def affine(layer, maps):
        M = sum(w @ maps[j][0] for j, w in zip(layer.sources, layer.weights))
        return M, layer.bias + sum(w @ maps[j][1] for j, w in zip(layer.sources, layer.weights))

    def rec(k, maps, A_ub, b_ub):
        if k == len(net.layers):
            M, c = affine(net.output, maps)
            value = region_lp(A_ub, b_ub, (M[list(rows)], c[list(rows)]))
            best[0] = min(best[0], np.inf if value is None else value)
            return
        M, c = affine(net.layers[k - 1], maps)
        l, u = bounds.lower[k], bounds.upper[k]
        unstable = np.flatnonzero((l < 0) & (u > 0))
        for pattern in product([0.0, 1.0], repeat=unstable.size):
            on = (l >= 0).astype(float)
            on[unstable] = pattern
            sign = np.where(np.array(pattern) > 0, -1.0, 1.0)  # active: −ẑ ≤ 0, inactive: ẑ ≤ 0
            A2 = np.vstack([A_ub, sign[:, None] * M[unstable]])
            b2 = np.concatenate([b_ub, -sign * c[unstable]])
            if unstable.size and region_lp(A2, b2, (np.zeros((1, n)), np.zeros(1))) is None:
                continue
            rec(k + 1, maps + [(on[:, None] * M, on * c)], A2, b2)

    rec(1, [(np.eye(n), np.zeros(n))], np.zeros((0, n)), np.zeros(0))
    return best[0]
