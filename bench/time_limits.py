"""Issue 14 benchmark: is every time limit kept (loading included, under whatever load the machine has)?

Runs `optcert vnncomp` in a fresh process (the competition's way: the budget counts from process
start) on shared instances that stay undecided within the limit, so each run lasts as long as its
budget allows, and reports wall / timeout per run, beside the load average. Target: every wall
≤ timeout + max(5%, 1 s). Rows go to bench/results/time_limits.csv as they finish.

`--in-process`: the engine's own deadline discipline instead — `verify(problem, engine, timeout)`
in this process (loading excluded), overrun = wall − timeout; rows in time_limits_engine.csv.

    python bench/time_limits.py [--timeouts 10 30 60] [--engine auto] [--in-process]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bnb import run_one  # noqa: E402
from common import RESULTS, append_row, instances, machine, markdown_table, record  # noqa: E402

CSV = RESULTS / "time_limits.csv"
FIELDS = ["instance", "timeout", "verdict", "wall", "cpu", "ratio", "kept", "load"]
#: undecided at 60 s by optcert (bench/results/auto60_instances.csv, peers_r2_instances.csv; ACAS Xu
#: 2_2 prop_1 until commit ccb993b's input branching, 3_3 prop_2 since)
HARD = (("mnistfc", "mnist-net_256x2-prop_10_0.05"), ("mnistfc", "mnist-net_256x4-prop_4_0.05"),
        ("mnistfc", "mnist-net_256x6-prop_3_0.05"), ("acasxu", "ACASXU_run2a_3_3_batch_2000-prop_2"))


def in_process(timeouts: list[float], engine: str) -> str:
    """The engine's overrun past its deadline, per instance and timeout (see module doc)."""
    import time

    from common import BENCHMARKS

    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.threads import limit_threads
    from optcert.verify import verify

    limit_threads(1)
    out = []
    for timeout in timeouts:
        for family, name in HARD:
            row = next((r for r in instances(family) if r["instance"] == name), None)
            if row is None:
                continue
            folder = BENCHMARKS / family
            problem = read_vnnlib(folder / row["vnnlib"]).problem(load_onnx(folder / row["onnx"]))
            t, c = time.monotonic(), time.process_time()
            res = verify(problem, engine, timeout)
            wall = time.monotonic() - t
            out.append([name, timeout, res.verdict.value, round(wall, 3), round(time.process_time() - c, 2),
                        round(wall - timeout, 3), round(os.getloadavg()[0], 1)])
            print(out[-1], flush=True)
    return markdown_table(["instance", "timeout", "verdict", "wall", "cpu", "overrun s", "load"], out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeouts", nargs="+", type=float, default=[10.0, 30.0])
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--in-process", action="store_true")
    args = ap.parse_args()
    if args.in_process:
        record("time_limits_engine", "\n\n".join([
            "# The engine's deadline discipline (issue 14)", f"Machine: {machine()}",
            f"`verify(problem, '{args.engine}', timeout)` in one process, loading excluded: overrun = wall − timeout.",
            in_process(args.timeouts, args.engine)]))
        return
    rows = list(csv.DictReader(open(CSV))) if CSV.is_file() else []
    have = {(r["instance"], float(r["timeout"])) for r in rows}
    for timeout in args.timeouts:
        for family, name in HARD:
            row = next((r for r in instances(family) if r["instance"] == name), None)
            if row is None or (name, timeout) in have:
                continue
            r = run_one(family, {**row, "timeout_s": str(timeout)}, timeout, args.engine)
            wall = float(r["seconds"])
            out = {"instance": name, "timeout": timeout, "verdict": r["verdict"], "wall": wall, "cpu": r["cpu"],
                   "ratio": round(wall / timeout, 3), "kept": wall <= timeout + max(0.05 * timeout, 1.0),
                   "load": round(os.getloadavg()[0], 1)}
            append_row(CSV, FIELDS, out)
            rows.append(out)
            print(out, flush=True)
    kept = sum(str(r["kept"]) == "True" for r in rows)
    record("time_limits", "\n\n".join([
        "# Time limits kept? (issue 14)", f"Machine: {machine()}",
        f"`optcert vnncomp` in fresh processes (budget from process start); kept = wall ≤ timeout + max(5%, 1 s): "
        f"{kept} / {len(rows)}.", markdown_table(FIELDS, [[r[f] for f in FIELDS] for r in rows])]))


if __name__ == "__main__":
    main()
