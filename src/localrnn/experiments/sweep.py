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

__all__ = ["ExperimentSummary", "WarmStart", "experiment_name", "jobs_for", "make_jobs", "record_job", "run_sweep",
           "run_trials"]

#: configs per vmapped job at most (bounds memory and the cost of a straggler)
MAX_GROUP = 64


@dataclass
class ExperimentSummary:
    """What running one experiment of any kind (grid, curriculum, diagnostics) did.

    ``total``: its trials (a curriculum: the steps run so far); ``skipped``: complete before;
    ``ran``: trained now; ``statuses``: count per stored status; ``notes``: optional arms left
    out; ``text``: one line for the user. A curriculum also fills ``warm_start`` and ``ladders``.
    """

    experiment: str
    kind: str = "grid"
    total: int = 0
    skipped: int = 0
    ran: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    text: str = ""
    warm_start: bool | None = None
    ladders: dict[str, list[dict]] = field(default_factory=dict)


#: where a trial starts instead of its seeded initialization: ``{"params": {field: array},
#: "rule_state": [leaves of the rule's state]}`` (a stored trial's final state)
WarmStart = dict


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


def run_trials(store: Store, trials: Sequence[tuple[str, PlannedTrial, WarmStart | None]], executor: Executor,
               *, keep_state: bool = False, max_group: int = MAX_GROUP, checkpoints: bool = True,
               progress: Callable[[int, int], None] | None = None) -> dict[str, dict]:
    """Run ``(trial_id, trial, warm start or None)`` not yet complete; write results as jobs finish.

    ``keep_state``: store each trial's final parameters and rule state (to warm-start from).
    Returns ``{trial_id: result dict}`` of the trials run here.
    """
    done = store.complete_ids(t[0] for t in trials)
    todo = [t for t in trials if t[0] not in done]
    if not todo:
        return {}
    jobs = jobs_for(store, todo, executor, keep_state=keep_state, max_group=max_group, checkpoints=checkpoints)
    out: dict[str, dict] = {}
    try:
        for j, results in executor.run(jobs):
            out.update(record_job(store, jobs[j], results))
            if progress:
                progress(len(out), len(todo))
    except KeyboardInterrupt:
        store.set_status([t[0] for t in todo if t[0] not in out], "interrupted")
        raise
    return out


def jobs_for(store: Store, todo: Sequence[tuple[str, PlannedTrial, WarmStart | None]], executor: Executor, *,
             keep_state: bool, max_group: int = MAX_GROUP, checkpoints: bool = True) -> list[Job]:
    """The jobs of ``todo`` (grouped by :func:`make_jobs`, each with its checkpoint path), marked
    running in the store."""
    use_ckpt = checkpoints and not isinstance(executor, _no_checkpoint_executors())
    jobs = []
    for idx in make_jobs([t[1] for t in todo], executor.workers, max_group):
        ids = [todo[i][0] for i in idx]
        warm = [todo[i][2] for i in idx]
        jobs.append(Job(
            configs=[todo[i][1].config.model_dump(mode="json") for i in idx],
            warm_starts=None if all(w is None for w in warm) else warm,
            checkpoint=_checkpoint_path(store, ids) if use_ckpt else None,
            keep_state=keep_state,
            meta={"trial_ids": ids}))
    store.set_status([t[0] for t in todo], "running")
    return jobs


def record_job(store: Store, job: Job, results: list[dict]) -> dict[str, dict]:
    """Write a finished job's results (with final states when it kept them) in one transaction,
    remove its checkpoint, and return ``{trial_id: result}``."""
    store.write_results([(tid, r, _state_of(r) if job.keep_state else None)
                         for tid, r in zip(job.meta["trial_ids"], results)])
    if job.checkpoint and os.path.exists(job.checkpoint):
        os.remove(job.checkpoint)
    return dict(zip(job.meta["trial_ids"], results))


def _no_checkpoint_executors():
    from localrnn.experiments.executors import RayExecutor

    return (RayExecutor,)


def _state_of(result: dict) -> WarmStart | None:
    """The final state a result carries (``to_dict(keep_state=True)``), as the store keeps it."""
    return {"params": result["params"], "rule_state": result["rule_state"]} if "params" in result else None


def run_sweep(store: Store, spec: ExperimentSpec, budget: str, executor: Executor | None = None, *,
              max_group: int = MAX_GROUP, progress: Callable[[str], None] | None = None,
              source: str = "spec", plan_only: bool = False) -> ExperimentSummary:
    """Run the grid of ``spec`` under ``budget``: every trial not yet complete in ``store``.

    ``progress`` gets one line as each job finishes; ``plan_only`` counts without running.
    """
    trials = plan(spec, budget, source)  # validates everything before writing anything
    _, notes = active_arms(spec, source)
    name = experiment_name(spec, budget)
    summary = ExperimentSummary(experiment=name, kind="grid", notes=notes)
    unique: dict[str, PlannedTrial] = {}
    for t in trials:
        unique.setdefault(t.trial_id, t)
    summary.total = len(unique)
    if plan_only:
        summary.skipped = len(store.complete_ids(unique)) if os.path.exists(store.path) else 0
        return summary
    store.add_experiment(name, spec.kind, {"spec": spec.model_dump(mode="json"), "budget": budget})
    store.register_trials(name, [(tid, t.config, t.labels, None) for tid, t in unique.items()])
    dropped = store.prune_experiment(name, unique)  # the experiment is what its spec asks for now
    if dropped:
        summary.notes.append(f"{dropped} stored trials are no longer in the spec: left out of {name}")
    executor = executor or LocalExecutor()
    summary.skipped = len(store.complete_ids(unique))
    report = None if progress is None else (lambda done, total: progress(f"{done}/{total} trials done"))
    ran = run_trials(store, [(tid, t, None) for tid, t in unique.items()], executor,
                     max_group=max_group, progress=report)
    summary.ran = len(ran)
    for t in store.trials(name):
        summary.statuses[t["status"]] = summary.statuses.get(t["status"], 0) + 1
    summary.text = (f"{name}: {summary.total} trials, {summary.skipped} already complete, {summary.ran} trained; "
                    + ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())))
    return summary
