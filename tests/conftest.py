"""Shared fixtures: torch and BLAS on one thread (faster and steadier on this 2-core machine), and the
shared benchmark folder (tests that need it skip with a reason when it is absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import BENCHMARKS


def _single_thread():
    from optcert.threads import limit_threads

    limit_threads(1)


_single_thread()


@pytest.fixture(scope="session")
def benchmarks() -> Path:
    if not BENCHMARKS.is_dir():
        pytest.skip(f"shared benchmarks not found at {BENCHMARKS} (set OPTCERT_BENCHMARKS)")
    return BENCHMARKS


