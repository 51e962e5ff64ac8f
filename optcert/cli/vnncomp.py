"""`optcert vnncomp NET PROP RESULT TIMEOUT`: the VNN-COMP entry point (`optcert.vnncomp`)."""
from __future__ import annotations

from pathlib import Path

from optcert.vnncomp import ENGINE

# ---- `optcert vnncomp` ------------------------------------------------------------------------------
NAME = "vnncomp"


def add_subcommand(sub) -> None:
    p = sub.add_parser(NAME, help="VNN-COMP entry point: one instance -> competition result file")
    p.add_argument("network", help="ONNX file")
    p.add_argument("property", help="VNN-LIB file")
    p.add_argument("result", type=Path, help="result file to write (sat / unsat / timeout / unknown / error)")
    p.add_argument("timeout", type=float, help="wall-clock budget in seconds, loading included")
    p.add_argument("--engine", default=ENGINE, help=f"engine (default {ENGINE})")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="engine option")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def run(args) -> int:
    import sys

    from optcert.options import parse_pairs
    from optcert.vnncomp import process_started, run_instance

    # a process started as `optcert vnncomp ...` counts its budget from its own start, as the
    # competition does; a call of main([...]) inside a longer-lived process counts from the call
    started = process_started() if NAME in sys.argv[1:3] else None
    result = run_instance(args.network, args.property, args.result, args.timeout,
                          parse_pairs(args.option), args.engine, args.threads, started=started)
    text = result.vnncomp_text()
    print(text.splitlines()[0] if text else result.verdict.value)
    return 0
