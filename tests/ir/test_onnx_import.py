"""ONNX import: every shared network loads and matches onnxruntime; exported torch models with
conv / batch-norm / transpose / reshape chains import correctly."""
from __future__ import annotations

import io

import numpy as np
import pytest

from optcert.ir import to_layered
from optcert.ir.from_onnx import from_onnx_model, load_onnx
from optcert.spec.vnnlib import read_vnnlib
from tests.builders import BENCHMARKS

ort = pytest.importorskip("onnxruntime")


def _networks():
    files = sorted(BENCHMARKS.glob("*/onnx/*.onnx")) + sorted(BENCHMARKS.glob("*/*.onnx"))
    return files or [pytest.param(None, marks=pytest.mark.skip(reason="shared benchmarks absent"))]


def _box(path):
    """A box to sample from: the first VNN-LIB property of the family, else [0, 1]."""
    props = sorted(path.parent.parent.glob("vnnlib/*.vnnlib"))
    if props:
        case = read_vnnlib(props[0]).cases[0]
        return case.box.lo, case.box.hi
    return None


@pytest.mark.parametrize("path", _networks(), ids=lambda p: p.name if p else "none")
def test_shared_network_matches_onnxruntime(path):
    net = load_onnx(path)
    sess = ort.InferenceSession(str(path))
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    rng = np.random.default_rng(0)
    box = _box(path)
    lo, hi = box if box else (np.zeros(net.n_inputs), np.ones(net.n_inputs))
    x = rng.uniform(lo, hi, size=(8, net.n_inputs)).astype(np.float32)
    ref = np.stack([sess.run(None, {inp.name: xi.reshape(shape)})[0].reshape(-1) for xi in x])
    ours = net.forward(x.astype(np.float64))
    np.testing.assert_allclose(ours, ref, atol=1e-5 * (1 + np.abs(ref).max()), rtol=0)
    np.testing.assert_allclose(to_layered(net).forward(x)[-1], ours, atol=1e-9 * (1 + np.abs(ours).max()))


def _export(module, shape):
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), torch.zeros((1,) + shape), buf, dynamo=False, opset_version=13)
    import onnx

    return onnx.load_from_string(buf.getvalue()), buf.getvalue()


class _TransposeNet:
    def __new__(cls):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1)
                self.bn = torch.nn.BatchNorm2d(3)
                self.fc = torch.nn.Linear(3 * 3 * 3, 4)

            def forward(self, x):
                h = torch.relu(self.bn(self.conv((x - 0.5) / 0.2)))
                h = h.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
                return self.fc(h)

        return Net()


def test_exported_conv_bn_transpose_net():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = _TransposeNet()
    module.bn.running_mean.uniform_(-1, 1)
    module.bn.running_var.uniform_(0.5, 2)
    model, raw = _export(module, (2, 5, 5))
    net = from_onnx_model(model)
    sess = ort.InferenceSession(raw)
    x = np.random.default_rng(1).uniform(size=(4, 2, 5, 5)).astype(np.float32)
    ref = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: xi[None]})[0] for xi in x])
    np.testing.assert_allclose(net.forward(x.reshape(4, -1)), ref, atol=1e-4)
    assert any(type(op).__name__ == "Transpose" for _, op in net.ops())


def test_exported_sequential_with_flatten_and_batchnorm1d():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 6), torch.nn.BatchNorm1d(6),
                                 torch.nn.ReLU(), torch.nn.Linear(6, 3))
    module[2].running_mean.uniform_(-1, 1)
    model, raw = _export(module, (3, 4))
    net = from_onnx_model(model)
    x = np.random.default_rng(2).normal(size=(5, 3, 4)).astype(np.float32)
    with torch.no_grad():
        ref = module.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x.reshape(5, -1)), ref, atol=1e-5)
