"""The strong falsifier: rounds of APGD from diverse starts with two losses, until a counterexample
re-checks or the time is up.

* **Starts**: uniform random points with the box centre; random box corners with the corner the
  margin's gradient points to at the centre; ODS starts (output-diversified sampling, Tashiro et al.
  2020, "Diversity can be transferred: output diversification for white- and black-box attacks"):
  a few signed-gradient steps maximising a random direction w·f(x) of the output, so restarts
  spread over the output space instead of the input space.
* **Losses**: `margin` — per violation clause (one output row of an ALL case: a targeted attack per
  row; all rows of an ANY case), the clause value max over its rows of the margin; `softmin` — the
  whole case at once, a smooth minimum over the clause values (log-sum-exp with temperature 1, the
  cross-entropy analogue for margins), untargeted (MultiTargeted / CE in adversarial-attack terms).
* **Steps**: APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
  ensemble of diverse parameter-free attacks"): momentum 0.75 and a step size per restart that is
  halved at checkpoints where the objective stopped improving, restarting from its best point.

It only proposes inputs: `found(x)` (the engine's float64 re-check, certify.check_counterexample)
decides whether one is a counterexample. Runs in torch (float32 by default: cheap, and the re-check
is exact anyway).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from optcert.bounds.torch_net import torch_net
from optcert.compiled import CompiledCase
from optcert.precision import Precision
from optcert.search.attack import auto_restarts
from optcert.spec.problem import Combine


class Start(Enum):
    RANDOM = "random"
    CORNER = "corner"
    ODS = "ods"


class Loss(Enum):
    MARGIN = "margin"
    SOFTMIN = "softmin"


#: the order of the rounds; it cycles (with fresh seeds) until the deadline
ROUNDS = ((Loss.MARGIN, Start.RANDOM), (Loss.MARGIN, Start.CORNER), (Loss.SOFTMIN, Start.ODS),
          (Loss.MARGIN, Start.ODS), (Loss.SOFTMIN, Start.CORNER), (Loss.SOFTMIN, Start.RANDOM))


@dataclass(frozen=True)
class FalsifySettings:
    """`budget`: multiply-adds per step over all restarts of a round; `steps` per round."""

    budget: float = 4e7
    steps: int = 60
    seed: int = 0
    device: str = "cpu"
    precision: Precision = Precision.FLOAT32
    rounds: int = 0        # 0: until the deadline
    offset: int = 0        # index of the first round (a resumed falsifier goes on where it stopped)


@dataclass(frozen=True)
class FalsifyReport:
    found: bool
    best: float             # lowest case margin seen (folded net, compute precision)
    rounds: int
    seconds: float


class _Case:
    """Tensors of one case: the folded net, box, clause masks and how to combine rows."""

    def __init__(self, cc: CompiledCase, settings: FalsifySettings):
        import torch

        self.tn = torch_net(cc.net, settings.device, settings.precision)
        self.dt, dev = settings.precision.torch(), settings.device
        self.lo = torch.tensor(cc.lo, dtype=self.dt, device=dev)
        self.hi = torch.tensor(cc.hi, dtype=self.dt, device=dev)
        self.clauses = cc.case.clauses()
        self.any_case = cc.case.combine is Combine.ANY
        self.masks = torch.zeros((len(self.clauses), cc.case.spec.rows), dtype=torch.bool, device=dev)
        for c, rows in enumerate(self.clauses):
            self.masks[c, list(rows)] = True
        self.restarts = max(4, auto_restarts(cc.net, len(self.clauses), settings.budget) // 2)

    def outputs(self, x):
        return self.tn.forward(x)[-1]

    def case_value(self, out):
        """The case margin per input: violated iff < 0."""
        return out.max(dim=1).values if self.any_case else out.min(dim=1).values


def _objective(case: _Case, loss: Loss, mask):
    import torch

    def value(x):
        out = case.outputs(x)
        if loss is Loss.MARGIN:
            return out.masked_fill(~mask, -math.inf).max(dim=1).values, out
        if case.any_case:
            return torch.logsumexp(out, dim=1), out
        return -torch.logsumexp(-out, dim=1), out
    return value


def _starts(case: _Case, start: Start, n: int, gen, mask):
    """n starting points of the given kind (see module doc)."""
    import torch

    lo, hi = case.lo, case.hi
    u = torch.rand((n, lo.numel()), generator=gen, dtype=case.dt, device=lo.device)
    if start is Start.RANDOM:
        x = lo + (hi - lo) * u
        x[0] = (lo + hi) / 2
        return x
    if start is Start.CORNER:
        x = torch.where(u < 0.5, lo, hi)
        centre = ((lo + hi) / 2).expand(n, -1).clone().requires_grad_(True)
        out = case.outputs(centre).masked_fill(~mask, -math.inf).max(dim=1).values
        (g,) = torch.autograd.grad(out.sum(), centre)
        x[: max(1, n // 4)] = torch.where(g < 0, hi, lo)[: max(1, n // 4)]
        return x
    x = lo + (hi - lo) * u
    w = torch.rand((n, case.masks.shape[1]), generator=gen, dtype=case.dt, device=lo.device) * 2 - 1
    for _ in range(4):   # ODS: climb a random output direction
        x.requires_grad_(True)
        (g,) = torch.autograd.grad((case.outputs(x) * w).sum(), x)
        with torch.no_grad():
            x = torch.minimum(torch.maximum(x + 0.25 * (hi - lo) * g.sign(), lo), hi)
    return x.detach()


def _checkpoints(steps: int) -> set[int]:
    """APGD's checkpoints p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)."""
    p, out = [0.0, 0.22], set()
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    for q in p[1:]:
        if q < 1:
            out.add(int(math.ceil(q * steps)))
    return out


def apgd(case: _Case, value, x, steps: int, deadline: float):
    """APGD (module doc) from x (R, n): per restart, the input with the lowest case margin seen and
    that margin (the objective steers; the case margin is what a counterexample needs)."""
    import torch

    lo, hi = case.lo, case.hi
    eta = torch.full((x.shape[0], 1), 0.25, dtype=case.dt, device=lo.device) * (hi - lo)
    best_x, best_v = x.clone(), torch.full((x.shape[0],), math.inf, dtype=case.dt, device=lo.device)
    best_case, case_x = best_v.clone(), x.clone()
    prev, improved, last_best, checks = x.clone(), torch.zeros_like(best_v), best_v.clone(), _checkpoints(steps)
    since, stop_at = 0, steps
    for t in range(steps + 1):
        x.requires_grad_(True)
        v, out = value(x)
        (g,) = torch.autograd.grad(v.sum(), x)
        with torch.no_grad():
            better = v < best_v
            improved += better.to(case.dt)
            best_v, best_x[better] = torch.where(better, v, best_v), x[better]
            cv = case.case_value(out)
            lower = cv < best_case
            best_case, case_x[lower] = torch.where(lower, cv, best_case), x[lower]
            if t >= stop_at or time.monotonic() > deadline:
                break
            if stop_at == steps and bool((best_case < 0).any()):
                stop_at = min(steps, t + 5)   # a violation: a few more steps push it clear of rounding
            since += 1
            if t in checks:
                stalled = (improved < 0.75 * since) | (best_v >= last_best)
                eta = torch.where(stalled[:, None], eta / 2, eta)
                x = torch.where(stalled[:, None], best_x, x)
                improved.zero_()
                last_best, since = best_v.clone(), 0
            z = torch.minimum(torch.maximum(x - eta * g.sign(), lo), hi)
            a = 0.75 if t > 0 else 1.0
            nxt = torch.minimum(torch.maximum(x + a * (z - x) + (1 - a) * (x - prev), lo), hi)
            prev, x = x, nxt.detach()
    return case_x, best_case


def falsify(cc: CompiledCase, settings: FalsifySettings, deadline: float,
            found: Callable[[np.ndarray], bool]) -> FalsifyReport:
    """Rounds of APGD (module doc) until `found` accepts an input or the deadline passes."""
    import torch

    t0 = time.monotonic()
    case = _Case(cc, settings)
    best, rounds = math.inf, 0
    for r in itertools.count(settings.offset):
        loss, start = ROUNDS[r % len(ROUNDS)]
        if time.monotonic() > deadline or (settings.rounds and rounds >= settings.rounds):
            break
        gen = torch.Generator(device=settings.device).manual_seed(settings.seed * 7919 + r)
        per = case.restarts if loss is Loss.MARGIN else case.restarts * len(case.clauses)
        if loss is Loss.MARGIN:
            mask = case.masks.repeat_interleave(per, dim=0)
        else:
            mask = case.masks.any(dim=0, keepdim=True).expand(per, -1)
        x = _starts(case, start, mask.shape[0], gen, mask)
        xs, values = apgd(case, _objective(case, loss, mask), x, settings.steps, deadline)
        rounds += 1
        order = torch.argsort(values)
        best = min(best, float(values[order[0]]))
        for i in order[: 8].tolist():
            if float(values[i]) < 0 or i == int(order[0]):
                if found(np.clip(xs[i].double().cpu().numpy(), cc.lo, cc.hi)):   # float32 box → exact box
                    return FalsifyReport(True, best, rounds, time.monotonic() - t0)
    return FalsifyReport(False, best, rounds, time.monotonic() - t0)
