"""Transposed convolutions and resizing (ONNX ConvTranspose, Resize, Upsample; torch ConvTranspose2d,
nn.Upsample, F.interpolate): imported exactly as linear maps, they match onnxruntime and torch, and
verdicts on networks using them agree with brute force (never a wrong verdict)."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.errors import InvalidModelError, UnsupportedOpError
from optcert.ir import to_layered
from optcert.ir.from_onnx import from_onnx_model
from tests.ir.test_decompose import _graph, _Lambda, _ort, agrees_with_brute_force

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
nn, F = torch.nn, torch.nn.functional
make = onnx.helper.make_node


def _check_onnx(model, shape):
    """The imported network (and its layered form) against onnxruntime on random inputs."""
    net = from_onnx_model(model, "t")
    x = np.random.default_rng(1).normal(size=(3,) + shape).astype(np.float32)
    ref = _ort(model.SerializeToString(), x).reshape(3, -1)
    ours = net.forward(x.reshape(3, -1).astype(np.float64))
    np.testing.assert_allclose(ours, ref, atol=2e-5, rtol=0)
    np.testing.assert_allclose(to_layered(net).forward(x.reshape(3, -1).astype(np.float64))[-1], ours, atol=1e-12)


# attributes, weight shape (C_in, C_out/group, kh, kw), group, input shape
CONV_T = {
    "plain": ({}, (2, 3, 3, 2), 1, (1, 2, 5, 6)),
    "stride-pads": ({"strides": [2, 3], "pads": [1, 0, 0, 1]}, (2, 3, 3, 2), 1, (1, 2, 5, 6)),
    "output-padding": ({"strides": [2, 2], "output_padding": [1, 1]}, (2, 3, 3, 3), 1, (1, 2, 4, 4)),
    "dilated": ({"strides": [2, 2], "dilations": [2, 1], "pads": [1, 1, 2, 0]}, (2, 3, 3, 2), 1, (1, 2, 4, 5)),
    "same-upper": ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (2, 3, 3, 2), 1, (1, 2, 4, 5)),
    "same-lower": ({"strides": [3, 2], "auto_pad": "SAME_LOWER"}, (2, 3, 3, 2), 1, (1, 2, 4, 5)),
    "output-shape-odd": ({"strides": [2, 2], "output_shape": [9, 11]}, (2, 3, 3, 3), 1, (1, 2, 4, 5)),
    "groups": ({"strides": [2, 1]}, (4, 3, 2, 2), 2, (1, 4, 3, 3)),
    "one-d": ({"strides": [2], "pads": [1, 0], "output_padding": [1]}, (2, 3, 3), 1, (1, 2, 6)),
}


@pytest.mark.parametrize("name", sorted(CONV_T))
def test_onnx_conv_transpose_matches_onnxruntime(name):
    attrs, wshape, group, shape = CONV_T[name]
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=wshape), rng.normal(size=wshape[1] * group)
    model = _graph([make("ConvTranspose", ["x", "w", "b"], ["y"], group=group, **attrs)],
                   [("w", w, np.float32), ("b", b, np.float32)], shape=shape)
    _check_onnx(model, shape[1:])


# attributes, scales, sizes, opset, op type
RESIZE = {
    "nearest-half-pixel": ({"mode": "nearest"}, [1, 1, 2.5, 0.5], None, 13, "Resize"),
    "nearest-asymmetric-ceil": ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                 "nearest_mode": "ceil"}, [1, 1, 3, 0.5], None, 13, "Resize"),
    "nearest-align-sizes": ({"mode": "nearest", "coordinate_transformation_mode": "align_corners"}, None,
                            [1, 2, 7, 4], 13, "Resize"),
    "nearest-tf-half-pixel": ({"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn",
                               "nearest_mode": "round_prefer_ceil"}, [1, 1, 2, 1.5], None, 13, "Resize"),
    "linear-tf-half-pixel": ({"mode": "linear", "coordinate_transformation_mode": "tf_half_pixel_for_nn"},
                             [1, 1, 2, 2], None, 13, "Resize"),
    "linear-half-pixel": ({"mode": "linear"}, [1, 1, 3, 1.5], None, 13, "Resize"),
    "linear-down": ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
                    [1, 1, 0.5, 0.6], None, 13, "Resize"),
    "linear-align-sizes": ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, None,
                           [1, 2, 7, 4], 13, "Resize"),
    "linear-axes": ({"mode": "linear", "axes": [2, 3]}, [2, 3], None, 18, "Resize"),
    "cubic": ({"mode": "cubic"}, [1, 1, 2, 1.5], None, 13, "Resize"),
    "cubic-exclude-outside": ({"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5}, [1, 1, 2, 1.5],
                              None, 13, "Resize"),
    "resize-opset10": ({"mode": "nearest"}, [1, 1, 3, 2], None, 10, "Resize"),
    "upsample-nearest": ({"mode": "nearest"}, [1, 1, 3, 2], None, 9, "Upsample"),
    "upsample-linear": ({"mode": "linear"}, [1, 1, 2, 3], None, 9, "Upsample"),
}


def _resize_model(attrs, scales, sizes, opset, op, shape=(1, 2, 5, 6)):
    inits, ins = [], ["x"]
    if scales is not None:
        inits.append(("sc", scales, np.float32))
    if sizes is not None:
        inits.append(("sz", sizes, np.int64))
    if op == "Resize" and opset >= 11:
        ins += ["", "sc" if scales is not None else "", "sz" if sizes is not None else ""]
    else:
        ins += ["sc"]
    while ins[-1] == "":
        ins.pop()
    model = _graph([make(op, ins, ["y"], **attrs)], inits, opset, shape=shape)
    model.ir_version = 8
    return model


@pytest.mark.parametrize("name", sorted(RESIZE))
def test_onnx_resize_matches_onnxruntime(name):
    _check_onnx(_resize_model(*RESIZE[name]), (2, 5, 6))


@pytest.mark.parametrize("attrs,scales,sizes,error,match", [
    ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}, [1, 1, 2, 2], None,
     UnsupportedOpError, "Resize"),
    ({"mode": "linear", "antialias": 1}, [1, 1, 0.5, 0.5], None, UnsupportedOpError, "Resize"),
    ({"mode": "area"}, [1, 1, 2, 2], None, InvalidModelError, "mode"),
    ({"mode": "nearest"}, [1, 1, -2, 2], None, InvalidModelError, "positive"),
    ({"mode": "nearest"}, [1, 1, 2], None, InvalidModelError, "axes"),
    ({"mode": "nearest"}, [2, 1, 2, 2], None, UnsupportedOpError, "Resize"),        # the batch axis
    ({"mode": "nearest"}, [1, 1, np.inf, 2], None, InvalidModelError, "positive"),
    ({"mode": "linear", "axes": [7]}, [2], None, InvalidModelError, "axes"),
    ({"mode": "linear"}, [1, 1, 1, 1.1], None, InvalidModelError, "keeps its length"),  # spec ≠ onnxruntime
], ids=["crop-and-resize", "antialias", "unknown-mode", "negative-scale", "scales-rank", "batch-axis", "inf-scale",
        "axes-range", "same-length-other-scale"])
def test_unsupported_and_malformed_resizes_are_clear_errors(attrs, scales, sizes, error, match):
    opset = 18 if "antialias" in attrs or "axes" in attrs else 13
    with pytest.raises(error, match=match):
        from_onnx_model(_resize_model(attrs, scales, sizes, opset, "Resize"), "bad")


def test_an_opset_10_nearest_shrink_is_reported_unsupported():
    """onnxruntime rounds a shrinking Resize-10 otherwise than the spec: never guessed."""
    with pytest.raises(UnsupportedOpError, match="Resize"):
        from_onnx_model(_resize_model({"mode": "nearest"}, [1, 1, 1, 0.75], None, 10, "Resize"), "bad")


def test_a_conv_transpose_output_shape_too_large_is_an_invalid_model():
    w = np.ones((2, 3, 3, 3))
    node = make("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[20, 20])
    with pytest.raises(InvalidModelError, match="ConvTranspose"):
        from_onnx_model(_graph([node], [("w", w, np.float32)]), "bad")


TORCH = {
    "conv-transpose": nn.Sequential(nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), nn.ReLU()),
    "conv-transpose-groups": nn.Sequential(nn.ConvTranspose2d(2, 4, (3, 2), stride=(2, 1), padding=(0, 1),
                                                              dilation=(1, 2), groups=2)),
    "upsample-nearest": nn.Upsample(scale_factor=(3, 1.5)),
    "upsample-bilinear": nn.Upsample(scale_factor=2, mode="bilinear"),
    "upsample-align-corners": nn.Upsample(size=(7, 5), mode="bilinear", align_corners=True),
    "upsample-bicubic": nn.Upsample(scale_factor=1.5, mode="bicubic"),
    "upsampling-bilinear2d": nn.UpsamplingBilinear2d(scale_factor=2),
    "interpolate": _Lambda(lambda x: F.interpolate(torch.relu(x), scale_factor=2, mode="bilinear") + 1),
    "interpolate-nearest-exact": _Lambda(lambda x: F.interpolate(x, size=(7, 9), mode="nearest-exact")),
    "interpolate-recompute": _Lambda(lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear",
                                                             recompute_scale_factor=True)),
}


@pytest.mark.parametrize("name", sorted(TORCH))
def test_torch_layers_match_torch(name):
    from optcert.ir.from_torch import from_torch

    torch.manual_seed(0)
    module = TORCH[name].eval().double()
    net = from_torch(module, (2, 4, 5))
    x = np.random.default_rng(1).normal(size=(3, 2, 4, 5))
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy().reshape(3, -1)
    np.testing.assert_allclose(net.forward(x.reshape(3, -1)), ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(to_layered(net).forward(x.reshape(3, -1))[-1], ref, atol=1e-12, rtol=0)


class _SizedUp(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)

    def forward(self, x):
        return self.up(x, output_size=[8, 10])


@pytest.mark.parametrize("module,match", [
    (_Lambda(lambda x: F.interpolate(x, size=(2, 3), mode="area")), "interpolate"),
    (_Lambda(lambda x: F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)), "interpolate"),
    (_SizedUp(), "ConvTranspose2d"),
], ids=["area", "antialias", "conv-transpose-output-size"])
def test_torch_layers_not_written_here_are_reported_unsupported(module, match):
    """Reported in one UnsupportedOpError, never guessed (nor a raw torch error)."""
    from optcert.ir.from_torch import from_torch

    with pytest.raises(UnsupportedOpError, match=match):
        from_torch(module, (2, 4, 5))


# ---- soundness: decoder-like nets against brute force ---------------------------------------------
def _decoder(seed: int, kind: str):
    from optcert.ir.from_torch import from_torch

    torch.manual_seed(seed)
    up, channels = {"transpose": (nn.ConvTranspose2d(2, 1, 2, stride=2), 1),          # 8 + 1 ReLUs
                    "bilinear": (nn.Upsample(scale_factor=2, mode="bilinear"), 2)}[kind]  # 8 + 1 ReLUs
    module = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), up, nn.Conv2d(channels, 1, 3, stride=2), nn.ReLU(),
                           nn.Flatten(), nn.LazyLinear(2))
    module(torch.zeros(1, 1, 3, 3))
    return from_torch(module, (1, 3, 3), name=f"{kind}{seed}")


@pytest.mark.parametrize("kind", ["transpose", "bilinear"])
@pytest.mark.parametrize("seed", range(2))
def test_engines_agree_with_brute_force_on_upsampling_nets(seed, kind):
    agrees_with_brute_force(_decoder(seed, kind), seed)


def test_a_softmax_is_reported_with_a_hint():
    """Smooth layers stay unsupported; for a Softmax the message says what to do instead."""
    with pytest.raises(UnsupportedOpError, match="Softmax.*without it"):
        from_onnx_model(_graph([make("Softmax", ["x"], ["y"], axis=1)]), "soft")
