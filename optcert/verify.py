"""`verify(problem, engine, timeout, options) -> Result`, and the engine registry.

Each engine is one line in `ENGINES`: its typed options class and its run function
(problem, compiled cases, options, deadline) → `EngineOutput`. Verdicts come only from
`certify.conclude`.
"""
from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass, is_dataclass
from enum import Enum
from typing import Any, Mapping

from .certify import EngineOutput, conclude
from .compiled import CompiledCase, compile_problem
from .errors import InvalidOptionError
from .options import build_options, options_dict
from .result import Result
from .spec import VerificationProblem


class Engine(Enum):
    ATTACK = "attack"
    INTERVAL = "interval"
    CROWN = "crown"
    ALPHA_CROWN = "alpha-crown"
    LP = "lp"
    MILP = "milp"
    SDP = "sdp"
    BM = "bm"
    BNB = "bnb"


@dataclass(frozen=True)
class EngineEntry:
    options: str   # "module:Class" of the typed options
    run: str       # "module:function"
    summary: str

    def load(self, which: str):
        module, attr = getattr(self, which).split(":")
        return getattr(importlib.import_module(module), attr)


ENGINES: dict[Engine, EngineEntry] = {
    Engine.ATTACK: EngineEntry("optcert.attack:AttackOptions", "optcert.engines.attack:run_attack",
                               "PGD attack: FALSIFIED or UNKNOWN"),
    Engine.INTERVAL: EngineEntry("optcert.engines.bounds:IntervalOptions", "optcert.engines.bounds:run_interval",
                                 "interval bound propagation (IBP): PROVED or UNKNOWN"),
    Engine.CROWN: EngineEntry("optcert.engines.bounds:CrownOptions", "optcert.engines.bounds:run_crown",
                              "CROWN / Fast-Lin linear bounds (torch, any device): PROVED or UNKNOWN"),
    Engine.ALPHA_CROWN: EngineEntry("optcert.engines.bounds:AlphaCrownOptions",
                                    "optcert.engines.bounds:run_alpha_crown",
                                    "alpha-CROWN, output slopes optimised by Adam: PROVED or UNKNOWN"),
    Engine.LP: EngineEntry("optcert.engines.linear:LpOptions", "optcert.engines.linear:run_lp",
                           "LP triangle relaxation, bound certified from duals: PROVED or UNKNOWN"),
    Engine.MILP: EngineEntry("optcert.engines.linear:MilpOptions", "optcert.engines.linear:run_milp",
                             "exact big-M MILP after PGD and bound tightening: PROVED / FALSIFIED (solver-trusted)"),
    Engine.SDP: EngineEntry("optcert.engines.sdp:SdpOptions", "optcert.engines.sdp:run_sdp",
                            "full SDP relaxation, bound certified from the conic duals: PROVED or UNKNOWN"),
    Engine.BNB: EngineEntry("optcert.engines.bnb:BnbOptions", "optcert.engines.bnb:run_bnb",
                            "branch and bound (batched alpha/beta-CROWN, LP leaves): PROVED / FALSIFIED, complete"),
    Engine.BM: EngineEntry("optcert.engines.sdp:BmOptions", "optcert.engines.sdp:run_bm",
                           "rank-r Burer–Monteiro SDP with staircase, certified from its multipliers: PROVED or UNKNOWN"),
}

DEFAULT_ENGINE = Engine.INTERVAL


def engine_from(name: str | Engine) -> Engine:
    """The Engine called `name`; InvalidOptionError if unknown or not available in this build."""
    try:
        engine = name if isinstance(name, Engine) else Engine(str(name).lower())
    except ValueError:
        raise InvalidOptionError(f"unknown engine {name!r}; choose from "
                                 f"{', '.join(e.value for e in ENGINES)}") from None
    if engine not in ENGINES:
        raise InvalidOptionError(f"engine {engine.value!r} is not implemented yet; available: "
                                 f"{', '.join(e.value for e in ENGINES)}")
    return engine


def engine_options(engine: Engine | str, values: Mapping[str, Any] | Any | None = None):
    """Typed options for `engine` from a mapping (or an options instance, returned as is)."""
    entry = ENGINES[engine_from(engine)]
    cls = entry.load("options")
    if is_dataclass(values) and not isinstance(values, type):
        if not isinstance(values, cls):
            raise InvalidOptionError(f"{type(values).__name__} is not the options type of this engine ({cls.__name__})")
        return values
    return build_options(cls, values)


def verify(problem: VerificationProblem, engine: Engine | str = DEFAULT_ENGINE, timeout: float = 60.0,
           options: Mapping[str, Any] | Any | None = None,
           compiled: list[CompiledCase] | None = None) -> Result:
    """Run `engine` on `problem` within `timeout` seconds and return a certified `Result`."""
    engine = engine_from(engine)
    if not (timeout > 0):
        raise InvalidOptionError(f"timeout must be positive, got {timeout}")
    opts = engine_options(engine, options)
    start = time.monotonic()
    deadline = start + timeout if math.isfinite(timeout) else math.inf
    timings: dict[str, float] = {}
    if compiled is None:
        compiled = compile_problem(problem)
        timings["compile"] = time.monotonic() - start
    t = time.monotonic()
    try:
        out = ENGINES[engine].load("run")(problem, compiled, opts, deadline)
    except MemoryError:
        out = EngineOutput(lower=[cc.ibp.lower[-1] * 0 - math.inf for cc in compiled],
                           reason="out of memory")
    timings["engine"] = time.monotonic() - t
    if time.monotonic() > deadline and not out.reason:
        out.timed_out, out.reason = True, f"time limit of {timeout:g} s reached"
    t = time.monotonic()
    result = conclude(problem, compiled, out, engine.value, options_dict(opts), timings)
    timings["certify"] = time.monotonic() - t
    return result
