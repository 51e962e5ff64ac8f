"""Small problems whose results `optcert check` re-verifies, and a round trip through JSON."""
from __future__ import annotations

import json

import numpy as np

from optcert.checking.check import check_result
from optcert.result import Result
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem
from tests.builders import random_mlp, random_residual_net


def small_problem(seed: int, combine: Combine = Combine.ALL, shift: float = 0.0, residual: bool = False,
                  sizes=(3, 6, 5, 3), radius: float = 0.5) -> VerificationProblem:
    rng = np.random.default_rng(seed)
    net = random_residual_net(rng, n=3) if residual else random_mlp(rng, list(sizes))
    c = rng.normal(size=net.n_inputs)
    C = rng.normal(size=(2, net.n_outputs))
    case = Case(Box(c - radius, c + radius), LinearSpec(C, np.full(2, shift)), combine)
    return VerificationProblem(net, (case,), name=f"small{seed}")


def provable(seed: int, combine: Combine = Combine.ALL, **kw) -> VerificationProblem:
    """A small problem shifted so that its CROWN bound is +0.05: provable by every relaxation."""
    from optcert.verify import verify

    problem = small_problem(seed, combine, **kw)
    bound = verify(problem, "crown", 30).bound
    return small_problem(seed, combine, shift=0.05 - bound, **kw)


def as_json(result: Result) -> dict:
    return json.loads(result.to_json())


def check(d: dict, problem: VerificationProblem):
    return check_result(Result.from_dict(d), problem)
