"""VNN-LIB reader: grammar, and agreement with the shared instances' known answers."""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pytest

from optcert.ir.from_onnx import load_onnx
from optcert.spec.problem import Combine
from optcert.spec.vnnlib import parse_vnnlib, read_vnnlib
from tests.builders import BENCHMARKS, instances

HEAD = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + \
    "".join(f"(declare-const Y_{j} Real)\n" for j in range(3))
BOX = "(assert (>= X_0 -1))\n(assert (<= X_0 1.5e0))\n(assert (>= X_1 0))\n(assert (<= X_1 2))\n"


def test_atoms_and_box():
    prop = parse_vnnlib(HEAD + BOX + "(assert (<= Y_1 Y_0)) ; comment\n")
    (case,) = prop.cases
    np.testing.assert_array_equal(case.box.lo, [-1, 0])
    np.testing.assert_array_equal(case.box.hi, [1.5, 2])
    np.testing.assert_array_equal(case.spec.C, [[-1, 1, 0]])  # margin Y_1 - Y_0 > 0 must hold
    assert case.combine is Combine.ALL


def test_or_of_single_atoms_is_all_and_and_is_any():
    p = parse_vnnlib(HEAD + BOX + "(assert (or (and (>= Y_0 Y_2)) (and (>= Y_1 Y_2))))")
    assert [(c.combine, c.spec.rows) for c in p.cases] == [(Combine.ALL, 2)]
    q = parse_vnnlib(HEAD + BOX + "(assert (<= Y_0 Y_1))\n(assert (<= Y_0 Y_2))")
    assert [(c.combine, c.spec.rows) for c in q.cases] == [(Combine.ANY, 2)]


def test_linear_terms_constants_and_equality():
    p = parse_vnnlib(HEAD + BOX + "(assert (<= (+ (* 2 Y_0) (- Y_1) 1.5) (- 3)))")
    (case,) = p.cases
    np.testing.assert_allclose(case.spec.C, [[2, -1, 0]])
    np.testing.assert_allclose(case.spec.d, [4.5])
    e = parse_vnnlib(HEAD + BOX + "(assert (= Y_0 Y_1))")
    assert e.cases[0].combine is Combine.ANY and e.cases[0].spec.rows == 2


def test_input_union_gives_one_case_per_box():
    text = HEAD + "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1)) " \
                  "(and (>= X_0 2) (<= X_0 3) (>= X_1 0) (<= X_1 1))))\n(assert (<= Y_0 Y_1))"
    p = parse_vnnlib(text)
    assert [c.box.lo[0] for c in p.cases] == [0, 2]


def test_errors_carry_line_numbers():
    with pytest.raises(Exception, match=r":6: undeclared variable X_9"):
        parse_vnnlib(HEAD + "(assert (<= X_9 1))")


def _vnnlib_files():
    return sorted(BENCHMARKS.glob("*/vnnlib/*.vnnlib")) or \
        [pytest.param(None, marks=pytest.mark.skip(reason="shared benchmarks absent"))]


@pytest.mark.parametrize("path", _vnnlib_files(), ids=lambda p: f"{p.parent.parent.name}/{p.name}" if p else "-")
def test_every_shared_file_parses(path):
    prop = read_vnnlib(path)
    assert prop.cases and all(c.box.size == prop.n_inputs for c in prop.cases)


@lru_cache(maxsize=None)
def _net(path):
    return load_onnx(path)


def _witness(path):
    pairs = re.findall(r"\(\s*([XY])_(\d+)\s+([^\s()]+)\s*\)", path.read_text())
    x = np.array([float(v) for k, i, v in sorted((p for p in pairs if p[0] == "X"), key=lambda p: int(p[1]))])
    return x


def _rows(expected):
    out = []
    for fam in ("acasxu", "mnistfc"):
        out += [pytest.param(fam, r, id=r["instance"]) for r in instances(fam) if r["expected"] == expected]
    return out or [pytest.param(None, None, marks=pytest.mark.skip(reason="shared benchmarks absent"))]


def _violates(case, margins, tol):
    return any(np.all(margins[list(cl)] <= tol) for cl in case.clauses())


@pytest.mark.parametrize("fam,row", _rows("sat"))
def test_sat_witness_is_in_input_set_and_violates(fam, row):
    folder = BENCHMARKS / fam
    prop = read_vnnlib(folder / row["vnnlib"])
    x = _witness(folder / "counterexamples" / f"{row['instance']}.counterexample")
    net = _net(folder / row["onnx"])
    y = net.forward(x[None])[0]
    hits = [c for c in prop.cases if c.box.contains(x, tol=1e-4) and _violates(c, c.spec.margins(y), 1e-5)]
    assert hits, f"witness of {row['instance']} not in any violated case"


@pytest.mark.parametrize("fam,row", _rows("unsat"))
def test_random_points_of_unsat_instances_do_not_violate(fam, row):
    folder = BENCHMARKS / fam
    prop = read_vnnlib(folder / row["vnnlib"])
    net = _net(folder / row["onnx"])
    rng = np.random.default_rng(0)
    for case in prop.cases:
        x = rng.uniform(case.box.lo, case.box.hi, size=(200, case.box.size))
        margins = case.spec.margins(net.forward(x))
        assert not any(_violates(case, m, 0.0) for m in margins)
