"""The `bm` engine: sound against brute force, close to the full SDP, staircase, warm start,
options, and shared `sat` instances never proved (a fast subset)."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.errors import InvalidOptionError
from optcert.result import Verdict
from optcert.verify import verify
from tests.builders import instance_params, instances, shared_problem
from tests.sdp.test_sdp_engine import _problem


@pytest.mark.parametrize("backend", ["ipopt-lowrank", "torch-lowrank"])
@pytest.mark.parametrize("seed", range(2))
def test_bm_is_sound_and_matches_the_full_sdp(seed, backend):
    from solvers import available

    if not available()[backend].available:
        pytest.skip(available()[backend].reason)
    problem, truth = _problem(seed)
    bm = verify(problem, "bm", 60, {"backend": backend})
    sdp = verify(problem, "sdp", 60, {"backend": "clarabel", "bounds": "lp-all"})
    lower_bm, lower_sdp = np.array(bm.cases[0].lower), np.array(sdp.cases[0].lower)
    assert np.all(lower_bm <= np.array(truth) + 1e-9)
    assert np.all(np.abs(lower_bm - lower_sdp) <= 2e-3 * (1 + np.abs(lower_sdp))), (lower_bm, lower_sdp)
    for row in bm.certificate.get("rows", []):
        assert row["rank"] >= 2 and row["bound"] <= row["primal"] + 1e-6 * (1 + abs(row["primal"]))


@pytest.mark.parametrize("seed", range(2, 8))
def test_bm_on_random_nets_never_exceeds_brute_force(seed):
    problem, truth = _problem(seed)
    result = verify(problem, "bm", 60, {"bounds": "crown"})
    assert np.all(np.array(result.cases[0].lower) <= np.array(truth) + 1e-9)
    assert result.verdict is not Verdict.PROVED or min(truth) > 0
    sources = result.certificate["row_source"][0]
    assert len(sources) == 2 and set(sources) <= {"crown", "lp-floor", "bm", "none"}


def test_auto_falls_back_to_torch_when_ipopt_is_unavailable(monkeypatch):
    import solvers
    from solvers.base import Availability

    real = solvers.available

    def without_ipopt():
        report = real()
        report["ipopt-lowrank"] = Availability("ipopt-lowrank", False, reason="cyipopt not installed (test)")
        return report

    monkeypatch.setattr(solvers, "available", without_ipopt)
    problem, truth = _problem(0)
    result = verify(problem, "bm", 60)
    assert result.certificate["backend"] == "torch-lowrank"
    assert "fell back to torch-lowrank" in result.certificate["note"]
    assert np.all(np.array(result.cases[0].lower) <= np.array(truth) + 1e-9)


@pytest.mark.parametrize("engine", ["bm", "sdp"])
def test_running_out_of_time_says_so(engine):
    import time

    from optcert.compiled import compile_problem
    from optcert.engines.bm import run_bm
    from optcert.engines.sdp import BmOptions, SdpOptions, run_sdp

    problem, _ = _problem(3)
    compiled = compile_problem(problem)
    run, options = (run_bm, BmOptions(attack=False)) if engine == "bm" else (run_sdp, SdpOptions())
    out = run(problem, compiled, options, time.monotonic() - 1.0)
    assert out.timed_out and "time limit" in out.reason


def test_bm_options_are_checked():
    problem, _ = _problem(0)
    with pytest.raises(InvalidOptionError, match="rank"):
        verify(problem, "bm", 10, {"rank": 5, "max_rank": 3})
    with pytest.raises(InvalidOptionError, match="device"):
        verify(problem, "bm", 10, {"device": "tpu"})
    with pytest.raises(InvalidOptionError, match="backend"):
        verify(problem, "bm", 10, {"backend": "knitro"})


SAT = [r for r in instances("acasxu") if r["expected"] == "sat"][3::16]


@pytest.mark.parametrize("row", instance_params(SAT))
def test_shared_sat_instances_are_never_proved(row):
    problem = shared_problem(row)
    assert verify(problem, "bm", 10.0).verdict is not Verdict.PROVED
