"""Registry of solver backends: one line per adapter module, imported lazily.

`available()` reports every backend (installed? licensed?) without importing optional packages
until asked; `get(name)` returns a backend or raises `BackendUnavailableError` naming the reason.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

from optcert.errors import BackendUnavailableError, InvalidOptionError

from solvers.base import Availability, Backend

#: name -> "module:attribute" of the adapter instance. Adding a backend is one line here.
BACKENDS: dict[str, str] = {
    "highs": "solvers.highs:BACKEND",
    "gurobi": "solvers.gurobi:BACKEND",
    "scip": "solvers.scip:BACKEND",
    "scs": "solvers.scs:BACKEND",
    "clarabel": "solvers.clarabel:BACKEND",
    "mosek": "solvers.mosek:BACKEND",
    "torch-lowrank": "solvers.torch_lowrank:BACKEND",
}

#: The licence-free default per form kind.
DEFAULTS: dict[str, str] = {"lp": "highs", "milp": "highs", "conic": "scs", "lowrank": "torch-lowrank"}


@lru_cache(maxsize=None)
def _load(name: str) -> Backend:
    module, attr = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def names() -> list[str]:
    return list(BACKENDS)


def available() -> dict[str, Availability]:
    """Availability of every registered backend (never raises)."""
    report = {}
    for name in BACKENDS:
        try:
            report[name] = _load(name).available()
        except Exception as err:  # an adapter that cannot even load is unavailable, not a crash
            report[name] = Availability(name, False, reason=f"adapter failed to load: {err}")
    return report


def get(name: str) -> Backend:
    """The backend called `name`, if installed and licensed."""
    if name not in BACKENDS:
        raise InvalidOptionError(f"unknown solver {name!r}; known: {', '.join(BACKENDS) or 'none'}")
    backend = _load(name)
    status = backend.available()
    if not status.available:
        raise BackendUnavailableError(f"solver {name!r} is unavailable: {status.reason}")
    return backend


def default(kind: str) -> str:
    """The licence-free default backend name for a form kind ("lp", "milp", "conic", "lowrank")."""
    if kind not in DEFAULTS:
        raise InvalidOptionError(f"unknown form kind {kind!r}; known: {', '.join(DEFAULTS)}")
    return DEFAULTS[kind]
