"""Standard output carries only what optcert means to print.

Solver libraries write banners and logs from C (HiGHS's "Running HiGHS ...", Gurobi's licence
lines, ...), which would end up inside `v=$(optcert verify ... -q)` or split a table. While a
command runs, `reserved()` points file descriptor 1 at standard error, so anything a library
writes goes there, and `emit` writes optcert's own lines to the real standard output (kept on a
duplicate descriptor). When `sys.stdout` is not descriptor 1 (e.g. captured by a test harness),
nothing is redirected and `emit` writes to `sys.stdout`.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import IO, Iterator

_out: IO[str] | None = None


def emit(text: str = "") -> None:
    """Print one line (or several) of optcert's output on standard output, flushed."""
    stream = _out or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _c_flush() -> None:
    """Flush C stdio buffers (a library's printf output still buffered goes where fd 1 points now)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to flush (not POSIX)
        pass


@contextlib.contextmanager
def reserved() -> Iterator[None]:
    """Run the block with fd 1 pointing at stderr and `emit` writing to the real stdout."""
    global _out
    try:
        real = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):
        real = False
    if not real or _out is not None:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    _out = os.fdopen(os.dup(saved), "w", buffering=1, encoding=sys.stdout.encoding, errors="replace")
    try:
        yield
    finally:
        sys.stdout.flush()
        _c_flush()
        _out.flush()
        _out.close()
        _out = None
        os.dup2(saved, 1)
        os.close(saved)
