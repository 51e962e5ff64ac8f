"""The reference: Marabou's proof production (Isac et al. 2022, "Neural network verification with
proof production", FMCAD) on the ACAS Xu instances of bench/certificates.py — Marabou's wall time
with and without `produceProofs` (its UNSAT proofs are checked inside the same process and not
written out, so there is no file to weigh), interleaved per instance, beside optcert's `bnb` time,
the time `optcert check` takes on its certificate and the certificate's size (read from
bench/results/certificates.jsonl).

    python bench/marabou_proofs.py [--timeout 60] [--limit N]

Needs maraboupy (the `marabou` extra); skips with a message without it. Each Marabou run is a child
process with one thread; results go to bench/results/marabou_proofs.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.certificates import _rows  # noqa: E402
from bench.common import BENCHMARKS, RESULTS, machine, markdown_table  # noqa: E402

CHILD = """
import sys, time
from maraboupy import Marabou
net = Marabou.read_onnx(sys.argv[1])
options = Marabou.createOptions(timeoutInSeconds=int(float(sys.argv[3])), verbosity=0, produceProofs=sys.argv[4] == "1")
t = time.perf_counter()
code, values, stats = net.solve(options=options, propertyFilename=sys.argv[2], verbose=False)
print("RESULT", code, time.perf_counter() - t)
"""


def marabou(onnx: Path, vnnlib: Path, timeout: float, proofs: bool) -> tuple[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    try:
        argv = [sys.executable, "-c", CHILD, str(onnx), str(vnnlib), str(timeout), "1" if proofs else "0"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * 1.5 + 30, env=env)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start
    # Marabou prints "Proof-producing mode on, ..." without a newline, so RESULT may follow it on one line
    line = next((x[x.index("RESULT"):] for x in out.stdout.splitlines() if "RESULT" in x), None)
    if line is None:
        return f"error ({out.stderr.strip().splitlines()[-1][:60] if out.stderr.strip() else out.returncode})", \
            time.perf_counter() - start
    _, code, seconds = line.split()
    return code, float(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--limit", type=int, help="instances at most")
    args = p.parse_args()
    try:
        import maraboupy  # noqa: F401
    except ImportError:
        raise SystemExit("maraboupy is not installed (pip install 'optcert[marabou]'): nothing to compare") from None
    store = RESULTS / "certificates.jsonl"
    ours = {(r["instance"], r["engine"]): r for r in map(json.loads, store.read_text().splitlines())} \
        if store.exists() else {}
    rows, loads = [], [os.getloadavg()[0]]
    for row in _rows("acasxu")[: args.limit]:
        folder = BENCHMARKS / "acasxu"
        plain = marabou(folder / row["onnx"], folder / row["vnnlib"], args.timeout, False)
        proofs = marabou(folder / row["onnx"], folder / row["vnnlib"], args.timeout, True)
        loads.append(os.getloadavg()[0])
        bnb = ours.get((row["instance"], "bnb"), {})
        rows.append([row["instance"], row["expected"], plain[0], plain[1], proofs[0], proofs[1],
                     proofs[1] / max(plain[1], 1e-3), bnb.get("verdict", "-"), bnb.get("engine_s", float("nan")),
                     bnb.get("check_s", float("nan")), bnb.get("result_bytes", 0) / 1024])
        print(rows[-1], flush=True)
    table = markdown_table(["instance", "expected", "Marabou", "s", "Marabou + proofs", "s", "proof overhead ×",
                            "optcert bnb", "s", "optcert check s", "optcert result KiB"], rows)
    text = (f"# Marabou's proof production beside optcert's certificates (ACAS Xu)\n\n{machine()}\n\n"
            f"Load average {min(loads):.1f}–{max(loads):.1f} (2 cores, shared). Marabou {args.timeout:g} s per run, "
            f"one thread; optcert figures from bench/results/certificates.jsonl (another run).\n\n{table}\n")
    (RESULTS / "marabou_proofs.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
