"""The `sdp` engine: sound against brute force, backends agree, typed errors, shared `sat`
instances never proved (a fast subset; the full set runs in bench/sdp.py)."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.errors import InvalidOptionError
from optcert.result import Verdict
from optcert.spec.problem import Box, Case, LinearSpec, VerificationProblem
from optcert.verify import verify
from tests.builders import instance_params, instances, random_mlp, shared_problem
from tests.oracle import brute_force


def _problem(seed):
    from optcert.compiled import compile_problem

    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [3, 6, 5, 3])
    c = rng.normal(size=3)
    problem = VerificationProblem(net, (Case(Box(c - 0.5, c + 0.5), LinearSpec(rng.normal(size=(2, 3)), np.zeros(2))),))
    cc = compile_problem(problem)[0]
    return problem, [brute_force(cc.net, cc.ibp, (i,)) for i in range(2)]


@pytest.mark.parametrize("seed", range(5))
def test_sdp_bounds_are_sound_and_backends_agree(seed):
    from solvers import available

    problem, truth = _problem(seed)
    results = {}
    for backend in ("scs", "clarabel", "mosek"):
        if not available()[backend].available:
            continue
        r = verify(problem, "sdp", 60, {"backend": backend})
        lower = np.array(r.cases[0].lower)
        assert np.all(lower <= np.array(truth) + 1e-9), (backend, lower, truth)
        assert r.verdict is not Verdict.PROVED or min(truth) > 0
        results[backend] = lower
        for row in r.certificate.get("rows", []):
            assert row["bound"] <= row["primal"] + 1e-4 * (1 + abs(row["primal"]))
    ref = results["clarabel"]
    for lower in results.values():
        assert np.allclose(lower, ref, atol=1e-4, rtol=1e-4)


def test_unknown_backend_is_a_typed_error():
    problem, _ = _problem(0)
    with pytest.raises(InvalidOptionError, match="backend"):
        verify(problem, "sdp", 10, {"backend": "sedumi"})


SAT = [r for r in instances("acasxu") if r["expected"] == "sat"][::16]


@pytest.mark.parametrize("row", instance_params(SAT))
def test_shared_sat_instances_are_never_proved(row):
    problem = shared_problem(row)
    result = verify(problem, "sdp", 8.0)
    assert result.verdict is not Verdict.PROVED
