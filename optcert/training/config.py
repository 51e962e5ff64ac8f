"""Training regimes and their settings (typed, frozen), with literature defaults per regime.

Regimes: `normal` (cross-entropy); `pgd` (Madry et al. 2018); `ibp` (Gowal et al. 2018);
`crown-ibp` (Zhang et al. 2020); `ibp-tight` / `crown-ibp-tight` (the same plus the tightness
regularisers of Zhu et al. 2020); `mixtrain` (Wang et al. 2018); `gloro` (Leino et al. 2021);
`gaussian` (noise augmentation for randomized smoothing, Cohen et al. 2019); `smoothadv`
(Salman et al. 2019). `eps` is an L∞ radius for pgd/ibp/crown-ibp(-tight)/mixtrain, an L2 radius for
gloro/smoothadv/gaussian (for gaussian only the model card's PGD evaluation uses it).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from optcert.errors import InvalidOptionError
from optcert.training.attacks import Norm
from optcert.training.data import EVALUATE, TRAIN, Partition
from optcert.training.models import Architecture


class Regime(Enum):
    NORMAL = "normal"
    PGD = "pgd"
    IBP = "ibp"
    CROWN_IBP = "crown-ibp"
    IBP_TIGHT = "ibp-tight"
    CROWN_IBP_TIGHT = "crown-ibp-tight"
    MIXTRAIN = "mixtrain"
    GLORO = "gloro"
    GAUSSIAN = "gaussian"
    SMOOTHADV = "smoothadv"

    @property
    def norm(self) -> Norm:
        return Norm.L2 if self in (Regime.GLORO, Regime.SMOOTHADV, Regime.GAUSSIAN) else Norm.LINF

    @property
    def certified(self) -> bool:
        """Does the regime train against a bound (IBP / CROWN-IBP / its mix)?"""
        return self in (Regime.IBP, Regime.CROWN_IBP, Regime.IBP_TIGHT, Regime.CROWN_IBP_TIGHT, Regime.MIXTRAIN)

    @property
    def tight(self) -> bool:
        return self in (Regime.IBP_TIGHT, Regime.CROWN_IBP_TIGHT)


@dataclass(frozen=True)
class Schedule:
    """`warmup` epochs of natural training, then eps (and the tightness coefficients) grow linearly
    from 0 to full over `ramp` epochs (per step); the natural-loss weight κ and the CROWN-IBP share
    β move linearly from their first to their second value over the same ramp (Gowal et al. 2018:
    κ 1 → 0.5; Zhang et al. 2020: β 1 → 0). The learning rate drops ×0.1 for the last `decay`
    share of the epochs."""

    warmup: int = 0
    ramp: int = 0
    kappa: tuple[float, float] = (1.0, 0.5)
    beta: tuple[float, float] = (1.0, 0.0)
    decay: float = 0.2

    def __post_init__(self):
        if self.warmup < 0 or self.ramp < 0 or not 0 <= self.decay < 1:
            raise InvalidOptionError(f"bad schedule {self}")

    def progress(self, epoch: float) -> float:
        """Ramp progress in [0, 1] at (fractional) `epoch`."""
        if epoch < self.warmup:
            return 0.0
        return 1.0 if self.ramp == 0 else min(1.0, (epoch - self.warmup) / self.ramp)

    def at(self, epoch: float) -> tuple[float, float, float]:
        """(eps share, κ, β) at `epoch`; during warm-up κ = 1 (natural loss only)."""
        t = self.progress(epoch)
        if epoch < self.warmup:
            return 0.0, 1.0, self.beta[0]
        return t, _lerp(self.kappa, t), _lerp(self.beta, t)


def _lerp(pair: tuple[float, float], t: float) -> float:
    return pair[0] + (pair[1] - pair[0]) * t


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (with the data, it fixes the weights bit for bit on one
    thread)."""

    regime: Regime
    arch: Architecture = field(default_factory=lambda: Architecture((100, 100)))
    eps: float = 0.1
    epochs: int = 20
    batch: int = 100
    lr: float = 1e-3
    seed: int = 0
    train: Partition = TRAIN
    evaluate: Partition = EVALUATE
    schedule: Schedule = field(default_factory=Schedule)
    sigma: float = 0.25               # Gaussian noise std (gaussian, smoothadv)
    pgd_steps: int = 10               # PGD training steps; SmoothAdv attack steps
    tight: tuple[float, float] = (0.5, 0.5)   # weights of the output-bound difference, pre-activation term
    tight_sample: int = 20            # images per batch the tightness terms are computed on
    mix_sample: int = 10              # MixTrain: images per batch that get the robust loss
    mix_tolerance: float = 0.02       # MixTrain: clean-accuracy loss (training) tolerated before α rises
    noise_samples: int = 2            # SmoothAdv: noise draws per image

    def __post_init__(self):
        if not self.eps >= 0 or self.epochs < 1 or self.batch < 1 or not self.lr > 0 or not self.sigma > 0:
            raise InvalidOptionError(f"bad training settings: eps={self.eps}, epochs={self.epochs}, "
                                     f"batch={self.batch}, lr={self.lr}, sigma={self.sigma}")
        if self.train.overlaps(self.evaluate):
            raise InvalidOptionError(f"training partition {self.train} overlaps evaluation partition {self.evaluate}")
        if min(self.mix_sample, self.tight_sample, self.noise_samples, self.pgd_steps) < 1:
            raise InvalidOptionError("mix_sample, tight_sample, noise_samples and pgd_steps must be ≥ 1")

    @property
    def name(self) -> str:
        """File stem: regime, architecture, eps, seed."""
        return f"{self.regime.value}_{self.arch.name}_eps{self.eps:g}_s{self.seed}"


MLP_100X2 = Architecture((100, 100))


def default_config(regime: Regime, arch: Architecture = MLP_100X2, eps: float | None = None,
                   epochs: int | None = None, seed: int = 0, **overrides) -> TrainConfig:
    """Literature-style defaults, scaled to minutes on a 2-core CPU: bound-based regimes get a
    natural warm-up then an eps ramp over about half the run (Gowal et al. 2018; Zhang et al. 2020),
    PGD a short ramp, GloRo an eps ramp; `eps` defaults to 0.1 (L∞) or 1.58 (L2, GloRo's MNIST
    radius), 0.5 for the SmoothAdv attack."""
    l2 = {Regime.GLORO: 1.58, Regime.SMOOTHADV: 0.5, Regime.GAUSSIAN: 0.5}
    eps = l2.get(regime, 0.1) if eps is None else eps
    epochs = (20 if regime in (Regime.NORMAL, Regime.GAUSSIAN) else 40) if epochs is None else epochs
    warmup = 0 if regime in (Regime.NORMAL, Regime.GAUSSIAN) else max(1, epochs // 10)
    ramp = 0 if regime in (Regime.NORMAL, Regime.GAUSSIAN) else max(1, epochs // 2)
    kappa = (1.0, 0.0) if regime in (Regime.CROWN_IBP, Regime.CROWN_IBP_TIGHT) else (1.0, 0.5)
    schedule = Schedule(warmup, ramp, kappa, (1.0, 0.0))
    if regime is Regime.PGD:
        schedule = Schedule(warmup, max(1, epochs // 5))
    base = TrainConfig(regime, arch, float(eps), int(epochs), seed=seed, schedule=schedule)
    return replace(base, **overrides)
