"""Randomized smoothing (Cohen, Rosenfeld & Kolter 2019, "Certified adversarial robustness via
randomized smoothing"): CERTIFY and PREDICT for g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ²I),
sampled in batches in torch (float64, the network's own semantics).

* CERTIFY: the top class c_A of `n0` selection samples; `n` fresh samples give n_A hits; p_A is
  bounded below by the one-sided Clopper–Pearson bound at level α, p̲_A = B⁻¹(α; n_A, n − n_A + 1);
  if p̲_A ≥ ½ the answer is c_A with L2 radius R = σ Φ⁻¹(p̲_A), else ABSTAIN.
* PREDICT: the two most frequent classes of `n` samples; c_A unless a two-sided binomial test of
  n_A against n_A + n_B at ½ has p-value > α (then ABSTAIN).

The guarantee is of a different kind from a proof: with probability ≥ 1 − α over the sampling,
g(x') = c_A for every ‖x' − x‖₂ < R, for the *smoothed* classifier g, not for the network f. So it
never yields PROVED: results carry their own `SmoothedVerdict`, and as an engine (`smoothing`) its
network verdict is always UNKNOWN with the smoothed result in the certificate (one sweep path for
the gap study and `optcert verify`, while the network Verdict keeps its single meaning).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Sequence

import numpy as np

from optcert.certify import EngineOutput
from optcert.compiled import CompiledCase
from optcert.errors import InvalidOptionError
from optcert.ir.layered import LayeredNet
from optcert.spec.problem import Combine, VerificationProblem


class SmoothedVerdict(Enum):
    CERTIFIED_SMOOTHED = "certified_smoothed"
    ABSTAIN = "abstain"


@dataclass(frozen=True)
class SmoothingOptions:
    """Noise `sigma`, `n0` selection and `n` estimation samples, failure probability `alpha`,
    samples per forward `batch`, generator `seed`."""

    sigma: float = 0.25      # standard deviation of the Gaussian noise (L2 radius scale)
    n0: int = 100            # selection samples (pick the top class)
    n: int = 10000           # estimation samples (Clopper–Pearson lower bound on p_A)
    alpha: float = 0.001     # failure probability of the certificate
    batch: int = 1000        # noisy samples per forward pass
    seed: int = 0

    def __post_init__(self):
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise InvalidOptionError(f"sigma must be positive, got {self.sigma}")
        if self.n0 < 1 or self.n < 1 or self.batch < 1:
            raise InvalidOptionError(f"n0, n and batch must be ≥ 1 (got {self.n0}, {self.n}, {self.batch})")
        if not 0 < self.alpha < 0.5:
            raise InvalidOptionError(f"alpha must be in (0, 0.5), got {self.alpha}")


@dataclass(frozen=True)
class SmoothedCertificate:
    """CERTIFY's answer at one input: `predicted` class (None on ABSTAIN), certified L2 `radius`
    (0 on ABSTAIN), `p_lower` = p̲_A, the hit counts per class of both sample sets."""

    verdict: SmoothedVerdict
    predicted: int | None
    radius: float
    p_lower: float
    selection: tuple[int, ...]
    estimation: tuple[int, ...]
    sigma: float
    alpha: float
    seconds: float

    def as_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict.value}


@dataclass(frozen=True)
class SmoothedPrediction:
    """PREDICT's answer: `predicted` class or None (ABSTAIN), the counts and the test's p-value."""

    predicted: int | None
    counts: tuple[int, ...]
    p_value: float


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower confidence bound on p from k successes in n trials
    (= the lower end of the two-sided 1 − 2α interval, as in Cohen et al.'s code)."""
    from scipy.stats import beta

    if not 0 <= k <= n:
        raise InvalidOptionError(f"counts must satisfy 0 ≤ k ≤ n, got k={k}, n={n}")
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def smoothed_radius(p_lower: float, sigma: float) -> float:
    """σ Φ⁻¹(p̲_A) (0 when p̲_A ≤ ½)."""
    from scipy.stats import norm

    return float(sigma * norm.ppf(p_lower)) if p_lower > 0.5 else 0.0


def sample_counts(net: LayeredNet, x: np.ndarray, sigma: float, num: int, batch: int, generator) -> np.ndarray:
    """Class counts of argmax f(x + ε) over `num` draws ε ~ N(0, σ²I) (torch float64)."""
    import torch

    layers = [([torch.tensor(np.array(w)) for w in layer.weights], torch.tensor(np.array(layer.bias)), layer.sources)
              for layer in net.layers]
    x0 = torch.as_tensor(np.asarray(x, dtype=np.float64).ravel())
    counts = np.zeros(net.output.size, dtype=np.int64)
    remaining = num
    while remaining > 0:
        b = min(batch, remaining)
        noise = torch.randn((b, x0.numel()), generator=generator, dtype=torch.float64) * sigma
        z = [x0 + noise]
        for k, (ws, bias, src) in enumerate(layers):
            h = bias + sum(z[j] @ w.T for j, w in zip(src, ws))
            z.append(torch.relu(h) if k < len(layers) - 1 else h)
        counts += np.bincount(z[-1].argmax(1).numpy(), minlength=counts.size)
        remaining -= b
    return counts


def certify_smoothed(net: LayeredNet, x: np.ndarray, options: SmoothingOptions) -> SmoothedCertificate:
    """Cohen et al.'s CERTIFY at `x` (module doc)."""
    import torch

    start = time.monotonic()
    gen = torch.Generator().manual_seed(options.seed)
    selection = sample_counts(net, x, options.sigma, options.n0, options.batch, gen)
    top = int(selection.argmax())
    estimation = sample_counts(net, x, options.sigma, options.n, options.batch, gen)
    p_lower = clopper_pearson_lower(int(estimation[top]), options.n, options.alpha)
    certified = p_lower > 0.5
    return SmoothedCertificate(SmoothedVerdict.CERTIFIED_SMOOTHED if certified else SmoothedVerdict.ABSTAIN,
                               top if certified else None, smoothed_radius(p_lower, options.sigma) if certified
                               else 0.0, p_lower, tuple(map(int, selection)), tuple(map(int, estimation)),
                               options.sigma, options.alpha, time.monotonic() - start)


def predict_smoothed(net: LayeredNet, x: np.ndarray, options: SmoothingOptions) -> SmoothedPrediction:
    """Cohen et al.'s PREDICT at `x` with `options.n` samples (module doc)."""
    import torch
    from scipy.stats import binomtest

    gen = torch.Generator().manual_seed(options.seed)
    counts = sample_counts(net, x, options.sigma, options.n, options.batch, gen)
    order = np.argsort(-counts, kind="stable")
    n_a, n_b = int(counts[order[0]]), int(counts[order[1]])
    p = float(binomtest(n_a, n_a + n_b, 0.5).pvalue) if n_a + n_b > 0 else 1.0
    return SmoothedPrediction(int(order[0]) if p <= options.alpha else None, tuple(map(int, counts)), p)


def certified_accuracy_curve(results: Sequence[SmoothedCertificate | None], labels: Sequence[int],
                             radii: Sequence[float]) -> list[float]:
    """Certified accuracy at each radius: the share of inputs whose smoothed prediction is the
    label with certified radius ≥ r (None results, e.g. failed runs, count as not certified)."""
    n = len(labels)
    return [sum(1 for res, y in zip(results, labels) if res is not None and res.predicted == y
                and res.radius >= r) / n if n else 0.0 for r in radii]


def robustness_label(case) -> int | None:
    """The class y of an ALL case whose rows are f_y − f_j (robustness), else None."""
    C = case.spec.C
    if case.combine is not Combine.ALL or np.any(case.spec.d != 0):
        return None
    plus = np.flatnonzero(np.all(C == 1, axis=0))
    if plus.size != 1 or np.any(np.abs(C).sum(axis=1) != 2) or np.any(C.sum(axis=1) != 0):
        return None
    return int(plus[0])


def run_smoothing(problem: VerificationProblem, compiled: list[CompiledCase], options: SmoothingOptions,
                  deadline: float) -> EngineOutput:
    """CERTIFY at each case's box centre; the certificate records, per case, the smoothed result
    and whether its L2 ball covers the box (with the right class). No network bound: UNKNOWN."""
    from optcert.engines.lipschitz import box_l2_radius

    cases, covered = [], 0
    lower = [np.full(cc.case.spec.rows, -np.inf) for cc in compiled]
    if any(robustness_label(cc.case) is None for cc in compiled):
        return EngineOutput(lower=lower, reason="randomized smoothing answers robustness properties only "
                                                "(ALL cases with rows f_y − f_j); this property is not one")
    for cc in compiled:
        label = robustness_label(cc.case)
        assert label is not None
        centre, rho = box_l2_radius(cc.lo, cc.hi)
        result = certify_smoothed(cc.base, centre, options)
        covers = result.predicted == label and result.radius > rho
        covered += covers
        cases.append({**result.as_dict(), "label": label, "box_l2_radius": rho, "covers_box": covers})
    verdict = (SmoothedVerdict.CERTIFIED_SMOOTHED if covered == len(compiled) else SmoothedVerdict.ABSTAIN)
    reason = (f"randomized smoothing: {verdict.value} ({covered}/{len(compiled)} case boxes inside a certified L2 "
              f"ball of the smoothed classifier, each with probability ≥ 1 − {options.alpha:g}); "
              "this proves nothing about the network itself")
    return EngineOutput(lower=lower, reason=reason,
                        certificate={"method": "randomized smoothing CERTIFY (Cohen et al. 2019)",
                                     "smoothed_verdict": verdict.value, "cases": cases})
