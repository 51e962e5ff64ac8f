"""Issue 4 benchmark: exact MILP and LP-triangle engines.

* mnistfc 256×2 (both eps): MILP with interval bounds only (a) against MILP after the full
  progressive tightening (b: CROWN → per-neuron LP on every layer), ratio (a)/(b) per instance
  and in total; the same (b) on Gurobi where its size-limited licence allows (ratio);
  LP (CROWN bounds) vs LP-ALL vs MILP margins — the relaxation gap.
* a slice of ACAS Xu, and salman_mnist NOR/ADV/LPD at eps 0.02 / 0.05 / 0.1 on shared images: (b).
Wrong verdicts must be 0. Each finished instance is appended to bench/results/milp_instances.csv.

    python bench/milp.py [--quick]
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import BENCHMARKS, RESULTS, instances, machine, markdown_table, record  # noqa: E402

from optcert.compiled import compile_problem  # noqa: E402
from optcert.ir.from_onnx import load_onnx  # noqa: E402
from optcert.spec.problem import robustness_problem  # noqa: E402
from optcert.spec.vnnlib import read_vnnlib  # noqa: E402
from optcert.verify import verify  # noqa: E402

CSV = RESULTS / "milp_instances.csv"
FIELDS = ["family", "instance", "expected", "config", "verdict", "bound", "upper", "seconds", "timeout"]
ACAS_SLICE = ("1_1_batch_2000-prop_1", "1_1_batch_2000-prop_3", "1_9_batch_2000-prop_4", "2_1_batch_2000-prop_2",
              "3_3_batch_2000-prop_3", "4_5_batch_2000-prop_4")
SALMAN = (("NOR_MLP_B.onnx", (0.02,)), ("ADV_MLP_B_0.1.onnx", (0.05, 0.1)), ("LPD_MLP_B_0.1.onnx", (0.1,)))


def configs(family: str) -> dict[str, tuple[str, dict, float]]:
    """name → (engine, options, timeout cap)."""
    full = ("milp", {"bounds": "lp-all"}, 120.0)
    if family != "mnistfc":
        return {"milp-progressive": full}
    return {"milp-interval": ("milp", {"bounds": "ibp"}, 30.0), "milp-progressive": full,
            "milp-progressive-gurobi": ("milp", {"bounds": "lp-all", "backend": "gurobi"}, 120.0),
            "lp": ("lp", {"bounds": "crown"}, 60.0), "lp-all": ("lp", {"bounds": "lp-all"}, 60.0),
            "milp-exact": ("milp", {"bounds": "lp-all", "exact": True, "attack": False}, 60.0),
            "milp-interval-exact": ("milp", {"bounds": "ibp", "exact": True, "attack": False}, 60.0)}


def problems(quick: bool):
    net_cache = {}

    def net(path):
        return net_cache.setdefault(path, load_onnx(path))

    rows = [r for r in instances("mnistfc") if "256x2" in r["onnx"]]
    for r in rows[::5] if quick else rows:
        yield "mnistfc", read_vnnlib(BENCHMARKS / "mnistfc" / r["vnnlib"]).problem(
            net(BENCHMARKS / "mnistfc" / r["onnx"]), name=r["instance"]), r["expected"], float(r["timeout_s"])
    for r in instances("acasxu"):
        if r["instance"].endswith(ACAS_SLICE[:2] if quick else ACAS_SLICE):
            yield "acasxu", read_vnnlib(BENCHMARKS / "acasxu" / r["vnnlib"]).problem(
                net(BENCHMARKS / "acasxu" / r["onnx"]), name=r["instance"]), r["expected"], float(r["timeout_s"])
    data = np.load(BENCHMARKS / "mnist_images" / "mnist_test_30.npz")
    for name, epss in SALMAN:
        model = net(BENCHMARKS / "salman_mnist" / name)
        for i in range(1 if quick else 2):
            for eps in epss:
                yield "salman_mnist", robustness_problem(model, data["X"][i], int(data["y"][i]), eps,
                                                         name=f"{name}:img{i}@{eps}"), "", 120.0


def done_rows() -> dict:
    if not CSV.is_file():
        return {}
    return {(r["instance"], r["config"]): r for r in csv.DictReader(open(CSV))}


def run(quick: bool) -> list[dict]:
    from solvers import available

    gurobi = available()["gurobi"].available
    have = done_rows()
    new = not CSV.is_file()
    with open(CSV, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for fam, problem, expected, timeout in problems(quick):
            compiled = compile_problem(problem)
            for name, (engine, options, cap) in configs(fam).items():
                if (problem.name, name) in have or ("gurobi" in name and not gurobi):
                    continue
                limit = min(timeout, cap)
                t = time.perf_counter()
                res = verify(problem, engine, limit, options, compiled=compiled)
                row = {"family": fam, "instance": problem.name, "expected": expected, "config": name,
                       "verdict": res.verdict.value, "bound": res.bound, "upper": res.upper,
                       "seconds": round(time.perf_counter() - t, 3), "timeout": limit}
                writer.writerow(row)
                f.flush()
                have[(problem.name, name)] = row
                print(fam, problem.name, name, row["verdict"], f"{res.bound:.4g}", row["seconds"], flush=True)
    return list(have.values())


def wrong(r: dict) -> bool:
    return (r["expected"], r["verdict"]) in (("sat", "proved"), ("unsat", "falsified"))


def summary(rows: list[dict], quick: bool) -> str:
    by = {}
    for r in rows:
        by.setdefault(r["config"], {})[r["instance"]] = r
    sections = [f"# MILP / LP benchmark (issue 4){' — quick' if quick else ''}", f"Machine: {machine()}"]
    table = []
    for config, rs in by.items():
        for fam in ("mnistfc", "acasxu", "salman_mnist"):
            sel = [r for r in rs.values() if r["family"] == fam]
            if sel:
                count = {v: sum(r["verdict"] == v for r in sel) for v in ("proved", "falsified", "unknown")}
                table.append([fam, config, len(sel), count["proved"], count["falsified"], count["unknown"],
                              sum(wrong(r) for r in sel), round(sum(float(r["seconds"]) for r in sel), 1)])
    sections.append("## Verdicts (time caps: interval-only MILP 30 s, others min(competition, 120 s))\n"
                    + markdown_table(["family", "config", "n", "proved", "falsified", "unknown", "wrong", "total s"],
                                     table))
    sections += ratio_section(by, "milp-interval", "milp-progressive", "(a) interval-only / (b) progressive, sign-only")
    sections += ratio_section(by, "milp-interval-exact", "milp-exact",
                              "(a) interval-only / (b) progressive, exact margin (cap 60 s each)")
    sections += ratio_section(by, "milp-progressive-gurobi", "milp-progressive", "Gurobi / HiGHS (both progressive)")
    sections += gap_section(by)
    sections.append(f"Wrong verdicts: {sum(wrong(r) for r in rows)}")
    return "\n\n".join(sections)


def ratio_section(by, num: str, den: str, title: str) -> list[str]:
    if num not in by or den not in by:
        return []
    lines, ratios = [], []
    for inst, a in by[num].items():
        b = by[den].get(inst)
        if b is None:
            continue
        ta, tb = float(a["seconds"]), float(b["seconds"])
        capped = a["verdict"] == "unknown"
        ratios.append(ta / tb)
        lines.append([inst, a["verdict"], ta, b["verdict"], tb, f"{'≥' if capped else ''}{ta / tb:.2f}"])
    total = sum(float(a[4]) for a in lines), sum(float(a[2]) for a in lines)
    geo = math.exp(np.mean(np.log(ratios))) if ratios else float("nan")
    return [f"## Time ratio {title} (mnistfc 256×2; '≥' = the numerator hit its cap)\n"
            + markdown_table(["instance", f"{num} verdict", f"{num} s", f"{den} verdict", f"{den} s", "ratio"],
                             lines),
            f"Summed: {total[1]:.1f} s / {total[0]:.1f} s = {total[1] / max(total[0], 1e-9):.2f}×; "
            f"geometric mean of per-instance ratios {geo:.2f}×"]


def gap_section(by) -> list[str]:
    if not all(k in by for k in ("lp", "lp-all", "milp-exact")):
        return []
    lines = []
    for inst, m in by["milp-exact"].items():
        lp, lpa = by["lp"].get(inst), by["lp-all"].get(inst)
        if lp and lpa:
            lines.append([inst, float(lp["bound"]), float(lpa["bound"]), float(m["bound"]), float(m["upper"]),
                          m["verdict"]])
    return ["## Relaxation gap: certified margins of LP (CROWN bounds), LP-ALL and exact MILP (bound / achieved)\n"
            + markdown_table(["instance", "LP", "LP-ALL", "MILP bound", "MILP achieved", "MILP verdict"], lines)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from optcert.threads import limit_threads

    limit_threads(1)
    rows = run(args.quick)
    record("milp", summary(rows, args.quick))


if __name__ == "__main__":
    main()
