"""Re-check a FALSIFIED result's counterexample: inside its case's box (exact comparisons), every
row of its clause < 0 when the original graph is evaluated in float64 (`Network.forward`, the
IR's reference semantics) and in a rigorous point enclosure (the checker's own interval
propagation, checking/dual.py with ν = 0), and the stored outputs and margins are what the
network gives at the stored x."""
from __future__ import annotations

import numpy as np

from optcert.checking.dual import margin_bound
from optcert.checking.interval import ibp
from optcert.checking.net import CheckNet
from optcert.checking.report import Report
from optcert.spec.problem import VerificationProblem

AGREE = 1e-9   # relative agreement of stored and re-evaluated outputs (summation order may differ)


def zero_rule(j, lam, lo, hi):
    """ν ≡ 0: the dual bound is then interval arithmetic on each layer's sources."""
    return np.zeros_like(lam)


def margin_enclosure_upper(net: CheckNet, x: np.ndarray, C: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Rigorous upper bounds on every margin (C f(x) + d)_i at the point x."""
    lower, upper = ibp(net, x[None], x[None])
    rows = C.shape[0]
    low, _ = margin_bound(net, lower, upper, C, d, -np.eye(rows), zero_rule)
    return -low[0]


def check_counterexample(report: Report, problem: VerificationProblem, net: CheckNet, cex) -> bool:
    """Steps for the stored counterexample `cex` (result.counterexample); True when it re-checks."""
    k = int(cex.case)
    if not report.add("counterexample case", 0 <= k < len(problem.cases), f"case {k} of {len(problem.cases)}"):
        return False
    case = problem.cases[k]
    clause = tuple(int(i) for i in cex.clause)
    if not report.add("counterexample clause", clause in case.clauses(), f"rows {list(clause)}"):
        return False
    x = np.asarray(cex.x, dtype=np.float64).reshape(-1)
    inside = x.size == case.box.size and bool(np.all(np.isfinite(x)))
    inside = inside and bool(np.all(case.box.lo <= x) and np.all(x <= case.box.hi))
    if not report.add("counterexample inside the region", inside, _outside(x, case.box)):
        return False
    y = problem.network.forward(x[None])[0]
    m = case.spec.margins(y)
    same = _agree(cex.y, y) and _agree(cex.margins, m)
    if not report.add("counterexample outputs re-evaluated", same,
                      "stored outputs/margins match f(x) in float64" if same else
                      f"stored outputs differ from f(x) (max |Δy| = {_gap(cex.y, y):.3g})"):
        return False
    rows = list(clause)
    if not report.add("counterexample violates (float64)", bool(np.all(m[rows] < 0)),
                      f"margins {np.array2string(m[rows], precision=6)}"):
        return False
    hi = margin_enclosure_upper(net, x, case.spec.C, case.spec.d)
    return report.add("counterexample violates (rigorous enclosure)", bool(np.all(hi[rows] < 0)),
                      f"margin upper bounds {np.array2string(hi[rows], precision=6)}")


def _agree(stored, value: np.ndarray) -> bool:
    s = np.asarray(stored, dtype=np.float64).reshape(-1)
    return s.shape == value.shape and bool(np.all(np.abs(s - value) <= AGREE * (1 + np.abs(value))))


def _gap(stored, value: np.ndarray) -> float:
    s = np.asarray(stored, dtype=np.float64).reshape(-1)
    return float(np.max(np.abs(s - value))) if s.shape == value.shape else float("inf")


def _outside(x: np.ndarray, box) -> str:
    if x.size != box.size:
        return f"x has {x.size} values, the box {box.size}"
    bad = np.flatnonzero(~((box.lo <= x) & (x <= box.hi)))
    if bad.size == 0:
        return "every coordinate inside"
    i = int(bad[0])
    return f"coordinate {i} = {x[i]!r} outside [{box.lo[i]!r}, {box.hi[i]!r}]"
