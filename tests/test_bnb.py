"""`bnb` engine: complete and correct against brute force on tiny nets (ALL and ANY cases, ReLU and
input splitting), limits end UNKNOWN with a valid bound, beta-CROWN multipliers are sound and help,
shared ACAS Xu instances, and the VNN-COMP entry point."""
from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import pytest

from optcert.compiled import compile_problem
from optcert.errors import InvalidOptionError, OptcertError
from optcert.ir.from_onnx import load_onnx
from optcert.result import Verdict
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem
from optcert.spec.vnnlib import read_vnnlib
from optcert.verify import verify
from tests.builders import BENCHMARKS, instances, random_mlp
from tests.oracle import brute_force

MARGIN = 1e-4


def _problem(seed: int, sizes: tuple[int, ...], combine: Combine, shift: float = 0.0, rows: int = 2):
    rng = np.random.default_rng(seed)
    net = random_mlp(rng, list(sizes))
    c = rng.normal(size=sizes[0])
    C = rng.normal(size=(rows, net.n_outputs))
    case = Case(Box(c - 0.5, c + 0.5), LinearSpec(C, np.full(rows, shift)), combine)
    return VerificationProblem(net, (case,), name=f"rand{seed}")


@lru_cache(maxsize=None)
def _truth(seed: int, sizes: tuple[int, ...], combine: Combine) -> float:
    """The exact case margin at shift 0 (brute force over activation patterns)."""
    cc = compile_problem(_problem(seed, sizes, combine))[0]
    rows = range(cc.case.spec.rows)
    if combine is Combine.ANY:
        return brute_force(cc.net, cc.ibp, tuple(rows))
    return min(brute_force(cc.net, cc.ibp, (i,)) for i in rows)


def _check(result, truth: float) -> None:
    assert result.bound <= truth + 1e-9, "the certified bound exceeds the true minimum"
    if result.verdict is Verdict.PROVED:
        assert truth > 0
    if result.verdict is Verdict.FALSIFIED:
        assert truth < 0 and min(result.counterexample.margins) < 0


# (seed, sizes, combine), chosen so that brute force stays cheap (≈ 12 s in all)
CASES = [(0, (2, 8, 8, 2), Combine.ALL), (0, (2, 8, 8, 2), Combine.ANY), (2, (2, 8, 8, 2), Combine.ANY),
         (0, (3, 6, 6, 2), Combine.ALL), (1, (3, 6, 6, 2), Combine.ALL), (2, (3, 6, 6, 2), Combine.ALL),
         (0, (3, 6, 6, 2), Combine.ANY), (1, (3, 6, 6, 2), Combine.ANY), (2, (3, 6, 6, 2), Combine.ANY)]


@pytest.mark.parametrize("delta", [-0.02, 0.02])
@pytest.mark.parametrize("seed,sizes,combine", CASES)
def test_relu_splitting_is_complete_against_brute_force(seed, sizes, combine, delta):
    """No attack: every verdict comes from the tree (bounds, exact LP leaves, their optima)."""
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth + delta)
    result = verify(problem, "bnb", 60, {"split": "relu", "attack": False, "batch": 8})
    _check(result, delta)
    assert result.verdict is (Verdict.PROVED if delta > MARGIN else Verdict.FALSIFIED), result.reason


@pytest.mark.parametrize("bounding", ["crown", "lp", "bm"])
@pytest.mark.parametrize("delta", [-0.02, 0.02])
def test_other_bounding_functions_are_complete(bounding, delta):
    seed, sizes, combine = 1, (3, 6, 6, 2), Combine.ANY
    truth = _truth(seed, sizes, combine)
    result = verify(_problem(seed, sizes, combine, shift=-truth + delta), "bnb", 120,   # bm takes ~30 s idle
                    {"split": "relu", "attack": False, "bounding": bounding, "beta": False})
    _check(result, delta)
    assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED)


@pytest.mark.parametrize("delta", [-0.02, 0.02])
@pytest.mark.parametrize("seed,sizes,combine", CASES[::2])
def test_input_splitting_is_correct(seed, sizes, combine, delta):
    truth = _truth(seed, sizes, combine)
    result = verify(_problem(seed, sizes, combine, shift=-truth + delta), "bnb", 60, {"split": "input"})
    _check(result, delta)
    assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason


def test_input_splitting_proves_what_crown_cannot():
    seed, sizes, combine = 0, (2, 8, 8, 2), Combine.ALL
    truth = _truth(seed, sizes, combine)
    crown0 = verify(_problem(seed, sizes, combine), "crown", 30).bound
    assert crown0 < truth - 1e-3
    problem = _problem(seed, sizes, combine, shift=-(truth + crown0) / 2)   # crown < 0 < truth
    assert verify(problem, "crown", 30).verdict is Verdict.UNKNOWN
    result = verify(problem, "bnb", 30, {"split": "input", "attack": False})
    assert result.verdict is Verdict.PROVED
    assert result.certificate["cases"][0]["nodes"] > 1


def test_limits_end_unknown_with_a_valid_bound():
    seed, sizes, combine = 2, (3, 6, 6, 2), Combine.ALL
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth + 1e-3)
    for options in ({"node_limit": 3}, {"max_domains": 4, "batch": 2}):
        result = verify(problem, "bnb", 30, {"split": "relu", "attack": False, "bounding": "crown", **options})
        assert result.verdict is Verdict.UNKNOWN
        assert np.isfinite(result.bound) and result.bound <= 1e-3 + 1e-9
        assert result.reason
    with pytest.raises(InvalidOptionError):
        verify(problem, "bnb", 10, {"split": "sideways"})
    with pytest.raises(InvalidOptionError):
        verify(problem, "bnb", 10, {"batch": 0})


def test_timeout_is_honoured():
    rng = np.random.default_rng(5)
    net = random_mlp(rng, [6, 40, 40, 40, 2])
    box = Box(np.full(6, -1.0), np.full(6, 1.0))
    C = np.array([[1.0, -1.0]])
    pgd = verify(VerificationProblem(net, (Case(box, LinearSpec(C, np.zeros(1))),)), "attack", 10).upper
    problem = VerificationProblem(net, (Case(box, LinearSpec(C, np.array([1e-3 - pgd]))),))   # a near tie
    for timeout in (0.3, 3.0):
        start = time.monotonic()
        result = verify(problem, "bnb", timeout, {"split": "relu"})
        elapsed = time.monotonic() - start
        assert elapsed <= 1.1 * timeout + 0.5, elapsed
        assert result.verdict is not Verdict.PROVED or result.bound <= 1e-3
        if result.verdict is Verdict.UNKNOWN:
            assert result.timed_out and "time limit" in result.reason


def test_deterministic_with_a_seed():
    seed, sizes, combine = 2, (2, 8, 8, 2), Combine.ANY
    truth = _truth(seed, sizes, combine)
    problem = _problem(seed, sizes, combine, shift=-truth + 0.01)
    runs = [verify(problem, "bnb", 30, {"seed": 3, "split": "relu"}) for _ in range(2)]
    assert runs[0].certificate["cases"] == [
        {**c, "seconds": runs[0].certificate["cases"][0]["seconds"]} for c in runs[1].certificate["cases"]]
    assert runs[0].bound == runs[1].bound


def test_beta_multipliers_are_sound_and_help():
    """alpha-beta-CROWN on split domains: never above the sampled minimum over the domain, never
    below plain CROWN, and above alpha-CROWN alone on some domain."""
    from optcert.search.bounding import CaseContext, bound_crown
    from optcert.search.branching import Decision, children

    problem = _problem(3, (3, 8, 8, 2), Combine.ALL)
    cc = compile_problem(problem)[0]
    plain = CaseContext(cc, "cpu", 0, 0.1, False)
    root = bound_crown(plain, [cc.ibp], 1, np.inf).bounds[0]
    domains = [root]
    for _ in range(3):   # split the first unstable neuron of layer 1, then 2, ... in every domain
        nxt = []
        for d in domains:
            k = next((k for k in (1, 2) if d.unstable(k).any()), None)
            nxt += list(children(d, Decision(k, int(np.argmax(d.unstable(k)))))) if k else [d]
        domains = nxt
    bounds = {name: bound_crown(CaseContext(cc, "cpu", its, 0.1, beta), domains, 1, np.inf, alpha=its > 0).lower
              for name, its, beta in (("crown", 0, False), ("alpha", 20, False), ("beta", 20, True))}
    assert np.all(bounds["beta"] >= bounds["crown"] - 1e-12)
    assert np.sum(bounds["beta"]) > np.sum(bounds["alpha"]) + 1e-6
    x = np.random.default_rng(0).uniform(cc.lo, cc.hi, size=(20000, cc.lo.size))
    acts = cc.net.forward(x)
    for b, d in enumerate(domains):
        inside = np.ones(len(x), bool)
        for k in range(1, d.depth):
            inside &= np.all((acts[k - 1] >= d.lower[k] - 1e-12) & (acts[k - 1] <= d.upper[k] + 1e-12), axis=1)
        if inside.any():
            assert np.all(bounds["beta"][b] <= acts[-1][inside].min(axis=0) + 1e-9)


@lru_cache(maxsize=4)
def _net(path):
    return load_onnx(path)


def _acas(name: str):
    rows = [r for r in instances("acasxu") if r["instance"] == name]
    if not rows:
        pytest.skip("shared ACAS Xu benchmarks absent")
    row = rows[0]
    problem = read_vnnlib(BENCHMARKS / "acasxu" / row["vnnlib"]).problem(_net(BENCHMARKS / "acasxu" / row["onnx"]))
    return row, problem


@pytest.mark.parametrize("name", ["ACASXU_run2a_1_1_batch_2000-prop_1", "ACASXU_run2a_2_1_batch_2000-prop_2"])
def test_shared_acasxu(name):
    row, problem = _acas(name)
    start = time.monotonic()
    result = verify(problem, "bnb", 60)
    assert time.monotonic() - start < 66
    expected = {"unsat": Verdict.PROVED, "sat": Verdict.FALSIFIED}[row["expected"]]
    assert result.verdict is expected, result.reason


def test_vnncomp_entry_point(tmp_path):
    from optcert.vnncomp import run_instance

    rows = [r for r in instances("acasxu") if r["instance"] == "ACASXU_run2a_2_1_batch_2000-prop_2"]
    if not rows:
        pytest.skip("shared ACAS Xu benchmarks absent")
    out = tmp_path / "result.txt"
    result = run_instance(BENCHMARKS / "acasxu" / rows[0]["onnx"], BENCHMARKS / "acasxu" / rows[0]["vnnlib"], out, 30)
    text = out.read_text()
    assert result.verdict is Verdict.FALSIFIED and text.startswith("sat\n((X_0 ")
    assert text.count("(X_") == 5 and text.count("(Y_") == 5
    with pytest.raises(OptcertError):
        run_instance(tmp_path / "missing.onnx", BENCHMARKS / "acasxu" / rows[0]["vnnlib"], out, 10)
    assert out.read_text() == "error\n"


def test_batched_input_splitting_agrees_with_the_coordinator():
    """The batched input-split search (search/input_split.py) and the generic coordinator reach the
    same verdicts on near-tie problems, both sides of the truth."""
    import math

    from optcert.certify import EngineOutput
    from optcert.engines.bnb import BnbOptions, CaseTask
    from optcert.search.box_bounding import Mode
    from optcert.search.branching import Split
    from optcert.search.coordinator import Search, SearchSettings
    from optcert.search.input_split import InputSplitSearch, InputSplitSettings

    for seed, sizes, combine in CASES[::2]:
        truth = _truth(seed, sizes, combine)
        for delta in (-0.01, 0.01):
            problem = _problem(seed, sizes, combine, shift=-truth + delta)
            cc = compile_problem(problem)[0]
            out = EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf)], case_lower=[None])
            task = CaseTask(problem, cc, BnbOptions(split=Split.INPUT), out)
            old = Search(task, SearchSettings(batch=64), time.monotonic() + 60).run(task.any_case)
            for mode in Mode:
                new = InputSplitSearch(cc, task.check, InputSplitSettings(batch=64, mode=mode),
                                       time.monotonic() + 60).run()
                assert new.status == old.status == ("proved" if delta > 0 else "falsified"), (mode, new.status)
                if delta > 0:
                    assert new.key > -math.inf


ACAS_SAT = [r for r in instances("acasxu") if r["expected"] == "sat"][::8]


@pytest.mark.parametrize("row", [pytest.param(r, id=r["instance"]) for r in ACAS_SAT]
                         or [pytest.param(None, marks=pytest.mark.skip(reason="benchmarks absent"))])
def test_batched_input_splitting_never_proves_a_sat_acas_instance(row):
    from tests.builders import shared_problem

    result = verify(shared_problem(row), "bnb", 8, {"split": "input", "attack": False})
    assert result.verdict is not Verdict.PROVED, result.bound
