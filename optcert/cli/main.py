"""The `optcert` command line: build the parser from the subcommand modules and dispatch.

Each subcommand module exposes `NAME`, `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int` (exit code; raises OptcertError on bad input), and imports nothing heavy at
module level. Only the chosen subcommand's arguments are built (they may read the registries:
engines, forms, formats, bound methods), so `optcert --help` imports none of them.

Exit codes (`optcert.errors.EXIT_CODES`, printed by `optcert --help`): 0 when the command ran
(whatever the verdict), 2 for a usage error, the typed error's `exit_code` otherwise, 1 for an
internal error, 130 when interrupted. Errors print one line on stderr; `--debug` shows the
traceback. While a command runs, standard output carries only optcert's own lines
(`optcert.cli.stdout`).
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from types import ModuleType

from optcert.cli import stdout
from optcert.errors import EXIT_CODES, OptcertError

COMMANDS = ("verify", "check", "run", "vnncomp", "info", "engines", "solvers", "export", "gap", "bench", "sweep-status",
            "demo", "train")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def module(command: str) -> ModuleType:
    """The module of subcommand `command` (`optcert.cli.<name>`)."""
    return importlib.import_module(f"optcert.cli.{command.replace('-', '_')}")


def _version() -> str:
    from optcert.version import __version__

    return f"optcert {__version__}"


def _epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return f"exit codes:\n{codes}\nerrors print one line on stderr; --debug shows the traceback"


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` gets its arguments (all of them when
    `argv` is None)."""
    p = _Parser(prog="optcert", description="Exact certification and relaxation gaps for ReLU networks.",
                epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version())
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for command in COMMANDS:
        m = module(command)
        if not hasattr(m, "add_arguments"):      # a subcommand that builds its own parser
            m.add_subcommand(sub)
            continue
        parser = sub.add_parser(command, help=m.HELP, description=getattr(m, "DESCRIPTION", m.HELP),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        if argv is None or command == chosen:
            m.add_arguments(parser)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command in `argv` (default: this process's command line); its exit code. A command
    with EXIT_AT_ONCE run from the process's own command line ends the process when done."""
    chosen: list[ModuleType] = []
    code = _main(list(sys.argv[1:] if argv is None else argv), chosen)
    if argv is None and chosen and getattr(chosen[0], "EXIT_AT_ONCE", False):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str], chosen: list[ModuleType]) -> int:
    """`main` on `argv`; appends the command's module to `chosen`."""
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as done:        # --help, --version (0) or a usage error (2), already printed
        return done.code if isinstance(done.code, int) else 2
    args.command_line = shlex.join(["optcert", *argv])
    try:
        chosen.append(module(args.command))
        with stdout.reserved():
            return chosen[0].run(args)
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
