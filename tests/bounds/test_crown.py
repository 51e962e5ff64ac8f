"""CROWN / Fast-Lin / alpha-CROWN: soundness on sampled inputs, tightness order, exactness,
split domains, and float32 against float64."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.bounds import BoundMethod, Bounds, BoundSettings, compute_bounds, ibp
from optcert.ir import Network
from optcert.ir import ops as O
from optcert.ir.layered import to_layered
from optcert.precision import Precision
from tests.builders import random_conv_net, random_mlp, random_residual_net

METHODS = [BoundMethod.IBP, BoundMethod.FASTLIN, BoundMethod.CROWN, BoundMethod.ALPHA_CROWN]


def _nets():
    cases = []
    for seed, sizes in enumerate([[3, 8, 2], [4, 16, 16, 3], [5, 12, 12, 12, 12, 4], [2, 30, 30, 2]]):
        cases.append(pytest.param(lambda s=seed, z=sizes: random_mlp(np.random.default_rng(s), z),
                                  id=f"mlp{'x'.join(map(str, sizes))}"))
    cases.append(pytest.param(lambda: random_conv_net(np.random.default_rng(7)), id="conv"))
    cases.append(pytest.param(lambda: random_residual_net(np.random.default_rng(8)), id="residual"))
    return cases


def _box(rng, n, width=0.6):
    c = rng.normal(size=n)
    return c - width / 2, c + width / 2


def _samples(rng, lo, hi, n=10_000):
    x = lo + (hi - lo) * rng.random((n, lo.size))
    return np.vstack([x, lo, hi])


@pytest.mark.parametrize("precision", list(Precision))
@pytest.mark.parametrize("make", _nets())
def test_every_layer_contains_sampled_values_and_methods_tighten(make, precision):
    rng = np.random.default_rng(1)
    net = to_layered(make())
    lo, hi = _box(rng, net.n_inputs)
    given = ibp(net, lo, hi)
    settings = BoundSettings(precision=precision, iterations=10)
    results = {m: compute_bounds(net, [given], m, settings)[0] for m in METHODS}
    pre = net.forward(_samples(rng, lo, hi))
    for method, b in results.items():
        for k, values in enumerate(pre, start=1):
            assert np.all(values >= b.lower[k]), (method, k)
            assert np.all(values <= b.upper[k]), (method, k)
    final = {m: b.lower[-1] for m, b in results.items()}
    assert np.all(final[BoundMethod.CROWN] >= final[BoundMethod.IBP])
    assert np.all(final[BoundMethod.ALPHA_CROWN] >= final[BoundMethod.CROWN])


def _single_relu():
    return to_layered(Network.sequential((1,), [O.Affine(np.eye(1), np.zeros(1)), O.ReLU(),
                                                O.Affine(np.eye(1), np.zeros(1))]))


def test_single_relu_exact_where_the_relaxation_is():
    """relu(x) on [−1, 2]: the upper line is exact at the max (2); CROWN's lower slope 1 gives −1,
    alpha-CROWN finds slope 0, the exact min 0 (raw passes, before intersecting with IBP)."""
    import torch

    from optcert.bounds.alpha_crown import AlphaSettings, optimise
    from optcert.bounds.crown import backward_bound
    from optcert.bounds.torch_net import DomainBatch, torch_net

    net = _single_relu()
    tn = torch_net(net)
    domains = DomainBatch.from_bounds([ibp(net, np.array([-1.0]), np.array([2.0]))])
    objective = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    crown = backward_bound(tn, domains, 2, objective).lower[0].numpy()
    alpha = optimise(tn, domains, 2, objective, AlphaSettings(iterations=30, lr=0.2))[0].numpy()
    assert crown[0] == pytest.approx(-1.0, abs=1e-12) and crown[0] <= -1.0
    assert -crown[1] == pytest.approx(2.0, abs=1e-12) and -crown[1] >= 2.0
    assert alpha[0] == pytest.approx(0.0, abs=1e-12) and alpha[0] <= 0.0


def test_first_layer_bounds_enclose_the_exact_rational_extremes():
    """Near-ties: the certified bound must sit below the exact minimum, not just below samples."""
    from fractions import Fraction

    rng = np.random.default_rng(11)
    for _ in range(20):
        net = to_layered(random_mlp(rng, [3, 10, 2]))
        lo, hi = _box(rng, 3)
        b = compute_bounds(net, [ibp(net, lo, hi)], BoundMethod.CROWN)[0]
        w, bias = net.layers[0].weights[0], net.layers[0].bias
        for j in range(w.shape[0]):
            terms = [(Fraction(w[j, i]) * Fraction(lo[i]), Fraction(w[j, i]) * Fraction(hi[i])) for i in range(3)]
            exact_lo = sum(min(t) for t in terms) + Fraction(bias[j])
            exact_hi = sum(max(t) for t in terms) + Fraction(bias[j])
            assert Fraction(b.lower[1][j]) <= exact_lo and Fraction(b.upper[1][j]) >= exact_hi


def test_all_stable_network_is_exact():
    rng = np.random.default_rng(3)
    w1 = np.abs(rng.normal(size=(6, 4)))
    b1 = np.full(6, 5.0)            # x ∈ [0, 1]: every neuron active
    w2 = rng.normal(size=(3, 6))
    net = to_layered(Network.sequential((4,), [O.Affine(w1, b1), O.ReLU(), O.Affine(w2, np.zeros(3))]))
    lo, hi = np.zeros(4), np.ones(4)
    b = compute_bounds(net, [ibp(net, lo, hi)], BoundMethod.CROWN)[0]
    W = w2 @ w1
    exact_lo = np.minimum(W * lo, W * hi).sum(1) + w2 @ b1
    exact_hi = np.maximum(W * lo, W * hi).sum(1) + w2 @ b1
    assert np.allclose(b.lower[-1], exact_lo, atol=1e-12) and np.all(b.lower[-1] <= exact_lo)
    assert np.allclose(b.upper[-1], exact_hi, atol=1e-12) and np.all(b.upper[-1] >= exact_hi)


@pytest.mark.parametrize("seed", range(4))
def test_split_domains_are_sound_and_tighter(seed):
    rng = np.random.default_rng(seed)
    net = to_layered(random_mlp(rng, [3, 10, 10, 2]))
    lo, hi = _box(rng, 3, 1.0)
    parent = compute_bounds(net, [ibp(net, lo, hi)], BoundMethod.CROWN)[0]
    k = 1
    i = int(np.argmax(parent.unstable(k) * (parent.upper[k] - parent.lower[k])))
    assert parent.unstable(k)[i]
    children = compute_bounds(net, list(parent.split(k, i)), BoundMethod.CROWN)
    x = _samples(rng, lo, hi, 20_000)
    pre = net.forward(x)
    for child, side in zip(children, (pre[k - 1][:, i] <= 0, pre[k - 1][:, i] >= 0)):
        inside = [p[side] for p in pre]
        for layer, values in enumerate(inside, start=1):
            assert np.all(values >= child.lower[layer]) and np.all(values <= child.upper[layer])
    worst_child = np.minimum(children[0].lower[-1], children[1].lower[-1])
    assert np.all(worst_child >= parent.lower[-1] - 1e-9)
    assert np.any(worst_child > parent.lower[-1] + 1e-9)


@pytest.mark.parametrize("make", _nets())
def test_float32_and_float64_agree_within_the_stated_margin(make):
    """The float32 bound is rigorous too; it may be looser by its rounding allowance
    (γ_N ≈ N·2⁻²⁴ times the magnitude of the terms) and by slightly looser intermediate bounds."""
    rng = np.random.default_rng(2)
    net = to_layered(make())
    lo, hi = _box(rng, net.n_inputs)
    given = ibp(net, lo, hi)
    b64, b32 = (compute_bounds(net, [given], BoundMethod.CROWN, BoundSettings(precision=p))[0]
                for p in (Precision.FLOAT64, Precision.FLOAT32))
    scale = 1 + np.abs(b64.lower[-1])
    assert np.all(np.abs(b32.lower[-1] - b64.lower[-1]) <= 1e-3 * scale)
    assert np.all(np.abs(b32.upper[-1] - b64.upper[-1]) <= 1e-3 * scale)


def test_batched_domains_match_one_at_a_time():
    rng = np.random.default_rng(5)
    net = to_layered(random_mlp(rng, [4, 12, 12, 3]))
    boxes = [_box(rng, 4) for _ in range(5)]
    given = [ibp(net, lo, hi) for lo, hi in boxes]
    batched = compute_bounds(net, given, BoundMethod.CROWN)
    single = [compute_bounds(net, [g], BoundMethod.CROWN)[0] for g in given]
    for a, b in zip(batched, single):
        for k in range(len(a.lower)):
            assert np.allclose(a.lower[k], b.lower[k], rtol=1e-12, atol=1e-12)


def test_bad_device_and_settings_are_typed_errors():
    from optcert.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="device"):
        BoundSettings(device="nonsense")
    with pytest.raises(InvalidOptionError, match="iterations"):
        BoundSettings(iterations=-1)
    with pytest.raises(InvalidOptionError, match="lr"):
        BoundSettings(lr=0.0)


def test_given_bounds_are_kept():
    rng = np.random.default_rng(6)
    net = to_layered(random_mlp(rng, [3, 8, 8, 2]))
    lo, hi = _box(rng, 3)
    given = ibp(net, lo, hi)
    tight = given.with_layer(1, given.lower[1] + 0.01, given.upper[1])
    out = compute_bounds(net, [tight], BoundMethod.CROWN)[0]
    assert np.all(out.lower[1] >= tight.lower[1])
    assert isinstance(out, Bounds)
