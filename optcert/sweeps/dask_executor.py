"""The dask executor of sweeps: tasks fan out over `dask.distributed`, records stream back.

Cluster: `Client(settings.scheduler)` when an address is given (scales out to any machines
running `dask worker ADDRESS` with optcert installed), else a `LocalCluster` of
`settings.workers` single-threaded worker processes. Every task is submitted with pure=False
and gathered with `as_completed`; the coordinator writes each record the moment it arrives.

Time and memory limits: a dask worker does not run the task itself; it hands it to its own
`ChildRunner` (one reusable child process per worker thread, see `sweep_runner`) and waits.
The runner SIGKILLs the child at `timeout * 1.1 + grace` (TIMEOUT) or when its resident set
passes `memory_mb` (FAILED) and returns that outcome like any other, so the worker survives.
dask itself has no hard per-task time limit (a running Python thread cannot be stopped), and
the nanny's memory limit restarts whole workers; hence the child process. The LocalCluster's
`memory_limit` is the largest `memory_mb` plus 1 GiB for the worker itself (dask's default
when no task sets one).

Dying workers: the LocalCluster's scheduler gets allowed_failures=0, so a task whose worker
died raises KilledWorker at once; it is resubmitted `settings.retries` times, then recorded
FAILED. (An external scheduler applies its own allowed-failures first.) A CancelledError
(e.g. the scheduler restarted) is handled the same way.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Sequence

from optcert.errors import BackendUnavailableError
from optcert.sweeps.progress import SweepDisplay
from optcert.sweeps.runner import ChildRunner
from optcert.sweeps.types import Outcome, SweepSettings, Task

_LOCAL = threading.local()


def _distributed():
    """The `distributed` module, or BackendUnavailableError saying how to install it."""
    try:
        import distributed
    except ImportError as err:
        raise BackendUnavailableError(f"the dask executor needs dask.distributed ({err}); "
                                      "install it with: pip install 'optcert[distributed]'") from None
    return distributed


def run_on_worker(task: Task, grace: float) -> Outcome:
    """Worker side: run `task` in this worker thread's child process under its limits."""
    runner = getattr(_LOCAL, "runner", None)
    if runner is None:
        runner = _LOCAL.runner = ChildRunner(grace)
    runner.grace = grace
    return runner.run(task)


@contextlib.contextmanager
def _client(settings: SweepSettings, pending: Sequence[Task]):
    """A distributed Client on `settings.scheduler` or on a fresh LocalCluster (closed on exit)."""
    distributed = _distributed()
    if settings.scheduler:
        try:
            client = distributed.Client(settings.scheduler, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise BackendUnavailableError(f"cannot reach the dask scheduler {settings.scheduler}: {err}") from None
        with client:
            yield client
        return
    limits = [t.memory_mb for t in pending if t.memory_mb is not None]
    memory = f"{max(limits) + 1024}MiB" if limits else "auto"
    with distributed.LocalCluster(n_workers=settings.workers, threads_per_worker=1, processes=True,
                                  memory_limit=memory, dashboard_address=None, silence_logs=logging.ERROR,
                                  scheduler_kwargs={"allowed_failures": 0}) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def run_dask(pending: Sequence[Task], settings: SweepSettings, finish: Callable[[Task, Outcome], None],
             display: SweepDisplay) -> None:
    """Run `pending` on dask; `finish(task, outcome)` for each as it completes (in this process)."""
    if not pending:
        return
    distributed = _distributed()
    lost = (distributed.KilledWorker, distributed.CancelledError)
    with _client(settings, pending) as client:
        slots = max(1, sum(client.nthreads().values()))
        in_flight: dict = {}

        def submit(task: Task, attempt: int):
            future = client.submit(run_on_worker, task, settings.grace, pure=False)
            in_flight[future] = (task, attempt)
            return future

        results = distributed.as_completed([submit(task, 0) for task in pending])
        display.running(min(len(in_flight), slots))
        for future in results:
            task, attempt = in_flight.pop(future)
            try:
                outcome = future.result()
            except lost as err:
                if attempt < settings.retries:
                    results.add(submit(task, attempt + 1))
                    continue
                outcome = Outcome.failed(f"worker died {attempt + 1} time(s) running it: {type(err).__name__}: {err}")
            except Exception as err:  # the wrapper itself failed (e.g. the task could not be unpickled)
                outcome = Outcome.failed(f"{type(err).__name__}: {err}")
            future.release()
            finish(task, outcome)
            display.running(min(len(in_flight), slots))
