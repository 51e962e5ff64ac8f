"""`lp` and `milp` engines against brute force on random tiny networks, near-ties, options,
and the shared instances (a fast subset): never a wrong verdict."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from optcert.compiled import compile_problem
from optcert.errors import InvalidOptionError
from optcert.ir.from_onnx import load_onnx
from optcert.result import Verdict
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem
from optcert.spec.vnnlib import read_vnnlib
from optcert.verify import verify
from tests.builders import BENCHMARKS, instances, random_mlp, random_residual_net
from tests.oracle import brute_force

EXACT = {"exact": True, "attack": False, "bounds": "crown"}


def _problem(seed: int, combine: Combine = Combine.ALL, shift: float = 0.0, residual: bool = False):
    rng = np.random.default_rng(seed)
    net = random_residual_net(rng, n=3) if residual else random_mlp(rng, [3, 5, 4, 3])
    c = rng.normal(size=3)
    C = rng.normal(size=(2, net.n_outputs))
    box = Box(c - 0.5, c + 0.5)
    case = Case(box, LinearSpec(C, np.full(2, shift)), combine)
    return VerificationProblem(net, (case,), name=f"rand{seed}")


def _truth(problem) -> float:
    cc = compile_problem(problem)[0]
    if cc.case.combine is Combine.ANY:
        return brute_force(cc.net, cc.ibp, (0, 1))
    return min(brute_force(cc.net, cc.ibp, (i,)) for i in range(cc.case.spec.rows))


@pytest.mark.parametrize("combine", list(Combine))
@pytest.mark.parametrize("seed", range(6))
def test_milp_gives_the_exact_margin_and_lp_a_sound_bound(seed, combine):
    problem = _problem(seed, combine, residual=seed % 3 == 2)
    truth = _truth(problem)
    milp = verify(problem, "milp", 60, EXACT)
    lp = verify(problem, "lp", 60)
    lp_all = verify(problem, "lp", 60, {"bounds": "lp-all"})
    assert milp.bound <= truth + 1e-9 and milp.bound >= truth - 1e-5 * (1 + abs(truth))
    assert milp.upper >= truth - 1e-9 and milp.upper <= truth + 1e-6 * (1 + abs(truth))
    assert lp.bound <= truth + 1e-9 and lp_all.bound <= truth + 1e-9
    assert lp_all.bound >= lp.bound - 1e-9
    assert (milp.verdict is Verdict.PROVED) == (truth > 1e-4) or abs(truth) <= 1e-4
    assert (milp.verdict is Verdict.FALSIFIED) == (truth < -1e-4) or abs(truth) <= 1e-4


def _gated_net():
    """4 → 8 → 2 through Einsum, HardSigmoid / ReLU chosen by a constant Where, and a CumSum (ONNX)."""
    import onnx
    from onnx import helper as h
    from onnx import numpy_helper as nh

    from optcert.ir.from_onnx import from_onnx_model

    rng = np.random.default_rng(0)
    inits = [nh.from_array(rng.normal(size=(4, 8)).astype(np.float32), "W1"),
             nh.from_array(rng.normal(size=(8, 2)).astype(np.float32), "W2"),
             nh.from_array(rng.random((1, 8)) < 0.5, "m"), nh.from_array(np.array(1, np.int64), "ax")]
    nodes = [h.make_node("Einsum", ["x", "W1"], ["a"], equation="bi,ij->bj"),
             h.make_node("HardSigmoid", ["a"], ["s"], alpha=0.5, beta=0.5), h.make_node("Relu", ["a"], ["r"]),
             h.make_node("Where", ["m", "s", "r"], ["w"]), h.make_node("CumSum", ["w", "ax"], ["c"]),
             h.make_node("MatMul", ["c", "W2"], ["y"])]
    graph = h.make_graph(nodes, "gated", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])], inits)
    return from_onnx_model(h.make_model(graph, opset_imports=[h.make_opsetid("", 14)]), "gated")


def test_a_sign_only_milp_never_claims_more_than_the_true_minimum():
    """The default milp asks only for the sign (a cutoff just above 0). HiGHS 1.16 then prunes every
    node at the cutoff and calls an incumbent far above the minimum "optimal" (here 0.544 where the
    minimum is 0.018): the bound reported must stay below the true minimum, i.e. at the cutoff."""
    from optcert.forms import Solution, SolveStatus
    from optcert.solve.linear import interpret

    net = _gated_net()
    box = Box(np.full(4, -0.5), np.full(4, 0.5))
    problem = VerificationProblem(net, (Case(box, LinearSpec(np.array([[1.0, -1.0]]), np.array([11.8]))),))
    exact = verify(problem, "milp", 60, EXACT)
    sign = verify(problem, "milp", 60, {"attack": False, "bounds": "crown"})
    assert exact.verdict is sign.verdict is Verdict.PROVED
    assert 0 < sign.bound <= exact.upper + 1e-9 and exact.bound <= exact.upper + 1e-9, (sign.bound, exact.upper)
    import scipy.sparse as sp

    from optcert.forms import LinearProgram
    mip = LinearProgram(np.ones(2), sp.csr_matrix((0, 2)), [], [], [1, 1], [3, 3], np.array([True, True]))
    fake = Solution(SolveStatus.OPTIMAL, "highs", 0.0, objective=0.544, bound=0.544)   # any backend
    assert interpret(mip, fake, cutoff=1e-4).value <= 1e-4
    assert interpret(mip, fake).value == pytest.approx(0.544, rel=1e-5)     # without a cutoff: its bound


@pytest.mark.parametrize("seed", range(3))
def test_an_exact_tie_is_never_decided(seed):
    """Shift the spec so that the true minimum is 0 (up to rounding): neither PROVED nor, unless
    rounding makes the point strictly negative in float64, FALSIFIED with a margin ≥ 0."""
    problem = _problem(seed)
    truth_rows = [brute_force(compile_problem(problem)[0].net, compile_problem(problem)[0].ibp, (i,)) for i in range(2)]
    tie = _problem(seed, shift=0.0)
    C = tie.cases[0].spec.C
    d = -np.array(truth_rows)
    tied = VerificationProblem(tie.network, (Case(tie.cases[0].box, LinearSpec(C, d)),))
    result = verify(tied, "milp", 60, EXACT)
    assert result.verdict is not Verdict.PROVED
    if result.verdict is Verdict.FALSIFIED:
        assert min(result.counterexample.margins) < 0


def test_lp_certified_bound_never_exceeds_the_solver_objective():
    problem = _problem(4)
    result = verify(problem, "lp", 60)
    for solve in result.certificate["solves"]:
        assert solve["trust"] == "rigorous"
        assert solve["bound"] <= solve["objective"] + 1e-9 * (1 + abs(solve["objective"]))


def test_options_are_checked():
    problem = _problem(0)
    with pytest.raises(InvalidOptionError, match="backend"):
        verify(problem, "milp", 10, {"backend": "cplex"})
    with pytest.raises(InvalidOptionError, match="bounds"):
        verify(problem, "lp", 10, {"bounds": "psychic"})
    with pytest.raises(InvalidOptionError, match="neuron_time_limit"):
        verify(problem, "milp", 10, {"neuron_time_limit": 0})


@pytest.mark.parametrize("backend", ["gurobi", "scip"])
def test_optional_backends_agree_with_highs(backend):
    from solvers import available

    status = available()[backend]
    if not status.available:
        pytest.skip(status.reason)
    problem = _problem(1)
    ref = verify(problem, "milp", 60, EXACT)
    other = verify(problem, "milp", 60, {**EXACT, "backend": backend})
    assert other.bound == pytest.approx(ref.bound, abs=1e-4)
    assert other.verdict is ref.verdict


@lru_cache(maxsize=4)
def _net(path):
    return load_onnx(path)


def _shared():
    rows = [r for r in instances("mnistfc") if "256x2" in r["onnx"] and r["vnnlib"].endswith("0.03.vnnlib")]
    rows += [r for r in instances("acasxu") if r["instance"].endswith(("1_1_batch_2000-prop_3", "1_9_batch_2000-prop_2",
                                                                         "2_1_batch_2000-prop_2"))]
    return rows


@pytest.mark.parametrize("row", [pytest.param(r, id=r["instance"]) for r in _shared()] or
                         [pytest.param(None, marks=pytest.mark.skip(reason="benchmarks absent"))])
def test_shared_instances_never_wrong(row):
    fam = "acasxu" if row["instance"].startswith("ACAS") else "mnistfc"
    folder = BENCHMARKS / fam
    problem = read_vnnlib(folder / row["vnnlib"]).problem(_net(folder / row["onnx"]), name=row["instance"])
    compiled = compile_problem(problem)
    for engine in ("lp", "milp"):
        result = verify(problem, engine, 10.0, compiled=compiled)
        wrong = {"sat": Verdict.PROVED, "unsat": Verdict.FALSIFIED}.get(row["expected"])
        assert result.verdict is not wrong, (engine, result.reason)
        if result.verdict is Verdict.FALSIFIED:
            cex = result.counterexample
            assert problem.cases[cex.case].box.contains(cex.x)
            assert all(cex.margins[i] < 0 for i in cex.clause)


def test_native_solver_parameters_pass_through_and_unknown_ones_are_refused():
    problem = _problem(2)
    result = verify(problem, "milp", 60, {**EXACT, "raw": "mip_rel_gap=0,presolve=off"})
    assert result.options["raw"] == ["mip_rel_gap=0", "presolve=off"]
    with pytest.raises(InvalidOptionError, match="no_such_parameter"):
        verify(problem, "lp", 60, {"raw": "no_such_parameter=1"})
    with pytest.raises(InvalidOptionError, match="NAME=VALUE"):
        verify(problem, "lp", 60, {"raw": "presolve"})


@pytest.mark.parametrize("seed", range(3))
def test_a_layer_time_limit_keeps_milp_exact_and_is_logged(seed):
    """With no time for the per-neuron LPs (every neuron keeps its CROWN bounds, looser big-Ms)
    the MILP still gives the exact margin; the certificate says how many neurons were skipped."""
    problem = _problem(seed)
    truth = _truth(problem)
    milp = verify(problem, "milp", 60, {"exact": True, "attack": False, "layer_time_limit": 0})
    assert abs(milp.bound - truth) <= 1e-5 * (1 + abs(truth))
    log = milp.certificate["tightening"][0]
    assert log["solves"] == 0 and log["skipped"] == sum(log["unstable"]["crown"][1:])


def test_the_tightening_leaves_time_for_the_engines_own_solve(monkeypatch):
    """With a finite budget the per-neuron tightening stops at TIGHTEN_SHARE of it, so the LP over
    the bounds it reached still runs (a large net's LP-ALL would otherwise take the whole budget)."""
    import time as _time

    import optcert.engines.common as common

    asked = []
    real = common.tighten

    def spy(*args, deadline, **kwargs):
        asked.append(deadline - _time.monotonic())
        return real(*args, deadline=deadline, **kwargs)

    monkeypatch.setattr(common, "tighten", spy)
    result = verify(_problem(0), "lp", 10, {"bounds": "lp-all"})
    assert asked and asked[0] <= common.TIGHTEN_SHARE * 10 + 1e-6
    assert not result.timed_out and np.isfinite(result.bound)
