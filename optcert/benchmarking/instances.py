"""Instances for the solver matrix: one violation clause each, from VNN-LIB files, a VNN-COMP
instances.csv, or L∞ robustness of images. `RowChoice.WORST` keeps, per property, the clause
whose bound from a cheap method is lowest (the one most likely to be hard)."""
from __future__ import annotations

import csv
from enum import Enum
from pathlib import Path
from typing import Sequence

import numpy as np

from optcert.benchmarking.solver_matrix import Instance
from optcert.bounds import BoundMethod
from optcert.compiled import compile_case
from optcert.errors import UnreadableFileError
from optcert.solve.progressive import Tightening, intermediate_bounds
from optcert.spec.problem import VerificationProblem


class RowChoice(Enum):
    """Which clauses of a property become instances: every one, or the one with the lowest bound."""

    ALL = "all"
    WORST = "worst"


def clauses(problem: VerificationProblem, choice: RowChoice,
            bounds: BoundMethod | Tightening = BoundMethod.CROWN) -> list[tuple[int, tuple[int, ...]]]:
    """(case, rows) of every violation clause or (WORST) only the one whose bound — the largest of
    its rows' lower bounds from `bounds` — is lowest: the clause most likely to be hard."""
    from optcert.ir.layered import to_layered

    every = [(k, clause) for k, case in enumerate(problem.cases) for clause in case.clauses()]
    if choice is RowChoice.ALL:
        return every
    base, lowest = to_layered(problem.network), {}
    for k, case in enumerate(problem.cases):
        cc = compile_case(base, case, k)
        lower = intermediate_bounds(cc.net, cc.ibp, bounds).lower[-1]
        lowest.update({(k, c): float(np.max(lower[list(c)])) for c in case.clauses()})
    return [min(every, key=lambda kc: lowest[kc])]


def vnnlib_instances(network: Path, properties: Sequence[Path], choice: RowChoice = RowChoice.WORST,
                     bounds: BoundMethod | Tightening = BoundMethod.CROWN, input_shape=None) -> list[Instance]:
    """Instances of VNN-LIB `properties` on the network file `network`."""
    from optcert.ir.load import load_network
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.sweeps.store import network_hash, vnnlib_property_id

    net, out = load_network(network, input_shape), []
    for path in properties:
        problem = read_vnnlib(path).problem(net, name=f"{Path(network).stem}:{Path(path).stem}")
        for case, rows in clauses(problem, choice, bounds):
            name = f"{problem.name}[c{case}r{'+'.join(map(str, rows))}]"
            out.append(Instance(name, problem, case, rows, network_hash(network), vnnlib_property_id(path)))
    return out


def robustness_instances(network: Path, images: Path, indices: Sequence[int], eps: Sequence[float],
                         label: int | None = None, targets: Sequence[int] | None = None,
                         valid: tuple[float, float] = (0.0, 1.0), choice: RowChoice = RowChoice.WORST,
                         bounds: BoundMethod | Tightening = BoundMethod.CROWN, input_shape=None) -> list[Instance]:
    """Instances of L∞ robustness of images `indices` of `images` at every radius in `eps`."""
    from optcert.ir.load import load_network
    from optcert.spec.images import pick_image
    from optcert.spec.problem import robustness_problem
    from optcert.sweeps.store import linf_property_id, network_hash

    net, out = load_network(network, input_shape), []
    for index in indices:
        image, true = pick_image(images, index, label, net.n_inputs)
        others = [j for j in (range(net.n_outputs) if targets is None else targets) if j != true]
        for radius in eps:
            name = f"{Path(network).stem}:img{index}@{radius:g}"
            problem = robustness_problem(net, image, true, radius, valid, targets, name=name)
            for case, rows in clauses(problem, choice, bounds):
                target = others[rows[0]]
                out.append(Instance(f"{name}:t{target}", problem, case, rows, network_hash(network),
                                    linf_property_id(images, index, radius, target)))
    return out


def csv_instances(path: Path, limit: int | None = None, choice: RowChoice = RowChoice.WORST,
                  bounds: BoundMethod | Tightening = BoundMethod.CROWN) -> list[Instance]:
    """Instances of the first `limit` rows of a VNN-COMP instances.csv (onnx, vnnlib, timeout;
    paths relative to the CSV's folder)."""
    try:
        rows = [r for r in csv.reader(open(path)) if r][:limit]
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read ({err.strerror or err})") from None
    if any(len(r) < 2 for r in rows):
        raise UnreadableFileError(f"{path}: every row needs an onnx and a vnnlib column")
    out = []
    for onnx in dict.fromkeys(r[0] for r in rows):
        props = [path.parent / r[1] for r in rows if r[0] == onnx]
        out += vnnlib_instances(path.parent / onnx, props, choice, bounds)
    return out
