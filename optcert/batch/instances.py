"""The instances of a batch run, read from a VNN-COMP style CSV.

Without a header (the competition's `instances.csv`): `onnx, vnnlib, timeout[, expected]` per line.
With a header row naming the columns (like the shared `verdicts.csv`): columns `onnx`, `vnnlib`,
`timeout` or `timeout_s`, and optionally `expected` (or `verdict`). Paths are relative to the CSV's
folder. An expected verdict is `unsat`/`proved`/`holds` (the property holds), `sat`/`falsified`/
`violated`, or `unknown`/empty (nobody knows). Every file is checked before anything runs.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from optcert.errors import UnreadableFileError

_EXPECTED = {"unsat": "proved", "proved": "proved", "holds": "proved", "sat": "falsified",
             "falsified": "falsified", "violated": "falsified", "unknown": None, "": None}


@dataclass(frozen=True)
class BatchInstance:
    """One row: a network, a property, its time limit in seconds and the known verdict (or None)."""

    name: str
    onnx: Path
    vnnlib: Path
    timeout: float
    expected: str | None
    line: int


def read_instances(path: str | Path, limit: int | None = None) -> list[BatchInstance]:
    """The first `limit` instances of the CSV at `path` (module doc); UnreadableFileError naming
    the file and line for anything malformed or missing."""
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory, not an instances CSV")
    try:
        rows = [(n, r) for n, r in enumerate(csv.reader(path.read_text().splitlines()), 1)
                if r and not r[0].lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableFileError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})") from None
    if not rows:
        raise UnreadableFileError(f"{path}: no instances")
    columns = _header(rows[0][1])
    if columns is not None:
        rows = rows[1:]
    out: list[BatchInstance] = []
    names: set[str] = set()
    for line, row in rows[:limit]:
        inst = _instance(path, line, row, columns)
        name = inst.name
        k = 1
        while name in names:
            k += 1
            name = f"{inst.name}_{k}"
        names.add(name)
        out.append(BatchInstance(name, inst.onnx, inst.vnnlib, inst.timeout, inst.expected, line))
    return out


def _header(row: list[str]) -> dict[str, int] | None:
    """Column positions when `row` is a header naming onnx and vnnlib, else None."""
    names = [c.strip().lower() for c in row]
    if "onnx" not in names or "vnnlib" not in names:
        return None
    pick = {"onnx": "onnx", "vnnlib": "vnnlib", "timeout": "timeout", "timeout_s": "timeout",
            "expected": "expected", "verdict": "expected"}
    columns: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in pick:
            columns.setdefault(pick[name], i)
    return columns


def _instance(path: Path, line: int, row: list[str], columns: dict[str, int] | None) -> BatchInstance:
    where = f"{path}:{line}"
    get = (lambda key, pos: row[columns[key]].strip() if key in columns and columns[key] < len(row) else "") \
        if columns is not None else (lambda key, pos: row[pos].strip() if pos < len(row) else "")
    onnx, vnnlib, timeout, expected = get("onnx", 0), get("vnnlib", 1), get("timeout", 2), get("expected", 3)
    if not onnx or not vnnlib:
        raise UnreadableFileError(f"{where}: every row needs an onnx and a vnnlib path")
    try:
        seconds = float(timeout)
    except ValueError:
        raise UnreadableFileError(f"{where}: timeout {timeout!r} is not a number of seconds") from None
    if not seconds > 0:
        raise UnreadableFileError(f"{where}: timeout must be positive, got {timeout}")
    if expected.lower() not in _EXPECTED:
        raise UnreadableFileError(f"{where}: expected verdict {expected!r} is not one of "
                                  f"{', '.join(k for k in _EXPECTED if k)}")
    files = []
    for text in (onnx, vnnlib):
        file = (path.parent / text) if not Path(text).is_absolute() else Path(text)
        if not file.is_file():
            kind = "is a directory" if file.is_dir() else "no such file"
            raise UnreadableFileError(f"{where}: {file}: {kind}")
        files.append(file)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{files[0].stem}__{files[1].stem}")
    return BatchInstance(name, files[0], files[1], seconds, _EXPECTED[expected.lower()], line)
