"""`optcert verify NET [PROP | --image F --eps E]`: one engine on one property → verdict."""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.cli.common import build_problem, problem_arguments, set_threads

NAME = "verify"


def add_subcommand(sub) -> None:
    from optcert.engines.registry import DEFAULT_ENGINE, ENGINES

    v = sub.add_parser(NAME, help="verify a property of a network")
    v.add_argument("network", help="ONNX file (or .pt/.pth torch module with --input-shape)")
    v.add_argument("property", nargs="?", help="VNN-LIB file (or use --image/--eps for robustness)")
    v.add_argument("--engine", default=DEFAULT_ENGINE.value,
                   help=f"one of: {', '.join(e.value for e in ENGINES)} (default {DEFAULT_ENGINE.value})")
    v.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    v.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="engine option, repeatable (see `optcert engines`)")
    v.add_argument("--bounds", help="intermediate bounds for the lp/milp engines: ibp, crown, alpha-crown, "
                   "lp-all, milp (same as -o bounds=...)")
    v.add_argument("--rank", type=int, help="starting rank of the bm engine (same as -o rank=...)")
    v.add_argument("--hidden-boxes", action=argparse.BooleanOptionalAction, default=None,
                   help="quadratic boxes on hidden layers for the sdp/bm engines (default on)")
    v.add_argument("--json", type=Path, help="write the full result as JSON")
    v.add_argument("--vnncomp-result", type=Path, help="write a VNN-COMP result file")
    problem_arguments(v)
    v.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    v.add_argument("--quiet", "-q", action="store_true", help="print only the verdict")


def run(args) -> int:
    from optcert.options import parse_pairs
    from optcert.progress import progress
    from optcert.verify import verify

    problem = build_problem(args)
    set_threads(args.threads)
    with progress(f"verifying {problem.name} with {args.engine}"):
        options = parse_pairs(args.option)
        for flag in ("bounds", "rank", "hidden_boxes"):
            if getattr(args, flag) is not None:
                options[flag] = getattr(args, flag)
        result = verify(problem, args.engine, args.timeout, options)
    if args.json:
        args.json.write_text(result.to_json())
    if args.vnncomp_result:
        result.write_vnncomp(args.vnncomp_result)
    print(summary(result) if not args.quiet else result.verdict.value)
    return 0


def summary(result) -> str:
    """Two or three lines: verdict, bounds and time; reason; counterexample (first values)."""
    lines = [f"{result.verdict.value.upper()}  {result.problem}  engine={result.engine}  "
             f"bound={result.bound:.6g}  upper={result.upper:.6g}  time={result.seconds:.2f}s",
             f"  reason: {result.reason}"]
    if result.counterexample is not None:
        x = ", ".join(f"{v:.6g}" for v in result.counterexample.x[:8])
        more = " ..." if len(result.counterexample.x) > 8 else ""
        lines.append(f"  counterexample x = [{x}{more}]")
    return "\n".join(lines)
