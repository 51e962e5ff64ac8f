"""Performance profiles (Dolan & Moré 2002, "Benchmarking optimization software with performance
profiles", Math. Program. 91:201–213) and their plot.

For problems p ∈ P and solvers s ∈ S with times t_{p,s} (∞ when s failed on p), the performance
ratio is r_{p,s} = t_{p,s} / min_s t_{p,s} (∞ when s failed, and for every solver when all failed),
and solver s's profile is the fraction of problems it solves within a factor τ of the best:

    ρ_s(τ) = |{p ∈ P : r_{p,s} ≤ τ}| / |P|,   τ ≥ 1.

ρ_s(1) is the share of problems on which s was fastest; lim ρ_s(τ) the share it solved at all.
Exact arithmetic on the given times (no tolerance); ties count as fastest for every tied solver.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np


def performance_ratios(times: np.ndarray) -> np.ndarray:
    """r = t / (row minimum) for a problems × solvers array of positive times (∞ = failed).
    Rows where every solver failed are all ∞. ValueError for NaN, zero or negative times."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"times must be problems × solvers, got shape {t.shape}")
    bad = np.argwhere(np.isnan(t) | (t <= 0))
    if bad.size:
        p, s = bad[0]
        raise ValueError(f"time of problem {p} / solver {s} is {t[p, s]}; times must be positive (∞ = failed)")
    best = t.min(axis=1, initial=math.inf, keepdims=True)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(t) & np.isfinite(best), t / best, math.inf)


@dataclass(frozen=True, eq=False)
class PerformanceProfile:
    """Ratios r_{p,s} (problems × solvers, ∞ = unsolved) with the solvers' and problems' names."""

    solvers: tuple[str, ...]
    problems: tuple[str, ...]
    ratios: np.ndarray

    def rho(self, tau: float) -> np.ndarray:
        """ρ_s(τ) for every solver (in `solvers` order; failures never count, even at τ = ∞);
        zeros when there is no problem."""
        if not self.problems:
            return np.zeros(len(self.solvers))
        return ((self.ratios <= tau) & np.isfinite(self.ratios)).sum(axis=0) / len(self.problems)

    def steps(self, solver: str) -> tuple[np.ndarray, np.ndarray]:
        """Breakpoints (τ_k, ρ_s(τ_k)) of solver's step function: ρ jumps to ρ_k at τ_k."""
        r = self.ratios[:, self.solvers.index(solver)]
        taus = np.unique(r[np.isfinite(r)])
        return taus, np.array([self.rho(t)[self.solvers.index(solver)] for t in taus])

    @property
    def max_ratio(self) -> float:
        """The largest finite ratio (1 when none): where the plot's τ axis can stop."""
        finite = self.ratios[np.isfinite(self.ratios)]
        return float(finite.max()) if finite.size else 1.0


def performance_profile(times: Mapping[str, Mapping[str, float | None]],
                        solvers: Sequence[str] | None = None) -> PerformanceProfile:
    """Profile from times[problem][solver] in seconds; None, ∞ or a missing entry = failed.
    `solvers` fixes the order (default: first appearance)."""
    problems = tuple(times)
    if solvers is None:
        solvers = tuple(dict.fromkeys(s for row in times.values() for s in row))
    t = np.array([[_time(times[p].get(s)) for s in solvers] for p in problems], dtype=np.float64)
    return PerformanceProfile(tuple(solvers), problems, performance_ratios(t.reshape(len(problems), len(solvers))))


def grouped_profiles(runs: Iterable, group: Callable[[Any], str]) -> dict[str, PerformanceProfile]:
    """One profile per `group(run)` over runs with `.instance`, `.backend`, `.ran`, `.solved` and
    `.seconds` (e.g. solver-matrix cells by lowering): problems = instances, solvers = the backends
    that ran at least once; an unsolved run counts as a failure (ratio ∞)."""
    out: dict[str, dict] = {}
    for run in runs:
        times = out.setdefault(group(run), {})
        entry = times.setdefault(run.instance, {})
        if run.ran:
            entry[run.backend] = max(run.seconds, 1e-9) if run.solved else None
    result = {}
    for name, times in out.items():
        ran = tuple(dict.fromkeys(b for row in times.values() for b in row))
        if ran:
            result[name] = performance_profile(times, ran)
    return result


def _time(value: float | None) -> float:
    return math.inf if value is None else float(value)


def plot_profiles(profiles: Mapping[str, PerformanceProfile], path: str | Path, title: str = "") -> Path:
    """One panel per profile (e.g. per lowering): ρ_s(τ) against τ on a log₂ axis, as PNG or PDF
    (by suffix), one legend for the figure below the panels. Returns the path."""
    from matplotlib.figure import Figure

    n = max(1, len(profiles))
    fig = Figure(figsize=(4.4 * n, 3.9), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    solvers = sorted({s for p in profiles.values() for s in p.solvers})
    for ax, (name, profile) in zip(axes, profiles.items()):
        _panel(ax, name, profile, solvers)
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(6, len(handles)),
                   fontsize=8)
    fig.suptitle((f"{title} — " if title else "") + "Dolan–Moré performance profiles (a failed solve never counts)",
                 fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


_MARKERS = "osD^vP*Xh"
_LINES = ("-", "--", "-.", ":")


def _panel(ax, name: str, profile: PerformanceProfile, solvers: list[str]) -> None:
    """Step curves of every solver on one axis; each solver keeps its colour, marker and line style
    in every panel, and is nudged up by a hair so that coinciding curves stay visible."""
    right = max(2.0, 1.25 * profile.max_ratio)
    for solver in profile.solvers:
        k = solvers.index(solver)
        taus, values = profile.steps(solver)
        xs = np.r_[1.0, taus, right]
        ys = np.r_[0.0, values, values[-1] if values.size else 0.0] + 0.008 * k
        ax.step(xs, ys, where="post", label=solver, color=f"C{k % 10}", ls=_LINES[k % len(_LINES)],
                marker=_MARKERS[k % len(_MARKERS)], markevery=[len(xs) - 2] if len(xs) > 2 else None, ms=5)
    ax.set_xscale("log", base=2)
    ax.set_xlim(1.0, right)
    ax.set_ylim(-0.02, 1.06)
    ax.set_xlabel("τ: time / fastest solver's time (log₂)", fontsize=8)
    ax.set_ylabel("ρ(τ): share of problems solved within τ", fontsize=8)
    solved = int(np.isfinite(profile.ratios).any(axis=1).sum()) if profile.problems else 0
    ax.set_title(f"{name}: {len(profile.problems)} problems, {solved} solved by some solver", fontsize=9)
    if not solved:
        ax.text(0.5, 0.5, "no solver solved any problem\n(curves at ρ = 0, drawn apart)", transform=ax.transAxes,
                ha="center", va="center", fontsize=8, color="dimgray")
    ax.grid(True, alpha=0.3)
