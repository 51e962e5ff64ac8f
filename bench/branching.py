"""Issue 14 benchmark: ReLU-split branch and bound — BaBSR against FSB look-ahead branching, each with
and without intermediate layers re-optimised by alpha-CROWN on deep domains — on shared mnistfc
instances (no attack, same cap): verdict, domains bounded, wall and CPU seconds, interleaved per
instance (the variants of one instance run one after the other, in rotating order). Each run stops
at a node limit (default 300 domains) or the wall cap, so on a loaded machine the variants are
compared at equal tree sizes: the certified bound reached (`bound`) and CPU seconds.

    python bench/branching.py [--nodes 300] [--cap 600] [--instances NAME ...]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, RESULTS, append_row, instances, machine, markdown_table, record  # noqa: E402

CSV = RESULTS / "branching_instances.csv"
FIELDS = ["instance", "variant", "verdict", "nodes", "bound", "deep_domains", "wall", "cpu", "load"]
VARIANTS = {"babsr": {"branching": "babsr"}, "fsb": {"branching": "fsb"},
            "babsr+deep": {"branching": "babsr", "deep_alpha": 4}, "fsb+deep": {"branching": "fsb", "deep_alpha": 4}}
#: ReLU-split instances of moderate difficulty (bench/results/bnb_instances.csv: 5 to >120 s with BaBSR)
DEFAULT = ("mnist-net_256x2-prop_14_0.05", "mnist-net_256x6-prop_12_0.03", "mnist-net_256x4-prop_2_0.03",
           "mnist-net_256x4-prop_3_0.05", "mnist-net_256x4-prop_6_0.03", "mnist-net_256x2-prop_10_0.05")


def run(row: dict, variant: str, cap: float, nodes: int) -> dict:
    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.verify import verify

    folder = BENCHMARKS / "mnistfc"
    problem = read_vnnlib(folder / row["vnnlib"]).problem(load_onnx(folder / row["onnx"]))
    t, c = time.perf_counter(), time.process_time()
    res = verify(problem, "bnb", cap, {"split": "relu", "attack": False, "node_limit": nodes, **VARIANTS[variant]})
    cases = res.certificate.get("cases", [])
    return {"instance": row["instance"], "variant": variant, "verdict": res.verdict.value,
            "nodes": sum(int(x.get("nodes", 0)) for x in cases), "bound": f"{res.bound:.5g}",
            "deep_domains": sum(int(x.get("deep_domains", 0)) for x in cases),
            "wall": round(time.perf_counter() - t, 2), "cpu": round(time.process_time() - c, 2),
            "load": round(os.getloadavg()[0], 2)}


def summary(rows: list[dict]) -> str:
    table = [[r[f] for f in FIELDS] for r in rows]
    agg = []
    for v in VARIANTS:
        rs = [r for r in rows if r["variant"] == v]
        agg.append([v, sum(r["verdict"] != "unknown" for r in rs), len(rs), sum(int(r["nodes"]) for r in rs),
                    round(sum(float(r["cpu"]) for r in rs), 1)])
    return "\n\n".join(["# ReLU branching: BaBSR vs FSB, intermediate alpha on deep domains (issue 14)",
                        f"Machine: {machine()}",
                        markdown_table(["variant", "decided", "runs", "Σ domains", "Σ CPU s"], agg),
                        markdown_table(FIELDS, table)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap", type=float, default=600.0)
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--instances", nargs="+", default=list(DEFAULT))
    args = ap.parse_args()
    from optcert.threads import limit_threads

    limit_threads(1)
    rows = list(csv.DictReader(open(CSV))) if CSV.is_file() else []
    have = {(r["instance"], r["variant"]) for r in rows}
    names = list(VARIANTS)
    for i, row in enumerate(r for r in instances("mnistfc") if r["instance"] in args.instances):
        for variant in names[i % len(names):] + names[:i % len(names)]:
            if (row["instance"], variant) in have:
                continue
            r = run(row, variant, args.cap, args.nodes)
            append_row(CSV, FIELDS, r)
            rows.append(r)
            print(r, flush=True)
    record("branching", summary([r for r in rows if r["instance"] in args.instances]))


if __name__ == "__main__":
    main()
