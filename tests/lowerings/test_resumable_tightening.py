"""Per-neuron tightening advanced in slices (the `auto` portfolio's way) gives the bounds of one
uninterrupted run, stays valid at every point, and says where a cut run stopped."""
from __future__ import annotations

import time

import numpy as np
import pytest

from optcert.compiled import compile_problem
from optcert.solve.progressive import ResumableTightening, Tightening, tighten
from optcert.spec.problem import Box, VerificationProblem, robustness_spec
from tests.builders import random_mlp


def _case(seed: int):
    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [4, 16, 16, 16, 3])
    x = rng.normal(size=4)
    problem = VerificationProblem.single(net, Box(x - 0.6, x + 0.6), robustness_spec(3, 0, [1, 2]))
    return compile_problem(problem)[0]


def _inside(cc, bounds, samples: int = 2000) -> bool:
    """Every layer's value at random inputs of the box lies within `bounds`."""
    rng = np.random.default_rng(1)
    x = rng.uniform(cc.lo, cc.hi, size=(samples, cc.lo.size))
    values = cc.net.forward(x)
    return all(np.all(v >= lo - 1e-9) and np.all(v <= hi + 1e-9)
               for v, lo, hi in zip(values, bounds.lower[1:], bounds.upper[1:]))


@pytest.mark.parametrize("seed", [0, 1])
def test_slices_of_any_length_give_the_uninterrupted_bounds(seed):
    cc = _case(seed)
    whole, report = tighten(cc.net, cc.ibp, Tightening.LP)
    assert not report.stopped and report.solves > 0
    run = ResumableTightening(cc.net, cc.ibp, Tightening.LP)
    slices, length = 0, 0.002
    while not run.advance(time.monotonic() + length):      # slices double, as the portfolio's do
        slices, length = slices + 1, 1.5 * length
        assert run.report.stopped.startswith("deadline reached")
        assert _inside(cc, run.bounds)
    assert slices > 1 and run.done and not run.report.stopped
    for a, b in zip(run.bounds.lower + run.bounds.upper, whole.lower + whole.upper):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    assert _inside(cc, run.bounds)
    assert run.advance(time.monotonic()) is True      # done stays done


def test_a_deadline_in_the_past_still_gives_valid_crown_bounds():
    cc = _case(2)
    bounds, report = tighten(cc.net, cc.ibp, Tightening.LP, deadline=time.monotonic() - 1)
    assert report.stopped == "deadline reached during lp-all tightening"
    assert "crown" in report.seconds and _inside(cc, bounds)
    assert all(np.all(lo >= ilo - 1e-12) for lo, ilo in zip(bounds.lower, cc.ibp.lower))


def test_a_layer_time_limit_solves_the_loosest_neurons_first_and_stays_valid():
    cc = _case(3)
    whole, full = tighten(cc.net, cc.ibp, Tightening.LP)
    crown, none = tighten(cc.net, cc.ibp, Tightening.LP, layer_time_limit=0.0)
    assert none.solves == 0 and none.skipped > 0 and not none.stopped
    assert full.skipped == 0
    some, report = tighten(cc.net, cc.ibp, Tightening.LP, layer_time_limit=1e-3)
    assert 0 < report.solves < full.solves and report.skipped > 0
    for bounds in (crown, some):
        assert _inside(cc, bounds)
        for a, b in zip(bounds.lower, whole.lower):
            assert np.all(a <= b + 1e-9)


def test_each_layer_solves_its_loosest_neuron_first(monkeypatch):
    import optcert.solve.progressive as progressive
    from optcert.lowerings import lower_lp, pre_activation_objectives

    cc = _case(4)
    crown, _ = tighten(cc.net, cc.ibp, Tightening.CROWN)
    lo, hi = crown.lower[2], crown.upper[2]
    unstable = np.flatnonzero((lo < 0) & (hi > 0))
    loosest = unstable[np.argmax(-lo[unstable] * hi[unstable] / (hi[unstable] - lo[unstable]))]
    G, g0 = pre_activation_objectives(lower_lp(cc.net, crown, upto=2), cc.net, 2)
    posed = []
    solve = progressive._solve
    monkeypatch.setattr(progressive, "_solve", lambda s, g, c, *a: posed.append(c) or solve(s, g, c, *a))
    tighten(cc.net, cc.ibp, Tightening.LP)
    assert unstable.size > 1 and posed[0] == g0[loosest]
