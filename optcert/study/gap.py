"""The relaxation-gap study: methods, properties, and the task every sweep worker runs.

A *method* is an engine with fixed options (`METHODS`), of one `Kind`: an ATTACK gives an upper
bound on the property margin (PGD), a RELAXATION a certified lower bound, an EXACT method the
margin itself (MILP with `exact=true`) or at least the exact verdict (BnB, which stops once the
sign is known). A *property* is L∞ robustness of one image (all other classes or one target) or
a VNN-LIB file. `gap_tasks` turns properties × methods into sweep `Task`s whose function,
`run_method`, runs `verify` and returns what the engine certified, per spec row, as a
`TaskOutput` (tables and plots are made later from the store: see `gap_report.py`).

Tightness indicator (the relaxation's optimal input pushed through the real network): the
engines add the inputs their relaxations are optimal at to the candidates that `certify`
evaluates in float64, so `Result.upper` (per row: `cases[k].upper`) is the true network margin
at those inputs. What each engine contributes:
  * LP, LP-ALL: the optimal input of each row's LP; a row's value is the minimum of that row's
    margin over every row's LP optimum (≤ the margin at its own optimum, still ≥ the true minimum).
  * SDP: the first-order block z₀ of the SDP primal matrix, per row solved (rows its intermediate
    bounds already prove are not solved: their bound is that of the bounds, and no point).
  * BM: the input rows of the Burer–Monteiro factors, *and* the PGD warm starts (pass
    `bm.attack=false` for the relaxation's points alone).
  * IBP, CROWN, alpha-CROWN: no optimal input is exposed, so no indicator (None).
  * MILP: the incumbent (equals the exact value when the solve completed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

from optcert.engines.registry import Engine, engine_options
from optcert.errors import InvalidOptionError


class Kind(Enum):
    ATTACK = "attack"          # upper bound on the margin (a falsifier)
    RELAXATION = "relaxation"  # certified lower bound
    EXACT = "exact"            # exact margin (MILP) or exact verdict (BnB)
    SMOOTHED = "smoothed"      # randomized smoothing: a probabilistic certificate of the smoothed classifier only


class Method(Enum):
    PGD = "pgd"
    IBP = "ibp"
    CROWN = "crown"
    ALPHA_CROWN = "alpha-crown"
    LP = "lp"
    LP_ALL = "lp-all"
    SDP = "sdp"
    BM = "bm"
    MILP = "milp"
    BNB = "bnb"
    LIPSCHITZ = "lipschitz"
    SMOOTHING = "smoothing"


@dataclass(frozen=True)
class MethodSpec:
    engine: Engine
    kind: Kind
    options: Mapping[str, object] = field(default_factory=dict)
    indicator: bool = False    # does the engine expose the relaxation's optimal input?


METHODS: dict[Method, MethodSpec] = {
    Method.PGD: MethodSpec(Engine.ATTACK, Kind.ATTACK, {"every_clause": True}),
    Method.IBP: MethodSpec(Engine.INTERVAL, Kind.RELAXATION),
    Method.CROWN: MethodSpec(Engine.CROWN, Kind.RELAXATION),
    Method.ALPHA_CROWN: MethodSpec(Engine.ALPHA_CROWN, Kind.RELAXATION),
    Method.LP: MethodSpec(Engine.LP, Kind.RELAXATION, {}, True),
    Method.LP_ALL: MethodSpec(Engine.LP, Kind.RELAXATION, {"bounds": "lp-all"}, True),
    Method.SDP: MethodSpec(Engine.SDP, Kind.RELAXATION, {}, True),
    Method.BM: MethodSpec(Engine.BM, Kind.RELAXATION, {"proof_stop": False}, True),   # bounds: the relaxation's
    Method.MILP: MethodSpec(Engine.MILP, Kind.EXACT, {"exact": True}),
    Method.BNB: MethodSpec(Engine.BNB, Kind.EXACT),
    Method.LIPSCHITZ: MethodSpec(Engine.LIPSCHITZ, Kind.RELAXATION),
    Method.SMOOTHING: MethodSpec(Engine.SMOOTHING, Kind.SMOOTHED),
}

#: Ladder order (loosest relaxation first); the default study runs the cheap ones.
ORDER: tuple[Method, ...] = tuple(Method)
CHEAP: tuple[Method, ...] = (Method.PGD, Method.IBP, Method.CROWN, Method.ALPHA_CROWN, Method.LP, Method.LP_ALL)


def parse_methods(text: str) -> tuple[Method, ...]:
    """"pgd,lp,..." (or "cheap" / "all") → Methods in ladder order; InvalidOptionError names a bad one."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    chosen: set[Method] = set()
    for name in names:
        if name in ("cheap", "all"):
            chosen |= set(CHEAP if name == "cheap" else ORDER)
            continue
        try:
            chosen.add(Method(name))
        except ValueError:
            raise InvalidOptionError(f"unknown method {name!r}; choose from "
                                     f"{', '.join(m.value for m in Method)}, cheap, all") from None
    if not chosen:
        raise InvalidOptionError("no method given")
    return tuple(m for m in ORDER if m in chosen)


def method_options(method: Method, overrides: Mapping[str, object] | None = None) -> dict:
    """The method's engine options with `overrides` on top, validated by the engine (typed errors)."""
    merged = {**METHODS[method].options, **dict(overrides or {})}
    engine_options(METHODS[method].engine, merged)
    return merged


def split_overrides(pairs: Mapping[str, str]) -> dict[Method, dict[str, str]]:
    """{"lp.backend": "highs", ...} → {Method.LP: {"backend": "highs"}}; a bad prefix is an error."""
    out: dict[Method, dict[str, str]] = {}
    for key, value in pairs.items():
        prefix, _, name = key.partition(".")
        if not name:
            raise InvalidOptionError(f"option {key!r} must be METHOD.KEY=VALUE, e.g. lp.backend=highs")
        method = parse_methods(prefix.replace("_", "-"))[0]
        out.setdefault(method, {})[name.replace("-", "_")] = value
    return out


# ---- properties ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LinfProperty:
    """L∞ robustness of image `index` of `images` within `eps` for `network`, against every other
    class (`target` None) or one `target` class, inside the pixel range `valid`."""

    network: str
    images: str
    index: int
    eps: float
    target: int | None = None
    valid: tuple[float, float] = (0.0, 1.0)

    def key(self) -> str:
        from optcert.sweeps.store import linf_property_id

        return linf_property_id(self.images, self.index, self.eps, "all" if self.target is None else self.target)

    def problem(self):
        from optcert.spec.problem import robustness_problem

        net = cached_network(self.network)
        image, label = _image(self.images, self.index, net.n_inputs)
        targets = None if self.target is None else [self.target]
        name = f"{Path(self.network).stem}:{Path(self.images).stem}[{self.index}]@{self.eps:g}"
        return robustness_problem(net, image, label, self.eps, self.valid, targets, name=name)

    def labels(self) -> dict:
        net = cached_network(self.network)
        image, label = _image(self.images, self.index, net.n_inputs)
        clean = net.forward(image[None, :])[0]
        others = [j for j in range(clean.size) if j != label]
        return {"property": "linf", "images": Path(self.images).name, "index": self.index, "eps": self.eps,
                "target": "all" if self.target is None else self.target, "label": label,
                "clean_margin": float(min(clean[label] - clean[j] for j in others))}


@dataclass(frozen=True)
class VnnlibProperty:
    """The property of a VNN-LIB file on `network`."""

    network: str
    path: str

    def key(self) -> str:
        from optcert.sweeps.store import vnnlib_property_id

        return vnnlib_property_id(self.path)

    def problem(self):
        from optcert.spec.vnnlib import read_vnnlib

        return read_vnnlib(self.path).problem(cached_network(self.network),
                                              name=f"{Path(self.network).stem}:{Path(self.path).stem}")

    def labels(self) -> dict:
        return {"property": "vnnlib", "vnnlib": Path(self.path).name}


Property = LinfProperty | VnnlibProperty


def linf_properties(networks: Sequence[str], images: str, indices: Sequence[int], eps_values: Sequence[float],
                    targets: Sequence[int | None] = (None,)) -> list[LinfProperty]:
    """Every network × image index × eps × target, with bad indices/eps rejected up front."""
    from optcert.spec.images import load_images

    count = load_images(images)[0].shape[0]
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise InvalidOptionError(f"{images}: image index {bad[0]} out of range (0..{count - 1})")
    if any(not (math.isfinite(e) and e >= 0) for e in eps_values):
        raise InvalidOptionError(f"eps values must be finite and ≥ 0, got {list(eps_values)}")
    props = [LinfProperty(str(n), str(images), int(i), float(e), t)
             for n in networks for e in eps_values for i in indices for t in targets]
    return [p for p in props if p.target is None or p.target != p.labels()["label"]]  # a class is not its own target


@lru_cache(maxsize=64)
def network_key(path: str) -> str:
    from optcert.sweeps.store import network_hash

    return network_hash(path)


@lru_cache(maxsize=8)
def cached_network(path: str):
    from optcert.ir.load import load_network

    return load_network(path)


@lru_cache(maxsize=256)
def _image(path: str, index: int, n_inputs: int):
    from optcert.spec.images import pick_image

    return pick_image(path, index, None, n_inputs)


# ---- tasks ---------------------------------------------------------------------------------
def gap_tasks(properties: Sequence[Property], methods: Sequence[Method], timeout: float,
              overrides: Mapping[Method, Mapping[str, object]] | None = None):
    """One sweep Task per property × method (options validated now, not in the worker); the
    task labels (network, method, property) reach the store even if the run fails."""
    from optcert.sweeps.run import Task
    from optcert.sweeps.store import RunKey, canonical_options

    if not timeout > 0:
        raise InvalidOptionError(f"timeout must be positive, got {timeout}")
    tasks = []
    for method in methods:
        options = method_options(method, (overrides or {}).get(method))
        keyed = canonical_options({**options, "timeout": timeout})
        for prop in properties:
            key = RunKey(network_key(prop.network), prop.key(), method.value, keyed)
            tasks.append(Task(key, "optcert.study.gap:run_method", (prop, method.value, options, timeout), timeout,
                              labels=task_labels("gap", prop, method)))
    return tasks


def task_labels(study: str, prop: Property, method: Method) -> dict:
    """What the report groups by: study, network file, method and its kind, property labels."""
    return {"study": study, "network": Path(prop.network).name, "method": method.value,
            "kind": METHODS[method].kind.value, **prop.labels()}


def run_method(prop: Property, method: str, options: Mapping[str, object], timeout: float):
    """Worker function: `verify` the property with the method; the engine's certified figures,
    per row (see the module doc for the tightness indicator)."""
    from optcert.sweeps.run import TaskOutput
    from optcert.verify import verify

    spec = METHODS[Method(method)]
    problem = prop.problem()
    result = verify(problem, spec.engine, timeout, options)
    extra = {**_rows(problem, result), "timed_out": result.timed_out, "timings": dict(result.timings),
             "tightness": _finite(result.upper) if spec.indicator else None,
             "tightening": result.certificate.get("tightening")}   # per-stage seconds and unstable neurons
    if spec.kind is Kind.SMOOTHED:   # the smoothed classifier's own verdict per case (never a network verdict)
        extra["smoothed"] = result.certificate.get("cases")
    return TaskOutput(result.verdict.value, _finite(result.bound), _finite(result.upper), result.reason, extra)


def _rows(problem, result) -> dict:
    """Per-row certified lower bounds and achieved upper values (None where unknown)."""
    multi = len(result.cases) > 1
    labels, lower, upper = [], [], []
    for k, (case, spec_case) in enumerate(zip(result.cases, problem.cases)):
        labels += [f"c{k}:{name}" if multi else name for name in spec_case.spec.labels]
        lower += [_finite(v) for v in case.lower]
        upper += [_finite(v) for v in case.upper]
    return {"rows": labels, "lower": lower, "upper": upper}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None

