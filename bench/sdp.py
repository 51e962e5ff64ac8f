"""Issue 5 benchmark: full SDP (SCS) and rank-r Burer–Monteiro against LP, LP-ALL and PGD on the
salman_mnist networks (and BM time on rsl18a_mnist).

Per (network, image, target class): the PGD upper bound on the margin, the certified LP (CROWN
bounds) and LP-ALL bounds, the BM certified bound, primal value and rank, and — on a subset, as
it takes minutes per problem here — the full SDP via SCS; times and peak memory (each method of
the memory comparison runs in a fresh forked process; ru_maxrss less the idle baseline). In the
same run: BM time / SDP time, BM memory / SDP memory, and the gap closure (BM − LP)/(PGD − LP)
averaged per network. Each finished row is appended to bench/results/sdp_instances.csv (a rerun
skips what is there).

    python bench/sdp.py [--images 10] [--eps 0.1] [--sdp-instances 1] [--sdp-time 300]
"""
from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import BENCHMARKS, RESULTS, machine, markdown_table, record  # noqa: E402

CSV = RESULTS / "sdp_instances.csv"
FIELDS = ["network", "image", "eps", "target", "method", "bound", "primal", "seconds", "peak_mb", "detail"]
NETS = ("NOR_MLP_B.onnx", "ADV_MLP_B_0.1.onnx", "LPD_MLP_B_0.1.onnx")


def _problem(name: str, image: int, eps: float, target: int | None = None):
    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.problem import robustness_problem

    folder = BENCHMARKS / ("rsl18a_mnist" if name.startswith("RSL") else "salman_mnist")
    net = load_onnx(folder / name)
    data = np.load(BENCHMARKS / "mnist_images" / "mnist_test_30.npz")
    x, label = data["X"][image], int(data["y"][image])
    if int(np.argmax(net.forward(x[None])[0])) != label:
        return None, label
    targets = None if target is None else [target]
    return robustness_problem(net, x, label, eps, targets=targets, name=f"{name}:img{image}@{eps}"), label


def _run(name, image, eps, target, method, options, timeout, queue):
    """Child process: one verify run; puts (per-row lower, per-row upper, primal and rank per row,
    seconds, peak MB)."""
    from optcert.threads import limit_threads
    from optcert.verify import verify

    limit_threads(1)
    problem, _ = _problem(name, image, eps, target)
    t = time.perf_counter()
    result = verify(problem, method, timeout, options)
    seconds = time.perf_counter() - t
    primal = {r["row"]: r.get("primal") for r in result.certificate.get("rows", [])}
    ranks = {r["row"]: r.get("rank") for r in result.certificate.get("rows", [])}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((list(result.cases[0].lower), list(result.cases[0].upper), primal, ranks, seconds, peak))


def measured(name, image, eps, target, method, options, timeout):
    """Run in a fresh process (fork) so its peak memory is its own."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(name, image, eps, target, method, options, timeout, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def baseline_mb() -> float:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=lambda q: q.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                       args=(queue,))
    proc.start()
    value = queue.get()
    proc.join()
    return value


METHODS = {"pgd": ("attack", {"every_clause": True, "restarts": 64, "steps": 200}),
           "lp": ("lp", {"bounds": "crown"}),
           "lp-all": ("lp", {"bounds": "lp-all"}),
           "bm": ("bm", {"attack": True, "bounds": "lp-all"}),
           "sdp": ("sdp", {"backend": "scs", "bounds": "lp-all"})}


def done() -> set:
    if not CSV.is_file():
        return set()
    return {(r["network"], r["image"], r["eps"], r["method"]) for r in csv.DictReader(open(CSV))}


def run(args) -> None:
    have = done()
    new = not CSV.is_file()
    base = baseline_mb()
    worst: dict = {}
    with open(CSV, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        jobs = [(net, i) for net in NETS for i in range(args.images)]
        jobs += [("RSL18a_linf0.1.onnx", i) for i in range(min(2, args.images))]
        for net, image in jobs:
            problem, label = _problem(net, image, args.eps)
            if problem is None:
                continue
            for method, (engine, options) in METHODS.items():
                sdp_subset = image < args.sdp_instances and not net.startswith("RSL")
                if (net, str(image), str(args.eps), method) in have or (method == "sdp" and not sdp_subset):
                    continue
                if net.startswith("RSL") and method not in ("bm", "pgd"):
                    continue
                if method == "sdp" and (net, image) not in worst:
                    worst[(net, image)] = _recorded_worst(net, image, args.eps, label)
                target = worst.get((net, image), _first_target(label)) if method == "sdp" else None
                timeout = args.sdp_time if method == "sdp" else args.timeout
                lower, upper, primal, ranks, seconds, peak = measured(net, image, args.eps, target, engine,
                                                                      options, timeout)
                rows = [target] if target is not None else [t for t in range(10) if t != label]
                if method == "lp":  # the SDP subset takes the hardest target, not one CROWN already decides
                    worst[(net, image)] = rows[int(np.argmin(lower))]
                for k, t in enumerate(rows):
                    value = upper[k] if method == "pgd" else lower[k]
                    writer.writerow({"network": net, "image": image, "eps": args.eps, "target": t, "method": method,
                                     "bound": value, "primal": primal.get(k), "seconds": round(seconds, 3),
                                     "peak_mb": round(peak - base, 1), "detail": f"rank={ranks.get(k)}"})
                f.flush()
                print(net, image, method, f"{seconds:.1f}s", f"{peak - base:.0f}MB", np.round(lower, 3), flush=True)


def _recorded_worst(net: str, image: int, eps: float, label: int) -> int:
    """The target with the lowest recorded LP bound (when the LP run was done by an earlier run)."""
    rows = [r for r in csv.DictReader(open(CSV)) if (r["network"], r["image"], r["eps"], r["method"])
            == (net, str(image), str(eps), "lp")] if CSV.is_file() else []
    return int(min(rows, key=lambda r: float(r["bound"]))["target"]) if rows else _first_target(label)


def _first_target(label: int) -> int:
    return 0 if label != 0 else 1


def summary(args) -> str:
    rows = list(csv.DictReader(open(CSV)))
    by = {}
    for r in rows:
        by.setdefault((r["network"], r["image"], r["target"]), {})[r["method"]] = r
    sections = [f"# SDP / BM benchmark (issue 5), eps {args.eps}", f"Machine: {machine()}"]
    sections.append(_closure_table(by))
    sections.append(_sdp_vs_bm(by))
    sections.append(_rsl(rows))
    sections.append(f"Per-(image, target) figures: bench/results/{CSV.name} ({len(rows)} rows)")
    return "\n\n".join(sections)


def _closure_table(by) -> str:
    lines = []
    for net in NETS:
        keys = [k for k in by if k[0] == net and all(m in by[k] for m in ("pgd", "lp", "lp-all", "bm"))]
        if not keys:
            continue
        f = {m: np.array([float(by[k][m]["bound"]) for k in keys]) for m in ("pgd", "lp", "lp-all", "bm")}
        denom = f["pgd"] - f["lp"]
        ok = (denom > 1e-9) & (f["lp"] <= 0) & (f["pgd"] > 0)   # rows the LP leaves open (proved rows stop early)
        closure = float(np.mean((f["bm"][ok] - f["lp"][ok]) / denom[ok])) if ok.any() else float("nan")
        images = {k[1] for k in keys}
        first = {k for k in keys if k[2] == min(kk[2] for kk in keys if kk[1] == k[1])}
        sec = {m: np.mean([float(by[k][m]["seconds"]) for k in first])
               for m in ("lp", "lp-all", "bm")}
        certified = {m: int(np.sum(f[m] > 0)) for m in ("lp", "lp-all", "bm")}
        lines.append([net, len(images), len(keys), f"{np.median(f['pgd']):.3g}", f"{np.median(f['lp']):.3g}",
                      f"{np.median(f['lp-all']):.3g}", f"{np.median(f['bm']):.3g}", f"{closure:.3f}",
                      f"{certified['lp']}/{certified['lp-all']}/{certified['bm']}",
                      f"{sec['lp']:.1f}/{sec['lp-all']:.1f}/{sec['bm']:.1f}"])
    return ("## Margins per (image, target): medians, gap closure (BM − LP)/(PGD − LP) averaged over the rows "
            "the LP leaves open (LP ≤ 0 < PGD; engines stop improving a row once it is proved), rows certified "
            "(> 0), and seconds per image (all 9 targets)\n" + markdown_table(
                ["network", "images", "rows", "PGD", "LP", "LP-ALL", "BM", "closure", "certified LP/LP-ALL/BM",
                 "s per image LP/LP-ALL/BM"], lines))


def _sdp_vs_bm(by) -> str:
    lines = []
    for k, m in by.items():
        if "sdp" in m and "bm" in m:
            s, b = m["sdp"], m["bm"]
            bm_rows = 9
            bm_s = float(b["seconds"]) / bm_rows
            rel = abs(float(b["bound"]) - float(s["bound"])) / max(1e-9, abs(float(s["bound"])))
            lines.append([k[0], k[1], k[2], f"{float(s['bound']):.4g}", s["primal"], f"{float(b['bound']):.4g}",
                          f"{float(s['seconds']):.0f}", f"{bm_s:.1f}", f"{float(s['seconds']) / bm_s:.0f}×",
                          s["peak_mb"], b["peak_mb"], f"{float(s['peak_mb']) / max(1.0, float(b['peak_mb'])):.0f}×",
                          f"{rel:.2e}"])
    return ("## Full SDP (SCS, time-capped) vs BM on the same row (BM seconds are per row: the image's batched "
            "run over 9 targets divided by 9)\n" + markdown_table(
                ["network", "image", "target", "SDP certified", "SDP primal", "BM certified", "SDP s", "BM s/row",
                 "time ratio", "SDP MB", "BM MB", "memory ratio", "|BM−SDP|/|SDP|"], lines))


def _rsl(rows) -> str:
    sel = [r for r in rows if r["network"].startswith("RSL") and r["method"] == "bm"]
    if not sel:
        return ""
    per = {}
    for r in sel:
        per.setdefault(r["image"], []).append(r)
    lines = [[img, len(rs), f"{float(rs[0]['seconds']):.1f}", rs[0]["peak_mb"],
              f"{min(float(r['bound']) for r in rs):.3g}"] for img, rs in per.items()]
    return "## BM on rsl18a_mnist (784-500-10, eps as above)\n" + markdown_table(
        ["image", "targets", "seconds (all targets)", "peak MB", "worst certified margin"], lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--sdp-instances", type=int, default=1)
    parser.add_argument("--sdp-time", type=float, default=300.0)
    args = parser.parse_args()
    global CSV
    CSV = RESULTS / f"sdp_instances_eps{args.eps}.csv"
    run(args)
    record(f"sdp_eps{args.eps}", summary(args))


if __name__ == "__main__":
    main()
