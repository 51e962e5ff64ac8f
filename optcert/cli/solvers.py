"""`optcert solvers`: which solver backends are installed and licensed here."""
from __future__ import annotations

import argparse

from optcert.cli.stdout import emit

NAME = "solvers"
HELP = "list solver backends and whether they run here"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args) -> int:
    import solvers

    for name, status in solvers.available().items():
        mark = "yes" if status.available else "no "
        emit(f"  {mark}  {name:14s} {status.version:10s} {status.reason}")
    return 0
