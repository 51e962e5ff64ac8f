"""`optcert check RESULT.json NET [PROP | --image F --eps E]`: re-verify a stored result without any
solver (optcert.checking). Prints VALID, INVALID with the first failing step, or UNCHECKABLE;
exit 0, 10 or 11 (errors.EXIT_CODES)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from optcert.cli.common import build_problem, problem_arguments
from optcert.cli.stdout import emit

NAME = "check"
HELP = "re-verify a result's verdict and bounds from its stored evidence, without any solver"
DESCRIPTION = (HELP + ". The property is given as for `verify` (a VNN-LIB file, or --image/--eps). A FALSIFIED "
               "counterexample is re-evaluated in float64; a bound is recomputed from its stored multipliers "
               "(CROWN / alpha-CROWN / LP duals, SDP multipliers, branch-and-bound leaves) in outward-rounded "
               "arithmetic. Exit 0 VALID, 10 INVALID, 11 UNCHECKABLE (a MILP proof rests on its solver).")

EXIT = {"valid": 0, "invalid": 10, "uncheckable": 11}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result", type=Path, help="a result written by `verify --json` (or `run`)")
    p.add_argument("network", help="the network the result is about (ONNX, or .pt with --input-shape)")
    p.add_argument("property", nargs="?", help="its VNN-LIB property (or --image/--eps as for verify)")
    problem_arguments(p)
    p.add_argument("--verbose", "-v", action="store_true", help="print every step, not only the summary")
    p.add_argument("--report", type=Path, help="write the check report as JSON")


def read_result(path: Path):
    """The Result stored at `path` (UnreadableFileError naming it when it is not one)."""
    from optcert.errors import UnreadableFileError
    from optcert.result import Result

    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory, not a result file")
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such result file")
    try:
        return Result.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UnreadableFileError(f"{path}: not an optcert result ({type(err).__name__}: {err})") from None


def run(args) -> int:
    from optcert.checking.check import check_result
    from optcert.outputs import output_file, write_text

    if args.report is not None:
        output_file(args.report, "--report")
    result = read_result(args.result)
    problem = build_problem(args)
    report = check_result(result, problem)
    lines = [f"{report.summary()}  [{result.verdict.value} by {result.engine}]"]
    if args.verbose:
        lines += [f"  {s.outcome.value:7}  {s.name}: {s.detail}" for s in report.steps]
    emit("\n".join(lines))
    if args.report is not None:
        write_text(args.report, json.dumps(report.to_dict(), indent=2))
    return EXIT[report.status.value]
