"""Arguments and helpers shared by subcommands: value types that reject bad input as usage errors
(exit 2), the property arguments (`--image/--eps/...`), building the `VerificationProblem` they
describe, output-path checks, and the thread limit. Nothing heavy is imported at module level."""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.errors import UsageError

TORCH_SUFFIXES = (".pt", ".pth")


# ---- argument types (argparse turns ArgumentTypeError into one line and exit 2) ----------------
def positive_float(text: str) -> float:
    """A number of seconds (or a scale) > 0; inf allowed."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28")
    return shape


def parse_range(text: str) -> tuple[float, float]:
    """"LO,HI" as two numbers; whether they make a valid range is the spec's check (exit 6)."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 0,1") from None
    return lo, hi


# ---- arguments every verifying subcommand shares ----------------------------------------------
def timeout_argument(p: argparse.ArgumentParser, default: float, what: str = "seconds") -> None:
    p.add_argument("--timeout", type=positive_float, default=default, help=f"{what} (default {default:g})")


def threads_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=1, help="torch and BLAS threads (default 1)")


def problem_arguments(p: argparse.ArgumentParser) -> None:
    """The robustness-problem and torch-model arguments `build_problem` reads."""
    p.add_argument("--image", type=Path, help=".npy/.npz image(s) for L-inf robustness (with --eps)")
    p.add_argument("--index", type=nonnegative_int, help="which image of the file (default 0)")
    p.add_argument("--label", type=int, help="true class (default: the file's label)")
    p.add_argument("--eps", type=float, help="L-inf radius for robustness")
    p.add_argument("--valid-range", type=parse_range,
                   help="input range LO,HI; the image must lie inside it (default 0,1)")
    p.add_argument("--input-shape", type=parse_shape, help="input shape for torch models, e.g. 1,28,28")


def check_problem_arguments(args) -> None:
    """Usage errors of the property arguments, found before any file is read."""
    if getattr(args, "property", None) and args.image is not None:
        raise UsageError("give either a VNN-LIB property or --image/--eps, not both")
    if not getattr(args, "property", None):
        if args.image is None:
            raise UsageError(f"{args.command} needs a property: a VNN-LIB file, or --image FILE --eps EPS")
        if args.eps is None:
            raise UsageError("--image needs --eps (the L-inf radius)")
    else:
        given = [flag for flag, value in (("--eps", args.eps), ("--index", args.index), ("--label", args.label),
                                          ("--valid-range", args.valid_range)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} belong(s) to --image robustness; a VNN-LIB property states "
                             "its own region")
    network = Path(args.network)
    if network.suffix.lower() in TORCH_SUFFIXES and args.input_shape is None:
        raise UsageError(f"{network}: a PyTorch model needs its input shape: pass --input-shape (e.g. 1,28,28)")


def build_problem(args):
    """The VerificationProblem of a VNN-LIB property or of `--image/--eps` robustness, with the
    files it was read from in `meta["inputs"]` (for the result's provenance)."""
    from optcert.ir.load import load_network
    from optcert.spec.images import pick_image
    from optcert.spec.problem import robustness_problem
    from optcert.spec.vnnlib import read_vnnlib

    check_problem_arguments(args)
    if args.valid_range is not None:
        from optcert.spec.problem import check_valid_range

        check_valid_range(args.valid_range)
    net = load_network(args.network, args.input_shape)
    if args.property:
        problem = read_vnnlib(args.property).problem(
            net, name=f"{Path(args.network).stem}:{Path(args.property).stem}")
        problem.meta["inputs"] = {"network": str(args.network), "property": str(args.property)}
        return problem
    index = args.index or 0
    image, label = pick_image(args.image, index, args.label, net.n_inputs)
    problem = robustness_problem(net, image, label, args.eps, args.valid_range or (0.0, 1.0),
                                 name=f"{Path(args.network).stem}:{args.image.stem}[{index}]@{args.eps:g}")
    problem.meta["inputs"] = {"network": str(args.network), "images": str(args.image)}
    return problem


def command_line(args) -> str | None:
    """The command as typed (recorded in provenance), when `main` saw it."""
    return getattr(args, "command_line", None)


def set_threads(n: int) -> None:
    """Limit torch and BLAS to `n` threads (UsageError when n < 1)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"--threads must be at least 1, got {n}")
    from optcert.threads import limit_threads

    limit_threads(n)


# ---- sweeps (gap, run) ------------------------------------------------------------------------
def sweep_arguments(p: argparse.ArgumentParser) -> None:
    """Executor, memory and progress arguments of the commands that run a sweep."""
    p.add_argument("--dask", action="store_true", help="run on a dask LocalCluster (default: serial)")
    p.add_argument("--workers", type=positive_int, help="LocalCluster workers (implies --dask; default 2)")
    p.add_argument("--scheduler", help="address of an existing dask scheduler (implies --dask)")
    p.add_argument("--memory-mb", type=positive_int, help="memory cap per run in MB")
    p.add_argument("--no-progress", action="store_true", help="no progress display")


def sweep_settings(args):
    """SweepSettings from --dask / --workers / --scheduler / --no-progress."""
    from optcert.sweeps.run import Executor, SweepSettings

    dask = args.dask or args.workers is not None or args.scheduler is not None
    return SweepSettings(executor=Executor.DASK if dask else Executor.SERIAL, workers=args.workers or 2,
                         scheduler=args.scheduler, progress=not args.no_progress)
