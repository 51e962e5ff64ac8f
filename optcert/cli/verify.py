"""`optcert verify NET [PROP | --image F --eps E]`: one engine on one property → verdict.

Output paths (`--json`, `--vnncomp-result`) are checked before any work; the verdict is printed
before the files are written, so a file that fails to write never loses it."""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.cli.common import (
    build_problem,
    command_line,
    problem_arguments,
    set_threads,
    threads_argument,
    timeout_argument,
)
from optcert.cli.stdout import emit

NAME = "verify"
HELP = "verify a property of a network (PROVED / FALSIFIED / UNKNOWN)"


def engine_help() -> str:
    """`--engine`'s help, from the engine registry (names and the default)."""
    from optcert.engines.registry import DEFAULT_ENGINE, ENGINES

    return f"one of: {', '.join(e.value for e in ENGINES)} (default {DEFAULT_ENGINE.value}; see `optcert engines`)"


def bounds_help() -> str:
    """`--bounds`'s help, from the tightening levels the engines accept."""
    from optcert.solve.progressive import Tightening

    return (f"intermediate bounds for the lp/milp/sdp/bm engines: {', '.join(t.value for t in Tightening)} "
            "(same as -o bounds=...)")


def add_arguments(v: argparse.ArgumentParser) -> None:
    from optcert.engines.registry import DEFAULT_ENGINE

    v.add_argument("network", help="ONNX file (or .pt/.pth torch module with --input-shape)")
    v.add_argument("property", nargs="?", help="VNN-LIB file (or use --image/--eps for robustness)")
    v.add_argument("--engine", default=DEFAULT_ENGINE.value, help=engine_help())
    timeout_argument(v, 60.0, "wall-clock seconds for the engine")
    v.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="engine option, repeatable (see `optcert engines`)")
    v.add_argument("--bounds", help=bounds_help())
    v.add_argument("--rank", type=int, help="starting rank of the bm engine (same as -o rank=...)")
    v.add_argument("--hidden-boxes", action=argparse.BooleanOptionalAction, default=None,
                   help="quadratic boxes on hidden layers for the sdp/bm engines (default on)")
    v.add_argument("--json", type=Path, help="write the full result as JSON (with provenance and certificate)")
    v.add_argument("--vnncomp-result", type=Path, help="write a VNN-COMP result file")
    problem_arguments(v)
    threads_argument(v)
    v.add_argument("--quiet", "-q", action="store_true", help="print only the verdict")


def check_outputs(args) -> None:
    """Every path this command will write, checked before any work (exit 3)."""
    from optcert.outputs import output_file

    if args.json is not None:
        output_file(args.json, "--json")
    if args.vnncomp_result is not None:
        output_file(args.vnncomp_result, "--vnncomp-result")


def run(args) -> int:
    from optcert.engines.registry import engine_from, engine_options
    from optcert.options import parse_pairs
    from optcert.progress import progress

    check_outputs(args)
    engine = engine_from(args.engine)
    options = parse_pairs(args.option)
    for flag in ("bounds", "rank", "hidden_boxes"):
        if getattr(args, flag) is not None:
            options[flag] = getattr(args, flag)
    typed = engine_options(engine, options)      # an unknown or bad option fails now, before any work
    set_threads(args.threads)
    problem = build_problem(args)
    from optcert.verify import verify

    with progress(f"verifying {problem.name} with {engine.value}"):
        result = verify(problem, engine, args.timeout, typed, command=command_line(args))
    emit(summary(result) if not args.quiet else result.verdict.value)
    write_outputs(result, args.json, args.vnncomp_result)
    return 0


def write_outputs(result, json_path: Path | None, vnncomp_path: Path | None) -> None:
    """Write the result files asked for (UnreadableFileError naming the one that fails)."""
    from optcert.outputs import write_text

    if json_path is not None:
        write_text(json_path, result.to_json())
    if vnncomp_path is not None:
        write_text(vnncomp_path, result.vnncomp_text())


def summary(result) -> str:
    """Two to four lines: verdict, bounds and time; reason; where the bounds came from;
    counterexample (first values)."""
    flags = "  timed out" if result.timed_out else ""
    lines = [f"{result.verdict.value.upper()}  {result.problem}  engine={result.engine}  "
             f"bound={result.bound:.6g}  upper={result.upper:.6g}  time={result.seconds:.2f}s{flags}",
             f"  reason: {result.reason}"]
    sources = sorted(set(result.row_source) - {"none"})
    if sources and sources != [result.engine]:
        lines.append(f"  bounds from: {', '.join(sources)}")
    if result.counterexample is not None:
        x = ", ".join(f"{v:.6g}" for v in result.counterexample.x[:8])
        more = " ..." if len(result.counterexample.x) > 8 else ""
        lines.append(f"  counterexample x = [{x}{more}]")
    return "\n".join(lines)
