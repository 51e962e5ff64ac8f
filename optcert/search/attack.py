"""PGD falsifier (Madry et al. 2018, "Towards deep learning models resistant to adversarial
attacks"): searches the input box for inputs that violate the property.

For every violation clause of a case (a row for `Combine.ALL`, all rows for `Combine.ANY`) it
minimises max over the clause's rows of the margin by signed-gradient steps with random restarts
and a cosine step schedule, projected onto the box. It runs in torch on any device; its output is
only candidates and achieved margins — `certify.py` re-checks every candidate in float64.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from optcert.bounds.torch_net import torch_net
from optcert.compiled import CompiledCase
from optcert.precision import Precision


@dataclass(frozen=True)
class AttackOptions:
    """PGD settings. `step` is the first step as a fraction of each input's box width.

    `restarts` = 0 chooses it from a work budget: about `budget` multiply-adds per step over all
    clauses and restarts, clamped to [16, 1024] (small nets get many cheap restarts).
    """

    restarts: int = 0          # random restarts per clause; 0 = chosen from `budget`, clamped to [16, 1024]
    steps: int = 100           # PGD steps per restart
    budget: float = 6e7        # multiply-adds per step over all clauses and restarts (when restarts = 0)
    step: float = 0.25
    seed: int = 0
    device: str = "cpu"
    precision: Precision = Precision.FLOAT32
    every_clause: bool = False  # keep going after a violation (gap study wants every row's PGD bound)


@dataclass(frozen=True)
class ClauseAttack:
    """Best input found for one clause and the clause value (max of its rows' margins) there."""

    case: int
    clause: tuple[int, ...]
    x: np.ndarray
    value: float


def auto_restarts(net, clauses: int, budget: float) -> int:
    """Restarts per clause so one PGD step costs about `budget` multiply-adds."""
    macs = sum(w.size for layer in net.layers for w in layer.weights)
    return int(min(1024, max(16, budget / max(1, clauses * macs))))


def pgd_case(cc: CompiledCase, options: AttackOptions, deadline: float = math.inf) -> list[ClauseAttack]:
    """Attack every clause of case `cc`; returns the best input per clause."""
    import torch

    dt, dev = options.precision.torch(), torch.device(options.device)
    net = cc.net
    tn = torch_net(net, options.device, options.precision)
    clauses = cc.case.clauses()
    mask = torch.zeros((len(clauses), cc.case.spec.rows), dtype=torch.bool, device=dev)
    for c, rows in enumerate(clauses):
        mask[c, list(rows)] = True
    r = options.restarts if options.restarts > 0 else auto_restarts(net, len(clauses), options.budget)
    mask = mask.repeat_interleave(r, dim=0)
    lo = torch.tensor(cc.lo, dtype=dt, device=dev)
    hi = torch.tensor(cc.hi, dtype=dt, device=dev)
    gen = torch.Generator(device=dev).manual_seed(options.seed)
    x = lo + (hi - lo) * torch.rand((len(clauses) * r, lo.numel()), generator=gen, dtype=dt, device=dev)
    x[::r] = (lo + hi) / 2

    def objective(x):
        out = tn.forward(x)[-1]
        return out.masked_fill(~mask, -math.inf).max(dim=1).values

    best_x, best_v = x.clone(), torch.full((x.shape[0],), math.inf, dtype=dt, device=dev)
    stop_at = options.steps
    for t in range(options.steps + 1):
        x.requires_grad_(True)
        value = objective(x)
        (grad,) = torch.autograd.grad(value.sum(), x)
        with torch.no_grad():
            better = value < best_v
            best_v = torch.where(better, value, best_v)
            best_x[better] = x[better]
            if t >= stop_at or time.monotonic() > deadline:
                break
            if not options.every_clause and stop_at == options.steps and bool((best_v < 0).any()):
                stop_at = t + 10  # a violation: a few more steps push it clear of rounding noise
            size = options.step * 0.5 * (1 + math.cos(math.pi * t / options.steps)) + 1e-3
            x = torch.minimum(torch.maximum(x - size * (hi - lo) * grad.sign(), lo), hi).detach()
    return _best_per_clause(cc, clauses, best_x, best_v, r)


def _best_per_clause(cc: CompiledCase, clauses, best_x, best_v, r: int) -> list[ClauseAttack]:
    out = []
    vals = best_v.detach().reshape(len(clauses), r)
    xs = best_x.detach().reshape(len(clauses), r, -1)
    for c, rows in enumerate(clauses):
        i = int(vals[c].argmin())
        out.append(ClauseAttack(cc.index, rows, xs[c, i].double().cpu().numpy(), float(vals[c, i])))
    return out
