"""Arguments and helpers shared by subcommands: the property arguments (`--image/--eps/...`),
building the `VerificationProblem` they describe, and the thread limit."""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.errors import InvalidOptionError


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28") from None


def parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 0,1") from None
    return lo, hi


def problem_arguments(p: argparse.ArgumentParser) -> None:
    """The robustness-problem and torch-model arguments `build_problem` reads."""
    p.add_argument("--image", type=Path, help=".npy/.npz image(s) for L-inf robustness")
    p.add_argument("--index", type=int, default=0, help="which image of the file (default 0)")
    p.add_argument("--label", type=int, help="true class (default: the file's label)")
    p.add_argument("--eps", type=float, help="L-inf radius for robustness")
    p.add_argument("--valid-range", type=parse_range, default=(0.0, 1.0), help="input range, default 0,1")
    p.add_argument("--input-shape", type=parse_shape, help="input shape for torch models, e.g. 1,28,28")


def build_problem(args):
    """The VerificationProblem of a VNN-LIB property or of `--image/--eps` robustness."""
    from optcert.ir.load import load_network
    from optcert.spec.images import pick_image
    from optcert.spec.problem import robustness_problem
    from optcert.spec.vnnlib import read_vnnlib

    net = load_network(args.network, args.input_shape)
    if args.property and args.image:
        raise InvalidOptionError("give either a VNN-LIB property or --image/--eps, not both")
    if args.property:
        return read_vnnlib(args.property).problem(net, name=f"{Path(args.network).stem}:{Path(args.property).stem}")
    if args.image is None or args.eps is None:
        raise InvalidOptionError(f"{args.command} needs a VNN-LIB property, or --image and --eps")
    image, label = pick_image(args.image, args.index, args.label, net.n_inputs)
    return robustness_problem(net, image, label, args.eps, args.valid_range,
                              name=f"{Path(args.network).stem}:{args.image.stem}[{args.index}]@{args.eps:g}")


def set_threads(n: int) -> None:
    """Limit torch and BLAS to `n` threads (InvalidOptionError when n < 1)."""
    if n < 1:
        raise InvalidOptionError(f"--threads must be at least 1, got {n}")
    from optcert.threads import limit_threads

    limit_threads(n)
