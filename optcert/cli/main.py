"""The `optcert` command line: build the parser from the subcommand modules and dispatch.

Each subcommand module exposes `NAME`, `add_subcommand(sub)` (adds its parser) and
`run(args) -> int` (exit code; raises OptcertError on bad input). Modules import their heavy
dependencies inside `run`, so `--help` stays fast.

Exit codes: 0 when the command ran (whatever the verdict), 2 for a usage error, and the typed
error's `exit_code` otherwise (3 unreadable file, 4 invalid model, 5 unsupported op, 6 invalid
spec, 7 invalid option, 8 backend unavailable, 9 lowering error), 1 for an internal error,
130 when interrupted. Errors print one line on stderr; `--debug` shows the traceback.
"""
from __future__ import annotations

import argparse
import sys

from optcert.cli import bench, demo, engines, export, gap, info, solvers, sweep_status, train, verify, vnncomp
from optcert.errors import OptcertError

SUBCOMMANDS = (verify, info, export, solvers, engines, demo, gap, vnncomp, sweep_status, bench, train)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="optcert", description="Exact certification and relaxation gaps for ReLU networks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in SUBCOMMANDS:
        module.add_subcommand(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {m.NAME: m.run for m in SUBCOMMANDS}[args.command](args)
    except OptcertError as err:
        if args.debug:
            raise
        sys.stderr.write(f"optcert: error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("optcert: interrupted\n")
        return 130
    except Exception as err:  # a bug: one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"optcert: internal error: {type(err).__name__}: {err} (rerun with --debug)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
