"""Figures of the relaxation-gap study (matplotlib `Figure` objects on the Agg canvas, no pyplot
state), made from the same data as the tables: per-instance bound ladders, gap distributions per
relaxation, and certified accuracy against eps (from the gap runs' discrete eps and, where
present, the minimum-distortion bisections as step curves).
"""
from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Sequence

from optcert.errors import InvalidOptionError
from optcert.study.distortion import Distortion
from optcert.study.gap import METHODS, ORDER, Kind, Method
from optcert.study.report import Instance, error_bounds, gaps, methods_of, reference


class PlotFormat(Enum):
    PNG = "png"
    PDF = "pdf"


def parse_formats(text: str) -> tuple[PlotFormat, ...]:
    """"png,pdf" → formats; InvalidOptionError names an unknown one."""
    try:
        return tuple(PlotFormat(t.strip().lower()) for t in text.split(",") if t.strip())
    except ValueError:
        raise InvalidOptionError(f"--plots: {text!r} is not a list of png, pdf") from None


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, stem: Path, formats: Sequence[PlotFormat]) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{f.value}") for f in formats]
    for path in paths:
        fig.savefig(path, dpi=120)
    return paths


def ladder_plot(instances: Sequence[Instance], stem: Path, formats: Sequence[PlotFormat],
                limit: int = 12) -> list[Path]:
    """One panel per instance (the first `limit`): each method's margin bound (PGD: its achieved
    value) from the loosest relaxation to the exact value, with the reference and zero marked."""
    shown = list(instances)[:limit]
    if not shown:
        return []
    cols = min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = _figure(3.4 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, inst in zip(axes, shown):
        methods = sorted(inst.runs, key=lambda m: (_RUNG[METHODS[m].kind], ORDER.index(m)))
        xs = range(len(methods))
        ax.plot(xs, [_nan(_value(inst, m)) for m in methods], "o-", color="tab:blue", label="bound")
        ax.plot(xs, [_nan(inst.runs[m].tightness) for m in methods], "o", mfc="none", color="tab:green",
                label="network at relaxation optimum")
        ax.axhline(0.0, color="grey", lw=0.8)
        ref = reference(inst)
        if ref is not None:
            ax.axhline(ref.value, color="tab:red", ls="--", lw=0.8, label=f"reference ({ref.source})")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.legend(fontsize=6, loc="lower right")
        ax.set_xticks(xs, [m.value for m in methods], rotation=60, fontsize=7)
        ax.set_title(inst.label, fontsize=7)
        ax.set_ylabel("margin", fontsize=7)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    return _save(fig, stem, formats)


_RUNG = {Kind.RELAXATION: 0, Kind.EXACT: 1, Kind.ATTACK: 2, Kind.SMOOTHED: 3}   # lower bounds up to upper bounds


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _value(inst: Instance, method: Method) -> float | None:
    run = inst.runs[method]
    return run.upper if METHODS[method].kind is Kind.ATTACK else run.bound


def gap_distribution_plot(instances: Sequence[Instance], stem: Path, formats: Sequence[PlotFormat]) -> list[Path]:
    """Box plots per relaxation of the absolute and relative gap to the reference (symlog axes)."""
    found = gaps(instances)
    methods = [m for m in methods_of(instances) if METHODS[m].kind is Kind.RELAXATION]
    if not found or not methods:
        return []
    fig = _figure(max(6.0, 1.3 * len(methods) * 2), 3.6)
    for ax, attr, title in zip(fig.subplots(1, 2), ("absolute", "relative"), ("gap to reference", "relative gap")):
        data = [[v for g in found if g.method is m and (v := getattr(g, attr)) is not None and math.isfinite(v)]
                for m in methods]
        ax.boxplot([d or [math.nan] for d in data], tick_labels=[m.value for m in methods])
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    return _save(fig, stem, formats)


def accuracy_plot(instances: Sequence[Instance], distortions: Sequence[Distortion], stem: Path,
                  formats: Sequence[PlotFormat]) -> list[Path]:
    """Per network: certified accuracy (share proved) against eps for each prover, and PGD's
    upper bound on robust accuracy (dashed): markers from gap runs, steps from bisections."""
    bounds = error_bounds(instances)
    networks = sorted({b.network for b in bounds} | {d.network for d in distortions})
    if not networks:
        return []
    fig = _figure(4.2 * len(networks), 3.4)
    for ax, network in zip(fig.subplots(1, len(networks), squeeze=False).ravel(), networks):
        _gap_points(ax, [b for b in bounds if b.network == network])
        _distortion_steps(ax, [d for d in distortions if d.network == network])
        ax.set_title(network, fontsize=9)
        ax.set_xlabel("eps")
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6)
    return _save(fig, stem, formats)


def _gap_points(ax, bounds) -> None:
    bounds = sorted(bounds, key=lambda b: b.eps)
    methods = {m for b in bounds for m in (*b.lower, *b.upper)}
    for method in (m for m in Method if m in methods):
        attack = METHODS[method].kind is Kind.ATTACK
        points = [(b.eps, 1 - (b.lower if attack else b.upper)[method]) for b in bounds
                  if method in (b.lower if attack else b.upper)]
        ax.plot(*zip(*points), "x--" if attack else "o-", label=f"{method.value} (gap runs)")


def _distortion_steps(ax, distortions: Sequence[Distortion]) -> None:
    """Share certified at each eps (certified radius ≥ eps), or for PGD the share not yet broken
    (falsified radius > eps), on a fine grid up to eps_max."""
    for method in (m for m in Method if any(d.method is m for d in distortions)):
        group = [d for d in distortions if d.method is method]
        grid = [group[0].eps_max * i / 400 for i in range(401)]
        if METHODS[method].kind is Kind.ATTACK:
            ys = [sum(d.broken is None or d.broken > x for d in group) / len(group) for x in grid]
        else:
            ys = [sum(d.certified is not None and d.certified >= x for d in group) / len(group) for x in grid]
        ax.plot(grid, ys, ls=":" if METHODS[method].kind is Kind.ATTACK else "-", label=f"{method.value} (bisection)")


def make_plots(instances: Sequence[Instance], distortions: Sequence[Distortion], folder: Path,
               formats: Sequence[PlotFormat]) -> list[Path]:
    """Every figure the data allows, written under `folder`; the paths written."""
    folder = Path(folder)
    return [*ladder_plot(instances, folder / "ladders", formats),
            *gap_distribution_plot(instances, folder / "gaps", formats),
            *accuracy_plot(instances, distortions, folder / "accuracy", formats)]
