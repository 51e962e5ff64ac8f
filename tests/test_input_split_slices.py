"""The batched input-split search advanced in time slices (as the `auto` portfolio runs it) takes
exactly the steps of one run; `auto`'s input arm is that search and decides what `bnb` decides."""
from __future__ import annotations

import math

import numpy as np
import pytest

from optcert.compiled import compile_problem
from optcert.result import Verdict
from optcert.search.box_bounding import Mode
from optcert.search.input_split import InputSplitSearch, InputSplitSettings
from optcert.verify import verify
from tests.builders import instances, shared_problem
from tests.engines.test_auto import _small_input_problem
from tests.test_bnb import CASES, _check, _problem, _truth


def _search(problem, batch: int, mode: Mode | None = None) -> InputSplitSearch:
    cc = compile_problem(problem)[0]

    def check(x: np.ndarray) -> bool:
        margins = cc.case.spec.margins(problem.network.forward(cc.case.box.clip(x)[None])[0])
        return bool(cc.case.case_margin(margins) < 0)

    return InputSplitSearch(cc, check, InputSplitSettings(batch=batch, mode=mode), math.inf)


# near ties that need several batches of two domains either side of the truth
SLICED = [CASES[2], CASES[3], CASES[5], CASES[8]]


@pytest.mark.parametrize("mode", [None, Mode.CROWN])
@pytest.mark.parametrize("delta", [-0.002, 0.002])
@pytest.mark.parametrize("seed,sizes,combine", SLICED)
def test_sliced_search_ends_exactly_as_one_run(seed, sizes, combine, delta, mode):
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth + delta)
    whole = _search(problem, 2, mode).run()
    sliced = _search(problem, 2, mode)
    status, calls = sliced.start(), 1
    while status is None:
        status = sliced.advance(until=-math.inf)      # a slice already over: exactly one batch
        calls += 1
        assert sliced.busy > 0 and 0.0 <= sliced.closed <= 1.0 + 1e-12
        assert sliced.projected() >= 0
    part = sliced.result()
    assert status == whole.status == ("proved" if delta > 0 else "falsified")
    assert calls == part.stats["batches"] + 1 > 2, "the problem needs several batches"
    for key in ("nodes", "batches", "pruned", "max_depth", "open"):
        assert part.stats[key] == whole.stats[key], key
    np.testing.assert_array_equal(part.rows, whole.rows)
    assert part.key == whole.key
    if delta < 0:
        np.testing.assert_array_equal(part.counterexample, whole.counterexample)
    else:
        assert math.isclose(sliced.closed, 1.0) and sliced.projected() == 0.0


def test_paused_search_reports_a_valid_floor():
    """Mid-search the result is the floor over closed and open domains, never above the truth."""
    seed, sizes, combine = CASES[3]
    truth = _truth(seed, sizes, combine)
    search = _search(_problem(seed, sizes, combine, shift=-truth + 0.002), 2)
    assert search.start() is None
    for _ in range(20):
        assert search.advance(until=-math.inf) is None
    part = search.result()
    assert part.status == "timeout" and part.stats["open"] > 0 and part.stats["batches"] == 20
    assert part.key <= 0.002 + 1e-9 and 0 < search.closed < 1


@pytest.mark.parametrize("delta", [-0.02, 0.02])
@pytest.mark.parametrize("seed,sizes,combine", CASES[1::3])
def test_auto_input_arm_agrees_with_bnb(seed, sizes, combine, delta):
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth + delta)
    auto = verify(problem, "auto", 60, {"method": "input"})
    bnb = verify(problem, "bnb", 60, {"split": "input"})
    _check(auto, delta)
    assert auto.verdict is bnb.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED)
    case = auto.certificate["cases"][0]
    if case["decided_by"] == "input":
        assert case["arms"]["input"]["split"] == "input (batched)"


@pytest.mark.parametrize("seed", [2, 5])
def test_auto_decides_small_input_nets_as_bnb_does(seed):
    problem = _small_input_problem(seed)
    auto = verify(problem, "auto", 60)
    bnb = verify(problem, "bnb", 60, {"split": "input"})
    assert auto.verdict is bnb.verdict is not Verdict.UNKNOWN, (auto.reason, bnb.reason)
    case = auto.certificate["cases"][0]
    if case["decided_by"] == "input":
        assert case["arms"]["input"]["split"] == "input (batched)"


ACAS = ["ACASXU_run2a_1_1_batch_2000-prop_3", "ACASXU_run2a_1_9_batch_2000-prop_4",
        "ACASXU_run2a_1_5_batch_2000-prop_2"]


@pytest.mark.parametrize("name", ACAS)
def test_auto_decides_acasxu_as_bnb_does(name):
    rows = [r for r in instances("acasxu") if r["instance"] == name]
    if not rows:
        pytest.skip("shared ACAS Xu benchmarks absent")
    expected = {"unsat": Verdict.PROVED, "sat": Verdict.FALSIFIED}[rows[0]["expected"]]
    problem = shared_problem(rows[0])
    assert verify(problem, "auto", 60).verdict is expected
    assert verify(problem, "bnb", 60).verdict is expected


def test_first_batch_is_sized_by_the_roots_pace():
    """A search started close to its deadline does not split a full batch at once: the root's
    bounding time sizes the first batch (an unsized first batch overran the time limit by seconds
    under load)."""
    import time

    seed, sizes, combine = CASES[2]
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth - 0.002)
    search = _search(problem, 10 ** 6)
    search.start()
    assert search.rate > 0
    search.deadline = time.monotonic() + 1000 * search.rate
    assert 0 < search._affordable(search.rate) < 10 ** 6
