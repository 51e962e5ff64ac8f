"""Tables of the relaxation-gap study, made from the results store (never from live runs).

An *instance* is one property on one network (an image at one eps against all targets, or a
VNN-LIB file); it holds the stored run of each method. The *reference* of an instance is the
exact margin where an exact method completed (its certified bound and the margin achieved at its
optimum agree to 1e-3 relative; the achieved margin is used), else the best PGD margin (an upper
bound on the true margin, so gaps to it are lower bounds on the true gaps). For a relaxation,
gap = reference − certified bound, relative gap = gap / |reference|, and the tightness gap =
(margin of the real network at the relaxation's own
optimal inputs) − bound. Adversarial error bounds follow Salman et al. (NeurIPS 2019), Table 1:
PGD's falsified share is a lower bound, a relaxation's not-certified share an upper bound (runs
that failed or timed out count as not certified and not falsified). Randomized smoothing (Kind.SMOOTHED)
certifies the smoothed classifier, not the network: it has its own columns (`study/smoothed.py`).
"""
from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from optcert.errors import UnreadableFileError
from optcert.outputs import markdown_table
from optcert.study.gap import METHODS, ORDER, Kind, Method
from optcert.study.smoothed import smoothed_share
from optcert.sweeps.store import ResultStore, RunRecord, RunStatus

EXACT_AGREEMENT = 1e-3


@dataclass(frozen=True)
class Run:
    """One method's stored run on an instance."""

    method: Method
    status: RunStatus
    verdict: str
    bound: float | None
    upper: float | None
    seconds: float
    tightness: float | None
    timed_out: bool
    smoothed: tuple | None = None   # randomized smoothing: the per-case results (Kind.SMOOTHED only)

    @property
    def proved(self) -> bool:
        return self.status is RunStatus.DONE and self.verdict == "proved"

    @property
    def falsified(self) -> bool:
        return self.status is RunStatus.DONE and self.verdict == "falsified"


@dataclass(frozen=True)
class Instance:
    network: str
    prop: str
    label: str
    eps: float | None
    target: str
    clean_margin: float | None
    runs: Mapping[Method, Run]


@dataclass(frozen=True)
class Reference:
    value: float
    source: str   # the method it came from: "milp", "bnb" or "pgd"


@dataclass(frozen=True)
class Gap:
    instance: Instance
    method: Method
    reference: Reference | None
    absolute: float | None
    relative: float | None
    tightness: float | None   # network value at the relaxation's optimal inputs − bound


def load_instances(store: ResultStore, networks: Iterable[str] | None = None) -> list[Instance]:
    """The gap-study records of `store` grouped by (network, property); the latest record wins
    when a method was run with several option sets. `networks`: file names to keep."""
    keep = set(networks) if networks else None
    groups: dict[tuple[str, str], tuple[dict, dict[Method, Run]]] = {}
    for record in store.records():
        extra = record.extra_dict()
        if extra.get("study") != "gap" or (keep and extra.get("network") not in keep):
            continue
        labels, runs = groups.setdefault((record.key.network, record.key.prop), (extra, {}))
        runs[Method(record.key.method)] = _run(record, extra)
    return [_instance(prop, labels, runs) for (_, prop), (labels, runs) in groups.items()]


def _run(record: RunRecord, extra: Mapping) -> Run:
    smoothed = extra.get("smoothed")
    return Run(Method(record.key.method), record.status, record.verdict, record.bound, record.upper,
               record.seconds, extra.get("tightness"), bool(extra.get("timed_out", False)),
               tuple(smoothed) if smoothed is not None else None)


def _instance(prop: str, labels: Mapping, runs: dict[Method, Run]) -> Instance:
    if labels.get("property") == "linf":
        label = f"{labels['network']} #{labels['index']} eps={labels['eps']:g} target={labels['target']}"
    else:
        label = f"{labels.get('network')} {labels.get('vnnlib')}"
    return Instance(labels.get("network", "?"), prop, label, labels.get("eps"), str(labels.get("target", "")),
                    labels.get("clean_margin"), dict(runs))


def exact_value(run: Run | None) -> float | None:
    """The exact margin an exact run established, or None (unfinished, or only a verdict): the
    margin the network achieves at the exact method's optimum (its certified bound is lower by at
    most the solver tolerance, so every sound relaxation bound is ≤ this value)."""
    if run is None or run.status is not RunStatus.DONE or run.timed_out or run.bound is None or run.upper is None:
        return None
    return run.upper if run.upper - run.bound <= EXACT_AGREEMENT * (1 + abs(run.upper)) else None


def reference(instance: Instance) -> Reference | None:
    """The exact margin where known, else PGD's best margin, else None."""
    for method in (Method.MILP, Method.BNB):
        value = exact_value(instance.runs.get(method))
        if value is not None:
            return Reference(value, method.value)
    pgd = instance.runs.get(Method.PGD)
    return Reference(pgd.upper, "pgd") if pgd is not None and pgd.upper is not None else None


def gaps(instances: Sequence[Instance]) -> list[Gap]:
    """The gap of every relaxation run to its instance's reference."""
    out = []
    for inst in instances:
        ref = reference(inst)
        for method, run in sorted(inst.runs.items(), key=lambda kv: ORDER.index(kv[0])):
            if METHODS[method].kind is not Kind.RELAXATION:
                continue
            absolute = relative = None
            if ref is not None and run.bound is not None:
                absolute = ref.value - run.bound
                relative = absolute / abs(ref.value) if ref.value else math.inf
            tight = None if run.tightness is None or run.bound is None else run.tightness - run.bound
            out.append(Gap(inst, method, ref, absolute, relative, tight))
    return out


# ---- markdown / CSV ------------------------------------------------------------------------
def methods_of(instances: Sequence[Instance]) -> list[Method]:
    present = {m for inst in instances for m in inst.runs}
    return [m for m in ORDER if m in present]


def instance_table(instances: Sequence[Instance]) -> str:
    """Per instance: reference, and each method's bound (PGD: its upper value) with seconds."""
    methods = methods_of(instances)
    rows = []
    for inst in instances:
        ref = reference(inst)
        cells = [_cell(inst.runs.get(m)) for m in methods]
        rows.append([inst.label, None if ref is None else f"{ref.value:.4g} ({ref.source})", *cells])
    return markdown_table(["instance", "reference", *(m.value for m in methods)], rows)


def _cell(run: Run | None) -> str:
    if run is None:
        return "–"
    if run.status is not RunStatus.DONE:
        return f"{run.status.value} ({run.seconds:.2g}s)"
    value = run.upper if METHODS[run.method].kind is Kind.ATTACK else run.bound
    return f"{'–' if value is None else f'{value:.4g}'} ({run.seconds:.2g}s)"


def aggregate_table(instances: Sequence[Instance]) -> str:
    """Per network × eps × method: counts, median gaps (absolute, relative, tightness), mean time."""
    runs_by: dict[tuple, list[Run]] = {}
    gaps_by: dict[tuple, list[Gap]] = {}
    for inst in instances:
        for method, run in inst.runs.items():
            runs_by.setdefault((inst.network, inst.eps, method), []).append(run)
    for g in gaps(instances):
        gaps_by.setdefault((g.instance.network, g.instance.eps, g.method), []).append(g)
    rows = []
    for key in sorted(runs_by, key=lambda k: (k[0], k[1] or 0.0, ORDER.index(k[2]))):
        runs, mine = runs_by[key], gaps_by.get(key, [])
        rows.append([key[0], key[1], key[2].value, len(runs), sum(r.proved for r in runs),
                     sum(r.falsified for r in runs), sum(r.status is not RunStatus.DONE for r in runs),
                     _median(g.absolute for g in mine), _median(g.relative for g in mine),
                     _median(g.tightness for g in mine), statistics.fmean(r.seconds for r in runs)])
    return markdown_table(["network", "eps", "method", "runs", "proved", "falsified", "failed/timeout",
                     "median gap", "median rel. gap", "median tightness gap", "mean s"], rows)


def _median(values: Iterable[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else None


def write_csv(instances: Sequence[Instance], path: str | Path) -> Path:
    """Every run of every instance with its reference and gaps, one CSV row each."""
    gap_of = {(id(g.instance), g.method): g for g in gaps(instances)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["network", "instance", "eps", "target", "method", "status", "verdict", "bound",
                         "upper", "seconds", "reference", "reference_source", "gap", "relative_gap",
                         "tightness_gap"])
        for inst in instances:
            ref = reference(inst)
            for method, run in inst.runs.items():
                g = gap_of.get((id(inst), method))
                writer.writerow([inst.network, inst.label, inst.eps, inst.target, method.value, run.status.value,
                                 run.verdict, run.bound, run.upper, round(run.seconds, 4),
                                 None if ref is None else ref.value, None if ref is None else ref.source,
                                 g and g.absolute, g and g.relative, g and g.tightness])
    return path


def read_anchors(path: str | Path) -> list[dict]:
    """Rows of Salman et al.'s Table 1 anchors CSV (UnreadableFileError when missing or malformed)."""
    try:
        rows = list(csv.DictReader(open(path)))
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read anchors: {err.strerror or err}") from None
    needed = {"onnx", "eps", "lb_pgd_pct", "ub_lp_all_pct"}
    if not rows or not needed <= set(rows[0]):
        raise UnreadableFileError(f"{path}: not an anchors table (needs columns {', '.join(sorted(needed))})")
    return rows


# ---- adversarial error bounds (Salman et al. 2019, Table 1) ----------------------------------
@dataclass(frozen=True)
class ErrorBounds:
    """Adversarial error bounds (fractions of images) of one network at one eps."""

    network: str
    eps: float
    images: int
    test_error: float | None
    lower: Mapping[Method, float]   # share falsified (attack, exact methods)
    upper: Mapping[Method, float]   # share not certified (relaxations, exact methods)


def error_bounds(instances: Sequence[Instance]) -> list[ErrorBounds]:
    """Per network × eps over its L∞ instances against all targets (one per image)."""
    groups: dict[tuple[str, float], list[Instance]] = {}
    for inst in instances:
        if inst.eps is not None and inst.target == "all":
            groups.setdefault((inst.network, inst.eps), []).append(inst)
    return [_error_bounds(net, eps, group) for (net, eps), group in sorted(groups.items())]


def _error_bounds(network: str, eps: float, group: list[Instance]) -> ErrorBounds:
    n, lower, upper = len(group), {}, {}
    for method in methods_of(group):
        runs = [inst.runs.get(method) for inst in group]
        if METHODS[method].kind is Kind.SMOOTHED:   # no network verdict: own columns (smoothed_share)
            continue
        if METHODS[method].kind is not Kind.RELAXATION:
            lower[method] = sum(r is not None and r.falsified for r in runs) / n
        if METHODS[method].kind is not Kind.ATTACK:
            upper[method] = sum(r is None or not r.proved for r in runs) / n
    clean = [inst.clean_margin for inst in group if inst.clean_margin is not None]
    test = sum(c <= 0 for c in clean) / len(clean) if clean else None
    return ErrorBounds(network, eps, n, test, lower, upper)


_PAIRED = (("test error", None, "test_error_pct"), ("PGD lb", Method.PGD, "lb_pgd_pct"),
           ("exact lb", "exact", "lb_milp_pct"), ("exact ub", "exact", "ub_milp_pct"),
           ("LP-ALL ub", Method.LP_ALL, "ub_lp_all_pct"), ("LP ub / LP-GREEDY", Method.LP, "ub_lp_greedy_pct"))


def table1(instances: Sequence[Instance], anchors: Sequence[Mapping[str, str]] = ()) -> str:
    """Adversarial error bounds (%) in the layout of Salman et al.'s Table 1; each paired cell is
    "ours / theirs" when `anchors` (read_anchors) has the same network file and eps. Exact = MILP
    (else BnB); LP (CROWN intermediate bounds) sits beside their LP-GREEDY."""
    index = {(row["onnx"], round(float(row["eps"]), 6)): row for row in anchors}
    present = methods_of(instances)
    exact = next((m for m in (Method.MILP, Method.BNB) if m in present), None)
    others = [m for m in present if METHODS[m].kind is Kind.RELAXATION and m not in (Method.LP, Method.LP_ALL)]
    smoothed = [m for m in present if METHODS[m].kind is Kind.SMOOTHED]
    rows = []
    for eb in error_bounds(instances):
        theirs = index.get((eb.network, round(eb.eps, 6)), {})
        cells = [_paired(_ours(eb, name, exact if method == "exact" else method), theirs.get(column))
                 for name, method, column in _PAIRED]
        shares = [_pct(smoothed_share(instances, eb.network, eb.eps, m)) for m in smoothed]
        rows.append([eb.network, eb.eps, eb.images, *cells, *(_pct(eb.upper.get(m)) for m in others), *shares])
    header = ["network", "eps", "images", *(name for name, _, _ in _PAIRED), *(f"{m.value} ub" for m in others),
              *(f"{m.value}: smoothed g certified %" for m in smoothed)]
    return markdown_table(header, rows)


def _ours(eb: ErrorBounds, name: str, method: Method | str | None) -> float | None:
    if name == "test error":
        return eb.test_error
    if not isinstance(method, Method):
        return None
    return (eb.lower if name.endswith("lb") else eb.upper).get(method)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _paired(ours: float | None, theirs: str | None) -> str:
    return _pct(ours) if theirs in (None, "") else f"{_pct(ours)} / {float(theirs):.2f}"
