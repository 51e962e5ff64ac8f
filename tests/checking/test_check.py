"""`optcert check` re-verifies every engine's result from its stored evidence, and catches one
changed number: a multiplier, a stated bound, a counterexample coordinate."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.checking.report import Status
from optcert.checking.tamper import tampered, targets
from optcert.result import Verdict
from optcert.spec.problem import Combine
from optcert.verify import verify
from tests.checking.helpers import as_json, check, provable, small_problem

ENGINES = [("interval", {}), ("crown", {}), ("crown", {"slope": "parallel"}), ("alpha-crown", {}),
           ("lp", {}), ("milp", {"bounds": "crown", "attack": False})]


@pytest.mark.parametrize("engine,options", ENGINES, ids=[f"{e}{o}" for e, o in ENGINES])
@pytest.mark.parametrize("combine", list(Combine))
def test_every_engine_result_re_verifies(engine, options, combine):
    for seed in range(3):
        problem = provable(seed, combine, residual=seed == 2)
        result = verify(problem, engine, 30, options)
        report = check(as_json(result), problem)
        expected = Status.UNCHECKABLE if engine == "milp" and result.verdict is Verdict.PROVED and \
            report.status is not Status.VALID else Status.VALID
        assert report.status is expected, (seed, report.summary())


@pytest.mark.parametrize("engine", ["crown", "alpha-crown", "lp"])
def test_changing_any_multiplier_or_bound_is_caught(engine):
    problem = provable(1, Combine.ANY if engine == "lp" else Combine.ALL)
    d = as_json(verify(problem, engine, 30))
    assert check(d, problem).status is Status.VALID
    found = targets(d)
    assert found["multiplier"] and found["bound"]
    rng = np.random.default_rng(0)
    for category in ("multiplier", "bound"):
        for t in found[category]:
            report = check(tampered(d, t, rng), problem)
            assert report.status is Status.INVALID, (t.describe(), report.summary())


def test_a_changed_counterexample_coordinate_is_caught():
    problem = small_problem(4, shift=-1.0)
    result = verify(problem, "attack", 30)
    assert result.verdict is Verdict.FALSIFIED
    d = as_json(result)
    assert check(d, problem).status is Status.VALID
    rng = np.random.default_rng(1)
    for t in targets(d)["counterexample"]:
        report = check(tampered(d, t, rng), problem)
        assert report.status is Status.INVALID and "counterexample" in report.first_failure.name, t.describe()


def test_a_proof_claimed_without_a_positive_bound_is_invalid():
    problem = small_problem(0)
    d = as_json(verify(problem, "crown", 30))
    assert d["verdict"] == "unknown"
    d["verdict"] = "proved"
    report = check(d, problem)
    assert report.status is Status.INVALID and "proved" in report.first_failure.name


def test_a_result_for_another_property_is_invalid():
    problem = provable(0)
    d = as_json(verify(problem, "crown", 30))
    other = small_problem(0, shift=0.3)
    assert check(d, other).status is Status.INVALID


def test_without_evidence_a_proof_is_uncheckable():
    problem = provable(0)
    d = as_json(verify(problem, "crown", 30))
    del d["certificate"]["evidence"]
    assert check(d, problem).status is Status.UNCHECKABLE
