"""No bound engine ever PROVES a shared `sat` instance (a counterexample is known to exist), in
either precision."""
from __future__ import annotations

import pytest

from optcert.compiled import compile_problem
from optcert.result import Verdict
from optcert.verify import verify
from tests.builders import instance_params, instances, shared_problem

SAT = [r for fam in ("acasxu", "mnistfc") for r in instances(fam) if r["expected"] == "sat"]


@pytest.mark.parametrize("row", instance_params(SAT))
def test_bound_engines_never_prove_a_sat_instance(row):
    problem = shared_problem(row)
    compiled = compile_problem(problem)
    for engine, options in (("crown", {}), ("crown", {"slope": "parallel", "precision": "float32"}),
                            ("alpha-crown", {"iterations": 10}),
                            ("alpha-crown", {"iterations": 10, "precision": "float32"})):
        result = verify(problem, engine, 60.0, options, compiled=compiled)
        assert result.verdict is Verdict.UNKNOWN, (engine, options, result.bound)
