"""The model zoo in the gap study: per trained net (one regime, architecture) and eps, the share
of the study images that are clean-correct, survive PGD, are certified by each method, are proved
robust by the exact method, and the relaxation gaps — from the results store (`report.Instance`s)
and the nets' model cards (plain JSON mappings, keyed by ONNX file name).

Shares are over the study images (all L∞ properties against every other class), so "certified by
X" is certified accuracy: a misclassified image is never proved. The relaxation gap of X is
(exact robust accuracy − X's certified accuracy) in points, and the median over instances of
(exact margin − X's certified bound). Randomized smoothing has its own column (the smoothed
classifier g, certified with probability ≥ 1 − α; `study/smoothed.py`).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

from optcert.outputs import markdown_table
from optcert.study.gap import METHODS, Kind, Method
from optcert.study.report import Instance, gaps
from optcert.study.smoothed import covers

EXACT = (Method.MILP, Method.BNB)


@dataclass(frozen=True)
class NetSummary:
    network: str
    regime: str
    arch: str
    eps: float
    images: int
    card: Mapping
    clean: float                         # share of study images classified correctly
    pgd: float | None                    # share PGD does not falsify (upper bound on robust accuracy)
    certified: Mapping[Method, float]    # share proved, per relaxation
    exact: float | None                  # share proved by an exact method (MILP or BnB)
    decided: float | None                # share an exact method decided (proved or falsified)
    smoothed: float | None               # share whose smoothed classifier is certified on the box
    margin_gap: Mapping[Method, float | None]   # median exact margin − certified bound


def _share(runs: Sequence, test) -> float | None:
    return sum(1 for r in runs if r is not None and test(r)) / len(runs) if runs else None


def summarize(instances: Sequence[Instance], cards: Mapping[str, Mapping]) -> list[NetSummary]:
    """One NetSummary per (network, eps) over its instances against all targets."""
    groups: dict[tuple[str, float], list[Instance]] = {}
    for inst in instances:
        if inst.eps is not None and inst.target == "all":
            groups.setdefault((inst.network, inst.eps), []).append(inst)
    found = gaps(instances)
    return [_summary(net, eps, group, cards.get(net, {}), [g for g in found if g.instance in group])
            for (net, eps), group in sorted(groups.items())]


def exact_verdict(inst: Instance) -> str | None:
    """"proved" / "falsified" when an exact method (MILP, BnB) decided the instance, "open" when one
    ran without deciding, None when none ran."""
    runs = [inst.runs[m] for m in EXACT if m in inst.runs]
    if not runs:
        return None
    if any(r.proved for r in runs):
        return "proved"
    return "falsified" if any(r.falsified for r in runs) else "open"


def _summary(network: str, eps: float, group: list[Instance], card: Mapping, found) -> NetSummary:
    present = {m for inst in group for m in inst.runs}
    has_exact = any(m in present for m in EXACT)
    certified = {m: _share([i.runs.get(m) for i in group], lambda r: r.proved) or 0.0
                 for m in sorted(present, key=list(Method).index) if METHODS[m].kind is Kind.RELAXATION}
    verdicts = [exact_verdict(i) for i in group]
    margin_gap = {}
    for m in certified:
        values = [g.absolute for g in found if g.method is m and g.absolute is not None
                  and g.reference is not None and g.reference.source in ("milp", "bnb")]
        margin_gap[m] = statistics.median(values) if values else None
    arch = card.get("architecture")
    return NetSummary(
        network, str(card.get("regime", "?")), "-".join(map(str, arch)) if arch else "?", eps, len(group), card,
        clean=sum(1 for i in group if (i.clean_margin or 0) > 0) / len(group),
        pgd=_share([i.runs.get(Method.PGD) for i in group], lambda r: not r.falsified) if Method.PGD in present
        else None,
        certified=certified, exact=_share(verdicts, lambda v: v == "proved") if has_exact else None,
        decided=_share(verdicts, lambda v: v in ("proved", "falsified")) if has_exact else None,
        smoothed=_share([i.runs.get(Method.SMOOTHING) for i in group], covers) if Method.SMOOTHING in present
        else None, margin_gap=margin_gap)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def zoo_table(summaries: Sequence[NetSummary]) -> str:
    """The regime table: card accuracies (evaluation partition), then over the study images PGD,
    certified accuracy per method, exact robust accuracy, share decided, gaps to LP and BM."""
    methods = [m for m in Method if any(m in s.certified for s in summaries)]
    rows = []
    for s in summaries:
        gap = {m: (None if s.exact is None or m not in s.certified else s.exact - s.certified[m])
               for m in (Method.LP, Method.BM)}
        rows.append([s.regime, s.arch, s.eps, _pct(s.card.get("clean_accuracy")),
                     _pct(s.card.get("pgd", {}).get("accuracy")), s.images, _pct(s.clean), _pct(s.pgd),
                     *(_pct(s.certified.get(m)) for m in methods), _pct(s.exact), _pct(s.decided),
                     _pct(gap[Method.LP]), _pct(gap[Method.BM]), _pct(s.smoothed)])
    header = ["regime", "net", "eps", "clean % (card)", "PGD % (card)", "images", "clean %", "PGD %",
              *(f"{m.value} %" for m in methods), "exact %", "decided %", "exact − LP", "exact − BM",
              "smoothed g %"]
    return markdown_table(header, rows)


def margin_gap_table(summaries: Sequence[NetSummary]) -> str:
    """Median (exact margin − certified bound) per net and relaxation (instances where the exact
    margin is known)."""
    methods = [m for m in Method if any(s.margin_gap.get(m) is not None for s in summaries)]
    rows = [[s.regime, s.arch, s.eps, *(s.margin_gap.get(m) for m in methods)] for s in summaries]
    return markdown_table(["regime", "net", "eps", *(m.value for m in methods)], rows)


def l2_curve(radii: Sequence[float | None], correct: Sequence[bool], grid: Sequence[float]) -> list[float]:
    """Certified accuracy at each L2 radius r of `grid`: share of inputs classified correctly with a
    certified radius ≥ r (None = not certified; r = 0 counts correct certified inputs)."""
    n = len(correct)
    return [sum(1 for rad, ok in zip(radii, correct) if ok and rad is not None and rad >= r and rad > 0) / n
            if n else 0.0 for r in grid]

