"""Accuracy figures for model cards: clean accuracy and PGD accuracy on a data partition (torch,
batched; PGD accuracy is an *upper* bound on robust accuracy, not a certificate)."""
from __future__ import annotations

import numpy as np

from optcert.training.attacks import Pgd, pgd


def clean_accuracy(model, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    """Share of images whose argmax is the label."""
    import torch

    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            logits = model(torch.as_tensor(x[i:i + batch]))
            correct += int((logits.argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(y)


def pgd_accuracy(model, x: np.ndarray, y: np.ndarray, settings: Pgd, seed: int = 0, batch: int = 500) -> float:
    """Share of images still classified correctly after PGD with `settings` (best of restarts)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    correct = 0
    for i in range(0, len(y), batch):
        xb, yb = torch.as_tensor(x[i:i + batch]), torch.as_tensor(y[i:i + batch])
        adv = pgd(model, xb, yb, settings, gen)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == yb).sum())
    return correct / len(y)
