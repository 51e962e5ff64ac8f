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


@pytest.mark.parametrize("seed", range(2))
def test_bm_is_sound_and_matches_the_full_sdp(seed):
    problem, truth = _problem(seed)
    bm = verify(problem, "bm", 60)
    sdp = verify(problem, "sdp", 60, {"backend": "clarabel"})
    lower_bm, lower_sdp = np.array(bm.cases[0].lower), np.array(sdp.cases[0].lower)
    assert np.all(lower_bm <= np.array(truth) + 1e-9)
    assert np.all(np.abs(lower_bm - lower_sdp) <= 2e-3 * (1 + np.abs(lower_sdp))), (lower_bm, lower_sdp)
    for row in bm.certificate.get("rows", []):
        assert row["rank"] >= 2 and row["bound"] <= row["primal"] + 1e-6 * (1 + abs(row["primal"]))


def test_bm_options_are_checked():
    problem, _ = _problem(0)
    with pytest.raises(InvalidOptionError, match="rank"):
        verify(problem, "bm", 10, {"rank": 5, "max_rank": 3})
    with pytest.raises(InvalidOptionError, match="device"):
        verify(problem, "bm", 10, {"device": "tpu"})


SAT = [r for r in instances("acasxu") if r["expected"] == "sat"][3::16]


@pytest.mark.parametrize("row", instance_params(SAT))
def test_shared_sat_instances_are_never_proved(row):
    problem = shared_problem(row)
    assert verify(problem, "bm", 10.0).verdict is not Verdict.PROVED
