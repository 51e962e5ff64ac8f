"""The loss of one batch under each regime (see `config.Regime` for the papers).

`Trainer` holds what persists across steps (the generator, GloRo's power-iteration vectors,
MixTrain's natural/robust weight α) and `loss(x, y, epoch)` returns the scalar loss at the
(fractional) epoch, reading eps, κ and β from the schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

from optcert.training.attacks import Norm, Pgd, pgd, smooth_pgd
from optcert.training.bounds import (
    crown_margins,
    ibp_hidden,
    ibp_margins,
    margin_matrix,
    tightness_terms,
    weights,
)
from optcert.training.config import Regime, TrainConfig
from optcert.training.models import CLASSES, linear_layers


@dataclass(frozen=True)
class Step:
    """Schedule values at one step: eps (already scaled), ramp share, κ and β."""

    eps: float
    share: float
    kappa: float
    beta: float


@dataclass
class Epoch:
    """Per-epoch tallies: clean-correct images and images seen (MixTrain adapts α from them)."""

    correct: int = 0
    seen: int = 0


class Trainer:
    def __init__(self, config: TrainConfig, model, generator):
        self.config, self.model, self.gen = config, model, generator
        self.layers = linear_layers(model)
        self.alpha = 1.0             # MixTrain's natural-loss weight
        self.reference: float | None = None
        self.tally = Epoch()
        self.gloro = None
        if config.regime is Regime.GLORO:
            from optcert.training.gloro import SpectralEstimator

            self.gloro = SpectralEstimator(self.layers, generator)

    def loss(self, x, y, epoch: float):
        """The batch loss of the configured regime at the (fractional) `epoch`."""
        share, kappa, beta = self.config.schedule.at(epoch)
        logits = self.model(x)
        self.tally.correct += int((logits.argmax(1) == y).sum())
        self.tally.seen += int(y.shape[0])
        return _LOSSES[self.config.regime](self, x, y, logits, Step(self.config.eps * share, share, kappa, beta))

    def _natural(self, x, y, logits, step: Step):
        import torch.nn.functional as F

        return F.cross_entropy(logits, y)

    def _gaussian(self, x, y, logits, step: Step):
        import torch.nn.functional as F

        return F.cross_entropy(self.model(x + self._noise(x.shape)), y)

    def _pgd(self, x, y, logits, step: Step):
        import torch.nn.functional as F

        adversarial = pgd(self.model, x, y, Pgd(step.eps, Norm.LINF, self.config.pgd_steps), self.gen)
        return F.cross_entropy(self.model(adversarial), y)

    def _gloro(self, x, y, logits, step: Step):
        import torch.nn.functional as F

        from optcert.training.gloro import gloro_logits

        assert self.gloro is not None
        return F.cross_entropy(gloro_logits(logits, self.gloro.pair_bounds(), step.eps), y)

    def _certified(self, x, y, logits, step: Step):
        """κ·natural + (1 − κ)·robust (+ the tightness terms); MixTrain: α·natural + (1 − α)·robust."""
        natural = self._natural(x, y, logits, step)
        if step.eps == 0:
            return natural
        if self.config.regime is Regime.MIXTRAIN:
            return self.alpha * natural + (1 - self.alpha) * self._mixtrain(x, y, step.eps)
        robust, extra = self._robust(x, y, step.eps, step.beta, step.share)
        return step.kappa * natural + (1 - step.kappa) * robust + extra

    def _noise(self, shape):
        import torch

        return torch.randn(shape, generator=self.gen) * self.config.sigma

    def _bounds(self, x, y, eps: float, beta: float):
        """Robust cross-entropy of the margins' lower bounds, β·CROWN-IBP + (1 − β)·IBP."""
        import torch.nn.functional as F

        lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
        wb, C = weights(self.layers), margin_matrix(y, CLASSES)
        hidden = ibp_hidden(wb, lo, hi)
        lower = ibp_margins(wb, lo, hi, C, hidden)
        if beta > 0:
            lower = beta * crown_margins(wb, lo, hi, C, hidden).lower + (1 - beta) * lower
        return F.cross_entropy(-lower, y)

    def _robust(self, x, y, eps: float, beta: float, share: float):
        c = self.config
        beta = 0.0 if c.regime in (Regime.IBP, Regime.IBP_TIGHT) else beta
        robust = self._bounds(x, y, eps, beta)
        if not c.regime.tight:
            return robust, 0.0
        return robust, share * self._tightness(x, y, eps)

    def _tightness(self, x, y, eps: float):
        """Zhu et al.'s two terms (bounds.tightness_terms) on `tight_sample` random images of the batch,
        weighted by `config.tight`."""
        import torch

        c = self.config
        pick = torch.randperm(x.shape[0], generator=self.gen)[:min(c.tight_sample, x.shape[0])]
        x, y = x[pick], y[pick]
        lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
        wb, C = weights(self.layers), margin_matrix(y, CLASSES)
        hidden = ibp_hidden(wb, lo, hi)
        difference, preact = tightness_terms(self.model, wb, C, y, hidden, crown_margins(wb, lo, hi, C, hidden))
        return c.tight[0] * difference + c.tight[1] * preact

    def _mixtrain(self, x, y, eps: float):
        """Stochastic robust approximation: the CROWN-IBP robust loss on `mix_sample` random images
        of the batch (Wang et al. 2018, §3.1)."""
        import torch

        k = min(self.config.mix_sample, x.shape[0])
        pick = torch.randperm(x.shape[0], generator=self.gen)[:k]
        return self._bounds(x[pick], y[pick], eps, 1.0)

    def end_epoch(self, epoch: int) -> None:
        """Dynamic mixed training (Wang et al. 2018, §3.2), as implemented here: the clean training
        accuracy at the end of warm-up is the reference; after each later epoch α (the natural
        weight) falls by 0.1 while the epoch's clean accuracy stays within `mix_tolerance` of the
        reference, and rises by 0.1 otherwise, within [0.1, 1]."""
        accuracy = self.tally.correct / max(1, self.tally.seen)
        self.tally = Epoch()
        if self.config.regime is not Regime.MIXTRAIN:
            return
        if epoch + 1 <= self.config.schedule.warmup or self.reference is None:
            self.reference = accuracy
            return
        step = -0.1 if accuracy >= self.reference - self.config.mix_tolerance else 0.1
        self.alpha = min(1.0, max(0.1, self.alpha + step))

    def _smoothadv(self, x, y, logits, step: Step):
        """Cross-entropy on noisy copies of SmoothAdv points (Salman et al. 2019, Alg. 1, m draws)."""
        import torch.nn.functional as F

        c = self.config
        if step.eps > 0:
            x = smooth_pgd(self.model, x, y, Pgd(step.eps, Norm.L2, c.pgd_steps), c.sigma, c.noise_samples, self.gen)
        noisy = x[None] + self._noise((c.noise_samples, *x.shape))
        logits = self.model(noisy.reshape(-1, x.shape[1]))
        return F.cross_entropy(logits, y.repeat(c.noise_samples))


_LOSSES = {Regime.NORMAL: Trainer._natural, Regime.GAUSSIAN: Trainer._gaussian, Regime.SMOOTHADV: Trainer._smoothadv,
           Regime.PGD: Trainer._pgd, Regime.GLORO: Trainer._gloro,
           **{r: Trainer._certified for r in Regime if r.certified}}
