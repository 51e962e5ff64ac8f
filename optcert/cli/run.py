"""`optcert run instances.csv`: a batch of VNN-COMP instances (onnx, vnnlib, timeout per line,
paths relative to the CSV; optional expected verdicts, see `optcert.batch.instances`).

Every instance runs in a sweep child process with its own time limit (loading included) and
writes `OUT/results/<instance>.json` and `.txt`; each finished run goes into the results store
`OUT/runs.sqlite` at once, so a killed batch resumes where it stopped when run again. At the end
(and with `--report-only`) `OUT/summary.csv` and `OUT/summary.md` hold the verdict counts, every
instance's verdict and time and, with expected verdicts, agreement and wrong answers. Progress is
shown on a terminal; `--dask` runs instances on a dask cluster (`pip install 'optcert[distributed]'`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.cli.common import positive_float, positive_int, sweep_arguments, sweep_settings
from optcert.cli.stdout import emit

NAME = "run"
HELP = "batch run: every instance of a VNN-COMP instances.csv, a result file each, a summary table"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    from optcert.vnncomp import ENGINE

    p.add_argument("instances", type=Path, help="CSV: onnx, vnnlib, timeout[, expected] (or a header naming them)")
    p.add_argument("--out", type=Path, help="output folder (default: <csv name>-results next to here)")
    p.add_argument("--engine", default=ENGINE, help=f"engine (default {ENGINE}, as vnncomp; see `optcert engines`)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="engine option")
    p.add_argument("--timeout", type=positive_float, help="seconds per instance instead of the CSV's")
    p.add_argument("--max-timeout", type=positive_float, help="cap every instance's timeout at this many seconds")
    p.add_argument("--limit", type=positive_int, help="only the first N instances")
    p.add_argument("--report-only", action="store_true", help="write the summary from the store, run nothing")
    sweep_arguments(p)


def run(args) -> int:
    from optcert.batch.instances import read_instances
    from optcert.batch.summary import rows_from_store, summary_csv, summary_markdown
    from optcert.batch.tasks import task_key
    from optcert.engines.registry import engine_from, engine_options
    from optcert.options import options_dict, parse_pairs
    from optcert.outputs import output_dir, output_file, write_text
    from optcert.sweeps.store import ResultStore

    out = args.out or Path(f"{args.instances.stem}-results")
    results = output_dir(out / "results", "--out")
    output_file(out / "runs.sqlite", "results store")
    engine = engine_from(args.engine)
    options = options_dict(engine_options(engine, parse_pairs(args.option)))
    settings = sweep_settings(args)
    instances = read_instances(args.instances, args.limit)
    timeouts = [_timeout(i.timeout, args) for i in instances]
    keyed = [(i, task_key(i, engine.value, options, t)) for i, t in zip(instances, timeouts)]
    with ResultStore(out / "runs.sqlite") as store:
        if not args.report_only:
            summary = _sweep(keyed, timeouts, engine.value, options, results, args, store, settings)
            emit(f"run: {summary.total} instances, {summary.skipped} already done, {summary.done} done, "
                 f"{summary.failed} failed, {summary.timed_out} killed at the time limit, {summary.seconds:.1f} s")
        rows = rows_from_store(store, keyed)
    markdown = summary_markdown(rows, f"optcert run {args.instances.name} (engine {engine.value})")
    emit(markdown)                       # printed first: a summary file that fails to write loses nothing
    write_text(out / "summary.csv", summary_csv(rows))
    write_text(out / "summary.md", markdown)
    emit(f"wrote {out / 'summary.md'}, {out / 'summary.csv'} and {len(rows)} result(s) in {results}")
    return 0


def _timeout(given: float, args) -> float:
    seconds = args.timeout if args.timeout is not None else given
    return min(seconds, args.max_timeout) if args.max_timeout is not None else seconds


def _sweep(keyed, timeouts, engine: str, options, results: Path, args, store, settings):
    from optcert.sweeps.run import Task, run_sweep

    tasks = [Task(key, "optcert.batch.tasks:run_batch_instance",
                  (str(inst.onnx), str(inst.vnnlib), timeout, engine, options, str(results), inst.name,
                   getattr(args, "command_line", None)), timeout, args.memory_mb, labels={"instance": inst.name})
             for (inst, key), timeout in zip(keyed, timeouts)]
    return run_sweep(tasks, store, settings)
