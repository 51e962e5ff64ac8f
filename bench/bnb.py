"""Issues 6 and 14 benchmark: complete verification on every shared VNN-COMP instance.

Part 1 — all ACAS Xu (186) and mnistfc (90) instances of `verdicts.csv`, each with its competition
timeout (or `--cap` seconds if smaller), through `optcert vnncomp` in a fresh process (so process
start, `import torch` and loading count, as in the competition; `--engine`, default the `auto`
portfolio): solved (proved + falsified), unknown, wrong (must be 0), summed wall and CPU time per
family, how many ended within their limit + max(5%, 1 s), beside the alpha-beta-CROWN figures
recorded in `verdicts.csv` (theirs on a GPU machine, per competition year). A crash or memory
blow-up is a row, not the end of the run; finished rows are appended to
bench/results/<name>_instances.csv (`--name`, default `bnb`) and a rerun skips them.

Part 2 (`--trees`) — tree size with CROWN vs alpha-CROWN vs LP bounding on a few salman_mnist
instances (node limit, same time cap), written to bench/results/bnb_trees.csv.

    python bench/bnb.py [--family acasxu mnistfc] [--cap 60] [--name auto60] [--trees]
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, RESULTS, ROOT, append_row, instances, machine, markdown_table, record  # noqa: E402

CSV = RESULTS / "bnb_instances.csv"
TREES = RESULTS / "bnb_trees.csv"
FIELDS = ["family", "instance", "expected", "verdict", "bound", "seconds", "timeout", "nodes", "cpu", "reason"]
YEARS = ("2021", "2022", "2023", "2024")


def run_one(family: str, row: dict, cap: float, engine: str = "auto") -> dict:
    """One instance through `optcert vnncomp` in a fresh process, killed at 1.5 × timeout + 10 s."""
    import os
    import resource
    import subprocess

    timeout = min(float(row["timeout_s"]), cap)
    env = {**os.environ, "PYTHONPATH": os.environ.get("OPTCERT_SRC", str(ROOT)), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.txt"
        cmd = [sys.executable, "-m", "optcert.cli", "vnncomp", str(BENCHMARKS / family / row["onnx"]),
               str(BENCHMARKS / family / row["vnnlib"]), str(result), f"{timeout:g}", "--engine", engine]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  timeout=1.5 * timeout + 10)
            reason = proc.stderr.strip().splitlines()[-1][:120] if proc.returncode and proc.stderr.strip() else ""
        except subprocess.TimeoutExpired:
            reason = "killed"
        seconds = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = result.read_text().split() if result.is_file() else []
    verdict = {"unsat": "proved", "sat": "falsified"}.get(text[0] if text else "", "unknown")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"family": family, "instance": row["instance"], "expected": row["expected"], "verdict": verdict,
            "bound": "", "seconds": round(seconds, 3), "timeout": timeout, "nodes": "", "cpu": round(cpu, 3),
            "reason": reason or (text[0] if text else "no result file")}


def done(path: Path, key: tuple[str, ...]) -> dict:
    if not path.is_file():
        return {}
    return {tuple(r[k] for k in key): r for r in csv.DictReader(open(path))}


def wrong(r: dict) -> bool:
    return (r["expected"], r["verdict"]) in (("sat", "proved"), ("unsat", "falsified"))


def theirs(family: str) -> list[list]:
    """alpha-beta-CROWN per competition year from verdicts.csv: solved and summed seconds."""
    rows = instances(family)
    out = []
    for year in YEARS:
        times = [r.get(f"{year}_abcrown_s", "").replace("(raw)", "") for r in rows]
        solved = [float(t) for t in times if t]
        if solved:
            out.append([f"alpha-beta-CROWN {year} (GPU)", len(solved), round(sum(solved), 1)])
    return out


def _timeouts(rows: list[dict], family: str) -> str:
    counts: dict = {}
    for r in rows:
        if r["family"] == family:
            counts[float(r["timeout"])] = counts.get(float(r["timeout"]), 0) + 1
    return ", ".join(f"{n} at {t:g} s" for t, n in sorted(counts.items()))


def within(r: dict) -> bool:
    t = float(r["timeout"])
    return float(r["seconds"]) <= t + max(0.05 * t, 1.0)


def summary(rows: list[dict], cap: float, title: str = "Branch and bound (issue 6)", tool: str = "optcert bnb") -> str:
    table = []
    for family in ("acasxu", "mnistfc"):
        sel = [r for r in rows if r["family"] == family]
        if not sel:
            continue
        proved = sum(r["verdict"] == "proved" for r in sel)
        falsified = sum(r["verdict"] == "falsified" for r in sel)
        cpu = sum(float(r.get("cpu") or 0) for r in sel)
        table.append([family, f"{tool} (this CPU)", len(sel), proved + falsified, proved, falsified,
                      len(sel) - proved - falsified, sum(wrong(r) for r in sel),
                      round(sum(float(r["seconds"]) for r in sel), 1), round(cpu, 1) if cpu else "",
                      sum(map(within, sel))])
        table += [[family, name, len(instances(family)), n, "", "", "", "", s, "", ""] for name, n, s in theirs(family)]
    text = [f"# {title}", f"Machine: {machine()}",
            "Timeouts: the competition's per instance, capped (instances per timeout used: "
            + "; ".join(f"{fam} {_timeouts(rows, fam)}" for fam in ("acasxu", "mnistfc")) + "); wall time per "
            "instance includes loading the network and property (a fresh process per instance).",
            markdown_table(["family", "tool", "instances", "solved", "proved", "falsified", "unknown", "wrong",
                            "total s", "CPU s", "within limit"], table),
            f"Wrong verdicts: {sum(wrong(r) for r in rows)}"]
    if TREES.is_file():
        trees = list(csv.DictReader(open(TREES)))
        text.append("## Tree size by bounding function (salman_mnist)\n" + markdown_table(
            ["instance", "bounding", "verdict", "nodes", "bound", "seconds"],
            [[r["instance"], r["bounding"], r["verdict"], r["nodes"], r["bound"], r["seconds"]] for r in trees]))
    return "\n\n".join(text)


def run_trees(cap: float) -> None:
    """Tree size per bounding function on a few salman_mnist robustness instances."""
    import numpy as np

    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.problem import robustness_problem
    from optcert.verify import verify

    have = done(TREES, ("instance", "bounding"))
    data = np.load(BENCHMARKS / "mnist_images" / "mnist_test_30.npz")
    for name, eps in (("ADV_MLP_B_0.1.onnx", 0.1), ("NOR_MLP_B.onnx", 0.02)):
        net = load_onnx(BENCHMARKS / "salman_mnist" / name)
        for i in range(2):
            problem = robustness_problem(net, data["X"][i], int(data["y"][i]), eps, name=f"{name}:img{i}@{eps}")
            for bounding in ("crown", "alpha-crown", "lp", "bm"):
                if (problem.name, bounding) in have:
                    continue
                t = time.perf_counter()
                res = verify(problem, "bnb", cap, {"bounding": bounding, "attack": True})
                nodes = sum(int(c.get("nodes", 0)) for c in res.certificate.get("cases", []))
                row = {"instance": problem.name, "bounding": bounding, "verdict": res.verdict.value, "nodes": nodes,
                       "bound": f"{res.bound:.4g}", "seconds": round(time.perf_counter() - t, 2)}
                append_row(TREES, list(row), row)
                print(row, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", nargs="+", default=["acasxu", "mnistfc"])
    ap.add_argument("--cap", type=float, default=float("inf"), help="cap on each instance's timeout (s)")
    ap.add_argument("--trees", action="store_true", help="also run the salman_mnist tree-size comparison")
    ap.add_argument("--rerun-unknown", action="store_true",
                    help="run again the unknown rows that had less than this run's timeout")
    ap.add_argument("--tree-cap", type=float, default=60.0)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--name", default="bnb", help="results: bench/results/NAME.md and NAME_instances.csv")
    args = ap.parse_args()
    global CSV
    CSV = RESULTS / f"{args.name}_instances.csv"
    from optcert.threads import limit_threads

    limit_threads(1)
    have = done(CSV, ("family", "instance"))
    if args.rerun_unknown:
        keep = {k: r for k, r in have.items() if not (r["verdict"] == "unknown" and k[0] in args.family
                                                      and float(r["timeout"]) < args.cap)}
        CSV.unlink()
        for r in keep.values():
            append_row(CSV, FIELDS, r)
        have = keep
    for family in args.family:
        for row in instances(family):
            if (family, row["instance"]) in have:
                continue
            r = run_one(family, row, args.cap, args.engine)
            append_row(CSV, FIELDS, r)
            have[(family, row["instance"])] = r
            print(family, r["instance"], r["expected"], r["verdict"], r["seconds"], r.get("cpu"), flush=True)
    if args.trees:
        run_trees(args.tree_cap)
    import os

    load = f" (load average at the end {os.getloadavg()[0]:.1f})"
    if args.name == "bnb":
        record("bnb", summary(list(have.values()), args.cap))
    else:
        record(args.name, summary(list(have.values()), args.cap, f"Whole shared sets, engine {args.engine}{load}",
                                  f"optcert {args.engine}"))


if __name__ == "__main__":
    main()
