"""torch-lowrank (Burer–Monteiro, augmented Lagrangian + L-BFGS) on small QuadraticModels built here,
against SDP optima from cvxpy (Clarabel): optimum, near-certificate from the multipliers, batching,
limits and option handling."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
cp = pytest.importorskip("cvxpy")

from optcert.errors import InvalidOptionError  # noqa: E402
from optcert.forms import Limits, LinearProgram, LowRankSDP, QuadraticModel, SolveStatus  # noqa: E402
from optcert.precision import Precision  # noqa: E402
from solvers import registry  # noqa: E402
from solvers.torch_lowrank import BACKEND, LowRankOptions, solve_batch, unflatten  # noqa: E402

STATS = {"max_violation", "outer_iterations", "inner_iterations", "rank", "rho", "grad_norm"}


def _vec(n: int, entries: dict) -> np.ndarray:
    """Slot vector over all upper-triangle slots of an (n+1)×(n+1) matrix from {(a, b): coefficient}."""
    rows, cols = np.triu_indices(n + 1)
    where = {(a, b): s for s, (a, b) in enumerate(zip(rows.tolist(), cols.tolist()))}
    q = np.zeros(rows.size)
    for (a, b), value in entries.items():
        q[where[min(a, b), max(a, b)]] += value
    return q


def _model(n: int, objective: np.ndarray, rows: list, equality) -> QuadraticModel:
    r, c = np.triu_indices(n + 1)
    return QuadraticModel(n, r, c, objective, sp.csr_matrix(np.array(rows)), np.asarray(equality, bool))


def _quadratic(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Slot vector of vᵀAv + b·v (off-diagonal slots carry 2A_ij)."""
    n = b.size
    entries = {(i + 1, j + 1): A[i, j] * (1 if i == j else 2) for i in range(n) for j in range(i, n)}
    return _vec(n, entries | {(0, i + 1): b[i] for i in range(n)})


def maxcut(n: int, seed: int) -> QuadraticModel:
    """MAX-CUT SDP: min ⟨−L, V⟩ s.t. V_ii = 1 (written as V_ii − P_00 = 0)."""
    rng = np.random.default_rng(seed)
    A = np.triu(rng.random((n, n)) * (rng.random((n, n)) < 0.6), 1)
    L = np.diag((A + A.T).sum(1)) - (A + A.T)
    rows = [_vec(n, {(i + 1, i + 1): 1.0, (0, 0): -1.0}) for i in range(n)]
    return _model(n, _quadratic(-L, np.zeros(n)), rows, [True] * n)


def box_qcqp(n: int, k: int, seed: int) -> QuadraticModel:
    """min vᵀAv + b·v (A indefinite) s.t. v_i² − v_i ≤ 0 (v ∈ [0,1]) and k linear a·v − β ≤ 0."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    rows = [_vec(n, {(i + 1, i + 1): 1.0, (0, i + 1): -1.0}) for i in range(n)]
    for _ in range(k):
        a = rng.standard_normal(n)
        beta = 0.3 * np.abs(a).sum() * rng.random()
        rows.append(_vec(n, {(0, i + 1): a[i] for i in range(n)} | {(0, 0): -beta}))
    return _model(n, _quadratic((A + A.T) / 2, rng.standard_normal(n)), rows, [False] * (n + k))


MODELS = {"maxcut8": lambda: maxcut(8, 0), "qcqp6": lambda: box_qcqp(6, 3, 0), "qcqp10": lambda: box_qcqp(10, 4, 1)}


def sdp_optimum(model: QuadraticModel, objective: np.ndarray | None = None) -> float:
    """The Shor SDP optimum by cvxpy (Clarabel, else SCS)."""
    P = cp.Variable((model.n + 1, model.n + 1), symmetric=True)
    Q = model.constraints.toarray()
    cons = [P >> 0, P[0, 0] == 1]
    for i in range(model.m):
        value = cp.trace(model.dense(Q[i]) @ P)
        cons.append(value == 0 if model.equality[i] else value <= 0)
    c = model.objective if objective is None else objective
    problem = cp.Problem(cp.Minimize(cp.trace(model.dense(c) @ P)), cons)
    solver = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else "SCS"
    problem.solve(solver=solver)
    assert problem.status == cp.OPTIMAL
    return float(problem.value)


def rank_for(model: QuadraticModel) -> int:
    """r ≥ ⌈√(2m)⌉ + 1: above the Barvinok–Pataki bound, where BM's second-order points are optimal."""
    return math.ceil(math.sqrt(2 * model.m)) + 1


def slack_min_eig(model: QuadraticModel, objective: np.ndarray, y: np.ndarray, lam: float) -> float:
    """λ_min of S(y) = C + Σ y_i Q_i − λ E_00."""
    S = model.dense(objective) + model.dense(model.constraints.T @ y)
    S[0, 0] -= lam
    return float(np.linalg.eigvalsh(S)[0])


@pytest.mark.parametrize("name", list(MODELS))
def test_reaches_sdp_optimum_with_near_certificate(name):
    model = MODELS[name]()
    r = rank_for(model)
    sol = BACKEND.solve(LowRankSDP(model, r))
    assert sol.status is SolveStatus.OPTIMAL, sol.message
    ref = sdp_optimum(model)
    assert abs(sol.objective - ref) <= 1e-4 * max(1.0, abs(ref))
    y = sol.row_duals
    assert y.shape == (model.m,) and np.all(y[~model.equality] >= 0)
    assert slack_min_eig(model, model.objective, y, sol.objective) >= -1e-4
    # output convention: U row-major with row 0 = e0, objective = ⟨C, UUᵀ⟩, no bound, documented stats
    U = unflatten(sol, model.n, r)
    assert np.array_equal(U[0], np.eye(1, r)[0])
    assert sol.objective == pytest.approx(model.objective @ model.values(U @ U.T), abs=1e-12)
    assert sol.bound is None and set(sol.stats) >= STATS
    assert sol.stats["max_violation"] <= 1e-7 and sol.stats["rank"] == r


def test_batch_equals_one_at_a_time():
    model = box_qcqp(6, 3, 0)
    r = rank_for(model)
    rng = np.random.default_rng(5)
    objectives = np.stack([model.objective] + [_quadratic(B + B.T, rng.standard_normal(6))
                                              for B in rng.standard_normal((2, 6, 6))])
    batch = solve_batch(model, objectives, r)
    for c, together in zip(objectives, batch):
        alone = BACKEND.solve(LowRankSDP(model.with_objective(c), r))
        assert together.status is alone.status is SolveStatus.OPTIMAL
        assert together.objective == pytest.approx(alone.objective, rel=1e-9, abs=1e-9)
        assert np.allclose(together.row_duals, alone.row_duals, atol=1e-7)
        assert abs(together.objective - sdp_optimum(model, c)) <= 1e-4 * max(1.0, abs(together.objective))


def test_init_is_used_and_row0_is_pinned():
    model = box_qcqp(6, 3, 0)
    r = rank_for(model)
    first = BACKEND.solve(LowRankSDP(model, r))
    U = unflatten(first, model.n, r)
    Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((r, r)))
    init = 2.0 * U @ Q  # P scaled by 4 and rotated: row 0 is not e0
    start = BACKEND.solve(LowRankSDP(model, r, init=init), Limits(time_limit=0.0))
    V = unflatten(start, model.n, r)  # the pinned start: row 0 = e0, the same P up to the scale
    assert np.array_equal(V[0], np.eye(1, r)[0]) and np.allclose(V @ V.T, U @ U.T, atol=1e-12)
    again = BACKEND.solve(LowRankSDP(model, r, init=init))
    assert again.status is SolveStatus.OPTIMAL and again.objective == pytest.approx(first.objective, abs=1e-5)


def test_warm_start_with_duals():
    model = box_qcqp(10, 4, 1)
    r = rank_for(model)
    cold = BACKEND.solve(LowRankSDP(model, r))
    warm = solve_batch(model, model.objective[None], r, unflatten(cold, model.n, r), duals=cold.row_duals)[0]
    assert warm.status is SolveStatus.OPTIMAL and warm.objective == pytest.approx(cold.objective, rel=1e-6, abs=1e-6)
    assert warm.stats["inner_iterations"] < cold.stats["inner_iterations"] / 3
    with pytest.raises(ValueError):
        solve_batch(model, model.objective[None], r, duals=np.full(model.m + 1, 1.0))


def test_time_limit_returns_current_iterate_and_multipliers():
    model = box_qcqp(40, 10, 2)
    sol = BACKEND.solve(LowRankSDP(model, 8), Limits(time_limit=0.0))
    assert sol.status is SolveStatus.TIME_LIMIT
    assert sol.x.shape == (41 * 8,) and np.all(np.isfinite(sol.x))
    assert sol.row_duals.shape == (model.m,) and np.all(sol.row_duals >= 0)
    assert math.isfinite(sol.objective) and sol.seconds < 5


def test_iteration_limit():
    sol = BACKEND.solve(LowRankSDP(box_qcqp(10, 4, 1), 7), raw={"outer_iterations": 1, "inner_iterations": 3})
    assert sol.status is SolveStatus.ITERATION_LIMIT and sol.stats["inner_iterations"] <= 3


def test_float32_gets_close():
    model = box_qcqp(6, 3, 0)
    sol = BACKEND.solve(LowRankSDP(model, rank_for(model)),
                        raw={"precision": "float32", "tolerance": 1e-4, "grad_tolerance": 1e-3})
    assert sol.status is SolveStatus.OPTIMAL
    assert abs(sol.objective - sdp_optimum(model)) <= 1e-2


@pytest.mark.parametrize("raw", [{"bogus": 1}, {"tolerance": -1}, {"precision": "float16"}, {"outer_iterations": 0},
                                 {"rho_growth": 1.0}, {"rho": "nan"}, {"device": "no-such-device"}])
def test_bad_raw_options_raise(raw):
    with pytest.raises(InvalidOptionError):
        BACKEND.solve(LowRankSDP(maxcut(4, 0), 3), raw=raw)
    with pytest.raises(InvalidOptionError):
        solve_batch(maxcut(4, 0), maxcut(4, 0).objective[None], 3, options=raw)


def test_raw_and_typed_options_agree():
    model = maxcut(5, 1)
    typed = solve_batch(model, model.objective[None], 4, options=LowRankOptions(seed=3, rho=2.0))[0]
    raw = BACKEND.solve(LowRankSDP(model, 4), raw={"seed": "3", "rho": "2"})
    assert typed.objective == raw.objective and np.array_equal(typed.x, raw.x)
    assert LowRankOptions().precision is Precision.FLOAT64 and LowRankOptions().tolerance == 1e-7


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_typed_error():
    with pytest.raises(InvalidOptionError, match="CUDA"):
        BACKEND.solve(LowRankSDP(maxcut(4, 0), 3), raw={"device": "cuda"})


def test_availability_and_other_forms():
    status = registry.available()["torch-lowrank"]
    assert status.available and status.forms == ("lowrank",)
    lp = LinearProgram([1.0], sp.csr_matrix((0, 1)), [], [], [0.0], [1.0])
    assert not BACKEND.fits(lp).available and "LinearProgram" in BACKEND.fits(lp).reason
    assert BACKEND.solve(lp).status is SolveStatus.UNAVAILABLE
