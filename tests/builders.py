"""Paths to the shared benchmarks and builders of random test networks."""
from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from optcert.ir import Network
from optcert.ir import ops as O

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(os.environ.get("OPTCERT_BENCHMARKS", ROOT.parent / "shared" / "benchmarks"))
DATA = Path(__file__).parent / "data"


def instances(family: str) -> list[dict]:
    """Rows of a family's verdicts.csv (empty when the benchmarks are absent)."""
    path = BENCHMARKS / family / "verdicts.csv"
    return list(csv.DictReader(open(path))) if path.is_file() else []


def random_mlp(rng: np.random.Generator, sizes: list[int], scale: float = 1.0) -> Network:
    """A dense ReLU network with layer widths `sizes` (input first, output last)."""
    layers = []
    for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(O.Affine(rng.normal(size=(m, n)) * scale / np.sqrt(n), rng.normal(size=m) * 0.3))
        if k < len(sizes) - 2:
            layers.append(O.ReLU())
    return Network.sequential((sizes[0],), layers)


def random_conv_net(rng: np.random.Generator, channels: int = 2, side: int = 5, out: int = 3) -> Network:
    """Conv → ReLU → Flatten → Affine → ReLU → Affine on a (1, side, side) input."""
    conv = O.Conv2d(rng.normal(size=(channels, 1, 3, 3)) / 3, rng.normal(size=channels) * 0.3,
                    stride=(1, 1), padding=(1, 1, 1, 1))
    n = channels * side * side
    return Network.sequential((1, side, side), [
        conv, O.ReLU(), O.Flatten(), O.Affine(rng.normal(size=(8, n)) / np.sqrt(n), rng.normal(size=8) * 0.3),
        O.ReLU(), O.Affine(rng.normal(size=(out, 8)) / np.sqrt(8), rng.normal(size=out) * 0.3)])


def random_residual_net(rng: np.random.Generator, n: int = 4, width: int = 6, out: int = 2) -> Network:
    """x → A1 → ReLU → (A2 → ReLU) + skip → A3, with a normalisation in front."""
    nodes = [
        ("x", O.Input((n,)), []),
        ("norm", O.ElementwiseAffine(rng.uniform(0.5, 2, size=n), rng.normal(size=n) * 0.1), ["x"]),
        ("a1", O.Affine(rng.normal(size=(width, n)) / np.sqrt(n), rng.normal(size=width) * 0.3), ["norm"]),
        ("r1", O.ReLU(), ["a1"]),
        ("a2", O.Affine(rng.normal(size=(width, width)) / np.sqrt(width), rng.normal(size=width) * 0.3), ["r1"]),
        ("r2", O.ReLU(), ["a2"]),
        ("add", O.Add(), ["r2", "r1"]),
        ("a3", O.Affine(rng.normal(size=(out, width)) / np.sqrt(width), rng.normal(size=out) * 0.3), ["add"]),
    ]
    return Network.from_nodes(nodes)


def backend_or_skip(name: str):
    """The solver adapter `name`, or a pytest skip naming why it is unavailable here."""
    import importlib

    import pytest

    adapter = importlib.import_module(f"solvers.{name}").BACKEND
    status = adapter.available()
    if not status.available:
        pytest.skip(f"{name} unavailable: {status.reason}")
    return adapter


def instance_params(rows: list[dict]) -> list:
    """pytest params for shared-benchmark rows (ids = instance names), or one skipped param."""
    import pytest

    return ([pytest.param(r, id=r["instance"]) for r in rows]
            or [pytest.param(None, marks=pytest.mark.skip(reason="benchmarks absent"))])


def shared_problem(row: dict):
    """The VerificationProblem of a shared VNN-COMP row (networks cached by path)."""
    from optcert.spec.vnnlib import read_vnnlib

    folder = BENCHMARKS / ("acasxu" if row["instance"].startswith("ACAS") else "mnistfc")
    return read_vnnlib(folder / row["vnnlib"]).problem(_onnx(str(folder / row["onnx"])), name=row["instance"])


@lru_cache(maxsize=8)
def _onnx(path: str):
    from optcert.ir.from_onnx import load_onnx

    return load_onnx(path)
