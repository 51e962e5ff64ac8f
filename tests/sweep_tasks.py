"""Task functions for the sweep tests (imported by name in the sweep's child processes)."""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from optcert.sweeps.run import TaskOutput, output_from_result


def nap(seconds: float, value: float) -> TaskOutput:
    """Sleep, then report `value` as an exact bound."""
    time.sleep(seconds)
    return TaskOutput("unknown", value, value, f"slept {seconds} s", {"value": value})


def fail(message: str) -> TaskOutput:
    raise ValueError(message)


def crash(code: int) -> TaskOutput:
    os._exit(code)


def not_an_output() -> dict:
    return {"verdict": "proved"}


def hog(megabytes: int, seconds: float) -> TaskOutput:
    """Hold `megabytes` of touched memory for `seconds`."""
    block = np.ones(megabytes * 2**20 // 8)
    time.sleep(seconds)
    return TaskOutput("unknown", float(block[0]), None, "held", {})


def kill_parent_unless(protected_pid: int) -> TaskOutput:
    """Kill the process that started this task's child (a dask worker), never `protected_pid`."""
    parent = os.getppid()
    if parent != protected_pid:
        os.kill(parent, signal.SIGKILL)
    time.sleep(30)
    return TaskOutput("unknown", None, None, "parent survived", {})


def verify_random(seed: int, engine: str, eps: float) -> TaskOutput:
    """`verify` with `engine` on a tiny random MLP around a random point."""
    from optcert.spec.problem import robustness_problem
    from optcert.verify import verify
    from tests.builders import random_mlp

    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [4, 8, 8, 3])
    x = rng.uniform(0.2, 0.8, size=4)
    label = int(np.argmax(net.forward(x.reshape(1, -1))[0]))
    result = verify(robustness_problem(net, x, label, eps), engine, timeout=20)
    return output_from_result(result, {"seed": seed})
