"""Figures of the relaxation-gap study (matplotlib `Figure` objects on the Agg canvas, no pyplot
state), made from the same data as the tables: per-instance bound ladders, gap distributions per
relaxation, and certified accuracy against eps (from the gap runs' discrete eps and, where
present, the minimum-distortion bisections as step curves).
"""
from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

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


def pooled(instances: Sequence[Instance]) -> str:
    """What a figure pools, for its title: networks, eps values and number of instances."""
    networks = sorted({i.network for i in instances})
    eps = sorted({i.eps for i in instances if i.eps is not None})
    nets = ", ".join(networks[:4]) + (f" (+{len(networks) - 4})" if len(networks) > 4 else "")
    radii = f"; eps {', '.join(f'{e:g}' for e in eps)}" if eps else ""
    return f"{len(instances)} properties; {nets}{radii}"


#: One style per method, so overlapping series stay distinguishable (marker and line style differ).
_MARKERS = "osD^vP*Xh<>p"
_LINES = ("-", "--", "-.", ":")


def _style(method: Method) -> dict:
    i = list(Method).index(method)
    return {"marker": _MARKERS[i % len(_MARKERS)], "ls": _LINES[i % len(_LINES)], "color": _COLOURS[i % len(_COLOURS)]}


_COLOURS = ("C0", "C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9")   # red (C3) is kept for PGD's upper bounds


def ladder_plot(instances: Sequence[Instance], stem: Path, formats: Sequence[PlotFormat],
                limit: int = 12) -> list[Path]:
    """One panel per instance (the first `limit`): each certified lower bound on the margin, from the
    loosest relaxation to the exact value, joined by a line; PGD's achieved margin (an *upper* bound)
    as a separate red triangle, never joined to them; the reference and zero marked."""
    shown = list(instances)[:limit]
    if not shown:
        return []
    cols = min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = _figure(3.6 * cols, 2.9 * rows + 0.9)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, inst in zip(axes, shown):
        _ladder_panel(ax, inst)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=7)
    fig.suptitle(f"Bounds on the property margin per method — first {len(shown)} of {pooled(instances)}",
                 fontsize=9)
    return _save(fig, stem, formats)


def _ladder_panel(ax, inst: Instance) -> None:
    methods = sorted((m for m in inst.runs if METHODS[m].kind is not Kind.SMOOTHED),   # no margin bound
                     key=lambda m: (_RUNG[METHODS[m].kind], ORDER.index(m)))
    lower = [m for m in methods if METHODS[m].kind is not Kind.ATTACK]
    upper = [m for m in methods if METHODS[m].kind is Kind.ATTACK]
    xs = {m: i for i, m in enumerate(methods)}
    ax.plot([xs[m] for m in lower], [_nan(_value(inst, m)) for m in lower], "o-", color="tab:blue",
            label="certified lower bound")
    ax.plot([xs[m] for m in lower], [_nan(inst.runs[m].tightness) for m in lower], "o", mfc="none",
            color="tab:green", label="network at the relaxation's optimum")
    ax.plot([xs[m] for m in upper], [_nan(_value(inst, m)) for m in upper], "v", color="tab:red", ms=7, ls="none",
            label="upper bound (PGD: margin reached)")
    ax.axhline(0.0, color="grey", lw=0.8)
    ref = reference(inst)
    if ref is not None:
        ax.axhline(ref.value, color="tab:purple", ls="--", lw=0.8, label="reference (exact, else PGD)")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xticks(list(xs.values()), [m.value for m in methods], rotation=60, fontsize=7)
    ax.set_xlabel("method", fontsize=7)
    ax.set_title(inst.label, fontsize=7)
    ax.set_ylabel("margin (logit difference)", fontsize=7)


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
    fig = _figure(max(7.0, 1.3 * len(methods) * 2), 4.0)
    panels = (("absolute", "gap to the reference", "reference − certified bound (logit difference)"),
              ("relative", "relative gap", "gap / |reference| (dimensionless)"))
    for ax, (attr, title, ylabel) in zip(fig.subplots(1, 2), panels):
        data = [[v for g in found if g.method is m and (v := getattr(g, attr)) is not None and math.isfinite(v)]
                for m in methods]
        ax.boxplot([d or [math.nan] for d in data], tick_labels=[m.value for m in methods])
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xlabel("relaxation", fontsize=8)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.suptitle(f"Gap of each relaxation to the reference (exact margin, else PGD's), pooled over "
                 f"{pooled(instances)}", fontsize=9)
    return _save(fig, stem, formats)


def accuracy_plot(instances: Sequence[Instance], distortions: Sequence[Distortion], stem: Path,
                  formats: Sequence[PlotFormat]) -> list[Path]:
    """Per network: certified accuracy (share proved: a lower bound on robust accuracy) against eps
    for each prover, and PGD's upper bound on robust accuracy (red, dashed, triangles): markers from
    gap runs (methods offset sideways so coinciding series stay visible), steps from bisections."""
    bounds = error_bounds(instances)
    networks = sorted({b.network for b in bounds} | {d.network for d in distortions})
    if not networks:
        return []
    fig = _figure(max(7.5, 4.4 * len(networks)), 4.6)
    axes = fig.subplots(1, len(networks), squeeze=False).ravel()
    for ax, network in zip(axes, networks):
        mine = [b for b in bounds if b.network == network]
        _gap_points(ax, mine)
        _distortion_steps(ax, [d for d in distortions if d.network == network])
        images = max((b.images for b in mine), default=len({d.index for d in distortions if d.network == network}))
        ax.set_title(f"{network} ({images} images)", fontsize=9)
        ax.set_xlabel("eps (L∞ radius, input units)", fontsize=8)
        ax.set_ylabel("robust accuracy (share of images)", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=3 if len(networks) < 2 else 4,
               fontsize=7)
    fig.suptitle("Robust accuracy against eps: certified shares (lower bounds) and PGD (upper bound, red dashed)",
                 fontsize=9)
    return _save(fig, stem, formats)


def _gap_points(ax, bounds) -> None:
    bounds = sorted(bounds, key=lambda b: b.eps)
    methods = [m for m in Method if any(m in (*b.lower, *b.upper) for b in bounds)]
    eps = sorted({b.eps for b in bounds})
    step = min((b - a for a, b in zip(eps, eps[1:])), default=max(eps[0], 1e-3) if eps else 1e-3) * 0.04
    for k, method in enumerate(methods):
        attack = METHODS[method].kind is Kind.ATTACK
        points = [(b.eps + (k - len(methods) / 2) * step, 1 - (b.lower if attack else b.upper)[method])
                  for b in bounds if method in (b.lower if attack else b.upper)]
        if attack:
            ax.plot(*zip(*points), "v--", color="tab:red", label=f"{method.value}: upper bound (gap runs)")
        else:
            ax.plot(*zip(*points), **_style(method), mfc="none", label=f"{method.value}: certified (gap runs)")


def _distortion_steps(ax, distortions: Sequence[Distortion]) -> None:
    """Share certified at each eps (certified radius ≥ eps), or for PGD the share not yet broken
    (falsified radius > eps), on a fine grid up to eps_max."""
    for method in (m for m in Method if any(d.method is m for d in distortions)):
        group = [d for d in distortions if d.method is method]
        grid = [group[0].eps_max * i / 400 for i in range(401)]
        attack = METHODS[method].kind is Kind.ATTACK
        if attack:
            ys = [sum(d.broken is None or d.broken > x for d in group) / len(group) for x in grid]
        else:
            ys = [sum(d.certified is not None and d.certified >= x for d in group) / len(group) for x in grid]
        style = {"color": "tab:red", "ls": "--"} if attack else {"color": _style(method)["color"],
                                                                  "ls": _style(method)["ls"]}
        kind = "upper bound" if attack else "certified"
        ax.plot(grid, ys, **style, label=f"{method.value}: {kind} (bisection)")


def make_plots(instances: Sequence[Instance], distortions: Sequence[Distortion], folder: Path,
               formats: Sequence[PlotFormat]) -> list[Path]:
    """Every figure the data allows, written under `folder`; the paths written."""
    folder = Path(folder)
    return [*ladder_plot(instances, folder / "ladders", formats),
            *gap_distribution_plot(instances, folder / "gaps", formats),
            *accuracy_plot(instances, distortions, folder / "accuracy", formats)]
