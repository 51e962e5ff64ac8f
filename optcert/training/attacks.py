"""PGD attacks used in training and in the model cards (torch, batched, not certificates).

* `pgd`: untargeted PGD on the cross-entropy (Madry et al. 2018, "Towards deep learning models
  resistant to adversarial attacks") in an L∞ or L2 ball of radius eps intersected with [0, 1],
  from a random start; L∞ steps use the sign of the gradient, L2 steps the normalised gradient.
* `smooth_pgd`: SmoothAdv (Salman et al. 2019, "Provably robust deep learning via adversarially
  trained smoothed classifiers"): L2 PGD against the smoothed soft classifier, the log of the
  softmax averaged over `samples` Gaussian draws, with the draws fixed during the attack.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Norm(Enum):
    LINF = "linf"
    L2 = "l2"


@dataclass(frozen=True)
class Pgd:
    """PGD settings: radius `eps` in `norm`, `steps` of size `step` × eps, `restarts` random starts."""

    eps: float
    norm: Norm = Norm.LINF
    steps: int = 10
    step: float = 0.25
    restarts: int = 1


def _project(delta, x, eps: float, norm: Norm):
    import torch

    if norm is Norm.LINF:
        delta = delta.clamp(-eps, eps)
    else:
        n = delta.flatten(1).norm(dim=1).clamp(min=1e-12)
        delta = delta * torch.clamp(eps / n, max=1.0)[:, None]
    return (x + delta).clamp(0, 1) - x


def _random_start(x, eps: float, norm: Norm, generator=None):
    import torch

    if norm is Norm.LINF:
        delta = (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1) * eps
    else:
        delta = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        delta = delta / delta.norm(dim=1, keepdim=True).clamp(min=1e-12)
        delta = delta * eps * torch.rand(x.shape[0], 1, generator=generator, dtype=x.dtype)
    return _project(delta, x, eps, norm)


def _step(grad, norm: Norm, size: float):
    if norm is Norm.LINF:
        return size * grad.sign()
    return size * grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None]


def pgd(model, x, y, settings: Pgd, generator=None):
    """Adversarial inputs (B, n) for `model` (best of the restarts per image: misclassified first,
    then highest loss). The model's parameters get no gradient."""
    import torch
    import torch.nn.functional as F

    if settings.eps <= 0:
        return x.detach()
    best, best_loss = x.detach().clone(), torch.full((x.shape[0],), -float("inf"))
    for _ in range(settings.restarts):
        delta = _random_start(x, settings.eps, settings.norm, generator).detach()
        for _ in range(settings.steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), y)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = _project(delta.detach() + _step(grad, settings.norm, settings.step * settings.eps),
                             x, settings.eps, settings.norm).detach()
        with torch.no_grad():
            logits = model(x + delta)
            score = F.cross_entropy(logits, y, reduction="none") + 1e6 * (logits.argmax(1) != y)
            better = score > best_loss
            best[better], best_loss[better] = (x + delta)[better], score[better]
    return best.detach()


def smooth_pgd(model, x, y, settings: Pgd, sigma: float, samples: int, generator=None):
    """SmoothAdv inputs: L2 PGD on −log(mean softmax over `samples` noise draws) (module doc)."""
    import torch

    noise = torch.randn((samples, *x.shape), generator=generator, dtype=x.dtype) * sigma
    delta = torch.zeros_like(x)
    for _ in range(settings.steps):
        delta.requires_grad_(True)
        probs = torch.softmax(model((x + delta)[None] + noise), dim=-1).mean(0)
        loss = -torch.log(probs.gather(1, y[:, None]).clamp(min=1e-12)).mean()
        (grad,) = torch.autograd.grad(loss, delta)
        delta = _project(delta.detach() + _step(grad, Norm.L2, settings.step * settings.eps),
                         x, settings.eps, Norm.L2).detach()
    return (x + delta).detach()
