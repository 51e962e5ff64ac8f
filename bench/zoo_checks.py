"""Per-net extras of the zoo benchmark (bench/zoo.py), each stored as JSON in --work (resumable):
the L2 curves of the Lipschitz and smoothing certificates at the images themselves, PGD against the
certified Lipschitz L2 radius, and the empirical coverage of the smoothing certificate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from optcert.engines.lipschitz import certified_l2_radius, lipschitz_bounds
from optcert.engines.smoothing import SmoothingOptions, certify_smoothed, predict_smoothed, sample_counts
from optcert.ir.layered import to_layered
from optcert.ir.load import load_network

SMOOTHING = dict(n0=100, n=10000, alpha=0.001)     # Cohen et al.'s MNIST/CIFAR settings (n = 10^4 here)


def _cached(path: Path, make) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return data


def _sigma(card) -> float:
    return float(card.settings.get("sigma", 0.25))


def curves(onnx: Path, card, x: np.ndarray, y: np.ndarray, work: Path) -> dict:
    """Per image: Lipschitz certified L2 radius, smoothing CERTIFY result (at the image), clean correctness."""
    def make():
        net = to_layered(load_network(onnx))
        lips = lipschitz_bounds(net, estimates=False)
        out = {"lipschitz": [], "smoothing": [], "correct": [], "sigma": _sigma(card), **SMOOTHING}
        opts = SmoothingOptions(sigma=_sigma(card), **SMOOTHING)  # type: ignore[arg-type]
        for xi, yi in zip(x, y):
            out["correct"].append(bool(np.argmax(net.forward(xi[None])[-1][0]) == yi))
            out["lipschitz"].append(certified_l2_radius(net, xi, int(yi), lips))
            res = certify_smoothed(net, xi, opts)
            out["smoothing"].append({**res.as_dict(), "label": int(yi)})
        return out
    return _cached(work / "curves" / f"{onnx.stem}.json", make)


def _torch_model(net):
    import torch

    layers = [([torch.tensor(np.array(w)) for w in layer.weights], torch.tensor(np.array(layer.bias)), layer.sources)
              for layer in net.layers]

    def forward(x):
        z = [x]
        for k, (ws, b, src) in enumerate(layers):
            h = b + sum(z[j] @ w.T for j, w in zip(src, ws))
            z.append(torch.relu(h) if k < len(layers) - 1 else h)
        return z[-1]
    return forward


def _l2_pgd(model, x, y, eps, steps: int = 100, restarts: int = 3, seed: int = 0):
    """L2 PGD with a per-image radius eps (B,), no input clipping (the certificate is for all of R^n);
    returns a bool (B,): misclassified at some iterate."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    broken = torch.zeros(len(y), dtype=torch.bool)
    for _ in range(restarts):
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        d = d / d.norm(dim=1, keepdim=True) * eps[:, None] * torch.rand(len(y), 1, generator=gen, dtype=x.dtype)
        for _ in range(steps):
            d.requires_grad_(True)
            logits = model(x + d)
            broken |= (logits.argmax(1) != y).detach()
            (g,) = torch.autograd.grad(F.cross_entropy(logits, y), d)
            d = d.detach() + 0.05 * eps[:, None] * g / g.norm(dim=1, keepdim=True).clamp(min=1e-12)
            d = d * torch.clamp(eps / d.norm(dim=1).clamp(min=1e-12), max=1.0)[:, None]
        broken |= model(x + d).argmax(1) != y
    return broken


def lipschitz_pgd_check(onnx: Path, x: np.ndarray, y: np.ndarray, work: Path) -> dict:
    """L2 PGD at the certified Lipschitz radius R (must never succeed) and at multiples of R (the
    smallest multiple PGD succeeds at bounds how loose the certificate is)."""
    import torch

    def make():
        data = json.loads((work / "curves" / f"{onnx.stem}.json").read_text())
        radii = np.array(data["lipschitz"])
        keep = np.flatnonzero(radii > 0)
        out: dict = {"certified": int(keep.size), "violations": 0, "looseness": []}
        if keep.size == 0:
            return out
        model = _torch_model(to_layered(load_network(onnx)))
        xt, yt = torch.tensor(x[keep]), torch.tensor(y[keep])
        r = torch.tensor(radii[keep])
        out["violations"] = int(_l2_pgd(model, xt, yt, r).sum())
        first = np.full(keep.size, np.inf)
        for mult in (1.5, 2, 3, 5, 8, 13, 20, 40):
            hit = _l2_pgd(model, xt, yt, r * mult, steps=50, restarts=1).numpy()
            first = np.where(np.isinf(first) & hit, mult, first)
        out["looseness"] = [None if np.isinf(v) else float(v) for v in first]
        return out
    return _cached(work / "checks" / f"lipschitz_{onnx.stem}.json", make)


def smoothing_coverage(onnx: Path, card, x: np.ndarray, work: Path, samples: int = 100000) -> dict:
    """For certified images: is p̲_A below p_A estimated from `samples` fresh draws (coverage of the
    Clopper–Pearson bound), and does PREDICT at points 0.99 R away (random direction) disagree?"""
    import torch

    def make():
        net = to_layered(load_network(onnx))
        data = json.loads((work / "curves" / f"{onnx.stem}.json").read_text())
        out: dict = {"checked": 0, "covered": 0, "p_gap": [], "moved": 0, "disagree": 0, "abstain": 0}
        rng = np.random.default_rng(1)
        for xi, res in zip(x, data["smoothing"]):
            if res["predicted"] is None:
                continue
            counts = sample_counts(net, xi, data["sigma"], samples, 2000, torch.Generator().manual_seed(99))
            p_hat = counts[res["predicted"]] / samples
            out["checked"] += 1
            out["covered"] += int(res["p_lower"] <= p_hat)
            out["p_gap"].append(float(p_hat - res["p_lower"]))
            u = rng.normal(size=xi.size)
            moved = xi + 0.99 * res["radius"] * u / np.linalg.norm(u)
            pred = predict_smoothed(net, moved, SmoothingOptions(sigma=data["sigma"], n=10000, alpha=0.001, seed=7))
            out["moved"] += 1
            out["abstain"] += int(pred.predicted is None)
            out["disagree"] += int(pred.predicted is not None and pred.predicted != res["predicted"])
        return out
    return _cached(work / "checks" / f"smoothing_{onnx.stem}.json", make)
