"""Issue 2 benchmark: import time per network; attack and interval engines over every shared
VNN-COMP instance (competition timeouts), verdict counts per family against the expected
answers, and wrong verdicts (must be 0).

    python bench/foundation.py
"""
from __future__ import annotations

import collections
import statistics
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import BENCHMARKS, instances, machine, markdown_table, record  # noqa: E402

from optcert.compiled import compile_problem  # noqa: E402
from optcert.ir.from_onnx import load_onnx  # noqa: E402
from optcert.spec.vnnlib import read_vnnlib  # noqa: E402
from optcert.verify import verify  # noqa: E402

ENGINES = ("attack", "interval")


def main() -> None:
    from optcert.threads import limit_threads

    limit_threads(1)
    import_times = collections.defaultdict(list)
    counts = collections.Counter()
    times = collections.defaultdict(float)
    wrong = []
    for fam in ("acasxu", "mnistfc"):
        nets = {}
        for row in instances(fam):
            path = BENCHMARKS / fam / row["onnx"]
            if path not in nets:
                t = time.perf_counter()
                nets[path] = load_onnx(path)
                import_times[fam].append(time.perf_counter() - t)
            problem = read_vnnlib(BENCHMARKS / fam / row["vnnlib"]).problem(nets[path], name=row["instance"])
            compiled = compile_problem(problem)
            for engine in ENGINES:
                r = verify(problem, engine, float(row["timeout_s"]), compiled=compiled)
                counts[(fam, engine, row["expected"], r.verdict.value)] += 1
                times[(fam, engine)] += r.seconds
                truth = {"sat": "falsified", "unsat": "proved"}.get(row["expected"])
                if r.verdict.value in ("proved", "falsified") and truth and r.verdict.value != truth:
                    wrong.append((row["instance"], engine, r.verdict.value))
    rows = []
    for fam in ("acasxu", "mnistfc"):
        n_sat = sum(1 for r in instances(fam) if r["expected"] == "sat")
        n_unsat = sum(1 for r in instances(fam) if r["expected"] == "unsat")
        for engine in ENGINES:
            fals = sum(v for (f, e, _, verdict), v in counts.items() if (f, e, verdict) == (fam, engine, "falsified"))
            prov = sum(v for (f, e, _, verdict), v in counts.items() if (f, e, verdict) == (fam, engine, "proved"))
            unk = sum(v for (f, e, _, verdict), v in counts.items() if (f, e, verdict) == (fam, engine, "unknown"))
            prefix = "ACAS" if fam == "acasxu" else "mnist"
            nwrong = sum(1 for w in wrong if w[1] == engine and w[0].startswith(prefix))
            rows.append([fam, engine, f"{fals}/{n_sat}", f"{prov}/{n_unsat}", unk, nwrong,
                         round(times[(fam, engine)], 1)])
    imp = [[fam, len(v), f"{1000 * statistics.mean(v):.1f}", f"{1000 * max(v):.1f}"] for fam, v in import_times.items()]
    text = "\n\n".join([
        "# Foundation benchmark (issue 2): attack and interval engines on the shared instances",
        f"Machine: {machine()}",
        "## ONNX import time per network\n" + markdown_table(["family", "networks", "mean ms", "max ms"], imp),
        "## Verdicts against the expected answers (competition timeouts)\n" + markdown_table(
            ["family", "engine", "falsified / sat", "proved / unsat", "unknown", "wrong", "total s"], rows),
        f"Wrong verdicts: {len(wrong)} {wrong if wrong else ''}",
    ])
    record("foundation", text)


if __name__ == "__main__":
    main()
