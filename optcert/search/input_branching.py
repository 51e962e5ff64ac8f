"""Which input dimension the batched input-split search (search/input_split.py) bisects.

Two candidates per domain: the largest smear Σ_rows w |Λ_0,d| width_d (Wang et al. 2018, ReluVal),
and the largest geometric mean of smear and width relative to the root box, both normalised by
their largest over the dimensions. `InputRule.LOOKAHEAD` bounds both splits and keeps the one whose
worse child has the larger certified bound (a one-step look-ahead in the spirit of strong
branching); SMEAR and BALANCED use one candidate only. Measured in bench/results/input_branching.md.
"""
from __future__ import annotations

from enum import Enum

import numpy as np

from optcert.search.branching import MIN_RELATIVE_WIDTH


class InputRule(Enum):
    """Which input dimension a domain is bisected along (module doc)."""

    SMEAR = "smear"          # largest smear (ReluVal)
    BALANCED = "balanced"    # largest geometric mean of normalised smear and relative width
    LOOKAHEAD = "lookahead"  # both bounded, the better split kept (default)


def candidate_dims(smear: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """(B, 2) input dimensions to split next: the largest smear, and the largest geometric mean of
    smear and relative width, each normalised by its row maximum (module doc); the widest relative
    dimension where the smear vanishes; −1 where no dimension may be bisected any more."""
    allowed = np.asarray(relative > MIN_RELATIVE_WIDTH)
    top = smear.max(axis=1, keepdims=True)
    rel = relative / np.maximum(relative.max(axis=1, keepdims=True), 1e-300)
    first = np.where(top > 0, smear + 1e-9 * relative, relative)
    second = np.where(top > 0, np.sqrt(smear / np.where(top > 0, top, 1.0) * rel) + 1e-9 * rel, rel)
    dims = np.stack([np.argmax(np.where(allowed, first, -np.inf), axis=1),
                     np.argmax(np.where(allowed, second, -np.inf), axis=1)], axis=1)
    some: np.ndarray = np.asarray(allowed.any(axis=1))
    return np.where(some[:, None], dims, -1)


def choose(values: np.ndarray, k: int, alt: np.ndarray) -> np.ndarray:
    """Per domain, the split (index into the (domain, candidate) list) whose worse child has
    the larger certified bound; the first candidate on ties."""
    n = k + len(alt)
    worse = np.minimum(values[:n], values[n:])
    chosen = np.arange(k)
    better = worse[k:] > worse[alt]
    chosen[alt[better]] = k + np.flatnonzero(better)
    return chosen
