"""`optcert gap`: run the relaxation-gap study (or, with `--distortion`, the minimum-distortion
bisection) as a sweep into a results store, then write tables and plots from the store.

    optcert gap NET.onnx --images imgs.npz --eps 0.02,0.03 --methods cheap --store gap.sqlite --out report/
    optcert gap NET.onnx --vnnlib a.vnnlib b.vnnlib --methods pgd,crown,lp,milp
    optcert gap NET.onnx --images imgs.npz --distortion --eps-max 0.3 --steps 8 --methods ibp,crown,pgd
    optcert gap --report-only --store gap.sqlite --out report/ --anchors anchors_table1.csv
"""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.cli.common import positive_float, positive_int, sweep_arguments, sweep_settings
from optcert.cli.stdout import emit
from optcert.errors import InvalidOptionError, InvalidSpecError, UnreadableFileError, UsageError

NAME = "gap"
HELP = "relaxation-gap study / minimum distortion, as a sweep into a results store"


def methods_help() -> str:
    """`--methods` help from the study's method registry."""
    from optcert.study.gap import CHEAP, Method

    return (f"{', '.join(m.value for m in Method)}, 'cheap' ({', '.join(m.value for m in CHEAP)}) or 'all' "
            "(default cheap)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="*", help="ONNX networks (with --report-only: only report these files)")
    p.add_argument("--images", type=Path, help=".npy/.npz images for L∞ robustness properties")
    p.add_argument("--indices", default="", help="image indices, e.g. 0-29 or 0,3,5 (default: every image)")
    p.add_argument("--eps", default="", help="comma-separated L∞ radii, e.g. 0.02,0.03")
    p.add_argument("--targets", default="all", help="'all' (one property per image) or target classes, e.g. 3,5")
    p.add_argument("--vnnlib", type=Path, nargs="+", default=[], help="VNN-LIB properties instead of --images")
    p.add_argument("--methods", default="cheap", help=methods_help())
    p.add_argument("--option", "-o", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="method option, repeatable, e.g. -o lp.backend=highs -o milp.neuron_time_limit=5")
    p.add_argument("--timeout", type=positive_float, default=60.0,
                   help="seconds per run (per bisection step) (default 60)")
    p.add_argument("--store", type=Path, default=Path("gap.sqlite"), help="results store (default gap.sqlite)")
    p.add_argument("--out", type=Path, default=Path("gap-report"), help="folder for tables and plots")
    p.add_argument("--anchors", type=Path, help="Salman et al. Table 1 anchors CSV to print beside ours")
    p.add_argument("--plots", default="png,pdf", help="plot formats: png, pdf, or 'none' (default png,pdf)")
    p.add_argument("--report-only", action="store_true", help="make tables and plots from the store, run nothing")
    p.add_argument("--distortion", action="store_true", help="minimum distortion by bisection on eps instead")
    p.add_argument("--eps-max", type=positive_float, default=0.3, help="bisection range [0, eps-max] (default 0.3)")
    p.add_argument("--steps", type=positive_int, default=8, help="bisection halvings (default 8)")
    sweep_arguments(p)


def check_outputs(args) -> None:
    """The store and the report folder, checked before any work (exit 3)."""
    from optcert.outputs import output_dir, output_file

    if not args.report_only:
        if not args.store.is_dir():
            output_dir(args.store.parent, "--store's folder")   # the store creates its folder too
        output_file(args.store, "--store")
    output_dir(args.out, "--out")


def check_usage(args) -> None:
    """Missing or conflicting arguments (exit 2), found before anything is created or read."""
    if args.report_only:
        return
    if not args.networks:
        raise UsageError("gap needs at least one network (or --report-only)")
    if bool(args.vnnlib) == bool(args.images):
        raise UsageError("gap needs either --images (with --eps) or --vnnlib files")
    if args.images and not args.distortion:
        parse_floats(args.eps, "--eps")


def run(args) -> int:
    check_usage(args)
    check_outputs(args)
    if not args.report_only:
        summary = _sweep(args)
        emit(f"sweep: {summary.total} runs, {summary.skipped} already stored, {summary.done} done, "
              f"{summary.failed} failed, {summary.timed_out} timed out, {summary.seconds:.1f} s")
    for path in write_report(args.store, args.out, args.anchors, args.plots, [Path(n).name for n in args.networks]):
        emit(f"wrote {path}")
    return 0


def _sweep(args):
    from dataclasses import replace

    from optcert.options import parse_pairs
    from optcert.study.distortion import Bisection, distortion_tasks
    from optcert.study.gap import gap_tasks, parse_methods, split_overrides
    from optcert.sweeps.run import run_sweep
    from optcert.sweeps.store import ResultStore

    methods = parse_methods(args.methods)
    overrides = split_overrides(parse_pairs(args.option))
    props = _properties(args)
    if args.distortion:
        tasks = distortion_tasks(props, methods, Bisection(args.eps_max, args.steps, args.timeout), overrides)
    else:
        tasks = gap_tasks(props, methods, args.timeout, overrides)
    if args.memory_mb is not None:
        tasks = [replace(t, memory_mb=args.memory_mb) for t in tasks]
    with ResultStore(args.store) as store:
        return run_sweep(tasks, store, sweep_settings(args))


def _properties(args) -> list:
    from optcert.spec.images import load_images
    from optcert.study.gap import VnnlibProperty, linf_properties

    if not args.networks:
        raise UsageError("gap needs at least one network (or --report-only)")
    if bool(args.vnnlib) == bool(args.images):
        raise UsageError("gap needs either --images (with --eps) or --vnnlib files")
    if args.vnnlib:
        if args.distortion:
            raise UsageError("--distortion needs --images (it bisects the L∞ radius)")
        return [VnnlibProperty(str(n), str(v)) for n in args.networks for v in args.vnnlib]
    eps = [args.eps_max] if args.distortion else parse_floats(args.eps, "--eps")
    images = load_images(args.images)[0]
    count = images.shape[0]
    indices = parse_indices(args.indices, count)
    _check_images(images, indices, args.images)
    targets = [None] if args.targets.strip().lower() == "all" else parse_indices(args.targets, None, "--targets")
    return linf_properties([str(n) for n in args.networks], str(args.images), indices, eps, targets)


def _check_images(images, indices: list[int], path: Path) -> None:
    """Every chosen image is finite and inside the pixel range the study uses (exit 6 otherwise),
    so no property is built around an image its region would not contain."""
    from optcert.spec.problem import check_image
    from optcert.study.gap import LinfProperty

    valid: tuple[float, float] = LinfProperty.__dataclass_fields__["valid"].default  # type: ignore[assignment]
    for i in indices:
        if not 0 <= i < images.shape[0]:
            raise InvalidSpecError(f"{path}: image index {i} out of range (0..{images.shape[0] - 1})")
        check_image(images[i], valid, f"{path}: image {i}:")


def parse_floats(text: str, flag: str) -> list[float]:
    """"0.02,0.03" → [0.02, 0.03]; InvalidOptionError naming `flag` if empty or malformed."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InvalidOptionError(f"{flag}: {text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise UsageError(f"{flag} is required (e.g. {flag} 0.02,0.03)")
    return values


def parse_indices(text: str, count: int | None, flag: str = "--indices") -> list[int]:
    """"0-4,7" → [0, 1, 2, 3, 4, 7]; empty → range(count). InvalidOptionError when malformed."""
    if not text.strip():
        if count is None:
            raise InvalidOptionError(f"{flag} is empty")
        return list(range(count))
    out: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise InvalidOptionError(f"{flag}: {text!r} is not a list like 0-4,7") from None
    return out


def write_report(store_path: Path, out: Path, anchors: Path | None, plots: str,
                 networks: list[str] | None = None) -> list[Path]:
    """gap.md (per-instance, aggregate, Table 1 and minimum-distortion tables), instances.csv and
    the plots, all from the store at `store_path`; the paths written. Prints the summary tables."""
    from optcert.study.distortion import distortion_table, load_distortions
    from optcert.study.plots import make_plots, parse_formats
    from optcert.study.report import aggregate_table, instance_table, load_instances, read_anchors, table1, write_csv
    from optcert.sweeps.store import ResultStore

    if not Path(store_path).is_file():
        raise UnreadableFileError(f"{store_path}: no results store here (run without --report-only first)")
    from optcert.outputs import PLOT_NOTE, plotting_available

    formats = () if plots.strip().lower() == "none" else parse_formats(plots)
    if formats and not plotting_available():
        import sys

        sys.stderr.write(f"optcert: {PLOT_NOTE}\n")
        formats = ()
    anchor_rows = read_anchors(anchors) if anchors else []
    with ResultStore(store_path) as store:
        instances, distortions = load_instances(store, networks), load_distortions(store, networks)
    sections = []
    if instances:
        sections += [("Adversarial error bounds (%), layout of Salman et al. Table 1"
                      + (" — ours / theirs" if anchor_rows else ""), table1(instances, anchor_rows)),
                     ("Per network, eps and method", aggregate_table(instances))]
    if distortions:
        sections.append(("Minimum distortion (bisection on eps)", distortion_table(distortions)))
    summary = "\n\n".join(f"## {title}\n{table}" for title, table in sections) or "(the store has no gap-study runs)"
    emit(summary)
    out.mkdir(parents=True, exist_ok=True)
    text = summary + (f"\n\n## Per instance\n{instance_table(instances)}" if instances else "")
    (out / "gap.md").write_text(text + "\n")
    written = [out / "gap.md"]
    if instances:
        written.append(write_csv(instances, out / "instances.csv"))
    return written + make_plots(instances, distortions, out, formats)
