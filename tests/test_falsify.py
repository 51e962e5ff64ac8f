"""The strong falsifier: it finds counterexamples where they exist with margin, never reports one that
does not re-check (a near tie or a true property stays unfalsified), its rounds resume, and its
starts stay in the box. Also the search's per-domain candidates (relaxation optima)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from optcert.certify import check_counterexample
from optcert.compiled import compile_problem
from optcert.search.falsify import ROUNDS, FalsifySettings, _checkpoints, falsify
from optcert.spec.problem import Combine
from tests.test_bnb import CASES, _problem, _truth


def _run(problem, seconds: float = 20.0, **settings):
    cc = compile_problem(problem)[0]
    found: list[np.ndarray] = []

    def check(x):
        assert np.all(x >= cc.lo - 1e-12) and np.all(x <= cc.hi + 1e-12), "a candidate left the box"
        ok = check_counterexample(problem, cc, x) is not None
        if ok:
            found.append(x)
        return ok

    import time
    report = falsify(cc, FalsifySettings(**settings), time.monotonic() + seconds, check)
    return report, found


@pytest.mark.parametrize("seed,sizes,combine", CASES)
def test_finds_violations_and_never_invents_one(seed, sizes, combine):
    truth = _truth(seed, sizes, combine)
    report, found = _run(_problem(seed, sizes, combine, shift=-truth - 0.05), rounds=len(ROUNDS))
    assert report.found and found, "a violation by 0.05 should be found by one cycle of rounds"
    report, found = _run(_problem(seed, sizes, combine, shift=-truth + 1e-6), rounds=len(ROUNDS))
    assert not report.found and not found          # true (by a hair): nothing may re-check
    assert report.best >= -1e-4                    # float32 objective: never meaningfully below truth


def test_rounds_resume_where_they_stopped():
    problem = _problem(0, (3, 6, 6, 2), Combine.ALL, shift=5.0)   # true: every round runs
    a, _ = _run(problem, rounds=2)
    b, _ = _run(problem, rounds=2, offset=2)
    assert a.rounds == 2 and b.rounds == 2 and not a.found and not b.found


def test_apgd_checkpoints():
    for steps in (10, 60, 100):
        marks = sorted(_checkpoints(steps))
        assert marks and marks[0] == math.ceil(0.22 * steps)
        assert all(0 < m <= steps for m in marks) and marks == sorted(set(marks))


def test_domain_points_lie_in_their_boxes():
    from optcert.search.bounding import CaseContext, bound_crown
    from optcert.search.branching import Decision, children

    cc = compile_problem(_problem(3, (3, 8, 8, 2), Combine.ALL))[0]
    ctx = CaseContext(cc, "cpu", 0, 0.1, False)
    left, right = children(cc.ibp, Decision(0, 1))
    bounded = bound_crown(ctx, [left, right], 1, np.inf)
    assert bounded.points is not None and bounded.points.shape == (2, cc.lo.size)
    for b, box in enumerate((left, right)):
        assert np.all(bounded.points[b] >= box.lower[0]) and np.all(bounded.points[b] <= box.upper[0])
