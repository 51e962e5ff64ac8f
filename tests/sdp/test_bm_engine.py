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


@pytest.mark.parametrize("backend", ["ipm-lowrank", "ipopt-lowrank", "torch-lowrank"])
@pytest.mark.parametrize("seed", range(2))
def test_bm_is_sound_and_matches_the_full_sdp(seed, backend):
    from solvers import available

    if not available()[backend].available:
        pytest.skip(available()[backend].reason)
    problem, truth = _problem(seed)
    bm = verify(problem, "bm", 60, {"backend": backend, "proof_stop": False})   # the relaxation's value
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


def test_auto_is_ipm_lowrank_and_an_absent_backend_asked_for_is_a_typed_error(monkeypatch):
    import solvers
    from optcert.errors import BackendUnavailableError
    from solvers.base import Availability
    from solvers.ipopt_lowrank import IpoptLowRankBackend

    problem, truth = _problem(0)
    result = verify(problem, "bm", 60)
    assert result.certificate["backend"] == "ipm-lowrank"
    assert np.all(np.array(result.cases[0].lower) <= np.array(truth) + 1e-9)
    monkeypatch.setattr(IpoptLowRankBackend, "available",
                        lambda self: Availability("ipopt-lowrank", False, reason="cyipopt not installed (test)"))
    assert not solvers.available()["ipopt-lowrank"].available
    with pytest.raises(BackendUnavailableError, match="cyipopt"):
        verify(problem, "bm", 10, {"backend": "ipopt-lowrank"})


@pytest.mark.parametrize("seed", range(4))
def test_ipm_bound_never_exceeds_the_exact_milp_value(seed):
    """The relaxation value itself (every rank solved to the tolerance, no early stop) on random
    nets, against MILP's exact minimum of each row."""
    problem, truth = _problem(10 + seed)
    bm = verify(problem, "bm", 60, {"backend": "ipm-lowrank", "bounds": "lp-all", "early_stop": False})
    exact = verify(problem, "milp", 60, {"exact": True})
    for k, (low, value) in enumerate(zip(bm.cases[0].lower, exact.cases[0].lower)):
        assert truth[k] - 1e-4 <= value <= truth[k] + 1e-9   # MILP's certified bound: the exact minimum
        assert low <= truth[k] + 1e-9, (k, low, truth[k])
    assert bm.verdict is not Verdict.PROVED or min(truth) > 0


@pytest.mark.parametrize("seed", range(2))
def test_a_proof_stop_never_beats_the_relaxation_value_and_the_gap_study_reports_the_value(seed):
    """`proof_stop` (the default) may end a proved row at any certified bound below its relaxation
    value; without it (what the gap study runs) a proved row's bound is the value (as with
    `early_stop=false`), and neither is above the truth."""
    from optcert.study.gap import METHODS, Method

    problem, truth = _problem(seed)
    fast = np.array(verify(problem, "bm", 60, {"bounds": "lp-all"}).cases[0].lower)
    tight = np.array(verify(problem, "bm", 60, {"bounds": "lp-all", **METHODS[Method.BM].options}).cases[0].lower)
    value = np.array(verify(problem, "bm", 60, {"bounds": "lp-all", "early_stop": False}).cases[0].lower)
    assert np.all(fast <= tight + 1e-6 * (1 + np.abs(tight))) and np.all(tight <= np.array(truth) + 1e-9)
    assert np.allclose(tight, value, rtol=1e-4, atol=1e-4), (tight, value)


def test_a_proof_stop_ends_at_a_rechecked_counterexample_and_the_gap_study_still_bounds_every_row():
    """With `proof_stop` a PGD point that re-checks as a counterexample ends the run FALSIFIED before
    any row is solved; without it (the gap study) every row is still bounded, and soundly."""
    problem, truth = _problem(3)      # both rows' exact minima are negative (−1.43, −0.77)
    fast = verify(problem, "bm", 60, {"bounds": "lp-all"})
    full = verify(problem, "bm", 60, {"bounds": "lp-all", "proof_stop": False})
    assert fast.verdict is Verdict.FALSIFIED and full.verdict is Verdict.FALSIFIED
    assert "counterexample" in fast.certificate["stopped"] and not fast.certificate.get("rows")
    assert "stopped" not in full.certificate and full.certificate["rows"]
    assert np.all(np.array(full.cases[0].lower) <= np.array(truth) + 1e-9)


def test_a_solver_failure_is_an_unknown_row_not_a_crash(monkeypatch):
    from solvers import ipm_step

    def broken(*args, **kwargs):
        raise FloatingPointError("factorisation blew up (test)")

    monkeypatch.setattr(ipm_step.Newton, "factorize", broken)
    problem, truth = _problem(1)
    result = verify(problem, "bm", 30, {"backend": "ipm-lowrank", "bounds": "ibp", "attack": False})
    assert result.verdict is not Verdict.PROVED or min(truth) > 0
    assert np.all(np.array(result.cases[0].lower) <= np.array(truth) + 1e-9)
    statuses = {row["status"] for row in result.certificate.get("rows", [])}
    assert statuses == {"error"} and all("blew up" in row["message"] for row in result.certificate["rows"])


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
