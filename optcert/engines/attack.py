"""The `attack` engine: PGD only. It can falsify, never prove."""
from __future__ import annotations

import numpy as np

from optcert.certify import EngineOutput, check_counterexample
from optcert.compiled import CompiledCase
from optcert.search.attack import AttackOptions, pgd_case
from optcert.spec.problem import VerificationProblem


def run_attack(problem: VerificationProblem, compiled: list[CompiledCase], options: AttackOptions,
               deadline: float) -> EngineOutput:
    """Attack every case; stop at the first re-checked counterexample unless `every_clause`."""
    candidates = []
    for cc in compiled:
        for found in pgd_case(cc, options, deadline):
            candidates.append((cc.index, found.x))
            if not options.every_clause and check_counterexample(problem, cc, found.x):
                return _output(compiled, candidates, "")
    return _output(compiled, candidates, "PGD found no counterexample (attack engine cannot prove)")


def _output(compiled, candidates, reason: str) -> EngineOutput:
    lower = [np.full(cc.case.spec.rows, -np.inf) for cc in compiled]
    return EngineOutput(lower=lower, candidates=candidates, reason=reason)
