"""The only place verdicts are decided.

* FALSIFIED: a candidate input, clipped into its case's box, whose outputs violate a clause when
  the original graph is evaluated in float64 (every clause row < 0) *and* whose rigorous
  point-interval enclosure of those margins is < 0 (so rounding cannot flip it). Ties (margin 0)
  are never called a counterexample.
* PROVED: every case's certified lower bound is > 0, where row bounds computed on the folded net
  have the fold error subtracted (see `compiled.py`). Engines are responsible for their own
  bounds being sound under floating point (outward rounding, dual re-checks).
* Otherwise UNKNOWN with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from optcert.bounds.interval import ibp
from optcert.compiled import CompiledCase
from optcert.result import CaseBounds, Counterexample, Result, Verdict
from optcert.spec.problem import Combine, VerificationProblem


@dataclass
class EngineOutput:
    """What an engine hands to `conclude`.

    `lower[k]`: per-row lower bounds on case k's folded-net outputs (−inf where unknown).
    `case_lower[k]`: optional direct bound on case k's combined margin (e.g. an exact max for
    an ANY case). `candidates`: (case index, x) inputs that may violate the property.
    """

    lower: list[np.ndarray]
    candidates: list[tuple[int, np.ndarray]] = field(default_factory=list)
    case_lower: list[float | None] | None = None
    reason: str = ""
    timed_out: bool = False
    certificate: dict = field(default_factory=dict)


def check_counterexample(problem: VerificationProblem, cc: CompiledCase, x: np.ndarray) -> Counterexample | None:
    """A re-checked counterexample for case `cc`, or None (see module doc)."""
    x = cc.case.box.clip(x)
    y = problem.network.forward(x[None, :])[0]
    m = cc.case.spec.margins(y)
    enclosure = ibp(cc.net, x, x)
    hi = enclosure.upper[-1] + cc.fold_error
    for clause in cc.case.clauses():
        rows = list(clause)
        if np.all(m[rows] < 0) and np.all(hi[rows] < 0):
            return Counterexample(cc.index, clause, tuple(map(float, x)), tuple(map(float, y)),
                                  tuple(map(float, m)))
    return None


def achieved_margins(problem: VerificationProblem, cc: CompiledCase, x: np.ndarray) -> np.ndarray:
    """Float64 row margins of case `cc` at x clipped into its box (an upper-bound witness)."""
    x = cc.case.box.clip(x)
    return cc.case.spec.margins(problem.network.forward(x[None, :])[0])


def _case_bounds(cc: CompiledCase, lower: np.ndarray, case_lower: float | None,
                 upper: np.ndarray) -> CaseBounds:
    rows = cc.sound(lower)
    combined = float(rows.max() if cc.case.combine is Combine.ANY else rows.min())
    if case_lower is not None:
        direct = float(np.nextafter(case_lower - cc.fold_error.max(), -np.inf))
        combined = max(combined, direct)
    case_upper = float(cc.case.case_margin(upper)) if np.all(np.isfinite(upper)) else float("inf")
    return CaseBounds(tuple(map(float, rows)), tuple(map(float, upper)), combined, case_upper)


def conclude(problem: VerificationProblem, compiled: Sequence[CompiledCase], out: EngineOutput,
             engine: str, options: Mapping[str, object], timings: Mapping[str, float]) -> Result:
    """Turn an engine's output into a `Result` with a verdict (module doc)."""
    uppers = [np.full(cc.case.spec.rows, np.inf) for cc in compiled]
    cex = None
    for k, x in out.candidates:
        cc = compiled[k]
        uppers[k] = np.minimum(uppers[k], achieved_margins(problem, cc, x))
        if cex is None:
            cex = check_counterexample(problem, cc, x)
    cases = tuple(_case_bounds(cc, out.lower[cc.index],
                               out.case_lower[cc.index] if out.case_lower else None, uppers[cc.index])
                  for cc in compiled)
    bound = min(c.case_lower for c in cases)
    upper = min(c.case_upper for c in cases)
    common: dict[str, Any] = dict(bound=bound, upper=upper, cases=cases, engine=engine, options=dict(options),
                  timings=dict(timings), certificate=out.certificate, problem=problem.name)
    if cex is not None:
        return Result(Verdict.FALSIFIED, reason=f"counterexample in case {cex.case} re-checked in float64",
                      counterexample=cex, **common)
    if bound > 0:
        return Result(Verdict.PROVED, reason=f"certified lower bound {bound:.6g} > 0", **common)
    reason = out.reason or (f"certified lower bound {bound:.6g} is not positive" if np.isfinite(bound)
                            else "no certified bound")
    return Result(Verdict.UNKNOWN, reason=reason, timed_out=out.timed_out, **common)
