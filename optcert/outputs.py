"""What optcert writes: output directories and text files (typed errors naming the path) and
markdown tables. Used by the CLI, the studies and the benchmarking reports alike."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from optcert.errors import UnreadableFileError


def writable_dir(path: Path) -> Path:
    """`path`, created if needed; UnreadableFileError naming it when it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or err
        raise UnreadableFileError(f"{path}: cannot create the output directory ({reason})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UnreadableFileError(f"{path}: the output directory is not writable")
    return path


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path`; UnreadableFileError naming it on failure."""
    try:
        path.write_text(text)
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot write ({err.strerror or err})") from None


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table; floats to 4 significant digits, None as '–'."""
    def cell(v):
        return "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])
