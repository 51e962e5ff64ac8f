"""The input-split search's choice of dimension (search/input_split.py): the two candidates, the
look-ahead's pick, every rule complete and sound against brute force, and the ACAS Xu instance on
which smear alone stalls."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.result import Verdict
from optcert.search.branching import MIN_RELATIVE_WIDTH
from optcert.search.input_branching import InputRule, candidate_dims, choose
from optcert.verify import verify
from tests.test_bnb import CASES, _acas, _check, _problem, _truth


def test_candidates_are_the_largest_smear_and_the_balanced_score():
    smear = np.array([[10.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    relative = np.array([[1e-3, 1.0, 0.5], [0.25, 0.5, 0.125]])
    dims = candidate_dims(smear, relative)
    assert dims[0].tolist() == [0, 1]     # sqrt(1 · 1e-3) < sqrt(0.1 · 1)
    assert dims[1].tolist() == [1, 1]     # no smear: the widest relative dimension, both candidates


def test_dimensions_too_narrow_to_bisect_are_never_chosen():
    smear = np.array([[10.0, 1.0], [5.0, 5.0]])
    relative = np.array([[MIN_RELATIVE_WIDTH / 2, 0.5], [MIN_RELATIVE_WIDTH / 2, MIN_RELATIVE_WIDTH]])
    dims = candidate_dims(smear, relative)
    assert dims[0].tolist() == [1, 1]
    assert dims[1].tolist() == [-1, -1]


def test_lookahead_keeps_the_split_whose_worse_child_is_better():
    # 3 domains, the 1st and 3rd with a second candidate (alt); children: left halves then right halves
    k, alt = 3, np.array([0, 2])
    left = np.array([0.1, -1.0, -2.0, 0.5, -3.0])    # splits: d0, d1, d2, d0', d2'
    right = np.array([-0.5, 0.0, 1.0, 0.2, 5.0])
    chosen = choose(np.concatenate([left, right]), k, alt)
    assert chosen.tolist() == [3, 1, 2]    # d0' (worse child 0.2 > −0.5); d2 (−2 > −3)


@pytest.mark.parametrize("search", [{"input_branching": r.value} for r in InputRule] + [{"input_alpha": 1}],
                         ids=[r.value for r in InputRule] + ["alpha-leaves"])
@pytest.mark.parametrize("delta", [-0.002, 0.002])
@pytest.mark.parametrize("seed,sizes,combine", CASES[1::3])
def test_every_rule_is_complete_and_sound_on_near_ties(seed, sizes, combine, delta, search):
    """Each branching rule, and alpha-CROWN on every domain after the first bisection
    (`input_alpha=1`): never a wrong verdict against brute force, and complete."""
    truth = _truth(seed, sizes, combine)
    result = verify(_problem(seed, sizes, combine, shift=-truth + delta), "bnb", 60,
                    {"split": "input", "attack": False, **search})
    _check(result, delta)
    assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason


@pytest.mark.parametrize("rule", ["lookahead", "balanced"])
def test_acasxu_3_5_prop_1_is_proved_where_smear_stalls(rule):
    """Smear never halves the fifth input below half its width here and times out
    (bench/results/input_branching.md); the balanced candidate proves it in a few hundred domains."""
    _, problem = _acas("ACASXU_run2a_3_5_batch_2000-prop_1")
    result = verify(problem, "bnb", 60, {"split": "input", "attack": False, "input_branching": rule})
    assert result.verdict is Verdict.PROVED, result.reason

