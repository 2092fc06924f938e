"""Where training jobs run: in-process, a local process pool, or Ray.

A *job* is one group of configs that share structure (one vmapped program),
optionally with starting parameters (warm start) and a checkpoint file. Every
executor runs jobs and yields ``(job index, results)`` as jobs finish; results
are plain dicts (status, best accuracy, iterations, seconds, history, and the
final parameters where asked for). Workers never touch the results store: the
driver writes it.

* ``local``: in this process, one job after another (default).
* ``process``: one single-threaded XLA process per core (``spawn``), vmap inside
  each; on CPU this beats one multi-threaded process (:mod:`localrnn.runtime`).
* ``ray``: Ray tasks of one CPU each, on a local Ray started here (``num_cpus``)
  or an existing cluster (``address``). Needs the optional extra ``localrnn[ray]``.

Workers never outlive their driver: a pool worker asks the kernel for SIGKILL when its
parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``) and, on every platform, a watchdog thread
exits it within :data:`WATCHDOG_SECONDS` once its parent process is gone (even while a job
runs). With no worker left, the multiprocessing resource tracker sees its pipe close and
exits too. A local Ray's processes share the driver's fate through Ray's own cleanup.
"""

from __future__ import annotations

import abc
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from localrnn.runtime import single_threaded_xla, worker_environment

__all__ = ["Job", "run_job", "Executor", "LocalExecutor", "ProcessExecutor", "RayExecutor",
           "make_executor", "EXECUTORS", "WATCHDOG_SECONDS"]

EXECUTORS = ("local", "process", "ray")
#: how often a pool worker checks that its driver is alive (seconds)
WATCHDOG_SECONDS = 0.5


@dataclass
class Job:
    """One vmapped group: configs as JSON dicts (TrainConfig fields).

    ``warm_starts``: per config None (seeded start) or ``{"params": {field: array},
    "rule_state": [leaves]}`` to start from; ``keep_state``: return each config's final
    params and rule state (``RunResult.to_dict(keep_state=True)``); ``priority``: executors start
    the waiting job with the highest priority first, equal ones in list order.
    """

    configs: list[dict]
    warm_starts: list[dict | None] | None = None
    checkpoint: str | None = None
    keep_state: bool = False
    meta: dict = field(default_factory=dict)
    priority: int = 0


def run_job(job: Job) -> list[dict]:
    """Train one job and return its results as plain dicts (runs in any worker)."""
    from localrnn.config import TrainConfig
    from localrnn.train import train

    configs = [TrainConfig(**c) for c in job.configs]
    warm = job.warm_starts or [None] * len(configs)
    params = [None if w is None else w["params"] for w in warm]
    rule_state = [None if w is None else (w.get("rule_state") or None) for w in warm]
    results = train(configs, checkpoint=job.checkpoint, resume=bool(job.checkpoint),
                    initial_params=params, initial_rule_state=rule_state)
    return [r.to_dict(keep_state=job.keep_state) for r in results]


def _exit_with_parent(parent: int, kernel_signal: bool) -> None:
    """Make this process end when ``parent`` does: SIGKILL from the kernel on Linux where
    ``kernel_signal`` (the kernel sends it when the parent *thread* that started us exits, so only
    when that is the parent's main thread), and a daemon thread that polls the parent pid (the
    fallback everywhere, and for a parent that died before the request was made)."""
    if kernel_signal and sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="localrnn-parent-watchdog", daemon=True).start()


def _init_worker(parent: int, started_by_main_thread: bool) -> None:
    """A pool worker: one XLA thread on the CPU (before JAX builds its backend); it exits when
    its driver ``parent`` dies."""
    _exit_with_parent(parent, started_by_main_thread)
    single_threaded_xla(override=True)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def next_job(jobs: Sequence[Job], started: set[int]) -> int | None:
    """Index of the job to start next: the highest ``priority`` not yet started, the first in the
    list among equals; None when every job has started."""
    best = None
    for i, job in enumerate(jobs):
        if i not in started and (best is None or job.priority > jobs[best].priority):
            best = i
    return best


def _bounded(jobs: Sequence[Job], workers: int, submit: Callable, wait_any: Callable, result: Callable,
             cancel: Callable | None = None) -> Iterator[tuple[int, list[dict]]]:
    """At most ``workers`` jobs running, the next one :func:`next_job`'s pick (jobs appended to
    ``jobs`` meanwhile included); yield ``(index, results)`` as they finish. ``submit(job)`` returns
    a handle, ``wait_any(handles)`` some finished ones, ``result(handle)`` their results; on exit the
    handles still running are ``cancel``'d. A finished handle (and its results) is let go."""
    started: set[int] = set()
    running: dict = {}  # handle -> job index
    try:
        while True:
            while len(running) < workers and (i := next_job(jobs, started)) is not None:
                started.add(i)
                running[submit(jobs[i])] = i
            if not running:
                return
            for h in sorted(wait_any(running), key=running.get):
                yield running.pop(h), result(h)
    finally:
        for h in running if cancel else ():
            cancel(h)


class Executor(abc.ABC):
    """Base: ``run(jobs)`` yields ``(index, results)`` as jobs finish. Jobs appended to the
    ``jobs`` list while its iteration runs are run too (a curriculum adds each ladder's next
    length as soon as its current one is done). At most ``workers`` jobs run at once; the next
    one is :func:`next_job`'s pick."""

    name = "base"
    workers = 1

    @abc.abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, list[dict]]]:
        """Run ``jobs`` (and any appended meanwhile); yield each job's index and results as it finishes."""

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
        started: set[int] = set()
        while (i := next_job(jobs, started)) is not None:
            started.add(i)
            yield i, run_job(jobs[i])


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
                                             initializer=_init_worker,
                                             initargs=(os.getpid(), threading.current_thread() is threading.main_thread()))
        return self._pool

    def run(self, jobs):
        from concurrent.futures import FIRST_COMPLETED, wait

        if not jobs:
            return
        pool = self._get_pool()
        yield from _bounded(jobs, self.workers, lambda job: pool.submit(run_job, job),
                            lambda running: wait(running, return_when=FIRST_COMPLETED).done,
                            lambda f: f.result(), cancel=lambda f: f.cancel())

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
        env = {"env_vars": worker_environment()}
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
        yield from _bounded(jobs, self.workers, self._remote.remote,
                            lambda running: ray.wait(list(running), num_returns=1)[0], ray.get)

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
