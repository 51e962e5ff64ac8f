"""Network validation, float64 semantics and the LayeredNet composition."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from optcert.errors import InvalidModelError
from optcert.ir import Network, to_layered
from optcert.ir import ops as O
from optcert.ir.network import conv2d_nobias
from tests.builders import random_conv_net, random_mlp, random_residual_net


def test_validate_rejects_nan_weight_and_names_node():
    with pytest.raises(InvalidModelError, match="0_affine"):
        Network.sequential((2,), [O.Affine([[1.0, np.nan]], [0.0])])


def test_validate_rejects_shape_mismatch():
    with pytest.raises(InvalidModelError, match="do not fit"):
        Network.sequential((3,), [O.Affine(np.ones((2, 4)), np.zeros(2))])


def test_validate_rejects_cycle_and_bad_arity():
    g = nx.DiGraph()
    g.add_node("x", op=O.Input((2,)))
    g.add_node("a", op=O.ReLU())
    g.add_node("b", op=O.ReLU())
    g.add_edge("x", "a", slot=0)
    g.add_edge("a", "b", slot=0)
    g.add_edge("b", "a", slot=1)
    with pytest.raises(InvalidModelError, match="cycle"):
        Network(g, "x", "b")
    with pytest.raises(InvalidModelError, match="takes 2 input"):
        Network.from_nodes([("x", O.Input((2,)), []), ("s", O.Add(), ["x"])])


def test_evaluate_matches_manual_mlp():
    W1, b1 = np.array([[1.0, -2.0], [0.5, 0.5]]), np.array([0.1, -0.2])
    W2, b2 = np.array([[1.0, 1.0]]), np.array([0.3])
    net = Network.sequential((2,), [O.Affine(W1, b1), O.ReLU(), O.Affine(W2, b2)])
    x = np.array([0.3, -0.7])
    expect = W2 @ np.maximum(W1 @ x + b1, 0) + b2
    values = net.evaluate(x)
    assert values[net.output].dtype == np.float64
    np.testing.assert_array_equal(values[net.output], expect)


def test_conv_matches_direct_loops():
    rng = np.random.default_rng(0)
    op = O.Conv2d(rng.normal(size=(4, 2, 3, 2)), np.zeros(4), stride=(2, 1), padding=(1, 0, 2, 1),
                  dilation=(1, 2), groups=2)
    x = rng.normal(size=(1, 4, 6, 5))
    out = conv2d_nobias(op, x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))
    for o in range(4):
        g = o // 2
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                patch = xp[0, 2 * g:2 * g + 2, 2 * i:2 * i + 3, j:j + 3:2]
                assert np.isclose(out[0, o, i, j], np.sum(patch * op.weight[o]))


@pytest.mark.parametrize("builder", [lambda r: random_mlp(r, [4, 7, 5, 3]), random_conv_net, random_residual_net])
def test_layered_form_reproduces_network(builder):
    rng = np.random.default_rng(3)
    net = builder(rng)
    layered = to_layered(net)
    x = rng.uniform(-1, 1, size=(50, net.n_inputs))
    np.testing.assert_allclose(layered.forward(x)[-1], net.forward(x), rtol=1e-12, atol=1e-12)


def test_layered_mlp_composition_is_exact():
    rng = np.random.default_rng(4)
    net = random_mlp(rng, [5, 6, 6, 2])
    layered = to_layered(net)
    assert layered.is_chain()
    assert np.array_equal(layered.layers[0].weights[0], net.op("0_affine").weight)


def test_residual_layer_has_two_sources():
    layered = to_layered(random_residual_net(np.random.default_rng(5)))
    assert layered.output.sources == (1, 2)


def test_with_spec_folds_margins():
    rng = np.random.default_rng(6)
    net = random_mlp(rng, [3, 4, 3])
    layered = to_layered(net)
    C, d = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]), np.array([0.5, -0.25])
    x = rng.normal(size=(10, 3))
    np.testing.assert_allclose(layered.with_spec(C, d).forward(x)[-1], net.forward(x) @ C.T + d, atol=1e-12)


def test_summary_and_fingerprint():
    rng = np.random.default_rng(7)
    net = random_mlp(rng, [3, 4, 4, 2])
    s = net.summary()
    assert (s.relu_layers, s.neurons, s.parameters) == (2, 8, 3 * 4 + 4 + 4 * 4 + 4 + 4 * 2 + 2)
    assert net.fingerprint() == random_mlp(np.random.default_rng(7), [3, 4, 4, 2]).fingerprint()
    assert net.fingerprint() != random_mlp(np.random.default_rng(8), [3, 4, 4, 2]).fingerprint()
