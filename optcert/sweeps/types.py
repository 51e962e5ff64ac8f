"""Value types of a sweep: what a task is, what it returns, how a sweep runs and what it did.

Re-exported by `optcert.sweeps.run`; they live here so the executors (`sweep_runner`, `sweep_dask`)
can import them without importing the coordinator.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

from optcert.errors import InvalidOptionError
from optcert.sweeps.store import RunKey, RunStatus

_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class TaskOutput:
    """What a task function returns: the engine's verdict and bounds as reported (never re-judged)."""

    verdict: str               # Verdict.value: "proved" / "falsified" / "unknown"
    bound: float | None        # certified lower bound on the margin (exact value for exact methods)
    upper: float | None        # achieved upper value where known
    reason: str
    extra: Mapping[str, object] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Task:
    """One run: `function(*args) -> TaskOutput`, stored under `key`.

    `function` is "package.module:function", a top-level function importable in every worker.
    The run is killed `SweepSettings.grace` seconds (plus 10 %) after `timeout` and recorded
    TIMEOUT; with `memory_mb` it is killed (FAILED) when its process's resident set exceeds it.
    `labels` (optional, JSON data) go into the record's `extra` whatever the outcome."""

    key: RunKey
    function: str
    args: tuple
    timeout: float
    memory_mb: int | None = None
    labels: Mapping[str, object] = field(default_factory=dict, hash=False, compare=False)

    def check(self) -> None:
        """Raise InvalidOptionError naming this task when a field is malformed."""
        if not isinstance(self.key, RunKey):
            raise InvalidOptionError(f"task {self.function!r}: key must be a RunKey, got {type(self.key).__name__}")
        if not _FUNCTION.match(str(self.function)):
            raise InvalidOptionError(f"task {self.key}: function {self.function!r} is not 'package.module:function'")
        if not isinstance(self.args, tuple):
            raise InvalidOptionError(f"task {self.key}: args must be a tuple, got {type(self.args).__name__}")
        if not (isinstance(self.timeout, (int, float)) and math.isfinite(self.timeout) and self.timeout > 0):
            raise InvalidOptionError(f"task {self.key}: timeout must be a positive number, got {self.timeout!r}")
        if self.memory_mb is not None and not (isinstance(self.memory_mb, int) and self.memory_mb > 0):
            raise InvalidOptionError(f"task {self.key}: memory_mb must be a positive integer, got {self.memory_mb!r}")


class Executor(Enum):
    SERIAL = "serial"   # one child process at a time, in this machine
    DASK = "dask"       # dask.distributed: a LocalCluster, or an existing scheduler


@dataclass(frozen=True)
class SweepSettings:
    executor: Executor = Executor.SERIAL
    workers: int = 2                  # LocalCluster size (dask executor)
    scheduler: str | None = None      # address of an existing dask scheduler (scales out)
    retries: int = 1                  # re-submissions of a task whose dask worker died
    progress: bool = True             # rich progress on stderr (only when it is a terminal)
    grace: float = 5.0                # seconds past timeout (+10 %) before the hard kill

    def check(self) -> None:
        """Raise InvalidOptionError naming the bad setting."""
        if not isinstance(self.executor, Executor):
            raise InvalidOptionError(f"executor must be one of {', '.join(e.value for e in Executor)}")
        if self.workers < 1:
            raise InvalidOptionError(f"workers must be at least 1, got {self.workers}")
        if self.retries < 0:
            raise InvalidOptionError(f"retries must be non-negative, got {self.retries}")
        if not self.grace >= 0:
            raise InvalidOptionError(f"grace must be non-negative, got {self.grace}")


@dataclass(frozen=True)
class SweepSummary:
    total: int        # tasks given
    skipped: int      # already in the store (or repeated in the list)
    done: int
    failed: int
    timed_out: int
    seconds: float


@dataclass(frozen=True)
class Outcome:
    """How one task run ended, as the executor saw it (DONE carries the output)."""

    status: RunStatus
    output: TaskOutput | None
    reason: str
    seconds: float
    versions: str = ""

    @classmethod
    def failed(cls, reason: str, seconds: float = 0.0, status: RunStatus = RunStatus.FAILED) -> "Outcome":
        return cls(status, None, reason, seconds)
