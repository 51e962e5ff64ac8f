"""SDP and Burer–Monteiro results re-verify from their stored multipliers (the checker rebuilds
S(y), the trace bound and a rigorous λ_min itself), and changed numbers are caught."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.checking.report import Status
from optcert.checking.tamper import tampered, targets
from optcert.result import Verdict
from optcert.verify import verify
from tests.checking.helpers import as_json, check, small_problem


@pytest.mark.parametrize("engine,options", [("sdp", {}), ("sdp", {"triangle": False}),
                                            ("bm", {"attack": False}), ("bm", {"hidden_boxes": False})])
def test_sdp_and_bm_results_re_verify_and_edits_are_caught(engine, options):
    sdp_rows = 0
    for seed in range(3):
        problem = small_problem(seed, sizes=(3, 5, 4, 3))
        result = verify(problem, engine, 20, options)
        d = as_json(result)
        report = check(d, problem)
        kinds = [item["kind"] for item in d["certificate"]["evidence"]["cases"][0]["rows"] if item]
        # rows bounded by the tight lowering the checker does not rebuild are trusted: never VALID for a proof
        expected = Status.UNCHECKABLE if result.verdict is Verdict.PROVED and "trusted" in kinds else Status.VALID
        assert report.status is expected, report.summary()
        sdp_rows += kinds.count("sdp")
        rng = np.random.default_rng(seed)
        found = targets(d)
        for t in found["bound"]:
            assert check(tampered(d, t, rng, reseal=True), problem).status is Status.INVALID, t.describe()
        for t in found["multiplier"][:30]:
            assert check(tampered(d, t, rng), problem).status is Status.INVALID, t.describe()
    assert sdp_rows > 0 or engine == "bm", "no row was certified by the SDP itself"


def test_a_negative_inequality_multiplier_is_refused():
    problem = small_problem(1, sizes=(3, 5, 4, 3))
    d = as_json(verify(problem, "sdp", 20))
    item = next(i for i in d["certificate"]["evidence"]["cases"][0]["rows"] if i and i["kind"] == "sdp")
    from optcert.checking.arrays import pack, unpack
    from optcert.checking.evidence import digest
    from optcert.result import Result

    y = unpack(item["multipliers"])
    y[0] = -1.0          # the first row is an input box: an inequality
    item["multipliers"] = pack(y)
    d["certificate"]["evidence"]["sha256"] = digest(Result.from_dict(d).certificate["evidence"])
    report = check(d, problem)
    assert report.status is Status.INVALID and "non-negative" in report.summary()


def test_lp_all_tightening_is_not_re_checkable():
    problem = small_problem(2, sizes=(3, 5, 4, 3))
    result = verify(problem, "sdp", 20, {"bounds": "lp-all"})
    report = check(as_json(result), problem)
    expected = Status.UNCHECKABLE if result.verdict is Verdict.PROVED else Status.VALID
    assert report.status is expected, report.summary()
