"""One switch for every thread pool a run uses: torch's intra-op pool and the BLAS/OpenMP pools
behind numpy and scipy (through threadpoolctl).

Why it matters: on a machine whose cores are busy, multi-threaded BLAS spins and waits on its
own threads. Measured on this 2-core VM under load: one SDP certificate (two dense 871×871
eigendecompositions and Cholesky factorisations) took 40.8 s with OpenBLAS's default 2 threads
and 1.3 s with 1 thread. The command line and the VNN-COMP entry point therefore run with 1
thread unless told otherwise (`--threads N`).
"""
from __future__ import annotations

from optcert.errors import InvalidOptionError

_limiter = None   # the active threadpoolctl limit (kept alive so it stays in force)


def limit_threads(n: int) -> None:
    """Use at most `n` threads in torch and in the BLAS/OpenMP libraries loaded by now (numpy's and
    scipy's are loaded here first; threadpoolctl cannot reach a library loaded afterwards)."""
    global _limiter
    if not isinstance(n, int) or n < 1:
        raise InvalidOptionError(f"threads must be an integer ≥ 1, got {n!r}")
    import numpy  # noqa: F401  (load numpy's BLAS so that threadpoolctl sees it)
    import scipy.linalg  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    _limiter = threadpool_limits(limits=n)
