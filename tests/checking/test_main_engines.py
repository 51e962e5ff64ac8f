"""`optcert check` on the engines main added: `auto` (the deciding arm's evidence: a search tree is
re-derived, a MILP proof is UNCHECKABLE), `lipschitz` (PROVED rests on the engine's spectral norms:
UNCHECKABLE, with the reason) and `smoothing` (never PROVED: nothing beyond a counterexample); the
batched input-split search's tree (least stated bounds). A changed number is caught in each."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.checking.report import Status
from optcert.checking.tamper import tampered, targets
from optcert.result import Verdict
from optcert.spec.problem import Combine
from optcert.verify import verify
from tests.checking.helpers import as_json, check, small_problem


def _branching(seed: int, combine: Combine):
    """A small problem CROWN does not prove but a short search does (margin just above CROWN's)."""
    crown = verify(small_problem(seed, combine), "crown", 30).bound
    return small_problem(seed, combine, shift=0.3 - crown)


def _caught(d: dict, problem, category: str, count: int = 8) -> None:
    rng = np.random.default_rng(0)
    for t in targets(d)[category][:count]:
        assert check(tampered(d, t, rng), problem).status is Status.INVALID, t.describe()
        assert check(tampered(d, t, rng, reseal=True), problem).status is Status.INVALID, t.describe()


@pytest.mark.parametrize("method", ["relu", "input"])
@pytest.mark.parametrize("combine", list(Combine))
def test_auto_search_proofs_re_verify(method, combine):
    problem = _branching(1, combine)
    result = verify(problem, "auto", 30, {"method": method})
    assert result.verdict is Verdict.PROVED, result.reason
    d = as_json(result)
    assert d["certificate"]["decided_by"] == [method]
    assert check(d, problem).status is Status.VALID, check(d, problem).summary()
    _caught(d, problem, "bound")


def test_an_auto_milp_proof_is_uncheckable():
    problem = _branching(0, Combine.ALL)
    d = as_json(verify(problem, "auto", 30, {"method": "milp"}))
    report = check(d, problem)
    assert report.status is Status.UNCHECKABLE and "MILP" in report.summary()
    _caught(d, problem, "bound", 4)


def test_the_batched_input_split_tree_re_verifies():
    problem = _branching(2, Combine.ALL)
    d = as_json(verify(problem, "bnb", 30, {"split": "input", "attack": False}))
    assert d["verdict"] == "proved"
    tree = d["certificate"]["evidence"]["cases"][0]["tree"]
    assert tree["stated"] == "least" and "values_at_leaves" not in tree
    assert check(d, problem).status is Status.VALID, check(d, problem).summary()
    _caught(d, problem, "bound")


def test_a_lipschitz_proof_is_uncheckable_and_its_bounds_are_sealed():
    problem = small_problem(0, shift=50.0, radius=0.01)
    d = as_json(verify(problem, "lipschitz", 10))
    assert d["verdict"] == "proved"
    report = check(d, problem)
    assert report.status is Status.UNCHECKABLE and "spectral norms" in report.summary()
    _caught(d, problem, "bound", 4)


def test_smoothing_claims_nothing_to_re_derive():
    problem = small_problem(0)
    d = as_json(verify(problem, "smoothing", 10, {"n": 100, "n0": 10}))
    assert d["verdict"] != "proved"
    assert check(d, problem).status is Status.VALID


@pytest.mark.parametrize("engine", ["auto", "bnb"])
def test_without_a_recorded_tree_a_proof_is_uncheckable(engine):
    problem = _branching(1, Combine.ALL)
    options = {"evidence": False, "method": "relu"} if engine == "auto" else {"evidence": False, "attack": False}
    d = as_json(verify(problem, engine, 30, options))
    assert d["verdict"] == "proved"
    report = check(d, problem)
    assert report.status is Status.UNCHECKABLE and "evidence=false" in report.summary()
