"""`optcert export NET PROP --form F --format T --out DIR`: lowered problems written for external
solvers (`benchmarking.export`). The forms, formats and bound methods offered are read from the
enums the exporter itself parses, so this help cannot drift from what it accepts."""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.cli.common import build_problem, problem_arguments, set_threads
from optcert.cli.stdout import emit

NAME = "export"
HELP = "write the lowered MILP / LP / SDP problems for any solver (MPS, LP, CBF, SDPA)"


def choices_help() -> tuple[str, str, str]:
    """(--form, --format, --bounds) help texts from the exporter's registries."""
    from optcert.benchmarking.export import ConicForm, ConicFormat, ExportFormat, FormKind
    from optcert.solve.progressive import Tightening

    forms = (f"{FormKind.MILP.value} (exact big-M, default), {FormKind.LP.value} (triangle relaxation) or "
             f"{ConicForm.SDP.value} (full SDP relaxation, one file per spec row)")
    formats = (f"{' or '.join(f.value for f in ExportFormat)} for {FormKind.MILP.value}/{FormKind.LP.value} "
               f"(default {ExportFormat.MPS.value}); {' or '.join(f.value for f in ConicFormat)} for "
               f"{ConicForm.SDP.value}")
    bounds = f"intermediate bounds: {', '.join(t.value for t in Tightening)} (default crown)"
    return forms, formats, bounds


def add_arguments(x: argparse.ArgumentParser) -> None:
    forms, formats, bounds = choices_help()
    x.add_argument("network", help="ONNX file (or .pt/.pth torch module with --input-shape)")
    x.add_argument("property", nargs="?", help="VNN-LIB file (or use --image/--eps for robustness)")
    x.add_argument("--form", default="milp", help=forms)
    x.add_argument("--format", help=formats)
    x.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    x.add_argument("--bounds", default="crown", help=bounds)
    problem_arguments(x)


def run(args) -> int:
    from optcert.benchmarking.export import INDEX, ConicForm, export_problem, parse_bounds, parse_form, parse_format
    from optcert.outputs import output_dir
    from optcert.progress import progress

    form = parse_form(args.form)
    fmt = parse_format(args.format or ("cbf" if form is ConicForm.SDP else "mps"))
    bounds = parse_bounds(args.bounds)
    output_dir(args.out, "--out")
    set_threads(1)
    problem = build_problem(args)
    with progress(f"exporting {problem.name} as {form.value} {fmt.value}"):
        paths = export_problem(problem, form, fmt, args.out, bounds)
    for path in [*paths, args.out / INDEX]:
        emit(str(path))
    return 0
