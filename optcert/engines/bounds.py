"""Bound-propagation engines: `interval` (IBP), `crown` and `alpha-crown` (torch, any device).

Each answers PROVED (certified lower bound > 0 on every case) or UNKNOWN; none can falsify.
"""
from __future__ import annotations

from dataclasses import dataclass

from optcert.bounds.crown import LowerSlope, Neurons
from optcert.bounds.methods import BoundMethod, BoundSettings, compute_bounds
from optcert.certify import EngineOutput
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
    return EngineOutput(lower=[cc.ibp.lower[-1] for cc in compiled],
                        certificate={"method": "IBP, float64, outward-rounded (Higham γ_n error bounds)"})


def run_crown(problem: VerificationProblem, compiled: list[CompiledCase], options: CrownOptions,
              deadline: float) -> EngineOutput:
    method = BoundMethod.FASTLIN if options.slope is LowerSlope.PARALLEL else BoundMethod.CROWN
    return _run(compiled, method, BoundSettings(options.device, options.precision, neurons=Neurons.UNSTABLE),
                deadline)


def run_alpha_crown(problem: VerificationProblem, compiled: list[CompiledCase], options: AlphaCrownOptions,
                    deadline: float) -> EngineOutput:
    settings = BoundSettings(options.device, options.precision, options.iterations, options.lr, Neurons.UNSTABLE)
    return _run(compiled, BoundMethod.ALPHA_CROWN, settings, deadline)


def _run(compiled: list[CompiledCase], method: BoundMethod, settings: BoundSettings,
         deadline: float) -> EngineOutput:
    """Bound each case's folded net over its box (IBP given), stopping at the deadline."""
    import time

    lower = [cc.ibp.lower[-1] for cc in compiled]
    reason = ""
    for cc in compiled:
        if time.monotonic() > deadline:
            reason = "time limit reached before every case was bounded"
            break
        lower[cc.index] = compute_bounds(cc.net, [cc.ibp], method, settings, deadline)[0].lower[-1]
    return EngineOutput(lower=lower, reason=reason, timed_out=bool(reason),
                        certificate={"method": method.value, "precision": settings.precision.value,
                                     "device": settings.device, "soundness": _SOUNDNESS,
                                     "alpha_iterations": settings.iterations
                                     if method is BoundMethod.ALPHA_CROWN else 0})
