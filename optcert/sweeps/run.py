"""Sweeps: run many tasks, each bounded in time and memory, streaming records into a ResultStore.

`run_sweep(tasks, store, settings)` skips every task whose key is already stored, runs the rest
on the chosen executor and puts each task's `RunRecord` into the store the moment it finishes
(in this, the coordinating process), so an interrupted sweep loses nothing finished and a rerun
resumes where it stopped. A task that raises is FAILED with the error text; one killed for time
is TIMEOUT, for memory FAILED; a dask worker that dies is retried then FAILED — never lost.

Executors: SERIAL runs one task at a time in a reusable child process (`sweep_runner`); DASK fans
out over `dask.distributed` (`sweep_dask`), every worker using the same child-process runner.
"""
from __future__ import annotations

import time
from enum import Enum
from typing import Callable, Mapping, Sequence

from optcert.errors import InvalidOptionError
from optcert.sweeps.progress import SweepDisplay
from optcert.sweeps.runner import ChildRunner
from optcert.sweeps.store import ResultStore, RunRecord, RunStatus, make_record
from optcert.sweeps.types import Executor, Outcome, SweepSettings, SweepSummary, Task, TaskOutput

__all__ = ["Executor", "SweepSettings", "SweepSummary", "Task", "TaskOutput", "output_from_result",
           "run_sweep", "to_record"]

Finish = Callable[[Task, Outcome], None]


def output_from_result(result, extra: Mapping[str, object] | None = None) -> TaskOutput:
    """A TaskOutput from an engine's `Result`, as reported: verdict, bound, upper, reason; `extra`
    gets the per-case row bounds and phase timings besides the given entries."""
    rows = [{"lower": list(c.lower), "upper": list(c.upper)} for c in result.cases]
    data = {"engine": result.engine, "rows": rows, "timings": dict(result.timings),
            "timed_out": result.timed_out, **(extra or {})}
    return TaskOutput(result.verdict.value, result.bound, result.upper, result.reason, data)


def to_record(task: Task, outcome: Outcome) -> RunRecord:
    """The RunRecord of `task` ending as `outcome` (labels merged under the output's extra)."""
    out = outcome.output
    try:
        extra = {**task.labels, **(out.extra if out is not None else {})}
        if out is None:
            return make_record(task.key, outcome.status, seconds=outcome.seconds, reason=outcome.reason,
                               extra=extra, versions=outcome.versions or None)
        verdict = out.verdict.value if isinstance(out.verdict, Enum) else str(out.verdict)
        return make_record(task.key, RunStatus.DONE, verdict=verdict, bound=out.bound, upper=out.upper,
                           seconds=outcome.seconds, reason=out.reason, extra=extra,
                           versions=outcome.versions or None)
    except (InvalidOptionError, TypeError, ValueError) as err:
        return make_record(task.key, RunStatus.FAILED, seconds=outcome.seconds,
                           reason=f"output cannot be stored: {err}", versions=outcome.versions or None)


def _pending(tasks: Sequence[Task], store: ResultStore) -> list[Task]:
    """Checked tasks not yet in the store, first of each repeated key only."""
    done, seen, pending = store.done_keys(), set(), []
    for task in tasks:
        task.check()
        if task.key not in done and task.key not in seen:
            pending.append(task)
        seen.add(task.key)
    return pending


def run_serial(pending: Sequence[Task], settings: SweepSettings, finish: Finish, display: SweepDisplay) -> None:
    """Run `pending` one after another in a reusable child process under hard limits."""
    with ChildRunner(settings.grace) as runner:
        for task in pending:
            display.running(1)
            outcome = runner.run(task)
            display.running(0)
            finish(task, outcome)


def run_sweep(tasks: Sequence[Task], store: ResultStore, settings: SweepSettings = SweepSettings()) -> SweepSummary:
    """Run every task not yet in `store`, storing each record as it finishes; a summary of the sweep.

    Raises InvalidOptionError for a malformed task or setting (before anything runs) and
    BackendUnavailableError when the dask executor is asked for without dask installed."""
    settings.check()
    start = time.monotonic()
    pending = _pending(tasks, store)
    counts = {status: 0 for status in RunStatus}
    with SweepDisplay(len(pending), len(tasks) - len(pending), settings.progress) as display:
        def finish(task: Task, outcome: Outcome) -> None:
            record = to_record(task, outcome)
            store.put(record)
            counts[record.status] += 1
            display.finished(record.status)

        if settings.executor is Executor.DASK:
            from optcert.sweeps.dask_executor import run_dask

            run_dask(pending, settings, finish, display)
        else:
            run_serial(pending, settings, finish, display)
    return SweepSummary(total=len(tasks), skipped=len(tasks) - len(pending), done=counts[RunStatus.DONE],
                        failed=counts[RunStatus.FAILED], timed_out=counts[RunStatus.TIMEOUT],
                        seconds=time.monotonic() - start)
