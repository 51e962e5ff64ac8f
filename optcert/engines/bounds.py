"""Bound-propagation engines: `interval` (IBP), `crown` and `alpha-crown` (torch, any device).

Each answers PROVED (certified lower bound > 0 on every case) or UNKNOWN; none can falsify.
Each stores its evidence for `optcert check` (optcert.checking.evidence): IBP rows are re-derived
by the checker's own interval propagation; CROWN and alpha-CROWN rows carry the multipliers ν of
the backward pass that gave them (the intermediate bounds are re-derived by the checker's CROWN).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optcert.bounds.crown import LowerSlope
from optcert.bounds.methods import BoundSettings
from optcert.certify import EngineOutput
from optcert.checking.evidence import case_entry, dual_items, evidence, simple_item
from optcert.compiled import CompiledCase
from optcert.precision import Precision
from optcert.spec.problem import VerificationProblem

_SOUNDNESS = ("dual re-evaluation of the backward pass with a-priori rounding-error bounds "
              "(γ_N of the compute precision), stepped one ulp down")


@dataclass(frozen=True)
class IntervalOptions:
    """IBP has no settings; the bound is rigorous (see bounds/interval.py)."""


@dataclass(frozen=True)
class CrownOptions:
    """CROWN (adaptive lower slope) or Fast-Lin (`slope=parallel`) on `device` in `precision`."""

    slope: LowerSlope = LowerSlope.ADAPTIVE   # lower ReLU slope: adaptive (CROWN) or parallel (Fast-Lin)
    device: str = "cpu"
    precision: Precision = Precision.FLOAT64

    def __post_init__(self):
        BoundSettings(self.device, self.precision)


@dataclass(frozen=True)
class AlphaCrownOptions:
    """alpha-CROWN: `iterations` projected-Adam steps of step size `lr` on the output slopes."""

    iterations: int = 20   # projected-Adam steps on the output layer's lower slopes
    lr: float = 0.1        # Adam step size
    device: str = "cpu"
    precision: Precision = Precision.FLOAT64

    def __post_init__(self):
        BoundSettings(self.device, self.precision, self.iterations, self.lr)


def run_interval(problem: VerificationProblem, compiled: list[CompiledCase], options: IntervalOptions,
                 deadline: float) -> EngineOutput:
    """Certified per-row lower bounds from IBP over each case box (already computed at compile)."""
    cases = [case_entry(cc.index, [simple_item("ibp", v) for v in cc.sound(cc.ibp.lower[-1])]) for cc in compiled]
    return EngineOutput(lower=[cc.ibp.lower[-1] for cc in compiled],
                        certificate={"method": "IBP, float64, outward-rounded (Higham γ_n error bounds)",
                                     "evidence": evidence("ibp", cases)})


def run_crown(problem: VerificationProblem, compiled: list[CompiledCase], options: CrownOptions,
              deadline: float) -> EngineOutput:
    return _run(compiled, options.slope, BoundSettings(options.device, options.precision), None, deadline)


def run_alpha_crown(problem: VerificationProblem, compiled: list[CompiledCase], options: AlphaCrownOptions,
                    deadline: float) -> EngineOutput:
    settings = BoundSettings(options.device, options.precision, options.iterations, options.lr)
    return _run(compiled, LowerSlope.ADAPTIVE, settings, (options.iterations, options.lr), deadline)


def _run(compiled: list[CompiledCase], slope: LowerSlope, settings: BoundSettings,
         alpha: tuple[int, float] | None, deadline: float) -> EngineOutput:
    """Bound each case's folded net over its box (IBP given), stopping at the deadline."""
    import time

    from optcert.engines.bound_passes import case_pass

    lower = [cc.ibp.lower[-1] for cc in compiled]
    entries = [case_entry(cc.index, [simple_item("ibp", v) for v in cc.sound(cc.ibp.lower[-1])]) for cc in compiled]
    reason = ""
    for cc in compiled:
        if time.monotonic() > deadline:
            reason = "time limit reached before every case was bounded"
            break
        result = case_pass(cc.net, cc.ibp, slope, settings.device, settings.precision, alpha, deadline)
        entries[cc.index] = _entry(cc, result)
        lower[cc.index] = np.maximum(np.maximum(result.lower, cc.ibp.lower[-1]), _stated(cc, entries[cc.index]))
    name = "fastlin" if slope is LowerSlope.PARALLEL else ("alpha-crown" if alpha else "crown")
    recipe = "fastlin" if slope is LowerSlope.PARALLEL else "crown-unstable"
    return EngineOutput(lower=lower, reason=reason, timed_out=bool(reason),
                        certificate={"method": name, "precision": settings.precision.value,
                                     "device": settings.device, "soundness": _SOUNDNESS,
                                     "alpha_iterations": alpha[0] if alpha else 0,
                                     "evidence": evidence(recipe, entries)})


def _stated(cc: CompiledCase, entry: dict) -> np.ndarray:
    """The folded-output bounds the evidence states (its items' bounds with the fold error put
    back): the float64 re-evaluation of the pass's ν, never below a float32 pass's own bound."""
    return np.array([item["bound"] for item in entry["rows"]]) + cc.fold_error


def _entry(cc: CompiledCase, result) -> dict:
    """Per row: the dual item of the pass, or IBP's where IBP was better."""
    spec = cc.case.spec
    items = dual_items(cc.base, list(result.inner.lower), list(result.inner.upper), spec.C, spec.d,
                       result.nus, np.eye(spec.rows))
    ibp_rows = cc.sound(cc.ibp.lower[-1])
    rows = [simple_item("ibp", ibp_rows[i]) if cc.ibp.lower[-1][i] > result.lower[i] else item
            for i, item in enumerate(items)]
    return case_entry(cc.index, rows)
