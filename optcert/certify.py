"""The only place verdicts are decided.

* FALSIFIED: a candidate input, clipped into its case's box, whose outputs violate a clause when
  the original graph is evaluated in float64 (every clause row < 0) *and* whose rigorous
  point-interval enclosure of those margins is < 0 (so rounding cannot flip it). Ties (margin 0)
  are never called a counterexample.
* PROVED: every case's certified lower bound is > 0, where row bounds computed on the folded net
  have the fold error subtracted (see `compiled.py`). Engines are responsible for their own
  bounds being sound under floating point (outward rounding, dual re-checks).
* Otherwise UNKNOWN with a reason; when the engine hit a time limit (`timed_out`) the reason says so.

The *clean input* is looked at too. For a robustness problem (`problem.meta["clean"]`, the image)
it is checked before anything else, whatever the engine: a misclassified image is the counterexample
and the result says the image is misclassified (not that an attack succeeded), `clean_violation`
set. For other properties (VNN-LIB) a FALSIFIED result also checks each input box's centre, and
says so when the centre itself already violates the property; the verdicts of engines that cannot
falsify are left as they are.

Each row's certified bound is attributed to a method (`CaseBounds.row_source`): the engine's
`certificate["row_source"]` when it gives one (one name per row, flat in case order, or one list
per case), else the engine's name; `"none"` where nothing is certified.
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
                 upper: np.ndarray, case_upper: float, sources: list[str], fallback: str) -> CaseBounds:
    """A case's rows made sound (fold error off), combined; each finite row named by its source
    (`fallback`, the engine, where the engine named none). `upper` holds each row's best achieved
    margin, `case_upper` the best case margin achieved by one input (for ANY, the rows' best values
    may come from different inputs, so their maximum is no achieved value)."""
    rows = cc.sound(lower)
    combined = float(rows.max() if cc.case.combine is Combine.ANY else rows.min())
    if case_lower is not None:
        direct = float(np.nextafter(case_lower - cc.fold_error.max(), -np.inf))
        combined = max(combined, direct)
    source = tuple(("none" if not np.isfinite(r) else (cc_source if cc_source != "none" else fallback))
                   for cc_source, r in zip(sources, rows))
    return CaseBounds(tuple(map(float, rows)), tuple(map(float, upper)), combined, float(case_upper), source)


def conclude(problem: VerificationProblem, compiled: Sequence[CompiledCase], out: EngineOutput,
             engine: str, options: Mapping[str, object], timings: Mapping[str, float]) -> Result:
    """Turn an engine's output into a `Result` with a verdict (module doc)."""
    uppers = [np.full(cc.case.spec.rows, np.inf) for cc in compiled]
    case_uppers = [np.inf] * len(compiled)     # best case margin achieved by one input
    robustness = problem.meta.get("clean") is not None
    clean = clean_counterexample(problem, compiled) if robustness else None
    cex = clean

    def achieved(k: int, margins: np.ndarray) -> None:
        uppers[k] = np.minimum(uppers[k], margins)
        case_uppers[k] = min(case_uppers[k], float(compiled[k].case.case_margin(margins)))

    if clean is not None:
        achieved(clean.case, np.asarray(clean.margins, dtype=np.float64))
    for k, x in out.candidates:
        cc = compiled[k]
        achieved(k, achieved_margins(problem, cc, x))
        if cex is None:
            cex = check_counterexample(problem, cc, x)
    if cex is not None and not robustness:
        clean = clean_counterexample(problem, compiled)
    sources = row_sources(out.certificate, compiled, engine)
    cases = tuple(_case_bounds(cc, out.lower[cc.index], out.case_lower[cc.index] if out.case_lower else None,
                               uppers[cc.index], case_uppers[cc.index], sources[cc.index], engine)
                  for cc in compiled)
    bound = min(c.case_lower for c in cases)
    upper = min(c.case_upper for c in cases)
    common: dict[str, Any] = dict(bound=bound, upper=upper, cases=cases, engine=engine, options=dict(options),
                                  timings=dict(timings), certificate=out.certificate, problem=problem.name,
                                  timed_out=out.timed_out, clean_violation=clean is not None)
    if cex is not None:
        reason = f"counterexample in case {cex.case} re-checked in float64"
        if clean is not None:
            reason = _clean_reason(problem, clean) if robustness else reason + "; " + _clean_reason(problem, clean)
        return Result(Verdict.FALSIFIED, reason=_timed(reason, out), counterexample=cex, **common)
    if bound > 0:
        return Result(Verdict.PROVED, reason=_timed(f"certified lower bound {bound:.6g} > 0", out), **common)
    reason = out.reason or (f"certified lower bound {bound:.6g} is not positive" if np.isfinite(bound)
                            else "no certified bound")
    return Result(Verdict.UNKNOWN, reason=_timed(reason, out), **common)


def _timed(reason: str, out: EngineOutput) -> str:
    """The reason, saying that a time limit was hit when the engine reports one."""
    if not out.timed_out or "time" in reason.lower():
        return reason
    note = next((part for part in out.reason.split("; ") if "time" in part.lower()), "time limit reached")
    return f"{reason} ({note})"


def clean_counterexample(problem: VerificationProblem, compiled: Sequence[CompiledCase]) -> Counterexample | None:
    """A re-checked counterexample at the clean input (module doc), or None. One batched float64
    forward pass screens every case; only a case whose clean margins violate is re-checked."""
    clean = problem.meta.get("clean")
    points = [np.asarray(clean, dtype=np.float64).reshape(-1) if clean is not None else cc.case.box.center
              for cc in compiled]
    inside = [k for k, cc in enumerate(compiled) if cc.case.box.contains(points[k])]
    if not inside:
        return None
    for start in range(0, len(inside), 512):
        chunk = inside[start:start + 512]
        outputs = problem.network.forward(np.stack([points[k] for k in chunk]))
        for k, y in zip(chunk, outputs):
            cc = compiled[k]
            m = cc.case.spec.margins(y)
            if any(np.all(m[list(clause)] < 0) for clause in cc.case.clauses()):
                cex = check_counterexample(problem, cc, points[k])
                if cex is not None:
                    return cex
    return None


def _clean_reason(problem: VerificationProblem, cex: Counterexample) -> str:
    if "label" in problem.meta:
        y = np.asarray(cex.y)
        label = int(problem.meta["label"])
        return (f"the clean image is already misclassified (class {int(np.argmax(y))} scores {y.max():.6g}, "
                f"label {label} scores {y[label]:.6g}): no perturbation needed, not an attack success")
    return f"the centre of case {cex.case}'s input box already violates the property (no perturbation needed)"


def row_sources(certificate: Mapping[str, Any], compiled: Sequence[CompiledCase], engine: str) -> list[list[str]]:
    """Per case, per row: the method that certified the row's bound (module doc)."""
    rows = [cc.case.spec.rows for cc in compiled]
    given = certificate.get("row_source") if isinstance(certificate, Mapping) else None
    if isinstance(given, (list, tuple)) and given:
        if all(isinstance(g, (list, tuple)) for g in given) and [len(g) for g in given] == rows:
            return [[str(s) for s in g] for g in given]
        if all(isinstance(g, str) for g in given) and len(given) == sum(rows):
            starts = np.cumsum([0, *rows])
            return [[str(s) for s in given[a:b]] for a, b in zip(starts[:-1], starts[1:])]
    return [[engine] * n for n in rows]
