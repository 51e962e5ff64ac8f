"""What optcert writes: output files and directories (checked before any work, typed errors naming
the path) and markdown tables. Used by the CLI, the studies and the benchmarking reports alike.

`output_file` / `output_dir` are called by every command for each path it will write, *before*
it loads anything, so a bad path costs nothing and exits 3 with one line. The checks really open or
create (a file that was not there is removed again; a missing output directory is created, as the
command would), so they hold for root and on read-only mounts alike.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from optcert.errors import UnreadableFileError


def output_file(path: str | Path, what: str = "output file") -> Path:
    """`path` if a file can be written there (its directory exists and is writable; the path is
    not a directory); UnreadableFileError naming it otherwise. Nothing is left behind."""
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory, not a file ({what})")
    parent = path.parent
    if not parent.exists():
        raise UnreadableFileError(f"{path}: directory {parent} does not exist ({what})")
    if not parent.is_dir():
        raise UnreadableFileError(f"{path}: {parent} is not a directory ({what})")
    try:
        if path.exists():
            with path.open("ab"):
                pass
        else:
            with path.open("xb"):
                pass
            path.unlink()
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot write ({err.strerror or err}) ({what})") from None
    return path


def output_dir(path: str | Path, what: str = "output directory") -> Path:
    """`path`, created if needed, if files can be written in it; UnreadableFileError naming it
    otherwise (a file in the way, a parent that cannot be created, no write permission)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UnreadableFileError(f"{path}: is a file, not a directory ({what})")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot write in this directory ({err.strerror or err}) ({what})") \
            from None
    return path


def plotting_available() -> bool:
    """Whether matplotlib (the `plot` extra) is installed; plots are skipped, with a note, without it."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


PLOT_NOTE = "plots skipped: matplotlib is not installed (pip install 'optcert[plot]')"


def writable_dir(path: Path) -> Path:
    """`path`, created if needed; UnreadableFileError naming it when it cannot be written."""
    return output_dir(path)


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path`; UnreadableFileError naming it on failure."""
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot write ({err.strerror or err})") from None


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table; floats to 4 significant digits, None as '–'."""
    def cell(v):
        return "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])
