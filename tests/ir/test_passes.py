"""Every pass preserves the float64 semantics of the network."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.ir import Network
from optcert.ir import ops as O
from optcert.ir import passes as P
from tests.builders import random_conv_net, random_mlp, random_residual_net


def _normalised_conv_net(rng) -> Network:
    nodes = [
        ("in", O.Input((2, 5, 5)), []),
        ("norm", O.ElementwiseAffine(rng.uniform(0.5, 2, size=(2, 1, 1)), rng.normal(size=(2, 1, 1))), ["in"]),
        ("conv", O.Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), padding=(0, 0, 0, 0)), ["norm"]),
        ("bn", O.BatchNorm(rng.normal(size=3), rng.uniform(0.5, 2, size=3), rng.normal(size=3),
                           rng.normal(size=3)), ["conv"]),
        ("r1", O.ReLU(), ["bn"]),
        ("id", O.Identity(), ["r1"]),
        ("fl", O.Flatten(), ["id"]),
        ("a1", O.Affine(rng.normal(size=(8, 27)), rng.normal(size=8)), ["fl"]),
        ("a2", O.Affine(rng.normal(size=(8, 8)), rng.normal(size=8)), ["a1"]),
        ("r2", O.ReLU(), ["a2"]),
        ("a3", O.Affine(rng.normal(size=(8, 8)), rng.normal(size=8)), ["r2"]),
        ("res", O.Add(), ["a3", "r2"]),
        ("sc", O.ElementwiseAffine(2.0, 1.0), ["res"]),
    ]
    return Network.from_nodes(nodes)


BUILDERS = [_normalised_conv_net, random_conv_net, random_residual_net, lambda r: random_mlp(r, [4, 6, 6, 3])]
PASSES = [P.fold_normalization, P.fuse_affine, P.conv_to_affine, P.drop_identity, P.simplify]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("rewrite", PASSES, ids=lambda f: f.__name__)
def test_pass_preserves_evaluate(build, rewrite):
    rng = np.random.default_rng(11)
    net = build(rng)
    out = rewrite(net)
    x = rng.normal(size=(25, net.n_inputs))
    scale = 1 + np.abs(net.forward(x)).max()
    np.testing.assert_allclose(out.forward(x), net.forward(x), atol=1e-11 * scale)
    assert out is not net and len(net.order) == len(build(np.random.default_rng(11)).order)


def test_simplify_removes_normalisation_identity_and_conv():
    net = P.simplify(_normalised_conv_net(np.random.default_rng(2)))
    kinds = [type(op).__name__ for _, op in net.ops()]
    assert "Conv2d" not in kinds and "BatchNorm" not in kinds and "Identity" not in kinds
    assert kinds.count("Affine") == 3  # conv, a1∘a2 fused, a3


def test_conv_to_affine_respects_size_cap():
    net = random_conv_net(np.random.default_rng(0))
    kept = P.conv_to_affine(net, max_entries=10)
    assert any(isinstance(op, O.Conv2d) for _, op in kept.ops())
