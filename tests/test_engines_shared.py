"""attack and interval engines over every shared VNN-COMP instance: never a wrong verdict, and
the falsifier finds at least half of the `sat` counterexamples within the competition timeouts."""
from __future__ import annotations

from functools import lru_cache

import pytest

from optcert.compiled import compile_problem
from optcert.ir.from_onnx import load_onnx
from optcert.result import Verdict
from optcert.spec.vnnlib import read_vnnlib
from optcert.verify import verify
from tests.builders import BENCHMARKS, instances

ROWS = [(fam, r) for fam in ("acasxu", "mnistfc") for r in instances(fam)]
FOUND: dict[str, bool] = {}


@lru_cache(maxsize=8)
def _net(path):
    return load_onnx(path)


def _problem(fam, row):
    folder = BENCHMARKS / fam
    return read_vnnlib(folder / row["vnnlib"]).problem(_net(folder / row["onnx"]), name=row["instance"])


@pytest.mark.parametrize("fam,row", [pytest.param(f, r, id=r["instance"]) for f, r in ROWS] or
                         [pytest.param(None, None, marks=pytest.mark.skip(reason="benchmarks absent"))])
def test_no_wrong_verdict(fam, row):
    problem = _problem(fam, row)
    compiled = compile_problem(problem)
    attack = verify(problem, "attack", float(row["timeout_s"]), compiled=compiled)
    interval = verify(problem, "interval", float(row["timeout_s"]), compiled=compiled)
    assert interval.verdict is not Verdict.FALSIFIED and attack.verdict is not Verdict.PROVED
    if row["expected"] == "sat":
        assert interval.verdict is not Verdict.PROVED
    if row["expected"] == "unsat":
        assert attack.verdict is not Verdict.FALSIFIED
    if attack.verdict is Verdict.FALSIFIED:
        cex = attack.counterexample
        assert problem.cases[cex.case].box.contains(cex.x)
        assert all(cex.margins[i] < 0 for i in cex.clause)
    FOUND[row["instance"]] = attack.verdict is Verdict.FALSIFIED


def test_falsifier_finds_at_least_half_of_sat():
    sat = [r["instance"] for _, r in ROWS if r["expected"] == "sat"]
    if not sat or not all(s in FOUND for s in sat):
        pytest.skip("needs the per-instance runs above (run the whole module)")
    found = sum(FOUND[s] for s in sat)
    assert found >= len(sat) / 2, f"{found}/{len(sat)}"
