"""Per-case compilation shared by every engine: the spec folded into the layered network.

For case k, `net` is the `LayeredNet` whose outputs are that case's row margins, `ibp` its
rigorous interval bounds over the case box, and `fold_error` a rigorous per-row bound on what
folding C and d into the last layer changed; engines bound `net`, and `certify` subtracts
`fold_error` before anything is called PROVED.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optcert.bounds.interval import ibp
from optcert.bounds.layer_bounds import Bounds
from optcert.ir.layered import LayeredNet, to_layered
from optcert.spec.problem import Case, VerificationProblem


@dataclass(frozen=True, eq=False)
class CompiledCase:
    index: int
    case: Case
    base: LayeredNet
    net: LayeredNet
    ibp: Bounds
    fold_error: np.ndarray

    @property
    def lo(self) -> np.ndarray:
        return self.case.box.lo

    @property
    def hi(self) -> np.ndarray:
        return self.case.box.hi

    def sound(self, folded_lower: np.ndarray) -> np.ndarray:
        """Lower bounds on the true margins from lower bounds on the folded net's outputs."""
        return np.nextafter(np.asarray(folded_lower, dtype=np.float64) - self.fold_error, -np.inf)


def compile_case(base: LayeredNet, case: Case, index: int = 0) -> CompiledCase:
    net = base.with_spec(case.spec.C, case.spec.d)
    bounds = ibp(net, case.box.lo, case.box.hi)
    out = base.output
    absmax = [bounds.absmax(j) for j in out.sources]
    err = base.fold_error(case.spec.C, case.spec.d, absmax)
    return CompiledCase(index, case, base, net, bounds, err)


def compile_problem(problem: VerificationProblem, base: LayeredNet | None = None) -> list[CompiledCase]:
    """Compile every case of `problem` (the network is put in layered form once)."""
    base = base or to_layered(problem.network)
    return [compile_case(base, case, k) for k, case in enumerate(problem.cases)]
