"""How many threads the model steps (scikit-learn, UMAP, BLAS) run on: one unless asked.

scikit-learn's boosted trees and k-means use OpenMP, NumPy's linear algebra uses OpenBLAS; both
keep their worker threads spinning between parallel regions. On a host whose cores are shared
(a scheduler's worker running several flows, a CI runner, a virtual machine with neighbours)
a spinning thread waits for a descheduled partner at every region. Measured on this project's
2-core reference host under load: the likely-persona boosting at 2,000-50,000 rows took 25-35
times the CPU-seconds with two threads (50,000 rows: 40 CPU-s against 1.2, 109 s wall against
4), k-means on 200,000 rows three times; a refit of the 3,000-customer demo spent 713 of its
855 s there. One thread loses at most the second core on an idle machine, so it is the
default; ``PERSONAS_MODEL_THREADS=N`` gives the model steps N threads on a dedicated machine.
DuckDB's own threads (the feature SQL, ingestion) are not affected.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from personas.errors import ConfigError

ENV = "PERSONAS_MODEL_THREADS"

P = ParamSpec("P")
R = TypeVar("R")


def model_threads() -> int:
    """Threads for the model steps: ``PERSONAS_MODEL_THREADS``, else 1."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{ENV}={raw!r}: expected a whole number of threads, 1 or more")
    return n


@contextmanager
def limited_threads() -> Iterator[None]:
    """OpenMP and BLAS thread pools capped at :func:`model_threads` inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=model_threads()):
        yield


def with_model_threads(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` inside :func:`limited_threads` (nesting is harmless)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with limited_threads():
            return fn(*args, **kwargs)

    return wrapper
