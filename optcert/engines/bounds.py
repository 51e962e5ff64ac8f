"""Bound-propagation engines: `interval` (IBP, numpy float64 with outward rounding)."""
from __future__ import annotations

from dataclasses import dataclass

from ..certify import EngineOutput
from ..compiled import CompiledCase
from ..spec import VerificationProblem


@dataclass(frozen=True)
class IntervalOptions:
    """IBP has no settings; the bound is rigorous (see bounds/interval.py)."""


def run_interval(problem: VerificationProblem, compiled: list[CompiledCase], options: IntervalOptions,
                 deadline: float) -> EngineOutput:
    """Certified per-row lower bounds from IBP over each case box (already computed at compile)."""
    return EngineOutput(lower=[cc.ibp.lower[-1] for cc in compiled],
                        certificate={"method": "IBP, float64, outward-rounded (Higham γ_n error bounds)"})
