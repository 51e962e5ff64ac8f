"""`optcert solvers`: which solver backends are installed and licensed here."""
from __future__ import annotations

NAME = "solvers"


def add_subcommand(sub) -> None:
    sub.add_parser(NAME, help="list solver backends and whether they run here")


def run(args) -> int:
    import solvers

    for name, status in solvers.available().items():
        mark = "yes" if status.available else "no "
        print(f"  {mark}  {name:14s} {status.version:10s} {status.reason}")
    return 0
