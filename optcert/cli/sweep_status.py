"""`optcert sweep-status STORE`: what a results store holds, counted per method and status."""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from optcert.cli.stdout import emit
from optcert.errors import UnreadableFileError

NAME = "sweep-status"
HELP = "count the runs of a results store per method and status"
_VERDICTS = ("proved", "falsified", "unknown")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="SQLite results store written by a sweep (gap, bench, run)")


def status_table(store) -> list[str]:
    """Lines of a table: per method, runs by status and DONE runs by verdict, and total seconds."""
    from optcert.sweeps.store import RunStatus

    counts: dict[str, Counter] = {}
    seconds: dict[str, float] = {}
    for record in store.records():
        row = counts.setdefault(record.key.method, Counter())
        row[record.status.value] += 1
        if record.status is RunStatus.DONE:
            row[record.verdict] += 1
        seconds[record.key.method] = seconds.get(record.key.method, 0.0) + record.seconds
    columns = [s.value for s in RunStatus] + list(_VERDICTS)
    width = max([len("method"), *map(len, counts)])
    lines = [f"{'method':<{width}}  " + "  ".join(f"{c:>9}" for c in columns) + f"  {'seconds':>9}"]
    for method in sorted(counts):
        cells = "  ".join(f"{counts[method][c]:>9}" for c in columns)
        lines.append(f"{method:<{width}}  {cells}  {seconds[method]:>9.1f}")
    total = sum(sum(counts[m][s.value] for s in RunStatus) for m in counts)
    lines.append(f"{total} run(s) in {len(counts)} method(s)")
    return lines


def run(args) -> int:
    """Print the status table of `args.store` (UnreadableFileError when it is missing or not a store)."""
    from optcert.sweeps.store import ResultStore

    if args.store.is_dir():
        raise UnreadableFileError(f"{args.store}: is a directory, not a results store")
    if not args.store.is_file():
        raise UnreadableFileError(f"{args.store}: no such results store")
    with ResultStore(args.store) as store:
        emit("\n".join(status_table(store)))
    return 0
