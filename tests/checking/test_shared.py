"""`optcert check` on shared instances: results of the bound engines re-verify (the checker's own
numpy CROWN reproduces the torch kernels' intermediate bounds to rounding), and a shared `sat`
instance's counterexample re-checks."""
from __future__ import annotations

import pytest

from optcert.checking.report import Status
from optcert.ir.load import load_network
from optcert.result import Verdict
from optcert.spec.vnnlib import read_vnnlib
from optcert.verify import verify
from tests.checking.helpers import as_json, check

CASES = [("acasxu", "ACASXU_run2a_1_1_batch_2000.onnx", "prop_3.vnnlib", "alpha-crown"),
         ("mnistfc", "mnist-net_256x2.onnx", "prop_0_0.03.vnnlib", "crown"),
         ("mnistfc", "mnist-net_256x2.onnx", "prop_0_0.03.vnnlib", "lp"),
         ("mnistfc", "mnist-net_256x2.onnx", "prop_1_0.03.vnnlib", "attack")]


@pytest.mark.parametrize("family,onnx,vnnlib,engine", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_shared_results_re_verify(benchmarks, family, onnx, vnnlib, engine):
    folder = benchmarks / family
    problem = read_vnnlib(folder / "vnnlib" / vnnlib).problem(load_network(folder / "onnx" / onnx))
    result = verify(problem, engine, 60)
    if engine == "attack":
        assert result.verdict is Verdict.FALSIFIED
    report = check(as_json(result), problem)
    assert report.status is Status.VALID, report.summary()
