"""No bound engine ever PROVES a shared `sat` instance (a counterexample is known to exist), in
either precision."""
from __future__ import annotations

from functools import lru_cache

import pytest

from optcert.compiled import compile_problem
from optcert.ir.from_onnx import load_onnx
from optcert.result import Verdict
from optcert.verify import verify
from optcert.vnnlib import read_vnnlib

from ..builders import BENCHMARKS, instances

SAT = [(fam, r) for fam in ("acasxu", "mnistfc") for r in instances(fam) if r["expected"] == "sat"]


@lru_cache(maxsize=8)
def _net(path):
    return load_onnx(path)


@pytest.mark.parametrize("fam,row", [pytest.param(f, r, id=r["instance"]) for f, r in SAT] or
                         [pytest.param(None, None, marks=pytest.mark.skip(reason="benchmarks absent"))])
def test_bound_engines_never_prove_a_sat_instance(fam, row):
    folder = BENCHMARKS / fam
    problem = read_vnnlib(folder / row["vnnlib"]).problem(_net(folder / row["onnx"]), name=row["instance"])
    compiled = compile_problem(problem)
    for engine, options in (("crown", {}), ("crown", {"slope": "parallel", "precision": "float32"}),
                            ("alpha-crown", {"iterations": 10}),
                            ("alpha-crown", {"iterations": 10, "precision": "float32"})):
        result = verify(problem, engine, 60.0, options, compiled=compiled)
        assert result.verdict is Verdict.UNKNOWN, (engine, options, result.bound)
