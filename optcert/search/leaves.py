"""Exact leaves of the `bnb` engine: a domain with no unstable neuron left is a linear region,
whose LP (lowerings/lp_triangle.py with every inactive ẑ kept, so the split constraints hold) is
exact; its optimal input is a candidate counterexample. Infeasibility is only believed when a
phase-1 LP certifies a positive minimal violation from its duals (lp_certificate.py)."""
from __future__ import annotations

import math
import time

import numpy as np

from optcert.bounds.layer_bounds import Bounds
from optcert.errors import LoweringError
from optcert.forms import LinearProgram, SolveStatus
from optcert.search.coordinator import LeafAnswer

# scipy.sparse, the lowerings and the solvers are imported where a leaf is solved: most searches
# never reach one, and they cost 0.2 s of every start-up.


def _solve_lp(ctx, bounds: Bounds, rows: tuple[int, ...], deadline: float):
    """(certified value, optimal input or None, (rows, lowering, row duals) or None) of the LP
    triangle over `bounds` for `rows` (one row: its minimum; several: the minimum of their max);
    +inf when certified infeasible."""
    from optcert.lowerings import Objective, lower_lp
    from optcert.solve.linear import solve_bound

    try:
        lowered = lower_lp(ctx.cc.net, bounds, Objective(rows), keep_inactive=True)
    except LoweringError:
        return -math.inf, None, None
    result = solve_bound(lowered.form, "highs", deadline=deadline)
    status = result.solution.status
    if status is SolveStatus.INFEASIBLE:
        found: list = []
        empty = certify_infeasible(lowered.form, deadline, found)
        return (math.inf if empty else -math.inf), None, ((rows, lowered, found[0], True) if found else None)
    x = None if result.solution.x is None else lowered.read(result.solution.x)
    duals = None if result.solution.row_duals is None else (rows, lowered, result.solution.row_duals, False)
    return result.value, x, duals


def exact_leaf(ctx, bounds: Bounds, deadline: float) -> LeafAnswer:
    """The LP of a domain; exact when no neuron is unstable (a linear region)."""
    m = ctx.m
    if ctx.any_case:
        value, x, duals = _solve_lp(ctx, bounds, tuple(range(m)), deadline)
        return LeafAnswer(np.full(m, math.inf if value == math.inf else -math.inf), value, x,
                          value > -math.inf, (duals,) if duals else ())
    values, xs, duals = zip(*(_solve_lp(ctx, bounds, (i,), deadline) if time.monotonic() < deadline
                              else (-math.inf, None, None) for i in range(m)))   # past it: not solved
    rows = np.array(values, dtype=np.float64)
    worst = int(np.argmin(rows))
    key = math.inf if np.any(rows == math.inf) else float(rows.min())
    if key == math.inf:
        rows[:] = math.inf
    return LeafAnswer(rows, key, xs[worst], bool(np.all(rows > -math.inf)) or key == math.inf,
                      tuple(d for d in duals if d is not None))


PHASE1_CAP = 1e6


def certify_infeasible(form: LinearProgram, deadline: float, duals: list | None = None) -> bool:
    """True only if the LP is certifiably infeasible: the phase-1 LP min t s.t. every row
    violated by at most t, 0 ≤ t ≤ PHASE1_CAP, has a rigorous (dual-certified) positive lower
    bound. (Were the LP feasible, t = 0 would be feasible; the cap keeps the certificate finite.)
    When it is, `duals` (if given) receives the phase-1 row duals summed per row of `form`."""
    lo_rows = np.flatnonzero(np.isfinite(form.row_lo))
    hi_rows = np.flatnonzero(np.isfinite(form.row_hi))
    import scipy.sparse as sp

    from optcert.solve.linear import solve_bound

    A = form.A.tocsr()
    ones = [sp.csr_matrix(np.full((r.size, 1), s)) for r, s in ((lo_rows, 1.0), (hi_rows, -1.0))]
    A2 = sp.vstack([sp.hstack([A[lo_rows], ones[0]]), sp.hstack([A[hi_rows], ones[1]])]).tocsr()
    row_lo = np.concatenate([form.row_lo[lo_rows], np.full(hi_rows.size, -np.inf)])
    row_hi = np.concatenate([np.full(lo_rows.size, np.inf), form.row_hi[hi_rows]])
    c = np.zeros(form.n_cols + 1)
    c[-1] = 1.0
    phase1 = LinearProgram(c, A2, row_lo, row_hi, np.append(form.col_lo, 0.0),
                           np.append(form.col_hi, PHASE1_CAP))
    result = solve_bound(phase1, "highs", deadline=deadline)
    if duals is not None and result.value > 0 and result.solution.row_duals is not None:
        y, d = np.zeros(form.n_rows), result.solution.row_duals
        np.add.at(y, lo_rows, d[:lo_rows.size])
        np.add.at(y, hi_rows, d[lo_rows.size:])
        duals.append(y)
    return result.value > 0
