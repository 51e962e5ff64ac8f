"""Registry of solver backends: one loader per adapter module, imported lazily (explicit imports
inside the loaders, so import tools see every dependency).

`available()` reports every backend (installed? licensed?) without importing optional packages
until asked; `get(name)` returns a backend or raises `BackendUnavailableError` naming the reason.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from optcert.errors import BackendUnavailableError, InvalidOptionError
from solvers.base import Availability, Backend


def _highs() -> Backend:
    from solvers.highs import BACKEND
    return BACKEND


def _gurobi() -> Backend:
    from solvers.gurobi import BACKEND
    return BACKEND


def _scip() -> Backend:
    from solvers.scip import BACKEND
    return BACKEND


def _scs() -> Backend:
    from solvers.scs import BACKEND
    return BACKEND


def _clarabel() -> Backend:
    from solvers.clarabel import BACKEND
    return BACKEND


def _mosek() -> Backend:
    from solvers.mosek import BACKEND
    return BACKEND


def _torch_lowrank() -> Backend:
    from solvers.torch_lowrank import BACKEND
    return BACKEND


def _ipopt_lowrank() -> Backend:
    from solvers.ipopt_lowrank import BACKEND
    return BACKEND


#: name -> loader of the adapter instance. Adding a backend is one loader and one line here.
BACKENDS: dict[str, Callable[[], Backend]] = {
    "highs": _highs,
    "gurobi": _gurobi,
    "scip": _scip,
    "scs": _scs,
    "clarabel": _clarabel,
    "mosek": _mosek,
    "torch-lowrank": _torch_lowrank,
    "ipopt-lowrank": _ipopt_lowrank,
}

#: The licence-free default per form kind.
DEFAULTS: dict[str, str] = {"lp": "highs", "milp": "highs", "conic": "scs", "lowrank": "torch-lowrank"}


@lru_cache(maxsize=None)
def _load(name: str) -> Backend:
    return BACKENDS[name]()


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
