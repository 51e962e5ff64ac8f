"""The engine registry: each `Engine` is one `EngineEntry` (typed options class, run function,
one-line summary). Imports are explicit so import tools see every dependency; no engine module
imports torch at module level, so loading the registry stays cheap."""
from __future__ import annotations

from dataclasses import dataclass, is_dataclass
from enum import Enum
from typing import Any, Callable, Mapping

from optcert.engines.attack import run_attack
from optcert.engines.auto import AutoOptions, run_auto
from optcert.engines.bnb import BnbOptions, run_bnb
from optcert.engines.bounds import (
    AlphaCrownOptions,
    CrownOptions,
    IntervalOptions,
    run_alpha_crown,
    run_crown,
    run_interval,
)
from optcert.engines.linear import LpOptions, MilpOptions, run_lp, run_milp
from optcert.engines.lipschitz import LipschitzOptions, run_lipschitz
from optcert.engines.sdp import BmOptions, SdpOptions
from optcert.engines.sdp_evidence import run_bm_checked, run_sdp_checked
from optcert.engines.smoothing import SmoothingOptions, run_smoothing
from optcert.errors import InvalidOptionError
from optcert.options import build_options
from optcert.search.attack import AttackOptions


class Engine(Enum):
    AUTO = "auto"
    ATTACK = "attack"
    INTERVAL = "interval"
    CROWN = "crown"
    ALPHA_CROWN = "alpha-crown"
    LP = "lp"
    MILP = "milp"
    SDP = "sdp"
    BM = "bm"
    BNB = "bnb"
    LIPSCHITZ = "lipschitz"
    SMOOTHING = "smoothing"


@dataclass(frozen=True)
class EngineEntry:
    """`options`: the engine's frozen options dataclass; `run(problem, compiled, options, deadline)
    -> EngineOutput`; `summary`: what it answers, in one line."""

    options: type
    run: Callable[..., Any]
    summary: str


ENGINES: dict[Engine, EngineEntry] = {
    Engine.AUTO: EngineEntry(AutoOptions, run_auto,
                             "portfolio: falsifier, then input / ReLU splitting and MILP chosen and interleaved "
                             "by measured progress: PROVED / FALSIFIED, complete"),
    Engine.ATTACK: EngineEntry(AttackOptions, run_attack, "PGD attack: FALSIFIED or UNKNOWN"),
    Engine.INTERVAL: EngineEntry(IntervalOptions, run_interval, "interval bound propagation (IBP): PROVED or UNKNOWN"),
    Engine.CROWN: EngineEntry(CrownOptions, run_crown,
                              "CROWN / Fast-Lin linear bounds (torch, any device): PROVED or UNKNOWN"),
    Engine.ALPHA_CROWN: EngineEntry(AlphaCrownOptions, run_alpha_crown,
                                    "alpha-CROWN, output slopes optimised by Adam: PROVED or UNKNOWN"),
    Engine.LP: EngineEntry(LpOptions, run_lp, "LP triangle relaxation, bound certified from duals: PROVED, "
                           "FALSIFIED (when an LP optimum is a real counterexample) or UNKNOWN"),
    Engine.MILP: EngineEntry(MilpOptions, run_milp,
                             "exact big-M MILP after PGD and bound tightening: PROVED / FALSIFIED (solver-trusted)"),
    Engine.SDP: EngineEntry(SdpOptions, run_sdp_checked,
                            "full SDP relaxation, bound certified from the conic duals: PROVED, "
                            "FALSIFIED (when its primal point is a real counterexample) or UNKNOWN"),
    Engine.BM: EngineEntry(BmOptions, run_bm_checked,
                           "rank-r Burer–Monteiro SDP with staircase, certified from its multipliers: "
                           "PROVED, FALSIFIED (PGD warm starts and factor points) or UNKNOWN"),
    Engine.BNB: EngineEntry(BnbOptions, run_bnb,
                            "branch and bound (batched alpha/beta-CROWN, LP leaves): PROVED / FALSIFIED, complete"),
    Engine.LIPSCHITZ: EngineEntry(LipschitzOptions, run_lipschitz,
                                  "global Lipschitz bound (proven spectral norms) × L2 radius: PROVED or UNKNOWN"),
    Engine.SMOOTHING: EngineEntry(SmoothingOptions, run_smoothing,
                                  "randomized smoothing CERTIFY: always UNKNOWN for the network; the smoothed "
                                  "classifier's verdict is in the certificate"),
}

DEFAULT_ENGINE = Engine.AUTO


def engine_from(name: str | Engine) -> Engine:
    """The Engine called `name`; InvalidOptionError if unknown."""
    try:
        return name if isinstance(name, Engine) else Engine(str(name).lower())
    except ValueError:
        raise InvalidOptionError(f"unknown engine {name!r}; choose from "
                                 f"{', '.join(e.value for e in ENGINES)}") from None


def engine_options(engine: Engine | str, values: Mapping[str, Any] | Any | None = None) -> Any:
    """Typed options for `engine` from a mapping (or an options instance, returned as is)."""
    cls = ENGINES[engine_from(engine)].options
    if is_dataclass(values) and not isinstance(values, type):
        if not isinstance(values, cls):
            raise InvalidOptionError(f"{type(values).__name__} is not the options type of this engine ({cls.__name__})")
        return values
    return build_options(cls, values if isinstance(values, Mapping) else None)
