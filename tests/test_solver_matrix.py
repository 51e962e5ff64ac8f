"""The solver matrix (`optcert bench`): performance profiles on a hand-made time table, every pair
on tiny nets with sound and consistent bounds, unavailable/failed/timed-out cells as rows,
exported files that re-solve to the in-memory optima, the results store, and the CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest

import solvers
from optcert.benchmarking.conic_files import read_conic
from optcert.benchmarking.instances import RowChoice, clauses, robustness_instances, vnnlib_instances
from optcert.benchmarking.matrix_report import StoreMemo, read_cells
from optcert.benchmarking.profiles import grouped_profiles, performance_profile, performance_ratios
from optcert.benchmarking.solver_matrix import Cell, Instance, Lowering, MatrixSettings, pairs, run_matrix
from optcert.cli import main
from optcert.errors import InvalidOptionError
from optcert.forms import Limits, SolveStatus
from optcert.spec.problem import robustness_problem
from tests.builders import DATA, random_mlp

INF = math.inf
ALL = list(Lowering)
TINY, TINY_PROP = DATA / "tiny.onnx", DATA / "tiny_ok.vnnlib"


# ---- performance profiles ------------------------------------------------------------------
def test_ratios_and_rho_on_a_hand_made_table():
    # problems × solvers (A, B, C); ∞ = failed; problem 4 failed everywhere
    times = np.array([[1.0, 2.0, 4.0],
                      [3.0, 1.5, INF],
                      [2.0, 2.0, 1.0],
                      [INF, INF, INF]])
    r = performance_ratios(times)
    expected = np.array([[1, 2, 4], [2, 1, INF], [2, 2, 1], [INF, INF, INF]], dtype=float)
    np.testing.assert_array_equal(r, expected)
    table = {f"p{i}": dict(zip("ABC", row)) for i, row in enumerate(times.tolist())}
    table["p1"]["C"] = None   # None and ∞ both mean failed
    prof = performance_profile(table)
    assert prof.solvers == ("A", "B", "C") and prof.problems == ("p0", "p1", "p2", "p3")
    np.testing.assert_array_equal(prof.rho(1.0), [0.25, 0.25, 0.25])
    np.testing.assert_array_equal(prof.rho(2.0), [0.75, 0.75, 0.25])
    np.testing.assert_array_equal(prof.rho(4.0), [0.75, 0.75, 0.5])
    np.testing.assert_array_equal(prof.rho(INF), [0.75, 0.75, 0.5])   # the all-failed problem never counts
    taus, values = prof.steps("C")
    np.testing.assert_array_equal(taus, [1.0, 4.0])
    np.testing.assert_array_equal(values, [0.25, 0.5])
    assert prof.max_ratio == 4.0


def test_profile_ties_missing_entries_and_bad_times():
    prof = performance_profile({"p": {"A": 2.0, "B": 2.0}, "q": {"A": 1.0}}, solvers=("B", "A"))
    np.testing.assert_array_equal(prof.ratios, [[1, 1], [INF, 1]])   # missing B on q = failed
    np.testing.assert_array_equal(prof.rho(1.0), [0.5, 1.0])
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="problem 0 / solver 1"):
            performance_ratios(np.array([[1.0, bad]]))


def test_grouped_profiles_skip_backends_that_never_ran():
    cells = [Cell("i1", Lowering.LP, "highs", SolveStatus.OPTIMAL, 1.0),
             Cell("i1", Lowering.LP, "scip", SolveStatus.TIME_LIMIT, 9.0),
             Cell("i1", Lowering.LP, "gurobi", SolveStatus.UNAVAILABLE, message="size-limited licence"),
             Cell("i2", Lowering.LP, "highs", SolveStatus.OPTIMAL, 4.0),
             Cell("i2", Lowering.LP, "scip", SolveStatus.OPTIMAL, 2.0)]
    prof = grouped_profiles(cells, lambda c: c.lowering.value)["lp"]
    assert prof.solvers == ("highs", "scip")
    np.testing.assert_array_equal(prof.ratios, [[1, INF], [2, 1]])


# ---- the matrix on tiny nets ---------------------------------------------------------------
def tiny_instances(n: int = 1) -> list[Instance]:
    rng = np.random.default_rng(11)
    net = random_mlp(rng, [3, 5, 4, 3])
    out = []
    for k in range(n):
        problem = robustness_problem(net, rng.uniform(0.3, 0.7, 3), 0, 0.15, name=f"tiny{k}")
        out += [Instance(f"tiny{k}:r{r}", problem, 0, (r,)) for r in range(2)]
    return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    export = tmp_path_factory.mktemp("export")
    todo = pairs(ALL, solvers.names())
    cells = run_matrix(tiny_instances(), todo, MatrixSettings(timeout=20), export_dir=export)
    return todo, cells, export


def test_every_pair_is_a_cell_and_unavailable_ones_say_why(matrix):
    todo, cells, _ = matrix
    assert [(c.lowering, c.backend) for c in cells] == todo * 2
    report = solvers.available()
    for c in cells:
        if not report[c.backend].available:
            assert c.status is SolveStatus.UNAVAILABLE and c.label() == f"unavailable: {c.message}"
            assert report[c.backend].reason in c.message and c.certified is None
        else:
            assert c.status is SolveStatus.OPTIMAL, c
    assert {lw for lw, _ in todo} == set(Lowering)
    assert ("bm", "torch-lowrank") in {(lw.value, b) for lw, b in todo}


def test_bounds_are_sound_and_backends_agree(matrix):
    _, cells, _ = matrix
    for inst in ("tiny0:r0", "tiny0:r1"):
        mine = {c.pair: c for c in cells if c.instance == inst and c.solved}
        exact = mine["milp:highs"].objective
        for pair, c in mine.items():
            assert c.certified is not None and c.certified <= exact + 1e-6, pair   # nothing above the exact value
            same = [o for o in mine.values() if o.lowering is c.lowering and o.lowering is not Lowering.BM]
            assert all(abs(o.objective - c.objective) < 1e-4 for o in same), pair
        assert mine["milp:highs"].trust == "solver" and mine["lp:highs"].trust == "rigorous"
        assert mine["lp:highs"].certified <= mine["milp:highs"].certified + 1e-6


def test_exported_files_resolve_to_the_in_memory_optima(matrix):
    highspy = pytest.importorskip("highspy")
    _, cells, export = matrix
    for c in cells:
        if c.instance != "tiny0:r1" or c.backend not in ("highs", "scs"):
            continue
        stem = export / f"tiny0_r1.{c.lowering.value}"
        if c.lowering is Lowering.SDP:
            for path in (stem.with_name(stem.name + ".cbf"), stem.with_name(stem.name + ".dat-s")):
                again = solvers.get("scs").solve(read_conic(path), Limits(time_limit=20))
                assert again.objective == pytest.approx(c.objective, abs=1e-5)
            continue
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 0.0)
        assert h.readModel(str(stem.with_name(stem.name + ".mps"))) == highspy.HighsStatus.kOk
        h.run()
        assert h.getInfo().objective_function_value == pytest.approx(c.objective, abs=1e-7)


def test_failures_and_time_limits_are_rows(monkeypatch):
    inst = tiny_instances()[:1]
    scip = solvers.get("scip")
    monkeypatch.setattr(type(scip), "solve", lambda self, form, limits=Limits(), raw=None: 1 / 0)
    cells = run_matrix(inst, [(Lowering.LP, "scip"), (Lowering.LP, "highs")], MatrixSettings(timeout=5))
    assert cells[0].status is SolveStatus.ERROR and "ZeroDivisionError" in cells[0].message
    assert cells[1].status is SolveStatus.OPTIMAL
    rng = np.random.default_rng(2)
    net = random_mlp(rng, [12, 16, 16, 3])
    big = Instance("big", robustness_problem(net, rng.uniform(0.3, 0.7, 12), 0, 0.3), 0, (0,))
    cell = run_matrix([big], [(Lowering.SDP, "scs")], MatrixSettings(timeout=1e-3))[0]
    assert cell.status is SolveStatus.TIME_LIMIT and cell.seconds < 5
    assert cell.certified is None or cell.certified < INF


def test_not_applicable_and_size_guards():
    rng = np.random.default_rng(4)
    from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem

    net = random_mlp(rng, [3, 4, 2])
    case = Case(Box(-np.ones(3), np.ones(3)), LinearSpec([[1.0, -1.0], [-1.0, 1.0]], [0.0, 0.5]), Combine.ANY)
    inst = Instance("any", VerificationProblem(net, (case,)), 0, (0, 1))
    todo = [(Lowering.MILP, "highs"), (Lowering.SDP, "scs"), (Lowering.SDP, "clarabel")]
    cells = run_matrix([inst], todo, MatrixSettings(timeout=5, max_ipm_psd=1))
    assert cells[0].solved and cells[0].certified is not None
    assert all(c.status is SolveStatus.UNAVAILABLE and "not applicable" in c.message for c in cells[1:])
    single = Instance("one", inst.problem, 0, (0,))
    cell = run_matrix([single], todo[2:], MatrixSettings(timeout=5, max_ipm_psd=2))[0]
    assert cell.status is SolveStatus.UNAVAILABLE and "max_ipm_psd 2" in cell.message


def test_gurobi_over_its_size_limit_is_unavailable():
    status = solvers.available()["gurobi"]
    if not (status.available and "size-limited" in status.reason):
        pytest.skip(f"gurobi here: {status}")
    rng = np.random.default_rng(0)
    net = random_mlp(rng, [2100, 3, 2])
    inst = Instance("wide", robustness_problem(net, rng.uniform(0.3, 0.7, 2100), 0, 0.01), 0, (0,))
    cell = run_matrix([inst], [(Lowering.LP, "gurobi")], MatrixSettings(timeout=5))[0]
    assert cell.status is SolveStatus.UNAVAILABLE and "too large for this licence" in cell.message


def test_pairs_and_bad_options():
    assert pairs([Lowering.SDP], ["highs", "scs"]) == [(Lowering.SDP, "scs")]
    with pytest.raises(InvalidOptionError, match="nope"):
        pairs(ALL, ["nope"])
    with pytest.raises(InvalidOptionError, match="no backend"):
        pairs([Lowering.SDP], ["highs"])
    with pytest.raises(InvalidOptionError, match="rows"):
        Instance("x", tiny_instances()[0].problem, 0, (7,))
    with pytest.raises(InvalidOptionError, match="timeout"):
        MatrixSettings(timeout=0)


# ---- instance selection, store, command line -----------------------------------------------
def test_worst_clause_and_robustness_ids(tmp_path):
    problem = tiny_instances()[0].problem
    every = clauses(problem, RowChoice.ALL)
    assert every == [(0, (0,)), (0, (1,))]
    from optcert.bounds import BoundMethod, compute_bounds
    from optcert.compiled import compile_problem

    cc = compile_problem(problem)[0]
    lower = compute_bounds(cc.net, [cc.ibp], BoundMethod.CROWN)[0].lower[-1]
    assert clauses(problem, RowChoice.WORST) == [(0, (int(np.argmin(lower)),))]
    insts = robustness_instances(TINY, DATA / "tiny_images.npz", [0, 1], [0.05], choice=RowChoice.ALL)
    problems = {i.problem.name: i.problem for i in insts}
    assert len(problems) == 2 and len(insts) == sum(p.rows for p in problems.values())
    for inst in insts:
        target = int(inst.name.rsplit(":t", 1)[1])
        assert inst.prop_id.startswith("linf:") and inst.prop_id.endswith(f":0.05:{target}")
        assert len(inst.network_id) == 64


def test_store_records_cells_and_a_rerun_reuses_them(tmp_path, monkeypatch):
    store_mod = pytest.importorskip("optcert.sweeps.store")
    insts = vnnlib_instances(TINY, [TINY_PROP])
    todo = [(Lowering.LP, "highs"), (Lowering.SDP, "mosek"), (Lowering.SDP, "scs")]
    settings = MatrixSettings(timeout=10)
    with store_mod.ResultStore(tmp_path / "runs.db") as store:
        first = run_matrix(insts, todo, settings, StoreMemo(store, settings))
        records = store.records()
        assert {r.key.method for r in records} == {f"{b}:{lw.value}" for lw, b in todo if any(
            c.ran for c in first if c.backend == b)}
        assert all(r.key.prop.startswith("vnnlib:") and r.verdict == "proved" for r in records)
    monkeypatch.setattr(type(solvers.get("highs")), "solve", lambda *a, **k: pytest.fail("re-solved"))
    with store_mod.ResultStore(tmp_path / "runs.db") as store:
        again = run_matrix(insts, todo, settings, StoreMemo(store, settings))
        assert len(store.records()) == len(records)
    assert [c.as_row() for c in again if c.ran] == [c.as_row() for c in first if c.ran]


def test_cli_writes_report_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", str(TINY), str(TINY_PROP), "--forms", "milp,lp", "--backends", "highs,mosek",
                 "--out", str(out), "--export-dir", str(tmp_path / "x"), "--timeout", "5"]) == 0
    text = capsys.readouterr().out
    assert "| tiny:tiny_ok[c0r0] | milp | highs | optimal |" in text and "Performance profiles" in text
    cells = read_cells(out / "matrix.csv")
    assert [c.pair for c in cells] == ["milp:highs", "lp:highs"]
    assert (out / "profile.png").stat().st_size > 1000 and (out / "matrix.md").is_file()
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["tiny_tiny_ok_c0r0.lp.mps",
                                                                 "tiny_tiny_ok_c0r0.milp.mps"]
    for argv, culprit, code in ((["--forms", "foo"], "--forms 'foo'", 7), (["--backends", "nope"], "nope", 7),
                                (["--rows", "some"], "--rows", 7), (["--timeout", "0"], "timeout", 2)):
        assert main(["bench", str(TINY), str(TINY_PROP), *argv]) == code
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and culprit in err and "Traceback" not in err
    assert main(["bench", str(TINY)]) == 2           # usage: no property
    assert "NETWORK" in capsys.readouterr().err
