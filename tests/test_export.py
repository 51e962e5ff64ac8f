"""`optcert export`: files written by HiGHS, re-read by HiGHS, give the in-memory forms' optima."""
from __future__ import annotations

import json

import numpy as np
import pytest

from optcert.benchmarking.export import INDEX, ExportFormat, FormKind, export_problem, lower_problem
from optcert.cli import main
from optcert.errors import InvalidOptionError, UnreadableFileError
from optcert.forms import Limits, SolveStatus
from optcert.ir.load import load_network
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem, robustness_problem
from optcert.spec.vnnlib import read_vnnlib
from solvers.highs import BACKEND, portable_name, write_model
from tests.builders import DATA, random_mlp

highspy = pytest.importorskip("highspy")
EXACT = {"mip_rel_gap": 0.0, "mip_abs_gap": 0.0}
TINY, TINY_PROP = DATA / "tiny.onnx", DATA / "tiny_ok.vnnlib"


def tiny_problem() -> VerificationProblem:
    return read_vnnlib(TINY_PROP).problem(load_network(TINY), name="tiny:ok")


def robust_problem() -> VerificationProblem:
    rng = np.random.default_rng(7)
    net = random_mlp(rng, [4, 8, 8, 3])
    return robustness_problem(net, rng.uniform(0.2, 0.8, 4), 0, 0.3, name="random mlp / robust")


def any_problem() -> VerificationProblem:
    """One ANY case of two rows: its single clause is lowered through the epigraph column t."""
    rng = np.random.default_rng(3)
    net = random_mlp(rng, [3, 6, 6, 2])
    spec = LinearSpec([[1.0, -1.0], [-0.5, 1.0]], [0.1, -0.2])
    case = Case(Box(-np.ones(3), np.ones(3)), spec, Combine.ANY)
    return VerificationProblem(net, (case,), name="any")


PROBLEMS = {"tiny": tiny_problem, "robust": robust_problem, "any": any_problem}


def reread(path):
    """(HiGHS instance after solving the re-read file, its LP)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in EXACT.items():
        h.setOptionValue(key, value)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h, h.getLp()


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("form", list(FormKind))
@pytest.mark.parametrize("which", PROBLEMS)
def test_reread_file_has_the_in_memory_optimum(tmp_path, which, form, fmt):
    problem = PROBLEMS[which]()
    paths = export_problem(problem, form, fmt, tmp_path)
    clauses = lower_problem(problem, form)
    assert len(paths) == len(clauses) == sum(len(c.clauses()) for c in problem.cases)
    for path, cf in zip(paths, clauses):
        assert path.name == f"{path.name.split('-case')[0]}-case{cf.case.index}-clause{cf.index}.{fmt.value}"
        lp = cf.lowered.form
        sol = BACKEND.solve(lp, Limits(mip_gap=0.0), raw={"mip_abs_gap": 0.0})
        assert sol.status is SolveStatus.OPTIMAL
        h, model = reread(path)
        assert model.offset_ == pytest.approx(lp.c0, rel=1e-14, abs=1e-14)  # HiGHS keeps c0
        assert (model.num_col_, model.num_row_) == (lp.n_cols, lp.n_rows)
        assert h.getInfo().objective_function_value == pytest.approx(sol.objective, rel=0, abs=1e-7)
        kinds = list(model.integrality_) or [highspy.HighsVarType.kContinuous] * model.num_col_
        read = {name: kind == highspy.HighsVarType.kInteger for name, kind in zip(model.col_names_, kinds)}
        wanted = {portable_name(name): bool(flag) for name, flag in zip(lp.col_names, lp.integer)}
        assert read == wanted  # by name: an LP-format reader orders columns by first appearance
    if form is FormKind.MILP:
        assert any(cf.lowered.form.is_mip for cf in clauses)
    if which == "any":
        assert "t[max]" in clauses[0].lowered.form.col_names  # the epigraph max of the clause rows


def test_index_describes_every_file(tmp_path):
    problem = robust_problem()
    paths = export_problem(problem, "milp", "mps", tmp_path, bounds="ibp")
    index = json.loads((tmp_path / INDEX).read_text())
    assert (index["form"], index["format"], index["bounds"]) == ("milp", "mps", "ibp")
    assert index["offset_in_file"] is True
    assert [e["file"] for e in index["files"]] == [p.name for p in paths]
    for entry, cf in zip(index["files"], lower_problem(problem, FormKind.MILP, "ibp")):
        lp = cf.lowered.form
        assert entry["rows"] == list(cf.clause) and entry["case"] == cf.case.index
        assert entry["c0"] == lp.c0 and entry["n_columns"] == lp.n_cols and entry["n_rows"] == lp.n_rows
        assert entry["n_integers"] == int(lp.integer.sum()) > 0
    assert all(p.name.startswith("random_mlp_robust-case0-clause") for p in paths)


def test_milp_is_at_least_the_lp(tmp_path):
    problem = robust_problem()
    for kind in FormKind:
        export_problem(problem, kind, ExportFormat.MPS, tmp_path / kind.value)
    for milp_path in sorted((tmp_path / "milp").glob("*.mps")):
        lp_value = reread(tmp_path / "lp" / milp_path.name)[0].getInfo().objective_function_value
        assert reread(milp_path)[0].getInfo().objective_function_value >= lp_value - 1e-9


def test_bad_choices_and_directories(tmp_path):
    problem = tiny_problem()
    with pytest.raises(InvalidOptionError, match="form 'sdp'"):
        export_problem(problem, "sdp", "mps", tmp_path)
    with pytest.raises(InvalidOptionError, match="format 'cbf'"):
        export_problem(problem, "milp", "cbf", tmp_path)
    with pytest.raises(InvalidOptionError, match="bound method"):
        export_problem(problem, "milp", "mps", tmp_path, bounds="magic")
    (tmp_path / "file").write_text("")
    with pytest.raises(UnreadableFileError, match="file/sub"):
        export_problem(problem, "milp", "mps", tmp_path / "file" / "sub")
    with pytest.raises(InvalidOptionError, match="suffix"):
        write_model(lower_problem(problem, "lp")[0].lowered.form, tmp_path / "m.txt")


def test_cli_export_writes_files(tmp_path, capsys):
    out = tmp_path / "problems"
    assert main(["export", str(TINY), str(TINY_PROP), "--form", "lp", "--format", "mps", "--out", str(out),
                 "--bounds", "alpha-crown"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "tiny_tiny_ok-case0-clause0.mps"), str(out / INDEX)]
    assert all((out / p).is_file() for p in printed)


def test_cli_export_robustness(tmp_path, capsys):
    images = str(DATA / "tiny_images.npz")
    assert main(["export", str(TINY), "--image", images, "--index", "1", "--eps", "0.05", "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.mps"))) == len(capsys.readouterr().out.split()) - 1 >= 1


def test_cli_bad_form_is_one_line_exit_7(tmp_path, capsys):
    assert main(["export", str(TINY), str(TINY_PROP), "--form", "sdp", "--format", "mps", "--out", str(tmp_path)]) == 7
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--form 'sdp'" in err and "Traceback" not in err


def test_cli_unwritable_out_dir(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code = main(["export", str(TINY), str(TINY_PROP), "--out", str(tmp_path / "file" / "sub")])
    assert code == UnreadableFileError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "file/sub" in err and "Traceback" not in err
