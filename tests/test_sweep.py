"""Sweeps: skip what is stored, survive SIGKILL, bound tasks in time/memory, dask = serial."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from optcert.errors import InvalidOptionError
from optcert.sweeps.run import Executor, SweepSettings, Task, run_sweep
from optcert.sweeps.store import ResultStore, RunKey, RunStatus, canonical_options
from tests.builders import ROOT

FAST = SweepSettings(progress=False, grace=0.3)


def _task(i: int, function: str, args: tuple, timeout: float = 20.0, method: str = "test", **kw) -> Task:
    key = RunKey(f"net{i % 2}", f"prop:{i}", method, canonical_options({"i": i}))
    return Task(key, f"tests.sweep_tasks:{function}", args, timeout, **kw)


def _naps(n: int, seconds: float) -> list[Task]:
    return [_task(i, "nap", (seconds, float(i)), labels={"index": i}) for i in range(n)]


def test_serial_sweep_stores_every_task_and_rerun_skips(tmp_path):
    tasks = _naps(4, 0.0)
    with ResultStore(tmp_path / "runs.db") as store:
        first = run_sweep(tasks, store, FAST)
        again = run_sweep(tasks + tasks[:1], store, FAST)
        records = store.records()
    assert (first.total, first.skipped, first.done) == (4, 0, 4)
    assert (again.total, again.skipped, again.done) == (5, 5, 0)
    assert sorted(r.bound for r in records) == [0.0, 1.0, 2.0, 3.0]
    assert all(r.status is RunStatus.DONE and r.verdict == "unknown" for r in records)
    assert {r.extra_dict()["index"] for r in records} == {0, 1, 2, 3}
    assert all('"python"' in r.versions for r in records)


def test_failures_and_limits_are_records_not_crashes(tmp_path):
    tasks = [_task(0, "fail", ("boom",)), _task(1, "nap", (30.0, 1.0), timeout=0.2),
             _task(2, "crash", (3,)), _task(3, "not_an_output", ()),
             _task(4, "hog", (400, 5.0), memory_mb=250), _task(5, "missing_function", ()),
             _task(6, "nap", (0.0, 6.0))]
    start = time.monotonic()
    with ResultStore(tmp_path / "runs.db") as store:
        summary = run_sweep(tasks, store, FAST)
        by_prop = {r.key.prop: r for r in store.records()}
    assert time.monotonic() - start < 15
    assert (summary.done, summary.failed, summary.timed_out) == (1, 5, 1)
    raised, overran, crashed, wrong, hog, missing, fine = (by_prop[f"prop:{i}"] for i in range(7))
    assert raised.status is RunStatus.FAILED and "ValueError: boom" in raised.reason and raised.verdict == ""
    assert overran.status is RunStatus.TIMEOUT and overran.bound is None and "timeout 0.2 s" in overran.reason
    assert overran.seconds < 3
    assert crashed.status is RunStatus.FAILED and "exited with code 3" in crashed.reason
    assert wrong.status is RunStatus.FAILED and "not TaskOutput" in wrong.reason
    assert hog.status is RunStatus.FAILED and "memory limit" in hog.reason
    assert missing.status is RunStatus.FAILED and "missing_function" in missing.reason
    assert fine.status is RunStatus.DONE and fine.bound == 6.0


def test_malformed_tasks_and_settings_are_typed_errors(tmp_path):
    with ResultStore(tmp_path / "runs.db") as store:
        with pytest.raises(InvalidOptionError, match="not 'package.module:function'"):
            run_sweep([Task(_task(0, "nap", ()).key, "no colon", (), 1.0)], store, FAST)
        with pytest.raises(InvalidOptionError, match="timeout"):
            run_sweep([_task(0, "nap", (), timeout=-1)], store, FAST)
        with pytest.raises(InvalidOptionError, match="workers"):
            run_sweep([], store, SweepSettings(workers=0))
        assert store.records() == []


SWEEP_SCRIPT = """
import sys
from optcert.sweeps.store import ResultStore
from optcert.sweeps.run import SweepSettings, run_sweep
from tests.test_sweep import _naps
run_sweep(_naps(8, 0.25), ResultStore(sys.argv[1]), SweepSettings(progress=False))
"""


def test_sigkill_mid_sweep_then_rerun_gives_the_full_set_once(tmp_path):
    path = tmp_path / "runs.db"
    proc = subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT, str(path)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(ResultStore(path).records()) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with ResultStore(path) as store:
        before = store.records()
        assert 3 <= len(before) < 8
        summary = run_sweep(_naps(8, 0.25), store, FAST)
        after = store.records()
    assert summary.skipped == len(before) and summary.done == 8 - len(before)
    keys = [r.key for r in after]
    assert len(keys) == len(set(keys)) == 8
    assert after[:len(before)] == before            # finished rows untouched
    assert sorted(r.bound for r in after) == [float(i) for i in range(8)]


def _engine_tasks() -> list[Task]:
    engines = [_task(seed, "verify_random", (seed, engine, eps), method=engine)
               for seed, eps in ((1, 0.05), (2, 0.2), (3, 0.1)) for engine in ("crown", "interval")]
    return engines + [_task(4, "fail", ("boom",)), _task(5, "nap", (30.0, 2.0), timeout=0.2)]


def _table(records) -> dict:
    return {r.key: (r.status, r.verdict, r.bound, r.upper, r.extra_dict().get("rows"), r.reason[:15])
            for r in records}


def test_two_worker_dask_sweep_matches_serial(tmp_path):
    pytest.importorskip("distributed")
    with ResultStore(tmp_path / "serial.db") as serial, ResultStore(tmp_path / "dask.db") as dask:
        run_sweep(_engine_tasks(), serial, FAST)
        settings = SweepSettings(Executor.DASK, workers=2, progress=False, grace=0.3)
        summary = run_sweep(_engine_tasks(), dask, settings)
        assert (summary.done, summary.failed, summary.timed_out) == (6, 1, 1)
        assert _table(dask.records()) == _table(serial.records())
        assert {r.verdict for r in serial.records()} >= {"proved"}


def test_dask_retries_a_dead_worker_then_records_failed(tmp_path):
    pytest.importorskip("distributed")
    settings = SweepSettings(Executor.DASK, workers=2, retries=1, progress=False)
    with ResultStore(tmp_path / "runs.db") as store:
        summary = run_sweep([_task(0, "kill_parent_unless", (os.getpid(),))], store, settings)
        (record,) = store.records()
    assert summary.failed == 1
    assert record.status is RunStatus.FAILED and "worker died 2 time(s)" in record.reason


def test_sweep_status_command(tmp_path, capsys):
    from optcert.cli.main import main

    with ResultStore(tmp_path / "runs.db") as store:
        run_sweep(_naps(2, 0.0) + [_task(5, "fail", ("boom",), method="other")], store, FAST)
    assert main(["sweep-status", str(tmp_path / "runs.db")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["method", "done", "failed", "timeout", "proved", "falsified", "unknown", "seconds"]
    assert lines[1].split()[:7] == ["other", "0", "1", "0", "0", "0", "0"]
    assert lines[2].split()[:7] == ["test", "2", "0", "0", "0", "0", "2"]
    assert main(["sweep-status", str(tmp_path / "missing.db")]) == 3
    assert "no such results store" in capsys.readouterr().err


def test_dask_executor_without_dask_is_a_typed_error(tmp_path, monkeypatch):
    from optcert.errors import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "distributed", None)     # import distributed → ImportError
    with ResultStore(tmp_path / "runs.db") as store:
        with pytest.raises(BackendUnavailableError, match="optcert\\[distributed\\]"):
            run_sweep(_naps(1, 0.0), store, SweepSettings(Executor.DASK, progress=False))
        assert store.records() == []
