"""Wall and CPU time of the test suite, run exactly as the README and .ci/run run it
(`python -m pytest -q`, which uses pytest-xdist on every core through setup.cfg), and optionally
serially (`-n 0`) in the same session for the ratio. Prints and records the load average, the
pass/fail line and the slowest tests. Target (issue 15): under 5 minutes on 2 cores.

    python bench/testsuite.py [--serial] [--out bench/results/testsuite.md]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(extra: list[str]) -> dict:
    """One pytest run from the repository root: wall, CPU of all processes, closing line, slowest."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--durations=15", "-p", "no:cacheprovider", *extra],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = proc.stdout.splitlines()
    closing = next((x for x in reversed(lines) if " passed" in x or " failed" in x), "(no closing line)")
    slow = [x for x in lines if x[:1].isdigit() and "s " in x[:10]][:15]
    failed = [x for x in lines if x.startswith(("FAILED", "ERROR"))]
    return {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "load": (load0, os.getloadavg()[0]), "closing": closing.strip("= "), "slow": slow, "failed": failed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--serial", action="store_true", help="also run serially (-n 0) for the ratio")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "testsuite.md")
    args = p.parse_args()
    runs = {"python -m pytest -q (README command: xdist on every core)": run([])}
    if args.serial:
        runs["python -m pytest -q -n 0 (serial)"] = run(["-n", "0"])
    text = [f"# Test-suite time ({os.cpu_count()} cores)", "",
            "| run | wall s | CPU s (all processes) | load avg at start → end | result |", "|---|---|---|---|---|"]
    for name, r in runs.items():
        text.append(f"| `{name}` | {r['wall']:.0f} | {r['cpu']:.0f} | {r['load'][0]:.1f} → {r['load'][1]:.1f} "
                    f"| {r['closing']} |")
    first = next(iter(runs.values()))
    text += ["", "Slowest tests of the first run:", "", "```", *first["slow"], "```", ""]
    for name, r in runs.items():
        if r["failed"]:
            text += [f"Failures in `{name}`:", "", "```", *r["failed"], "```", ""]
    out = "\n".join(text)
    print(out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(out)


if __name__ == "__main__":
    main()
