"""One switch for every thread pool a run uses: torch's intra-op pool and the BLAS/OpenMP pools
behind numpy and scipy.

Why it matters: on a machine whose cores are busy, multi-threaded BLAS spins and waits on its
own threads. Measured on this 2-core VM under load: one SDP certificate (two dense 871×871
eigendecompositions and Cholesky factorisations) took 40.8 s with OpenBLAS's default 2 threads
and 1.3 s with 1 thread. The command line and the VNN-COMP entry point therefore run with 1
thread unless told otherwise (`--threads N`).

`limit_threads` imports nothing heavy (importing torch costs 2–4 s): it sets the thread-count
environment variables that OpenMP, OpenBLAS, MKL and torch read when they are loaded, calls
`torch.set_num_threads` only if torch is loaded already, and limits the BLAS libraries already
loaded through threadpoolctl. So a numpy-only run never pays for torch.
"""
from __future__ import annotations

import os
import sys

from optcert.errors import InvalidOptionError

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
            "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_limiter = None   # the active threadpoolctl limit (kept alive so it stays in force)
_threads: int | None = None


def limit_threads(n: int) -> None:
    """Use at most `n` threads in torch and in the BLAS/OpenMP libraries, loaded now or later
    (InvalidOptionError unless `n` is an integer ≥ 1). Child processes inherit the limit."""
    global _limiter, _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidOptionError(f"threads must be an integer ≥ 1, got {n!r}")
    for var in ENV_VARS:
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "numpy" in sys.modules or "scipy" in sys.modules:   # BLAS already loaded: the variables come too late
        from threadpoolctl import threadpool_limits

        _limiter = threadpool_limits(limits=n)
    _threads = n


def thread_limit() -> int | None:
    """The limit set by `limit_threads` in this process (None when it was never called)."""
    return _threads
