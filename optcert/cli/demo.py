"""`optcert demo`: the fast engines on the bundled ACAS Xu network and VNN-LIB properties 1–4, with
the known answer beside every verdict, a legend, the time cap, and the next command to try."""
from __future__ import annotations

import argparse
from pathlib import Path

from optcert.cli.common import positive_float, set_threads
from optcert.cli.stdout import emit

NAME = "demo"
HELP = "run the engines on the bundled ACAS Xu example (known answers shown beside each verdict)"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NETWORK = "ACASXU_run2a_2_1_batch_2000.onnx"
#: The known answers (VNN-COMP verdicts for this network): property → verdict a correct verifier gives.
EXPECTED = {"prop_1": "proved", "prop_2": "falsified", "prop_3": "proved", "prop_4": "proved"}
#: Engines left out of the demo, and why.
SLOW = {"sdp": "minutes per property on this network", "bm": "minutes per property on this network"}
LEGEND = ("proved    the property holds for every input in the region (certified bound > 0)\n"
          "  falsified a counterexample was found and re-checked in float64\n"
          "  unknown   not decided: the engine cannot decide this property (e.g. attack cannot prove, "
          "interval cannot falsify) or ran out of time\n"
          "  ok        the verdict agrees with the known answer; WRONG would mean a wrong verdict (never expected)")


def add_arguments(d: argparse.ArgumentParser) -> None:
    d.add_argument("--timeout", type=positive_float, default=10.0,
                   help="time cap in seconds per engine and property (default 10)")


def _cell(verdict: str, expected: str, seconds: float) -> str:
    mark = "" if verdict == "unknown" else (" ok" if verdict == expected else " WRONG")
    return f"{verdict + mark:>12s} {seconds:5.1f}s"


def run(args) -> int:
    from optcert.engines.registry import ENGINES
    from optcert.ir.load import load_network
    from optcert.progress import progress
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.verify import verify

    engines = [e for e in ENGINES if e.value not in SLOW]
    set_threads(1)
    with progress("loading torch (once, so that no engine's time includes it)"):
        import torch  # noqa: F401
    folder = EXAMPLES / "acasxu"
    net = load_network(folder / NETWORK)
    emit(f"optcert demo: ACAS Xu network 2_1 ({net.summary().neurons} ReLUs), VNN-LIB properties 1-4 "
         f"(bundled in {folder})")
    emit(f"each engine gets at most {args.timeout:g} s per property (--timeout); left out: "
         + "; ".join(f"{e} ({why})" for e, why in SLOW.items()))
    emit(f"\n  {'property':9s} {'expected':10s} " + " ".join(f"{e.value:>18s}" for e in engines))
    wrong = 0
    for prop, expected in EXPECTED.items():
        problem = read_vnnlib(folder / f"{prop}.vnnlib").problem(net, name=prop)
        cells = []
        for engine in engines:
            with progress(f"{prop}: {engine.value}"):
                r = verify(problem, engine, args.timeout)
            wrong += r.verdict.value not in ("unknown", expected)
            cells.append(_cell(r.verdict.value, expected, r.seconds))
        emit(f"  {prop:9s} {expected:10s} " + " ".join(f"{c:>18s}" for c in cells))
    emit(f"\nlegend:\n  {LEGEND}")
    emit(f"\nnext: optcert verify {folder / NETWORK} {folder / 'prop_1.vnnlib'} --engine bnb --json r.json\n"
         f"      optcert engines     (what each engine answers, and its options)")
    return 1 if wrong else 0
