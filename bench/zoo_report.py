"""The zoo benchmark's report (bench/results/zoo.md) from the store, the model cards and the
per-net JSON files of bench/zoo_checks.py."""
from __future__ import annotations

import json
from pathlib import Path

from common import RESULTS, markdown_table

from optcert.study.gap import Method
from optcert.study.report import load_instances
from optcert.study.zoo import exact_verdict, l2_curve, margin_gap_table, summarize, zoo_table
from optcert.sweeps.store import ResultStore
from optcert.training import Regime

RADII = (0.0, 0.25, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 1.58, 2.0)   # 0.3 and 1.58: GloRo's MNIST radii


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def training_table(nets) -> str:
    rows = []
    for _, card in nets:
        rows.append([card.regime, "-".join(map(str, card.architecture)), f"{card.norm} {card.eps:g}",
                     card.epochs, f"{card.training_seconds:.0f} / {card.training_cpu_seconds:.0f}",
                     _pct(card.clean_accuracy), _pct(card.pgd["accuracy"])])
    return markdown_table(["regime", "net", "train eps", "epochs", "train s (wall / CPU)",
                           "clean % (8000–9999)", "PGD % at train eps (8000–9999)"], rows)


def ablation_table(nets, work: Path) -> str | None:
    """Data and epochs against accuracy: the ablation cards beside the zoo's own 8000-image nets."""
    import glob

    from optcert.training import ModelCard

    cards = [ModelCard.read(p) for p in sorted(glob.glob(str(work / "ablation" / "*.json")))]
    if not cards:
        return None
    full = [c for _, c in nets if c.name in {a.name for a in cards}]
    rows = []
    for c in sorted(cards + full, key=lambda c: (c.regime, c.data["train"], c.epochs)):
        rows.append([c.regime, c.data["train"].split("(")[-1].rstrip(")"), c.epochs, _pct(c.clean_accuracy),
                     _pct(c.pgd["accuracy"]), f"{c.training_seconds:.0f}"])
    return markdown_table(["regime (mlp-100x2)", "training images", "epochs", "clean % (8000–9999)",
                           "PGD % at 0.1", "train s"], rows)


def curve_table(nets, work: Path) -> tuple[str, dict]:
    rows, data = [], {}
    for onnx, card in nets:
        path = work / "curves" / f"{onnx.stem}.json"
        if not path.is_file():
            continue
        d = json.loads(path.read_text())
        correct = d["correct"]
        lip = l2_curve(d["lipschitz"], correct, RADII)
        smooth = l2_curve([s["radius"] if s["predicted"] == s["label"] else None for s in d["smoothing"]],
                          [True] * len(correct), RADII)
        data[card.name] = (lip, smooth)
        rows.append([card.regime, "-".join(map(str, card.architecture)), "Lipschitz", len(correct), *map(_pct, lip)])
        rows.append([card.regime, "-".join(map(str, card.architecture)), f"smoothing σ={d['sigma']:g}", len(correct),
                     *map(_pct, smooth)])
    return markdown_table(["regime", "net", "certificate", "images", *(f"r={r:g}" for r in RADII)], rows), data


def plot_curves(data: dict, path: Path) -> Path | None:
    if not data:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for name, (lip, smooth) in sorted(data.items()):
        axes[0].plot(RADII, lip, "o-", label=name, ms=3)
        axes[1].plot(RADII, smooth, "o-", label=name, ms=3)
    for ax, title in zip(axes, ("Lipschitz (deterministic)", "randomized smoothing (prob. ≥ 1 − α)")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("L2 radius")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=5, ncol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def checks(nets, instances, work: Path) -> str:
    """Soundness and coverage figures (the issue's targets)."""
    lines = []
    contradicted = bound_above = pairs = decided = 0
    for inst in instances:
        lip, pgd = inst.runs.get(Method.LIPSCHITZ), inst.runs.get(Method.PGD)
        exact = inst.runs.get(Method.MILP)
        verdict = exact_verdict(inst)
        if verdict is not None:
            pairs += 1
            decided += verdict in ("proved", "falsified")
        if lip is not None and lip.proved and ((pgd and pgd.falsified) or verdict == "falsified"):
            contradicted += 1
        achieved = [r.upper for r in (exact, pgd) if r is not None and r.upper is not None]
        if lip is not None and lip.bound is not None and achieved and lip.bound > min(achieved):
            bound_above += 1   # a sound lower bound can never exceed a margin some input achieved
    lines.append(f"- Exact methods (BnB on every net, MILP with exact margins on the small nets) decided {decided} of "
                 f"{pairs} (image, eps) pairs "
                 f"({_pct(decided / pairs if pairs else None)}%; target ≥ 95%).")
    lines.append(f"- Lipschitz PROVED contradicted by PGD or the exact method: {contradicted}; "
                 f"Lipschitz lower bound above a margin PGD or the exact method achieved: {bound_above}.")
    cert = viol = 0
    loose = []
    for onnx, _ in nets:
        path = work / "checks" / f"lipschitz_{onnx.stem}.json"
        if path.is_file():
            d = json.loads(path.read_text())
            cert, viol = cert + d["certified"], viol + d["violations"]
            loose += [v for v in d["looseness"] if v is not None]
    if cert:
        import statistics

        lines.append(f"- L2 PGD (3 restarts × 100 steps) at the certified Lipschitz radius: {viol} successes on {cert} "
                     f"certified images; PGD first succeeds at a median {statistics.median(loose) if loose else '–'}× "
                     f"the certified radius ({len(loose)} of {cert} broken below 40×).")
    for onnx, card in nets:
        path = work / "checks" / f"smoothing_{onnx.stem}.json"
        if path.is_file():
            d = json.loads(path.read_text())
            lines.append(f"- Smoothing coverage on {card.name}: p̲_A ≤ p̂_A (10⁵ fresh samples) for {d['covered']} of "
                         f"{d['checked']} certified images (target ≥ 1 − α = 99.9%); PREDICT at 0.99 R in a random "
                         f"direction: {d['disagree']} disagreements, {d['abstain']} abstentions of {d['moved']}.")
    return "\n".join(lines)


def report(args, nets, started: str) -> str:
    with ResultStore(args.work / "zoo.sqlite") as store:
        instances = load_instances(store, [onnx.name for onnx, _ in nets])
    cards = {onnx.name: json.loads(card.to_json()) for onnx, card in nets}
    order = [r.value for r in Regime]
    summaries = sorted(summarize(instances, cards), key=lambda s: (order.index(s.regime) if s.regime in order
                                                                   else len(order), s.arch, s.eps))
    curves_md, data = curve_table(nets, args.work)
    plot = plot_curves(data, RESULTS / "zoo" / "l2_curves.png")
    return "\n\n".join([
        "# Model zoo on real MNIST in the gap study (issue 16)",
        f"Machine: {started}. Trained on MNIST test-split images 0–7999; every accuracy is on images 8000–9999 "
        f"(model cards: all 2000; gap study: the first {args.images} of them; L2 curves: the first "
        f"{args.curve_images}). Command: `python bench/zoo.py --archs {args.archs} --regimes {args.regimes} "
        f"--images {args.images} --eps {args.eps} --timeout {args.timeout:g} --expensive {args.expensive} "
        f"--expensive-archs {args.expensive_archs} --expensive-timeout {args.expensive_timeout:g}`.",
        "## Training (model cards in bench/results/zoo/cards/)\n" + training_table(nets),
        "## Gap study per regime (L∞, shares of the study images, %)\n" + zoo_table(summaries),
        "## Median relaxation gap in margin units (exact margin − certified bound)\n" + margin_gap_table(summaries),
        "## L2 certified accuracy (%) against radius, at the images themselves\n" + curves_md
        + (f"\n\nPlot: {plot.relative_to(RESULTS).as_posix()}" if plot else ""),
        "## Checks\n" + checks(nets, instances, args.work),
        *(["## Less data, more epochs (what the gap to the papers is made of)\n" + table]
          if (table := ablation_table(nets, args.work)) else [])])
