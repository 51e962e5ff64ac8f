"""Issue 13, item 2: would warm-starting the torch low-rank backend's multipliers (e.g. from the LP
duals) make it certify sooner? An oracle answers for every such warm start at once: start it from the
*optimal* multipliers of the same rank-r problem (the interior point's, certified), which no LP dual
can beat, and from the optimal multipliers together with the optimal factor U.

ADV-MLP-B eps 0.1, image 0 of mnist_test_30.npz, one target row, LP-ALL boxes, rank L + 1; each start
is solved by torch-lowrank with a monitor that certifies every outer iteration's multipliers
(certificates/sdp.certify) and stops at the first certified bound ≥ GOAL (the issue's targets: 2.69 /
2.03 / 1.62 for targets 2 / 3 / 9). CPU seconds to that bound, one thread.

    python bench/bm_warm_start.py [--target 9] [--goal 1.62] [--limit 300]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import RESULTS, machine, markdown_table  # noqa: E402
from sdp_seed import problem  # noqa: E402


def main() -> None:
    from optcert.certificates.sdp import certify
    from optcert.compiled import compile_problem
    from optcert.engines.common import tightened
    from optcert.forms import Limits
    from optcert.lowerings.quadratic import ActiveMode, network_point, relu_qcqp
    from optcert.lowerings.sdp_lowrank import lower_lowrank
    from optcert.solve.progressive import Tightening
    from optcert.threads import limit_threads
    from solvers.ipm_lowrank import BACKEND as IPM
    from solvers.ipm_lowrank import IpmOptions
    from solvers.torch_lowrank import BACKEND as TORCH
    from solvers.torch_lowrank import LowRankOptions

    limit_threads(1)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=int, default=9)
    p.add_argument("--goal", type=float, default=1.62)
    p.add_argument("--limit", type=float, default=300.0, help="wall seconds per torch solve")
    p.add_argument("--out", type=Path, default=RESULTS / "bm_warm_start.md")
    args = p.parse_args()
    cc = compile_problem(problem(0, targets=[args.target]))[0]
    bounds = tightened(cc, Tightening.LP, "highs", time.monotonic() + 600, {})
    lowered = relu_qcqp(cc.net, bounds, 0, True, True, ActiveMode.SUBSTITUTE)
    model, rank = lowered.form, len(cc.net.layers) + 1
    first = np.zeros((model.n + 1, 1))
    first[0, 0], first[1:, 0] = 1.0, network_point(lowered, cc.net, cc.case.box.center)
    t = time.process_time()
    ipm = IPM.solve_model(model, model.objective, rank, first, Limits(time_limit=600), IpmOptions(), None, None)
    ipm_cpu = time.process_time() - t
    y_opt, u_opt = ipm.row_duals, np.asarray(ipm.x).reshape(model.n + 1, rank)
    u_default = lower_lowrank(lowered, cc.net, cc.case.box.center, rank).form.start()
    certified = certify(model, y_opt, ipm.objective, deadline=time.monotonic() + 10.0, primal=ipm.objective).bound
    rows = [["ipm-lowrank from zero multipliers (the optimum)", f"{certified:.4f}", f"{ipm.objective:.4f}",
             f"{ipm_cpu:.1f}", ipm.status.value]]
    for name, duals, start in (("zero multipliers, default start", None, u_default),
                               ("optimal multipliers, default start", y_opt, u_default),
                               ("optimal multipliers and optimal U", y_opt, u_opt)):
        hit: dict[str, float] = {}
        t = time.process_time()

        def monitor(y, objective, t=t, hit=hit) -> bool:
            bound = certify(model, y, objective, deadline=time.monotonic() + 2.0, primal=objective).bound
            hit["best"] = max(hit.get("best", -np.inf), bound)
            if bound >= args.goal and "cpu" not in hit:
                hit["cpu"] = time.process_time() - t
            return bound >= args.goal

        solution = TORCH.solve_batch(model, model.objective[None], rank, start[None], Limits(time_limit=args.limit),
                                     LowRankOptions(), duals=duals, monitors=[monitor])[0]
        rows.append([f"torch-lowrank, {name}", f"{hit.get('best', float('nan')):.4f}",
                     f"{solution.objective:.4f}", f"{hit['cpu']:.1f}" if "cpu" in hit else
                     f"not within {time.process_time() - t:.0f}", solution.status.value])
        print(rows[-1], flush=True)
    text = "\n\n".join([f"# Warm-starting the torch backend's multipliers (oracle), image 0 target {args.target}",
                        f"Machine: {machine()}", f"Goal: a certified bound ≥ {args.goal:g}; torch solves capped at "
                        f"{args.limit:g} s wall. CPU s: to the goal (the interior point: its whole solve).",
                        markdown_table(["solver, start", "best certified", "primal", "CPU s to the goal", "status"],
                                       rows)])
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
