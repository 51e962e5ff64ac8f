"""`auto` portfolio: its choices (plan, the measured keep rule, slices), its time accounting
(deadline arithmetic, the budget from process start, wall-clock budgets kept with a generous
tolerance), soundness against brute force, the issue's small-input nets, and shared instances."""
from __future__ import annotations

import itertools
import math
import time
import types

import numpy as np
import pytest

from optcert.engines.auto import (
    INPUT_FIRST,
    MILP_MAX_UNSTABLE,
    Method,
    Shape,
    plan,
    prior_weights,
    slices,
    weights,
)
from optcert.errors import InvalidOptionError
from optcert.result import Verdict
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem
from optcert.verify import verify
from tests.builders import instances, random_mlp, shared_problem
from tests.test_bnb import CASES, _check, _problem, _truth


# ---- decision logic ---------------------------------------------------------------------------------
def test_plan_follows_the_shape():
    assert plan(Shape(5, 300, 256)) == ("input", "relu")                 # ACAS Xu: input first, no MILP
    assert plan(Shape(784, 512, 161)) == ("relu", "milp")                # mnistfc 256x2 at small eps
    assert plan(Shape(784, 1536, 1200)) == ("relu",)                     # too many unstable for a MILP
    assert plan(Shape(12, 48, 40)) == ("input", "relu", "milp")          # the small-input nets
    assert plan(Shape(30, 48, 40)) == ("relu", "input", "milp")          # more inputs: ReLU first
    assert plan(Shape(784, 512, 0)) == ("relu",)                         # nothing unstable: no MILP needed
    assert plan(Shape(INPUT_FIRST + 100, 48, MILP_MAX_UNSTABLE + 1)) == ("relu",)
    for method in (Method.INPUT, Method.RELU, Method.MILP):
        assert plan(Shape(5, 300, 256), method) == (method.value,)


def test_weights_follow_the_measured_pace():
    inf = math.inf
    prior = {"input": 1.0, "relu": 1.0, "milp": 0.5}
    assert weights({"input": 2.0, "relu": inf}, prior, 8) == {"input": 1.0, "relu": 0.125}   # no progress
    assert weights({"input": 2.0, "relu": 10.0}, prior, 8) == {"input": 1.0, "relu": 0.5}    # unclear
    assert weights({"input": 2.0, "relu": 30.0}, prior, 8) == {"input": 1.0, "relu": 0.25}
    assert weights({"input": 40.0, "relu": 3.0}, prior, 8) == {"input": 0.25, "relu": 1.0}   # beats the prior
    assert weights({"input": inf, "relu": inf}, prior, 8) == {"input": 1.0, "relu": 1.0}     # nothing measured
    assert weights({"relu": 1.0, "milp": None}, prior, 8) == {"relu": 1.0, "milp": 0.5}      # MILP: its prior
    assert all(v > 0 for v in weights({"input": 1.0, "relu": inf, "milp": None}, prior, 8).values())


def test_prior_weights_favour_input_splitting_only_for_very_few_inputs():
    assert prior_weights(("input", "relu"), Shape(5, 300, 256)) == {"input": 1.0, "relu": 0.25}
    assert prior_weights(("input", "relu", "milp"), Shape(12, 48, 40)) == {"input": 1.0, "relu": 1.0, "milp": 1.0}
    assert prior_weights(("relu", "milp"), Shape(784, 512, 100)) == {"relu": 1.0, "milp": 1.0}


def test_slices_double_up_to_a_cap():
    lengths = list(itertools.islice(slices(0.5, cap=3.0), 6))
    assert lengths == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_engine_budget_arithmetic():
    from optcert.vnncomp import MIN_ENGINE, RESERVE_SECONDS, RESERVE_SHARE, engine_budget

    assert math.isclose(engine_budget(60, 3.0), 60 - 3.0 - RESERVE_SHARE * 60 - RESERVE_SECONDS)
    for timeout in (1.0, 10.0, 60.0, 116.0):
        for elapsed in (e for e in (0.0, 0.5, 2.5, 4.5) if e < timeout):
            used = elapsed + engine_budget(timeout, elapsed)
            # what the engine is given ends inside the budget, leaving the reserve for exit
            assert used <= timeout or engine_budget(timeout, elapsed) == MIN_ENGINE
            assert used <= timeout + max(0.05 * timeout, 1.0)
    assert engine_budget(60, 70.0) == MIN_ENGINE


def test_process_age_counts_from_process_start():
    from optcert.vnncomp import process_age, process_started

    age = process_age()
    assert 0 < age < 24 * 3600
    assert process_started() <= time.monotonic() - age + 0.5


def test_options_and_default_engine():
    from optcert.engines.registry import DEFAULT_ENGINE, Engine, engine_options
    from optcert.vnncomp import ENGINE

    assert DEFAULT_ENGINE is Engine.AUTO and ENGINE == "auto"
    with pytest.raises(InvalidOptionError):
        engine_options("auto", {"method": "sideways"})
    with pytest.raises(InvalidOptionError):
        engine_options("auto", {"slice": 0})
    with pytest.raises(InvalidOptionError):
        engine_options("auto", {"drop": 0.5})
    assert engine_options("auto", {"method": "milp"}).method is Method.MILP


# ---- soundness ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [-0.02, 0.02])
@pytest.mark.parametrize("seed,sizes,combine", CASES[::3])
def test_auto_is_complete_against_brute_force(seed, sizes, combine, delta):
    truth = _truth(seed, sizes, combine)
    result = verify(_problem(seed, sizes, combine, shift=-truth + delta), "auto", 60)
    _check(result, delta)
    assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason
    decided = result.certificate["decided_by"]
    assert decided and decided[-1] is not None


@pytest.mark.parametrize("method", ["input", "relu", "milp"])
def test_each_forced_arm_is_sound(method):
    seed, sizes, combine = 1, (3, 6, 6, 2), Combine.ALL
    truth = _truth(seed, sizes, combine)
    for delta in (-0.02, 0.02):
        result = verify(_problem(seed, sizes, combine, shift=-truth + delta), "auto", 60, {"method": method})
        _check(result, delta)
        assert result.verdict is not Verdict.UNKNOWN, result.reason


def _small_input_problem(seed: int) -> VerificationProblem:
    """The issue's shape: 10–20 inputs, a few dozen ReLUs, a box around a random point, the
    property held with a 10% margin over the attack's best value."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 21))
    net = random_mlp(rng, [n, 16, 16, 16, 1] if seed % 2 else [n, 24, 24, 1])
    c = rng.normal(size=n)
    box = Box(c - 0.25, c + 0.25)
    spec = LinearSpec(np.array([[1.0]]), np.zeros(1))
    pgd = verify(VerificationProblem(net, (Case(box, spec),)), "attack", 10).upper
    return VerificationProblem(net, (Case(box, LinearSpec(spec.C, np.array([0.1 * abs(pgd) + 1e-3 - pgd]))),))


@pytest.mark.parametrize("seed", [2, 4, 5, 12])   # 12: ReLU splitting alone timed out, input splitting proves
def test_small_input_nets_are_decided(seed):
    """Never UNKNOWN within a generous budget; the certificate names the method that decided."""
    result = verify(_small_input_problem(seed), "auto", 60)
    assert result.verdict is not Verdict.UNKNOWN, result.reason
    case = result.certificate["cases"][0]
    assert case["plan"][0] == "input" and "relu" in case["plan"]
    assert set(case["decided_by"].split("+")) <= {*case["plan"], "falsifier"}
    assert result.certificate["decided_by"] == [case["decided_by"]]


def test_budget_is_kept_on_a_hard_near_tie():
    """Wall clock (generous tolerance: the assertion is about the accounting, not speed)."""
    rng = np.random.default_rng(5)
    net = random_mlp(rng, [6, 40, 40, 40, 2])
    box = Box(np.full(6, -1.0), np.full(6, 1.0))
    C = np.array([[1.0, -1.0]])
    pgd = verify(VerificationProblem(net, (Case(box, LinearSpec(C, np.zeros(1))),)), "attack", 10).upper
    problem = VerificationProblem(net, (Case(box, LinearSpec(C, np.array([1e-3 - pgd]))),))
    for timeout in (1.0, 4.0):
        start = time.monotonic()
        result = verify(problem, "auto", timeout)
        elapsed = time.monotonic() - start
        assert elapsed <= 1.5 * timeout + 2.0, elapsed
        assert result.verdict is not Verdict.PROVED or result.bound <= 1e-3
        if result.verdict is Verdict.UNKNOWN:
            assert result.timed_out and "time limit" in result.reason


# ---- shared instances -----------------------------------------------------------------------------------
def _row(family: str, name: str):
    rows = [r for r in instances(family) if r["instance"] == name]
    if not rows:
        pytest.skip("shared benchmarks absent")
    return rows[0]


def test_falsifies_mnistfc_256x2_prop_0_005():
    """nnenum finds this counterexample in 9 s; the falsifier must find it too (issue 14)."""
    row = _row("mnistfc", "mnist-net_256x2-prop_0_0.05")
    result = verify(shared_problem(row), "auto", 60)
    assert row["expected"] == "sat" and result.verdict is Verdict.FALSIFIED, result.reason
    assert min(result.counterexample.margins) < 0


@pytest.mark.parametrize("name", ["ACASXU_run2a_1_1_batch_2000-prop_1", "ACASXU_run2a_2_1_batch_2000-prop_2"])
def test_shared_acasxu(name):
    row = _row("acasxu", name)
    result = verify(shared_problem(row), "auto", 60)
    assert result.verdict is {"unsat": Verdict.PROVED, "sat": Verdict.FALSIFIED}[row["expected"]], result.reason
    assert result.certificate["decided_by"][0] in ("input", "falsifier", "crown", "sampling")


# ---- root tightening and the restart of ReLU splitting ------------------------------------------------------
def test_plan_adds_the_root_tightening_where_no_milp_runs_it():
    assert plan(Shape(784, 1536, 1200, 6)) == ("relu", "tighten")          # mnistfc 256x6: LP-ALL, then restart
    assert plan(Shape(784, 512, 161, 2)) == ("relu", "milp")               # the MILP arm tightens first anyway
    assert plan(Shape(784, 256, 300, 1)) == ("relu",)                      # one hidden layer: nothing to tighten
    assert plan(Shape(5, 300, 256, 6)) == ("input", "relu")                # very few inputs: input splitting
    assert prior_weights(("relu", "tighten"), Shape(784, 1536, 1200, 6)) == {"relu": 1.0, "tighten": 1.0}


@pytest.mark.parametrize("delta", [-0.02, 0.02])
@pytest.mark.parametrize("seed", [0, 1])
def test_relu_splitting_restarted_from_the_tightened_root_is_sound(seed, delta, monkeypatch):
    """The hand-off: once the tightening is complete the ReLU arm restarts from its bounds (the old
    arm's bounds still count); what it decides agrees with brute force, and a proof it gives is
    stated as trusted evidence naming the tightened root (the checker cannot re-derive LP bounds)."""
    import optcert.engines.auto as auto
    from optcert.compiled import compile_problem
    from optcert.engines.auto_evidence import case_evidence
    from optcert.engines.registry import engine_options

    monkeypatch.setattr(auto, "MILP_MAX_UNSTABLE", 0)
    sizes, combine = (70, 5, 5, 2), Combine.ALL       # > INPUT_MAX inputs: no input splitting
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth + delta)
    cc = compile_problem(problem)[0]
    out = auto.EngineOutput(lower=[np.full(2, -np.inf)], case_lower=[None], certificate={})
    folio = auto._Portfolio(problem, cc, engine_options("auto", {}), out, time.monotonic() + 60)
    assert tuple(folio.arms) == ("relu", "tighten")
    live = ["relu", "tighten"]
    old = folio.arms["relu"]
    old.advance(time.monotonic() + 0.05)
    folio.hand_off(live)
    assert folio.arms["relu"] is old                          # not before the tightening is complete
    assert folio.arms["tighten"].advance(time.monotonic() + 30) == "tightened"
    folio.hand_off(live)
    new = folio.arms["relu"]
    assert new is not old and folio.retired == [old] and new.root_note == auto.ROOT_NOTE
    assert new.task.cc.ibp is folio.tightening.bounds
    assert np.all(folio.best_rows() >= old.state.rows)
    status = None
    while status is None:
        status = new.advance(time.monotonic() + 5)
    assert status == ("proved" if delta > 0 else "falsified")
    assert cc.sound(new.state.rows).min() <= delta + 1e-9          # the case margin (ALL: min of rows) is delta
    if status == "proved":
        entry, _, _ = case_evidence(folio, "relu")
        assert "tightened by per-neuron LPs" in str(entry)


def test_an_easy_case_is_decided_at_the_root_before_the_falsifier():
    """The search arms bound their roots first: a case CROWN proves costs no falsifier time."""
    seed, sizes, combine = 1, (3, 6, 6, 2), Combine.ALL
    truth = _truth(seed, sizes, combine)
    result = verify(_problem(seed, sizes, combine, shift=-truth + 50.0), "auto", 60)
    assert result.verdict is Verdict.PROVED
    case = result.certificate["cases"][0]
    assert case["decided_by"] == case["plan"][0] and case["falsifier_rounds"] == 0
    assert [entry[0] for entry in case["schedule"]] == [f"{case['plan'][0]} root"]


def test_an_arm_whose_pace_misled_once_gets_single_slices():
    """CONTINUE extra slices go to an arm projected to finish; if it then does not, it gets one
    slice per turn from then on (its pace has misled, and the other arms must not starve)."""
    import optcert.engines.auto as auto

    class Promising:              # always "about to finish", never does
        def __init__(self):
            self.calls = 0

        def advance(self, until):
            self.calls += 1
            return None

        def projected(self):
            return 0.0

    folio = object.__new__(auto._Portfolio)
    folio.arms, folio.log, folio.misprojected = {"relu": Promising()}, [], set()
    folio.lane, folio.retired, folio.tightening = None, [], types.SimpleNamespace(done=False)
    folio.deadline = time.monotonic() + 60
    folio._turn("relu", 0.01)
    assert folio.arms["relu"].calls == auto.CONTINUE and folio.misprojected == {"relu"}
    folio._turn("relu", 0.01)
    assert folio.arms["relu"].calls == auto.CONTINUE + 1


def test_a_falsifiable_case_is_not_kept_waiting_behind_a_hard_one():
    """Every case's opening (roots, first falsifier share) runs before any case's rounds: a
    counterexample in the second case ends the run long before the first case's share is used."""
    rng = np.random.default_rng(5)
    net = random_mlp(rng, [6, 40, 40, 40, 2])
    box = Box(np.full(6, -1.0), np.full(6, 1.0))
    C = np.array([[1.0, -1.0]])
    pgd = verify(VerificationProblem(net, (Case(box, LinearSpec(C, np.zeros(1))),)), "attack", 10).upper
    hard = Case(box, LinearSpec(C, np.array([1e-3 - pgd])))            # a near tie: no quick verdict
    easy = Case(box, LinearSpec(C, np.array([-pgd - 1.0])))            # violated wherever PGD's point is
    start = time.monotonic()
    result = verify(VerificationProblem(net, (hard, easy)), "auto", 60)
    assert result.verdict is Verdict.FALSIFIED and time.monotonic() - start < 20
    cases = result.certificate["cases"]
    assert [c["case"] for c in cases] == [0, 1] and cases[0]["decided_by"] is None
    assert cases[1]["decided_by"] is not None and "counterexample in case 1" in result.reason
