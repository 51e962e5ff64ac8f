"""Progress of a sweep on stderr (rich): a bar with done / running / failed / timed out and an ETA.

Shown only when asked for and stderr is a terminal; otherwise every call is a no-op.
"""
from __future__ import annotations

import sys
from typing import Any

from optcert.sweeps.store import RunStatus


class SweepDisplay:
    """Context manager; `running(n)` sets the in-flight count, `finished(status)` advances the bar."""

    def __init__(self, pending: int, skipped: int, enabled: bool = True):
        self.pending, self.skipped = pending, skipped
        self.counts = {status: 0 for status in RunStatus}
        self.in_flight = 0
        self._progress: Any = None
        self._bar: Any = None
        self.enabled = enabled and sys.stderr.isatty() and pending > 0

    def __enter__(self) -> "SweepDisplay":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(),
                                      console=Console(stderr=True), transient=False)
            self._progress.start()
            self._bar = self._progress.add_task("sweep", total=self.pending, stats=self._stats())
        return self

    def _stats(self) -> str:
        c = self.counts
        text = (f"done {c[RunStatus.DONE]} · running {self.in_flight} · failed {c[RunStatus.FAILED]}"
                f" · timeout {c[RunStatus.TIMEOUT]}")
        return text + (f" · skipped {self.skipped}" if self.skipped else "")

    def _refresh(self, advance: int = 0) -> None:
        if self._progress is not None:
            self._progress.update(self._bar, advance=advance, stats=self._stats())

    def running(self, n: int) -> None:
        """Set how many tasks are in flight now."""
        self.in_flight = n
        self._refresh()

    def finished(self, status: RunStatus) -> None:
        """Count one finished task."""
        self.counts[status] += 1
        self._refresh(advance=1)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
