"""`optcert demo`: every fast engine on the bundled ACAS Xu network and VNN-LIB properties 1–4."""
from __future__ import annotations

from pathlib import Path

from optcert.cli.common import set_threads

NAME = "demo"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def add_subcommand(sub) -> None:
    d = sub.add_parser(NAME, help="run the engines on the bundled ACAS Xu example")
    d.add_argument("--timeout", type=float, default=10.0, help="seconds per engine and property (default 10)")


def run(args) -> int:
    from optcert.engines.registry import ENGINES, Engine
    from optcert.ir.load import load_network
    from optcert.progress import progress
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.verify import verify

    engines = [e for e in ENGINES if e not in (Engine.SDP, Engine.BM)]  # minutes each on ACAS Xu: see bench/
    set_threads(1)
    folder = EXAMPLES / "acasxu"
    net = load_network(folder / "ACASXU_run2a_2_1_batch_2000.onnx")
    expected = {"prop_1": "holds", "prop_2": "violated", "prop_3": "holds", "prop_4": "holds"}
    print(f"optcert demo: ACAS Xu network 2_1 ({net.summary().neurons} ReLUs), VNN-LIB properties 1-4")
    print(f"  {'property':9s} {'expected':9s} " + " ".join(f"{e.value:>14s}" for e in engines))
    for prop, truth in expected.items():
        problem = read_vnnlib(folder / f"{prop}.vnnlib").problem(net, name=prop)
        cells = []
        for engine in engines:
            with progress(f"{prop}: {engine.value}"):
                r = verify(problem, engine, args.timeout)
            cells.append(f"{r.verdict.value:>9s} {r.seconds:4.1f}s")
        print(f"  {prop:9s} {truth:9s} " + " ".join(cells))
    return 0
