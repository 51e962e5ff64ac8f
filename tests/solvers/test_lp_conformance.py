"""Conformance of every LP/MILP backend on tiny problems with known optimum, duals and status.

Each backend is skipped (with its Availability reason) when it is not installed or licensed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from optcert.certificates.lp import certified_lp_bound
from optcert.errors import InvalidOptionError
from optcert.forms import Limits, LinearProgram, Solution
from optcert.forms import SolveStatus as S
from tests.builders import backend_or_skip

BACKENDS = ("highs", "gurobi", "scip")
INF = np.inf
TOL = 1e-6


def _lp(c, A, lo, hi, clo, chi, integer=None, c0=0.0) -> LinearProgram:
    return LinearProgram(c, sp.csr_matrix(np.array(A, dtype=float)), lo, hi, clo, chi, integer, c0)


@dataclass
class Case:
    name: str
    lp: LinearProgram
    status: S
    objective: float | None = None
    x: list | None = None
    y: list | None = None  # unique row duals, in the optcert convention
    r: list | None = None  # unique column duals


CASES = [
    # x+y ≥ 1 binds from below (y>0), x−y ≤ 0.5 from above (y<0); c0 = 3.
    Case("inequalities_c0", _lp([1, 2], [[1, 1], [1, -1]], [1, -INF], [INF, .5], [0, 0], [INF, INF], c0=3),
         S.OPTIMAL, 4.25, [.75, .25], [1.5, -.5], [0, 0]),
    # equality row with a positive dual; x at its upper column bound (r<0).
    Case("equality_pos", _lp([2, 3], [[1, 1]], [4], [4], [0, 0], [3, INF]), S.OPTIMAL, 9, [3, 1], [3], [-1, 0]),
    # equality row with a negative dual; y at its lower column bound (r>0).
    Case("equality_neg", _lp([-1, 0], [[1, 1]], [2], [2], [0, 0], [INF, INF]), S.OPTIMAL, -2, [2, 0], [-1], [0, 1]),
    # ranged row, upper side binding.
    Case("ranged_upper", _lp([-1, -1], [[1, 2]], [1], [4], [0, 0], [2, INF]), S.OPTIMAL, -3, [2, 1], [-.5], [-.5, 0]),
    # ranged row, lower side binding.
    Case("ranged_lower", _lp([1, 1], [[1, 2]], [1], [4], [0, 0], [INF, INF]), S.OPTIMAL, .5, [0, .5], [.5], [.5, 0]),
    # a free row (both sides infinite) gets a zero dual.
    Case("free_row", _lp([1, 2], [[1, 1], [3, -7], [1, -1]], [1, -INF, -INF], [INF, INF, .5], [0, 0], [INF, INF]),
         S.OPTIMAL, 1.25, [.75, .25], [1.5, 0, -.5], [0, 0]),
    Case("infeasible", _lp([1, 1], [[1, 1]], [3], [INF], [0, 0], [1, 1]), S.INFEASIBLE),
    Case("unbounded", _lp([-1, 0], [[1, -1]], [-INF], [1], [0, 0], [INF, INF]), S.UNBOUNDED),
    # primal infeasible and dual infeasible: presolvers say "unbounded or infeasible"; the truth is infeasible.
    Case("infeasible_and_dual_infeasible", _lp([-1, -1], [[1, -1], [-1, 1]], [1, 1], [INF, INF], [-INF, -INF],
                                               [INF, INF]), S.INFEASIBLE),
    # the same in a MILP: SCIP answers "infeasible or unbounded" here.
    Case("milp_infeasible_and_dual_infeasible", _lp([-1, 0, 0], [[0, 1, 1], [0, 1, 1]], [1, -INF], [INF, 0], [0] * 3,
                                                    [INF] * 3, [False, True, True]), S.INFEASIBLE),
    Case("milp_knapsack_c0", _lp([-5, -4, -3], [[2, 3, 1], [4, 1, 2], [3, 4, 2]], [-INF] * 3, [5, 11, 8], [0] * 3,
                                 [2] * 3, [True] * 3, c0=10), S.OPTIMAL, -3, [2, 0, 1]),
    Case("milp_mixed_ranged", _lp([-1, -1], [[2, 2], [-1, 1]], [1, -INF], [7, .3], [0, 0], [10, INF], [True, False]),
         S.OPTIMAL, -3.5),
    Case("milp_infeasible", _lp([1, 1], [[2, -2]], [1], [1], [-5, -5], [5, 5], [True, True]), S.INFEASIBLE),
    Case("milp_unbounded", _lp([-1, 0], [[1, -2]], [0], [0], [0, 0], [INF, INF], [True, True]), S.UNBOUNDED),
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return backend_or_skip(request.param)


def _check_lp_duals(lp: LinearProgram, sol: Solution) -> None:
    """r = c − Aᵀy and complementary slackness, in the optcert sign convention."""
    y, r, x = sol.row_duals, sol.col_duals, sol.x
    assert y is not None and r is not None, "an optimal LP must come with duals"
    np.testing.assert_allclose(r, lp.c - lp.A.T @ y, atol=TOL)
    act = lp.A @ x
    assert np.all(np.isfinite(lp.row_lo[y > TOL])) and np.all(np.isfinite(lp.row_hi[y < -TOL]))
    np.testing.assert_allclose(act[y > TOL], lp.row_lo[y > TOL], atol=TOL)
    np.testing.assert_allclose(act[y < -TOL], lp.row_hi[y < -TOL], atol=TOL)
    np.testing.assert_allclose(x[r > TOL], lp.col_lo[r > TOL], atol=TOL)
    np.testing.assert_allclose(x[r < -TOL], lp.col_hi[r < -TOL], atol=TOL)


def _check_feasible(lp: LinearProgram, x: np.ndarray) -> None:
    act = lp.A @ x
    assert np.all(act >= lp.row_lo - TOL) and np.all(act <= lp.row_hi + TOL)
    assert np.all(x >= lp.col_lo - TOL) and np.all(x <= lp.col_hi + TOL)
    np.testing.assert_allclose(x[lp.integer], np.round(x[lp.integer]), atol=TOL)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_known_answer(backend, case: Case):
    sol = backend.solve(case.lp, Limits(time_limit=30))
    assert isinstance(sol, Solution) and sol.backend == backend.name
    assert sol.status == case.status, sol.message
    if case.status != S.OPTIMAL:
        assert sol.x is None and sol.objective is None
        return
    _check_feasible(case.lp, sol.x)
    assert sol.objective == pytest.approx(case.objective, abs=TOL)
    assert sol.objective == pytest.approx(case.lp.c @ sol.x + case.lp.c0, abs=TOL)
    assert sol.bound == pytest.approx(case.objective, abs=1e-4 * (1 + abs(case.objective)))
    assert sol.bound <= sol.objective + TOL
    if case.x is not None:
        np.testing.assert_allclose(sol.x, case.x, atol=TOL)
    if case.lp.is_mip:
        return
    _check_lp_duals(case.lp, sol)
    if case.y is not None:
        np.testing.assert_allclose(sol.row_duals, case.y, atol=TOL)
        np.testing.assert_allclose(sol.col_duals, case.r, atol=TOL)
    certified = certified_lp_bound(case.lp, sol.row_duals)
    assert certified <= case.objective + 1e-12
    if np.all(np.isfinite(case.lp.col_lo)) and np.all(np.isfinite(case.lp.col_hi)):
        assert certified >= case.objective - 1e-7


def _market_split(seed: int = 0, m: int = 4, n: int = 32) -> LinearProgram:
    """Cornuéjols–Dawande market split with slacks: always feasible, very hard to prove optimal."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, size=(m, n)).astype(float)
    d = np.floor(a.sum(axis=1) / 2)
    A = np.hstack([a, np.eye(m), -np.eye(m)])
    c = np.concatenate([np.zeros(n), np.ones(2 * m)])
    integer = np.concatenate([np.ones(n, bool), np.zeros(2 * m, bool)])
    hi = np.concatenate([np.ones(n), np.full(2 * m, INF)])
    return LinearProgram(c, sp.csr_matrix(A), d, d, np.zeros(n + 2 * m), hi, integer)


def test_time_limit_is_a_solution(backend):
    lp = _market_split()
    sol = backend.solve(lp, Limits(time_limit=0.5, threads=1))
    assert isinstance(sol, Solution)
    assert sol.status in (S.TIME_LIMIT, S.OPTIMAL), sol.message
    assert sol.seconds < 20
    if sol.x is not None:
        _check_feasible(lp, sol.x)
        if sol.bound is not None:
            assert sol.bound <= sol.objective + TOL


NO_PRESOLVE = {"highs": {"presolve": "off"}, "gurobi": {"Presolve": 0}, "scip": {"presolving/maxrounds": 0}}
#: Infeasible problems with an improving ray; without presolve Gurobi calls them UNBOUNDED.
RAY_BUT_INFEASIBLE = [
    _lp([-1, 0, 0], [[0, 1, 1], [0, 1, 1]], [1, -INF], [INF, 0], [0, 0, 0], [INF] * 3),
    _lp([-1, 0], [[0, 1]], [1], [INF], [0, 0], [INF, 0]),
    _lp([-1, -1], [[1, -1], [-1, 1]], [1, 1], [INF, INF], [0, 0], [INF, INF]),
]


@pytest.mark.parametrize("index", range(len(RAY_BUT_INFEASIBLE)))
def test_unbounded_claims_are_checked_for_feasibility(backend, index):
    sol = backend.solve(RAY_BUT_INFEASIBLE[index], raw=NO_PRESOLVE[backend.name])
    assert sol.status == S.INFEASIBLE, sol.message


@pytest.mark.parametrize("limits", [Limits(node_limit=2, threads=1), Limits(threads=2, mip_gap=0.9, time_limit=0.3),
                                    Limits(time_limit=0.0)], ids=["nodes", "threads_gap", "zero_time"])
def test_other_limits_are_solutions(backend, limits):
    lp = _market_split(seed=1)
    sol = backend.solve(lp, limits)
    expected = {S.ITERATION_LIMIT, S.TIME_LIMIT, S.OPTIMAL}
    assert sol.status in expected, sol.message
    assert sol.bound is None or np.isfinite(sol.bound)
    if sol.x is not None:
        _check_feasible(lp, sol.x)


def test_unknown_raw_key_rejected(backend):
    with pytest.raises(InvalidOptionError, match="no_such_option_xyz"):
        backend.solve(CASES[0].lp, raw={"no_such_option_xyz": 1})


VALID_RAW = {"highs": {"presolve": "off"}, "gurobi": {"Presolve": 0}, "scip": {"limits/nodes": 100}}


def test_valid_raw_key_accepted(backend):
    sol = backend.solve(CASES[0].lp, raw=VALID_RAW[backend.name])
    assert sol.status == S.OPTIMAL and sol.objective == pytest.approx(4.25)


def _gurobi_restricted():
    adapter = importlib.import_module("solvers.gurobi").BACKEND
    status, restricted = adapter._probe
    if not status.available:
        pytest.skip(f"gurobi unavailable: {status.reason}")
    if not restricted:
        pytest.skip("a full Gurobi licence is present: no size limit to test")
    return adapter


def test_gurobi_refuses_too_many_variables():
    adapter = _gurobi_restricted()
    n = 2001
    lp = LinearProgram(np.ones(n), sp.csr_matrix(np.ones((1, n))), [1], [INF], np.zeros(n), np.ones(n))
    fit = adapter.fits(lp)
    assert not fit.available and "too large for this licence (2001 vars, 1 rows; limit 2000)" in fit.reason
    sol = adapter.solve(lp)
    assert sol.status == S.UNAVAILABLE and "too large" in sol.message
    small = LinearProgram(np.ones(2000), sp.csr_matrix(np.ones((1, 2000))), [1], [INF], np.zeros(2000), np.ones(2000))
    assert adapter.fits(small).available
    assert adapter.solve(small).objective == pytest.approx(1.0)


def test_gurobi_counts_split_ranged_rows():
    adapter = _gurobi_restricted()
    n = 1200  # 1200 ranged rows become 2400 Gurobi constraints
    lp = LinearProgram(np.ones(n), sp.eye(n, format="csr"), np.zeros(n), np.ones(n), np.zeros(n), np.ones(n))
    fit = adapter.fits(lp)
    assert not fit.available and "2400 rows" in fit.reason


def test_highs_is_the_embedded_default():
    from solvers import registry

    assert registry.default("lp") == "highs" and registry.get("highs").available().available


@pytest.mark.parametrize("name", ["highs", "gurobi"])
def test_milp_cutoff_proves_no_solution_below_it(name):
    """min x0 + x1 over integers in [1, 3]²: optimum 2. A cutoff of 1.5 has nothing below it
    (CUTOFF); a cutoff of 5 leaves the optimum to be found."""
    import scipy.sparse as sp

    from optcert.forms import Limits, LinearProgram, SolveStatus
    from solvers import available, get

    if not available()[name].available:
        pytest.skip(available()[name].reason)
    lp = LinearProgram(np.ones(2), sp.csr_matrix((0, 2)), [], [], [1, 1], [3, 3], np.array([True, True]))
    assert get(name).solve(lp, Limits(cutoff=1.5)).status is SolveStatus.CUTOFF
    solved = get(name).solve(lp, Limits(cutoff=5.0))
    assert solved.status is SolveStatus.OPTIMAL and solved.objective == pytest.approx(2.0)


def test_a_session_time_limit_applies_to_each_solve_not_to_their_sum():
    """HiGHS measures time_limit against the run time of all of a model's runs (HiGHS#1331): a
    session of many solves, each well within its limit, must not end in a run of time-limit stops."""
    from solvers import get

    rng = np.random.default_rng(0)
    n = 120
    A = rng.normal(size=(n, n)) * (rng.random((n, n)) < 0.3)
    lp = LinearProgram(np.zeros(n), sp.csr_matrix(A), np.full(n, -INF), np.ones(n), -np.ones(n), np.ones(n))
    session = get("highs").session(lp)
    first = session.solve(rng.normal(size=n), time_limit=10.0)
    limit = 1.5 * first.seconds + 0.002       # a few solves together exceed it; one does not
    statuses = [session.solve(rng.normal(size=n), time_limit=limit).status for _ in range(40)]
    assert statuses.count(S.TIME_LIMIT) <= 2, statuses
    assert session.solve(rng.normal(size=n)).status is S.OPTIMAL    # no limit: none is left over


def test_highs_milp_stops_when_interrupted():
    """`Limits.interrupt` is polled during a HiGHS MILP solve: True stops it as a time limit would
    (status TIME_LIMIT, only its proven bound claimed), long before it would end by itself."""
    import time

    import scipy.sparse as sp

    from optcert.forms import Limits, LinearProgram, SolveStatus
    from optcert.solve.linear import interpret
    from solvers import get

    rng = np.random.default_rng(1)
    n, m = 200, 30                           # a multi-knapsack HiGHS needs several seconds for
    A = sp.csr_matrix(rng.integers(1, 100, (m, n)).astype(float))
    lp = LinearProgram(-rng.integers(1, 100, n).astype(float), A, np.full(m, -np.inf), A.sum(axis=1).A1 / 2,
                       np.zeros(n), np.ones(n), np.ones(n, bool))
    polls = []
    began = time.monotonic()
    solution = get("highs").solve(lp, Limits(time_limit=60, interrupt=lambda: polls.append(1) or len(polls) > 3))
    assert time.monotonic() - began < 10 and len(polls) > 3
    assert solution.status is SolveStatus.TIME_LIMIT and "nterrupt" in solution.message
    bound = interpret(lp, solution)
    assert bound.value <= (solution.objective if solution.objective is not None else np.inf)
