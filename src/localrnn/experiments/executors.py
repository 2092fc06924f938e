"""Where training jobs run: in-process, a local process pool, or Ray.

A *job* is one group of configs that share structure (one vmapped program),
optionally with starting parameters (warm start) and a checkpoint file. Every
executor runs jobs and yields ``(job index, results)`` as jobs finish; results
are plain dicts (status, best accuracy, iterations, seconds, history, and the
final parameters where asked for). Workers never touch the results store: the
driver writes it.

* ``local``: in this process, one job after another (default).
* ``process``: one single-threaded XLA process per core (``spawn``), vmap inside
  each; on CPU this beats one multi-threaded process (DESIGN.md, measured facts).
* ``ray``: Ray tasks of one CPU each, on a local Ray started here (``num_cpus``)
  or an existing cluster (``address``). Needs the optional extra ``localrnn[ray]``.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

__all__ = ["Job", "run_job", "Executor", "LocalExecutor", "ProcessExecutor", "RayExecutor",
           "make_executor", "EXECUTORS", "SINGLE_THREAD_XLA_FLAGS"]

SINGLE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
EXECUTORS = ("local", "process", "ray")


@dataclass
class Job:
    """One vmapped group: configs as JSON dicts (TrainConfig fields)."""

    configs: list[dict]
    initial_params: list[dict] | None = None
    checkpoint: str | None = None
    keep_params: bool = False
    meta: dict = field(default_factory=dict)


def _params_dict(p: Any) -> dict:
    import numpy as np

    return {k: np.asarray(getattr(p, k)) for k in p._fields}


def run_job(job: Job) -> list[dict]:
    """Train one job and return its results as plain dicts (runs in any worker)."""
    import numpy as np

    from localrnn.config import TrainConfig
    from localrnn.model import Params
    from localrnn.train import train

    configs = [TrainConfig(**c) for c in job.configs]
    init = None
    if job.initial_params is not None:
        init = [Params(**{k: np.asarray(v) for k, v in p.items()}) for p in job.initial_params]
    resume = bool(job.checkpoint)
    results = train(configs, checkpoint=job.checkpoint, resume=resume, initial_params=init)
    out = []
    for r in results:
        d = {"status": r.status, "best_accuracy": float(r.best_accuracy), "best_iteration": int(r.best_iteration),
             "iterations": int(r.iterations), "seconds": float(r.seconds),
             "history": [{k: float(v) if k not in ("iteration", "val_errors") else int(v) for k, v in h.items()}
                         for h in r.history]}
        if job.keep_params and r.params is not None:
            d["params"] = _params_dict(r.params)
        out.append(d)
    return out


def _init_worker() -> None:
    """Pin a pool worker to one XLA thread on the CPU (before JAX builds its backend)."""
    os.environ["XLA_FLAGS"] = SINGLE_THREAD_XLA_FLAGS
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


class Executor(abc.ABC):
    """Base: ``run(jobs)`` yields ``(index, results)`` as jobs finish."""

    name = "base"
    workers = 1

    @abc.abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, list[dict]]]:
        """Run ``jobs``; yield each job's index and results as it finishes."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """In this process, one job after another."""

    name = "local"
    workers = 1

    def run(self, jobs):
        for i, job in enumerate(jobs):
            yield i, run_job(job)


class ProcessExecutor(Executor):
    """A pool of ``workers`` spawned processes (default: one per core), single-threaded XLA each."""

    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker)
        return self._pool

    def run(self, jobs):
        from concurrent.futures import FIRST_COMPLETED, wait

        if not jobs:
            return
        pool = self._get_pool()
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=lambda f: futures[f]):
                    yield futures[f], f.result()
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor(Executor):
    """Ray tasks of one CPU each: a local Ray with ``num_cpus`` (default 2) or the cluster at ``address``."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("the ray executor needs Ray: pip install 'localrnn[ray]'") from None
        self._ray = ray
        self._started = False
        env = {"env_vars": {"XLA_FLAGS": SINGLE_THREAD_XLA_FLAGS, "JAX_PLATFORMS": "cpu"}}
        if not ray.is_initialized():
            if address:
                ray.init(address=address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus or 2, include_dashboard=False, runtime_env=env,
                         log_to_driver=False, configure_logging=False)
            self._started = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_job)

    def run(self, jobs):
        ray = self._ray
        refs = {self._remote.remote(job): i for i, job in enumerate(jobs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield refs[ref], ray.get(ref)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(name: str = "local", *, workers: int | None = None, address: str | None = None) -> Executor:
    """An executor by name (``local`` | ``process`` | ``ray``)."""
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=workers)
    raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
