"""Issue 14 benchmark: which input dimension the batched input-split search bisects — smear
(ReluVal), balanced (geometric mean of normalised smear and relative width), and the look-ahead
that bounds both and keeps the better split (the default) — on shared ACAS Xu instances, `bnb`
with input splits and no attack (the search alone), one thread, the three rules interleaved per
instance in rotating order. Per run: verdict, domains bounded, wall and CPU seconds, the load;
each record is appended to bench/results/input_branching_instances.csv at once (a rerun skips it).

    python bench/input_branching.py [--cap 10] [--props prop_1,prop_2] [--nets 3_5,3_7]
        [--rules lookahead,lookahead+alpha20 --out input_alpha]

A rule `R+alphaD` is rule R with alpha-CROWN on domains at least D bisections deep (`-o input_alpha=D`);
`--out` names the results (CSV and markdown), so runs at another cap or with other rules stay apart.
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

FIELDS = ["instance", "rule", "verdict", "nodes", "second_choice", "bound", "wall", "cpu", "load"]
RULES = ("smear", "balanced", "lookahead")


def run(row: dict, rule: str, cap: float) -> dict:
    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.verify import verify

    folder = BENCHMARKS / "acasxu"
    problem = read_vnnlib(folder / row["vnnlib"]).problem(load_onnx(folder / row["onnx"]))
    t, c = time.perf_counter(), time.process_time()
    name, _, depth = rule.partition("+alpha")
    res = verify(problem, "bnb", cap, {"split": "input", "attack": False, "evidence": False,
                                       "input_branching": name, "input_alpha": int(depth or 0)})
    cases = res.certificate.get("cases", [])
    return {"instance": row["instance"], "rule": rule, "verdict": res.verdict.value,
            "nodes": sum(int(x.get("nodes", 0)) for x in cases),
            "second_choice": sum(int(x.get("second_choice", 0)) for x in cases), "bound": f"{res.bound:.5g}",
            "wall": round(time.perf_counter() - t, 2), "cpu": round(time.process_time() - c, 2),
            "load": round(os.getloadavg()[0], 2)}


def summary(rows: list[dict], cap: float, rules: list[str]) -> str:
    wrong = [r for r in rows if (r["verdict"], r.get("expected")) in {("falsified", "unsat"), ("proved", "sat")}]
    agg = []
    for rule in rules:
        rs = [r for r in rows if r["rule"] == rule]
        solved = [r for r in rs if r["verdict"] != "unknown"]
        agg.append([rule, f"{len(solved)} / {len(rs)}", round(sum(float(r["cpu"]) for r in solved), 1),
                    round(sum(float(r["cpu"]) if r in solved else cap for r in rs), 1),
                    sum(int(r["nodes"]) for r in rs)])
    by = {}
    for r in rows:
        by.setdefault(r["instance"], {})[r["rule"]] = r
    def cell(r: dict) -> str:
        return f"{r['verdict'][:1]} {float(r['cpu']):.1f}s {r['nodes']}" + \
            (f" ({float(r['bound']):.2g})" if r["verdict"] == "unknown" else "")
    differ = [[name] + [cell(v[k]) if k in v else "-" for k in rules]
              for name, v in sorted(by.items()) if len({v[k]["verdict"] for k in v}) > 1
              or max(float(v[k]["cpu"]) for k in v) > 2 * min(float(v[k]["cpu"]) for k in v) + 0.5
              or any(v[k]["verdict"] == "unknown" for k in v)]
    return "\n\n".join([
        "# Input splitting: which dimension to bisect (issue 14)", f"Machine: {machine()}",
        f"ACAS Xu, `bnb -o split=input,attack=false,evidence=false,input_branching=RULE` (`+alphaD`: "
        f"`input_alpha=D`), {cap:g} s per run, "
        "one thread; CPU seconds are the comparable time (an unsolved run counts the cap in the second "
        f"sum).{' WRONG VERDICTS: ' + str(len(wrong)) if wrong else ''}",
        markdown_table(["rule", "solved", "Σ CPU s (solved)", "Σ CPU s (cap for unsolved)", "Σ domains"], agg),
        "Instances where the rules differ or stay open (verdict initial, CPU seconds, domains, the "
        "certified bound of an open one):",
        markdown_table(["instance", *rules], differ)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap", type=float, default=10.0)
    ap.add_argument("--props", default="prop_1,prop_2")
    ap.add_argument("--nets", default="", help="e.g. 3_5,3_7 (default: every net)")
    ap.add_argument("--rules", default=",".join(RULES), help="e.g. lookahead,lookahead+alpha20 (module doc)")
    ap.add_argument("--out", default="input_branching", help="results name under bench/results")
    args = ap.parse_args()
    rules = args.rules.split(",")
    csv_path = RESULTS / f"{args.out}_instances.csv"
    from optcert.threads import limit_threads

    limit_threads(1)
    props = set(args.props.split(","))
    nets = set(filter(None, args.nets.split(",")))
    chosen = [r for r in instances("acasxu") if Path(r["vnnlib"]).stem in props
              and (not nets or any(f"_{n}_batch" in r["onnx"] for n in nets))]
    expected = {r["instance"]: r["expected"] for r in chosen}
    rows = [r for r in (csv.DictReader(open(csv_path)) if csv_path.is_file() else [])
            if r["instance"] in expected and r["rule"] in rules]
    have = {(r["instance"], r["rule"]) for r in rows}
    for i, row in enumerate(chosen):
        turn = i % len(rules)
        for rule in rules[turn:] + rules[:turn]:
            if (row["instance"], rule) in have:
                continue
            r = run(row, rule, args.cap)
            append_row(csv_path, FIELDS, r)
            rows.append(r)
            print(r, flush=True)
    for r in rows:
        r["expected"] = expected[r["instance"]]
    record(args.out, summary(rows, args.cap, rules))


if __name__ == "__main__":
    main()
