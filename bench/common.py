"""Helpers shared by the benchmark scripts: shared-benchmark paths, instance lists, table output.

Benchmarks are run by hand (`python bench/<script>.py`), never imported by tests. Each script
prints a table and writes it to bench/results/<name>.md so the figures are recorded.
"""
from __future__ import annotations

import csv
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(os.environ.get("OPTCERT_BENCHMARKS", ROOT.parent / "shared" / "benchmarks"))
RESULTS = Path(__file__).parent / "results"


def append_row(path: Path, fields: list[str], row: dict) -> None:
    """Append one finished record to a CSV (header first when the file is new): runs are resumable."""
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def instances(family: str) -> list[dict]:
    return list(csv.DictReader(open(BENCHMARKS / family / "verdicts.csv")))


def markdown_table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    import numpy
    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "-"
    return (f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
            f"numpy {numpy.__version__} · torch {tv} · {time.strftime('%Y-%m-%d %H:%M')}")


def record(name: str, text: str) -> Path:
    """Print `text` and write it to bench/results/<name>.md."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text + "\n")
    print(text)
    return path
