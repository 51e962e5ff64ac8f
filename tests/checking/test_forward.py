"""The checker's forward-mode bounds (checking/forward.py): they enclose every sampled
pre-activation of random nets and the exact (rational) value at a point box, are never looser than
interval arithmetic, and — with pairwise averages on an ANY case — bound the true minimum of the
case margin; they make the input-split proofs of ACAS Xu re-verify while a raised least bound or
leaf bound is still not accepted."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from optcert.checking.forward import forward_given, supported
from optcert.checking.interval import ibp
from optcert.checking.net import check_net
from optcert.checking.replay import output_pass
from optcert.checking.report import Status
from optcert.checking.tamper import tampered, targets
from optcert.spec.problem import Combine
from tests.builders import random_mlp, random_residual_net
from tests.checking.helpers import as_json, check, small_problem


def _boxes(rng, n0: int, B: int, scale: float):
    c = rng.normal(size=(B, n0)) * scale
    r = rng.uniform(0, 1, size=(B, n0)) * scale * rng.uniform(0.01, 1, size=(B, 1))
    return c - r, c + r


@pytest.mark.parametrize("seed", range(8))
def test_forward_bounds_enclose_samples_and_beat_intervals(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2, 5))] + [int(rng.integers(3, 12)) for _ in range(int(rng.integers(1, 5)))] + [3]
    net = check_net(random_mlp(rng, sizes, scale=float(rng.choice([0.5, 1.0, 3.0]))))
    assert supported(net)
    lo, hi = _boxes(rng, sizes[0], 6, float(rng.choice([1e-3, 1.0, 30.0])))
    given = ibp(net, lo, hi, upto=net.depth - 1)
    flo, fhi = forward_given(net, *given)
    for b in range(lo.shape[0]):
        x = lo[b] + rng.uniform(size=(4000, sizes[0])) * (hi[b] - lo[b])
        x[:2 ** sizes[0]] = np.where(np.indices((2,) * sizes[0]).reshape(sizes[0], -1).T > 0, hi[b], lo[b])
        zs = net.forward(x)
        for k in range(1, net.depth):
            assert np.all(zs[k - 1] >= flo[k][b]) and np.all(zs[k - 1] <= fhi[k][b]), (k, b)
    for k in range(1, net.depth):
        assert np.all(flo[k] >= given[0][k]) and np.all(fhi[k] <= given[1][k])


def _exact(net, x: np.ndarray) -> list[list[Fraction]]:
    z = [Fraction(float(v)) for v in x]
    out = []
    for k in range(1, net.depth):
        layer = net.layer(k)
        w, b = layer.weights[0], layer.bias
        pre = [sum((Fraction(float(w[i, j])) * z[j] for j in range(len(z))), Fraction(float(b[i])))
               for i in range(len(b))]
        out.append(pre)
        z = [max(p, Fraction(0)) for p in pre]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_a_point_box_encloses_the_exact_value(seed):
    rng = np.random.default_rng(100 + seed)
    net = check_net(random_mlp(rng, [3, 7, 6, 5, 2], scale=2.0))
    x = rng.normal(size=3) * 1e3
    given = ibp(net, x[None], x[None], upto=net.depth - 1)
    flo, fhi = forward_given(net, *given)
    for k, pre in enumerate(_exact(net, x), start=1):
        for i, v in enumerate(pre):
            assert Fraction(float(flo[k][0, i])) <= v <= Fraction(float(fhi[k][0, i]))


def test_residual_nets_are_not_forward_mode():
    assert not supported(check_net(random_residual_net(np.random.default_rng(0), n=3)))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("combine", list(Combine))
def test_margin_bounds_with_forward_layers_lie_below_the_sampled_minimum(seed, combine):
    problem = small_problem(seed, combine, sizes=(3, 8, 8, 4), radius=0.3)
    net, case = check_net(problem.network), problem.cases[0]
    lo, hi = case.box.lo[None], case.box.hi[None]
    lower, upper = forward_given(net, *ibp(net, lo, hi, upto=net.depth - 1))
    rows_lo, _, _, key = output_pass(net, case, lower, upper, pairs=True)
    x = lo + np.random.default_rng(seed).uniform(size=(20000, 3)) * (hi - lo)
    margins = net.forward(x)[-1] @ case.spec.C.T + case.spec.d
    assert np.all(margins >= rows_lo)
    if combine is Combine.ANY:
        assert key[0] <= margins.max(axis=1).min()
    else:
        assert key[0] == -np.inf


def _acas(benchmarks, prop: str):
    from optcert.ir.load import load_network
    from optcert.spec.vnnlib import read_vnnlib

    folder = benchmarks / "acasxu"
    net = load_network(folder / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx")
    return read_vnnlib(folder / "vnnlib" / f"{prop}.vnnlib").problem(net)


@pytest.mark.parametrize("prop", ["prop_3", "prop_4"])
def test_acas_input_split_proofs_re_verify_and_raised_bounds_are_caught(benchmarks, prop):
    from optcert.verify import verify

    problem = _acas(benchmarks, prop)
    d = as_json(verify(problem, "bnb", 60, {"split": "input", "attack": False}))
    assert d["verdict"] == "proved"
    report = check(d, problem)
    assert report.status is Status.VALID, report.summary()
    rng = np.random.default_rng(0)
    for t in targets(d)["bound"][:6]:
        assert check(tampered(d, t, rng), problem).status is Status.INVALID, t.describe()
    raised = _raised_least(d, 1.0)      # far above any leaf's bound: rests on the engine's word
    report = check(raised, problem)
    assert report.status is not Status.VALID, report.summary()
    assert "do not reach" in report.summary() or report.status is Status.INVALID, report.summary()


def _raised_least(d: dict, value: float) -> dict:
    """`d` with its tree's least case bound set to `value`, the digest resealed (an adversary's edit)."""
    import copy

    from optcert.checking.arrays import pack
    from optcert.checking.evidence import digest
    from optcert.result import Result

    out = copy.deepcopy(d)
    evidence = out["certificate"]["evidence"]
    evidence["cases"][0]["tree"]["least_bound"] = pack([value])
    evidence["sha256"] = digest(Result.from_dict(out).certificate["evidence"])
    return out
