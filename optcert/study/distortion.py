"""Minimum distortion (Salman et al., NeurIPS 2019, Table 2): for each image and method, the
largest L∞ radius eps the method certifies, found by bisection on eps.

A method *holds* at eps when it proves robustness there (relaxations, exact methods), or, for
PGD, when it finds no counterexample. Bisection assumes holding is monotone in eps (true for
exact methods and for IBP; the other relaxations are monotone in practice, not by theorem). It
returns `certified` (the largest eps seen holding; for a relaxation a certified lower bound on
the true minimum distortion) and `broken` (the smallest eps seen failing; for PGD a falsified
radius, an upper bound on the minimum distortion). For exact methods the truth is in between.
A step that times out counts as not holding for provers (nothing was certified) and as holding
for PGD (nothing was falsified), so both ends stay on the safe side.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

from optcert.errors import InvalidOptionError
from optcert.study.gap import METHODS, ORDER, Kind, LinfProperty, Method, method_options, network_key, task_labels

#: Sign-only settings: bisection needs only the verdict at each eps.
SIGN_ONLY: dict[Method, dict[str, object]] = {Method.MILP: {"exact": False}, Method.PGD: {"every_clause": False}}


@dataclass(frozen=True)
class Bisection:
    """Search eps in [0, eps_max] with `steps` halvings, `timeout` seconds per verify call."""

    eps_max: float = 0.3
    steps: int = 8
    timeout: float = 30.0

    def __post_init__(self):
        if not (math.isfinite(self.eps_max) and self.eps_max > 0):
            raise InvalidOptionError(f"--eps-max must be a positive number, got {self.eps_max}")
        if not 1 <= self.steps <= 40:
            raise InvalidOptionError(f"--steps must be in 1..40, got {self.steps}")
        if not self.timeout > 0:
            raise InvalidOptionError(f"timeout must be positive, got {self.timeout}")


def bisect(holds: Callable[[float], bool], eps_max: float, steps: int):
    """(certified, broken, history): the largest eps seen holding (None if not even 0), the
    smallest seen failing (None if eps_max holds), and every (eps, held) probed."""
    history: list[tuple[float, bool]] = []

    def probe(eps: float) -> bool:
        history.append((eps, holds(eps)))
        return history[-1][1]

    if not probe(0.0):
        return None, 0.0, history
    if probe(eps_max):
        return eps_max, None, history
    lo, hi = 0.0, eps_max
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if probe(mid) else (lo, mid)
    return lo, hi, history


def distortion_tasks(properties: Sequence[LinfProperty], methods: Sequence[Method], settings: Bisection,
                     overrides: Mapping[Method, Mapping[str, object]] | None = None):
    """One sweep Task per image × method (each runs a whole bisection); the properties' eps is ignored."""
    from optcert.sweeps.run import Task
    from optcert.sweeps.store import RunKey, canonical_options

    tasks = []
    for method in methods:
        options = method_options(method, {**SIGN_ONLY.get(method, {}), **dict((overrides or {}).get(method, {}))})
        keyed = canonical_options({**options, "steps": settings.steps, "timeout": settings.timeout})
        for prop in {replace(p, eps=settings.eps_max): None for p in properties}:
            key = RunKey(network_key(prop.network), prop.key(), f"distortion:{method.value}", keyed)
            budget = settings.timeout * (settings.steps + 2) * 1.2 + 10
            labels = {**task_labels("distortion", prop, method), "eps_max": settings.eps_max}
            labels.pop("eps")
            tasks.append(Task(key, "optcert.study.distortion:run_distortion", (prop, method.value, options, settings),
                              budget, labels=labels))
    return tasks


def run_distortion(prop: LinfProperty, method: str, options: Mapping[str, object], settings: Bisection):
    """Worker function: bisect eps for one image and method (module doc)."""
    from optcert.sweeps.run import TaskOutput
    from optcert.verify import verify

    spec = METHODS[Method(method)]
    seconds = []

    def holds(eps: float) -> bool:
        result = verify(replace(prop, eps=eps).problem(), spec.engine, settings.timeout, options)
        seconds.append(result.seconds)
        if spec.kind is Kind.ATTACK:
            return result.verdict.value != "falsified"
        return result.verdict.value == "proved"

    certified, broken, history = bisect(holds, settings.eps_max, settings.steps)
    extra = {"history": history, "verify_seconds": seconds}
    if spec.kind is Kind.ATTACK:
        verdict = "falsified" if broken is not None else "unknown"
    else:
        verdict = "proved" if certified else "unknown"
    return TaskOutput(verdict, certified, broken, f"largest eps holding {certified}, smallest failing {broken}",
                      extra)


@dataclass(frozen=True)
class Distortion:
    network: str
    index: int
    method: Method
    certified: float | None   # largest eps holding
    broken: float | None      # smallest eps failing
    eps_max: float
    seconds: float


def load_distortions(store, networks: Sequence[str] | None = None) -> list[Distortion]:
    """The minimum-distortion records of a ResultStore (completed runs only)."""
    from optcert.sweeps.store import RunStatus

    out = []
    for record in store.records():
        extra = record.extra_dict()
        if extra.get("study") != "distortion" or record.status is not RunStatus.DONE:
            continue
        if networks and extra.get("network") not in networks:
            continue
        out.append(Distortion(extra["network"], int(extra["index"]), Method(extra["method"]), record.bound,
                              record.upper, float(extra["eps_max"]), record.seconds))
    return out


def distortion_table(distortions: Sequence[Distortion]) -> str:
    """Per network × method: images, mean and median of the certified eps (PGD: of the falsified
    eps, an upper bound), mean seconds per image."""
    from optcert.outputs import markdown_table

    groups: dict[tuple[str, Method], list[Distortion]] = {}
    for d in distortions:
        groups.setdefault((d.network, d.method), []).append(d)
    rows = []
    for (network, method), group in sorted(groups.items(), key=lambda kv: (kv[0][0], ORDER.index(kv[0][1]))):
        attack = METHODS[method].kind is Kind.ATTACK
        values = [(d.broken if d.broken is not None else d.eps_max) if attack else (d.certified or 0.0)
                  for d in group]
        rows.append([network, method.value, "upper (falsified)" if attack else "lower (certified)", len(group),
                     statistics.fmean(values), statistics.median(values),
                     statistics.fmean(d.seconds for d in group)])
    return markdown_table(["network", "method", "bound on min. distortion", "images", "mean eps", "median eps",
                     "mean s"], rows)
