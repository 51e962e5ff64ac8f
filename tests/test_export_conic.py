"""CBF / SDPA export of the full SDP: a re-read reproduces the ConicProgram, SCS re-solves it to the
same optimum, and the files mean what the formats say (checked against their definitions here)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from optcert.benchmarking.conic_files import matrix_layout, read_conic, write_cbf, write_sdpa
from optcert.benchmarking.export import INDEX, ConicForm, ConicFormat, export_problem
from optcert.bounds import BoundMethod, compute_bounds
from optcert.cli import main
from optcert.compiled import compile_problem
from optcert.errors import LoweringError, UnreadableFileError
from optcert.forms import ConicProgram, Limits, SolveStatus
from optcert.lowerings.quadratic import relu_qcqp
from optcert.lowerings.sdp_full import lower_sdp
from optcert.spec.problem import robustness_problem
from solvers.psd_vec import smat, svec
from tests.builders import DATA, backend_or_skip, random_mlp

WRITERS = {"cbf": write_cbf, "dat-s": write_sdpa}


def sdp_form(c0: float = 0.0, seed: int = 0) -> ConicProgram:
    """The full SDP of row 0 of a small random robustness problem (objective constant c0)."""
    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [4, 6, 5, 3])
    cc = compile_problem(robustness_problem(net, rng.uniform(0.3, 0.7, 4), 0, 0.2))[0]
    bounds = compute_bounds(cc.net, [cc.ibp], BoundMethod.CROWN)[0]
    f = lower_sdp(relu_qcqp(cc.net, bounds, 0).form).form
    return ConicProgram(f.c, f.A, f.b, f.zero, f.nonneg, f.psd, c0)


def scs_value(form: ConicProgram) -> float:
    """SCS's optimum of `form`, c0 included."""
    solution = backend_or_skip("scs").solve(form, Limits(time_limit=30))
    assert solution.status is SolveStatus.OPTIMAL
    return solution.objective


@pytest.mark.parametrize("suffix", WRITERS)
def test_reread_reproduces_the_program_and_its_optimum(tmp_path, suffix):
    form = sdp_form(c0=0.375)
    path = WRITERS[suffix](form, tmp_path / f"p.{suffix}", comment="two\nlines")
    back = read_conic(path)
    assert (back.zero, back.nonneg, back.psd, back.c0) == (form.zero, form.nonneg, form.psd, form.c0)
    assert back.A.shape == form.A.shape
    assert abs(back.A - form.A).max() <= 1e-15 * abs(form.A).max()
    np.testing.assert_allclose(back.b, form.b, rtol=0, atol=0)
    np.testing.assert_allclose(back.c, form.c, rtol=1e-15, atol=1e-16)
    assert scs_value(back) == pytest.approx(scs_value(form), abs=1e-5)


KEYWORDS = {"VER", "OBJSENSE", "PSDVAR", "CON", "OBJFCOORD", "OBJBCOORD", "FCOORD", "BCOORD"}


def _sections(path) -> dict:
    """A CBF file's keyword sections as lists of token lists."""
    out, key = {}, None
    for line in path.read_text().splitlines():
        tokens = line.split()
        if not tokens or line.startswith("#"):
            continue
        if tokens[0] in KEYWORDS:
            key = tokens[0]
            out[key] = []
        else:
            out[key].append(tokens)
    return out


def _inner(entries, X: np.ndarray, lower: bool) -> float:
    """⟨F, X⟩ for a symmetric F given by one triangle's entries (i, j, value)."""
    total = 0.0
    for i, j, v in entries:
        assert (i >= j) if lower else (i <= j)
        total += v * X[i, j] * (1 if i == j else 2)
    return total


def _solution_matrix(form: ConicProgram):
    """(X at SCS's optimum, the optimum c·x + c0)."""
    solution = backend_or_skip("scs").solve(form, Limits(time_limit=30))
    return smat(solution.x), solution.objective


def test_cbf_means_the_program(tmp_path):
    """At the SCS optimum X: objective ⟨F_obj, X⟩ + c0 is the optimum, every row's g_i = ⟨F_i, X⟩ + b_i
    lies in its cone (L= zero, L+ nonnegative), read straight from the CBF definitions."""
    form = sdp_form(c0=-0.5)
    sec = _sections(write_cbf(form, tmp_path / "p.cbf"))
    X, value = _solution_matrix(form)
    obj = [(int(r), int(c), float(v)) for _, r, c, v in sec["OBJFCOORD"][1:]]
    assert _inner(obj, X, True) + float(sec["OBJBCOORD"][0][0]) == pytest.approx(value, abs=1e-9)
    m = int(sec["CON"][0][0])
    g = np.zeros(m)
    for i, v in sec.get("BCOORD", [[0]])[1:]:
        g[int(i)] += float(v)
    for i, _, r, c, v in sec["FCOORD"][1:]:
        g[int(i)] += float(v) * X[int(r), int(c)] * (1 if r == c else 2)
    assert [t[0] for t in sec["CON"][1:]] == ["L=", "L+"]
    zero = int(sec["CON"][1][1])
    assert np.abs(g[:zero]).max() < 1e-5 and g[zero:].min() > -1e-5


def test_sdpa_means_the_dual_form(tmp_path):
    """SDPA: Y = diag(X, slacks) satisfies tr(F_i Y) = c_i, and tr(F_0 Y) = −(optimum − c0)."""
    form = sdp_form(c0=0.25)
    path = write_sdpa(form, tmp_path / "p.dat-s")
    body = [s.split() for s in path.read_text().splitlines() if not s.startswith("*")]
    m, struct, rhs = int(body[0][0]), [int(v) for v in body[2]], np.array(body[3], float)
    assert struct == [*form.psd, -form.nonneg] and m == form.zero + form.nonneg
    X, value = _solution_matrix(form)
    slack = (form.b - form.A @ svec(X))[form.zero:m]   # s = b − A x on the nonneg rows
    lhs = np.zeros(m + 1)
    for mat, blk, i, j, v in ((int(a), int(b), int(c), int(d), float(e)) for a, b, c, d, e in body[4:]):
        if blk == len(form.psd) + 1:
            assert i == j
            lhs[mat] += v * slack[i - 1]
        else:
            lhs[mat] += _inner([(i - 1, j - 1, v)], X, lower=False)
    np.testing.assert_allclose(lhs[1:], rhs, atol=1e-5)
    assert lhs[0] == pytest.approx(-(value - form.c0), abs=1e-9)


def test_only_matrix_variable_layout_is_written(tmp_path):
    lp = ConicProgram(np.ones(2), sp.csc_matrix(-np.eye(2)), -np.ones(2), nonneg=2)  # min x1 + x2, x ≥ 1
    with pytest.raises(LoweringError, match="matrix-variable layout"):
        write_cbf(lp, tmp_path / "lp.cbf")
    form = sdp_form()
    shifted = ConicProgram(form.c, form.A, np.r_[form.b[:-1], 1.0], form.zero, form.nonneg, form.psd)
    with pytest.raises(LoweringError, match="s = x"):
        matrix_layout(shifted)


def test_unreadable_files_name_themselves(tmp_path):
    with pytest.raises(UnreadableFileError, match="nothing.cbf"):
        read_conic(tmp_path / "nothing.cbf")
    (tmp_path / "bad.cbf").write_text("VER\n3\nVAR\n2 1\nF 2\n")
    with pytest.raises(UnreadableFileError, match="bad.cbf.*VAR"):
        read_conic(tmp_path / "bad.cbf")
    (tmp_path / "bad.dat-s").write_text("1\n1\n2\n1.0\n0 1 1 nope 1\n")
    with pytest.raises(UnreadableFileError, match="bad.dat-s"):
        read_conic(tmp_path / "bad.dat-s")


@pytest.mark.parametrize("fmt", list(ConicFormat))
def test_export_problem_writes_one_sdp_per_row(tmp_path, fmt):
    rng = np.random.default_rng(5)
    problem = robustness_problem(random_mlp(rng, [3, 5, 4, 3]), rng.uniform(0.3, 0.7, 3), 1, 0.1, name="r")
    paths = export_problem(problem, ConicForm.SDP, fmt, tmp_path, bounds="ibp")
    assert [p.name for p in paths] == [f"r-case0-row{i}.{fmt.suffix}" for i in range(2)]
    index = json.loads((tmp_path / INDEX).read_text())
    assert (index["form"], index["format"], index["lowering"]) == ("sdp", fmt.value, "sdp_full")
    cc = compile_problem(problem)[0]
    bounds = compute_bounds(cc.net, [cc.ibp], BoundMethod.IBP)[0]
    for row, path in enumerate(paths):
        assert index["files"][row]["row"] == row
        direct = lower_sdp(relu_qcqp(cc.net, bounds, row).form).form
        assert scs_value(read_conic(path)) == pytest.approx(scs_value(direct), abs=1e-5)


def test_cli_export_sdp(tmp_path, capsys):
    tiny, prop = str(DATA / "tiny.onnx"), str(DATA / "tiny_ok.vnnlib")
    assert main(["export", tiny, prop, "--form", "sdp", "--format", "sdpa", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "tiny_tiny_ok-case0-row0.dat-s"), str(tmp_path / INDEX)]
    assert math.isfinite(scs_value(read_conic(printed[0])))
    assert main(["export", tiny, prop, "--form", "sdp", "--format", "lp", "--out", str(tmp_path)]) == 7
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cbf or sdpa" in err
