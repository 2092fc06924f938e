"""The curriculum protocol (docs/protocols.md; the paper's Table V): grow T until the rule fails.

Every ladder (one arm, one setting of the spec's other axes, one seed) starts at
``curriculum.start``; when a length is solved it goes on at ``T + step``, from the
solved state when ``warm_start`` (default: the parameters and the rule's own state, e.g.
TPTT's inverse ``Vhh``, ``ch`` and their optimizer state; the training loop's optimizer
starts fresh) or from a fresh initialization, and it
stops at the first length not solved (or at ``max_length``). A ladder goes on as soon
as its step is done, without waiting for the other ladders' steps at that length, and
longer lengths start before shorter ones still waiting; the next steps of the ladders of
one finished job that share structure train together.
Every step is a trial in the store and
a row of the ladder table; a restarted curriculum walks the stored ladder and
continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Callable

from localrnn.experiments.executors import Executor, Job, LocalExecutor
from localrnn.experiments.spec import ExperimentSpec, PlannedTrial, active_arms, plan
from localrnn.experiments.store import Store
from localrnn.experiments.sweep import (MAX_GROUP, ExperimentSummary, WarmStart, experiment_name, jobs_for,
                                       record_job)

__all__ = ["run_curriculum", "highest_solved"]


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def highest_solved(steps: list[dict]) -> int:
    """Highest T solved along a ladder (0 if the first length is not solved)."""
    best = 0
    for s in sorted(steps, key=lambda s: s["step"]):
        if s["status"] != "solved":
            break
        best = s["length"]
    return best


def run_curriculum(store: Store, spec: ExperimentSpec, budget: str, executor: Executor | None = None, *,
                   warm_start: bool | None = None, max_group: int = MAX_GROUP,
                   progress: Callable[[str], None] | None = None, source: str = "spec") -> ExperimentSummary:
    """Run every ladder of ``spec`` under ``budget`` to its first failure; the summary holds the ladders."""
    from localrnn.config import TrainConfig

    base = plan(spec, budget, source)  # validates before anything is written
    _, notes = active_arms(spec, source)
    cur = spec.curriculum
    warm = cur.warm_start if warm_start is None else warm_start
    b = spec.budget[budget]
    max_length = b.max_length or cur.max_length
    name = experiment_name(spec, budget)
    if not warm:
        name += ":cold"
    summary = ExperimentSummary(experiment=name, kind=spec.kind, warm_start=warm, notes=notes)
    store.add_experiment(name, spec.kind, {"spec": spec.model_dump(mode="json"), "budget": budget,
                                              "warm_start": warm, "max_length": max_length})
    executor = executor or LocalExecutor()

    ladders: dict[str, dict] = {}
    for t in base:
        labels = {k: v for k, v in t.labels.items() if k != "length"}
        key = _hash(labels)
        ladders.setdefault(key, {"base": t, "labels": labels, "length": cur.start, "step": 0, "parent": None})
    running: dict[str, tuple[str, PlannedTrial]] = {}  # trial id -> (its ladder, the step), handed to the executor

    def note(key: str, t: PlannedTrial, status: str) -> bool:
        """Report a finished step; move its ladder to the next length if it solved this one."""
        lad = ladders[key]
        if progress:
            progress(f"{t.labels['arm']} {t.config.task} seed {t.config.seed} T={lad['length']}: {status}")
        if status == "solved" and lad["length"] + cur.step <= max_length:
            lad.update(parent=lad["trial_id"], length=lad["length"] + cur.step, step=lad["step"] + 1)
            return True
        return False

    def steps_to_run(keys: list[str]) -> list[tuple[str, PlannedTrial, WarmStart | None]]:
        """Register the current step of each ladder in ``keys``, walk the steps the store already
        holds (not rerun), and return the steps left to train."""
        todo = []
        while keys:
            items = []
            for key in keys:
                lad = ladders[key]
                cfg = TrainConfig(**{**lad["base"].config.model_dump(), "length": lad["length"]})
                init = {"curriculum": True, "warm_start": warm, "from": lad["parent"] if warm else None}
                if warm and lad["parent"]:
                    init["carries"] = "params+rule_state"  # a new id: steps that carried params only are rerun
                tid = _hash({"run_id": cfg.run_id(), **init})
                labels = {**lad["labels"], "length": lad["length"], "step": lad["step"], "ladder": key}
                lad["trial_id"] = tid
                items.append((key, tid, PlannedTrial(cfg, labels), init))
            store.register_trials(name, [(tid, t.config, t.labels, init) for _, tid, t, init in items])
            for key, tid, t, _ in items:
                store.write_ladder_step(name, key, ladders[key]["step"], ladders[key]["length"], tid, warm,
                                        ladders[key]["labels"])
            done = store.complete_ids(tid for _, tid, _, _ in items)
            keys = []
            for key, tid, t, _ in items:
                if tid in done:
                    if note(key, t, store.trial(tid)["status"]):
                        keys.append(key)
                else:
                    running[tid] = (key, t)
                    todo.append((tid, t, _warm_start(store, ladders[key]["parent"]) if warm else None))
        return todo

    def queue(todo) -> list[Job]:
        """Jobs for ``todo``; the longer the length, the sooner it starts (ladders finish one by one)."""
        jobs = jobs_for(store, todo, executor, keep_state=warm, max_group=max_group)
        for job in jobs:
            job.priority = job.configs[0]["length"]
        return jobs

    # Each ladder goes on as soon as its step is done: the next lengths of the ladders of a
    # finished job are appended to the executor's job list while the other jobs run, and start
    # before the shorter lengths still waiting.
    jobs = queue(steps_to_run(list(ladders)))
    try:
        for j, results in executor.run(jobs):
            record_job(store, jobs[j], results)
            jobs[j].warm_starts = None  # done: a long study keeps its list of jobs, not their states
            summary.ran += len(results)
            advanced = []
            for tid in jobs[j].meta["trial_ids"]:
                key, t = running.pop(tid)
                if note(key, t, store.trial(tid)["status"]):
                    advanced.append(key)
            if todo := steps_to_run(advanced):
                jobs.extend(queue(todo))
    except KeyboardInterrupt:
        store.set_status(list(running), "interrupted")
        raise
    summary.ladders = store.ladders(name)
    summary.total = sum(len(steps) for steps in summary.ladders.values())
    summary.skipped = summary.total - summary.ran
    for steps in summary.ladders.values():
        for st in steps:
            summary.statuses[st["status"]] = summary.statuses.get(st["status"], 0) + 1
    summary.text = f"{name}: {summary.ran} trials trained"
    return summary


def _warm_start(store: Store, parent: str | None) -> WarmStart | None:
    """The stored final state (parameters and rule state) of the solved step ``parent``."""
    if parent is None:
        return None
    state = store.final_state(parent)
    if state is None:
        raise RuntimeError(f"curriculum: the state of solved trial {parent} is missing from the store")
    return state
