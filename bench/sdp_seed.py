"""Issue 13 targets for the tight SDP / BM engines on the seed's network (ADV_MLP_B_0.1, eps 0.1,
images of mnist_test_30.npz, LP-ALL boxes). Every run is a fresh forked process (its own peak
memory and CPU seconds), one thread; each finished record is appended to
bench/results/sdp_seed.csv at once (a rerun skips what is there); the load average is recorded.

    python bench/sdp_seed.py rows      # image 0, targets 2/3/9: certified bound, ipopt vs torch backend
    python bench/sdp_seed.py gap       # the 9 gap images: bm per image (stops a row once proved; and
                                       # bm-value: every row solved to the tolerance), LP-ALL, PGD, exact (MILP)
    python bench/sdp_seed.py sdp       # full SDP (SCS) vs BM: reduced instance (N = 62) and one full row
    python bench/sdp_seed.py report

`--run NAME` keeps a session's records in bench/results/sdp_seed_NAME.csv (its own dated section of
sdp_seed.md; PGD, LP-ALL and MILP references are shared between runs), e.g. round 3's
`--run r3 rows --backends ipm-lowrank,ipopt-lowrank` and `--run r3 gap --methods bm,bm-value --timeout 120`.
Round 5 (the torch backend, `--run r5 rows --backends torch-lowrank,ipm-lowrank --timeout 300`): r5-before
= torch-lowrank as it was (augmented Lagrangian + L-BFGS, boxes penalised); r5a, r5b = intermediate
versions (r5a: before following negative curvature; r5b: monitor asked at any violation); r5 = final.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import BENCHMARKS, RESULTS, machine, markdown_table, record  # noqa: E402

BASE = RESULTS / "sdp_seed.csv"
CSV = BASE   # the run's file (main sets it from --run)
FIELDS = ["part", "image", "target", "method", "verdict", "bound", "primal", "rows", "cpu_s", "wall_s", "peak_mb",
          "load", "detail"]
NET = "ADV_MLP_B_0.1.onnx"
GAP_IMAGES = (0, 4, 5, 6, 7, 10, 12, 14, 27)
FREE = [211, 212, 213, 238, 239, 267, 320, 352, 409, 433, 434, 459, 460, 461, 462, 485, 486, 487, 488, 489,
        490, 513, 514, 515, 516, 517, 542, 543, 544, 659]   # the reduced instance (tests/sdp/test_tight_lowering.py)


def problem(image: int, targets=None, reduced: bool = False):
    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.problem import Box, VerificationProblem, robustness_problem, robustness_spec

    net = load_onnx(BENCHMARKS / "salman_mnist" / NET)
    data = np.load(BENCHMARKS / "mnist_images" / "mnist_test_30.npz")
    x, label = data["X"][image].reshape(-1).astype(np.float64), int(data["y"][image])
    if not reduced:
        return robustness_problem(net, x, label, 0.1, targets=targets, name=f"{NET}:img{image}")
    lo, hi = x.copy(), x.copy()
    lo[FREE], hi[FREE] = np.clip(x[FREE] - 0.5, 0, 1), np.clip(x[FREE] + 0.5, 0, 1)
    return VerificationProblem.single(net, Box(lo, hi), robustness_spec(10, label, targets), name="reduced")


def _child(args, queue) -> None:
    from optcert.threads import limit_threads
    from optcert.verify import verify

    limit_threads(1)
    image, targets, reduced, engine, options, timeout = args
    prob = problem(image, targets, reduced)
    t, c = time.perf_counter(), time.process_time()
    result = verify(prob, engine, timeout, options)
    rows = [{k: e.get(k) for k in ("row", "rank", "status", "bound", "primal", "seconds", "iterations")}
            for e in result.certificate.get("rows", [])]
    queue.put({"verdict": result.verdict.value, "lower": list(result.cases[0].lower),
               "upper": list(result.cases[0].upper), "rows": rows, "cpu": time.process_time() - c,
               "wall": time.perf_counter() - t, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "sources": result.certificate.get("row_source"), "reason": result.reason})


def measured(*args) -> dict:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(args, queue))
    proc.start()
    t, c = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    try:
        out = queue.get(timeout=args[-1] + 900)
    except Exception:   # the child died or hung: a record saying so, never a stalled sweep
        proc.kill()
        out = {"verdict": "error", "lower": [], "upper": [], "rows": [], "sources": None, "peak": 0.0,
               "cpu": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - c, "wall": time.perf_counter() - t,
               "reason": f"child exit code {proc.exitcode}"}
    proc.join()
    return out


def _done() -> set:
    if not CSV.is_file():
        return set()
    return {(r["part"], r["image"], r["target"], r["method"]) for r in csv.DictReader(open(CSV))}


def _runs() -> list[Path]:
    """Every run's CSV, the base one first."""
    return [BASE] * BASE.is_file() + sorted(RESULTS.glob("sdp_seed_*.csv"))


def _reference(method: str) -> set:
    """(part, image, target) recorded for `method` in any run (PGD, LP-ALL, MILP are shared)."""
    return {(r["part"], r["image"], r["target"]) for path in _runs() for r in csv.DictReader(open(path))
            if r["method"] == method}


def _write(part, image, target, method, out: dict, detail: str = "") -> None:
    new = not CSV.is_file()
    with open(CSV, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        primal = [r["primal"] for r in out["rows"]]
        w.writerow({"part": part, "image": image, "target": target, "method": method, "verdict": out["verdict"],
                    "bound": json.dumps(out["upper"] if method == "pgd" else out["lower"]),   # PGD: its upper bound
                    "primal": json.dumps(primal), "rows": json.dumps(out["rows"]),
                    "cpu_s": round(out["cpu"], 1), "wall_s": round(out["wall"], 1), "peak_mb": round(out["peak"]),
                    "load": os.getloadavg()[0], "detail": detail or out["reason"]})
    print(part, image, target, method, out["verdict"], np.round(out["lower"], 4), f"cpu {out['cpu']:.0f}s",
          f"wall {out['wall']:.0f}s", f"{out['peak']:.0f}MB", f"load {os.getloadavg()[0]:.1f}", flush=True)


def run_rows(args) -> None:
    done = _done()
    for target in [int(t) for t in args.targets.split(",")]:
        for backend in args.backends.split(","):
            if ("rows", "0", str(target), backend) in done:
                continue
            out = measured(0, [target], False, "bm", {"backend": backend, "bounds": "lp-all", "early_stop": False},
                           args.timeout)
            _write("rows", 0, target, backend, out)


def run_gap(args) -> None:
    done = _done()
    plan = [("pgd", "attack", {"every_clause": True}), ("lp-all", "lp", {"bounds": "lp-all"}),
            ("bm", "bm", {"bounds": "lp-all"}), ("bm-value", "bm", {"bounds": "lp-all", "early_stop": False}),
            ("bm-long", "bm", {"bounds": "lp-all"})]   # bm-long: run alone with a longer --timeout
    images = [int(i) for i in args.images.split(",")] if args.images else GAP_IMAGES
    methods = args.methods.split(",") if args.methods else [m for m, _, _ in plan if m != "bm-long"] + ["milp"]
    for method, engine, options in plan:   # cheap methods on every image first
        if method not in methods:
            continue
        for image in images:
            shared = method in ("pgd", "lp-all") and ("gap", str(image), "all") in _reference(method)
            if ("gap", str(image), "all", method) not in done and not shared:
                _write("gap", image, "all", method, measured(image, None, False, engine, options, args.timeout))
    if "milp" in methods:
        _exact_margins(args)


def _exact_margins(args) -> None:
    """MILP exact margin of every row the LP-ALL leaves open (the reference for the closure)."""
    rows = [r for path in _runs() for r in csv.DictReader(open(path))]
    done = _done() | {k + ("milp",) for k in _reference("milp")}
    for r in rows:
        if r["part"] != "gap" or r["method"] != "lp-all":
            continue
        image = int(r["image"])
        if args.images and image not in [int(i) for i in args.images.split(",")]:
            continue
        targets = [t for t in range(10) if t != _label(image)]
        for t, value in zip(targets, json.loads(r["bound"])):
            if value <= 0 and ("gap", str(image), str(t), "milp") not in done:
                out = measured(image, [t], False, "milp", {"exact": True, "bounds": "lp-all"}, args.timeout)
                _write("gap", image, t, "milp", out)


def _label(image: int) -> int:
    return int(np.load(BENCHMARKS / "mnist_images" / "mnist_test_30.npz")["y"][image])


def run_sdp(args) -> None:
    done = _done()
    for part, image, target, reduced in (("sdp-reduced", 0, 9, True), ("sdp-full", 0, 9, False)):
        for method, engine, options in (("bm", "bm", {"bounds": "lp-all", "early_stop": False}),
                                        ("sdp", "sdp", {"bounds": "lp-all", "backend": "scs"})):
            if (part, str(image), str(target), method) not in done:
                timeout = args.sdp_time if method == "sdp" else args.timeout
                _write(part, image, target, method, measured(image, [target], reduced, engine, options, timeout))


def report() -> str:
    parts = ["# Tight SDP / BM on the seed's network (issue 13)", f"Machine: {machine()}",
             "Per run: a fresh process, one thread; CPU = process time; load = 1-min load average at the end."]
    for path in _runs():
        rows = list(csv.DictReader(open(path)))
        name = path.stem.removeprefix("sdp_seed").lstrip("_") or "r1"
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(path.stat().st_mtime))
        parts += [f"## Run {name} ({path.name}, last record {stamp} UTC)", _table(rows)]
        summary = _gap_summary(rows)
        if summary:
            parts.append(summary)
    return "\n\n".join(parts)


def _table(rows: list[dict]) -> str:
    return markdown_table(["part", "image", "target", "method", "verdict", "certified", "primal", "CPU s", "wall s",
                             "peak MB", "load"],
                            [[r["part"], r["image"], r["target"], r["method"], r["verdict"],
                              _short(r["bound"]), _short(r["primal"]), r["cpu_s"], r["wall_s"], r["peak_mb"],
                              f"{float(r['load']):.1f}"] for r in rows])


def _gap_summary(rows: list[dict]) -> str:
    """Per BM method of a run: images proved, and the closure (BM − LP-ALL)/(ref − LP-ALL) averaged
    over the rows LP-ALL leaves open, against PGD (an upper bound on the exact margin, so this
    closure is a lower bound on the exact one) and against MILP where recorded."""
    every = [r for path in _runs() for r in csv.DictReader(open(path))]
    ref = {m: {r["image"]: json.loads(r["bound"]) for r in every if r["part"] == "gap" and r["method"] == m}
           for m in ("pgd", "lp-all")}
    milp = {(r["image"], int(r["target"])): json.loads(r["bound"])[0] for r in every
            if r["part"] == "gap" and r["method"] == "milp" and "time limit" not in r["detail"]}   # exact only
    lines = []
    gap = [r for r in rows if r["part"] == "gap" and r["method"].startswith("bm")]
    best: dict[str, dict] = {}   # per image: the bm run certifying the most (bm, or bm-long on images bm left open)
    for r in gap:
        if r["image"] not in best or (r["verdict"] == "proved") > (best[r["image"]]["verdict"] == "proved"):
            best[r["image"]] = {**r, "method": "best bm"}
    for method in ("bm", "bm-value", "bm-long", "best bm"):
        mine = list(best.values()) if method == "best bm" else [r for r in gap if r["method"] == method]
        if not mine:
            continue
        c_pgd, c_exact, open_rows = [], [], 0
        for r in mine:
            if r["image"] not in ref["lp-all"] or r["image"] not in ref["pgd"]:
                continue
            targets = [t for t in range(10) if t != _label(int(r["image"]))]
            image = r["image"]
            for t, bm, lp, pgd in zip(targets, json.loads(r["bound"]), ref["lp-all"][image], ref["pgd"][image]):
                if lp > 0:
                    continue
                open_rows += 1
                c_pgd.append((bm - lp) / (pgd - lp) if pgd > lp else 1.0)
                if (r["image"], t) in milp and milp[(r["image"], t)] > lp:
                    c_exact.append((bm - lp) / (milp[(r["image"], t)] - lp))
        proved = sum(r["verdict"] == "proved" for r in mine)
        cpu = [float(r["cpu_s"]) for r in mine]
        lines.append([method, f"{proved}/{len(mine)}", open_rows, f"{np.mean(c_pgd):.3f}" if c_pgd else "",
                      f"{np.mean(c_exact):.3f} ({len(c_exact)})" if c_exact else "",
                      f"{np.mean(cpu):.1f}", f"{max(cpu):.1f}"])
    if not lines:
        return ""
    return "Gap images:\n\n" + markdown_table(
        ["method", "proved", "open rows", "mean closure vs PGD", "mean closure vs MILP (rows)", "mean CPU s",
         "max CPU s"], lines)


def _short(text: str) -> str:
    values = [v for v in json.loads(text) if v is not None]
    return ", ".join(f"{v:.4g}" for v in values[:9])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=("rows", "gap", "sdp", "report"))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--sdp-time", type=float, default=900.0)
    parser.add_argument("--targets", default="2,3,9", help="rows: target classes of image 0")
    parser.add_argument("--backends", default="ipopt-lowrank,torch-lowrank", help="rows: BM backends")
    parser.add_argument("--images", default="", help="gap: image indices (default: the 9 gap images)")
    parser.add_argument("--methods", default="",
                        help="gap: pgd,lp-all,bm,bm-value,bm-long,milp (default: all but bm-long)")
    parser.add_argument("--run", default="", help="session name: records go to sdp_seed_<run>.csv")
    args = parser.parse_args()
    global CSV
    CSV = RESULTS / f"sdp_seed_{args.run}.csv" if args.run else BASE
    {"rows": run_rows, "gap": run_gap, "sdp": run_sdp}.get(args.part, lambda a: None)(args)
    record("sdp_seed", report())


if __name__ == "__main__":
    main()
