"""Pooling, clipping, leaky ReLUs and selections (slice, gather, pad, concat, split): imported from
ONNX and PyTorch, written exactly with ReLUs and `Select`s, they match onnxruntime and torch, and the
engines' verdicts on them agree with brute force (never a wrong verdict)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from optcert.compiled import compile_problem
from optcert.errors import InvalidModelError, ModelTooLargeError, UnsupportedOpError
from optcert.ir import to_layered
from optcert.ir.from_onnx import from_onnx_model
from optcert.result import Verdict
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem
from optcert.verify import verify
from tests.oracle import brute_force

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
nn, F = torch.nn, torch.nn.functional


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class _Head(nn.Module):
    """body, then flatten and a linear layer to 3 outputs."""

    def __init__(self, body, shape):
        super().__init__()
        self.body = body
        with torch.no_grad():
            n = body(torch.zeros((1,) + shape)).numel()
        self.fc = nn.Linear(n, 3)

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


def _conv(*pool):
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), *pool)


# name: (body, input shape, also through the torch importer)
CASES = {
    "maxpool": (_conv(nn.MaxPool2d(2)), (2, 6, 6), True),
    "maxpool-3s2p1": (_conv(nn.MaxPool2d(3, stride=2, padding=1)), (2, 7, 7), True),
    "maxpool-ceil-negative": (nn.Sequential(nn.Conv2d(2, 3, 2), nn.MaxPool2d(2, ceil_mode=True)), (2, 6, 6), True),
    "maxpool-dilated": (nn.MaxPool2d(2, stride=1, dilation=2), (2, 6, 6), True),
    "avgpool-pad": (nn.AvgPool2d(3, stride=2, padding=1), (2, 7, 7), True),
    "avgpool-pad-exclusive": (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 7, 7), True),
    "avgpool-ceil": (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 6, 6), True),
    "global-avg": (_conv(nn.AdaptiveAvgPool2d(1)), (2, 5, 5), True),
    "global-max": (_conv(nn.AdaptiveMaxPool2d(1)), (2, 4, 4), True),
    "leaky": (nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.1)), (2, 5, 5), True),
    "prelu": (nn.Sequential(nn.Conv2d(2, 3, 3), nn.PReLU(3)), (2, 5, 5), True),
    "relu6": (nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU6()), (2, 5, 5), True),
    "hardtanh": (nn.Sequential(nn.Conv2d(2, 3, 3), nn.Hardtanh(-0.5, 0.7)), (2, 5, 5), True),
    "clamp-min": (_Lambda(lambda x: torch.clamp(x, min=0.1)), (2, 3, 3), True),
    "concat-slice": (_Lambda(lambda x: torch.cat([torch.relu(x), x * 2, x[:, :1]], dim=1)), (2, 4, 4), True),
    "strided-slice": (_Lambda(lambda x: torch.relu(x[:, :, 1:3, ::2] - 0.1)), (2, 4, 5), True),
    "max-min": (_Lambda(lambda x: torch.maximum(x[:, :1], x[:, 1:]) + torch.minimum(x[:, :1], 0.2 * x[:, 1:])),
                (2, 3, 3), True),
    "pad-constant": (_Lambda(lambda x: F.pad(x, (1, 2, 0, 1), value=0.3)), (2, 3, 3), True),
    "pad-reflect": (_Lambda(lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect")), (2, 3, 3), True),
    "split-broadcast": (_Lambda(lambda x: torch.relu(torch.split(x, [1, 2], dim=1)[1]) - torch.chunk(x, 3, dim=1)[0]),
                        (3, 3, 3), False),
    "conv1d-maxpool1d": (_Lambda(lambda x: F.max_pool1d(torch.relu(x.flatten(2)), 3, stride=2, padding=1)),
                         (2, 3, 4), True),
    "avgpool1d-ceil": (_Lambda(lambda x: F.avg_pool1d(x.flatten(2), 3, stride=2, ceil_mode=True)), (2, 3, 4), True),
    "conv1d-modules": (nn.Sequential(nn.Flatten(2), nn.Conv1d(2, 4, 3, padding=2, dilation=2, groups=2), nn.ReLU(),
                                     nn.MaxPool1d(3, stride=2, padding=1), nn.ConvTranspose1d(4, 2, 3, stride=2),
                                     nn.AvgPool1d(2, ceil_mode=True)), (2, 3, 4), True),
    "abs-amax-amin": (_Lambda(lambda x: torch.abs(x).amax(dim=(2, 3), keepdim=True) - torch.amin(x, 1, keepdim=True)),
                      (2, 3, 3), True),
    "pixel-shuffle-tile": (nn.Sequential(nn.PixelShuffle(2), _Lambda(lambda x: x.repeat(1, 1, 2, 1).abs()),
                                         nn.PixelUnshuffle(2)), (4, 2, 2), True),
    "reduce-mean-sum": (_Lambda(lambda x: x.mean(dim=(2, 3), keepdim=True) * 2 + x.sum(dim=1, keepdim=True)),
                        (2, 3, 3), False),
}


class _Conv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3, stride=2, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x.flatten(2)))


CASES["conv1d"] = (_Conv1d(), (2, 3, 4), False)


CASES["clamp-both-relu6-hardtanh"] = (_Lambda(lambda x: torch.clamp(x, -0.2, 0.3) + F.relu6(3 * x)
                                               + F.hardtanh(x, -0.4, 0.1) + x.clamp(max=0.5)), (2, 3, 3), True)
CASES["split-chunk-cat"] = (_Lambda(lambda x: torch.cat([torch.split(x, [1, 2], dim=1)[1],
                                                        torch.relu(torch.chunk(x, 3, dim=1)[0]) - x[:, 2:]], dim=1)),
                            (3, 3, 3), True)


def _module(name):
    torch.manual_seed(0)
    body, shape, _ = CASES[name]
    return _Head(body, shape).eval(), shape


def _export(module, shape, opset=13):
    buf = io.BytesIO()
    torch.onnx.export(module, torch.zeros((1,) + shape), buf, dynamo=False, opset_version=opset)
    return buf.getvalue()


def _ort(raw: bytes, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(raw)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: xi[None].astype(np.float32)})[0] for xi in x])


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_layer_matches_onnxruntime_and_torch(name):
    module, shape = _module(name)
    raw = _export(module, shape)
    net = from_onnx_model(onnx.load_from_string(raw), name)
    x = np.random.default_rng(0).normal(size=(5,) + shape).astype(np.float32)
    ours = net.forward(x.reshape(5, -1).astype(np.float64))
    np.testing.assert_allclose(ours, _ort(raw, x), atol=1e-5, rtol=0)
    np.testing.assert_allclose(to_layered(net).forward(x.reshape(5, -1).astype(np.float64))[-1], ours, atol=1e-12)
    if CASES[name][2]:  # the torch importer writes the same layer the same way
        from optcert.ir.from_torch import from_torch

        with torch.no_grad():
            ref = module.double()(torch.from_numpy(x.astype(np.float64))).numpy()
        np.testing.assert_allclose(from_torch(module, shape).forward(x.reshape(5, -1).astype(np.float64)), ref,
                                   atol=1e-12, rtol=0)


class _Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)

    def forward(self, x):
        h = F.leaky_relu(self.conv(x), 0.2)
        return F.max_pool2d(h, 2) + F.avg_pool2d(h, 3, stride=2, padding=1, count_include_pad=False)


def test_torch_functional_pools_and_leaky_relu():
    from optcert.ir.from_torch import from_torch

    torch.manual_seed(2)
    module = _Functional().eval().double()
    x = np.random.default_rng(3).normal(size=(4, 2, 6, 6))
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy().reshape(4, -1)
    np.testing.assert_allclose(from_torch(module, (2, 6, 6)).forward(x.reshape(4, -1)), ref, atol=1e-12, rtol=0)


def _graph(nodes, inits=(), opset=13, shape=(1, 2, 4, 4), out_shape=None):
    h = onnx.helper
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(shape))],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, out_shape)],
                         [onnx.numpy_helper.from_array(np.asarray(v, dtype=a), name=k) for k, v, a in inits])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


HELPER = {
    "global-maxpool": ([onnx.helper.make_node("GlobalMaxPool", ["x"], ["y"])], [], 13),
    "maxpool-same-upper": ([onnx.helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                  auto_pad="SAME_UPPER")], [], 13),
    "slice-opset9-attributes": ([onnx.helper.make_node("Slice", ["x"], ["y"], starts=[1, 0], ends=[2, 3],
                                                       axes=[1, 3])], [], 9),
    "gather-negative": ([onnx.helper.make_node("Gather", ["x", "i"], ["y"], axis=2)],
                        [("i", [-1, 0, 0], np.int64)], 13),
    "split-sum-max": ([onnx.helper.make_node("Split", ["x", "s"], ["a", "b"], axis=3),
                       onnx.helper.make_node("Sum", ["a", "b", "c"], ["m"]),
                       onnx.helper.make_node("Max", ["m", "a", "z"], ["y"])],
                      [("s", [2, 2], np.int64), ("c", [0.5], np.float32), ("z", [0.1], np.float32)], 13),
    "pad-edge-axes": ([onnx.helper.make_node("Pad", ["x", "p", "", "ax"], ["y"], mode="edge")],
                      [("p", [1, 0, 2, 1], np.int64), ("ax", [2, 3], np.int64)], 18),
    "abs-reduce-max-min": ([onnx.helper.make_node("Abs", ["x"], ["a"]),
                            onnx.helper.make_node("ReduceMax", ["a"], ["m"], axes=[2, 3]),
                            onnx.helper.make_node("ReduceMin", ["x"], ["n"], axes=[1, 3], keepdims=1),
                            onnx.helper.make_node("Sub", ["n", "m"], ["y"])], [], 13),
    "reduce-max-axes-input": ([onnx.helper.make_node("ReduceMax", ["x", "ax"], ["y"], keepdims=0)],
                              [("ax", [-1], np.int64)], 18),
    "expand-tile": ([onnx.helper.make_node("Expand", ["x", "s"], ["e"]),
                     onnx.helper.make_node("Tile", ["e", "r"], ["y"])],
                    [("s", [1, 2, 1, 4, 4], np.int64), ("r", [1, 1, 2, 1, 3], np.int64)], 13),
    "depth-space": ([onnx.helper.make_node("Tile", ["x", "r"], ["t"]),
                     onnx.helper.make_node("DepthToSpace", ["t"], ["d"], blocksize=2, mode="CRD"),
                     onnx.helper.make_node("SpaceToDepth", ["d"], ["u"], blocksize=4),
                     onnx.helper.make_node("DepthToSpace", ["u"], ["y"], blocksize=2)],
                    [("r", [1, 2, 1, 1], np.int64)], 13),
    "einsum-contract": ([onnx.helper.make_node("Einsum", ["x", "w"], ["y"], equation="bchw,wk->bchk")],
                        [("w", np.random.default_rng(2).normal(size=(4, 3)), np.float32)], 13),
    "einsum-implicit-transpose": ([onnx.helper.make_node("Einsum", ["x"], ["y"], equation="bwhc")], [], 13),
    "einsum-ellipsis-constant-first": ([onnx.helper.make_node("Einsum", ["a", "x"], ["y"],
                                                              equation="ij, ...jk -> ...ik")],
                                       [("a", np.random.default_rng(3).normal(size=(3, 4)), np.float32)], 13),
    "einsum-trace": ([onnx.helper.make_node("Einsum", ["x"], ["y"], equation="bcii->bc")], [], 13),
    "where-constant-else": ([onnx.helper.make_node("Where", ["m", "x", "c"], ["y"])],
                            [("m", np.random.default_rng(4).random((1, 1, 4, 4)) < 0.5, np.bool_),
                             ("c", [0.5, -1.0, 2.0, 0.0], np.float32)], 13),
    "where-constant-then": ([onnx.helper.make_node("Where", ["m", "c", "x"], ["y"])],
                            [("m", np.random.default_rng(5).random((4, 1)) < 0.5, np.bool_),
                             ("c", [[3.0]], np.float32)], 13),
    "hardsigmoid-shrink": ([onnx.helper.make_node("HardSigmoid", ["x"], ["h"], alpha=0.3, beta=0.4),
                            onnx.helper.make_node("Shrink", ["x"], ["s"], lambd=0.3, bias=0.3),
                            onnx.helper.make_node("Sub", ["h", "s"], ["y"])], [], 13),
    "mean-reducel1": ([onnx.helper.make_node("Mean", ["x", "c", "x"], ["m"]),
                       onnx.helper.make_node("ReduceL1", ["m"], ["r"], axes=[3]),
                       onnx.helper.make_node("Add", ["m", "r"], ["y"])],
                      [("c", [0.5, -1.0, 0.0, 2.0], np.float32)], 13),
    "cumsum-exclusive-reverse": ([onnx.helper.make_node("CumSum", ["x", "a"], ["c"], exclusive=1, reverse=1),
                                  onnx.helper.make_node("CumSum", ["c", "b"], ["y"])],
                                 [("a", 2, np.int64), ("b", [-1], np.int64)], 13),
    "trilu-gathers-compress": ([onnx.helper.make_node("Trilu", ["x", "k"], ["t"], upper=0),
                                onnx.helper.make_node("GatherElements", ["t", "i"], ["g"], axis=3),
                                onnx.helper.make_node("GatherND", ["g", "j"], ["n"]),
                                onnx.helper.make_node("Compress", ["n", "m"], ["y"], axis=1)],
                               [("k", 1, np.int64),
                                ("i", np.random.default_rng(6).integers(-4, 4, size=(1, 2, 4, 2)), np.int64),
                                ("j", [[0, 1], [0, 0]], np.int64), ("m", [True, False, True, True], np.bool_)], 14),
    "where-batched-and-unbatched-branches": (
        [onnx.helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2, 3]),
         onnx.helper.make_node("Reshape", ["t", "s"], ["r"]), onnx.helper.make_node("Where", ["m", "x", "r"], ["y"])],
        [("s", [1, 2, 4, 4], np.int64), ("m", np.random.default_rng(7).random((1, 2, 4, 4)) < 0.5, np.bool_)], 13),
    "gather-elements-smaller-indices": ([onnx.helper.make_node("GatherElements", ["x", "i"], ["y"], axis=3)],
                                        [("i", [[[[3, 0]]]], np.int64)], 13),
    "gathernd-empty-tuples-and-itself": ([onnx.helper.make_node("GatherND", ["x", "i"], ["g"]),
                                          onnx.helper.make_node("Mean", ["g", "g"], ["m"]),
                                          onnx.helper.make_node("Sub", ["m", "g"], ["z"]),
                                          onnx.helper.make_node("Add", ["g", "z"], ["y"])],
                                         [("i", np.zeros((2, 0), np.int64), np.int64)], 13),
    "where-both-folded-condition": ([onnx.helper.make_node("Greater", ["u", "v"], ["m"]),
                                     onnx.helper.make_node("Neg", ["x"], ["n"]),
                                     onnx.helper.make_node("Where", ["m", "x", "n"], ["y"])],
                                    [("u", [[[1.0]], [[-1.0]]], np.float32), ("v", [0.0], np.float32)], 13),
}


@pytest.mark.parametrize("name", sorted(HELPER))
def test_onnx_layer_matches_onnxruntime(name):
    nodes, inits, opset = HELPER[name]
    model = _graph(nodes, inits, opset)
    raw = model.SerializeToString()
    net = from_onnx_model(model, name)
    x = np.random.default_rng(1).normal(size=(4, 2, 4, 4)).astype(np.float32)
    ref = _ort(raw, x).reshape(4, -1)
    np.testing.assert_allclose(net.forward(x.reshape(4, -1).astype(np.float64)), ref, atol=1e-6, rtol=0)


def test_a_pool_window_in_the_padding_only_is_a_clear_error():
    node = onnx.helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[3, 0, 0, 0])
    with pytest.raises(InvalidModelError, match="padding"):
        from_onnx_model(_graph([node]), "bad")


@pytest.mark.parametrize("nodes,inits", [
    ([onnx.helper.make_node("Split", ["x", "s"], ["a", "b"], axis=3)], [("s", [3, 3], np.int64)]),
    ([onnx.helper.make_node("ReduceSum", ["x", "ax"], ["y"])], [("ax", [4], np.int64)]),
    ([onnx.helper.make_node("Gather", ["x", "i"], ["y"], axis=2)], [("i", [7], np.int64)]),
    ([onnx.helper.make_node("MaxPool", ["x"], ["y"])], []),
    ([onnx.helper.make_node("Einsum", ["x", "w"], ["y"], equation="bch,wk->bk")], [("w", np.ones((4, 3)), np.float32)]),
    ([onnx.helper.make_node("Einsum", ["x"], ["y"])], []),
    ([onnx.helper.make_node("Where", ["", "x", "x"], ["y"])], []),
], ids=["split-sizes", "reduce-axis", "gather-index", "pool-no-kernel", "einsum-equation", "einsum-no-equation",
        "where-no-condition"])
def test_malformed_layers_are_invalid_models_naming_the_node(nodes, inits):
    with pytest.raises(InvalidModelError, match=nodes[0].op_type):
        from_onnx_model(_graph(nodes, inits), "bad")


def test_max_pool_indices_dynamic_clip_bounds_and_non_affine_einsum_where_are_reported_unsupported():
    nodes = [onnx.helper.make_node("MaxPool", ["x"], ["p", "idx"], kernel_shape=[2, 2]),
             onnx.helper.make_node("Cast", ["idx"], ["f"], to=onnx.TensorProto.FLOAT),
             onnx.helper.make_node("Add", ["p", "f"], ["y"])]
    with pytest.raises(UnsupportedOpError, match="MaxPool"):
        from_onnx_model(_graph(nodes), "indices")
    square = onnx.helper.make_node("Einsum", ["x", "x"], ["y"], equation="bchw,bchw->b")
    with pytest.raises(UnsupportedOpError, match="Einsum"):
        from_onnx_model(_graph([square]), "square")
    relu = [onnx.helper.make_node("Greater", ["x", "z"], ["m"]), onnx.helper.make_node("Where", ["m", "x", "z"], ["y"])]
    with pytest.raises(UnsupportedOpError, match="Greater"):
        from_onnx_model(_graph(relu, [("z", [0.0], np.float32)]), "relu-by-where")
    jump = onnx.helper.make_node("Shrink", ["x"], ["y"], lambd=0.5, bias=0.1)
    with pytest.raises(UnsupportedOpError, match="Shrink"):
        from_onnx_model(_graph([jump]), "hard-shrink")
    clip = onnx.helper.make_node("Clip", ["x", "x"], ["y"])
    with pytest.raises(UnsupportedOpError, match="Clip"):
        from_onnx_model(_graph([clip]), "clip")


# ---- soundness: engines on pooled / clipped nets against brute force ---------------------------
def _pool_net(seed: int, kind: str):
    from optcert.ir.from_torch import from_torch

    torch.manual_seed(seed)
    body = {"max": [nn.Conv2d(1, 2, 2), nn.MaxPool2d(2)],                                   # 6 ReLUs
            "avg": [nn.Conv2d(1, 2, 2, padding=1), nn.AvgPool2d(2), nn.LeakyReLU(0.2)],    # 8 ReLUs
            "clip": [nn.Conv2d(1, 1, 2), nn.Hardtanh(-0.3, 0.4)],                          # 8 ReLUs
            "shrink": [nn.Conv2d(1, 1, 2), nn.Softshrink(0.2)]}[kind]                       # 8 ReLUs
    module = nn.Sequential(*body, nn.Flatten(), nn.LazyLinear(2))
    module(torch.zeros(1, 1, 3, 3))
    return from_torch(module, (1, 3, 3), name=f"{kind}{seed}")


def _problem(net, seed: int, shift: float = 0.0) -> VerificationProblem:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 1, size=net.n_inputs)
    box = Box(c - 0.3, c + 0.3)
    return VerificationProblem(net, (Case(box, LinearSpec(np.array([[1.0, -1.0]]), np.array([shift])),
                                          Combine.ALL),), name=net.name)


def agrees_with_brute_force(net, seed: int) -> None:
    """The exact minimum by brute force is below every sampled margin; the milp engine's bound
    matches it; `auto` proves the property shifted 0.01 above it and falsifies it 0.01 below."""
    problem = _problem(net, seed)
    cc = compile_problem(problem)[0]
    truth = brute_force(cc.net, cc.ibp, (0,))
    xs = np.random.default_rng(seed).uniform(cc.case.box.lo, cc.case.box.hi, size=(2000, net.n_inputs))
    assert truth <= (net.forward(xs) @ np.array([1.0, -1.0])).min() + 1e-9  # brute force is a minimum
    milp = verify(problem, "milp", 60, {"exact": True, "attack": False, "bounds": "crown"})
    assert truth - 1e-5 * (1 + abs(truth)) <= milp.bound <= truth + 1e-9
    for delta in (-0.01, 0.01):
        result = verify(_problem(net, seed, shift=-truth + delta), "auto", 30)
        assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason
        if result.verdict is Verdict.FALSIFIED:
            assert min(result.counterexample.margins) < 0


@pytest.mark.parametrize("kind", ["max", "avg", "clip", "shrink"])
@pytest.mark.parametrize("seed", range(2))
def test_engines_agree_with_brute_force_on_pooled_nets(seed, kind):
    agrees_with_brute_force(_pool_net(seed, kind), seed)


@pytest.mark.parametrize("stride,padding,dilation,groups", [((1, 1), (0, 0, 0, 0), (1, 1), 1),
                                                            ((2, 1), (1, 0, 2, 1), (1, 2), 1),
                                                            ((1, 2), (2, 2, 2, 2), (2, 1), 2)])
def test_convolution_matrix_matches_the_convolution(stride, padding, dilation, groups):
    """The sparse matrix `to_layered` composes a convolution with equals the float64 convolution."""
    from optcert.ir import ops as O
    from optcert.ir.network import conv2d_nobias, conv_matrix, out_shape

    rng = np.random.default_rng(4)
    op = O.Conv2d(rng.normal(size=(4, 4 // groups, 3, 2)), np.zeros(4), stride, padding, dilation, groups)
    shape = (4, 7, 6)
    x = rng.normal(size=(3,) + shape)
    K = conv_matrix(op, shape, out_shape(op, [shape]))
    np.testing.assert_allclose((K @ x.reshape(3, -1).T).T, conv2d_nobias(op, x).reshape(3, -1), atol=1e-12)


@pytest.mark.filterwarnings("ignore")
def test_an_einsum_too_large_is_refused_before_anything_is_allocated():
    big = [("a", np.ones(100000), np.float32)]
    with pytest.raises(ModelTooLargeError, match="Einsum"):
        from_onnx_model(_graph([onnx.helper.make_node("Einsum", ["x", "a", "a"], ["y"], equation="bchw,i,j->bchwij")],
                               big), "huge")
    with pytest.raises(ModelTooLargeError, match="Einsum"):    # constants only: folded, with the same guard
        from_onnx_model(_graph([onnx.helper.make_node("Einsum", ["a", "a"], ["w"], equation="i,j->ij"),
                                onnx.helper.make_node("Add", ["x", "w"], ["y"])], big), "huge-constant")


def test_a_network_too_large_for_this_machine_is_a_clear_error(monkeypatch, tmp_path):
    """The dense affine/ReLU form is refused before it is allocated; the command line says so in one
    line with its own exit code."""
    import subprocess
    import sys

    from optcert.errors import ModelTooLargeError
    from optcert.ir.from_torch import from_torch

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    net = from_torch(module, (1, 8, 8))
    monkeypatch.setenv("OPTCERT_MAX_WEIGHTS", "1000")
    with pytest.raises(ModelTooLargeError, match="this machine allows 1,000"):
        to_layered(net)
    path = tmp_path / "big.onnx"
    torch.onnx.export(module.eval(), torch.zeros(1, 1, 8, 8), str(path), dynamo=False, opset_version=13)
    proc = subprocess.run([sys.executable, "-m", "optcert.cli", "verify", str(path), "--image",
                           str(_image_file(tmp_path)), "--index", "0", "--eps", "0.01"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == ModelTooLargeError.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _image_file(tmp_path):
    path = tmp_path / "images.npz"
    np.savez(path, X=np.full((1, 64), 0.5), y=np.array([0]))
    return path


def _random_body(rng: np.random.Generator, channels: int):
    """A random stack of the layers written with ReLUs / Selects, on (channels, 8, 8) inputs."""
    layers, c = [], channels
    for _ in range(int(rng.integers(2, 5))):
        kind = rng.choice(["conv", "maxpool", "avgpool", "leaky", "clip", "pad", "prelu"])
        if kind == "conv":
            out = int(rng.integers(1, 4))
            layers.append(nn.Conv2d(c, out, 3, padding=int(rng.integers(0, 2))))
            c = out
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(int(rng.integers(2, 4)), stride=int(rng.integers(1, 3)),
                                       padding=int(rng.integers(0, 2)), ceil_mode=bool(rng.integers(0, 2))))
        elif kind == "avgpool":
            layers.append(nn.AvgPool2d(2, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                                       ceil_mode=bool(rng.integers(0, 2)), count_include_pad=bool(rng.integers(0, 2))))
        elif kind == "leaky":
            layers.append(nn.LeakyReLU(float(rng.uniform(0, 0.5))))
        elif kind == "clip":
            lo = float(rng.uniform(-1, 0))
            layers.append(nn.Hardtanh(lo, lo + float(rng.uniform(0.2, 2))))
        elif kind == "pad":
            layers.append(nn.ZeroPad2d(tuple(int(v) for v in rng.integers(0, 2, size=4))))
        else:
            layers.append(nn.PReLU(c))
    return nn.Sequential(*layers)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("seed", range(16))
def test_random_stacks_of_these_layers_match_onnxruntime_and_torch(seed):
    from optcert.ir.from_torch import from_torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    shape = (int(rng.integers(1, 3)), 8, 8)
    body = _random_body(rng, shape[0])
    try:
        module = _Head(body, shape).eval()
    except RuntimeError:          # the stack shrank the image to nothing: not a network
        pytest.skip("degenerate stack")
    x = rng.normal(size=(4,) + shape)
    raw = _export(module, shape)
    ours = from_onnx_model(onnx.load_from_string(raw), f"random{seed}").forward(x.reshape(4, -1))
    np.testing.assert_allclose(ours, _ort(raw, x.astype(np.float32)), atol=1e-4, rtol=0)
    with torch.no_grad():
        ref = module.double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(from_torch(module, shape).forward(x.reshape(4, -1)), ref, atol=1e-10, rtol=0)
    layered = to_layered(from_torch(module, shape))
    np.testing.assert_allclose(layered.forward(x.reshape(4, -1))[-1], ref, atol=1e-10, rtol=0)
