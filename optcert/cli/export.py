"""`optcert export NET PROP --form milp|lp|sdp --format mps|lp|cbf|sdpa --out DIR`: lowered
problems written for external solvers (`benchmarking.export`)."""
from __future__ import annotations

from pathlib import Path

from optcert.cli.common import build_problem, problem_arguments, set_threads

NAME = "export"


def add_subcommand(sub) -> None:
    x = sub.add_parser(NAME, help="write the lowered MILP/LP problems for any solver")
    x.add_argument("network", help="ONNX file (or .pt/.pth torch module with --input-shape)")
    x.add_argument("property", nargs="?", help="VNN-LIB file (or use --image/--eps for robustness)")
    x.add_argument("--form", default="milp", help="milp (exact big-M, default) or lp (triangle relaxation)")
    x.add_argument("--format", default="mps", help="mps or lp (default mps)")
    x.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    x.add_argument("--bounds", default="crown", help="ibp, fastlin, crown or alpha-crown (default crown)")
    problem_arguments(x)


def run(args) -> int:
    from optcert.benchmarking.export import INDEX, export_problem, parse_form, parse_format
    from optcert.bounds import BoundMethod
    from optcert.options import parse_choice
    from optcert.progress import progress

    form = parse_form(args.form)
    fmt = parse_format(args.format)
    bounds = parse_choice(BoundMethod, args.bounds, "--bounds")
    problem = build_problem(args)
    set_threads(1)
    with progress(f"exporting {problem.name} as {form.value} {fmt.value}"):
        paths = export_problem(problem, form, fmt, args.out, bounds)
    for path in [*paths, args.out / INDEX]:
        print(path)
    return 0
