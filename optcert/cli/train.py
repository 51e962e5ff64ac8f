"""`optcert train --regime R`: train a small MNIST MLP under one regime of the certified-training
literature on a documented partition of the MNIST test split, export ONNX + model card (JSON).

    optcert train --regime crown-ibp --arch mlp-100x2 --eps 0.1 --epochs 40 --seed 0 --out zoo/
    optcert train --regime gaussian --sigma 0.25 --data ../shared/datasets/mnist --images-out zoo/eval.npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "train"
HELP = "train an MNIST MLP (normal, PGD, IBP, CROWN-IBP, …) and export ONNX + model card"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from optcert.training.config import Regime

    p.add_argument("--regime", required=True, help=f"one of: {', '.join(r.value for r in Regime)}")
    p.add_argument("--arch", default="mlp-100x2", help="hidden widths: mlp-100x2 (784-100-100-10), mlp-32x2, 100,50")
    p.add_argument("--eps", type=float, help="training radius (L∞; L2 for gloro/smoothadv/gaussian); "
                   "default 0.1 (L∞), 1.58 (gloro), 0.5 (smoothadv, gaussian)")
    p.add_argument("--epochs", type=int, help="epochs (default 20 for normal/gaussian, else 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--sigma", type=float, help="Gaussian noise std for gaussian/smoothadv (default 0.25)")
    p.add_argument("--batch", type=int, help="batch size (default 100)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--data", type=Path, help="folder with the MNIST t10k IDX files "
                   "(default $OPTCERT_DATASETS/mnist or ../shared/datasets/mnist)")
    p.add_argument("--train", default="0-7999", help="training images of the test split (default 0-7999)")
    p.add_argument("--evaluate", default="8000-9999", help="evaluation images (default 8000-9999)")
    p.add_argument("--out", type=Path, default=Path("."), help="folder for NAME.onnx and NAME.json (default .)")
    p.add_argument("--images-out", type=Path, help="also write the evaluation images as .npz for `optcert gap`")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--verbose", "-v", action="store_true", help="print the loss after every epoch")


def check_outputs(args) -> None:
    """Every path this command will write, checked before any training (exit 3)."""
    from optcert.outputs import output_dir, output_file

    output_dir(args.out, "--out")
    if args.images_out is not None:
        output_file(args.images_out, "--images-out")


def run(args) -> int:
    from dataclasses import replace

    import numpy as np

    from optcert.cli.common import set_threads
    from optcert.options import parse_choice
    from optcert.training.config import Regime, default_config
    from optcert.training.data import Partition, load_mnist, write_images
    from optcert.training.loop import export, train
    from optcert.training.models import Architecture

    check_outputs(args)
    set_threads(args.threads)
    regime = parse_choice(Regime, args.regime, "--regime")
    overrides = {k: getattr(args, k) for k in ("sigma", "batch", "lr") if getattr(args, k) is not None}
    config = default_config(regime, Architecture.parse(args.arch), args.eps, args.epochs, args.seed,
                            train=Partition.parse(args.train), evaluate=Partition.parse(args.evaluate))
    config = replace(config, **overrides)
    trained = train(config, args.data, log=print if args.verbose else None)
    onnx_path, card_path = export(trained, args.out)
    card = trained.card
    print(f"{card.name}: clean accuracy {card.clean_accuracy:.4f}, PGD accuracy {card.pgd['accuracy']:.4f} "
          f"({card.pgd['norm']} eps {card.pgd['eps']:g}) on {card.data['evaluate']}; trained on {card.data['train']} "
          f"in {card.training_seconds:.1f} s\nwrote {onnx_path}\nwrote {card_path}")
    if args.images_out:
        x, y = load_mnist(args.data, config.evaluate, dtype=np.float64)
        print(f"wrote {write_images(args.images_out, x, y, config.evaluate)}")
    return 0
