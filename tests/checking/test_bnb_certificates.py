"""Branch-and-bound proofs re-verify from their stored tree (input and ReLU splits, ALL and ANY
cases, alpha/beta-CROWN multipliers at the nodes), and a changed leaf, split or stored bound is
caught; a tree that misses a branch does not cover the region."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.checking.arrays import pack, unpack
from optcert.checking.report import Status
from optcert.checking.tamper import tampered, targets
from optcert.compiled import compile_problem
from optcert.result import Verdict
from optcert.spec.problem import Combine
from optcert.verify import verify
from tests.checking.helpers import as_json, check, small_problem
from tests.oracle import brute_force


def needs_branching(seed: int, combine: Combine, sizes=(3, 8, 8, 3)):
    """A small problem whose true margin is positive but whose CROWN bound is not."""
    problem = small_problem(seed, combine, sizes=sizes)
    cc = compile_problem(problem)[0]
    rows = [(0, 1)] if combine is Combine.ANY else [(0,), (1,)]
    truth = min(brute_force(cc.net, cc.ibp, r) for r in rows)
    crown = verify(problem, "crown", 30).bound
    return small_problem(seed, combine, shift=-(truth + crown) / 2, sizes=sizes)


CASES = [(seed, combine, split) for seed in (0, 1, 2) for combine in Combine for split in ("input", "relu")]


@pytest.mark.parametrize("seed,combine,split", CASES)
def test_a_bnb_proof_re_verifies_and_tampering_is_caught(seed, combine, split):
    problem = needs_branching(seed, combine)
    result = verify(problem, "bnb", 60, {"split": split, "attack": False})
    assert result.verdict is Verdict.PROVED, result.reason
    d = as_json(result)
    report = check(d, problem)
    assert report.status is Status.VALID, report.summary()
    found = targets(d)
    rng = np.random.default_rng(seed)
    for category in ("leaf", "bound"):
        for t in found[category][:25]:
            assert check(tampered(d, t, rng), problem).status is Status.INVALID, t.describe()
            resealed = check(tampered(d, t, rng, reseal=True), problem).status
            if category == "leaf" and split == "input" and "least_bound" in str(d):
                # a moved bisection point still covers the box: the tree may remain a proof
                assert resealed in (Status.INVALID, Status.UNCHECKABLE, Status.VALID), t.describe()
            else:
                assert resealed is Status.INVALID, t.describe()


def test_a_tree_missing_a_branch_does_not_cover_the_region():
    problem = needs_branching(0, Combine.ALL)
    d = as_json(verify(problem, "bnb", 60, {"split": "input", "attack": False}))
    tree = d["certificate"]["evidence"]["cases"][0]["tree"]
    layer = unpack(tree["layer"])
    assert (layer >= 0).any(), "the proof needed no split"
    first = int(np.flatnonzero(layer >= 0)[-1])          # the last split node: its two children are leaves
    keep = np.r_[np.arange(first + 2), np.arange(first + 3, layer.size)]   # drop its second child
    for key, kind in (("layer", "i4"), ("index", "i4"), ("split", "f8")):
        tree[key] = pack(unpack(tree[key])[keep], kind)
    from optcert.checking.evidence import digest
    from optcert.result import Result

    d["certificate"]["evidence"]["sha256"] = digest(Result.from_dict(d).certificate["evidence"])
    report = check(d, problem)
    assert report.status is Status.INVALID and "cover" in report.summary()


@pytest.mark.parametrize("combine", list(Combine))
def test_exact_lp_leaves_and_their_emptiness_proofs_re_verify(combine):
    """CROWN bounding without betas on a one-hidden-layer net leaves linear regions to exact LPs, many
    of them infeasible: their phase-1 duals prove them empty to the checker."""
    problem = needs_branching(4, combine, sizes=(3, 6, 3))
    result = verify(problem, "bnb", 60, {"split": "relu", "attack": False, "bounding": "crown"})
    assert result.verdict is Verdict.PROVED and result.certificate["cases"][0]["leaf_lps"] > 0
    d = as_json(result)
    tree = d["certificate"]["evidence"]["cases"][0]["tree"]
    assert (unpack(tree["items"]["row"]) == -2).any(), "no emptiness proof was stored"
    assert check(d, problem).status is Status.VALID
    rng = np.random.default_rng(0)
    for t in targets(d)["bound"]:
        assert check(tampered(d, t, rng, reseal=True), problem).status is Status.INVALID, t.describe()


def test_lp_bounding_is_marked_not_re_checkable():
    problem = needs_branching(1, Combine.ALL)
    result = verify(problem, "bnb", 60, {"bounding": "lp", "split": "relu", "attack": False})
    if result.verdict is Verdict.PROVED:
        assert check(as_json(result), problem).status is Status.UNCHECKABLE


@pytest.mark.parametrize("combine", list(Combine))
@pytest.mark.parametrize("seed", (5, 6))
def test_input_split_alpha_leaves_re_verify(seed, combine):
    """Input splitting with alpha-CROWN from the first bisection on (`input_alpha=1`): domains it
    proves end as leaves whose best multipliers are tree items; the checker re-derives them over
    its own bounds and finds the proof VALID."""
    problem = needs_branching(seed, combine)
    result = verify(problem, "bnb", 60, {"split": "input", "attack": False, "input_alpha": 1})
    assert result.verdict is Verdict.PROVED, result.reason
    stats = result.certificate["cases"][0]
    assert stats["alpha_leaves"] > 0
    d = as_json(result)
    tree = d["certificate"]["evidence"]["cases"][0]["tree"]
    assert unpack(tree["items"]["node"]).size >= stats["alpha_leaves"]
    report = check(d, problem)
    assert report.status is Status.VALID, report.summary()
