"""One entry point for every bound method: `compute_bounds(net, given, method, settings)`.

Methods, loosest and cheapest first: IBP (torch, batched) ⊆ CROWN / Fast-Lin ⊆ alpha-CROWN.
Every result is intersected with `given` (IBP at least), so each method is never looser than the
one before it on any layer, and all are certified (see crown.py). With `neurons=all` (the
default: lowerings and SDP boxes want the tightest intervals on stable neurons too) every
intermediate neuron is bounded by CROWN; with `neurons=unstable` a neuron that interval
arithmetic already proves stable keeps that interval (its bounds do not enter any later CROWN
bound, so the output bounds are the same) and the work shrinks to the unstable ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Sequence

from optcert.bounds.alpha_crown import AlphaSettings, optimise
from optcert.bounds.crown import LowerSlope, Neurons, crown
from optcert.bounds.interval_batch import interval_batch
from optcert.bounds.layer_bounds import Bounds
from optcert.bounds.torch_net import DomainBatch, torch_net
from optcert.errors import InvalidOptionError
from optcert.ir.layered import LayeredNet
from optcert.precision import Precision, check_device


class BoundMethod(Enum):
    IBP = "ibp"
    FASTLIN = "fastlin"
    CROWN = "crown"
    ALPHA_CROWN = "alpha-crown"


@dataclass(frozen=True)
class BoundSettings:
    """Where and how the torch kernels run. `iterations`/`lr` are alpha-CROWN's Adam settings;
    `neurons`: which intermediate neurons CROWN bounds after interval arithmetic (module doc)."""

    device: str = "cpu"
    precision: Precision = Precision.FLOAT64
    iterations: int = 20
    lr: float = 0.1
    neurons: Neurons = Neurons.ALL

    def __post_init__(self):
        check_device(self.device)
        if self.iterations < 0:
            raise InvalidOptionError(f"option 'iterations' must be ≥ 0, got {self.iterations}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidOptionError(f"option 'lr' must be a positive number, got {self.lr}")


def compute_bounds(net: LayeredNet, given: Sequence[Bounds], method: BoundMethod,
                   settings: BoundSettings | None = None, deadline: float = math.inf,
                   stop: Callable[[], bool] | None = None) -> list[Bounds]:
    """Certified bounds on every layer of `net` for each domain in `given` (input box and any
    known or split layer bounds). alpha-CROWN optimises the output layer only. `stop()`, asked
    between layers, True raises `crown.Interrupted`."""
    settings = settings or BoundSettings()
    tn = torch_net(net, settings.device, settings.precision)
    batch = DomainBatch.from_bounds(given, settings.device)
    if method is BoundMethod.IBP:
        return interval_batch(tn, batch).to_bounds()
    slope = LowerSlope.PARALLEL if method is BoundMethod.FASTLIN else LowerSlope.ADAPTIVE
    domains = crown(tn, batch, slope, neurons=settings.neurons, stop=stop)
    if method is BoundMethod.ALPHA_CROWN:
        domains = alpha_output(tn, domains, AlphaSettings(settings.iterations, settings.lr), deadline)
    return domains.to_bounds()


def alpha_output(tn, domains: DomainBatch, settings: AlphaSettings, deadline: float = math.inf) -> DomainBatch:
    """`domains` with the output layer's bounds (both sides) re-optimised by alpha-CROWN."""
    import torch

    L = tn.depth
    n = tn.biases[-1].shape[0]
    eye = torch.eye(n, dtype=tn.precision.torch(), device=tn.device)
    best = optimise(tn, DomainBatch(domains.lower[:L], domains.upper[:L]), L, torch.cat([eye, -eye]),
                    settings, deadline)
    lo = torch.maximum(best[:, :n], domains.lower[L])
    hi = torch.minimum(-best[:, n:], domains.upper[L])
    return DomainBatch(domains.lower[:L] + (lo,), domains.upper[:L] + (hi,))
