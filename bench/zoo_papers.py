"""The zoo beside the papers it follows (a section of bench/results/zoo.md): each paper's reported
MNIST figure and setting, ours on the same regime, and the measured parts of the difference —
training images and epochs (the ablation cards of bench/zoo.py) and the full 60,000-image training
split (the shared salman_mnist nets of the same 784-100-100-10 architecture, measured here on the
same evaluation images with the same PGD)."""
from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

from common import markdown_table


@dataclass(frozen=True)
class Paper:
    regimes: tuple[str, ...]
    cite: str
    setting: str         # their net, data, threat model
    figure: str          # what they report
    source: str          # where the figure was read


PAPERS = (
    Paper(("pgd",), "Madry et al. 2018", "CNN (2 conv + 2 FC), 60,000 training images, L∞ ε = 0.3",
          "clean 98.8 %; PGD (100 steps, 20 restarts) 89.3 %", "paper, Table 1 (quoted from memory)"),
    Paper(("ibp",), "Gowal et al. 2018", "large CNN, 60,000 training images, L∞ ε = 0.1 and 0.3",
          "verified 97.77 % at ε = 0.1 (error 2.23 %); 91.95 % at 0.3 (error 8.05 %)", "paper abstract"),
    Paper(("crown-ibp",), "Zhang et al. 2020", "DM-large CNN, 60,000 training images, L∞ ε = 0.3",
          "verified 92.98 % (error 7.02 %; 6.68 % in the authors' later README)", "paper abstract, repo README"),
    Paper(("ibp-tight", "crown-ibp-tight"), "Zhu et al. 2020 (issue: 'Lyu et al.')",
          "MNIST and CIFAR-10 CNNs, 60,000 training images",
          "the regularisers raise certified accuracy over the unregularised baseline in every experiment",
          "paper abstract (their per-ε tables were not re-read here)"),
    Paper(("mixtrain",), "Wang et al. 2018", "MNIST CNNs, 60,000 training images",
          "up to 95.2 % verified robust accuracy", "paper abstract"),
    Paper(("gloro",), "Leino et al. 2021", "MNIST CNN, 60,000 training images, L2 ε = 1.58",
          "clean 97.0 %; verified-robust accuracy 62.8 %", "paper, Table 2 (quoted from memory)"),
    Paper(("gaussian", "smoothadv"), "Cohen et al. 2019; Salman et al. 2019", "CIFAR-10 and ImageNet only",
          "no MNIST figure in either paper", "papers"),
)
PARAMS = {"784-32-32-10": 26506, "784-100-100-10": 89610}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _ours(card, summary, curve) -> str:
    """Our figures for one net: card clean / PGD (2000 images), the gap study's exact robust and
    best certified share (20 images), and the L2 certificate at the regime's radius (curve images)."""
    parts = [f"clean {_pct(card.clean_accuracy)}, PGD {_pct(card.pgd['accuracy'])} ({card.norm} {card.eps:g})"]
    if summary is not None and summary.exact is not None:
        best = max(summary.certified.values(), default=0.0)
        parts.append(f"L∞ 0.1, {summary.images} images: exact {_pct(summary.exact)}, best relaxation {_pct(best)}")
    if curve is not None:
        parts.append(curve)
    return "; ".join(parts)


def _curve_text(card, work: Path, radius: float) -> str | None:
    path = work / "curves" / f"{Path(card.onnx).stem}.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    n = len(d["correct"])
    lip = sum(1 for r, ok in zip(d["lipschitz"], d["correct"]) if ok and r and r >= radius) / n
    text = f"L2 {radius:g}, {n} images: Lipschitz {_pct(lip)}"
    if d["smoothing"]:
        smooth = sum(1 for s in d["smoothing"] if s["predicted"] == s["label"] and s["radius"] >= radius) / n
        text += f", smoothing σ = {d['sigma']:g}: {_pct(smooth)}"
    return text


def papers_table(nets, summaries, work: Path) -> str:
    """One row per (paper, regime): their figure and setting, ours on each architecture (%)."""
    by_name = {s.network: s for s in summaries}
    archs = sorted({tuple(c.architecture) for _, c in nets})
    rows = []
    for paper in PAPERS:
        for regime in paper.regimes:
            cells = {}
            for onnx, card in nets:
                if card.regime != regime:
                    continue
                radius = 1.58 if regime == "gloro" else 0.5 if regime in ("gaussian", "smoothadv") else None
                curve = _curve_text(card, work, radius) if radius is not None else None
                cells[tuple(card.architecture)] = _ours(card, by_name.get(onnx.name), curve)
            if cells:
                rows.append([regime, paper.cite, paper.setting, f"{paper.figure} [{paper.source}]",
                             *(cells.get(a, "–") for a in archs)])
    return markdown_table(["regime", "paper", "their setting", "their MNIST figure [read from]",
                           *(f"ours {'-'.join(map(str, a))}, %" for a in archs)], rows)


def _ablation(work: Path) -> dict:
    from optcert.training import ModelCard

    out = {}
    for p in glob.glob(str(work / "ablation" / "*.json")):
        c = ModelCard.read(p)
        out[(c.regime, int(c.data["train"].split("(")[-1].split()[0]), c.epochs)] = c
    return out


def differences(nets, work: Path) -> str:
    """Numbers for why ours differ: the same architecture on 60,000 images (anchors), fewer training
    images and more epochs (ablation)."""
    lines = []
    ours = {c.regime: c for _, c in nets if tuple(c.architecture) == (784, 100, 100, 10)}
    anchors = {Path(p).stem: json.loads(Path(p).read_text()) for p in glob.glob(str(work / "anchors" / "*.json"))}
    for stem, regime in (("NOR_MLP_B", "normal"), ("ADV_MLP_B_0.1", "pgd")):
        if stem in anchors and regime in ours:
            a, c = anchors[stem], ours[regime]
            lines.append(f"- Full training split, same 784-100-100-10 net ({stem}, Salman et al. 2019, measured "
                         f"here on images 8000–9999 with the card PGD): {regime}: clean {_pct(a['clean_accuracy'])} % "
                         f"vs ours "
                         f"{_pct(c.clean_accuracy)} % ({100 * (c.clean_accuracy - a['clean_accuracy']):+.1f} points), "
                         f"PGD at 0.1 {_pct(a['pgd']['accuracy'])} % vs {_pct(c.pgd['accuracy'])} % "
                         f"({100 * (c.pgd['accuracy'] - a['pgd']['accuracy']):+.1f} points).")
    abl = _ablation(work)
    for regime in ("normal", "ibp", "pgd"):
        if regime not in ours:
            continue
        c = ours[regime]
        runs = sorted((n, e, a) for (r, n, e), a in abl.items() if r == regime)
        if not runs:
            continue
        data = [f"{n} → {_pct(a.clean_accuracy)} / {_pct(a.pgd['accuracy'])}" for n, e, a in runs if e == c.epochs]
        data.append(f"8000 → {_pct(c.clean_accuracy)} / {_pct(c.pgd['accuracy'])}")
        more = [f"{n} images × {e} epochs → {_pct(a.clean_accuracy)} / {_pct(a.pgd['accuracy'])}"
                for n, e, a in runs if e != c.epochs]
        lines.append(f"- {regime} (784-100-100-10, {c.epochs} epochs, clean % / PGD % at 0.1 on images 8000–9999): "
                     f"training images {', '.join(data)}" + (f"; {', '.join(more)}" if more else "") + ".")
    return "\n".join(lines)
