"""Grid sweeps: spec -> trials -> vmapped groups -> executor -> store.

Resumable by construction: trials are keyed by the hash of their resolved
config and seed, complete ones (solved, failed, diverged) are skipped, the rest
are grouped by structure into jobs in a fixed order (so a restarted sweep forms
the same jobs and picks up their checkpoints), and each job's results are written
in one transaction as it finishes.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

from localrnn.experiments.executors import Executor, Job, LocalExecutor
from localrnn.experiments.spec import ExperimentSpec, PlannedTrial, active_arms, plan
from localrnn.experiments.store import Store

__all__ = ["SweepSummary", "experiment_name", "make_jobs", "run_sweep", "run_trials"]

#: configs per vmapped job at most (bounds memory and the cost of a straggler)
MAX_GROUP = 64


@dataclass
class SweepSummary:
    experiment: str
    total: int = 0
    skipped: int = 0
    ran: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def experiment_name(spec: ExperimentSpec, budget: str) -> str:
    return f"{spec.name}:{budget}"


def make_jobs(trials: Sequence[PlannedTrial], workers: int = 1, max_group: int = MAX_GROUP) -> list[list[int]]:
    """Indices of ``trials`` grouped by structure and chunked, deterministically.

    With several workers a structure group is split so that every worker gets work.
    """
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(trials):
        groups.setdefault(t.config.structure_key(), []).append(i)
    jobs = []
    n_groups = len(groups)
    for idx in groups.values():
        parts = max(1, math.ceil(workers / n_groups)) if workers > 1 else 1
        size = max(1, min(max_group, math.ceil(len(idx) / parts)))
        jobs.extend(idx[i:i + size] for i in range(0, len(idx), size))
    return jobs


def _checkpoint_path(store: Store, trial_ids: Sequence[str]) -> str:
    h = hashlib.sha256(",".join(trial_ids).encode()).hexdigest()[:16]
    return os.path.join(f"{os.path.abspath(store.path)}.ckpt", f"{h}.npz")


def run_trials(store: Store, trials: Sequence[tuple[str, PlannedTrial, dict | None]], executor: Executor,
               *, keep_params: bool = False, max_group: int = MAX_GROUP, checkpoints: bool = True,
               progress: Callable[[int, int], None] | None = None) -> dict[str, dict]:
    """Run ``(trial_id, trial, initial params or None)`` not yet complete; write results as jobs finish.

    Returns ``{trial_id: result dict}`` of the trials run here.
    """
    done = store.complete_ids(t[0] for t in trials)
    todo = [t for t in trials if t[0] not in done]
    if not todo:
        return {}
    jobs_idx = make_jobs([t[1] for t in todo], executor.workers, max_group)
    jobs = []
    use_ckpt = checkpoints and not isinstance(executor, _no_checkpoint_executors())
    for idx in jobs_idx:
        ids = [todo[i][0] for i in idx]
        inits = [todo[i][2] for i in idx]
        jobs.append(Job(
            configs=[todo[i][1].config.model_dump(mode="json") for i in idx],
            initial_params=None if all(p is None for p in inits) else [
                p if p is not None else _fresh_params(todo[i][1].config) for i, p in zip(idx, inits)],
            checkpoint=_checkpoint_path(store, ids) if use_ckpt else None,
            keep_params=keep_params,
            meta={"trial_ids": ids}))
    store.set_status([t[0] for t in todo], "running")
    out: dict[str, dict] = {}
    finished = 0
    try:
        for j, results in executor.run(jobs):
            job = jobs[j]
            store.write_results([(tid, r, r.get("params") if keep_params else None)
                                 for tid, r in zip(job.meta["trial_ids"], results)])
            for tid, r in zip(job.meta["trial_ids"], results):
                out[tid] = r
            if job.checkpoint and os.path.exists(job.checkpoint):
                os.remove(job.checkpoint)
            finished += len(results)
            if progress:
                progress(finished, len(todo))
    except KeyboardInterrupt:
        store.set_status([t[0] for t in todo if t[0] not in out], "interrupted")
        raise
    return out


def _no_checkpoint_executors():
    from localrnn.experiments.executors import RayExecutor

    return (RayExecutor,)


def _fresh_params(cfg):
    """The seeded initialization of ``cfg`` (for a job that mixes warm and fresh starts)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from localrnn.model import init_params
    from localrnn.tasks import get_task

    task = get_task(cfg.task)
    k_init = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)[0]
    p = init_params(k_init, task.n_in, cfg.hidden, task.n_out, jnp.dtype(cfg.dtype))
    return {k: np.asarray(getattr(p, k)) for k in p._fields}


def run_sweep(store: Store, spec: ExperimentSpec, budget: str, executor: Executor | None = None, *,
              max_group: int = MAX_GROUP, progress: Callable[[int, int], None] | None = None,
              source: str = "spec", plan_only: bool = False) -> SweepSummary:
    """Run the grid of ``spec`` under ``budget``: every trial not yet complete in ``store``."""
    trials = plan(spec, budget, source)  # validates everything before writing anything
    _, notes = active_arms(spec, source)
    name = experiment_name(spec, budget)
    summary = SweepSummary(experiment=name, notes=notes)
    unique: dict[str, PlannedTrial] = {}
    for t in trials:
        unique.setdefault(t.trial_id, t)
    summary.total = len(unique)
    if plan_only:
        summary.skipped = len(store.complete_ids(unique)) if os.path.exists(store.path) else 0
        return summary
    store.add_experiment(name, spec.kind, {"spec": spec.model_dump(mode="json"), "budget": budget})
    store.register_trials(name, [(tid, t.config, t.labels, None) for tid, t in unique.items()])
    executor = executor or LocalExecutor()
    summary.skipped = len(store.complete_ids(unique))
    ran = run_trials(store, [(tid, t, None) for tid, t in unique.items()], executor,
                     max_group=max_group, progress=progress)
    summary.ran = len(ran)
    for t in store.trials(name):
        summary.statuses[t["status"]] = summary.statuses.get(t["status"], 0) + 1
    return summary
