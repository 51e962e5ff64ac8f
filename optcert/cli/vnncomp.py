"""`optcert vnncomp NET PROP RESULT TIMEOUT`: the VNN-COMP entry point (`optcert.vnncomp`).

The result file is checked first (exit 3 when it cannot be written). After that, every failure
still leaves a result file: `error` for a bad timeout (exit 2), a bad input (its exit code) or an
internal error (exit 1)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from optcert.cli.common import positive_int
from optcert.cli.stdout import emit
from optcert.errors import OptcertError, UsageError

NAME = "vnncomp"
HELP = "VNN-COMP entry point: one instance -> competition result file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from optcert.vnncomp import ENGINE

    p.add_argument("network", help="ONNX file")
    p.add_argument("property", help="VNN-LIB file")
    p.add_argument("result", type=Path, help="result file to write (sat / unsat / timeout / unknown / error)")
    p.add_argument("timeout", type=float, help="wall-clock budget in seconds (> 0), loading included")
    p.add_argument("--engine", default=ENGINE, help=f"engine (default {ENGINE}; see `optcert engines`)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="engine option")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")


def run(args) -> int:
    import sys

    from optcert.outputs import output_file, write_text

    output_file(args.result, "result file")
    try:
        if not (args.timeout > 0 and math.isfinite(args.timeout)):
            raise UsageError(f"timeout must be a positive number of seconds, got {args.timeout:g}")
        from optcert.options import parse_pairs
        from optcert.vnncomp import process_started, run_instance

        # a process started as `optcert vnncomp ...` counts its budget from its own start, as the
        # competition does; a call of main([...]) inside a longer-lived process counts from the call
        started = process_started() if NAME in sys.argv[1:3] else None
        result = run_instance(args.network, args.property, args.result, args.timeout,
                              parse_pairs(args.option), args.engine, args.threads, started=started)
    except (OptcertError, Exception):
        write_text(args.result, "error\n")
        raise
    text = result.vnncomp_text()
    emit(text.splitlines()[0] if text else result.verdict.value)
    return 0
