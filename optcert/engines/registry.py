"""The engine registry: each `Engine` is one `EngineEntry` (typed options class, run function,
one-line summary). An engine's module is imported the first time its entry is read (`ENGINES`
is a mapping that loads on demand): a run loads the engine it uses, not all twelve (the others
cost 0.15 s of every start-up, scipy and the lowerings among them)."""
from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from dataclasses import dataclass, is_dataclass
from enum import Enum
from typing import Any, Callable, Iterator, Mapping

from optcert.errors import InvalidOptionError
from optcert.options import build_options


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


#: Engine → (module, options class, run function, summary).
_SOURCES: dict[Engine, tuple[str, str, str, str]] = {
    Engine.AUTO: ("optcert.engines.auto", "AutoOptions", "run_auto",
                  "portfolio: falsifier, then input / ReLU splitting and MILP chosen and interleaved "
                  "by measured progress: PROVED / FALSIFIED, complete"),
    Engine.ATTACK: ("optcert.engines.attack", "AttackOptions", "run_attack", "PGD attack: FALSIFIED or UNKNOWN"),
    Engine.INTERVAL: ("optcert.engines.bounds", "IntervalOptions", "run_interval",
                      "interval bound propagation (IBP): PROVED or UNKNOWN"),
    Engine.CROWN: ("optcert.engines.bounds", "CrownOptions", "run_crown",
                   "CROWN / Fast-Lin linear bounds (torch, any device): PROVED or UNKNOWN"),
    Engine.ALPHA_CROWN: ("optcert.engines.bounds", "AlphaCrownOptions", "run_alpha_crown",
                         "alpha-CROWN, output slopes optimised by Adam: PROVED or UNKNOWN"),
    Engine.LP: ("optcert.engines.linear", "LpOptions", "run_lp",
                "LP triangle relaxation, bound certified from duals: PROVED, "
                "FALSIFIED (when an LP optimum is a real counterexample) or UNKNOWN"),
    Engine.MILP: ("optcert.engines.linear", "MilpOptions", "run_milp",
                  "exact big-M MILP after PGD and bound tightening: PROVED / FALSIFIED (solver-trusted)"),
    Engine.SDP: ("optcert.engines.sdp_evidence", "SdpOptions", "run_sdp_checked",
                 "full SDP relaxation, bound certified from the conic duals: PROVED, "
                 "FALSIFIED (when its primal point is a real counterexample) or UNKNOWN"),
    Engine.BM: ("optcert.engines.sdp_evidence", "BmOptions", "run_bm_checked",
                "rank-r Burer–Monteiro SDP with staircase, certified from its multipliers: "
                "PROVED, FALSIFIED (PGD warm starts and factor points) or UNKNOWN"),
    Engine.BNB: ("optcert.engines.bnb", "BnbOptions", "run_bnb",
                 "branch and bound (batched alpha/beta-CROWN, LP leaves): PROVED / FALSIFIED, complete"),
    Engine.LIPSCHITZ: ("optcert.engines.lipschitz", "LipschitzOptions", "run_lipschitz",
                       "global Lipschitz bound (proven spectral norms) × L2 radius: PROVED or UNKNOWN"),
    Engine.SMOOTHING: ("optcert.engines.smoothing", "SmoothingOptions", "run_smoothing",
                       "randomized smoothing CERTIFY: always UNKNOWN for the network; the smoothed "
                       "classifier's verdict is in the certificate"),
}


class _Registry(MutableMapping[Engine, EngineEntry]):
    """Engine → EngineEntry, importing an engine's module when its entry is first read (entries
    can be replaced, e.g. by tests)."""

    def __init__(self, sources: dict[Engine, tuple[str, str, str, str]]):
        self._sources = sources
        self._loaded: dict[Engine, EngineEntry] = {}

    def __getitem__(self, engine: Engine) -> EngineEntry:
        if engine not in self._loaded:
            module, options, run, summary = self._sources[engine]
            loaded = importlib.import_module(module)
            self._loaded[engine] = EngineEntry(getattr(loaded, options), getattr(loaded, run), summary)
        return self._loaded[engine]

    def __setitem__(self, engine: Engine, entry: EngineEntry) -> None:
        self._loaded[engine] = entry

    def __delitem__(self, engine: Engine) -> None:
        self._loaded.pop(engine, None)    # back to the module's own entry

    def __iter__(self) -> Iterator[Engine]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


ENGINES = _Registry(_SOURCES)

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
