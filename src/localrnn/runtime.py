"""Process-level runtime settings, written once: how XLA uses the CPU threads.

On a CPU, one single-threaded XLA process per core (the ``process`` executor) beats one
multi-threaded process (measured; docs/protocols.md). Every place that wants a
single-threaded XLA -- pool workers, Ray workers, the test suite, benchmarks, scripts --
uses :data:`SINGLE_THREAD_XLA_FLAGS` through :func:`single_threaded_xla`.
XLA reads ``XLA_FLAGS`` when JAX builds its CPU backend (the first computation), so call
it before any array is created.
"""

from __future__ import annotations

import os

__all__ = ["SINGLE_THREAD_XLA_FLAGS", "single_threaded_xla", "worker_environment"]

#: XLA on one CPU thread (no Eigen thread pool, one intra-op thread)
SINGLE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def single_threaded_xla(override: bool = False) -> None:
    """Set ``XLA_FLAGS`` to one thread; keep a value the user set unless ``override``."""
    if override:
        os.environ["XLA_FLAGS"] = SINGLE_THREAD_XLA_FLAGS
    else:
        os.environ.setdefault("XLA_FLAGS", SINGLE_THREAD_XLA_FLAGS)


def worker_environment() -> dict[str, str]:
    """Environment of an executor's worker: single-threaded XLA on the CPU."""
    return {"XLA_FLAGS": SINGLE_THREAD_XLA_FLAGS, "JAX_PLATFORMS": "cpu"}
