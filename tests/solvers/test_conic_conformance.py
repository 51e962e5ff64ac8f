"""Conformance of every conic backend (SCS, Clarabel, MOSEK) on small ConicPrograms with known
optimum, duals and status, in the optcert.forms convention (lower-triangle √2 svec; y ∈ K*,
Aᵀy + c = 0, dual objective −bᵀy + c0). A backend that is not installed or licensed is skipped
with its Availability reason. cvxpy (tests only) cross-checks the mixed-cone problem.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.sparse as sp

from optcert.errors import InvalidOptionError
from optcert.forms import ConicProgram, Limits, LinearProgram, Solution
from optcert.forms import SolveStatus as S
from solvers.psd_vec import cone_violation, lower_to_upper, psd_slices, row_permutation, smat, svec, tri_len
from tests.builders import backend_or_skip

BACKENDS = ("scs", "clarabel", "mosek")
TOL = {"scs": 1e-5, "clarabel": 1e-7, "mosek": 1e-7}  # SCS runs at eps 1e-7 (first-order)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return backend_or_skip(request.param)


def _program(A, b, c, zero=0, nonneg=0, psd=(), c0=0.0) -> ConicProgram:
    return ConicProgram(np.asarray(c, float), sp.csc_matrix(np.asarray(A, float)), b, zero, nonneg, psd, c0)


def _check_duals(form: ConicProgram, sol: Solution, tol: float) -> None:
    """y ∈ K* part by part, Aᵀy + c ≈ 0, s = b − Ax ∈ K, yᵀs ≈ 0 and bound ≈ objective."""
    x, y = sol.x, sol.row_duals
    assert x is not None and y is not None
    nonneg = y[form.zero:form.zero + form.nonneg]
    assert np.all(nonneg >= -1e-6)
    for block in psd_slices(form):
        assert np.linalg.eigvalsh(smat(y[block]))[0] >= -1e-6
    assert np.max(np.abs(form.A.T @ y + form.c), initial=0.0) <= tol * 10
    slack = form.b - form.A @ x
    assert cone_violation(form, slack) <= tol * 10
    assert abs(slack @ y) <= tol * 10 * (1 + abs(sol.objective))
    assert sol.bound == pytest.approx(-form.b @ y + form.c0, abs=1e-12)
    assert sol.objective == pytest.approx(form.c @ x + form.c0, abs=1e-12)
    assert sol.bound == pytest.approx(sol.objective, abs=tol * 10 * (1 + abs(sol.objective)))


# ---------------------------------------------------------------- problems

def lp_problem() -> ConicProgram:
    """min x1 + 2x2 + 3 s.t. x1 + x2 = 1, x ≥ 0: x = (1, 0), unique y = (−1, 0, 1), value 4."""
    return _program([[1, 1], [-1, 0], [0, -1]], [1, 0, 0], [1, 2], zero=1, nonneg=2, c0=3)


def eig_problem(n: int, seed: int = 0) -> tuple[ConicProgram, np.ndarray]:
    """min ⟨C, X⟩ s.t. tr X = 1, X ⪰ 0 (optimum λ_min(C)); variables x = svec X."""
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((n, n))
    C = C + C.T
    t = tri_len(n)
    A = np.vstack([svec(np.eye(n))[None, :], -np.eye(t)])
    return _program(A, np.r_[1.0, np.zeros(t)], svec(C), zero=1, psd=(n,)), C


def mixed_problem(seed: int = 1):
    """x ∈ R⁴: one equality, −1 ≤ x ≤ 1 (8 rows), F0 − Σ xₖ Fₖ ⪰ 0 for a 2×2 and a 3×3 block."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-0.5, 0.5, 4)
    a = rng.standard_normal(4)
    sym = [[(lambda M: M + M.T)(rng.standard_normal((k, k))) for _ in range(4)] for k in (2, 3)]
    F0 = [sum(x0[j] * F[j] for j in range(4)) + np.eye(len(F[0])) for F in sym]  # x0 strictly feasible
    rows = [a[None, :], np.eye(4), -np.eye(4)]
    rows += [np.column_stack([svec(F[j]) for j in range(4)]) for F in sym]
    b = np.concatenate([[a @ x0], np.ones(8), svec(F0[0]), svec(F0[1])])
    c = rng.standard_normal(4)
    form = _program(np.vstack(rows), b, c, zero=1, nonneg=8, psd=(2, 3), c0=-1.25)
    return form, (a, x0, sym, F0, c)


def _cvxpy_mixed_value(data) -> float:
    cp = pytest.importorskip("cvxpy")
    a, x0, sym, F0, c = data
    x = cp.Variable(4)
    cons = [a @ x == a @ x0, x <= 1, x >= -1]
    cons += [F0[i] - sum(x[j] * sym[i][j] for j in range(4)) >> 0 for i in range(2)]
    problem = cp.Problem(cp.Minimize(c @ x - 1.25), cons)
    problem.solve(solver=cp.CLARABEL)
    assert problem.status == cp.OPTIMAL
    return float(problem.value)


# ---------------------------------------------------------------- psd_vec

def test_svec_convention():
    X = np.array([[1.0, 2, 3], [2, 4, 5], [3, 5, 6]])
    r2 = np.sqrt(2)
    assert np.allclose(svec(X), [1, 2 * r2, 3 * r2, 4, 5 * r2, 6])  # lower, column by column
    Y = np.random.default_rng(0).standard_normal((3, 3))
    Y = Y + Y.T
    assert svec(X) @ svec(Y) == pytest.approx(np.trace(X @ Y))
    assert np.allclose(smat(svec(Y)), Y)


def test_upper_permutation():
    assert lower_to_upper(3).tolist() == [0, 1, 3, 2, 4, 5]  # (0,0) (0,1) (1,1) (0,2) (1,2) (2,2)
    form = _program(np.zeros((11, 1)), np.zeros(11), [0], zero=1, nonneg=1, psd=(2, 3))
    assert row_permutation(form).tolist() == [0, 1, 2, 3, 4, 5, 6, 8, 7, 9, 10]


def test_native_triangle_conventions():
    """Pins what the adapters assume: SCS takes the lower triangle, Clarabel the upper one."""
    import clarabel
    import scs

    form, C = eig_problem(3, seed=4)
    lam = np.linalg.eigvalsh(C)[0]
    upper = row_permutation(form)
    data = {"A": form.A, "b": form.b, "c": form.c}
    res = scs.SCS(data, {"z": 1, "s": [3]}, eps_abs=1e-9, eps_rel=1e-9, verbose=False).solve()
    assert res["info"]["pobj"] == pytest.approx(lam, abs=1e-6)
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    cones = [clarabel.ZeroConeT(1), clarabel.PSDTriangleConeT(3)]
    for rows, expect in ((upper, True), (np.arange(7), False)):
        A = sp.csc_matrix(form.A.tocsr()[rows])
        sol = clarabel.DefaultSolver(sp.csc_matrix((6, 6)), form.c, A, form.b[rows], cones, settings).solve()
        assert (abs(sol.obj_val - lam) < 1e-6) == expect


# ---------------------------------------------------------------- conformance

def test_lp_known_optimum_and_dual(backend):
    form = lp_problem()
    sol = backend.solve(form)
    tol = TOL[backend.name]
    assert sol.status == S.OPTIMAL and sol.backend == backend.name
    assert sol.objective == pytest.approx(4.0, abs=tol)
    assert np.allclose(sol.x, [1, 0], atol=tol * 10)
    assert np.allclose(sol.row_duals, [-1, 0, 1], atol=tol * 10)
    _check_duals(form, sol, tol)


def test_sdp_min_eigenvalue(backend):
    form, C = eig_problem(4)
    lam, vecs = np.linalg.eigh(C)
    sol = backend.solve(form)
    tol = TOL[backend.name]
    assert sol.status == S.OPTIMAL
    assert sol.objective == pytest.approx(lam[0], abs=tol)
    v = vecs[:, 0]
    assert np.allclose(smat(sol.x), np.outer(v, v), atol=tol * 100)
    y = sol.row_duals  # y0 = −λ_min, Y = C − λ_min I
    assert y[0] == pytest.approx(-lam[0], abs=tol * 10)
    assert np.allclose(smat(y[1:]), C - lam[0] * np.eye(4), atol=tol * 10)
    _check_duals(form, sol, tol)


def test_mixed_cones_against_cvxpy(backend):
    form, data = mixed_problem()
    sol = backend.solve(form)
    tol = TOL[backend.name]
    assert sol.status == S.OPTIMAL
    assert sol.objective == pytest.approx(_cvxpy_mixed_value(data), abs=tol * 10)
    _check_duals(form, sol, tol)


def test_dual_convention_mixed(backend):
    """y ∈ K* part by part: free zero part, nonneg part ≥ 0, each PSD part's smat ⪰ 0."""
    form, _ = mixed_problem(seed=7)
    sol = backend.solve(form)
    assert sol.status == S.OPTIMAL
    y = sol.row_duals
    assert y.shape == (form.A.shape[0],)
    assert np.min(y[1:9]) >= -1e-6
    for block, n in zip(psd_slices(form), (2, 3)):
        assert smat(y[block]).shape == (n, n)
        assert np.linalg.eigvalsh(smat(y[block]))[0] >= -1e-6
    assert np.linalg.norm(form.A.T @ y + form.c) <= TOL[backend.name] * 10
    assert sol.bound == pytest.approx(sol.objective, abs=TOL[backend.name] * 10)
    assert {"primal_residual", "dual_residual", "gap", "iterations"} <= set(sol.stats)


INFEASIBLE = {
    "lp": lambda: _program([[-1], [1]], [-1, -1], [1], nonneg=2),  # x ≥ 1 and x ≤ −1
    "sdp": lambda: _program(np.vstack([svec(np.eye(2))[None, :], -np.eye(3)]), [-1, 0, 0, 0], [1, 0, 1],
                            zero=1, psd=(2,)),  # tr X = −1, X ⪰ 0
}
UNBOUNDED = {
    "lp": lambda: _program([[-1]], [0], [-1], nonneg=1),  # min −x, x ≥ 0
    "sdp": lambda: _program(-np.eye(3), [0, 0, 0], -svec(np.eye(2)), psd=(2,)),  # min −tr X, X ⪰ 0
}


@pytest.mark.parametrize("kind", sorted(INFEASIBLE))
def test_infeasible_with_certificate(backend, kind):
    form = INFEASIBLE[kind]()
    sol = backend.solve(form)
    assert sol.status == S.INFEASIBLE
    assert sol.x is None and sol.objective is None and sol.bound is None
    y = sol.row_duals  # Farkas: y ∈ K*, Aᵀy = 0, bᵀy < 0
    assert y is not None
    scale = abs(form.b @ y)
    assert form.b @ y < 0
    assert cone_violation(form, y, dual=True) <= 1e-6 * scale
    assert np.max(np.abs(form.A.T @ y)) <= 1e-6 * scale


@pytest.mark.parametrize("kind", sorted(UNBOUNDED))
def test_unbounded(backend, kind):
    sol = backend.solve(UNBOUNDED[kind]())
    assert sol.status == S.UNBOUNDED
    assert sol.x is None and sol.bound is None


def test_time_limit_is_a_solution(backend):
    form, _ = eig_problem(30, seed=3)
    raw = {"scs": {"eps_abs": 1e-12, "eps_rel": 1e-12}}.get(backend.name, {})
    sol = backend.solve(form, Limits(time_limit=1e-3), raw)
    assert isinstance(sol, Solution)
    if backend.name in ("scs", "clarabel"):
        assert sol.status == S.TIME_LIMIT, sol.message
        assert sol.bound is None and sol.x is not None and sol.row_duals is not None
        assert "dual_objective" in sol.stats
    else:
        assert sol.status in (S.TIME_LIMIT, S.OPTIMAL)


def test_unknown_raw_key_raises(backend):
    with pytest.raises(InvalidOptionError, match="no_such_option"):
        backend.solve(lp_problem(), raw={"no_such_option": 1})


def test_bad_raw_value_raises(backend):
    keys = {"scs": "max_iters", "clarabel": "max_iter", "mosek": "MSK_IPAR_INTPNT_MAX_ITERATIONS"}
    key = keys[backend.name]
    with pytest.raises(InvalidOptionError, match=key):
        backend.solve(lp_problem(), raw={key: "many"})


def test_wrong_form_is_unavailable(backend):
    lp = LinearProgram([1.0], sp.csr_matrix((0, 1)), [], [], [0.0], [1.0])
    assert not backend.fits(lp).available
    assert backend.solve(lp).status == S.UNAVAILABLE


@pytest.mark.parametrize("name", BACKENDS)
def test_availability_never_raises(name):
    adapter = importlib.import_module(f"solvers.{name}").BACKEND
    status = adapter.available()
    assert status.name == name and status.forms == ("conic",)
    if not status.available:
        assert status.reason
        sol = adapter.solve(lp_problem())
        assert sol.status == S.UNAVAILABLE and status.reason in sol.message


def test_mosek_model_building_without_licence():
    """The MOSEK task is built (F = −A, g = b, one ACC per cone) even without a licence."""
    mk = pytest.importorskip("mosek")
    from solvers import mosek as adapter

    form, _ = mixed_problem()
    with mk.Task() as task:
        adapter._build(mk, task, form)
        assert task.getnumafe() == form.A.shape[0]
        assert [task.getaccn(i) for i in range(task.getnumacc())] == [1, 8, 3, 6]
        with pytest.raises(InvalidOptionError, match="no_such_option"):
            adapter._set_params(mk, task, Limits(), {"no_such_option": 1})
