"""LP and MILP engines: `lp` (triangle relaxation, certified from duals) and `milp` (exact big-M).

Both tighten the intermediate bounds first (`bounds/progressive.py`), then solve one problem per
violation clause: a row of an ALL case, or the epigraph min max_i m_i of an ANY case.
`milp` runs PGD first, stops at the first re-checked counterexample, and stops proving a case
as soon as one of its clauses is undecided; its proofs are solver-trusted (see linear_solve.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from optcert.certify import EngineOutput, check_counterexample
from optcert.compiled import CompiledCase
from optcert.engines.common import decided, empty_output, tightened
from optcert.engines.lp_evidence import LinearEvidence
from optcert.errors import InvalidOptionError
from optcert.lowerings import Objective, lower_lp, lower_milp
from optcert.search.attack import AttackOptions, pgd_case
from optcert.solve.linear import Trust, solve_bound
from optcert.solve.progressive import Tightening
from optcert.spec.problem import VerificationProblem


def native(pairs: tuple[str, ...]) -> dict:
    """("name=value", …) → {name: value} with ints, floats and true/false recognised; the backend
    itself rejects names it does not know (InvalidOptionError)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidOptionError(f"option 'raw': {pair!r} is not NAME=VALUE")
        name, text = (part.strip() for part in pair.split("=", 1))
        out[name] = _native_value(text)
    return out


def _native_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _check(backend: str, tolerance: float = 0.0) -> None:
    from solvers import names

    if backend not in names():
        raise InvalidOptionError(f"option 'backend': unknown solver {backend!r}; known: {', '.join(names())}")
    if not (0 <= tolerance < 1):
        raise InvalidOptionError(f"option 'tolerance' must be in [0, 1), got {tolerance}")


#: Sign-only MILPs (not `exact`) ask the solver for solutions below this margin only: a proof
#: then says min ≥ SIGN_CUTOFF − tolerance (> 0), and nodes above it are pruned (≈20× faster).
SIGN_CUTOFF = 1e-4


@dataclass(frozen=True)
class LpOptions:
    """`bounds`: intermediate-bound tightening before the LP (`lp-all` = Salman et al.'s LP-ALL);
    `raw`: native solver parameters as NAME=VALUE (e.g. `-o raw=presolve=off,threads=1`)."""

    bounds: Tightening = Tightening.CROWN
    backend: str = "highs"
    raw: tuple[str, ...] = ()

    def __post_init__(self):
        _check(self.backend)
        native(self.raw)


@dataclass(frozen=True)
class MilpOptions:
    """`bounds`: tightening before the MILP; `neuron_time_limit` caps each per-neuron solve;
    `tolerance`: relative allowance subtracted from the solver's proven bound; `attack`: PGD first;
    `exact`: solve every clause to optimality (the exact worst-case margin) instead of stopping
    once the verdict is known; `raw`: native solver parameters as NAME=VALUE."""

    bounds: Tightening = Tightening.LP
    backend: str = "highs"
    neuron_time_limit: float = 2.0
    layer_time_limit: float | None = None   # seconds of per-neuron solves per layer, loosest neurons first (None: all)
    tolerance: float = 1e-6
    attack: bool = True
    exact: bool = False
    raw: tuple[str, ...] = ()

    def __post_init__(self):
        _check(self.backend, self.tolerance)
        native(self.raw)
        if not self.neuron_time_limit > 0:
            raise InvalidOptionError(f"option 'neuron_time_limit' must be positive, got {self.neuron_time_limit}")
        if self.layer_time_limit is not None and not self.layer_time_limit >= 0:
            raise InvalidOptionError(f"option 'layer_time_limit' must be ≥ 0, got {self.layer_time_limit}")


def run_lp(problem: VerificationProblem, compiled: list[CompiledCase], options: LpOptions,
           deadline: float) -> EngineOutput:
    """Certified LP-triangle bound per clause; the LP's optimal inputs are candidates (upper bounds)."""
    out = empty_output(compiled, {"method": "LP triangle (Ehlers 2017)", "backend": options.backend})
    evidence = LinearEvidence(compiled)
    for cc in compiled:
        if time.monotonic() > deadline:
            out.reason, out.timed_out = "time limit reached before every case was bounded", True
            break
        bounds = tightened(cc, options.bounds, options.backend, deadline, out.certificate, raw=native(options.raw))
        out.lower[cc.index] = np.maximum(out.lower[cc.index], bounds.lower[-1])
        evidence.start(cc, bounds, options.bounds.value)
        for clause in cc.case.clauses():
            lowered = lower_lp(cc.net, bounds, Objective(clause))
            result = solve_bound(lowered.form, options.backend, deadline=deadline, raw=native(options.raw))
            _record(out, cc, clause, result, lowered)
            if result.trust is Trust.RIGOROUS:
                evidence.lp(cc, clause, lowered, result.solution.row_duals, out)
    out.certificate["evidence"] = evidence.section()
    return out


def run_milp(problem: VerificationProblem, compiled: list[CompiledCase], options: MilpOptions,
             deadline: float) -> EngineOutput:
    """Exact big-M MILP per clause (Tjeng et al. 2019) after PGD and progressive tightening."""
    out = empty_output(compiled, {"method": "MILP big-M (Tjeng et al. 2019)", "backend": options.backend,
                            "trust": "solver", "tolerance": options.tolerance})
    evidence = LinearEvidence(compiled)
    out.certificate["evidence"] = evidence.section()
    if options.attack and _attack(problem, compiled, out, deadline) and not options.exact:
        return out
    for cc in compiled:
        bounds = tightened(cc, options.bounds, options.backend, deadline, out.certificate,
                           options.neuron_time_limit, native(options.raw), options.layer_time_limit)
        out.lower[cc.index] = np.maximum(out.lower[cc.index], bounds.lower[-1])
        evidence.start(cc, bounds, options.bounds.value)
        for clause in cc.case.clauses():
            if time.monotonic() > deadline:
                out.reason, out.timed_out = "time limit reached", True
                return out
            if not options.exact and decided(out, cc, clause):
                continue
            lowered = lower_milp(cc.net, bounds, Objective(clause))
            result = solve_bound(lowered.form, options.backend, deadline=deadline, tolerance=options.tolerance,
                                 raw=native(options.raw), cutoff=None if options.exact else SIGN_CUTOFF)
            x = _record(out, cc, clause, result, lowered)
            if result.trust is Trust.SOLVER and result.value > -math.inf:
                evidence.solver(cc, clause, result.value, options.backend)
            if x is not None and not options.exact and check_counterexample(problem, cc, x):
                return out
            if not options.exact and result.value <= 0:
                break  # this case cannot be proved; a later case may still be falsified
    return out


def _attack(problem, compiled, out: EngineOutput, deadline: float) -> bool:
    """PGD on every case (a quarter of the time at most); True if a counterexample re-checks."""
    stop = time.monotonic() + (deadline - time.monotonic()) / 4 if math.isfinite(deadline) else math.inf
    for cc in compiled:
        for found in pgd_case(cc, AttackOptions(), stop):
            out.candidates.append((cc.index, found.x))
            if check_counterexample(problem, cc, found.x):
                return True
    return False


def _record(out: EngineOutput, cc: CompiledCase, clause, result, lowered) -> np.ndarray | None:
    """Fold one solve into the output; returns the solution's input (a candidate) if any."""
    out.certificate.setdefault("solves", []).append({"case": cc.index, "clause": list(clause), **result.summary()})
    if result.trust is Trust.SOLVER:
        out.certificate["trust"] = "solver"
    if math.isfinite(result.value) or result.value == math.inf:
        if len(clause) == 1:
            out.lower[cc.index][clause[0]] = max(out.lower[cc.index][clause[0]], result.value)
        else:
            assert out.case_lower is not None
            current = out.case_lower[cc.index]
            out.case_lower[cc.index] = result.value if current is None else max(current, result.value)
    x = result.solution.x
    if x is None:
        return None
    x = lowered.read(x)
    out.candidates.append((cc.index, x))
    return x
