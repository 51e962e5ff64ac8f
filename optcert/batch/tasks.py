"""The task each batch instance runs in a sweep child process: verify within the instance's time
limit (loading included, as in VNN-COMP), write its result files, report to the store.

Files: `<results>/<name>.json` (the full `Result`: verdict, bounds, row sources, certificate,
provenance) and `<results>/<name>.txt` (the VNN-COMP result: sat + assignment / unsat / timeout /
unknown). They are written before the task returns, so a finished instance keeps its files even if
the batch is killed right after.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from optcert.batch.instances import BatchInstance


def task_key(inst: BatchInstance, engine: str, options: Mapping[str, Any], timeout: float):
    """The results-store key of an instance run: network and property by content, the engine, its
    options, the time limit and the instance's name (each row of the CSV gets its own run and files)."""
    from optcert.sweeps.store import RunKey, canonical_options, network_hash, vnnlib_property_id

    return RunKey(network_hash(inst.onnx), vnnlib_property_id(inst.vnnlib), f"run:{engine}",
                  canonical_options({**options, "timeout": timeout, "instance": inst.name}))


def run_batch_instance(onnx: str, vnnlib: str, timeout: float, engine: str, options: Mapping[str, Any],
                       results: str, name: str, command: str | None = None):
    """Verify one instance; write `<results>/<name>.json` and `.txt`; a TaskOutput for the store."""
    from optcert.ir.load import load_network
    from optcert.outputs import write_text
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.sweeps.run import TaskOutput
    from optcert.verify import verify

    start = time.monotonic()
    network = load_network(onnx)
    problem = read_vnnlib(vnnlib).problem(network, name=name)
    remaining = max(timeout - (time.monotonic() - start), 1e-3)
    result = verify(problem, engine, remaining, options, inputs={"network": onnx, "property": vnnlib},
                    command=command)
    folder = Path(results)
    write_text(folder / f"{name}.json", result.to_json())
    write_text(folder / f"{name}.txt", result.vnncomp_text())
    extra = {"timed_out": result.timed_out, "clean_violation": result.clean_violation,
             "wall": time.monotonic() - start, "engine_seconds": result.seconds,
             "row_source": sorted(set(result.row_source)), "result": f"{name}.json"}
    return TaskOutput(result.verdict.value, _finite(result.bound), _finite(result.upper), result.reason, extra)


def _finite(value: float) -> float | None:
    import math

    return float(value) if math.isfinite(value) else None
