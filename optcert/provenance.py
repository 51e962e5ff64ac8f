"""Provenance recorded in every `Result`: what made it, from which files, on which machine.

`provenance(time_limit, inputs, command)` → a JSON-friendly dict:

* `optcert`: optcert's version; `python`: the interpreter's; `packages`: the installed versions of
  the numerical stack and of every solver package (read from the installed metadata, nothing is
  imported; absent ones are left out);
* `command`: the command line (None from Python), `inputs`: {role: {"path", "sha256"}} of the files
  read (network, property, images, ...);
* `machine`: platform, logical cores, cores this process may use, and the thread limit set by
  `optcert.threads.limit_threads` (None when never set);
* `time_limit`: seconds given to the engine; `created`: UTC time, ISO 8601.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

PACKAGES = ("numpy", "scipy", "torch", "onnx", "networkx", "highspy", "scs", "clarabel", "gurobipy",
            "pyscipopt", "mosek", "maraboupy")
_HASHES: dict[tuple[str, int, int], str] = {}
_VERSIONS: dict[str, str] = {}


def sha256(path: str | Path) -> str | None:
    """The file's SHA-256 in hex (cached per path, size and mtime); None when it cannot be read."""
    p = Path(path)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            digest = hashlib.sha256()
            with p.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            _HASHES[key] = digest.hexdigest()
        return _HASHES[key]
    except OSError:
        return None


def package_versions() -> dict[str, str]:
    """Installed versions of `PACKAGES`, read from the names of the `*.dist-info` folders on
    `sys.path` (one directory listing each; nothing is imported and no metadata file is read), with
    `importlib.metadata` only for a package found another way."""
    if not _VERSIONS:
        found = _dist_info_versions()
        for name in PACKAGES:
            key = _normal(name)
            if key in found:
                _VERSIONS[name] = found[key]
            elif importlib.util.find_spec(name) is not None:
                from importlib.metadata import PackageNotFoundError, version

                try:
                    _VERSIONS[name] = version(name)
                except PackageNotFoundError:
                    continue
    return dict(_VERSIONS)


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _dist_info_versions() -> dict[str, str]:
    """{normalised name: version} from `<name>-<version>.dist-info` folders on `sys.path`."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info") and "-" in folder:
                name, _, version = folder[:-len(".dist-info")].partition("-")
                found.setdefault(_normal(name), version)
    return found


def machine() -> dict[str, Any]:
    from optcert.threads import thread_limit

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    uname = platform.uname()
    return {"platform": f"{uname.system} {uname.release}", "processor": uname.machine, "cores": os.cpu_count(),
            "usable_cores": usable, "threads": thread_limit()}


def file_entries(inputs: Mapping[str, str | Path | None]) -> dict[str, dict[str, Any]]:
    """{role: {"path", "sha256"}} for each named input file (None entries skipped)."""
    return {role: {"path": str(path), "sha256": sha256(path)} for role, path in inputs.items() if path is not None}


def provenance(time_limit: float | None, inputs: Mapping[str, str | Path | None] | None = None,
               command: str | None = None) -> dict[str, Any]:
    """The provenance record (module doc)."""
    from optcert.version import __version__

    return {"optcert": __version__, "python": platform.python_version(), "packages": package_versions(),
            "command": command, "inputs": file_entries(inputs or {}), "machine": machine(),
            "time_limit": time_limit, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
