"""`optcert bench`: the solver matrix (`solver_matrix.py`) on a fixed instance set, written as a
CSV, a markdown table and Dolan–Moré performance profiles (`profiles.py`).

Instances: VNN-LIB files of one network (`optcert bench NET PROP…`), a VNN-COMP instances.csv
(`--instances FILE [--limit N]`), or L∞ robustness (`NET --image F --indices 0,1 --eps 0.01,0.02
[--targets 3,5]`). `--rows worst` (the default) keeps, per property, the violation clause whose
CROWN-style bound (`--bounds`) is lowest; `--rows all` keeps every clause (every target).
`--out DIR` writes matrix.csv, matrix.md and profile.png; `--export-dir DIR` the lowered problems
(MPS, CBF, SDPA); `--store DB` records every finished cell in a results store (key: network
hash, property id, method "<backend>:<lowering>", options with the clause and the settings), and
a rerun with the same store reuses what is there. Unavailable cells are not stored.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optcert.cli.common import positive_float, positive_int
from optcert.cli.stdout import emit
from optcert.errors import UsageError

NAME = "bench"
HELP = "solver matrix: every (lowering, backend) pair on fixed instances, timed"


# ---- command line --------------------------------------------------------------------------
def _numbers(kind):
    def parse(text: str):
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    return parse


def registry_help() -> dict[str, str]:
    """Help texts of --forms, --backends, --bounds and --rows from the registries the matrix reads."""
    import solvers
    from optcert.benchmarking.instances import RowChoice
    from optcert.benchmarking.solver_matrix import Lowering
    from optcert.solve.progressive import Tightening

    lowerings = ",".join(m.value for m in Lowering)
    return {"forms": f"lowerings, from {lowerings} (default {lowerings})",
            "backends": f"solvers, from {', '.join(solvers.names())} (default: every one)",
            "bounds": f"intermediate bounds: {', '.join(t.value for t in Tightening)} (default crown)",
            "rows": f"{' or '.join(r.value for r in RowChoice)}: each property's lowest-bound clause, or every clause "
                    "(default worst)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `bench` arguments (module doc)."""
    helps = registry_help()
    p.add_argument("network", nargs="?", type=Path, help="ONNX file (omit with --instances)")
    p.add_argument("properties", nargs="*", type=Path, help="VNN-LIB files (or use --image/--eps)")
    p.add_argument("--instances", type=Path, help="VNN-COMP instances.csv (onnx, vnnlib, timeout)")
    p.add_argument("--limit", type=positive_int, help="only the first N rows of --instances")
    p.add_argument("--image", type=Path, help=".npy/.npz images for L-inf robustness")
    p.add_argument("--indices", type=_numbers(int), default=[0], help="image indices, e.g. 0,1,2 (default 0)")
    p.add_argument("--eps", type=_numbers(float), help="L-inf radii, e.g. 0.01,0.02")
    p.add_argument("--label", type=int, help="true class (default: the file's labels)")
    p.add_argument("--targets", type=_numbers(int), help="target classes (default: all others)")
    p.add_argument("--valid-range", type=_numbers(float), default=[0.0, 1.0], help="input range (default 0,1)")
    p.add_argument("--input-shape", type=_numbers(int), help="input shape for torch models, e.g. 1,28,28")
    p.add_argument("--rows", default="worst", help=helps["rows"])
    p.add_argument("--forms", help=helps["forms"])
    p.add_argument("--backends", help=helps["backends"])
    p.add_argument("--timeout", type=positive_float, default=60.0, help="seconds per solve (default 60)")
    p.add_argument("--bounds", default="crown", help=helps["bounds"])
    p.add_argument("--threads", type=positive_int, default=1, help="threads per solver and for torch (default 1)")
    p.add_argument("--max-ipm-psd", type=positive_int, default=100, help="largest PSD block for clarabel/mosek (100)")
    p.add_argument("--out", type=Path, help="write matrix.csv, matrix.md and profile.png here")
    p.add_argument("--export-dir", type=Path, help="write the lowered problems (MPS, CBF, SDPA) here")
    p.add_argument("--store", type=Path, help="SQLite results store: record each cell, reuse stored ones")


def select_instances(args, bounds) -> list:
    """The instances the arguments describe (module doc); UsageError when they conflict."""
    from optcert.benchmarking.instances import RowChoice, csv_instances, robustness_instances, vnnlib_instances
    from optcert.options import parse_choice
    from optcert.spec.problem import check_valid_range

    choice = parse_choice(RowChoice, args.rows, "--rows")
    if args.instances is not None:
        if args.network or args.properties or args.image:
            raise UsageError("--instances replaces NETWORK, PROPERTY and --image")
        return csv_instances(args.instances, args.limit, choice, bounds)
    if args.network is None or bool(args.properties) == (args.image is not None):
        raise UsageError("bench needs NETWORK with VNN-LIB properties or with --image/--eps, or --instances")
    if args.properties:
        return vnnlib_instances(args.network, args.properties, choice, bounds, args.input_shape)
    if not args.eps or len(args.valid_range) != 2:
        raise UsageError("--image needs --eps (and --valid-range LO,HI)")
    check_valid_range(args.valid_range)
    return robustness_instances(args.network, args.image, args.indices, args.eps, args.label, args.targets,
                                tuple(args.valid_range), choice, bounds, args.input_shape)


def run(args) -> int:
    """Run the matrix the arguments describe; print the report, write the files asked for."""
    import solvers
    from optcert.benchmarking.matrix_report import StoreMemo, markdown_report, write_report
    from optcert.benchmarking.solver_matrix import Cell, Lowering, MatrixSettings, pairs, run_matrix
    from optcert.options import parse_choice
    from optcert.progress import progress
    from optcert.solve.progressive import Tightening
    from optcert.threads import limit_threads

    bounds = parse_choice(Tightening, args.bounds, "--bounds")
    settings = MatrixSettings(args.timeout, bounds, args.threads, args.max_ipm_psd)
    forms = args.forms or ",".join(m.value for m in Lowering)
    lowerings = [parse_choice(Lowering, f.strip(), "--forms") for f in forms.split(",") if f.strip()]
    todo = pairs(lowerings, [b.strip() for b in args.backends.split(",")] if args.backends else solvers.names())
    check_outputs(args)
    limit_threads(settings.threads)
    instances = select_instances(args, bounds)
    store = None
    if args.store is not None:
        from optcert.sweeps.store import ResultStore

        store = ResultStore(args.store)
    try:
        with progress(f"solver matrix: {len(instances)} instance(s) x {len(todo)} pair(s)") as update:
            def report(cell: Cell) -> None:
                update(f"{cell.instance} {cell.pair}: {cell.label()[:60]}")
                print(f"  {cell.instance}  {cell.pair:20s} {cell.label()[:48]:48s} {cell.seconds:7.2f} s",
                      file=sys.stderr)
            memo = StoreMemo(store, settings) if store is not None else None
            cells = run_matrix(instances, todo, settings, memo, args.export_dir, report)
    finally:
        if store is not None:
            store.close()
    emit(markdown_report(cells))
    if args.out is not None:
        for path in write_report(cells, args.out):
            emit(str(path))
    return 0


def check_outputs(args) -> None:
    """--out, --export-dir and --store, checked before any work (exit 3)."""
    from optcert.outputs import output_dir, output_file

    for flag, path in (("--out", args.out), ("--export-dir", args.export_dir)):
        if path is not None:
            output_dir(path, flag)
    if args.store is not None:
        if not args.store.is_dir():
            output_dir(args.store.parent, "--store's folder")
        output_file(args.store, "--store")
