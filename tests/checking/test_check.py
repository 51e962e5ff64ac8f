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
    """An edited number breaks the evidence's digest; an adversary who recomputes the digest is
    caught by re-deriving the numbers, unless the changed multiplier still proves exactly the same
    bounds (a flat direction of the dual function: the certificate is then still a proof)."""
    problem = provable(1, Combine.ANY if engine == "lp" else Combine.ALL)
    d = as_json(verify(problem, engine, 30))
    assert check(d, problem).status is Status.VALID
    found = targets(d)
    assert found["multiplier"] and found["bound"]
    rng = np.random.default_rng(0)
    for category in ("multiplier", "bound"):
        caught = 0
        for t in found[category]:
            naive = check(tampered(d, t, rng), problem)
            assert naive.status is Status.INVALID, t.describe()
            assert naive.first_failure.name == "evidence integrity" or t.path[0] != "certificate", t.describe()
            adversarial = check(tampered(d, t, rng, reseal=True), problem)
            assert adversarial.status in (Status.INVALID, Status.VALID), t.describe()
            caught += adversarial.status is Status.INVALID
        assert caught == len(found[category]) if category == "bound" else caught >= 0.6 * len(found[category])


def test_a_changed_counterexample_coordinate_is_caught():
    problem = small_problem(4, shift=-1.0)
    result = verify(problem, "attack", 30)
    assert result.verdict is Verdict.FALSIFIED
    d = as_json(result)
    assert check(d, problem).status is Status.VALID
    rng = np.random.default_rng(1)
    for t in targets(d)["counterexample"]:
        report = check(tampered(d, t, rng, reseal=True), problem)
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
