"""The auto portfolio's solver lane (engines/lane.py): a worker thread that stops when asked, by
its deadline, and raises what it raised; and the portfolio using it with results that agree
with brute force."""
from __future__ import annotations

import time

import pytest

from optcert.engines.lane import PIECE, SolverLane
from optcert.result import Verdict
from optcert.spec.problem import Combine
from optcert.verify import verify
from tests.test_bnb import _check, _problem, _truth


class _Arm:
    """A fake arm: works until `until` (resumable) or until interrupted (not), never ends."""

    name = "fake"

    def __init__(self, resumable: bool, fail: bool = False):
        self.resumable, self.fail, self.calls = resumable, fail, 0
        self.interrupt = None
        self.state = type("State", (), {"status": None})()

    def advance(self, until: float):
        self.calls += 1
        if self.fail:
            raise ValueError("arm bug")
        while time.monotonic() < until and not (self.interrupt and self.interrupt()):
            time.sleep(0.005)
        return None


@pytest.mark.parametrize("resumable", [True, False])
def test_the_lane_stops_when_asked(resumable):
    arm = _Arm(resumable)
    lane = SolverLane(arm, time.monotonic() + 60)
    lane.start()
    time.sleep(0.3)
    began = time.monotonic()
    lane.finish()
    assert not lane.running and time.monotonic() - began < PIECE + 0.5
    assert arm.calls >= (2 if resumable else 1)        # a resumable arm goes piece by piece


def test_the_lane_ends_at_its_deadline_and_raises_what_the_arm_raised():
    lane = SolverLane(_Arm(True), time.monotonic() + 0.5)
    lane.start()
    lane.wait(5)
    assert not lane.running
    lane.finish()
    failing = SolverLane(_Arm(True, fail=True), time.monotonic() + 60)
    failing.start()
    with pytest.raises(ValueError, match="arm bug"):
        failing.finish()


@pytest.mark.parametrize("delta", [-0.02, 0.02])
def test_the_portfolio_runs_the_milp_in_its_own_lane(delta, monkeypatch):
    """With two usable cores the MILP arm runs in the lane (the schedule says so), with one lane
    it does not; both agree with brute force. With the search arm held back, the lane decides
    (proves and falsifies) and is named as the method that did."""
    import optcert.engines.auto as auto

    monkeypatch.setattr(auto, "usable_cores", lambda: 2)
    seed, sizes, combine = 0, (70, 5, 5, 2), Combine.ALL      # > INPUT_MAX inputs: relu + milp
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth + delta)
    for lanes in (1, 2) if delta > 0 else ():
        result = verify(problem, "auto", 60, {"lanes": lanes})
        _check(result, delta)
        assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason
        schedule = result.certificate["cases"][0]["schedule"]
        rounds = any(step[0] in ("relu", "weights") for step in schedule)    # past the opening
        assert any("own thread" in str(step[0]) for step in schedule) is (lanes == 2 and rounds)

    def idle(self, until):             # the ReLU search takes its turns and never decides
        time.sleep(max(0.0, min(until - time.monotonic(), 0.02)))
        return None

    monkeypatch.setattr(auto.SearchArm, "advance", idle)
    monkeypatch.setattr(auto.SearchArm, "root", lambda self: None)
    monkeypatch.setattr(auto, "falsify", lambda *a, **k: type("R", (), {"found": False, "rounds": 0})())
    result = verify(problem, "auto", 60, {"lanes": 2})
    _check(result, delta)
    case = result.certificate["cases"][0]
    assert case["decided_by"] == "milp" and any("milp in its own thread" in str(s[0]) for s in case["schedule"])
    assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason


def test_no_lane_where_input_splitting_is_the_expected_winner(monkeypatch):
    """≤ INPUT_ONLY inputs: the MILP keeps its quarter share in the calling thread (stopping a HiGHS
    MILP can take seconds, and there it decides almost nothing)."""
    import optcert.engines.auto as auto

    monkeypatch.setattr(auto, "usable_cores", lambda: 2)
    folio = object.__new__(auto._Portfolio)
    folio.options, folio.log, folio.deadline = auto.AutoOptions(), [], time.monotonic() + 60
    folio.shape = auto.Shape(5, 300, 200, 6)
    live = ["input", "relu", "milp"]
    assert folio._open_lane(live) is None and live == ["input", "relu", "milp"]
    folio.options = auto.AutoOptions(lanes=1)
    folio.shape = auto.Shape(784, 512, 75, 2)
    assert folio._open_lane(["relu", "milp"]) is None


@pytest.mark.parametrize("seed,combine,delta", [(1, Combine.ALL, -0.01), (1, Combine.ALL, 0.01),
                                                 (2, Combine.ANY, 0.01), (3, Combine.ANY, 0.01)])
def test_with_the_lane_the_portfolio_agrees_with_brute_force(seed, combine, delta, monkeypatch):
    """Random nets with more inputs than input splitting takes first (the lane runs the MILP), near
    ties both ways: never a wrong verdict, and a bound never above the true minimum."""
    import optcert.engines.auto as auto

    monkeypatch.setattr(auto, "usable_cores", lambda: 2)
    sizes = (12, 6, 6, 3)
    truth = _truth(seed, sizes, combine)
    result = verify(_problem(seed, sizes, combine, shift=-truth + delta), "auto", 60)
    _check(result, delta)
    assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason
