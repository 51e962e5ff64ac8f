"""Issue 16 benchmark: the model zoo. Trains every regime on real MNIST (images 0–7999 of the test
split; evaluation on 8000–9999), then runs the gap study over every net on the same images and eps
(PGD, IBP, CROWN, alpha-CROWN, LP, LP-ALL, BM, the exact MILP, Lipschitz, smoothing), the L2 curves
of the Lipschitz and smoothing certificates, and their soundness checks. Every stage is resumable
(trained nets and cards, the results store, per-net JSON files in --work). Writes bench/results/zoo.md,
the model cards in bench/results/zoo/cards/ and the curves' plot.

    python bench/zoo.py [--archs mlp-100x2,mlp-32x2] [--regimes all] [--images 25] [--eps 0.1]
                        [--timeout 120] [--data ../shared/datasets/mnist] [--work /work/scratch/zoo]
    python bench/zoo.py --report-only
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, RESULTS, machine, record  # noqa: E402
from zoo_checks import curves, lipschitz_pgd_check, smoothing_coverage  # noqa: E402
from zoo_report import report  # noqa: E402

from optcert.study.gap import Method, gap_tasks, linf_properties  # noqa: E402
from optcert.sweeps.run import Executor, SweepSettings, run_sweep  # noqa: E402
from optcert.sweeps.store import ResultStore  # noqa: E402
from optcert.threads import limit_threads  # noqa: E402
from optcert.training import EVALUATE, Architecture, ModelCard, Regime, default_config, export, train  # noqa: E402
from optcert.training.data import load_mnist, write_images  # noqa: E402

CARDS = RESULTS / "zoo" / "cards"
#: cheap first, so that an interrupted run has every net's cheap columns
ORDER = (Method.PGD, Method.IBP, Method.CROWN, Method.ALPHA_CROWN, Method.LIPSCHITZ, Method.LP, Method.LP_ALL,
         Method.SMOOTHING, Method.BNB, Method.MILP, Method.BM)


def train_zoo(args) -> list[tuple[Path, ModelCard]]:
    """Train (or reuse) every (architecture, regime); cards copied to bench/results/zoo/cards."""
    nets = []
    CARDS.mkdir(parents=True, exist_ok=True)
    for arch in (Architecture.parse(a) for a in args.archs.split(",")):
        for regime in _regimes(args.regimes):
            config = default_config(regime, arch, seed=args.seed)
            card_path = args.work / "nets" / f"{config.name}.json"
            if not card_path.is_file():
                print(f"training {config.name} ({config.epochs} epochs)", flush=True)
                export(train(config, args.data), args.work / "nets")
            card = ModelCard.read(card_path)
            shutil.copy(card_path, CARDS / card_path.name)
            print(f"{card.name}: clean {card.clean_accuracy:.4f} PGD {card.pgd['accuracy']:.4f} "
                  f"({card.training_seconds:.0f} s)", flush=True)
            nets.append((args.work / "nets" / card.onnx, card))
    return nets


ANCHORS = {"NOR_MLP_B.onnx": "anchor: normal (Salman et al.)", "ADV_MLP_B_0.1.onnx": "anchor: PGD 0.1 (Salman et al.)",
           "LPD_MLP_B_0.1.onnx": "anchor: LP-dual 0.1 (Wong & Kolter)"}


def anchor_nets(args) -> list[tuple[Path, ModelCard]]:
    """The shared salman_mnist nets (784-100-100-10, trained on the full MNIST training split) as
    reference rows, with cards measured here on the same evaluation partition and the same PGD."""
    import numpy as np
    import torch

    from optcert.ir.layered import to_layered
    from optcert.ir.load import load_network
    from optcert.training.attacks import Norm, Pgd
    from optcert.training.evaluate import clean_accuracy, pgd_accuracy
    from optcert.training.loop import CARD_PGD

    folder = BENCHMARKS / "salman_mnist"
    if not folder.is_dir():
        print(f"anchors skipped: {folder} not found (set OPTCERT_BENCHMARKS)")
        return []
    x, y = load_mnist(args.data, EVALUATE)
    out = []
    for name, regime in ANCHORS.items():
        path = args.work / "anchors" / name.replace(".onnx", ".json")
        if not path.is_file():
            layered = to_layered(load_network(folder / name))
            weights = [(torch.tensor(np.array(l.weights[0]), dtype=torch.float32),
                        torch.tensor(np.array(l.bias), dtype=torch.float32)) for l in layered.layers]

            def model(t, weights=weights):
                for k, (W, b) in enumerate(weights):
                    t = t @ W.T + b
                    t = torch.relu(t) if k < len(weights) - 1 else t
                return t
            card = ModelCard(name.removesuffix(".onnx"), regime, tuple(layered.sizes()), "linf", 0.1, 0, 0,
                             {"train": "full MNIST training split (Salman et al. 2019)",
                              "evaluate": EVALUATE.describe()}, clean_accuracy(model, x, y),
                             {"norm": "linf", "eps": 0.1, **CARD_PGD,
                              "accuracy": pgd_accuracy(model, x, y, Pgd(0.1, Norm.LINF, **CARD_PGD))},  # type: ignore
                             0.0, 0.0, onnx=name)
            card.write(path)
        out.append((folder / name, ModelCard.read(path)))
    return out


def ablation(args) -> list[ModelCard]:
    """How much of the gap to the papers is data and epochs: normal and IBP training of mlp-100x2 on
    the first 2000 / 4000 / 8000 training images, and on 8000 with twice the epochs."""
    from dataclasses import replace

    from optcert.training import Partition

    cards = []
    for regime in (Regime.NORMAL, Regime.IBP, Regime.PGD):
        base = default_config(regime, Architecture((100, 100)), seed=args.seed)
        runs = [replace(base, train=Partition(0, n)) for n in (2000, 4000)]
        sched = base.schedule
        runs.append(replace(base, epochs=2 * base.epochs,
                            schedule=replace(sched, warmup=2 * sched.warmup, ramp=2 * sched.ramp)))
        for config in runs:
            tag = f"{config.name}_n{config.train.size}_e{config.epochs}"
            path = args.work / "ablation" / f"{tag}.json"
            if not path.is_file():
                print(f"ablation: training {tag}", flush=True)
                trained = train(config, args.data)
                path.parent.mkdir(parents=True, exist_ok=True)
                trained.card.write(path)
            cards.append(ModelCard.read(path))
    return cards


def _regimes(text: str) -> list[Regime]:
    return list(Regime) if text == "all" else [Regime(r.strip()) for r in text.split(",")]


def sweep(args, nets, images: Path, methods: list[Method], count: int, timeout: float, after) -> None:
    """The gap study over `nets` × the first `count` images, method by method (cheap first), into
    the store; `after()` runs after each method (it rewrites the report)."""
    eps = [float(e) for e in args.eps.split(",")]
    with ResultStore(args.work / "zoo.sqlite") as store:
        for method in sorted(methods, key=ORDER.index):
            tasks = []
            for onnx, card in nets:
                props = linf_properties([str(onnx)], str(images), range(count), eps)
                options = {"sigma": card.settings.get("sigma", 0.25)} if method is Method.SMOOTHING else {}
                tasks += gap_tasks(props, [method], timeout, {method: options | _method_options(method)})
            start = time.monotonic()
            summary = run_sweep(tasks, store, SweepSettings(executor=Executor.SERIAL, progress=False))
            print(f"{method.value}: {summary} in {time.monotonic() - start:.0f} s (load {os.getloadavg()[0]:.1f})",
                  flush=True)
            after()


def _method_options(method: Method) -> dict:
    """The exact MILP (exact margins) on Gurobi when it is licensed here (its size-limited licence
    fits these nets), else HiGHS."""
    if method is Method.MILP:
        from solvers.registry import available

        gurobi = available().get("gurobi")
        return {"backend": "gurobi"} if gurobi is not None and gurobi.available else {}
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="mlp-32x2,mlp-100x2")
    ap.add_argument("--regimes", default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=25, help="first N images of the evaluation partition")
    ap.add_argument("--eps", default="0.1", help="L∞ radii of the gap study (default 0.1)")
    ap.add_argument("--methods", default="pgd,ibp,crown,alpha-crown,lipschitz,lp,lp-all,smoothing,bnb",
                    help="methods run on every net")
    ap.add_argument("--expensive", default="milp,bm", help="methods run on --expensive-archs only")
    ap.add_argument("--expensive-archs", default="mlp-32x2")
    ap.add_argument("--expensive-images", type=int, help="images for the expensive methods (default --images)")
    ap.add_argument("--expensive-timeout", type=float, default=90.0, help="seconds per expensive run (default 90)")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--curve-images", type=int, default=200, help="images for the L2 curves")
    ap.add_argument("--coverage-images", type=int, default=20, help="images for the smoothing coverage check")
    ap.add_argument("--data", type=Path, default=None, help="MNIST folder (default $OPTCERT_DATASETS/mnist)")
    ap.add_argument("--work", type=Path, default=Path("/work/scratch/zoo"))
    ap.add_argument("--anchors", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the shared salman_mnist NOR/ADV/LPD nets as reference rows (default on)")
    ap.add_argument("--ablation", action=argparse.BooleanOptionalAction, default=True,
                    help="train normal/IBP/PGD nets on less data and with more epochs (default on)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    limit_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    started = f"{machine()}; load at start {os.getloadavg()[0]:.1f}"
    nets = train_zoo(args) + (anchor_nets(args) if args.anchors else [])
    import numpy as np

    x, y = load_mnist(args.data, EVALUATE, dtype=np.float64)
    images = write_images(args.work / "eval.npz", x, y, EVALUATE)
    (RESULTS / "zoo" / "settings.json").write_text(json.dumps(vars(args), default=str, indent=1) + "\n")

    def write() -> None:
        record("zoo", report(args, nets, started))

    if not args.report_only:
        sweep(args, nets, images, [Method(m) for m in args.methods.split(",")], args.images, args.timeout, write)
        for onnx, card in nets:
            curves(onnx, card, x[:args.curve_images], y[:args.curve_images], args.work)
            lipschitz_pgd_check(onnx, x[:args.curve_images], y[:args.curve_images], args.work)
            if card.regime in (Regime.GAUSSIAN.value, Regime.SMOOTHADV.value):
                smoothing_coverage(onnx, card, x[:args.coverage_images], args.work)
        write()
        if args.ablation:
            ablation(args)
            write()
        archs = {Architecture.parse(a).sizes for a in args.expensive_archs.split(",") if a}
        chosen = [(onnx, card) for onnx, card in nets if tuple(card.architecture) in archs]
        sweep(args, chosen, images, [Method(m) for m in args.expensive.split(",") if m],
              args.expensive_images or args.images, args.expensive_timeout, write)
    write()


if __name__ == "__main__":
    main()
